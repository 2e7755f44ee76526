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
* a failure domain never has more hosts down than its cap (``domains[].max_per_wave`` of the
  plan): hosts of earlier reboot waves that did not come back still count as down, so the
  next wave may not take the domain over its cap.

Reboot outcomes (fact ``reboot_fallback_outcome`` of the role noreboot.xen.reboot_fallback):
``rebooted``, ``reboot_required``, ``refused``, ``not_needed``, ``failed``, ``unreachable``,
``guests_not_restored``, and ``in_progress`` while (or if lost during) its wave.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils import rollout_budget as rb

REBOOTED = 'rebooted'
GUESTS_NOT_RESTORED = 'guests_not_restored'
REBOOT_FAILURES = ('failed', 'unreachable', GUESTS_NOT_RESTORED)
# How the shared budget counts a reboot outcome.
BUDGET_OUTCOME = {
    REBOOTED: rb.PATCHED,
    'failed': rb.FAILED,
    'unreachable': rb.UNREACHABLE,
    GUESTS_NOT_RESTORED: rb.FAILED,
    'in_progress': rb.IN_PROGRESS,
}
DOWN_OUTCOMES = ('unreachable', 'in_progress')


def where(guest):
    """One guest's whereabouts in words: ``web1 (saved to /var/.../web1.save, state saved: error)``."""
    guest = guest or {}
    action = guest.get('action')
    if action == 'save':
        place = 'saved to %s' % guest.get('file')
    elif action == 'migrate':
        place = 'migrated to %s' % guest.get('peer')
    elif action == 'shutdown':
        place = 'shut down, config %s' % guest.get('config')
    else:
        place = action or 'unknown'
    text = '%s (%s, state %s' % (guest.get('name'), place, guest.get('state'))
    if guest.get('error'):
        text += ': %s' % guest['error']
    return text + ')'


def reboot_waves(plan):
    return [w for w in plan.get('waves') or [] if w.get('kind') == 'reboot']


def evaluate(plan, live_outcomes, reboot_outcomes, stranded=None, next_hosts=None, budget_hosts=None,
             budget_percent=None, previous=None, details=None):
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
    canaries = [h for w in waves if w.get('kind') == 'canary' for h in w['hosts']]
    rebooting = [h for w in reboot_waves(plan) for h in w['hosts']]
    outcomes = dict((h, live_outcomes.get(h)) for h in live)
    for host in rebooting:
        outcomes[host] = BUDGET_OUTCOME.get(reboot_outcomes.get(host))
        if stranded.get(host):
            details[host] = 'guests left: %s' % '; '.join(stranded[host])
    gate = rb.evaluate_gate(live + rebooting, outcomes, canaries=canaries, budget_hosts=budget_hosts,
                            budget_percent=budget_percent, previous=previous, details=details,
                            reboot_hosts=rebooting)
    if not gate['proceed']:
        return gate
    lost = []
    for host in sorted(rebooting):
        outcome = reboot_outcomes.get(host)
        if outcome == GUESTS_NOT_RESTORED or (outcome in DOWN_OUTCOMES and stranded.get(host)):
            lost.append('%s (%s: %s)' % (host, outcome, '; '.join(stranded.get(host) or ['see its guest manifest'])))
    if lost:
        gate.update(proceed=False, reason='guests are not running again: %s; no further host is rebooted until '
                    'they are brought back' % ', '.join(lost))
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


def summarize(plan, reboot_outcomes, results=None):
    """Rows of the reboot hosts: ``[{host, wave, outcome, msg, stranded}]`` in wave order, plus counts."""
    results = results or {}
    rows = []
    counts = {}
    for wave in reboot_waves(plan):
        for host in wave['hosts']:
            outcome = reboot_outcomes.get(host) or 'not_started'
            result = results.get(host) or {}
            rows.append(dict(host=host, wave=wave['number'], outcome=outcome, msg=result.get('msg') or '',
                             stranded=list(result.get('stranded') or [])))
            counts[outcome] = counts.get(outcome, 0) + 1
    return dict(hosts=rows, counts=counts)


def format_summary(summary):
    lines = ['reboot fallback: %s' % (', '.join('%s %d' % kv for kv in sorted(summary['counts'].items())) or 'no host')]
    for row in summary['hosts']:
        line = '  wave %-3s %-24s %-20s %s' % (row['wave'], row['host'], row['outcome'], row['msg'])
        lines.append(line.rstrip())
        for guest in row['stranded']:
            lines.append('      guest %s' % guest)
    return '\n'.join(lines)
