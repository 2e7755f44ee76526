# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gates and the progress callback look at each host a bounded number of times, whatever the fleet size.

Counted, not timed (speed is measured by tests/bench/bench_plan_scale.py, which prints figures): the host
names are a str subclass that counts how often they are hashed or compared. A gate that builds a set of the
reboot hosts once per live patch host, or a progress callback that scans the running wave's host list once
per outcome, makes that count grow with the square of the fleet; then the 20000-host run of the bench took
minutes in its gates instead of a second.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.filter.reboot_waves import reboot_wave_gate
from ansible_collections.noreboot.xen.plugins.filter.rollout_gate_summary import rollout_gate
from ansible_collections.noreboot.xen.plugins.plugin_utils.wave_progress import WaveProgress

HOSTS = 2000
REBOOT_HOSTS = 500
# Hashes and comparisons per host of the fleet that one gate may take: a few passes over the plan and the
# outcomes. The quadratic gate took about REBOOT_HOSTS per host.
PER_HOST = 40


class Name(str):
    """A host name that counts its hashes and comparisons in Name.seen[0]."""

    seen = [0]

    def __hash__(self):
        Name.seen[0] += 1
        return str.__hash__(self)

    def __eq__(self, other):
        Name.seen[0] += 1
        return str.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)


def counted(function, *args, **kwargs):
    Name.seen[0] = 0
    value = function(*args, **kwargs)
    return value, Name.seen[0]


def _chunks(hosts, size):
    return [hosts[i:i + size] for i in range(0, len(hosts), size)]


def fleet():
    """A plan of HOSTS hosts (the last REBOOT_HOSTS rebooted) and hostvars after its live patch waves and two
    reboot waves: 10 live patch hosts reverted, one reboot host failed."""
    names = [Name('xen%04d' % i) for i in range(HOSTS)]
    live, reboot = names[:HOSTS - REBOOT_HOSTS], names[HOSTS - REBOOT_HOSTS:]
    waves = [dict(kind='canary', hosts=live[:5])]
    waves += [dict(kind='livepatch', hosts=chunk) for chunk in _chunks(live[5:], 300)]
    waves += [dict(kind='reboot', hosts=reboot[:2], canary=True)]
    waves += [dict(kind='reboot', hosts=chunk, canary=False) for chunk in _chunks(reboot[2:], 20)]
    for number, wave in enumerate(waves, 1):
        wave.update(number=number, size=len(wave['hosts']))
    decisions = dict((h, dict(decision='livepatch' if i < len(live) else 'reboot',
                              failure_domain='rack-%02d' % (i // 40)))
                     for i, h in enumerate(names))
    domains = [dict(name='rack-%02d' % r, hosts=40, max_per_wave=20) for r in range(HOSTS // 40)]
    plan = dict(waves=waves, decisions=decisions, domains=domains)
    hostvars = {}
    for i, host in enumerate(live):
        failed = i % 150 == 149
        hostvars[host] = dict(livepatch_outcome='reverted' if failed else 'patched',
                              livepatch_result=dict(failed_checks=['guest_console'] if failed else []))
    for i, host in enumerate(reboot[:22]):
        outcome = 'failed' if i == 7 else 'rebooted'
        hostvars[host] = dict(reboot_fallback_outcome=outcome, reboot_fallback_result=dict(outcome=outcome, msg=outcome))
    return plan, hostvars


def test_the_live_patch_gate_with_reboots_looks_at_each_host_a_bounded_number_of_times():
    plan, hostvars = fleet()
    gate, seen = counted(rollout_gate, plan, hostvars, budget_percent=5, previous={}, with_reboots=True)
    assert gate['proceed'] is True
    assert gate['failures'] == 11 and gate['to_patch'] == HOSTS
    assert seen <= PER_HOST * HOSTS, '%d hashes/comparisons of host names for %d hosts' % (seen, HOSTS)


def test_the_reboot_wave_gate_looks_at_each_host_a_bounded_number_of_times():
    plan, hostvars = fleet()
    gate, seen = counted(reboot_wave_gate, plan, hostvars, wave_index=3, budget_percent=5, previous={})
    assert gate['proceed'] is True and gate['failures'] == 11
    assert seen <= PER_HOST * HOSTS, '%d hashes/comparisons of host names for %d hosts' % (seen, HOSTS)


def test_the_progress_callback_looks_at_each_outcome_a_bounded_number_of_times():
    plan, _hostvars = fleet()
    progress = WaveProgress()
    progress.on_plan(plan)
    progress.on_facts('localhost', dict(noreboot_xen_with_reboots=True))
    wave = plan['waves'][1]
    start = progress.on_facts('localhost', dict(noreboot_xen_gate=dict(proceed=True, limit=None),
                                                noreboot_xen_wave_times={'wave_2': {'start': 10.0}}))
    assert start[0].startswith('[rollout] wave 2 of ') and ', 300 hosts ' in start[0]
    Name.seen[0] = 0
    lines = []
    for host in wave['hosts']:
        lines += progress.on_facts(host, dict(livepatch_outcome='reverted' if host.endswith('9') else 'patched',
                                              livepatch_result=dict(failed_checks=['guest_console'])))
    seen = Name.seen[0]
    assert len(lines) == 30 and all(' reverted in wave 2: guest_console' in line for line in lines)
    assert seen <= 10 * len(wave['hosts']), '%d comparisons for %d outcomes' % (seen, len(wave['hosts']))
    end = progress.on_facts('localhost', dict(noreboot_xen_wave_times={'wave_2': {'start': 10.0, 'end': 70.0}}))
    assert 'patched 270, already_patched 0, reverted 30' in end[-1]
