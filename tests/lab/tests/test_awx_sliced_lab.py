# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sliced mode (issue 18 item 4) as AWX runs it, on 14 lab hosts: the plan and the canaries unsliced, then the
remaining waves as a sliced job of 4 slices, run at once, each through its own ``ansible-runner transmit | worker |
process`` (separate processes standing in for execution nodes) on AWX's cut of the inventory, then the merge node.

The whole run's budget (1 failed host) is split over the slices by their remaining hosts; a host of a slice whose
share is 0 fails its health check in that slice's first wave (an error line on the console after its apply, so it
is reverted): that slice stops before its next wave, the other three finish, and the merged summary and report
account for every host of the plan, the stop named by its slice.
"""

from __future__ import absolute_import, division, print_function

import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

import awx_runner_job as awx  # noqa: E402
import awx_sliced_rollout as sliced  # noqa: E402
import bench_rolling_livepatch as rl  # noqa: E402
import lab_for_test  # noqa: E402
import labctl  # noqa: E402

SPEC = '''name: awx-sliced
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: sl, count: 14, build: deb-4.17.5, hardware: intel-cascadelake, guests: 0, failure_domain: rack-a}
'''
ERROR_LINE = "Assertion 'spin_is_locked(&d->page_alloc_lock)' failed at common/page_alloc.c:2404"
FAULT = {'after_applies': 1, 'from': 'xen', 'lines': [ERROR_LINE]}
POLICY = {'wave_sizes': [6, '100%'], 'max_per_domain': '100%'}
SLICES = 4

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    with lab_for_test.lab_up(str(tmp_path_factory.mktemp('awxsliced')), SPEC) as up:
        manifest = rl.write_advisory(os.path.join(up['workdir'], 'advisory'))[0]
        yield dict(up, manifest=manifest, hosts=sorted(rl.lab_hosts()),
                   collections=awx.install_collection(up['workdir']))


def _answers(lab):
    work = lab['workdir']
    return {'noreboot_xen_advisories': [lab['manifest']], 'noreboot_xen_wave_policy': POLICY,
            'noreboot_xen_failure_budget_hosts': 1, 'noreboot_xen_reboot_ok': False,
            'noreboot_xen_run_lock_dir': os.path.join(work, 'runs')}


def _job(lab, name, job_id, playbook, extravars):
    paths = {'noreboot_xen_plan_path': os.path.join(lab['workdir'], 'plans', 'plan-%d.json' % job_id),
             'noreboot_xen_summary_path': os.path.join(lab['workdir'], 'reports', 'summary-%d.json' % job_id)}
    result = sliced.run_job(lab['workdir'], lab['collections'], lab['inventory'], name, job_id, playbook,
                            dict(_answers(lab), **dict(paths, **extravars)))
    print('%s (job %d): %s rc %d, %.1f s' % (name, job_id, result['status'], result['rc'], result['elapsed_s']))
    return result


def test_a_sliced_rollout_splits_the_budget_and_a_fault_stops_its_slice_only(lab):
    plan_job = _job(lab, 'plan', 201, 'noreboot.xen.plan', {})
    assert (plan_job['status'], plan_job['rc']) == ('successful', 0), plan_job['output'][-3000:]
    plan = plan_job['artifacts']['noreboot_xen_rollout_plan']
    assert sorted(plan['decisions']) == lab['hosts']
    (canary,) = [w['hosts'] for w in plan['waves'] if w['kind'] == 'canary']
    second = [w['hosts'] for w in plan['waves']][1]

    canary_job = _job(lab, 'canary', 202, 'noreboot.xen.rolling_livepatch',
                      dict(plan_job['artifacts'], noreboot_xen_rollout_phase='canary'))
    assert (canary_job['status'], canary_job['rc']) == ('successful', 0), canary_job['output'][-3000:]

    # The slices' remaining hosts (AWX's cut less the canaries) and the shares every slice will compute.
    own = [sliced.awx_slice(lab['hosts'], n, SLICES) for n in range(1, SLICES + 1)]
    remaining = [[h for h in hosts if h not in canary] for hosts in own]
    weights = [len(r) for r in remaining]
    # Largest remainder of 1 over the weights: the slice with the largest weight (the lowest number on a tie).
    expected_shares = [int(n == weights.index(max(weights))) for n in range(SLICES)]
    # The fault: a host of the first wave after the canaries, in a slice whose share is 0 and that has a later wave.
    faulty = [(n, h) for n in range(SLICES) for h in remaining[n] if h in second and expected_shares[n] == 0
              and [x for x in remaining[n] if x not in second]]
    assert faulty, (own, second)
    stop_slice, bad_host = faulty[0]
    labctl.main(['fault', bad_host, 'console_after_apply', json.dumps(FAULT)])

    artifacts = dict(plan_job['artifacts'], **canary_job['artifacts'])
    handed = dict(artifacts, noreboot_xen_rollout_phase='after_canary')
    results, wall = sliced.run_slices(lab['workdir'], lab['collections'], lab['inventory'], lab['hosts'], SLICES, 301,
                                      dict(_answers(lab), noreboot_xen_summary_path=os.path.join(
                                          lab['workdir'], 'reports', 'slice-{slice}.json'), **handed))
    labctl.main(['fault', bad_host, 'console_after_apply', 'null'])
    for number, result in enumerate(results, 1):
        print('slice %d of %d (job %d): %s rc %d, %.1f s' % (number, SLICES, result['job_id'], result['status'],
                                                             result['rc'], result['elapsed_s']))
    print('sliced job: %.1f s wall (4 slices at once)' % wall)

    shares = []
    for number, result in enumerate(results, 1):
        key = 'noreboot_xen_rollout_slice_summary_%d_of_%d' % (number, SLICES)
        assert key in result['artifacts'], (number, sorted(result['artifacts']), result['output'][-3000:])
        summary = result['artifacts'][key]
        # Each slice ran only its hosts of the remaining waves, in plan order.
        assert sorted(summary['hosts']) == sorted(remaining[number - 1]), number
        plays = [e['event_data']['play'] for e in result['events'] if e['event'] == 'playbook_on_play_start']
        assert 'Live patch waves' in plays
        assert summary['slice'] == {'number': number, 'count': SLICES}
        split = summary['budget_split']
        assert split['run_limit'] == 1 and split['spent'] == 0 and split['remaining'] == 1
        shares.append(split['shares'])
        assert summary['budget']['limit'] == split['shares'][number - 1]
        if number - 1 == stop_slice:
            assert (result['status'], summary['stopped']) == ('failed', True), result['output'][-3000:]
            (stop,) = awx.task_messages(result['events'], 'Gate - the run stops here')
            assert 'failure budget exceeded: 1 failed host(s) of %d to patch, the budget allows 0' % weights[number - 1] \
                in stop and bad_host in stop, stop
            assert summary['hosts'][bad_host]['outcome'] == 'reverted'
            later = [h for h in remaining[number - 1] if h not in second]
            assert later and all(summary['hosts'][h]['outcome'] == 'not_started' for h in later)
            assert all(rl.ledger(h) == [] for h in later)
        else:
            assert (result['status'], result['rc'], summary['stopped']) == ('successful', 0, False), \
                result['output'][-3000:]
            assert all(e['outcome'] == 'patched' for e in summary['hosts'].values()), summary['hosts']
    # Every slice computed the same shares; they sum to the remaining budget, never more.
    assert all(s == shares[0] for s in shares) and shares[0] == expected_shares and sum(shares[0]) == 1

    merge = _job(lab, 'merge', 305, 'noreboot.xen.merge_slice_reports',
                 dict(artifacts, **dict(sliced.sliced_artifacts(results), noreboot_xen_rollout_slices=SLICES)))
    # The merge fails the workflow's last node (a slice stopped), after writing the report.
    assert merge['status'] == 'failed', merge['output'][-3000:]
    merged = merge['artifacts']['noreboot_xen_rollout_summary']
    assert merged['problems'] == [] and sorted(merged['hosts']) == lab['hosts']
    assert merged['totals']['hosts'] == len(lab['hosts'])
    assert merged['totals']['patched'] == len(lab['hosts']) - 1 - len(later) and merged['totals']['reverted'] == 1
    assert merged['stopped'] and merged['stop_reason'].startswith('slice %d of %d: failure budget exceeded'
                                                                  % (stop_slice + 1, SLICES))
    assert [s['stopped'] for s in merged['slices']] == [n == stop_slice for n in range(SLICES)]
    report = os.path.join(lab['workdir'], 'reports', 'summary-305.html')
    with open(report) as handle:
        html = handle.read()
    assert 'STOPPED' in html and bad_host in html
