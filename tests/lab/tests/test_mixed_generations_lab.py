# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian 12's Xen 4.17.5 and Debian 13's Xen 4.20.4 in one lab fleet (tests/lab/fleets/mixed420.yml),
over SSH: xen_facts reads each generation as it is, and one rolling live patch patches both.

Each lab host's simulated xl / xen-livepatch behave as its build's real ones did
(tests/testbed/xen-4.20-differences.md): the 4.20 hosts report 4.20.5-pre, take only whole
command words, print 4.20's usage text and log a wrong build-id on three lines. The advisory has
a lab_xsa_fix payload for each build (xen_extra gains -lp1: `.5-lp1`, `.5-pre-lp1`).

Needs root. About a minute on the shared 2-core machine.
"""

import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(LAB))

import bench_rolling_livepatch as rl  # noqa: E402  pylint: disable=wrong-import-position
import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position
import lab_model  # noqa: E402  pylint: disable=wrong-import-position
import labctl  # noqa: E402  pylint: disable=wrong-import-position

SPEC = os.path.join(LAB, 'fleets', 'mixed420.yml')
B5 = lab_model.KNOWN_BUILDS['4.17.5']['build_id']
B20 = lab_model.KNOWN_BUILDS['4.20.4']['build_id']
# group -> (build-id, version xen_facts reports, xen_extra after lab_xsa_fix, virt_caps has shadow)
EXPECTED = {'g17': (B5, '4.17.5', '.5-lp1', True), 'g20': (B20, '4.20.5-pre', '.5-pre-lp1', False)}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run `make lab-test` as root')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('mixed420'))
    with lab_for_test.lab_up(workdir, spec_path=SPEC) as up:
        hosts = rl.lab_hosts()
        yield dict(workdir=workdir, inventory=up['inventory'], hosts=hosts,
                   groups=dict((name, host['group']) for name, host in hosts.items()),
                   key=os.path.join(labctl.LAB_ROOT, 'ssh', 'id_ed25519'))


def ssh(lab, host, command):
    argv = ['ssh', '-i', lab['key'], '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
            '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', 'root@' + lab['hosts'][host]['addr'], command]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode('utf-8', 'replace')


def test_the_fleet_has_both_generations(lab):
    assert sorted(set(lab['groups'].values())) == ['g17', 'g20']
    for name, group in lab['groups'].items():
        build = rl.sim_state(name)['build']
        assert (build['build_id'], build['generation']) == (EXPECTED[group][0], {'g17': '4.17', 'g20': '4.20'}[group])
        # The host's own tools: 4.20's takes --force and whole words only, 4.17's a prefix.
        rc, out, err = ssh(lab, name, 'xen-livepatch --force list; echo rc=$?; xen-livepatch lis; echo rc=$?')
        if group == 'g20':
            assert out == 'Nothing to list\nrc=0\nrc=1\n', (name, out, err)
            assert err == "Unrecognised command 'lis' -- try 'xen-livepatch help'\n", (name, err)
        else:
            assert out == 'rc=1\nNothing to list\nrc=0\n', (name, out, err)
            assert err == "Unrecognised command '--force' -- try 'xen-livepatch help'\n", (name, err)


def test_xen_facts_reads_each_generation(lab):
    proc = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'ansible'), '-i', lab['inventory'], 'xen_hosts',
                           '-m', 'noreboot.xen.xen_facts', '-o'], env=rl.rollout_env(lab['workdir']),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=180,
                          check=False)
    assert proc.returncode == 0, proc.stdout
    facts = {}
    for line in proc.stdout.splitlines():
        if ' | SUCCESS => ' in line:
            name, rest = line.split(' | SUCCESS => ', 1)
            facts[name] = json.loads(rest)['ansible_facts']['xen']
    assert sorted(facts) == sorted(lab['hosts']), proc.stdout
    for name, xen in facts.items():
        build_id, version, _extra, shadow = EXPECTED[lab['groups'][name]]
        hypervisor = xen['hypervisor']
        assert (hypervisor['build_id'], hypervisor['version']) == (build_id, version), (name, hypervisor)
        assert ('shadow' in hypervisor['virt_caps']) is shadow, (name, hypervisor['virt_caps'])
        assert xen['livepatch']['supported'] is True and xen['livepatch']['payloads'] == [], name


def test_one_rolling_live_patch_patches_both_generations(lab):
    manifest, expects = rl.write_advisory(os.path.join(lab['workdir'], 'advisory'))
    assert sorted(expects.items()) == sorted((b, e) for b, _v, e, _s in EXPECTED.values())
    result = rl.run_rollout(lab['inventory'], manifest, lab['workdir'], extra_vars={'noreboot_xen_reboot_ok': False})
    with open(result['log']) as handle:
        log = handle.read()
    assert result['rc'] == 0, log[-6000:]
    outcomes = dict((h, e['outcome']) for h, e in result['summary']['hosts'].items())
    assert outcomes == dict((h, 'patched') for h in lab['hosts']), outcomes
    for name, group in lab['groups'].items():
        build_id, _version, extra, _shadow = EXPECTED[group]
        state = rl.sim_state(name)
        version = lab_model.resolve_build({'version': state['build']['version'], 'build_id': build_id})['version']
        assert state['applied'] == ['lab_xsa_fix_%s' % version.replace('.', '_')], (name, state['applied'])
        rc, out, err = ssh(lab, name, 'xl info | grep "^xen_extra"')
        assert (rc, out) == (0, 'xen_extra              : %s\n' % extra), (name, out, err)
    # A second run has nothing left to do on Xen.
    again = rl.run_rollout(lab['inventory'], manifest, lab['workdir'], extra_vars={'noreboot_xen_reboot_ok': False},
                           log_name='run2.log')
    assert again['rc'] == 0
    for name in lab['hosts']:
        assert rl.sim_state(name)['counters']['applied_ok'] == 1, name
