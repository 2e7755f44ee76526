# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host another run holds is never a failure of this run (issue 13 item 11): the gate and the summary."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.filter.rollout_gate_summary import rollout_gate, rollout_summary, rollout_summary_table

# Canary c1, then l1..l4.
PLAN = {
    'waves': [
        {'number': 1, 'kind': 'canary', 'hosts': ['c1']},
        {'number': 2, 'kind': 'livepatch', 'hosts': ['l1', 'l2', 'l3', 'l4']},
    ],
    'decisions': dict([('c1', {'decision': 'livepatch'})] + [('l%d' % i, {'decision': 'livepatch'}) for i in range(1, 5)]),
}
HELD_MSG = ('host is locked by run run-b (pid 77, since 2026-11-27T23:00:00Z) (lock file /var/lib/noreboot-xen/rollout.lock): '
            'another rollout transaction is working on this host; not a failure of this run')


def hostvars(outcomes):
    found = dict((h, {}) for h in PLAN['decisions'])
    for host, outcome in outcomes.items():
        found[host]['livepatch_outcome'] = outcome
        result = dict(msg='', failed_checks=[])
        if outcome == 'held_by_other_run':
            result.update(msg=HELD_MSG, held_by_run='run-b')
        found[host]['livepatch_result'] = result
    return found


def test_a_host_held_by_another_run_is_not_a_failure_nor_a_reboot():
    outcomes = dict(c1='patched', l1='patched', l2='held_by_other_run', l3='patched', l4='patched')
    gate = rollout_gate(PLAN, hostvars(outcomes), budget_hosts=0)
    assert gate['proceed'] is True and gate['failures'] == 0, gate['reason']
    summary = rollout_summary(PLAN, hostvars(outcomes), gate=gate, run_id='run-a')
    assert summary['stopped'] is False and summary['attention'] is False
    assert summary['needs_reboot'] == [] and summary['state_unknown'] == []
    assert summary['hosts']['l2']['outcome'] == 'held_by_other_run'
    assert summary['held_by_other_run'] == {'l2': 'run-b'}
    assert summary['totals']['held_by_other_run'] == 1 and summary['totals']['failed'] == 0
    table = rollout_summary_table(summary)
    assert 'held by another run (1): l2 (run run-b)' in table and 'needs a reboot' not in table


def test_hosts_left_to_another_run_at_the_start_are_in_the_summary():
    outcomes = dict(c1='patched', l1='patched', l2='patched', l3='patched', l4='patched')
    gate = rollout_gate(PLAN, hostvars(outcomes))
    summary = rollout_summary(PLAN, hostvars(outcomes), gate=gate, run_id='run-a', left_to_other_runs={'x9': 'run-b'})
    assert summary['held_by_other_run'] == {'x9': 'run-b'} and summary['needs_reboot'] == []
    assert 'x9' not in summary['hosts'] and summary['totals']['hosts'] == 5


def test_a_canary_held_by_another_run_stops_the_run_without_counting_as_a_failure():
    outcomes = dict(c1='held_by_other_run')
    gate = rollout_gate(PLAN, hostvars(outcomes), budget_hosts='unlimited')
    assert gate['proceed'] is False and gate['failures'] == 0 and gate['failed_hosts'] == []
    assert gate['reason'].startswith('canary held by another run: c1 (run run-b)'), gate['reason']
    summary = rollout_summary(PLAN, hostvars(outcomes), gate=gate, run_id='run-a')
    assert summary['needs_reboot'] == [] and summary['held_by_other_run'] == {'c1': 'run-b'}
