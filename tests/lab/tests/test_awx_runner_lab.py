# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling live patch run the way AWX runs a job (issue 18), on the small lab fleet (6 hosts).

AWX cannot run here, but its engine can: ansible-runner with a private data dir (inventory,
env/extravars holding survey-style answers and the awx_job_id / tower_job_id AWX sets, project/
with a wrapper playbook that imports the FQCN playbook noreboot.xen.rolling_livepatch), streamed
as AWX streams a job to an execution node through Receptor:
``ansible-runner transmit DIR -p wrapper.yml | ansible-runner worker | ansible-runner process DIR``,
three processes. The collection comes from its own tarball, installed where the "execution node"
(the worker's environment) finds it, as an execution environment has it.

Checked: the job's status and rc, the job events (one play start per live patch wave, tasks only
in the plan's waves and only on their hosts, a ``playbook_on_stats`` event whose ``artifact_data``
holds the plan and the summary published with set_stats), and the job id in the run id that the
hosts' ledgers carry.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import shutil
import subprocess
import time

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(LAB))

import bench_rolling_livepatch as rl  # noqa: E402
import lab_for_test  # noqa: E402
import labctl  # noqa: E402

SPEC = os.path.join(LAB, 'fleets', 'small.yml')
BIN = os.path.join(REPO, '.venv', 'bin')
JOB_ID = 4711
IDENT = 'awx-job-%d' % JOB_ID
WRAPPER = '''---
# What an AWX project holds: a playbook of its own that runs the collection's playbook by FQCN
# (the collection comes from the execution environment).
- name: Rolling live patch (AWX job template)
  ansible.builtin.import_playbook: noreboot.xen.rolling_livepatch
'''

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


def _run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, **kwargs)
    assert proc.returncode == 0, '%s: rc %d\n%s\n%s' % (argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    with open(SPEC) as handle:
        spec = handle.read()
    with lab_for_test.lab_up(str(tmp_path_factory.mktemp('awx')), spec) as up:
        manifest = rl.write_advisory(os.path.join(up['workdir'], 'advisory'))[0]
        yield dict(up, manifest=manifest, hosts=sorted(rl.lab_hosts()))


def _install_collection(workdir):
    """The collection as an execution environment has it: built with galaxy and installed from the tarball."""
    dist = os.path.join(workdir, 'dist')
    collections = os.path.join(workdir, 'ee-collections')
    _run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', REPO, '--output-path', dist])
    (tarball,) = [os.path.join(dist, n) for n in os.listdir(dist) if n.endswith('.tar.gz')]
    _run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '-p', collections, tarball],
         env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections))
    return collections


def _private_data_dir(lab, root):
    os.makedirs(os.path.join(root, 'inventory'))
    os.makedirs(os.path.join(root, 'env'))
    os.makedirs(os.path.join(root, 'project'))
    shutil.copy(lab['inventory'], os.path.join(root, 'inventory', 'hosts.yml'))
    with open(os.path.join(root, 'project', 'wrapper.yml'), 'w') as handle:
        handle.write(WRAPPER)
    shutil.copy(os.path.join(LAB, 'ansible.cfg'), os.path.join(root, 'project', 'ansible.cfg'))
    extravars = {
        # Survey answers, typed as AWX's survey types give them.
        'noreboot_xen_advisories': [lab['manifest']],
        'noreboot_xen_failure_budget_hosts': 1,
        'noreboot_xen_reboot_ok': False,
        'noreboot_xen_wave_policy': {'wave_sizes': [1, '100%']},
        # Where the controller keeps its records (a directory of the job here).
        'noreboot_xen_summary_path': os.path.join(lab['workdir'], 'reports', 'summary.json'),
        'noreboot_xen_run_lock_dir': os.path.join(lab['workdir'], 'runs'),
        # What AWX adds to every job's extra vars.
        'awx_job_id': JOB_ID, 'tower_job_id': JOB_ID, 'awx_job_template_name': 'noreboot.xen rolling live patch',
        'awx_user_name': 'operator', 'awx_inventory_name': 'lab small',
    }
    with open(os.path.join(root, 'env', 'extravars'), 'w') as handle:
        yaml.safe_dump(extravars, handle)


