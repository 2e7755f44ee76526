# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling live patch's stop rules and its summary (pure functions, controller side).

Ansible's ``max_fail_percentage`` counts per serial batch and only within one play. A rolling
live patch needs one **failure budget for the whole run**, checked before each wave starts:

* every host the plan sends a payload to (canaries and wave hosts) is *to patch*;
* a host *failed* when its outcome is ``failed``, ``reverted`` or ``unreachable``; a host
  whose outcome is still ``in_progress`` when the gate runs was lost during its wave (the
  play dropped it): it counts as ``unreachable``;
* the limit is ``budget_hosts`` failed hosts and/or ``budget_percent`` percent of the hosts to
  patch (rounded down); with both, the smaller wins; with neither, there is no limit;
* the run stops when failures **exceed** the limit (a limit of 0 stops at the first failure);
* any failed canary stops the run, whatever the budget;
* a stop is final: once a gate said stop, every later gate says stop with the first reason.

Hosts already in flight when the budget runs out finish their wave: the gate only decides
whether the *next* wave starts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

FAILED = 'failed'
REVERTED = 'reverted'
UNREACHABLE = 'unreachable'
IN_PROGRESS = 'in_progress'
PATCHED = 'patched'
ALREADY_PATCHED = 'already_patched'
PENDING_REBOOT = 'pending_reboot'
# Fixed by the reboot fallback (the fixed hypervisor installed, rebooted, verified) in a reboot wave.
REBOOTED = 'rebooted'
NOT_STARTED = 'not_started'
NOT_AFFECTED = 'not_affected'
NOT_XEN = 'not_xen'
# The host reverted this payload in an earlier run and was not touched again: it needs a reboot.
PREVIOUSLY_REVERTED = 'previously_reverted'

FAILURE_OUTCOMES = (FAILED, REVERTED, UNREACHABLE)

# Plan decisions that never reach a wave, mapped to the summary's outcome for them.
DECISION_OUTCOMES = {
    'reboot': PENDING_REBOOT,
    'already_patched': ALREADY_PATCHED,
    'not_affected': NOT_AFFECTED,
    'not_xen': NOT_XEN,
    'unreachable': UNREACHABLE,
}

SUMMARY_COLUMNS = (PATCHED, REBOOTED, ALREADY_PATCHED, REVERTED, FAILED, PENDING_REBOOT, UNREACHABLE, NOT_STARTED,
                   NOT_AFFECTED, NOT_XEN)

# A reboot wave host's summary outcome, from the reboot fallback's outcome (role
# noreboot.xen.reboot_fallback). A host whose reboot wave never ran, that was only reported
# (noreboot_xen_reboot_ok false), refused (guests and policy refuse) or ran in check mode is
# untouched and still needs its reboot.
REBOOT_SUMMARY_OUTCOMES = {
    'rebooted': REBOOTED,
    'not_needed': ALREADY_PATCHED,
    'reboot_required': PENDING_REBOOT,
    'would_reboot': PENDING_REBOOT,
    'refused': PENDING_REBOOT,
    'failed': FAILED,
    'guests_not_restored': FAILED,
    'unreachable': UNREACHABLE,
    IN_PROGRESS: UNREACHABLE,
    # Lost mid reboot fallback (what it had done is in its result), came back on a build that is not fixed.
    'lost': UNREACHABLE,
    'wrong_build': FAILED,
}


def reboot_summary_outcome(outcome):
    """The summary outcome of a host of a reboot wave (see REBOOT_SUMMARY_OUTCOMES)."""
    return REBOOT_SUMMARY_OUTCOMES.get(outcome, PENDING_REBOOT)


def effective_outcome(outcome):
    """The outcome a gate counts: ``in_progress`` (lost mid-wave) becomes ``unreachable``; None stays None."""
    if outcome == IN_PROGRESS:
        return UNREACHABLE
    return outcome


