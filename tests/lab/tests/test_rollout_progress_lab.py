# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout_progress callback on a lab run of playbooks/rolling_livepatch.yml (tests/lab/fleets/small.yml:
6 hosts, canaries, a live patch wave whose host's guest crashes after the apply, reboot waves).

Enabled the way an operator does (ANSIBLE_CALLBACKS_ENABLED) with another stdout callback set
(ANSIBLE_STDOUT_CALLBACK=minimal): its wave end lines must count what the run's JSON summary counts,
wave by wave, its ATTENTION lines name the faulted host, and its budget figure is the summary's.
After the run, every patched or rebooted host carries the local fact noreboot_xen, as
ansible.builtin.setup reads it (ansible_local): its effective version is what Xen runs, its last run
is this run with the host's outcome; hosts not patched have none. Needs root; uses the lab instance of NOREBOOT_XEN_LAB_INSTANCE (7 by default, conftest.py).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import bench_rolling_livepatch as rl  # noqa: E402
import lab_for_test  # noqa: E402
import labctl  # noqa: E402

sys.path.insert(0, os.path.join(rl.COLLECTIONS))
from ansible_collections.noreboot.xen.plugins.plugin_utils.wave_progress import parse_end_line  # noqa: E402

SPEC = os.path.join(LAB, 'fleets', 'small.yml')
CRASH = 's5-002'           # its guest crashes after the apply: reverted in the live patch wave
REBOOT = ['s7-001', 's7-002', 'snolp-001']

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


@pytest.fixture(scope='module')
def lab_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('progress'))
    with lab_for_test.lab_up(workdir, spec_path=SPEC) as up:
        inventory = up['inventory']
        manifest, _expects = rl.write_advisory(os.path.join(workdir, 'advisory'))
        rl.stage_fixed_build(REBOOT)
        labctl.edit_host_state(CRASH, lambda state: state['faults'].__setitem__('guest_crash_after_apply',
                                                                                {'after_applies': 1}))
        summary_path = os.path.join(workdir, 'summary.json')
        extra = {'noreboot_xen_reboot_ok': True, 'noreboot_xen_failure_budget_hosts': 2,
                 'reboot_fallback_install_packages': False, 'reboot_fallback_reboot_timeout': 120}
        env = rl.rollout_env(workdir)
        env['ANSIBLE_CALLBACKS_ENABLED'] = 'noreboot_module_calls,noreboot.xen.rollout_progress'
        env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.minimal'
        proc = subprocess.run(rl.rollout_command(inventory, manifest, summary_path, extra), cwd=rl.REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        with open(os.path.join(workdir, 'run.log'), 'w') as handle:
            handle.write(proc.stdout)
        assert os.path.exists(summary_path), proc.stdout[-4000:]
        with open(summary_path) as handle:
            summary = json.load(handle)
        # What any later play sees: the local facts, gathered by Ansible's own setup module.
        setup = subprocess.run([os.path.join(rl.REPO, '.venv', 'bin', 'ansible'), '-i', inventory, 'all', '-m',
                                'ansible.builtin.setup', '-a', 'filter=ansible_local', '-o'], cwd=rl.REPO,
                               env=rl.rollout_env(workdir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, check=False)
        local = {}
        for line in setup.stdout.splitlines():
            if ' | SUCCESS => ' in line:
                host, data = line.split(' | SUCCESS => ', 1)
                local[host.strip()] = json.loads(data)['ansible_facts'].get('ansible_local', {})
        yield dict(rc=proc.returncode, output=proc.stdout, summary=summary, workdir=workdir, local=local,
                   setup=setup.stdout, states=dict((h, rl.sim_state(h)) for h in rl.lab_hosts()))


def progress_lines(output):
    return [line for line in output.splitlines() if line.startswith('[rollout] ')]


def test_wave_end_lines_match_the_summary(lab_run):
    summary = lab_run['summary']
    lines = progress_lines(lab_run['output'])
    print('\n'.join(lines))
    ends = [e for e in (parse_end_line(line) for line in lines) if e]
    rows = [row for row in summary['waves'] if row['wave'] != 'not_in_a_wave']
    assert [e['kind'] for e in ends] == [row['kind'] for row in rows]
    assert 'reboot' in [e['kind'] for e in ends] and 'canary' in [e['kind'] for e in ends]
    for end, row in zip(ends, rows):
        assert end['of'] == len(rows)
        for column in ('hosts', 'patched', 'already_patched', 'reverted', 'failed', 'unreachable', 'rebooted'):
            assert end[column] == row[column], (column, end, row)
    assert [e['wave'] for e in ends] == list(range(1, len(rows) + 1))
    budget = summary['budget']
    assert (ends[-1]['budget_used'], ends[-1]['budget_limit']) == (budget['failures'], budget['limit'])
    starts = [line for line in lines if ' start: ' in line]
    assert len(starts) == len(rows) and 'failure domains: ' in starts[0]


def test_attention_lines_name_the_faulted_host(lab_run):
    summary = lab_run['summary']
    assert summary['hosts'][CRASH]['outcome'] == 'reverted', summary['hosts'][CRASH]
    attention = [line for line in progress_lines(lab_run['output']) if ' ATTENTION ' in line]
    assert [line.split()[2] for line in attention] == [CRASH], attention
    assert attention[0].startswith('[rollout] ATTENTION %s reverted in wave ' % CRASH)


def test_patched_and_rebooted_hosts_carry_the_local_fact(lab_run):
    summary = lab_run['summary']
    local = lab_run['local']
    assert set(local) == set(summary['hosts']), lab_run['setup'][-3000:]
    for host, entry in sorted(summary['hosts'].items()):
        fact = local[host].get('noreboot_xen')
        if entry['outcome'] not in ('patched', 'rebooted'):
            assert fact is None, (host, entry, fact)
            continue
        assert fact is not None, (host, entry)
        assert fact['last_run'] == {'id': summary['run_id'], 'outcome': entry['outcome'],
                                    'kind': 'livepatch' if entry['outcome'] == 'patched' else 'reboot_fallback'}
        state = lab_run['states'][host]
        assert fact['build_id'] == state['build']['build_id'], host
        applied = list(state['applied'])
        assert fact['effective_version'] == '+'.join([fact['hypervisor_version']] + applied), (host, fact)
        if entry['outcome'] == 'patched':
            assert [p['name'] for p in fact['applied_payloads']['LAB-XSA-1']] == applied, (host, fact)
            assert len(fact['applied_payloads']['LAB-XSA-1'][0]['sha256']) == 64
        else:
            assert fact['applied_payloads'] == {} and fact['hypervisor_version'] == '4.17.8', (host, fact)
