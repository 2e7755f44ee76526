# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX approval workflow (issue 18), as far as these machines allow: each node's job run through
ansible-runner (transmit | worker | process, as AWX runs jobs on execution nodes), in the workflow's order,
with the artifacts of the earlier nodes passed as extra vars of the next, as AWX does.

plan (noreboot.xen.plan) -> [approval] -> canary waves (rolling_livepatch, phase canary, the plan artifact)
-> [approval] -> remaining waves (phase after_canary): a fault on the host of the first wave after the
canaries spends the failure budget, and the stop is a job event of its own; then the canary node
launched again on the same approved plan: its canary was patched and the failed host is held since
the plan, so the fleet no longer matches it and the job is refused, naming both, before any host is changed.
(The approval nodes are AWX's own: nothing runs there.)
"""

from __future__ import absolute_import, division, print_function

import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import awx_runner_job as awx  # noqa: E402
import bench_rolling_livepatch as rl  # noqa: E402
import lab_for_test  # noqa: E402
import labctl  # noqa: E402

SPEC = '''name: awx-workflow
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: wf, count: 5, build: deb-4.17.5, hardware: intel-cascadelake, guests: 0, failure_domain: rack-a}
'''
ERROR_LINE = "Assertion 'spin_is_locked(&d->page_alloc_lock)' failed at common/page_alloc.c:2404"
FAULT = {'after_applies': 1, 'from': 'xen', 'lines': [ERROR_LINE]}
POLICY = {'wave_sizes': [1, '100%'], 'max_per_domain': '100%'}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    with lab_for_test.lab_up(str(tmp_path_factory.mktemp('awxflow')), SPEC) as up:
        manifest = rl.write_advisory(os.path.join(up['workdir'], 'advisory'))[0]
        yield dict(up, manifest=manifest, hosts=sorted(rl.lab_hosts()),
                   collections=awx.install_collection(up['workdir']))


def _job(lab, name, job_id, playbook, extravars):
    """One workflow node's job; its survey answers, what AWX adds, and the artifacts handed down to it."""
    root = os.path.join(lab['workdir'], name)
    ident = 'awx-job-%d' % job_id
    answers = {'noreboot_xen_advisories': [lab['manifest']], 'noreboot_xen_wave_policy': POLICY,
               'noreboot_xen_failure_budget_hosts': 0, 'noreboot_xen_reboot_ok': False,
               'noreboot_xen_plan_path': os.path.join(lab['workdir'], 'plans', 'plan-%d.json' % job_id),
               'noreboot_xen_summary_path': os.path.join(lab['workdir'], 'reports', 'summary-%d.json' % job_id),
               'noreboot_xen_run_lock_dir': os.path.join(lab['workdir'], 'runs'),
               'awx_job_id': job_id, 'tower_job_id': job_id, 'awx_workflow_job_id': 100,
               'awx_job_template_name': 'noreboot.xen %s' % name}
    answers.update(extravars)
    awx.private_data_dir(root, lab['inventory'], playbook, answers)
    streamed = awx.stream(root, lab['collections'], ident)
    # transmit must succeed; worker and process end with the playbook's rc, checked by the caller (status, rc).
    assert streamed['rcs'][0] == 0, streamed['output'][-3000:]
    result = awx.job_result(root, ident)
    print('%s (job %d): %s rc %d, %.1f s' % (name, job_id, result['status'], result['rc'], streamed['elapsed_s']))
    result['output'] = streamed['output']
    return result


def test_plan_approve_canaries_approve_the_rest_and_a_relaunch_on_a_stale_plan(lab):
    # Node 1: plan. Changes nothing; its artifact is the plan.
    plan_job = _job(lab, 'plan', 101, 'noreboot.xen.plan', {})
    assert (plan_job['status'], plan_job['rc']) == ('successful', 0), plan_job['output'][-3000:]
    assert sorted(plan_job['artifacts']) == ['noreboot_xen_rollout_plan']
    plan = plan_job['artifacts']['noreboot_xen_rollout_plan']
    assert sorted(plan['decisions']) == lab['hosts'] and plan['counts']['livepatch'] == 5
    assert [(w['kind'], w['size']) for w in plan['waves']] == [('canary', 1), ('livepatch', 1), ('livepatch', 3)]
    canary, second, last = [w['hosts'] for w in plan['waves']]
    for host in lab['hosts']:
        assert rl.ledger(host) == [], host

    # Node 2 (after the approval): the canary waves of the approved plan, which the fleet still matches.
    canary_job = _job(lab, 'canary', 102, 'noreboot.xen.rolling_livepatch',
                      dict(plan_job['artifacts'], noreboot_xen_rollout_phase='canary'))
    assert (canary_job['status'], canary_job['rc']) == ('successful', 0), canary_job['output'][-3000:]
    (table,) = awx.task_messages(canary_job['events'], 'Show the plan')
    assert table[0] == 'Plan: the approved plan of run %s; the fleet still matches it' % plan['run_id']
    assert 'Phase canary: 4 host(s) of the plan left to the other phase' in table
    # The approved plan is handed on as it came (not this job's cut of it), the summary is this job's.
    assert canary_job['artifacts']['noreboot_xen_rollout_plan'] == plan
    summary = canary_job['artifacts']['noreboot_xen_rollout_summary']
    assert dict((h, e['outcome']) for h, e in summary['hosts'].items()) == dict((h, 'patched') for h in canary)
    assert summary['run_id'].endswith('-awx102') and not summary['stopped']
    for host in lab['hosts']:
        assert [e['run_id'] for e in rl.ledger(host)][:1] == ([summary['run_id']] if host in canary else []), host

    # Node 3 (after the second approval): the remaining waves. The first host after the canaries fails its
    # health check (an error line on the console after its apply) and is reverted: with a budget of 0
    # failed hosts, the run stops before the next wave, and says so in a job event of its own.
    labctl.main(['fault', second[0], 'console_after_apply', json.dumps(FAULT)])
    artifacts = dict(plan_job['artifacts'], **canary_job['artifacts'])  # what AWX hands down: every ancestor's
    rest_job = _job(lab, 'rest', 104, 'noreboot.xen.rolling_livepatch',
                    dict(artifacts, noreboot_xen_rollout_phase='after_canary'))
    assert rest_job['status'] == 'failed' and rest_job['rc'] != 0, rest_job['output'][-3000:]
    (stop,) = awx.task_messages(rest_job['events'], 'Gate - the run stops here')
    canary_run = canary_job['artifacts']['noreboot_xen_rollout_summary']['run_id']
    # The budget is the whole run's (issue 18): the limit over all the plan's hosts, less what the canaries job spent.
    assert stop.startswith('The run stops before wave 3: failure budget exceeded: 1 failed host(s) of 4 to patch, '
                           'the budget allows 0 (whole run: noreboot_xen_failure_budget_hosts=0 -> 0; the canary job '
                           '(run %s) spent 0 -> 0 left): %s (reverted' % (canary_run, second[0])), stop
    summary = rest_job['artifacts']['noreboot_xen_rollout_summary']
    assert summary['stopped'] and summary['stop_reason'] == stop.split(': ', 1)[1]
    assert summary['hosts'][second[0]]['outcome'] == 'reverted'
    assert sorted(summary['hosts']) == sorted(second + last)
    for host in last:
        assert summary['hosts'][host]['outcome'] == 'not_started' and rl.ledger(host) == [], host
    labctl.main(['fault', second[0], 'console_after_apply', 'null'])

    # The canary node launched again on the same approved plan: the fleet no longer matches it; refused in the
    # planning task, naming each difference, before any host is changed.
    ledgers = dict((h, rl.ledger(h)) for h in lab['hosts'])
    again = _job(lab, 'canary-again', 105, 'noreboot.xen.rolling_livepatch',
                 dict(plan_job['artifacts'], noreboot_xen_rollout_phase='canary'))
    assert again['status'] == 'failed' and again['rc'] != 0
    (refusal,) = awx.task_messages(again['events'], 'Plan decisions and waves')
    # Both changes since the plan are named: the canary patched, the host of the failed wave now held.
    assert refusal.startswith('the fleet no longer matches the approved plan (noreboot_xen_rollout_plan, run %s), so this run '
                              'is refused before any host is changed: 2 difference(s): %s: decision livepatch in the '
                              'plan, already_patched now; now: ' % (plan['run_id'], canary[0])), refusal
    assert ' | %s: decision livepatch in the plan, held now; now: ' % second[0] in refusal, refusal
    assert not [e for e in again['events'] if e['event'] == 'playbook_on_play_start'
                and e['event_data']['play'].startswith('Live patch wave')]
    assert dict((h, rl.ledger(h)) for h in lab['hosts']) == ledgers
