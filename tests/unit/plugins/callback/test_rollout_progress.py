# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout_progress callback and its logic (plugin_utils/wave_progress), fed the results the
rolling playbooks' tasks return: the plan, the wave plays' facts, the hosts' outcome facts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.callback.rollout_progress import CallbackModule
from ansible_collections.noreboot.xen.plugins.plugin_utils.wave_progress import (
    WaveProgress,
    estimate_left,
    parse_end_line,
)

PLAN = {
    'waves': [
        {'number': 1, 'kind': 'canary', 'hosts': ['c1']},
        {'number': 2, 'kind': 'livepatch', 'hosts': ['l1', 'l2', 'l3']},
        {'number': 3, 'kind': 'reboot', 'hosts': ['r1', 'r2']},
    ],
    'decisions': {'c1': {'decision': 'livepatch', 'failure_domain': 'rack-a'},
                  'l1': {'decision': 'livepatch', 'failure_domain': 'rack-a'},
                  'l2': {'decision': 'livepatch', 'failure_domain': 'rack-b'},
                  'l3': {'decision': 'livepatch', 'failure_domain': 'rack-b'},
                  'r1': {'decision': 'reboot', 'failure_domain': 'rack-c'},
                  'r2': {'decision': 'reboot'}},
    'table': '...',
}
GATE = {'proceed': True, 'reason': None, 'failures': 0, 'limit': 2, 'to_patch': 6}


class Times(object):
    """The wave_times fact as the wave plays grow it."""

    def __init__(self):
        self.times = {}

    def start(self, label, at):
        self.times[label] = {'start': at}
        return dict(self.times)

    def end(self, label, at):
        self.times[label] = dict(self.times[label], end=at)
        return dict((k, dict(v)) for k, v in self.times.items())


def live(outcome, **result):
    return {'livepatch_outcome': outcome, 'livepatch_result': dict({'msg': '', 'failed_checks': []}, **result)}


def run(progress, reboots=True, gate2=None):
    times = Times()
    lines = []
    lines += progress.on_plan(PLAN)
    lines += progress.on_facts('localhost', {'noreboot_xen_with_reboots': reboots})
    lines += progress.on_facts('c1', {'noreboot_xen_gate': GATE, 'noreboot_xen_wave_times': times.start('wave_1', 100.0)})
    lines += progress.on_facts('c1', {'livepatch_outcome': 'in_progress'})
    lines += progress.on_facts('c1', live('patched'))
    lines += progress.on_facts('c1', {'noreboot_xen_wave_times': times.end('wave_1', 110.0)})
    lines += progress.on_facts('l1', {'noreboot_xen_gate': gate2 or GATE,
                                      'noreboot_xen_wave_times': times.start('wave_2', 111.0)})
    if gate2 and not gate2['proceed']:
        return lines
    lines += progress.on_facts('l1', live('patched'))
    lines += progress.on_facts('l2', live('reverted', failed_checks=['guests_running']))
    lines += progress.on_unreachable('l3')
    lines += progress.on_facts('l1', {'noreboot_xen_wave_times': times.end('wave_2', 131.0)})
    if not reboots:
        return lines + progress.on_end()
    lines += progress.on_facts('r1', {'noreboot_xen_gate': dict(GATE, failures=2),
                                      'noreboot_xen_wave_times': times.start('wave_3', 132.0)})
    lines += progress.on_facts('r1', {'reboot_fallback_outcome': 'rebooted'})
    lines += progress.on_facts('r1', {'reboot_fallback_result': {'outcome': 'rebooted', 'msg': 'rebooted into x'}})
    lines += progress.on_facts('r2', {'reboot_fallback_result': {'outcome': 'guests_not_restored',
                                                                 'msg': 'xl restore failed'}})
    lines += progress.on_facts('r1', {'noreboot_xen_wave_times': times.end('wave_3', 192.0)})
    return lines + progress.on_end()


def test_a_run_with_live_patch_and_reboot_waves():
    lines = run(WaveProgress())
    assert lines == [
        '[rollout] wave 1 of 3 start: canary, 1 hosts (c1); failure domains: rack-a 1',
        '[rollout] wave 1 of 3 end: canary, 1 hosts: patched 1, already_patched 0, reverted 0, failed 0, '
        'unreachable 0, rebooted 0; elapsed 10.0s; failure budget 0 of 2 used; estimated time left 20.0s',
        '[rollout] wave 2 of 3 start: livepatch, 3 hosts (l1, l2, l3); failure domains: rack-a 1, rack-b 2',
        '[rollout] ATTENTION l2 reverted in wave 2: guests_running',
        '[rollout] ATTENTION l3 unreachable during wave 2',
        '[rollout] wave 2 of 3 end: livepatch, 3 hosts: patched 1, already_patched 0, reverted 1, failed 0, '
        'unreachable 1, rebooted 0; elapsed 20.0s; failure budget 2 of 2 used; estimated time left 15.0s',
        '[rollout] wave 3 of 3 start: reboot, 2 hosts (r1, r2); failure domains: rack-c 1, unassigned 1',
        '[rollout] ATTENTION r2 guests_not_restored in wave 3: xl restore failed',
        '[rollout] wave 3 of 3 end: reboot, 2 hosts: patched 0, already_patched 0, reverted 0, failed 1, '
        'unreachable 0, rebooted 1; elapsed 60.0s; failure budget 3 of 2 used; estimated time left 0.0s',
    ]