def failure_limit(total_to_patch, budget_hosts=None, budget_percent=None):
    """How many failed hosts the run tolerates; None means no limit.

    ``budget_hosts`` is an absolute count, ``budget_percent`` a percentage (0-100) of
    ``total_to_patch`` rounded down. With both, the smaller applies. Raises ValueError on a
    negative count or a percentage outside 0-100.
    """
    limits = []
    if budget_hosts is not None and budget_hosts != '':
        count = int(budget_hosts)
        if count < 0:
            raise ValueError('noreboot_xen_failure_budget_hosts must be 0 or more, got %r' % budget_hosts)
        limits.append(count)
    if budget_percent is not None and budget_percent != '':
        percent = float(budget_percent)
        if percent < 0 or percent > 100:
            raise ValueError('noreboot_xen_failure_budget_percent must be between 0 and 100, got %r' % budget_percent)
        limits.append(int(int(total_to_patch) * percent // 100))
    return min(limits) if limits else None


def _describe(host, outcome, detail):
    text = '%s (%s' % (host, outcome)
    if detail:
        text += ': %s' % detail
    return text + ')'


def evaluate_gate(to_patch, outcomes, canaries=(), budget_hosts=None, budget_percent=None, previous=None,
                  details=None):
    """Decide whether the next wave may start.

    ``to_patch``: the hosts the plan sends a payload to; ``outcomes``: host -> outcome for the
    hosts whose wave has run (missing or None: not started); ``canaries``: the canary hosts;
    ``previous``: the last gate's result (a stop is final); ``details``: optional host -> short
    text (failed checks) used in the reason.

    Returns ``{'proceed', 'reason', 'failures', 'failed_hosts', 'limit', 'to_patch'}``.
    """
    details = details or {}
    outcomes = outcomes or {}
    to_patch = sorted(set(to_patch or []))
    limit = failure_limit(len(to_patch), budget_hosts, budget_percent)
    failed_hosts = []
    for host in to_patch:
        outcome = effective_outcome(outcomes.get(host))
        if outcome in FAILURE_OUTCOMES:
            failed_hosts.append(dict(host=host, outcome=outcome, detail=details.get(host)))
    result = dict(proceed=True, reason=None, failures=len(failed_hosts), failed_hosts=failed_hosts,
                  limit=limit, to_patch=len(to_patch))
    if previous and not previous.get('proceed', True):
        result.update(proceed=False, reason=previous.get('reason'))
        return result
    failed_canaries = [f for f in failed_hosts if f['host'] in set(canaries or ())]
    if failed_canaries:
        result.update(proceed=False, reason='canary failed: %s; no wave starts after a failed canary'
                      % ', '.join(_describe(f['host'], f['outcome'], f['detail']) for f in failed_canaries))
        return result
    if limit is not None and len(failed_hosts) > limit:
        result.update(proceed=False, reason='failure budget exceeded: %d failed host(s) of %d to patch, the budget '
                      'allows %s: %s' % (len(failed_hosts), len(to_patch), limit,
                                         ', '.join(_describe(f['host'], f['outcome'], f['detail'])
                                                   for f in failed_hosts)))
    return result


def host_outcome(decision, outcome, planned):
    """The summary outcome of one host: its rollout outcome when it was planned for a payload
    (``not_started`` when its wave never ran, ``unreachable`` when it was lost), else what its
    plan decision means."""
    if planned:
        outcome = effective_outcome(outcome)
        if outcome == PREVIOUSLY_REVERTED:
            return PENDING_REBOOT
        return outcome or NOT_STARTED
    return DECISION_OUTCOMES.get(decision, decision or NOT_STARTED)


def summarize(plan_hosts, outcomes, waves=None, wave_times=None, gate=None, details=None, run_id=None):
    """Build the run summary.

    ``plan_hosts``: host -> ``{'decision', 'wave'}`` with ``wave`` the label of the wave that
    applies its payload (``wave_1``...) or None for hosts that get no payload; ``outcomes``:
    host -> outcome; ``waves``: ``[{'label', 'kind'}]`` in run order; ``wave_times``: label ->
    ``{'start', 'end'}`` (epoch seconds); ``gate``: the last gate result; ``details``: host ->
    failed checks / message.

    Returns ``{'run_id', 'stopped', 'stop_reason', 'budget', 'totals', 'waves': [...], 'hosts',
    'needs_reboot', 'state_unknown'}`` where each wave row counts ``hosts`` and every
    SUMMARY_COLUMNS outcome, with ``kind`` and ``elapsed_s``; hosts in no wave are counted in a
    last row, ``not_in_a_wave``. ``needs_reboot`` lists the hosts still exposed that only a reboot
    can fix today (pending_reboot, reverted, failed); ``state_unknown`` those that must be
    looked at again (unreachable, not started, undecided).
    """
    outcomes = outcomes or {}
    wave_times = wave_times or {}
    details = details or {}
    waves = list(waves or [])
    rows = {}
    hosts = {}
    totals = dict((column, 0) for column in SUMMARY_COLUMNS)
    totals['hosts'] = 0
    for host in sorted(plan_hosts):
        entry = plan_hosts[host] or {}
        label = entry.get('wave')
        planned = label is not None
        outcome = host_outcome(entry.get('decision'), outcomes.get(host), planned)
        label = label if planned else 'not_in_a_wave'
        row = rows.setdefault(label, dict((column, 0) for column in SUMMARY_COLUMNS))
        row['hosts'] = row.get('hosts', 0) + 1
        row[outcome] = row.get(outcome, 0) + 1
        totals['hosts'] += 1
        totals[outcome] = totals.get(outcome, 0) + 1
        hosts[host] = dict(decision=entry.get('decision'), wave=label, outcome=outcome, detail=details.get(host))
    ordered = [w for w in waves if w['label'] in rows] + [
        dict(label=label, kind='none' if label == 'not_in_a_wave' else None)
        for label in sorted(rows) if label not in set(w['label'] for w in waves)]
    result_waves = []
    for wave in ordered:
        row = dict(rows[wave['label']])
        row['wave'] = wave['label']
        row['kind'] = wave.get('kind')
        times = wave_times.get(wave['label']) or {}
        if times.get('start') is not None and times.get('end') is not None:
            row['elapsed_s'] = round(float(times['end']) - float(times['start']), 1)
        else:
            row['elapsed_s'] = None
        result_waves.append(row)
    gate = gate or {}
    needs_reboot = sorted(h for h, e in hosts.items() if e['outcome'] in (PENDING_REBOOT, REVERTED, FAILED))
    unknown = sorted(h for h, e in hosts.items() if e['outcome'] in (UNREACHABLE, NOT_STARTED, 'undecided'))
    return dict(
        run_id=run_id,
        needs_reboot=needs_reboot,
        state_unknown=unknown,
        stopped=not gate.get('proceed', True),
        stop_reason=gate.get('reason'),
        budget=dict(limit=gate.get('limit'), failures=gate.get('failures', 0), to_patch=gate.get('to_patch')),
        totals=totals,
        waves=result_waves,
        hosts=hosts,
    )


def format_summary(summary):
    """Render the summary as a fixed-width table for the play output (one string, lines joined)."""
    columns = ('hosts', PATCHED, REBOOTED, ALREADY_PATCHED, REVERTED, FAILED, PENDING_REBOOT, UNREACHABLE, NOT_STARTED)
    heads = ('hosts', 'patched', 'rebooted', 'already', 'reverted', 'failed', 'to_reboot', 'unreach', 'not_run')
    lines = ['%-16s%-10s' % ('wave', 'kind') + ''.join('%10s' % h for h in heads) + '%11s' % 'elapsed_s']
    for row in summary['waves']:
        elapsed = row.get('elapsed_s')
        lines.append('%-16s%-10s' % (row['wave'], row.get('kind') or '') + ''.join('%10d' % row.get(c, 0) for c in columns)
                     + '%11s' % ('-' if elapsed is None else elapsed))
    totals = summary['totals']
    lines.append('%-26s' % 'total' + ''.join('%10d' % totals.get(c, 0) for c in columns))
    budget = summary.get('budget') or {}
    lines.append('failures: %s of %s host(s) to patch, budget %s' % (
        budget.get('failures', 0), budget.get('to_patch'), 'unlimited' if budget.get('limit') is None
        else budget.get('limit')))
    if summary.get('needs_reboot'):
        lines.append('needs a reboot (%d): %s' % (len(summary['needs_reboot']), ', '.join(summary['needs_reboot'])))
    if summary.get('state_unknown'):
        lines.append('look again (%d): %s' % (len(summary['state_unknown']), ', '.join(summary['state_unknown'])))
    if summary.get('stopped'):
        lines.append('STOPPED: %s' % summary.get('stop_reason'))
    else:
        lines.append('completed: every planned wave ran')
    return '\n'.join(lines)
