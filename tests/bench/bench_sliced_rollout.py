# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not part of ``make test``): the sliced mode against one controller, on a lab fleet; prints figures.

    sudo .venv/bin/python tests/bench/bench_sliced_rollout.py [--spec tests/lab/fleets/scale1000.yml | --hosts 100]
        [--slices 4] [--budget-hosts 2] [--no-unsliced | --unsliced-only]

As AWX runs the approval workflow, each job through ``ansible-runner transmit | worker | process``
(tests/lab/awx_sliced_rollout.py): the plan job, the canary job (phase canary), then the remaining waves
(a) as a sliced job: ``--slices`` slice jobs at once, each on AWX's cut of the inventory (separate
processes standing in for execution nodes; here they all run on this machine), and the merge job;
(b) unless ``--no-unsliced``: the same remaining waves as one job on one controller, on the fleet brought
up afresh (plan and canaries again). Prints each job's wall time side by side, and the budget split: the
whole run's limit, what the canaries spent, each slice's share, failures and whether it stopped.
``--hosts N`` makes a fleet of N hosts (one build, racks of 20, the first host of the second rack crashing a guest
after its apply) instead of a spec file. Reboot hosts are only reported (noreboot_xen_reboot_ok false). Not a
test: nothing is asserted. Needs root.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import platform
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.join(os.path.dirname(HERE), 'lab')
sys.path.insert(0, LAB)
sys.path.insert(0, os.path.join(LAB, 'simulator'))

import awx_runner_job as awx  # noqa: E402
import awx_sliced_rollout as sliced  # noqa: E402
import bench_rolling_livepatch as rl  # noqa: E402
import lab_for_test  # noqa: E402