def test_end_lines_parse_back_to_the_counts():
    ends = [parse_end_line(line) for line in run(WaveProgress())]
    ends = [e for e in ends if e]
    assert [(e['wave'], e['of'], e['kind'], e['hosts']) for e in ends] == [
        (1, 3, 'canary', 1), (2, 3, 'livepatch', 3), (3, 3, 'reboot', 2)]
    assert ends[1]['reverted'] == 1 and ends[1]['unreachable'] == 1 and ends[1]['patched'] == 1
    assert ends[2]['failed'] == 1 and ends[2]['rebooted'] == 1
    assert (ends[2]['budget_used'], ends[2]['budget_limit']) == (3, 2)
    assert parse_end_line('[rollout] wave 1 of 3 start: canary, 1 hosts (c1); failure domains: rack-a 1') is None


def test_without_reboots_only_the_live_patch_waves_count():
    lines = run(WaveProgress(), reboots=False)
    assert lines[0].startswith('[rollout] wave 1 of 2 start: canary')
    assert lines[-1].startswith('[rollout] wave 2 of 2 end: livepatch')
    assert lines[-1].endswith('estimated time left 0.0s')


def test_a_wave_the_gate_stops_gets_one_line_with_the_reason():
    stop = dict(GATE, proceed=False, reason='canary failed: c1 (failed)')
    lines = run(WaveProgress(), gate2=stop)
    assert lines[-1] == '[rollout] wave 2 of 3 (livepatch, 3 hosts) not started: canary failed: c1 (failed)'


def test_a_wave_whose_hosts_were_all_lost_ends_when_the_next_starts():
    progress = WaveProgress()
    times = Times()
    progress.on_plan(PLAN)
    progress.on_facts('localhost', {'noreboot_xen_with_reboots': False})
    progress.on_facts('c1', {'noreboot_xen_gate': GATE, 'noreboot_xen_wave_times': times.start('wave_1', 1.0)})
    # No end recorded (no host left to run the task); the next wave starts.
    lines = progress.on_facts('l1', {'noreboot_xen_gate': GATE, 'noreboot_xen_wave_times': times.start('wave_2', 9.0)})
    assert lines[0] == '[rollout] ATTENTION c1 lost during wave 1 (no outcome): unreachable'
    assert parse_end_line(lines[1])['unreachable'] == 1 and 'elapsed ?' in lines[1]
    assert lines[2].startswith('[rollout] wave 2 of 2 start')


def test_reboot_fallback_playbook_counts_only_reboot_waves():
    progress = WaveProgress()
    progress.on_plan(PLAN)
    lines = progress.on_facts('r1', {'noreboot_xen_gate': GATE, 'noreboot_xen_wave_times': {'wave_3': {'start': 5}}})
    assert lines == ['[rollout] wave 1 of 1 start: reboot, 2 hosts (r1, r2); failure domains: rack-c 1, unassigned 1']


def test_other_playbooks_print_nothing():
    progress = WaveProgress()
    assert progress.on_facts('h', {'foo': 1, 'livepatch_outcome': 'failed'}) == []
    assert progress.on_facts('h', {'noreboot_xen_wave_times': {'wave_1': {'start': 1}}}) == []
    assert progress.on_unreachable('h') == [] and progress.on_end() == []
    assert progress.on_plan({'waves': 'x'}) == []


def test_estimate_uses_the_mean_of_waves_of_the_same_class():
    assert estimate_left([], ['livepatch']) is None
    assert estimate_left([('canary', 10.0)], []) == 0.0
    assert estimate_left([('canary', 10.0), ('livepatch', 20.0)], ['livepatch', 'reboot']) == 30.0
    assert estimate_left([('canary', 10.0), ('reboot', 100.0)], ['livepatch', 'reboot']) == 110.0


class FakeHost(object):
    def __init__(self, name):
        self.name = name

    def get_name(self):
        return self.name


class FakeResult(object):
    def __init__(self, host, result):
        self._host = FakeHost(host)
        self._result = result


class FakeDisplay(object):
    verbosity = 0

    def __init__(self):
        self.lines = []

    def display(self, msg, **kwargs):
        self.lines.append(msg)


def test_the_callback_prints_what_the_results_say():
    display = FakeDisplay()
    callback = CallbackModule(display=display)
    assert callback.CALLBACK_TYPE == 'notification' and callback.CALLBACK_NEEDS_ENABLED
    callback.v2_runner_on_ok(FakeResult('localhost', dict(PLAN, changed=False)))
    callback.v2_runner_on_ok(FakeResult('localhost', {'ansible_facts': {'noreboot_xen_with_reboots': False}}))
    callback.v2_runner_on_ok(FakeResult('c1', {'ansible_facts': {'noreboot_xen_gate': GATE,
                                                                 'noreboot_xen_wave_times': {'wave_1': {'start': 1}}}}))
    callback.v2_runner_on_ok(FakeResult('c1', {'ansible_facts': live('failed', msg='apply failed')}))
    callback.v2_runner_on_ok(FakeResult('c1', {'msg': 'not a dict of facts', 'ansible_facts': None}))
    callback.v2_runner_on_unreachable(FakeResult('c1', {'unreachable': True}))
    callback.v2_playbook_on_stats(None)
    assert display.lines[0].startswith('[rollout] wave 1 of 2 start: canary')
    assert display.lines[1] == '[rollout] ATTENTION c1 failed in wave 1: apply failed'
    assert parse_end_line(display.lines[2])['failed'] == 1
    assert len(display.lines) == 3
