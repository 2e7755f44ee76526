# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gate before each reboot wave, and the reboot part of the run summary (pure Python).

Reboot waves run after the live patch waves under the **same** failure budget
(rollout_budget.evaluate_gate), the two kinds' limits kept apart: a percentage is taken per
kind (of the live patch hosts, of the reboot hosts), a host count over the whole run; a stop
is final for both kinds of wave. On top of the budget:

* a guest that is not running again (outcome ``guests_not_restored``), or a host that did
  not come back while its guests sit on its disk (``unreachable`` with stranded guests),
  stops the run whatever the budget: no further host is rebooted until someone looks;
* so does a reboot host that did not come back at all (``unreachable``, ``in_progress`` or
  ``lost``: lost during its wave) or came back on a build that is not a fixed one
  (``wrong_build``), guests or not: the fixed build may not boot, or not boot right, on that
  hardware, and the next wave would meet the same;
* a failed reboot canary (the hosts of the plan's reboot waves marked ``canary``, one per fixed
  build and hardware class) stops the run like a failed live patch canary;
* a failure domain never has more hosts down than its cap (``domains[].max_per_wave`` of the
  plan): hosts of earlier reboot waves that did not come back still count as down, so the
  next wave may not take the domain over its cap.

Reboot outcomes (fact ``reboot_fallback_outcome`` of the role noreboot.xen.reboot_fallback):
``rebooted``, ``reboot_required``, ``refused``, ``not_needed``, ``failed``, ``unreachable``,
``guests_not_restored``, ``wrong_build``, and ``in_progress`` while (or if lost during) its wave
(``lost`` once the controller has accounted for it: run_state.collect_outcomes).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import where
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb

REBOOTED = 'rebooted'
GUESTS_NOT_RESTORED = 'guests_not_restored'
REBOOT_FAILURES = ('failed', 'unreachable', GUESTS_NOT_RESTORED, 'lost', 'wrong_build')
# How the shared budget counts a reboot outcome.
BUDGET_OUTCOME = {
    REBOOTED: rb.PATCHED,
    'failed': rb.FAILED,
    'unreachable': rb.UNREACHABLE,
    GUESTS_NOT_RESTORED: rb.FAILED,
    'in_progress': rb.IN_PROGRESS,
    'lost': rb.UNREACHABLE,
    'wrong_build': rb.FAILED,
}
DOWN_OUTCOMES = ('unreachable', 'in_progress', 'lost')
# Outcomes of a reboot host that stop the run whatever the budget: it did not come back, or not on a fixed build.
NOT_BACK_OUTCOMES = DOWN_OUTCOMES + ('wrong_build',)


LOST = 'lost'
# Guest states of the manifest that mean the guest is back, or never left.
BACK_STATES = ('restored', 'started', 'running', 'on_peer')


def account_lost(outcome, result, progress):
    """``(outcome, result)`` of a reboot host, a lost one accounted for. A host still
    ``in_progress`` once its wave is over dropped out of the play mid-role (unreachable: Ansible
    runs neither the role's rescue nor its report); with the role's ``reboot_fallback_progress``
    (``phase``, ``guests`` as known then) it becomes ``lost``, its result saying in which phase
    and, as ``stranded``, which guests were moved where (or that they are unknown when it was lost
    while moving them). Other outcomes are returned as they are."""
    if outcome != 'in_progress' or not isinstance(progress, dict):
        return outcome, result
    phase = progress.get('phase') or 'unknown'
    guests = [g for g in progress.get('guests') or [] if isinstance(g, dict)]
    moved = [g for g in guests if g.get('state') not in BACK_STATES]
    stranded = [where(g) for g in moved]
    if not guests and phase == 'evacuate':
        stranded = ['guests unknown: the host was lost while moving them; its guest manifest guests.json says where '
                    'each one is']
    msg = ('lost during the %s phase: the host dropped out of the play, its rescue and report did not run%s; its guest '
           'manifest and ledger let the next run finish it' % (
               phase, ' (guests moved: %s)' % ', '.join(g.get('name') or '?' for g in moved) if moved else ''))
    return LOST, dict(result or {}, outcome=LOST, phase=phase, msg=msg, stranded=stranded, guests=guests)


def reboot_waves(plan):
    return [w for w in plan.get('waves') or [] if w.get('kind') == 'reboot']


