# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A guest cannot make a healthy live patch revert by writing to its console (issue 13, must show (f)).

Needs root (the lab; instance from NOREBOOT_XEN_LAB_INSTANCE, 7 by default, tests/lab/tests/
conftest.py). Four hosts of Debian's Xen 4.17.5: three (one hardware class) whose first guest
writes "livepatch ... failed", a panic and a quiesce time-out to its console right after the
payload is applied, so the lines are in ``xl dmesg`` as ``(d1) ...`` through the soak and the
health checks; one (same class, so not the canary: a failed canary would stop the run) where the
same text comes from the hypervisor as ``(XEN) ...`` lines, the control: the same checks see it
and revert. The fault is the simulator's ``console_after_apply``; playbooks/rolling_livepatch.yml
runs with a soak of 3 s and a failure budget of one host, so the control's revert does not stop
the run.
"""

from __future__ import absolute_import, division, print_function

import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import bench_rolling_livepatch as rl  # noqa: E402  pylint: disable=wrong-import-position
import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

PAYLOAD = 'lab_xsa_fix_4_17_5'
CONSOLE = ['livepatch: %s: apply failed with rc=-22' % PAYLOAD,
           'livepatch: %s: check against hypervisor build-id failed' % PAYLOAD,
           'livepatch: %s: Timed out on semaphore in CPU quiesce phase 1/2' % PAYLOAD,
           'Panic on CPU 0: livepatch expectation of do_domctl not met']
SPEC = '''name: guest-console
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - name: gc
    count: 3
    build: deb-4.17.5
    hardware: intel-cascadelake
    guests: 2
    failure_domains: [rack-a, rack-b]
    faults: {console_after_apply: {after_applies: 1, lines: %(lines)s}}
  - name: xc
    count: 1
    build: deb-4.17.5
    hardware: intel-cascadelake
    guests: 1
    failure_domain: rack-c
    faults: {console_after_apply: {after_applies: 1, from: xen, lines: %(lines)s}}
''' % dict(lines='[%s]' % ', '.join('"%s"' % line for line in CONSOLE))
GUEST_HOSTS = ['gc-001', 'gc-002', 'gc-003']
CONTROL = 'xc-001'


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('guest_console'))
    with lab_for_test.lab_up(workdir, SPEC) as up:
        inventory = up['inventory']
        manifest = rl.write_advisory(os.path.join(workdir, 'advisory'))[0]
        yield dict(workdir=workdir, inventory=inventory, manifest=manifest, hosts=sorted(rl.lab_hosts()))


def test_guest_console_lines_during_the_soak_do_not_revert(lab):
    assert lab['hosts'] == sorted(GUEST_HOSTS + [CONTROL])
    result = rl.run_rollout(lab['inventory'], lab['manifest'], lab['workdir'],
                            extra_vars={'noreboot_xen_reboot_ok': False, 'noreboot_xen_soak_seconds': 3,
                                        'noreboot_xen_failure_budget_hosts': 1})
    print('run: rc %s, %.1f s, log %s' % (result['rc'], result['elapsed_s'], result['log']))
    summary = result['summary']
    assert summary is not None, 'no summary written; see %s' % result['log']
    assert summary['stopped'] is False, summary['stop_reason']
    hosts = summary['hosts']
    assert hosts[CONTROL]['wave'] != hosts['gc-001']['wave'] == 'wave_1', hosts  # wave_1: the canary
    for host in GUEST_HOSTS:
        assert hosts[host]['outcome'] == 'patched', (host, hosts[host])
        state = rl.sim_state(host)
        guest = [d for d in state['domains'] if d['id'] != 0][0]
        # The guest's lines were in xl dmesg from the apply on, through the soak and the checks.
        ring = state['dmesg']
        applied_at = ring.index('(XEN) livepatch: %s finished APPLY with rc=0' % PAYLOAD)
        assert ring[applied_at + 1:applied_at + 1 + len(CONSOLE)] == ['(d%d) %s' % (guest['id'], line) for line in CONSOLE]
        assert state['applied'] == [PAYLOAD], host
        assert [(p['name'], p['reverted']) for p in state['payloads']] == [(PAYLOAD, False)], host
        assert state['counters']['applied_ok'] == 1, host
        assert [(e['event'], e.get('outcome'), e.get('failed_checks')) for e in rl.ledger(host)] == [
            ('intent', None, None), ('outcome', 'patched', [])], host
    # The control: the same text from the hypervisor is an error, and the host was reverted.
    assert hosts[CONTROL]['outcome'] == 'reverted', hosts[CONTROL]
    assert 'dmesg_clean' in hosts[CONTROL]['detail'], hosts[CONTROL]['detail']
    state = rl.sim_state(CONTROL)
    assert state['applied'] == [] and '(XEN) %s' % CONSOLE[0] in state['dmesg']
    assert [(e['event'], e.get('outcome')) for e in rl.ledger(CONTROL)] == [('intent', None), ('outcome', 'reverted')]
