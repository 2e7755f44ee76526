# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A payload that expired between the plan and the apply (livepatch_rollout outcome pending_reboot, issue 19):
not a failure, the host needs a reboot, and an expired canary stops the run (no evidence for its group)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.filter.rollout_gate_summary import rollout_gate, rollout_summary

PLAN = {
    'waves': [
        {'number': 1, 'kind': 'canary', 'hosts': ['c1']},
        {'number': 2, 'kind': 'livepatch', 'hosts': ['l1', 'l2']},
    ],
    'decisions': dict((h, {'decision': 'livepatch'}) for h in ('c1', 'l1', 'l2')),
}
EXPIRED_MSG = 'xsa999 was not applied: it may be applied only until 2027-01-31T00:00:00Z (apply_until, ...)'


def hostvars(outcomes):
    found = dict((h, {}) for h in PLAN['decisions'])
    for host, outcome in outcomes.items():
        found[host]['livepatch_outcome'] = outcome
        found[host]['livepatch_result'] = dict(msg=EXPIRED_MSG if outcome == 'pending_reboot' else '', failed_checks=[])
    return found


def test_an_expired_canary_stops_the_run_without_counting_as_a_failure():
    gate = rollout_gate(PLAN, hostvars(dict(c1='pending_reboot')), budget_hosts='unlimited')
    assert gate['proceed'] is False and gate['failures'] == 0 and gate['failed_hosts'] == []
    assert gate['reason'].startswith('canary not patched, its payload expired since the plan: c1'), gate['reason']
    assert 'no evidence' in gate['reason'] and 'reboot fallback' in gate['reason']
    summary = rollout_summary(PLAN, hostvars(dict(c1='pending_reboot')), gate=gate, run_id='run-a')
    assert summary['hosts']['c1']['outcome'] == 'pending_reboot' and summary['needs_reboot'] == ['c1']
    assert summary['totals']['failed'] == 0


def test_an_expired_wave_host_is_not_a_failure_but_needs_a_reboot():
    outcomes = dict(c1='patched', l1='pending_reboot', l2='patched')
    gate = rollout_gate(PLAN, hostvars(outcomes), budget_hosts=0)
    assert gate['proceed'] is True and gate['failures'] == 0, gate['reason']
    summary = rollout_summary(PLAN, hostvars(outcomes), gate=gate, run_id='run-a')
    assert summary['needs_reboot'] == ['l1'] and summary['totals']['pending_reboot'] == 1
    assert summary['attention'] is False