def evaluate(plan, live_outcomes, reboot_outcomes, stranded=None, next_hosts=None, budget_hosts=None,
             budget_percent=None, previous=None, details=None, fixed_budget=None):
    """May the next reboot wave start? Returns the gate dict of rollout_budget.evaluate_gate
    (``proceed``, ``reason``, ``failures``, ``failed_hosts``, ``limit``, ``to_patch``).

    ``live_outcomes``: host -> live patch outcome (hosts of canary/livepatch waves);
    ``reboot_outcomes``: host -> reboot outcome (hosts of reboot waves); ``stranded``: host ->
    list of guest descriptions left where they are; ``next_hosts``: the hosts of the wave
    about to start (for the failure domain cap).
    """
    stranded = stranded or {}
    details = dict(details or {})
    waves = plan.get('waves') or []
    live = [h for w in waves if w.get('kind') in ('canary', 'livepatch') for h in w['hosts']]
    canaries = [h for w in waves if w.get('kind') == 'canary' or (w.get('kind') == 'reboot' and w.get('canary'))
                for h in w['hosts']]
    rebooting = [h for w in reboot_waves(plan) for h in w['hosts']]
    outcomes = dict((h, live_outcomes.get(h)) for h in live)
    for host in rebooting:
        outcomes[host] = BUDGET_OUTCOME.get(reboot_outcomes.get(host))
        if stranded.get(host):
            details[host] = 'guests left: %s' % '; '.join(stranded[host])
    gate = rb.evaluate_gate(live + rebooting, outcomes, canaries=canaries, budget_hosts=budget_hosts,
                            budget_percent=budget_percent, previous=previous, details=details,
                            reboot_hosts=rebooting, fixed_budget=fixed_budget)
    if previous and not previous.get('proceed', True):
        return gate
    # Guests not running again are said first, before a canary or budget stop: they are what the
    # operator must act on.
    lost = []
    for host in sorted(rebooting):
        outcome = reboot_outcomes.get(host)
        if outcome == GUESTS_NOT_RESTORED or (outcome in DOWN_OUTCOMES and stranded.get(host)):
            lost.append('%s (%s: %s)' % (host, outcome, '; '.join(stranded.get(host) or ['see its guest manifest'])))
    if lost:
        gate.update(proceed=False, reason='guests are not running again: %s; no further host is rebooted until '
                    'they are brought back' % ', '.join(lost))
        return gate
    if not gate['proceed']:
        return gate
    not_back = ['%s (%s%s)' % (host, reboot_outcomes.get(host), ': %s' % details[host] if details.get(host) else '')
                for host in sorted(rebooting) if reboot_outcomes.get(host) in NOT_BACK_OUTCOMES]
    if not_back:
        gate.update(proceed=False, reason='reboot host(s) did not come back, or came back on a build that is not the '
                    'fixed one: %s; no further host is rebooted, whatever the budget (look at them, then run the '
                    'same command again)' % ', '.join(not_back))
        return gate
    decisions = plan.get('decisions') or {}
    caps = dict((d['name'], d.get('max_per_wave')) for d in plan.get('domains') or [])

    def domain(host):
        return (decisions.get(host) or {}).get('failure_domain') or 'unassigned'

    down = {}
    for host in rebooting:
        if reboot_outcomes.get(host) in DOWN_OUTCOMES:
            down.setdefault(domain(host), []).append(host)
    coming = {}
    for host in next_hosts or []:
        coming.setdefault(domain(host), []).append(host)
    over = []
    for name in sorted(coming):
        cap = caps.get(name)
        if cap is None:
            continue
        if len(down.get(name, [])) + len(coming[name]) > cap:
            over.append('failure domain %s: %s still down, the wave would take %s down too, the cap is %d'
                        % (name, ', '.join(sorted(down.get(name, []))), ', '.join(coming[name]), cap))
    if over:
        gate.update(proceed=False, reason='; '.join(over))
    return gate


# Hosts an earlier run left unfinished (plan decision finish_reboot), finished before any wave
# (role noreboot.xen.reboot_fallback, tasks_from finish). Their outcomes: ``rebooted`` (a fixed build
# runs, every guest runs again), ``not_rebooted`` (every guest runs again, the build is not a
# fixed one: still needs its reboot), ``guests_not_restored``, ``failed``, ``would_finish`` (check
# mode), ``in_progress`` while (or if lost during) the finish.
FINISH_REBOOT = 'finish_reboot'
FINISH_WAVE = 'finish'
FINISH_FAILURES = ('failed', GUESTS_NOT_RESTORED, 'unreachable', 'in_progress', 'lost')


