# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wave filters of the playbooks: each gate reads the run's state the plan play left on localhost
(plan, last gate, failure budget, reboot switch) and decides as rollout_gate / reboot_wave_gate do."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter import rollout_waves as rw
from ansible_collections.noreboot.xen.plugins.filter.reboot_waves import reboot_wave_gate
from ansible_collections.noreboot.xen.plugins.filter.rollout_gate_summary import rollout_gate

PLAN = {
    'waves': [
        {'number': 1, 'kind': 'canary', 'hosts': ['c1']},
        {'number': 2, 'kind': 'livepatch', 'hosts': ['l1', 'l2', 'l3']},
        {'number': 3, 'kind': 'reboot', 'hosts': ['r1']},
        {'number': 4, 'kind': 'reboot', 'hosts': ['r2', 'r3']},
    ],
    'decisions': dict([(h, {'decision': 'livepatch'}) for h in ('c1', 'l1', 'l2', 'l3')]
                      + [(h, {'decision': 'reboot', 'failure_domain': 'rack-a'}) for h in ('r1', 'r2', 'r3')]),
    'domains': [{'name': 'rack-a', 'max_per_wave': 2}],
}


def hostvars(live=None, reboot=None, **localhost):
    found = dict((h, {}) for h in PLAN['decisions'])
    for host, outcome in (live or {}).items():
        found[host]['livepatch_outcome'] = outcome
    for host, outcome in (reboot or {}).items():
        found[host]['reboot_fallback_outcome'] = outcome
    state = dict(noreboot_xen_plan=PLAN, noreboot_xen_gate={}, noreboot_xen_wave_times={},
                 noreboot_xen_failure_budget={'hosts': None, 'percent': None})
    state.update(localhost)
    found['localhost'] = state
    return found


def test_live_gate_is_rollout_gate_with_the_run_state():
    hv = hostvars(live={'c1': 'patched', 'l1': 'failed'}, noreboot_xen_failure_budget={'hosts': 1, 'percent': None},
                  noreboot_xen_with_reboots=False)
    gate = rw.rollout_wave_gate(hv, 'live', ['l1', 'l2', 'l3'])
    assert gate == rollout_gate(PLAN, hv, budget_hosts=1, budget_percent=None, previous=None, with_reboots=False)
    assert gate['proceed'] is True and gate['failures'] == 1 and gate['limit'] == 1


def test_live_gate_stops_past_the_budget_and_a_stop_is_final():
    hv = hostvars(live={'c1': 'patched', 'l1': 'failed', 'l2': 'reverted'},
                  noreboot_xen_failure_budget={'hosts': '1', 'percent': None})
    stop = rw.rollout_wave_gate(hv, 'live')
    assert stop['proceed'] is False and stop['reason'].startswith('failure budget exceeded: 2 failed host(s)')
    # A later gate with that stop as its previous decision stays stopped, whatever the outcomes.
    later = rw.rollout_wave_gate(hostvars(noreboot_xen_gate=stop), 'live')
    assert later['proceed'] is False and later['reason'] == stop['reason']


def test_live_gate_counts_reboot_hosts_when_the_run_reboots():
    hv = hostvars(live={'c1': 'patched'}, reboot={'r1': 'reboot_failed'}, noreboot_xen_with_reboots=True,
                  noreboot_xen_failure_budget={'hosts': 0, 'percent': None})
    gate = rw.rollout_wave_gate(hv, 'live')
    assert gate == rollout_gate(PLAN, hv, budget_hosts=0, previous=None, with_reboots=True)
    assert gate != rollout_gate(PLAN, hv, budget_hosts=0, previous=None, with_reboots=False)


def test_reboot_gate_of_a_batch_is_reboot_wave_gate_of_its_wave():
    hv = hostvars(live={'c1': 'patched'}, reboot={'r1': 'rebooted'}, noreboot_xen_failure_budget={'hosts': 3, 'percent': 50})
    gate = rw.rollout_wave_gate(hv, 'reboot', ['r2', 'r3'])
    assert gate == reboot_wave_gate(PLAN, hv, wave_index=2, budget_hosts=3, budget_percent=50, previous=None)
    assert rw.rollout_wave_gate(hv, 'reboot') == reboot_wave_gate(PLAN, hv, budget_hosts=3, budget_percent=50)


def test_gates_refuse_a_run_without_a_plan_and_an_unknown_phase():
    with pytest.raises(AnsibleFilterError, match='no plan on localhost'):
        rw.rollout_wave_gate({'localhost': {}}, 'live')
    with pytest.raises(AnsibleFilterError, match="unknown phase 'canary'"):
        rw.rollout_wave_gate(hostvars(), 'canary')
    with pytest.raises(AnsibleFilterError, match='not one reboot wave of the plan'):
        rw.rollout_wave_gate(hostvars(), 'reboot', ['r1', 'r2'])


def test_wave_times_label_the_batch_with_its_plan_wave_number():
    started = rw.rollout_wave_times(hostvars(noreboot_xen_wave_times={'wave_1': {'start': 1.0, 'end': 2.0}}),
                                    'reboot', ['r2', 'r3'], 'start')
    assert sorted(started) == ['wave_1', 'wave_4'] and sorted(started['wave_4']) == ['start']
    ended = rw.rollout_wave_times(hostvars(noreboot_xen_wave_times=started), 'reboot', ['r3'], 'end')
    assert ended['wave_4']['start'] == started['wave_4']['start'] <= ended['wave_4']['end']


def test_batch_wave_is_the_plan_wave_of_the_batch():
    assert rw.rollout_batch_wave(hostvars(), 'live', ['l2', 'l3'])['number'] == 2
    wave = rw.rollout_batch_wave(hostvars(), 'reboot', ['r3'])
    assert (wave['number'], wave['index'], wave['of'], wave['kind']) == (4, 2, 2, 'reboot')
    with pytest.raises(AnsibleFilterError, match='not one live wave of the plan'):
        rw.rollout_batch_wave(hostvars(), 'live', ['c1', 'l1'])


def test_phase_reboot_hosts_detection_and_message_filters():
    assert rw.rollout_phase(PLAN, 'live')['sizes'] == [1, 3]
    with pytest.raises(AnsibleFilterError, match='expected the plan of noreboot.xen.fleet_plan'):
        rw.rollout_phase({'decisions': {}}, 'live')
    assert rw.rollout_reboot_hosts(PLAN) == ['r1', 'r2', 'r3']
    assert rw.rollout_detection({'unreachable': True, 'msg': 'gone'}) == dict(unreachable=True, error='gone')
    assert rw.reboot_ok_unset_message(['r1'], live_patch_others=True).startswith('1 host(s) need a reboot')
