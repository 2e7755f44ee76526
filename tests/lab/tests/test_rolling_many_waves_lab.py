# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A plan with more waves than rolling_livepatch.yml ever had plays runs them all (issue 15 item 1).

The playbook once wrote its waves out by hand (12 live patch and 8 reboot wave plays) and refused a
plan with more. Now each phase is one play whose serial batches are the plan's waves, as many as the
plan has. On a lab fleet of its own (14 hosts with a payload, 9 that need a reboot into the fixed
build, no guests), wave sizes of 1 cut 14 live patch waves (the canary one included) and 9 reboot
waves (the reboot canary one included); with noreboot_xen_reboot_ok=true the run must run all 23,
one after the other in plan order, each batch exactly its wave's hosts:

* rc 0, the summary not stopped, every host patched or rebooted, a row with an elapsed time per wave;
* the callback noreboot.xen.rollout_progress prints a start and an end line for every wave
  (``wave k of 23``), naming the wave's host, in plan order;
* the gate runs once before every wave (23 gate tasks).

Needs root; its own lab instance (NOREBOOT_XEN_LAB_INSTANCE, 7 by default, tests/lab/tests/conftest.py).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess

import pytest

import bench_rolling_livepatch as rl  # noqa: E402
import lab_for_test  # noqa: E402

LIVE = ['mw5-%03d' % i for i in range(1, 15)]
REBOOT = ['mw7-%03d' % i for i in range(1, 10)]
SPEC = '''---
name: manywaves
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
  deb-4.17.7: {version: 4.17.7}
defaults:
  reboot_delay: 1
groups:
  - {name: mw5, count: 14, build: deb-4.17.5, hardware: intel-cascadelake, guests: 0, failure_domain: rack-a}
  - {name: mw7, count: 9, build: deb-4.17.7, hardware: amd-milan, guests: 0, failure_domain: rack-b}
'''

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


@pytest.fixture(scope='module')
def lab_run(tmp_path_factory):
    with lab_for_test.lab_up(str(tmp_path_factory.mktemp('manywaves')), SPEC) as up:
        assert sorted(rl.lab_hosts()) == sorted(LIVE + REBOOT)
        manifest = rl.write_advisory(os.path.join(up['workdir'], 'advisory'))[0]
        rl.stage_fixed_build(REBOOT)
        summary_path = os.path.join(up['workdir'], 'summary.json')
        plan_path = os.path.join(up['workdir'], 'plan.json')
        extra = {'noreboot_xen_reboot_ok': True, 'noreboot_xen_failure_budget_hosts': 0,
                 'noreboot_xen_wave_policy': {'wave_sizes': [1], 'reboot_wave_sizes': [1]},
                 'noreboot_xen_plan_path': plan_path,
                 'reboot_fallback_install_packages': False, 'reboot_fallback_reboot_timeout': 120}
        env = rl.rollout_env(up['workdir'])
        env['ANSIBLE_CALLBACKS_ENABLED'] = 'noreboot_module_calls,noreboot.xen.rollout_progress'
        proc = subprocess.run(rl.rollout_command(up['inventory'], manifest, summary_path, extra), cwd=rl.REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        with open(os.path.join(up['workdir'], 'run.log'), 'w') as handle:
            handle.write(proc.stdout)
        assert os.path.exists(summary_path), proc.stdout[-4000:]
        with open(summary_path) as handle:
            summary = json.load(handle)
        with open(plan_path) as handle:
            plan = json.load(handle)
        yield dict(rc=proc.returncode, output=proc.stdout, summary=summary, plan=plan,
                   log=os.path.join(up['workdir'], 'run.log'))


def test_the_plan_has_more_waves_than_the_playbook_once_had_plays(lab_run):
    waves = lab_run['plan']['waves']
    live = [w for w in waves if w['kind'] in ('canary', 'livepatch')]
    reboot = [w for w in waves if w['kind'] == 'reboot']
    assert len(live) == 14 > 12 and len(reboot) == 9 > 8, [(w['number'], w['kind'], w['hosts']) for w in waves]
    assert all(len(w['hosts']) == 1 for w in waves)


def test_every_wave_runs_and_every_host_ends_fixed(lab_run):
    summary = lab_run['summary']
    assert lab_run['rc'] == 0, lab_run['log']
    assert summary['stopped'] is False and summary['stop_reason'] is None
    outcomes = dict((h, e['outcome']) for h, e in summary['hosts'].items())
    assert outcomes == dict([(h, 'patched') for h in LIVE] + [(h, 'rebooted') for h in REBOOT]), outcomes
    rows = [row for row in summary['waves'] if row['wave'] != 'not_in_a_wave']
    assert [row['wave'] for row in rows] == ['wave_%d' % w['number'] for w in lab_run['plan']['waves']]
    assert all(row['hosts'] == 1 and row['elapsed_s'] is not None for row in rows), rows
    for host in LIVE:
        assert rl.sim_state(host)['applied'], host


def test_each_batch_is_its_wave_in_plan_order(lab_run):
    waves = lab_run['plan']['waves']
    lines = [line for line in lab_run['output'].splitlines() if line.startswith('[rollout] wave ')]
    starts = [line for line in lines if ' start: ' in line]
    ends = [line for line in lines if ' end: ' in line]
    assert len(starts) == len(ends) == len(waves) == 23, lines
    for position, (wave, start, end) in enumerate(zip(waves, starts, ends), 1):
        head = '[rollout] wave %d of 23 ' % position
        assert start.startswith(head + 'start: %s, 1 hosts (%s);' % (wave['kind'], wave['hosts'][0])), (start, wave)
        assert end.startswith(head + 'end: %s, 1 hosts: ' % wave['kind']), (end, wave)


def test_one_gate_per_wave(lab_run):
    # The gate task runs once per serial batch of each phase play: as many gates as the plan has waves.
    gates = [line for line in lab_run['output'].splitlines() if line.startswith('TASK [Gate - may this')]
    assert len(gates) == len(lab_run['plan']['waves']) == 23, gates
