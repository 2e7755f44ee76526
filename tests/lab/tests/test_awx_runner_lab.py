# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling live patch run the way AWX runs a job (issue 18), on the small lab fleet (6 hosts).

AWX cannot run here, but its engine can: ansible-runner with a private data dir (inventory,
env/extravars holding survey-style answers and the awx_job_id / tower_job_id AWX sets, project/
with a wrapper playbook that imports the FQCN playbook noreboot.xen.rolling_livepatch), streamed
as AWX streams a job to an execution node through Receptor:
``ansible-runner transmit DIR -p wrapper.yml | ansible-runner worker | ansible-runner process DIR``,
three processes (tests/lab/awx_runner_job.py). The collection comes from its own tarball, installed where
the "execution node" (the worker's environment) finds it, as an execution environment has it.

Checked: the job's status and rc, the job events (one batch of the live patch play per wave, in plan
order, each opened by its gate, tasks only on its wave's hosts, a ``playbook_on_stats`` event whose ``artifact_data``
holds the plan and the summary published with set_stats), and the job id in the run id that the
hosts' ledgers carry.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import awx_runner_job as awx  # noqa: E402
import bench_rolling_livepatch as rl  # noqa: E402
import lab_for_test  # noqa: E402

SPEC = os.path.join(LAB, 'fleets', 'small.yml')
JOB_ID = 4711
IDENT = 'awx-job-%d' % JOB_ID

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    with open(SPEC) as handle:
        spec = handle.read()
    with lab_for_test.lab_up(str(tmp_path_factory.mktemp('awx')), spec) as up:
        manifest = rl.write_advisory(os.path.join(up['workdir'], 'advisory'))[0]
        yield dict(up, manifest=manifest, hosts=sorted(rl.lab_hosts()))


def _extravars(lab):
    return {
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
        'awx_user_name': 'operator', 'awx_inventory_name': 'lab small', 'awx_job_launch_type': 'manual',
    }


def test_rolling_live_patch_as_an_awx_job(lab):
    private_dir = os.path.join(lab['workdir'], 'job')
    awx.private_data_dir(private_dir, lab['inventory'], 'noreboot.xen.rolling_livepatch', _extravars(lab))
    job = awx.stream(private_dir, awx.install_collection(lab['workdir']), IDENT)
    print('transmit | worker | process: rcs %s, %.1f s' % (job['rcs'], job['elapsed_s']))
    assert job['rcs'] == (0, 0, 0), job['output'][-4000:]
    result = awx.job_result(private_dir, IDENT)
    assert (result['status'], result['rc']) == ('successful', 0), job['output'][-4000:]
    events = result['events']
    # The run did not stop itself: no stop event (tests/lab/tests/test_awx_workflow_lab.py checks the one of a stop).
    assert awx.task_messages(events, 'Gate - the run stops here') == []

    # The artifacts: the plan and the summary, once, in the stats event (what AWX stores as the job's artifacts).
    assert len([e for e in events if e['event'] == 'playbook_on_stats']) == 1
    artifact = result['artifacts']
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

    # One play runs every live patch wave as its serial batches; Ansible starts each batch as a play of its own
    # (a play start event, its own play uuid): one per wave of the plan, in plan order, each with a gate and
    # tasks on exactly its wave's hosts.
    starts = sorted((e for e in events if e['event'] == 'playbook_on_play_start'
                     and e['event_data']['play'] == 'Live patch waves'), key=lambda e: e['counter'])
    assert len(starts) == len(live_waves), [e['event_data'] for e in starts]
    for wave, start in zip(live_waves, starts):
        uuid = start['event_data']['play_uuid']
        tasks = [e['event_data']['task'] for e in events
                 if e['event'] == 'playbook_on_task_start' and e['event_data']['play_uuid'] == uuid]
        hosts = sorted({e['event_data']['host'] for e in events if e['event'].startswith('runner_on_')
                        and e['event_data'].get('play_uuid') == uuid and e['event_data']['host'] != 'localhost'})
        assert tasks[0] == 'Gate - may this wave start?' and hosts == sorted(wave['hosts']), (wave, tasks, hosts)
