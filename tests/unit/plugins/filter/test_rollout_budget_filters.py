# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling run's gate and summary filters, with and without the plan's reboot waves."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter.rollout_gate_summary import rollout_gate, rollout_summary
from ansible_collections.noreboot.xen.plugins.filter.rollout_run import rollout_plan_hosts
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb

# Canary c1, live patch wave l1..l8, reboot waves r1 r2 (domain rack-a, cap 1) and r3.
PLAN = {
    'waves': [
        {'number': 1, 'kind': 'canary', 'hosts': ['c1']},
        {'number': 2, 'kind': 'livepatch', 'hosts': ['l%d' % i for i in range(1, 9)]},
        {'number': 3, 'kind': 'reboot', 'hosts': ['r1']},
        {'number': 4, 'kind': 'reboot', 'hosts': ['r2', 'r3']},
    ],
    'decisions': dict([('c1', {'decision': 'livepatch'}), ('n1', {'decision': 'not_affected'})]
                      + [('l%d' % i, {'decision': 'livepatch'}) for i in range(1, 9)]
                      + [(h, {'decision': 'reboot', 'failure_domain': 'rack-a'}) for h in ('r1', 'r2')]
                      + [('r3', {'decision': 'reboot', 'failure_domain': 'rack-b'})]),
    'domains': [{'name': 'rack-a', 'max_per_wave': 1}, {'name': 'rack-b', 'max_per_wave': 1}],
}


def hostvars(live=None, reboot=None, results=None):
    found = dict((h, {}) for h in PLAN['decisions'])
    for host, outcome in (live or {}).items():
        found[host]['livepatch_outcome'] = outcome
    for host, outcome in (reboot or {}).items():
        found[host]['reboot_fallback_outcome'] = outcome
    for host, result in (results or {}).items():
        found[host]['reboot_fallback_result'] = result
    return found


ALL_PATCHED = dict([('c1', 'patched')] + [('l%d' % i, 'patched') for i in range(1, 9)])


def test_without_reboots_the_budget_counts_only_live_patch_hosts():
    live = dict(ALL_PATCHED, l1='failed')
    gate = rollout_gate(PLAN, hostvars(live, {'r1': 'failed'}), budget_percent=10)
    # 10 % of 9 live patch hosts is 0: one failure stops the run; the reboot host's failure is not looked at.
    assert gate['proceed'] is False and gate['to_patch'] == 9 and gate['limit'] == 0
    assert [f['host'] for f in gate['failed_hosts']] == ['l1']


def test_with_reboots_the_percentage_is_kept_per_kind_and_never_multiplied():
    live = dict(ALL_PATCHED, l1='failed')
    # 10 % of the 9 live patch hosts is 0, with reboots as without: enabling reboots does not raise it.
    gate = rollout_gate(PLAN, hostvars(live), budget_percent=10, with_reboots=True)
    assert gate['proceed'] is False and gate['to_patch'] == 12
    assert 'failure budget exceeded: 1 failed live patch host(s) of 9 to patch, the budget allows 0' in gate['reason']
    # 40 %: 3 of the 9 live patch hosts, 1 of the 3 reboot hosts.
    within = rollout_gate(PLAN, hostvars(live, {'r1': 'failed'}), budget_percent=40, with_reboots=True)
    assert within['proceed'] is True
    over = rollout_gate(PLAN, hostvars(ALL_PATCHED, {'r1': 'failed', 'r2': 'failed'}), budget_percent=40,
                        with_reboots=True)
    assert over['proceed'] is False
    assert 'failure budget exceeded: 2 failed reboot host(s) of 3 to patch, the budget allows 1' in over['reason']


def test_with_reboots_a_host_count_is_over_the_whole_run():
    live = dict(ALL_PATCHED, l1='failed')
    gate = rollout_gate(PLAN, hostvars(live, {'r1': 'unreachable'}), budget_hosts=1, with_reboots=True)
    assert gate['proceed'] is False
    assert sorted(f['host'] for f in gate['failed_hosts']) == ['l1', 'r1']
    assert 'failure budget exceeded: 2 failed host(s) of 12 to patch, the budget allows 1' in gate['reason']


def test_with_reboots_a_guest_not_running_again_stops_whatever_the_budget():
    results = {'r1': {'msg': 'xl restore failed', 'stranded': ['web1 (saved to /x/web1.save, state saved)']}}
    gate = rollout_gate(PLAN, hostvars(ALL_PATCHED, {'r1': 'guests_not_restored'}, results), budget_hosts=5,
                        with_reboots=True)
    assert gate['proceed'] is False
    assert 'guests are not running again' in gate['reason'] and 'r1' in gate['reason']


def test_with_reboots_a_host_that_did_not_come_back_with_its_guests_on_disk_stops():
    # The last reboot wave's host never came back: no later reboot gate runs, so the summary's gate must see it.
    results = {'r3': {'msg': 'did not come back', 'stranded': ['db1 (saved to /s/db1.save, state saved)']}}
    gate = rollout_gate(PLAN, hostvars(ALL_PATCHED, {'r1': 'rebooted', 'r2': 'rebooted', 'r3': 'unreachable'},
                                       results), budget_hosts=5, with_reboots=True)
    assert gate['proceed'] is False
    assert gate['reason'].startswith('guests are not running again: r3 (unreachable: db1 (saved to /s/db1.save')


