# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_livepatch.yml on two real Xen hypervisors (tests/testbed), not on the lab.

It sits with the lab's rolling test because it runs the same playbook the same way; the
hosts are QEMU VMs of the real testbed (Debian's Xen 4.17.5 and 4.17.7, Xen's own test
payloads built for them). Opt-in, because it starts two VMs (about 4 GiB, a few minutes):

    NOREBOOT_XEN_REAL_TESTBED=1 .venv/bin/pytest -q -s tests/lab/tests/test_rolling_livepatch_real_xen.py

Needs root and a built testbed (python3 tests/testbed/build_testbed.py). In order:

1. an advisory declaring that xen_replace_world makes ``xl info`` xen_extra read
   "Hello World" (it really reads "Hello Again Wor"): the canary's health check catches it,
   the payload is reverted and unloaded, the run stops itself;
2. an advisory with xen_hello_world: the 4.17.5 canary is patched (xen_extra "Hello World"),
   the 4.17.7 host (no payload for its build) is planned for a reboot;
3. the same again: nothing changes.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from xen_builds import XEN_4175

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
HOSTS_PY = os.path.join(REPO, 'tests', 'testbed', 'hosts.py')
CACHE = os.environ.get('NOREBOOT_XEN_TESTBED_CACHE', '/var/cache/noreboot-xen-testbed')

pytestmark = [
    pytest.mark.skipif(os.environ.get('NOREBOOT_XEN_REAL_TESTBED') != '1',
                       reason='opt-in: NOREBOOT_XEN_REAL_TESTBED=1 (starts two real Xen VMs)'),
    pytest.mark.skipif(os.geteuid() != 0, reason='the testbed needs root'),
]

MANIFEST = '''schema: 1
id: %(id)s
title: "%(title)s"
affected:
  hypervisors:
    versions: [">=4.17.0,<4.18.0"]
livepatches:
  - xen_build_id: %(build_id)s
    file: %(name)s.livepatch
    sha256: %(sha)s
    name: %(name)s
%(meta)s    expect:
      xl_info:
        xen_extra: "Hello World"
fallback:
  reboot: true
  fixed_build_ids: []
  packages:
    debian: {package: xen-hypervisor-4.17-amd64, version: "4.17.7+13-g2445b30a44-0+deb12u1"}
'''


@pytest.fixture(scope='module')
def testbed(tmp_path_factory):
    payloads = os.path.join(CACHE, 'payloads', '4.17.5')
    if not os.path.isfile(os.path.join(payloads, 'xen_hello_world.livepatch')):
        pytest.fail('the testbed is not built (%s has no payloads): run python3 tests/testbed/build_testbed.py'
                    % CACHE)
    work = str(tmp_path_factory.mktemp('real-xen'))
    run_dir = os.path.join(work, 'tb')
    subprocess.run([sys.executable, HOSTS_PY, 'up', '--host', 'rl4175=4.17.5', '--host', 'rl4177=4.17.7',
                    '--run-dir', run_dir], check=True)
    try:
        with open(os.path.join(run_dir, 'hosts.json')) as handle:
            hosts = json.load(handle)['hosts']
        inventory = {'all': {'vars': {'ansible_user': 'root', 'ansible_python_interpreter': '/usr/bin/python3',
                                      'ansible_ssh_common_args': '-o StrictHostKeyChecking=no '
                                      '-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'},
                             'hosts': {}}}
        for host in hosts:
            inventory['all']['hosts'][host['name']] = {
                'ansible_host': host['address'], 'ansible_port': host['port'],
                'ansible_ssh_private_key_file': host['identity_file'],
                'noreboot_xen_failure_domain': 'rack-' + host['name']}
        with open(os.path.join(work, 'inventory.json'), 'w') as handle:
            json.dump(inventory, handle)
        manifests = {}
        for key, name, meta in (('replace', 'xen_replace_world', ''),
                                ('hello', 'xen_hello_world', '    metadata: LIVEPATCH_RULEZ\n')):
            dest = os.path.join(work, name + '.livepatch')
            shutil.copyfile(os.path.join(payloads, name + '.livepatch'), dest)
            with open(dest, 'rb') as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            manifests[key] = os.path.join(work, key + '.yml')
            with open(manifests[key], 'w') as handle:
                handle.write(MANIFEST % dict(id='TB-' + key.upper(), title='testbed: %s' % name, build_id=XEN_4175,
                                             name=name, sha=digest, meta=meta))
        yield dict(work=work, hosts=dict((h['name'], h) for h in hosts), manifests=manifests)
    finally:
        subprocess.run([sys.executable, HOSTS_PY, 'down', '--run-dir', run_dir], check=False)