def _stream(private_dir, collections):
    """transmit | worker | process, three processes as AWX and Receptor run them; returns their rcs and seconds."""
    env = {'PATH': '%s:/usr/sbin:/usr/bin:/sbin:/bin' % BIN, 'HOME': os.environ.get('HOME', '/root'),
           'LANG': 'C.UTF-8', 'ANSIBLE_COLLECTIONS_PATH': collections, 'ANSIBLE_COLLECTIONS_SCAN_SYS_PATH': 'false',
           'ANSIBLE_SSH_CONTROL_PATH_DIR': os.path.join(labctl.LAB_ROOT, 'cp'), 'ANSIBLE_FORCE_COLOR': '0'}
    runner = os.path.join(BIN, 'ansible-runner')
    started = time.time()
    transmit = subprocess.Popen([runner, 'transmit', private_dir, '-p', 'wrapper.yml', '--ident', IDENT],
                                stdout=subprocess.PIPE, env=env)
    worker = subprocess.Popen([runner, 'worker'], stdin=transmit.stdout, stdout=subprocess.PIPE, env=env)
    transmit.stdout.close()
    process = subprocess.Popen([runner, 'process', private_dir, '--ident', IDENT], stdin=worker.stdout, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env)
    worker.stdout.close()
    output = process.communicate(timeout=600)[0].decode('utf-8', 'replace')
    rcs = (transmit.wait(timeout=60), worker.wait(timeout=60), process.returncode)
    return dict(rcs=rcs, elapsed_s=round(time.time() - started, 1), output=output)


def _events(artifacts):
    folder = os.path.join(artifacts, 'job_events')
    events = []
    for name in os.listdir(folder):
        with open(os.path.join(folder, name)) as handle:
            events.append(json.load(handle))
    return sorted(events, key=lambda e: e['counter'])


def test_rolling_live_patch_as_an_awx_job(lab):
    private_dir = os.path.join(lab['workdir'], 'job')
    _private_data_dir(lab, private_dir)
    collections = _install_collection(lab['workdir'])
    job = _stream(private_dir, collections)
    print('transmit | worker | process: rcs %s, %.1f s' % (job['rcs'], job['elapsed_s']))
    artifacts = os.path.join(private_dir, 'artifacts', IDENT)
    assert job['rcs'] == (0, 0, 0), job['output'][-4000:]
    with open(os.path.join(artifacts, 'status')) as handle:
        assert handle.read().strip() == 'successful', job['output'][-4000:]
    with open(os.path.join(artifacts, 'rc')) as handle:
        assert handle.read().strip() == '0'
    events = _events(artifacts)

    # The artifacts: the plan and the summary, once, in the stats event (what AWX stores as the job's artifacts).
    (stats,) = [e for e in events if e['event'] == 'playbook_on_stats']
    artifact = stats['event_data']['artifact_data']
    assert sorted(artifact) == ['noreboot_xen_rollout_plan', 'noreboot_xen_rollout_summary'], sorted(artifact)
    plan, summary = artifact['noreboot_xen_rollout_plan'], artifact['noreboot_xen_rollout_summary']
    with open(os.path.join(lab['workdir'], 'reports', 'summary.json')) as handle:
        assert summary == json.load(handle), 'the artifact must be the summary the run wrote'
    assert 'invocation' not in plan and plan['decisions'] and plan['run_id'] == summary['run_id']

    # The run id carries the AWX job id, and the ledgers of the patched hosts carry that run id.
    run_id = summary['run_id']
    assert re.match(r'^\d{8}T\d{6}Z-awx%d$' % JOB_ID, run_id), run_id
    live_waves = [w for w in plan['waves'] if w['kind'] in ('canary', 'livepatch')]
    patched = sorted(h for w in live_waves for h in w['hosts'])
    reboot = sorted(h for w in plan['waves'] if w['kind'] == 'reboot' for h in w['hosts'])
    assert len(live_waves) == 2 and len(patched) == 3 and len(reboot) == 3, plan['waves']
    assert sorted(patched + reboot) == lab['hosts']
    for host in patched:
        assert summary['hosts'][host]['outcome'] == 'patched', (host, summary['hosts'][host])
        entries = rl.ledger(host)
        assert entries and {e.get('run_id') for e in entries} == {run_id}, (host, entries)
    for host in reboot:
        assert summary['hosts'][host]['outcome'] == 'pending_reboot'
        assert rl.ledger(host) == [], host

    # One play start per live patch wave play, and tasks on hosts only in the plan's waves, on their hosts.
    plays = dict((e['event_data']['play_uuid'], e['event_data']['play'])
                 for e in events if e['event'] == 'playbook_on_play_start')
    wave_plays = dict((uuid, name) for uuid, name in plays.items() if re.match(r'^Live patch wave \d+$', name))
    assert sorted(wave_plays.values()) == sorted('Live patch wave %d' % n for n in range(1, 13)), plays
    for uuid, name in wave_plays.items():
        number = int(name.rsplit(' ', 1)[1])
        tasks = [e for e in events if e['event'] == 'playbook_on_task_start' and e['event_data']['play_uuid'] == uuid]
        hosts = sorted({e['event_data']['host'] for e in events if e['event'].startswith('runner_on_')
                        and e['event_data'].get('play_uuid') == uuid and e['event_data']['host'] != 'localhost'})
        wave = [w for w in live_waves if w['number'] == number]
        if wave:
            assert tasks and hosts == sorted(wave[0]['hosts']), (name, hosts, wave)
        else:
            assert not tasks and not hosts, (name, hosts)