def test_summary_with_reboots_has_reboot_wave_rows_and_outcomes():
    results = {'r2': {'msg': 'host did not come back', 'stranded': ['db1 (saved to /s/db1.save, state saved)']}}
    hv = hostvars(ALL_PATCHED, {'r1': 'rebooted', 'r2': 'unreachable', 'r3': 'reboot_required'}, results)
    times = {'wave_3': {'start': 100.0, 'end': 160.5}}
    summary = rollout_summary(PLAN, hv, gate={'proceed': True}, wave_times=times, run_id='run1', with_reboots=True)
    rows = dict((row['wave'], row) for row in summary['waves'])
    assert [row['wave'] for row in summary['waves']] == ['wave_1', 'wave_2', 'wave_3', 'wave_4', 'not_in_a_wave']
    assert (rows['wave_3']['kind'], rows['wave_3']['rebooted'], rows['wave_3']['elapsed_s']) == ('reboot', 1, 60.5)
    assert (rows['wave_4']['unreachable'], rows['wave_4']['pending_reboot']) == (1, 1)
    assert summary['hosts']['r1']['outcome'] == 'rebooted'
    assert summary['hosts']['r2']['detail'] == 'host did not come back; db1 (saved to /s/db1.save, state saved)'
    # r1 is fixed: no longer in needs_reboot; r3 (only reported) is; r2 must be looked at again.
    assert summary['needs_reboot'] == ['r3']
    assert summary['state_unknown'] == ['r2']
    assert summary['totals']['rebooted'] == 1 and summary['totals']['patched'] == 9
    table = rb.format_summary(summary)
    assert 'rebooted' in table.splitlines()[0]
    assert [line.split()[:4] for line in table.splitlines() if line.startswith('wave_3')] == [
        ['wave_3', 'reboot', '1', '0']]


def test_summary_detail_of_held_and_attention_hosts_is_the_plans_reason():
    """The filter hands the plan's reason to the summary: a held / needs_attention host's detail says why."""
    plan = dict(PLAN, decisions=dict(PLAN['decisions']))
    plan['decisions']['h1'] = {'decision': 'held', 'reason': 'held: payload p ended reverted on this host in run R'}
    plan['decisions']['a1'] = {'decision': 'needs_attention', 'reason': 'payload p is APPLIED after failed checks'}
    hv = hostvars(ALL_PATCHED)
    hv.update(h1={}, a1={})
    summary = rollout_summary(plan, hv, gate={'proceed': True})
    assert summary['hosts']['h1'] == dict(decision='held', wave='not_in_a_wave', outcome='held',
                                          detail='held: payload p ended reverted on this host in run R')
    assert summary['hosts']['a1']['detail'] == 'payload p is APPLIED after failed checks'
    assert summary['held'] == ['h1'] and summary['needs_attention'] == ['a1']


def test_summary_without_reboots_reports_reboot_hosts_as_pending():
    hv = hostvars(ALL_PATCHED, {'r1': 'rebooted'})
    summary = rollout_summary(PLAN, hv, gate={'proceed': True})
    assert [row['wave'] for row in summary['waves']] == ['wave_1', 'wave_2', 'not_in_a_wave']
    assert summary['hosts']['r1']['outcome'] == 'pending_reboot'
    assert summary['needs_reboot'] == ['r1', 'r2', 'r3']


@pytest.mark.parametrize('outcome, expected', [
    ('rebooted', 'rebooted'), ('not_needed', 'already_patched'), ('reboot_required', 'pending_reboot'),
    ('would_reboot', 'pending_reboot'), ('refused', 'pending_reboot'), (None, 'pending_reboot'),
    ('failed', 'failed'), ('guests_not_restored', 'failed'), ('unreachable', 'unreachable'),
    ('in_progress', 'unreachable'),
])
def test_reboot_outcomes_in_the_summary(outcome, expected):
    assert rb.reboot_summary_outcome(outcome) == expected


def test_a_plan_that_is_not_a_plan_is_refused():
    with pytest.raises(AnsibleFilterError, match='expected the plan'):
        rollout_gate(['not', 'a', 'plan'], {}, with_reboots=True)


def test_plan_hosts_carry_the_ledger_open_intents_of_the_facts():
    intents = [{'name': 'xsa999_4175', 'sha256': 'a' * 64, 'run_id': 'R1', 'time': 't'}]
    xen = {'present': True, 'livepatch': {'supported': True, 'payloads': [], 'open_intents': intents, 'ledger_error': None}}
    hostvars = {'h1': {'ansible_facts': {'xen': xen}, 'noreboot_xen_detected': {'unreachable': False, 'error': None},
                       'noreboot_xen_failure_domain': 'rack-a'},
                'h2': {}}
    hosts = rollout_plan_hosts(['h1', 'h2'], hostvars)
    assert hosts['h1']['xen']['livepatch']['open_intents'] == intents
    assert hosts['h1']['failure_domain'] == 'rack-a' and hosts['h1']['unreachable'] is False
    assert hosts['h2'] == dict(xen=None, unreachable=True, error='detection did not run on this host', failure_domain=None,
                               force_reboot=False)
