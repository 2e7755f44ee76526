# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reboot fallback filters for hosts an earlier run left unfinished (plan decision
finish_reboot), for reboot hosts lost mid wave, and the failures that end a run non-zero."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.filter.reboot_fallback_report import reboot_fallback_failures, reboot_fallback_summary
from ansible_collections.noreboot.xen.plugins.filter.reboot_waves import finish_reboot_gate, finish_reboot_hosts, finish_reboot_lines
from ansible_collections.noreboot.xen.plugins.filter.rollout_gate_summary import rollout_summary
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb

PLAN = {
    'waves': [
        {'number': 1, 'kind': 'canary', 'hosts': ['c1']},
        {'number': 2, 'kind': 'reboot', 'hosts': ['r1']},
    ],
    'decisions': {
        'c1': {'decision': 'livepatch'},
        'r1': {'decision': 'reboot'},
        'f1': {'decision': 'finish_reboot', 'finish': {'guests': [{'name': 'web1'}], 'resumed_run_id': 'r0'}},
        'f2': {'decision': 'finish_reboot', 'finish': {'guests': [], 'resumed_run_id': 'r0'}},
    },
    'domains': [],
}
WEB1 = 'web1 (saved to /var/lib/noreboot-xen/saved-guests/web1.save, state saved)'


def hostvars(**facts):
    found = dict((h, {}) for h in PLAN['decisions'])
    for host, values in facts.items():
        found[host].update(values)
    return found


def finished(outcome, msg='', stranded=()):
    return dict(reboot_fallback_outcome=outcome, reboot_fallback_result=dict(msg=msg, stranded=list(stranded)))


def test_finish_hosts_come_from_the_plan_decisions():
    assert finish_reboot_hosts(PLAN) == ['f1', 'f2']


def test_every_guest_back_lets_the_waves_start():
    found = hostvars(f1=finished('rebooted', 'finished the reboot fallback of run r0'), f2=finished('not_rebooted'))
    assert finish_reboot_gate(PLAN, found, previous={}) == {}
    assert finish_reboot_lines(PLAN, found) == ['f1: rebooted finished the reboot fallback of run r0', 'f2: not_rebooted']


def test_a_guest_still_not_back_or_a_host_not_reached_stops_before_any_wave():
    found = hostvars(f1=finished('guests_not_restored', 'xl restore failed', [WEB1]))
    gate = finish_reboot_gate(PLAN, found, previous={})
    assert gate['proceed'] is False
    assert 'f1 (guests_not_restored: %s)' % WEB1 in gate['reason']
    assert 'f2 (not_reached)' in gate['reason']
    assert finish_reboot_lines(PLAN, found)[:2] == ['f1: guests_not_restored xl restore failed', '  guest ' + WEB1]
    # A stop is final.
    assert finish_reboot_gate(PLAN, hostvars(), previous=dict(proceed=False, reason='earlier'))['reason'] == 'earlier'


def test_the_summaries_list_the_finished_hosts_first():
    found = hostvars(f1=finished('rebooted', 'web1 runs again'), f2=finished('guests_not_restored', 'no', [WEB1]),
                     c1=dict(livepatch_outcome='patched'))
    summary = reboot_fallback_summary(PLAN, found)
    assert [(r['host'], r['wave'], r['outcome']) for r in summary['hosts']] == [
        ('f1', 'finish', 'rebooted'), ('f2', 'finish', 'guests_not_restored'), ('r1', 2, 'not_started')]
    assert [r['host'] for r in reboot_fallback_failures(summary)] == ['f2']
    rolling = rollout_summary(PLAN, found)
    assert rolling['waves'][0]['wave'] == 'finish' and rolling['waves'][0]['hosts'] == 2
    assert rolling['hosts']['f1']['outcome'] == rb.REBOOTED
    assert rolling['hosts']['f2']['outcome'] == rb.FAILED
    assert WEB1 in rolling['hosts']['f2']['detail']


# --- A reboot host lost in the middle of the role ------------------------------------------------

LOST_PLAN = {
    'waves': [{'number': 1, 'kind': 'reboot', 'hosts': ['r1', 'r2'], 'canary': True},
              {'number': 2, 'kind': 'reboot', 'hosts': ['r3'], 'canary': False}],
    'decisions': {'r1': {'decision': 'reboot'}, 'r2': {'decision': 'reboot'}, 'r3': {'decision': 'reboot'}},
    'domains': [],
}
SAVED_WEB1 = {'name': 'web1', 'action': 'save', 'state': 'saved', 'file': '/var/lib/noreboot-xen/saved-guests/web1.save'}


def lost_hostvars():
    # r1 dropped out during verify (guests saved before the reboot), r2 while moving its guests; neither
    # ran the role's rescue nor its report: their outcome is still the in_progress of the preflight.
    return {
        'r1': dict(reboot_fallback_outcome='in_progress',
                   reboot_fallback_progress=dict(phase='verify', guests=[SAVED_WEB1])),
        'r2': dict(reboot_fallback_outcome='in_progress', reboot_fallback_progress=dict(phase='evacuate', guests=[])),
        'r3': {},
    }


def test_a_host_lost_mid_role_is_recorded_as_lost_with_its_guests_and_counted():
    summary = reboot_fallback_summary(LOST_PLAN, lost_hostvars())
    rows = dict((r['host'], r) for r in summary['hosts'])
    assert rows['r1']['outcome'] == 'lost'
    assert rows['r1']['msg'].startswith('lost during the verify phase: the host dropped out of the play')
    assert rows['r1']['stranded'] == [WEB1]
    assert rows['r2']['outcome'] == 'lost'
    assert rows['r2']['stranded'][0].startswith('guests unknown: the host was lost while moving them')
    assert summary['counts'] == {'lost': 2, 'not_started': 1}
    assert [r['host'] for r in reboot_fallback_failures(summary)] == ['r1', 'r2']


def test_a_lost_host_stops_the_next_reboot_wave_and_is_unreachable_in_the_rolling_summary():
    from ansible_collections.noreboot.xen.plugins.filter.reboot_waves import reboot_wave_gate
    gate = reboot_wave_gate(LOST_PLAN, lost_hostvars(), wave_index=2, budget_hosts=10)
    assert gate['proceed'] is False
    # A lost reboot canary with a guest saved on its disk: the guest not running again is said first,
    # with where it is; both lost hosts are counted as failed.
    assert gate['reason'].startswith('guests are not running again: r1 (lost: %s' % WEB1)
    assert sorted(f['host'] for f in gate['failed_hosts']) == ['r1', 'r2']
    # Not a canary, and a budget that tolerates it: still a stop (it did not come back).
    plan = dict(LOST_PLAN, waves=[dict(w, canary=False) for w in LOST_PLAN['waves']])
    found = lost_hostvars()
    found['r2'] = dict(reboot_fallback_outcome='rebooted')
    found['r1']['reboot_fallback_progress'] = dict(phase='install', guests=[])
    gate = reboot_wave_gate(plan, found, wave_index=2, budget_hosts=10)
    assert gate['proceed'] is False
    assert gate['reason'].startswith('reboot host(s) did not come back, or came back on a build that is not the fixed '
                                     'one: r1 (lost)')
    rolling = rollout_summary(LOST_PLAN, lost_hostvars(), with_reboots=True)
    assert rolling['hosts']['r1']['outcome'] == rb.UNREACHABLE
    assert 'lost during the verify phase' in rolling['hosts']['r1']['detail']
    assert WEB1 in rolling['hosts']['r1']['detail']