def small_spec(hosts):
    racks = ['rack-%02d' % i for i in range(1, max(2, (hosts + 19) // 20) + 1)]
    return ('name: sliced%d\ninventory_group: xen_hosts\nbuilds:\n  deb-4.17.5: {version: 4.17.5}\n'
            'defaults:\n  reboot_delay: 1\ngroups:\n'
            '  - {name: a, count: %d, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [%s]}\n'
            '  - {name: x, count: 1, build: deb-4.17.5, hardware: intel-cascadelake, guests: 2, failure_domain: %s,\n'
            '     faults: {guest_crash_after_apply: {after_applies: 1}}}\n'
            % (hosts, hosts - 1, ', '.join(racks), racks[-1]))


def answers(workdir, manifest, args):
    return {'noreboot_xen_advisories': [manifest], 'noreboot_xen_failure_budget_hosts': args.budget_hosts,
            'noreboot_xen_reboot_ok': False, 'noreboot_xen_run_lock_dir': os.path.join(workdir, 'runs'),
            'noreboot_xen_wave_policy': json.loads(args.policy)}


def job(workdir, collections, inventory, base, name, job_id, playbook, extra):
    extra = dict(base, noreboot_xen_summary_path=os.path.join(workdir, 'reports', 'summary-%d.json' % job_id),
                 noreboot_xen_plan_path=os.path.join(workdir, 'plans', 'plan-%d.json' % job_id), **extra)
    result = sliced.run_job(workdir, collections, inventory, name, job_id, playbook, extra)
    print('  %s (job %d): %s rc %d, %.1f s' % (name, job_id, result['status'], result['rc'], result['elapsed_s']),
          flush=True)
    return result


def plan_and_canaries(workdir, collections, inventory, base, first):
    plan_job = job(workdir, collections, inventory, base, 'plan-%d' % first, first, 'noreboot.xen.plan', {})
    canary_job = job(workdir, collections, inventory, base, 'canary-%d' % first, first + 1,
                     'noreboot.xen.rolling_livepatch', dict(plan_job['artifacts'], noreboot_xen_rollout_phase='canary'))
    return plan_job, canary_job, dict(plan_job['artifacts'], **canary_job['artifacts'])


def print_split(merged):
    """The budget split and each slice's outcome, from the merge job's summary."""
    split = merged.get('budget_split') or {}
    print('budget: whole run %s, spent by the canaries %s, remaining %s, shares %s (sum %s)' % (
        split.get('run_limit'), split.get('spent'), split.get('remaining'), split.get('shares'),
        sum(s for s in split.get('shares') or [] if s is not None)))
    for row in merged.get('slices') or []:
        print('  slice %s: %s hosts, to patch %s, share %s, failures %s, stopped %s%s' % (
            row['number'], row.get('hosts'), row.get('to_patch'), row.get('share'), row.get('failures'), row.get('stopped'),
            ' (%s)' % row['stop_reason'] if row.get('stop_reason') else ''))
    print('merged: %s hosts, totals %s, problems %s' % (len(merged.get('hosts') or {}), dict(
        (k, v) for k, v in sorted((merged.get('totals') or {}).items()) if v), merged.get('problems')), flush=True)


def run_sliced(workdir, spec, args):
    """(a): plan, canaries, the remaining waves as ``args.slices`` slice jobs at once, merge; prints as it goes."""
    rows = []
    with lab_for_test.lab_up(workdir, **spec) as up:
        work = up['workdir']
        manifest = rl.write_advisory(os.path.join(work, 'advisory'))[0]
        collections = awx.install_collection(work)
        hosts = sorted(rl.lab_hosts())
        base = answers(work, manifest, args)
        print('(a) sliced, %d hosts, %d slices, %s, %d cores' % (len(hosts), args.slices, platform.node(),
                                                                 os.cpu_count()), flush=True)
        plan_job, canary_job, artifacts = plan_and_canaries(work, collections, up['inventory'], base, 401)
        rows += [('plan', plan_job['elapsed_s'], plan_job['status']),
                 ('canaries', canary_job['elapsed_s'], canary_job['status'])]
        results, wall = sliced.run_slices(
            work, collections, up['inventory'], hosts, args.slices, 501,
            dict(base, noreboot_xen_rollout_phase='after_canary',
                 noreboot_xen_summary_path=os.path.join(work, 'reports', 'slice-{slice}.json'), **artifacts))
        for number, result in enumerate(results, 1):
            summary = result['artifacts'].get('noreboot_xen_rollout_slice_summary_%d_of_%d' % (number, args.slices)) or {}
            rows.append(('  slice %d of %d (%d hosts)' % (number, args.slices, len(summary.get('hosts') or {})),
                         result['elapsed_s'], result['status']))
        rows.append(('remaining waves, sliced (wall)', wall, '%d slices at once' % args.slices))
        merge = job(work, collections, up['inventory'], {}, 'merge', 599, 'noreboot.xen.merge_slice_reports',
                    dict(artifacts, noreboot_xen_rollout_slices=args.slices, **sliced.sliced_artifacts(results)))
        rows.append(('merge', merge['elapsed_s'], merge['status']))
    print('\n'.join(sliced.times_table(rows)))
    print_split(merge['artifacts'].get('noreboot_xen_rollout_summary') or {})
    return rows


def run_one_job(workdir, spec, args):
    """(b): plan, canaries, then the same remaining waves as one job on one controller, on a fresh fleet."""
    with lab_for_test.lab_up(workdir, **spec) as up:
        work = up['workdir']
        manifest = rl.write_advisory(os.path.join(work, 'advisory'))[0]
        collections = awx.install_collection(work)
        base = answers(work, manifest, args)
        print('(b) one controller', flush=True)
        plan_b, canary_b, artifacts_b = plan_and_canaries(work, collections, up['inventory'], base, 701)
        rest = job(work, collections, up['inventory'], base, 'remaining', 703, 'noreboot.xen.rolling_livepatch',
                   dict(artifacts_b, noreboot_xen_rollout_phase='after_canary'))
    one = rest['artifacts'].get('noreboot_xen_rollout_summary') or {}
    rows = [('plan (b)', plan_b['elapsed_s'], plan_b['status']), ('canaries (b)', canary_b['elapsed_s'], canary_b['status']),
            ('remaining waves, one job (b)', rest['elapsed_s'], '%s, budget %s, failures %s, stopped %s' % (
                rest['status'], (one.get('budget') or {}).get('limit'), (one.get('budget') or {}).get('failures'),
                one.get('stopped')))]
    print('\n'.join(sliced.times_table(rows)), flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--spec', default=os.path.join(LAB, 'fleets', 'scale1000.yml'))
    parser.add_argument('--hosts', type=int, help='a generated fleet of this many hosts instead of --spec')
    parser.add_argument('--slices', type=int, default=4)
    parser.add_argument('--budget-hosts', type=int, default=2)
    parser.add_argument('--policy', default='{"max_per_domain": "100%"}', help='noreboot_xen_wave_policy (JSON)')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--no-unsliced', action='store_true', help='skip (b), the remaining waves as one job')
    which.add_argument('--unsliced-only', action='store_true', help='run (b) only (e.g. when (a) ran before)')
    parser.add_argument('--job-timeout', type=int, default=7200, help='seconds one job may take (1000 hosts: tens of minutes)')
    args = parser.parse_args(argv)
    awx.JOB_TIMEOUT_S = args.job_timeout
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench-sliced-') as workdir:
        spec = dict(spec=small_spec(args.hosts)) if args.hosts else dict(spec_path=os.path.abspath(args.spec))
        for part, wanted, run in (('a', not args.unsliced_only, run_sliced), ('b', not args.no_unsliced, run_one_job)):
            if wanted:
                os.makedirs(os.path.join(workdir, part))
                rows += run(os.path.join(workdir, part), spec, args)
    print('all jobs:')
    print('\n'.join(sliced.times_table(rows)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
