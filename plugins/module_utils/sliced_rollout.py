# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A rollout's remaining waves run as the slices of a sliced AWX job, on purpose (pure functions).

AWX runs a job template whose job slicing (``job_slice_count``) is n as a workflow job of n jobs;
slice k of n gets the inventory's hosts sorted by name, every n-th starting at index k-1
(``Inventory.get_script_data`` in AWX's awx/main/models/inventory.py). AWX gives the playbook no
slice number, so a slice finds out which one it is by comparing its own hosts with the approved
plan's (``identify_slice``): they must be exactly one slice of n of the plan's hosts, else it refuses.

The failure budget of the whole run (from the plan, over all its hosts) minus what the canary phase
spent is split over the n slices in proportion to each slice's remaining hosts to patch
(``budget_shares``: largest remainder, ties to the lower slice number), the same way in every slice,
so the shares sum to exactly the remaining budget and never more. A slice that exceeds its share stops
(its later waves); the others go on.

Each slice publishes its summary under a key of its own (``slice_summary_key``: AWX merges the artifacts
of a sliced job's jobs shallowly, one key per slice survives); a report node merges them
(``merge_slice_summaries``) into one summary, naming missing or duplicate slices and plans that differ.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SLICE_SUMMARY_PREFIX = 'noreboot_xen_rollout_slice_summary_'
_KEY = re.compile(r'^%s(\d+)_of_(\d+)$' % SLICE_SUMMARY_PREFIX)

# Outcome columns summed over slices (rollout_budget.SUMMARY_COLUMNS plus the row's host count).
_LIST_FIELDS = ('needs_reboot', 'state_unknown', 'held', 'needs_attention')


class SliceError(ValueError):
    """This job is not one slice of the approved plan, or the slices' summaries do not merge."""


# What noreboot_xen_rollout_slices holds when the sliced mode is off (the variable left out, empty, 0 or 1).
NOT_SLICED = (None, '', 0, 1, '0', '1')


def sliced_mode(count):
    """Whether ``count`` (noreboot_xen_rollout_slices) asks for the sliced mode; check_slice_count validates it."""
    return count not in NOT_SLICED


def check_slice_count(count):
    """The slice count as an int >= 2, else SliceError."""
    if isinstance(count, bool):
        raise SliceError('noreboot_xen_rollout_slices must be a whole number of 2 or more, got %r' % (count,))
    try:
        value = int(count)
    except (TypeError, ValueError):
        raise SliceError('noreboot_xen_rollout_slices must be a whole number of 2 or more, got %r' % (count,))
    if value < 2 or str(value) != str(count).strip():
        raise SliceError('noreboot_xen_rollout_slices must be a whole number of 2 or more (the job template\'s '
                         'job_slice_count), got %r' % (count,))
    return value


def slice_hosts(hosts, number, count):
    """AWX's slice ``number`` of ``count`` of ``hosts``: sorted by name, every count-th from index number-1."""
    return sorted(set(hosts))[number - 1::count]


def identify_slice(plan_hosts, own_hosts, count):
    """Which slice (1..count) ``own_hosts`` is of the plan's hosts; SliceError naming the difference otherwise."""
    count = check_slice_count(count)
    own = set(own_hosts)
    planned = set(plan_hosts)
    for number in range(1, count + 1):
        if set(slice_hosts(planned, number, count)) == own:
            return number
    stray = sorted(own - planned)

    def overlap(number):
        return len(own & set(slice_hosts(planned, number, count)))
    closest = max(range(1, count + 1), key=lambda n: (overlap(n), -n))
    expected = set(slice_hosts(planned, closest, count))
    missing = sorted(expected - own)
    extra = sorted(own - expected)
    raise SliceError(
        'this job\'s %d host(s) are not exactly one slice of %d of the approved plan\'s %d host(s) (AWX slices the '
        'inventory sorted by name, every %d-th host): closest is slice %d of %d, %s%s%s. Fix: run the sliced rollout '
        'on the inventory the plan was made on (same hosts, no limit), with job slicing equal to '
        'noreboot_xen_rollout_slices (%d). Nothing was changed.'
        % (len(own), count, len(planned), count, closest, count,
           'missing here: %s' % _names(missing) if missing else 'none missing',
           '; not in that slice: %s' % _names(extra) if extra else '',
           '; not in the plan at all: %s' % _names(stray) if stray else '', count))


def _names(hosts, limit=10):
    hosts = list(hosts)
    text = ', '.join(hosts[:limit])
    return text + (' and %d more' % (len(hosts) - limit) if len(hosts) > limit else '')


def budget_shares(total, weights):
    """Split ``total`` failed hosts over slices in proportion to ``weights`` (their remaining hosts to patch).

    Largest remainder: each slice gets floor(total * w / W); what is left goes one by one to the slices with
    the largest remainders, ties to the lower slice number. The shares sum to ``total`` (to 0 when every
    weight is 0: no slice has a host to spend it on), a slice without hosts gets 0. ``total`` None (no
    limit) gives None for every slice.
    """
    weights = [int(w) for w in weights]
    if any(w < 0 for w in weights):
        raise SliceError('slice weights must be 0 or more, got %r' % (weights,))
    if total is None:
        return [None] * len(weights)
    total = int(total)
    if total < 0:
        raise SliceError('the budget to split must be 0 or more, got %r' % (total,))
    whole = sum(weights)
    if not whole:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares


def sliced_reboot_problem(reboot_hosts, count, reboot_ok):
    """The refusal when one slice of a sliced rollout would reboot hosts, else None.

    Each slice plans its own reboot waves and keeps a failure domain's cap (``max_per_domain``) within them
    only: n slices at once could take n times the cap of one domain down. So a sliced job runs live patch
    waves only; with ``noreboot_xen_reboot_ok`` false the reboot hosts are reported (pending_reboot), and the
    reboot fallback runs unsliced afterwards."""
    hosts = sorted(reboot_hosts or [])
    if not hosts or not reboot_ok or not sliced_mode(count):
        return None
    return ('a sliced rollout (noreboot_xen_rollout_slices=%s) does not reboot hosts: each slice would keep a failure '
            "domain's cap (max_per_domain) within its own reboot waves only, so the %s slices at once could take up "
            'to %s times the cap of one domain down. This slice has %d host(s) that need a reboot: %s. Fix: launch the '
            'sliced job with noreboot_xen_reboot_ok=false (they are reported as pending_reboot) and reboot them '
            'afterwards with one unsliced job (noreboot.xen.reboot_fallback); or run the remaining waves unsliced. '
            'Nothing was changed.' % (count, count, count, len(hosts), _names(hosts)))


def slice_summary_key(number, count):
    """The artifact key of slice ``number`` of ``count``'s summary."""
    return '%s%d_of_%d' % (SLICE_SUMMARY_PREFIX, number, count)


def _sum_rows(rows):
    merged = {}
    order = []
    for row in rows:
        label = row.get('wave')
        if label not in merged:
            order.append(label)
            merged[label] = dict(row)
            continue
        target = merged[label]
        for key, value in row.items():
            if key == 'elapsed_s':
                values = [v for v in (target.get(key), value) if v is not None]
                target[key] = max(values) if values else None
            elif isinstance(value, int) and not isinstance(value, bool):
                target[key] = target.get(key, 0) + value
    return [merged[label] for label in order]


def _sum_or_none(limits):
    return None if None in limits or not limits else sum(limits)


def merge_slice_summaries(artifacts, count, earlier=None, plan_hosts=None):
    """One summary of the slices' summaries (``artifacts``: key -> summary, as AWX hands them to a later node).

    ``count``: the number of slices; ``earlier``: the canary job's summary (its hosts are part of the
    run, its failures were spent before the slices); ``plan_hosts``: the approved plan's hosts, each of
    which must be in exactly one summary. Returns the merged summary with ``slices`` (one row per slice)
    and ``problems`` (missing or duplicate slices and hosts, plans that differ, hosts not accounted for):
    a merged summary with problems must not be read as the run's whole story.
    """
    count = check_slice_count(count)
    problems = []
    by_number = {}
    for key in sorted(artifacts or {}):
        match = _KEY.match(key)
        if not match:
            continue
        number, of = int(match.group(1)), int(match.group(2))
        summary = artifacts[key]
        if of != count:
            problems.append('%s: a slice of %d, this run has %d slices' % (key, of, count))
            continue
        if not isinstance(summary, dict) or not isinstance(summary.get('hosts'), dict):
            problems.append('%s: not a run summary' % key)
            continue
        own = (summary.get('slice') or {}).get('number')
        if own != number:
            problems.append('%s: its summary says slice %s' % (key, own))
        if number in by_number:
            problems.append('slice %d of %d: more than one summary' % (number, count))
            continue
        by_number[number] = summary
    missing = [n for n in range(1, count + 1) if n not in by_number]
    if missing:
        problems.append('no summary of slice(s) %s of %d (the slice job failed before its summary, or its artifact '
                        'was not passed on)' % (', '.join(str(n) for n in missing), count))
    parts = [('canary job', earlier)] if isinstance(earlier, dict) and isinstance(earlier.get('hosts'), dict) else []
    parts += [('slice %d of %d' % (n, count), by_number[n]) for n in sorted(by_number)]
    fingerprints = sorted(set(str(s.get('plan_fingerprint')) for _name, s in parts))
    if len(fingerprints) > 1:
        problems.append('the summaries are of different plans: %s' % ', '.join(
            '%s: %s' % (name, str(s.get('plan_fingerprint'))[:12]) for name, s in parts))
    hosts = {}
    where = {}
    for name, summary in parts:
        for host, entry in summary['hosts'].items():
            if host in hosts:
                problems.append('%s is in the summaries of %s and %s' % (host, where[host], name))
                continue
            hosts[host] = dict(entry, part=name)
            where[host] = name
    if plan_hosts is not None:
        unaccounted = sorted(set(plan_hosts) - set(hosts))
        if unaccounted:
            problems.append('%d host(s) of the plan in no summary: %s' % (len(unaccounted), _names(unaccounted)))
    totals = {}
    for _name, summary in parts:
        for column, value in (summary.get('totals') or {}).items():
            totals[column] = totals.get(column, 0) + int(value or 0)
    rows = [r for _name, s in parts for r in s.get('waves') or [] if r.get('wave') != 'not_in_a_wave']
    rows += [r for _name, s in parts for r in s.get('waves') or [] if r.get('wave') == 'not_in_a_wave']
    slices = []
    limits = []
    for number in range(1, count + 1):
        summary = by_number.get(number)
        if summary is None:
            slices.append(dict(number=number, missing=True))
            continue
        budget = summary.get('budget') or {}
        limits.append(budget.get('limit'))
        slices.append(dict(number=number, missing=False, hosts=len(summary['hosts']), to_patch=budget.get('to_patch'),
                           share=budget.get('limit'), failures=budget.get('failures', 0),
                           stopped=bool(summary.get('stopped')), stop_reason=summary.get('stop_reason'),
                           elapsed_s=summary.get('elapsed_s'), run_id=summary.get('run_id')))
    split = next((by_number[n].get('budget_split') for n in sorted(by_number) if by_number[n].get('budget_split')),
                 None) or {}
    stopped = [s for s in slices if s.get('stopped')]
    earlier_budget = (earlier or {}).get('budget') or {} if parts and parts[0][0] == 'canary job' else {}
    failures = sum(int(s.get('failures') or 0) for s in slices if not s['missing'])
    merged = dict(
        run_id='; '.join('%s %s' % (name, s.get('run_id')) for name, s in parts),
        plan_fingerprint=fingerprints[0] if len(fingerprints) == 1 else None,
        phase='sliced',
        slices=slices,
        problems=problems,
        stopped=bool(stopped or problems),
        stop_reason='; '.join(['slice %d of %d: %s' % (s['number'], count, s['stop_reason']) for s in stopped]
                              + (['%d problem(s) merging the slices: %s' % (len(problems), ' | '.join(problems))]
                                 if problems else [])) or None,
        budget=dict(limit=split['run_limit'] if 'run_limit' in split else _sum_or_none(limits),
                    failures=failures + int(earlier_budget.get('failures') or 0),
                    to_patch=sum(int(s.get('to_patch') or 0) for s in slices if not s['missing'])
                    + int(earlier_budget.get('to_patch') or 0),
                    source='whole run %s, spent before the slices %s, shares %s' % (
                        split.get('run_limit', '?') if split.get('run_limit', 0) is not None else 'unlimited',
                        split.get('spent', '?'), split.get('shares', '?'))),
        budget_split=split,
        totals=totals,
        waves=_sum_rows(rows),
        hosts=hosts,
        held_by_other_run={},
        elapsed_s=max([s.get('elapsed_s') or 0 for _n, s in parts] or [0]),
        check_mode=any(s.get('check_mode') for _n, s in parts),
        signatures=next((s.get('signatures') for _n, s in parts if s.get('signatures')), []),
    )
    for field in _LIST_FIELDS:
        merged[field] = sorted(set(h for _n, s in parts for h in s.get(field) or []))
    for _name, summary in parts:
        merged['held_by_other_run'].update(summary.get('held_by_other_run') or {})
    merged['attention'] = bool(merged['held'] or merged['needs_attention'])
    merged['slices_table'] = slices_table(merged)
    return merged


def slices_table(merged):
    """One line per slice of a merged summary: hosts, share, failures, time, and how it ended."""
    lines = ['%-8s%8s%8s%10s%10s  %s' % ('slice', 'hosts', 'share', 'failures', 'elapsed_s', 'ended')]
    for row in merged.get('slices') or []:
        if row.get('missing'):
            lines.append('%-8s%s' % (row['number'], '  no summary'))
            continue
        lines.append('%-8s%8s%8s%10s%10s  %s' % (
            row['number'], row.get('hosts'), 'unlimited' if row.get('share') is None else row['share'],
            row.get('failures'), row.get('elapsed_s'),
            'STOPPED: %s' % row['stop_reason'] if row.get('stopped') else 'every wave ran'))
    return lines
