# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling live patch's stop rules and its summary (pure functions, controller side).

Ansible's ``max_fail_percentage`` counts per serial batch and only within one play. A rolling
live patch needs one **failure budget for the whole run**, checked before each wave starts:

* every host the plan sends a payload to (canaries and wave hosts) is *to patch*;
* a host *failed* when its outcome is ``failed``, ``failed_applied``, ``reverted``,
  ``previously_reverted`` (a payload that failed there in an earlier run still counts: the plan
  holds such hosts, a stale plan must not open the gate) or ``unreachable``; a host
  whose outcome is still ``in_progress`` when the gate runs was lost during its wave (the
  play dropped it): it counts as ``unreachable``;
* the limit is ``budget_hosts`` failed hosts and/or ``budget_percent`` percent of the hosts to
  patch (rounded down); with both, the smaller wins; with neither, the limit is
  DEFAULT_BUDGET_HOSTS (0: an unattended run halts after the wave in which the first host
  failed); "no limit" is written out: ``unlimited`` for a variable lifts that variable's limit;
* the run stops when failures **exceed** the limit (a limit of 0 stops at the first failure);
* any failed canary stops the run, whatever the budget; so does any ``failed_applied`` host
  (a payload left APPLIED after failed checks: someone must look);
* a stop is final: once a gate said stop, every later gate says stop with the first reason;
* a host another run's transaction held (``held_by_other_run``: it met that run's host lock) is
  never a failure of this run and never counted in the budget; only a *canary* held so stops the
  run (this run has no evidence that the payload works on the canary's group), without counting it;
* a host whose payload expired between the plan and the apply (``pending_reboot`` from
  livepatch_rollout: its ``apply_until`` passed, nothing was applied) is not a failure either; it
  needs a reboot, and an expired *canary* stops the run the same way, for the same reason.

Hosts already in flight when the budget runs out finish their wave: the gate only decides
whether the *next* wave starts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.advisory_signature import summary_line
from ansible_collections.noreboot.xen.plugins.module_utils.sliced_rollout import budget_shares

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
# The health checks failed and the payload is still APPLIED (the revert failed, or
# revert_on_failure was false): it stops the run whatever the budget.
FAILED_APPLIED = 'failed_applied'
# Plan decisions: the payload failed on this host (or its group) before; left applied after failed checks.
HELD = 'held'
NEEDS_ATTENTION = 'needs_attention'
# Another run's transaction held the host's lock: this run left it to that run (not a failure).
HELD_BY_OTHER_RUN = 'held_by_other_run'

FAILURE_OUTCOMES = (FAILED, FAILED_APPLIED, REVERTED, PREVIOUSLY_REVERTED, UNREACHABLE)

# Plan decisions that never reach a wave, mapped to the summary's outcome for them.
DECISION_OUTCOMES = {
    'reboot': PENDING_REBOOT,
    'already_patched': ALREADY_PATCHED,
    'not_affected': NOT_AFFECTED,
    'not_xen': NOT_XEN,
    'unreachable': UNREACHABLE,
    HELD: HELD,
    NEEDS_ATTENTION: NEEDS_ATTENTION,
}

SUMMARY_COLUMNS = (PATCHED, REBOOTED, ALREADY_PATCHED, REVERTED, FAILED, FAILED_APPLIED, PENDING_REBOOT, UNREACHABLE,
                   NOT_STARTED, NOT_AFFECTED, NOT_XEN, HELD, NEEDS_ATTENTION, HELD_BY_OTHER_RUN)
# Outcomes after which the run exits non-zero even when every wave ran: someone must look.
ATTENTION_OUTCOMES = (FAILED_APPLIED, HELD, NEEDS_ATTENTION)

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


# With no budget variable set, the run tolerates no failed host: the wave in flight finishes,
# no further wave starts. An unattended run must halt on trouble unless the operator says otherwise.
DEFAULT_BUDGET_HOSTS = 0
UNLIMITED = 'unlimited'


def _unset(value):
    return value is None or (isinstance(value, str) and not value.strip())


def _is_unlimited(value):
    return isinstance(value, str) and value.strip().lower() == UNLIMITED


def _number(value, name, kind):
    if isinstance(value, bool):
        raise ValueError('%s must be %s or "unlimited", got %r' % (name, kind, value))
    try:
        return int(value) if kind == 'a host count' else float(value)
    except (TypeError, ValueError):
        raise ValueError('%s must be %s or "unlimited", got %r' % (name, kind, value))


def failure_limit(total_to_patch, budget_hosts=None, budget_percent=None):
    """How many failed hosts the run tolerates; None means no limit.

    ``budget_hosts`` is an absolute count, ``budget_percent`` a percentage (0-100) of
    ``total_to_patch`` rounded down. With both, the smaller applies; with neither,
    DEFAULT_BUDGET_HOSTS. ``"unlimited"`` lifts that variable's limit (both unlimited, or one
    unlimited and the other unset: no limit). Raises ValueError on a negative count, a
    percentage outside 0-100 or a value that is neither a number nor ``unlimited``.
    """
    return budget_in_force(total_to_patch, budget_hosts, budget_percent)['limit']


def budget_in_force(total_to_patch, budget_hosts=None, budget_percent=None):
    """``{'limit', 'source'}``: the limit of failure_limit and, in words, where it comes from."""
    limits = []
    sources = []
    if _unset(budget_hosts) and _unset(budget_percent):
        return dict(limit=DEFAULT_BUDGET_HOSTS, source='default: noreboot_xen_failure_budget_hosts and '
                    'noreboot_xen_failure_budget_percent unset')
    if _is_unlimited(budget_hosts):
        sources.append('noreboot_xen_failure_budget_hosts=unlimited')
    elif not _unset(budget_hosts):
        count = _number(budget_hosts, 'noreboot_xen_failure_budget_hosts', 'a host count')
        if count < 0:
            raise ValueError('noreboot_xen_failure_budget_hosts must be 0 or more, got %r' % budget_hosts)
        limits.append((count, 'noreboot_xen_failure_budget_hosts=%d' % count))
    if _is_unlimited(budget_percent):
        sources.append('noreboot_xen_failure_budget_percent=unlimited')
    elif not _unset(budget_percent):
        percent = _number(budget_percent, 'noreboot_xen_failure_budget_percent', 'a percentage')
        if percent < 0 or percent > 100:
            raise ValueError('noreboot_xen_failure_budget_percent must be between 0 and 100, got %r' % budget_percent)
        limits.append((int(int(total_to_patch) * percent // 100),
                       'noreboot_xen_failure_budget_percent=%s of %d host(s)' % (budget_percent, int(total_to_patch))))
    if not limits:
        return dict(limit=None, source=', '.join(sources))
    limit, source = min(limits, key=lambda item: item[0])
    return dict(limit=limit, source=source)


def _describe(host, outcome, detail):
    text = '%s (%s' % (host, outcome)
    if detail:
        text += ': %s' % detail
    return text + ')'


def _budget_checks(to_patch, reboot_hosts, budget_hosts, budget_percent):
    """``[(label, hosts, budget)]``: the limits the failures are held to.

    Without reboot hosts: one limit over the hosts to patch. With reboot hosts (the run also
    reboots), the two kinds keep separate limits so that enabling reboots never multiplies the
    live patch limit: a percentage is taken per kind (of the live patch hosts, of the reboot
    hosts); a host count is over the whole run (both kinds' failures together); with neither,
    the default count (0) is over the whole run.
    """
    reboot = sorted(set(reboot_hosts or ()) & set(to_patch))
    if not reboot:
        return [('', to_patch, budget_in_force(len(to_patch), budget_hosts, budget_percent))]
    rebooting = set(reboot)
    live = [h for h in to_patch if h not in rebooting]
    checks = []
    if not _unset(budget_hosts) or _unset(budget_percent):
        checks.append(('', to_patch, budget_in_force(len(to_patch), budget_hosts, None)))
    if not _unset(budget_percent):
        checks.append(('live patch ', live, budget_in_force(len(live), None, budget_percent)))
        checks.append(('reboot ', reboot, budget_in_force(len(reboot), None, budget_percent)))
    return checks


def whole_run_limit(live, reboot, budget_hosts=None, budget_percent=None):
    """``{'limit', 'source'}`` of the whole run's budget over ``live`` live patch and ``reboot`` reboot hosts to
    patch (counts of the whole plan). One limit for both kinds: the strictest of _budget_checks' limits (a host
    count over both kinds; a percentage of each kind), so a run cut into jobs never allows more than the whole."""
    live, reboot = int(live), int(reboot)
    hosts = ['l%d' % i for i in range(live)] + ['r%d' % i for i in range(reboot)]
    checks = _budget_checks(hosts, hosts[live:], budget_hosts, budget_percent)
    limited = [(b['limit'], (label.strip() + ': ' if label else '') + b['source'])
               for label, _hosts, b in checks if b['limit'] is not None]
    if not limited:
        return dict(limit=None, source='; '.join(b['source'] for _l, _h, b in checks))
    limit, source = min(limited, key=lambda item: item[0])
    return dict(limit=limit, source=source)


def run_budget(plan, budget_hosts=None, budget_percent=None, with_reboots=False, earlier=None):
    """The failure budget of a job that runs a phase (or a slice of a phase) of an approved plan, or None for a
    run of the whole plan in one job (the gate then computes it over its own hosts, as always).

    The whole run's limit (``whole_run_limit`` over the whole plan's hosts to patch, ``run_hosts_to_patch``),
    minus what the canary phase spent (``earlier``: the canary job's summary, for the phase after_canary; it
    must be of the same plan), and for one slice of a sliced job (``plan['slice']``) its share of what is
    left (module_utils/sliced_rollout.budget_shares, by each slice's remaining hosts to patch).

    Returns ``{'limit', 'source', 'run_limit', 'spent', 'remaining', 'shares', 'slice'}``; ``limit`` is this
    job's (None: no limit).
    """
    phase = plan.get('phase') or 'all'
    if phase == 'all' or not isinstance(plan.get('run_hosts_to_patch'), dict):
        return None
    counts = plan['run_hosts_to_patch']
    whole = whole_run_limit(counts.get('live', 0), counts.get('reboot', 0) if with_reboots else 0,
                            budget_hosts, budget_percent)
    spent, spent_source = 0, 'nothing spent before this job (phase %s)' % phase
    if phase == 'after_canary':
        if not isinstance(earlier, dict) or not earlier:
            spent_source = ('no canary summary given (noreboot_xen_rollout_summary), the canary phase counted as '
                            'having spent 0')
        elif earlier.get('phase') != 'canary' or earlier.get('plan_fingerprint') != plan.get('plan_fingerprint'):
            raise ValueError('noreboot_xen_rollout_summary must be the summary of the canary job of the same approved '
                             'plan (phase canary, plan %s), got one of phase %s, plan %s; pass the canary job\'s artifact '
                             'as it came, or leave it out. Nothing was changed.'
                             % (str(plan.get('plan_fingerprint'))[:12], earlier.get('phase'),
                                str(earlier.get('plan_fingerprint'))[:12]))
        else:
            spent = int(((earlier.get('budget') or {}).get('failures')) or 0)
            spent_source = 'the canary job (run %s) spent %d' % (earlier.get('run_id'), spent)
    remaining = None if whole['limit'] is None else max(whole['limit'] - spent, 0)
    source = 'whole run: %s -> %s; %s -> %s left' % (
        whole['source'], UNLIMITED if whole['limit'] is None else whole['limit'], spent_source,
        UNLIMITED if remaining is None else remaining)
    result = dict(limit=remaining, run_limit=whole['limit'], spent=spent, remaining=remaining, shares=None,
                  slice=None, source=source)
    split = plan.get('slice')
    if split:
        weights = [c.get('live', 0) + (c.get('reboot', 0) if with_reboots else 0) for c in split['hosts_to_patch']]
        shares = budget_shares(remaining, weights)
        number = split['number']
        result.update(limit=shares[number - 1], shares=shares, slice=dict(number=number, count=split['count']),
                      source='%s; slice %d of %d: share %s (shares %s by remaining hosts %s, largest remainder)' % (
                          source, number, split['count'], UNLIMITED if remaining is None else shares[number - 1],
                          '/'.join(UNLIMITED if x is None else str(x) for x in shares),
                          '/'.join(str(w) for w in weights)))
    return result


def evaluate_gate(to_patch, outcomes, canaries=(), budget_hosts=None, budget_percent=None, previous=None,
                  details=None, reboot_hosts=(), fixed_budget=None):
    """Decide whether the next wave may start.

    ``to_patch``: the hosts the plan sends a payload to; ``outcomes``: host -> outcome for the
    hosts whose wave has run (missing or None: not started); ``canaries``: the canary hosts;
    ``previous``: the last gate's result (a stop is final); ``details``: optional host -> short
    text (failed checks) used in the reason; ``reboot_hosts``: the hosts of ``to_patch`` that
    are rebooted rather than live patched (their limits are kept apart, see _budget_checks);
    ``fixed_budget``: this job's budget of ``run_budget`` (a phase or slice of an approved plan): one limit
    over its hosts, instead of the one computed from the budget variables over ``to_patch``.

    Returns ``{'proceed', 'reason', 'failures', 'failed_hosts', 'limit', 'budget_source', 'to_patch'}``.
    """
    details = details or {}
    outcomes = outcomes or {}
    to_patch = sorted(set(to_patch or []))
    if fixed_budget:
        checks = [('', to_patch, dict(limit=fixed_budget.get('limit'), source=fixed_budget.get('source')))]
    else:
        checks = _budget_checks(to_patch, reboot_hosts, budget_hosts, budget_percent)
    budget = dict(limit=checks[0][2]['limit'], source='; '.join(
        ('%s%s' % (label.strip() + ': ' if label else '', b['source'])) if len(checks) > 1 else b['source']
        for label, _hosts, b in checks))
    failed_hosts = []
    for host in to_patch:
        outcome = effective_outcome(outcomes.get(host))
        if outcome in FAILURE_OUTCOMES:
            failed_hosts.append(dict(host=host, outcome=outcome, detail=details.get(host)))
    result = dict(proceed=True, reason=None, failures=len(failed_hosts), failed_hosts=failed_hosts,
                  limit=budget['limit'], budget_source=budget['source'], to_patch=len(to_patch))
    if previous and not previous.get('proceed', True):
        result.update(proceed=False, reason=previous.get('reason'))
        return result
    left_applied = [f for f in failed_hosts if f['outcome'] == FAILED_APPLIED]
    if left_applied:
        result.update(proceed=False, reason='payload left APPLIED after failed checks: %s; no wave starts until '
                      'someone reverts it or reboots the host' % ', '.join(
                          _describe(f['host'], f['outcome'], f['detail']) for f in left_applied))
        return result
    canary_set = set(canaries or ())
    failed_canaries = [f for f in failed_hosts if f['host'] in canary_set]
    if failed_canaries:
        result.update(proceed=False, reason='canary failed: %s; no wave starts after a failed canary'
                      % ', '.join(_describe(f['host'], f['outcome'], f['detail']) for f in failed_canaries))
        return result
    held_canaries = [h for h in sorted(canary_set) if outcomes.get(h) == HELD_BY_OTHER_RUN]
    if held_canaries:
        result.update(proceed=False, reason='canary held by another run: %s; this run has no evidence that the payload '
                      'works on its group, so no wave starts (not a failure of this run: run it again once that run '
                      'ended)' % ', '.join('%s (%s)' % (h, details.get(h) or 'run unknown') for h in held_canaries))
        return result
    # A canary whose payload expired between the plan and the apply (livepatch_rollout: apply_until passed, nothing
    # applied) proves nothing about its group; a host whose clock lags could still apply it after the canary did not.
    expired_canaries = [h for h in sorted(set(canaries or ())) if h not in set(reboot_hosts or ())
                        and outcomes.get(h) == PENDING_REBOOT]
    if expired_canaries:
        result.update(proceed=False, reason='canary not patched, its payload expired since the plan: %s; this run has no '
                      'evidence that the payload works on its group, so no wave starts (not a failure: run again, and '
                      'a new plan sends these hosts to the reboot fallback)' % ', '.join(
                          _describe(h, PENDING_REBOOT, details.get(h)) for h in expired_canaries))
        return result
    for label, hosts, kind_budget in checks:
        kind_hosts = set(hosts)
        kind_failed = [f for f in failed_hosts if f['host'] in kind_hosts]
        limit = kind_budget['limit']
        if limit is not None and len(kind_failed) > limit:
            result.update(proceed=False, reason='failure budget exceeded: %d failed %shost(s) of %d to patch, the '
                          'budget allows %s (%s): %s' % (len(kind_failed), label, len(hosts), limit,
                                                         kind_budget['source'],
                                                         ', '.join(_describe(f['host'], f['outcome'], f['detail'])
                                                                   for f in kind_failed)))
            return result
    return result


def host_outcome(decision, outcome, planned):
    """The summary outcome of one host: its rollout outcome when it was planned for a payload
    (``not_started`` when its wave never ran, ``unreachable`` when it was lost), else what its
    plan decision means."""
    if planned:
        outcome = effective_outcome(outcome)
        if outcome == PREVIOUSLY_REVERTED:
            return HELD
        return outcome or NOT_STARTED
    return DECISION_OUTCOMES.get(decision, decision or NOT_STARTED)


def summarize(plan_hosts, outcomes, waves=None, wave_times=None, gate=None, details=None, run_id=None, holders=None):
    """Build the run summary.

    ``plan_hosts``: host -> ``{'decision', 'wave', 'reason'}`` with ``wave`` the label of the wave that
    applies its payload (``wave_1``...) or None for hosts that get no payload, ``reason`` the
    plan's reason (optional); ``outcomes``: host -> outcome; ``waves``: ``[{'label', 'kind'}]`` in
    run order; ``wave_times``: label -> ``{'start', 'end'}`` (epoch seconds); ``gate``: the last
    gate result; ``details``: host -> failed checks / message. A ``held`` or ``needs_attention``
    host without a detail of this run gets the plan's reason as its detail (why it is held, which
    run saw the payload fail, how to release it): no module ran on it. ``holders``: host -> the run
    id of another run that holds it, for the hosts whose outcome is ``held_by_other_run`` and for
    hosts left to another run before the plan (those are in no wave and not in ``plan_hosts``).

    Returns ``{'run_id', 'stopped', 'stop_reason', 'budget', 'totals', 'waves': [...], 'hosts',
    'needs_reboot', 'state_unknown', 'held_by_other_run'}`` where each wave row counts ``hosts`` and every
    SUMMARY_COLUMNS outcome, with ``kind`` and ``elapsed_s``; hosts in no wave are counted in a
    last row, ``not_in_a_wave``. ``needs_reboot`` lists the hosts still exposed that only a reboot
    can fix today (pending_reboot, reverted, failed, held); ``state_unknown`` those that must be
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
        detail = details.get(host)
        if not detail and outcome in (HELD, NEEDS_ATTENTION):
            detail = entry.get('reason') or None
        hosts[host] = dict(decision=entry.get('decision'), wave=label, outcome=outcome, detail=detail)
    known = set(w['label'] for w in waves)
    ordered = [w for w in waves if w['label'] in rows] + [
        dict(label=label, kind='none' if label == 'not_in_a_wave' else None)
        for label in sorted(rows) if label not in known]
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
    needs_reboot = sorted(h for h, e in hosts.items() if e['outcome'] in (PENDING_REBOOT, REVERTED, FAILED, HELD))
    unknown = sorted(h for h, e in hosts.items() if e['outcome'] in (UNREACHABLE, NOT_STARTED, 'undecided'))
    held = sorted(h for h, e in hosts.items() if e['outcome'] == HELD)
    attention = sorted(h for h, e in hosts.items() if e['outcome'] in (FAILED_APPLIED, NEEDS_ATTENTION))
    holders = holders or {}
    other_runs = dict((h, holders.get(h)) for h, e in hosts.items() if e['outcome'] == HELD_BY_OTHER_RUN)
    other_runs.update((h, run) for h, run in holders.items() if h not in hosts)
    return dict(
        run_id=run_id,
        held_by_other_run=other_runs,
        held=held,
        needs_attention=attention,
        attention=bool(held or attention),
        needs_reboot=needs_reboot,
        state_unknown=unknown,
        stopped=not gate.get('proceed', True),
        stop_reason=gate.get('reason'),
        budget=dict(limit=gate.get('limit'), failures=gate.get('failures', 0), to_patch=gate.get('to_patch'),
                    source=gate.get('budget_source')),
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
    lines.append('failures: %s of %s host(s) to patch, budget %s%s' % (
        budget.get('failures', 0), budget.get('to_patch'), UNLIMITED if budget.get('limit') is None
        else '%s failed host(s)' % budget.get('limit'), ' (%s)' % budget['source'] if budget.get('source') else ''))
    if summary.get('needs_reboot'):
        lines.append('needs a reboot (%d): %s' % (len(summary['needs_reboot']), ', '.join(summary['needs_reboot'])))
    if summary.get('held'):
        lines.append('held (%d): %s (a payload failed there or on its group before, see the reasons; released only '
                     'by noreboot_xen_retry_failed)' % (len(summary['held']), ', '.join(summary['held'])))
    if summary.get('needs_attention'):
        lines.append('needs attention (%d): %s (payload left APPLIED after failed checks: revert it or reboot)'
                     % (len(summary['needs_attention']), ', '.join(summary['needs_attention'])))
    if summary.get('held_by_other_run'):
        other = summary['held_by_other_run']
        lines.append('held by another run (%d): %s (not failures of this run: left to that run)' % (
            len(other), ', '.join('%s (run %s)' % (h, other[h] or 'unknown') for h in sorted(other))))
    if summary.get('state_unknown'):
        lines.append('look again (%d): %s' % (len(summary['state_unknown']), ', '.join(summary['state_unknown'])))
    lines.extend(summary_line(signature) for signature in summary.get('signatures') or [])
    if summary.get('stopped'):
        lines.append('STOPPED: %s' % summary.get('stop_reason'))
    else:
        lines.append('completed: every planned wave ran')
    return '\n'.join(lines)
