# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_phases: the plan's waves as the serial batches of one play per phase, and what the playbooks
say once (detection record, reboot hosts, the refusal when noreboot_xen_reboot_ok is unset, wave times)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_phases as rp

# Two canary waves, 14 one-host live patch waves (more than the 12 plays the playbook once had), an
# empty wave, two reboot waves.
PLAN = dict(waves=(
    [dict(number=1, kind='canary', hosts=['c1']), dict(number=2, kind='canary', hosts=['c2'])]
    + [dict(number=n, kind='livepatch', hosts=['l%d' % n]) for n in range(3, 17)]
    + [dict(number=17, kind='livepatch', hosts=[]),
       dict(number=18, kind='reboot', hosts=['r2', 'r1']), dict(number=19, kind='reboot', hosts=['r3'])]),
    decisions={})


def test_live_phase_is_every_canary_and_live_patch_wave_in_plan_order():
    phase = rp.phase(PLAN, 'live')
    assert phase['hosts'] == ['c1', 'c2'] + ['l%d' % n for n in range(3, 17)]
    assert phase['sizes'] == [1] * 16 and phase['waves'] == 16
    assert phase['canaries'] == ['c1', 'c2']


def test_reboot_phase_keeps_the_plan_order_inside_a_wave():
    assert rp.phase(PLAN, 'reboot') == dict(phase='reboot', hosts=['r2', 'r1', 'r3'], sizes=[2, 1], canaries=[],
                                            waves=2)


def test_a_plan_without_waves_of_a_phase_has_an_empty_phase():
    assert rp.phase(dict(waves=[dict(number=1, kind='canary', hosts=['c1'])]), 'reboot') == dict(
        phase='reboot', hosts=[], sizes=[], canaries=[], waves=0)


def test_a_host_in_two_waves_of_a_phase_is_refused():
    plan = dict(waves=[dict(number=1, kind='canary', hosts=['a']), dict(number=2, kind='livepatch', hosts=['b', 'a'])])
    with pytest.raises(ValueError, match='host a is in more than one live wave of the plan'):
        rp.phase(plan, 'live')


@pytest.mark.parametrize('plan,phase,match', [
    ([], 'live', 'expected the plan of noreboot.xen.fleet_plan'),
    (dict(waves='x'), 'live', 'expected the plan of noreboot.xen.fleet_plan'),
    (PLAN, 'canary', "unknown phase 'canary'"),
])
def test_bad_input_is_named(plan, phase, match):
    with pytest.raises(ValueError, match=match):
        rp.phase(plan, phase)


def test_batch_wave_names_the_wave_its_position_and_the_phase_size():
    assert rp.batch_wave(PLAN, 'live', ['l16']) == dict(number=16, label='wave_16', kind='livepatch', index=16, of=16,
                                                        hosts=['l16'])
    assert rp.batch_wave(PLAN, 'reboot', ['r1']) == dict(number=18, label='wave_18', kind='reboot', index=1, of=2,
                                                         hosts=['r2', 'r1'])
    assert rp.batch_wave(PLAN, 'reboot', ['r3'])['index'] == 2


def test_a_batch_that_is_not_one_wave_is_refused():
    with pytest.raises(ValueError, match=r'the batch r1, r3 is not one reboot wave of the plan: r3 not in wave 18'):
        rp.batch_wave(PLAN, 'reboot', ['r1', 'r3'])
    with pytest.raises(ValueError, match='host r1 is in no live wave of the plan'):
        rp.batch_wave(PLAN, 'live', ['r1'])
    with pytest.raises(ValueError, match='empty batch'):
        rp.batch_wave(PLAN, 'live', [])


def test_reboot_hosts_are_sorted():
    assert rp.reboot_hosts(PLAN) == ['r1', 'r2', 'r3']


def test_wave_times_start_afresh_and_end_keeps_the_start():
    times = {'wave_1': {'start': 1.0, 'end': 2.0}}
    started = rp.mark_wave_time(times, 'wave_2', 'start', 3.0)
    assert started == {'wave_1': {'start': 1.0, 'end': 2.0}, 'wave_2': {'start': 3.0}}
    ended = rp.mark_wave_time(started, 'wave_2', 'end', 5.0)
    assert ended['wave_2'] == {'start': 3.0, 'end': 5.0}
    assert started['wave_2'] == {'start': 3.0}, 'the input is not changed'
    assert rp.mark_wave_time({'wave_2': {'start': 1.0, 'end': 2.0}}, 'wave_2', 'start', 9.0) == {'wave_2': {'start': 9.0}}
    with pytest.raises(ValueError, match="unknown wave event 'middle'"):
        rp.mark_wave_time({}, 'wave_1', 'middle', 1.0)


@pytest.mark.parametrize('result,record', [
    ({'changed': False, 'ansible_facts': {'xen': {}}}, dict(unreachable=False, error=None)),
    ({'failed': True, 'msg': 'xen_facts: MODULE FAILURE'}, dict(unreachable=False, error='xen_facts: MODULE FAILURE')),
    ({'failed': True}, dict(unreachable=False, error='detection failed')),
    ({'unreachable': True, 'msg': 'ssh: connect timed out'}, dict(unreachable=True, error='ssh: connect timed out')),
    (None, dict(unreachable=False, error=None)),
])
def test_detection_record(result, record):
    assert rp.detection_record(result) == record


def test_reboot_ok_message_of_the_rolling_run_names_the_hosts_and_both_choices():
    message = rp.reboot_ok_unset_message(['r2', 'r1'], live_patch_others=True)
    assert message.startswith('2 host(s) need a reboot to get the fix (')
    assert ': r1, r2. noreboot_xen_reboot_ok is not set.' in message
    assert 'noreboot_xen_reboot_ok=true to live patch the others and then install the fixed hypervisor' in message
    assert 'noreboot_xen_reboot_ok=false to live patch the others and only report these.' in message
    assert message.endswith('Nothing was changed.')


def test_reboot_ok_message_of_the_reboot_fallback_names_reasons():
    message = rp.reboot_ok_unset_message(['r1'], reasons={'r1': 'no payload for build abc'})
    assert '1 host(s) need a reboot' in message and ': r1 (no payload for build abc). ' in message
    assert 'live patch the others' not in message
    assert 'noreboot_xen_reboot_ok=true to install the fixed hypervisor on these and reboot them in waves' in message
