# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An interrupted reboot fallback is finished by the next run (issue 14 items 1 and 6), over SSH.

(a) The controller (ansible-playbook of playbooks/reboot_fallback.yml) is SIGKILLed while the lab
host is down for its reboot, its guests saved on its disk. The host comes back on the fixed
build by itself. The same command run again must plan the host finish_reboot (not
not_affected), bring every saved guest back, close the ledger's reboot intent with an outcome,
and say so in its summary.

(b) A fixed build that does not boot (fault reboot_never_returns on every host of the group: the
hosts never come back from the reboot into it) stops the run after the reboot canary (one host per
fixed build and hardware class), rc non-zero, the later reboot hosts untouched.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import signal
import subprocess
import time

import pytest

# The lab instance given by the caller, else one of its own.
os.environ.setdefault('NOREBOOT_XEN_LAB_INSTANCE', '7')

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import labctl  # noqa: E402
import reboot_fallback_lab_support as support  # noqa: E402
from reboot_fallback_lab_support import FIXED, install_fixed, sim_state  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

SPEC = '''name: rbr
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 25
groups:
  - {name: kill, count: 1, build: deb-4.17.5, hardware: intel-cascadelake, failure_domains: [rack-a],
     guests: [{name: web, mem: 256, vcpus: 1}, {name: db, mem: 512, vcpus: 2}]}
  - {name: nob, count: 3, build: deb-4.17.5, hardware: amd-milan, failure_domains: [rack-b],
     guests: [{name: app, mem: 256, vcpus: 1}]}
'''
HOST = 'kill-001'
STATE_DIR = '/var/lib/noreboot-xen'


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    yield from support.lab_up(str(tmp_path_factory.mktemp('reboot_resume')), SPEC, 'LAB-XSA-3')


def guests(host):
    return sorted(d['name'] for d in sim_state(host)['domains'] if d['id'] != 0)


def read_jsonl(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_controller_killed_while_the_host_is_down_then_the_rerun_brings_every_guest_back(lab):
    install_fixed(HOST)
    variables = {'noreboot_xen_advisories': [lab['advisory']], 'noreboot_xen_target': 'lab_group_kill',
                 'noreboot_xen_summary_path': os.path.join(lab['workdir'], 'killed.json'),
                 'reboot_fallback_reboot_timeout': 120, 'reboot_fallback_install_packages': False,
                 'noreboot_xen_reboot_ok': True}
    log = os.path.join(lab['workdir'], 'killed.log')
    with open(log, 'w') as handle:
        controller = subprocess.Popen([support.ANSIBLE_PLAYBOOK, '-i', lab['inventory'], support.PLAYBOOK, '-e',
                                       json.dumps(variables)], cwd=support.REPO, env=support.ansible_env(),
                                      stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 180
        while sim_state(HOST).get('boots', 1) < 2:
            assert controller.poll() is None, open(log).read()
            assert time.time() < deadline, 'the host was never rebooted'
            time.sleep(0.5)
        time.sleep(2)  # the reboot module now waits for the host to come back
        os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()
    manifest = json.load(open(labctl.host_path(HOST, STATE_DIR + '/guests.json')))
    assert manifest['status'] == 'evacuated'
    assert sorted((g['name'], g['state']) for g in manifest['guests']) == [('db', 'saved'), ('web', 'saved')]
    ledger = read_jsonl(labctl.host_path(HOST, STATE_DIR + '/ledger.jsonl'))
    assert [(e['event'], e['kind']) for e in ledger] == [('intent', 'reboot_fallback')]
    killed_run = ledger[0]['run_id']
    # The host comes back by itself on the fixed build (after reboot_delay), its guests still on its disk.
    time.sleep(30)
    assert guests(HOST) == []

    rerun = support.run_reboot_fallback(lab, 'lab_group_kill', {'noreboot_xen_reboot_ok': True})
    assert rerun['rc'] == 0, rerun['log']
    rows = dict((r['host'], r) for r in rerun['summary']['hosts'])
    assert rows[HOST]['wave'] == 'finish' and rows[HOST]['outcome'] == 'rebooted', rows
    assert 'finished the reboot fallback of run %s' % killed_run in rows[HOST]['msg']
    assert 'guest(s) running again: db, web' in rows[HOST]['msg']
    assert guests(HOST) == ['db', 'web']
    assert sim_state(HOST)['build']['build_id'] == FIXED and sim_state(HOST)['boots'] == 2
    manifest = json.load(open(labctl.host_path(HOST, STATE_DIR + '/guests.json')))
    assert manifest['status'] == 'restored'
    ledger = read_jsonl(labctl.host_path(HOST, STATE_DIR + '/ledger.jsonl'))
    assert [(e['event'], e.get('outcome')) for e in ledger] == [('intent', None), ('outcome', 'rebooted')]
    assert ledger[1]['resumed_run_id'] == killed_run and ledger[1]['hypervisor_build_id'] == FIXED
    # A third run has nothing left to do: the host is on the fixed build, nothing unfinished.
    again = support.run_reboot_fallback(lab, 'lab_group_kill', {'noreboot_xen_reboot_ok': True})
    assert again['rc'] == 0, again['log']
    assert again['summary']['hosts'] == []


def test_a_fixed_build_that_does_not_boot_stops_the_run_after_the_reboot_canary(lab):
    hosts = ('nob-001', 'nob-002', 'nob-003')
    for host in hosts:
        install_fixed(host)
        labctl.edit_host_state(host, lambda state: state['faults'].__setitem__('reboot_never_returns', True))
    result = support.run_reboot_fallback(lab, 'lab_group_nob', {
        'noreboot_xen_reboot_ok': True, 'noreboot_xen_failure_budget_hosts': 5,
        'noreboot_xen_wave_policy': {'reboot_wave_sizes': ['100%'], 'max_per_domain': '100%'}})
    assert result['rc'] != 0
    summary = result['summary']
    assert [(r['host'], r['wave'], r['outcome']) for r in summary['hosts']] == [
        ('nob-001', 1, 'unreachable'), ('nob-002', 2, 'not_started'), ('nob-003', 2, 'not_started')]
    assert summary['gate']['proceed'] is False
    # The canary never came back with its guest saved on its disk: the stop says the guest first, with
    # where it is; the canary is counted failed.
    assert summary['gate']['reason'].startswith('guests are not running again: nob-001 (unreachable: app (saved to '
                                                '/var/lib/noreboot-xen/saved-guests/app.save'), summary['gate']
    assert [f['host'] for f in summary['gate']['failed_hosts']] == ['nob-001']
    assert sim_state('nob-001')['boots'] == 2
    for host in ('nob-002', 'nob-003'):
        assert sim_state(host)['boots'] == 1 and guests(host) == ['app']
        assert not os.path.exists(labctl.host_path(host, STATE_DIR + '/guests.json'))