def finish_hosts(plan):
    """The hosts the plan decides ``finish_reboot`` for, by name."""
    return sorted(host for host, decision in (plan.get('decisions') or {}).items()
                  if (decision or {}).get('decision') == FINISH_REBOOT)


def evaluate_finish(finish_outcomes, stranded=None, previous=None):
    """The gate after the hosts an earlier run left unfinished were finished: no wave starts
    when one of them did not end with every guest running again (or was not reached: outcome
    None). Returns ``previous`` (or {}) when they all did; a stop is final."""
    stranded = stranded or {}
    if previous and not previous.get('proceed', True):
        return previous
    bad = []
    for host in sorted(finish_outcomes):
        outcome = finish_outcomes[host]
        if outcome is None or outcome in FINISH_FAILURES:
            bad.append(dict(host=host, outcome=outcome or 'not_reached',
                            detail='; '.join(stranded.get(host) or []) or None))
    if not bad:
        return dict(previous or {})
    return dict(proceed=False, failures=len(bad), failed_hosts=bad, limit=None, to_patch=None,
                reason='an earlier run left guests out and they are not all back: %s; no wave starts until they '
                'are (look at each host\'s guests.json, then run the same command again)'
                % ', '.join('%s (%s%s)' % (b['host'], b['outcome'], ': %s' % b['detail'] if b['detail'] else '')
                            for b in bad))


def summarize(plan, reboot_outcomes, results=None, finish_outcomes=None, finish_results=None):
    """Rows of the reboot hosts: ``[{host, wave, outcome, msg, stranded, build_id_after}]`` in wave order, plus counts;
    the hosts an earlier run left unfinished first (wave ``finish``)."""
    results = results or {}
    rows = []
    counts = {}
    finish_results = finish_results or {}
    for host in sorted(finish_outcomes or {}):
        outcome = finish_outcomes[host] or 'not_started'
        result = finish_results.get(host) or {}
        rows.append(dict(host=host, wave=FINISH_WAVE, outcome=outcome, msg=result.get('msg') or '',
                         stranded=list(result.get('stranded') or [])))
        counts[outcome] = counts.get(outcome, 0) + 1
    for wave in reboot_waves(plan):
        for host in wave['hosts']:
            outcome = reboot_outcomes.get(host) or 'not_started'
            result = results.get(host) or {}
            rows.append(dict(host=host, wave=wave['number'], outcome=outcome, msg=result.get('msg') or '',
                             stranded=list(result.get('stranded') or []), build_id_after=result.get('build_id_after')))
            counts[outcome] = counts.get(outcome, 0) + 1
    return dict(hosts=rows, counts=counts)


# Reboot outcomes that make a run fail at its end: the host was not fixed with every guest running
# again, or is not accounted for (left in_progress: lost during its wave, or unreachable).
UNSETTLED = ('failed', 'unreachable', GUESTS_NOT_RESTORED, 'in_progress', 'lost', 'wrong_build')


def failures(summary, refused=False):
    """The rows of a summary (summarize) that make the run fail: reboot hosts with an UNSETTLED
    outcome (and ``refused`` ones when ``refused``), and hosts an earlier run left unfinished that
    were not finished (FINISH_FAILURES, or never reached)."""
    unsettled = UNSETTLED + (('refused',) if refused else ())
    bad = []
    for row in summary.get('hosts') or []:
        if row.get('wave') == FINISH_WAVE:
            if row.get('outcome') in FINISH_FAILURES + ('not_started',):
                bad.append(row)
        elif row.get('outcome') in unsettled:
            bad.append(row)
    return bad


def format_summary(summary):
    lines = ['reboot fallback: %s' % (', '.join('%s %d' % kv for kv in sorted(summary['counts'].items())) or 'no host')]
    for row in summary['hosts']:
        line = '  wave %-3s %-24s %-20s %s' % (row['wave'], row['host'], row['outcome'], row['msg'])
        lines.append(line.rstrip())
        for guest in row['stranded']:
            lines.append('      guest %s' % guest)
    return '\n'.join(lines)