def rollout(testbed, manifest, label):
    summary_path = os.path.join(testbed['work'], 'summary-%s.json' % label)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, '.cache', 'collections'),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='False',
               # A dom0 under TCG on a loaded machine can take more than the default 10 s to send SSH's banner
               # (as the testbed's own playbook runs allow for): not a fault of the run under test.
               ANSIBLE_TIMEOUT='120', ANSIBLE_PIPELINING='1')
    argv = [os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i',
            os.path.join(testbed['work'], 'inventory.json'), os.path.join(REPO, 'playbooks', 'rolling_livepatch.yml'),
            '-e', json.dumps({'noreboot_xen_advisories': [manifest], 'noreboot_xen_summary_path': summary_path,
                              'noreboot_xen_reboot_ok': False})]
    started = time.time()
    proc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    log = proc.stdout.decode('utf-8', 'replace')
    with open(os.path.join(testbed['work'], '%s.log' % label), 'w') as handle:
        handle.write(log)
    print('%s: rc %d in %.1f s' % (label, proc.returncode, time.time() - started))
    with open(summary_path) as handle:
        return proc.returncode, json.load(handle), log


def ssh(testbed, host, command):
    info = testbed['hosts'][host]
    argv = ['ssh', '-i', info['identity_file'], '-p', str(info['port']), '-o', 'StrictHostKeyChecking=no',
            '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=120',
            'root@' + info['address'], command]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True).stdout.decode()


def test_wrong_effect_is_caught_and_reverted_on_real_xen(testbed):
    rc, summary, _log = rollout(testbed, testbed['manifests']['replace'], 'replace')
    assert rc != 0
    assert summary['hosts']['rl4175']['outcome'] == 'reverted'
    assert summary['hosts']['rl4175']['detail'] == 'expected_effect'
    assert summary['stop_reason'].startswith('canary failed: rl4175 (reverted: expected_effect)')
    assert summary['hosts']['rl4177']['outcome'] == 'pending_reboot'
    assert 'Nothing to list' in ssh(testbed, 'rl4175', 'xen-livepatch list')
    assert 'xen_extra              : .5' in ssh(testbed, 'rl4175', 'xl info')


def test_canary_applies_hello_world_and_417_7_is_planned_for_reboot(testbed):
    rc, summary, _log = rollout(testbed, testbed['manifests']['hello'], 'hello')
    assert rc == 0, summary.get('stop_reason')
    assert summary['hosts']['rl4175'] == dict(decision='livepatch', wave='wave_1', outcome='patched', detail=None)
    assert summary['hosts']['rl4177']['outcome'] == 'pending_reboot'
    assert 'xen_extra              : Hello World' in ssh(testbed, 'rl4175', 'xl info')
    ledger = [json.loads(line) for line in ssh(testbed, 'rl4175', 'cat /var/lib/noreboot-xen/ledger.jsonl').splitlines()]
    assert [(e['name'], e['event'], e.get('outcome')) for e in ledger] == [
        ('xen_replace_world', 'intent', None), ('xen_replace_world', 'outcome', 'reverted'),
        ('xen_hello_world', 'intent', None), ('xen_hello_world', 'outcome', 'patched')]


def test_second_run_changes_nothing_on_real_xen(testbed):
    rc, summary, log = rollout(testbed, testbed['manifests']['hello'], 'hello-again')
    assert rc == 0
    assert summary['hosts']['rl4175']['outcome'] == 'already_patched'
    recap = [line.split() for line in log.splitlines() if line.startswith('rl4')]
    assert recap and all('changed=0' in line for line in recap), recap
