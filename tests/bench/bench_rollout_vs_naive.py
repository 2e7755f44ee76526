# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (``make bench``): this collection's rolling live patch against the playbook an operator
would write without it, and against Ansible's own floor, on the same lab fleet; prints figures.

    sudo .venv/bin/python tests/bench/bench_rollout_vs_naive.py [--spec tests/lab/fleets/bench200.yml]
        [--only ours] [--extra-vars JSON] [--strategy mitogen --mitogen-lib DIR]

On one lab fleet (labctl), one run each, side by side:

(a) ours: ``playbooks/rolling_livepatch.yml`` with the lab advisory (tests/lab/bench_rolling_livepatch.py
    write_advisory; hosts it plans for a reboot are rebooted into the staged fixed build);
(b) naive: tests/bench/naive_rolling_livepatch.yml, command tasks doing the same detection, staging,
    upload, apply and two checks, in ``serial`` batches of the sizes (a)'s plan used, with
    ``max_fail_percentage: 0`` (the lab is brought down and up again before it: same starting state);
(c) floor: tests/bench/floor_round_trips.yml, ``ansible.builtin.ping`` as many times per host as (a)
    ran modules on a live-patched host (median), in the same batches.

Every run starts without SSH ControlPersist masters (closed before each run), with the lab's
ansible.cfg (forks 50, pipelining). For each: wall time, return code, module executions per host
(counted by a callback), and the controller's peak memory: the largest sum of PSS over the run's
process tree (ansible-playbook and its forks, ssh clients included), sampled every 0.25 s.
Then the ratios naive/ours and ours/floor. ``--strategy mitogen`` runs all three with Mitogen for Ansible's
``mitogen_linear`` strategy (``pip install --target DIR mitogen``, DIR given as ``--mitogen-lib``), as
the ansible.cfg lines in README.md's benchmark section set it. Not a test: nothing is asserted. Needs root.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LAB = os.path.join(REPO, 'tests', 'lab')
sys.path.insert(0, LAB)
sys.path.insert(0, os.path.join(LAB, 'simulator'))

import bench_rolling_livepatch as rl  # noqa: E402
import labctl  # noqa: E402

DEFAULT_SPEC = os.path.join(LAB, 'fleets', 'bench200.yml')
NAIVE = os.path.join(HERE, 'naive_rolling_livepatch.yml')
FLOOR = os.path.join(HERE, 'floor_round_trips.yml')


def session_pss(sid):
    """Sum of PSS (bytes) of every process of session ``sid``."""
    total = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            if os.getsid(int(pid)) != sid:
                continue
            with open('/proc/%s/smaps_rollup' % pid) as handle:
                for line in handle:
                    if line.startswith('Pss:'):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def close_ssh_masters():
    """Close the ControlPersist masters of the lab's control directory: each run pays its own SSH setup."""
    cp = os.path.join(labctl.LAB_ROOT, 'cp')
    subprocess.run(['pkill', '-f', 'ControlPath=%s' % cp], check=False)
    subprocess.run(['pkill', '-f', cp], check=False)
    time.sleep(0.5)


STRATEGY_ENV = {}
# --profile: the task profile callback in every run (a list, so that main sets it without a global statement).
PROFILE = []


def mitogen_env(lib):
    """The environment that makes ansible-playbook run with Mitogen's mitogen_linear strategy. Mitogen opens
    its own SSH connections and does not take the lab inventory's ansible_ssh_common_args for host keys."""
    return dict(ANSIBLE_STRATEGY_PLUGINS=os.path.join(lib, 'ansible_mitogen', 'plugins', 'strategy'),
                ANSIBLE_STRATEGY='mitogen_linear', ANSIBLE_HOST_KEY_CHECKING='False',
                PYTHONPATH=os.pathsep.join(p for p in (os.environ.get('PYTHONPATH'), lib) if p))


def timed_run(argv, workdir, log_name):
    """Runs ``argv`` in a session of its own; returns dict(rc, elapsed_s, peak_pss, log)."""
    close_ssh_masters()
    env = rl.rollout_env(workdir)
    env.update(STRATEGY_ENV)
    if PROFILE:
        # tests/bench/noreboot_task_profile.py: per-task and per-play time, controller CPU (JSON beside the log).
        env['ANSIBLE_CALLBACK_PLUGINS'] = env['ANSIBLE_CALLBACK_PLUGINS'] + os.pathsep + HERE
        env['ANSIBLE_CALLBACKS_ENABLED'] = env['ANSIBLE_CALLBACKS_ENABLED'] + ',noreboot_task_profile'
        env['NOREBOOT_TASK_PROFILE_PATH'] = os.path.join(workdir, log_name + '.profile.json')
    log_path = os.path.join(workdir, log_name)
    peak = [0]
    with open(log_path, 'w') as log:
        started = time.time()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], session_pss(proc.pid))
                done.wait(0.25)
        sampler = threading.Thread(target=sample)
        sampler.start()
        rc = proc.wait()
        elapsed = time.time() - started
        done.set()
        sampler.join()
    calls_path = os.path.join(workdir, 'module_calls.json')
    calls = None
    if os.path.exists(calls_path):
        with open(calls_path) as handle:
            calls = json.load(handle)
        os.rename(calls_path, os.path.join(workdir, log_name + '.calls.json'))
    return dict(rc=rc, elapsed_s=round(elapsed, 1), peak_pss=peak[0], log=log_path, calls=calls)


def lab_payloads(manifest_dir, expects):
    """{build_id: {path, name, xen_extra}} of the advisory's payloads, for the naive playbook."""
    import yaml
    with open(os.path.join(manifest_dir, 'lab-xsa.yml')) as handle:
        manifest = yaml.safe_load(handle)
    return dict((p['xen_build_id'], dict(path=os.path.join(manifest_dir, p['file']), name=p['name'],
                                         xen_extra=expects[p['xen_build_id']]))
                for p in manifest['livepatches'])


def per_host(calls, hosts):
    counts = [len((calls or {}).get(h, [])) for h in hosts]
    return (min(counts), statistics.median(counts), max(counts)) if counts else (0, 0, 0)


def mib(value):
    return value / 1048576.0


def bring_up(spec, workdir):
    inventory = os.path.join(workdir, 'inventory.yml')
    started = time.time()
    if labctl.main(['up', '--spec', spec, '--inventory', inventory]) != 0:
        raise SystemExit('the lab did not come up (%s)' % spec)
    return inventory, time.time() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--spec', default=DEFAULT_SPEC)
    parser.add_argument('--only', choices=['ours'], help='run only this collection\'s rolling live patch (e.g. at 1000 hosts)')
    parser.add_argument('--extra-vars', default='{}', help='JSON of extra variables for the rolling playbook')
    parser.add_argument('--strategy', choices=['linear', 'mitogen'], default='linear')
    parser.add_argument('--mitogen-lib', help='where mitogen is installed (pip install --target)')
    parser.add_argument('--profile', action='store_true', help='per-task and per-play time and controller CPU of '
                        'each run (tests/bench/noreboot_task_profile.py): printed at the end of its log, JSON beside it')
    args = parser.parse_args(argv)
    PROFILE[:] = [True] if args.profile else []
    if args.strategy == 'mitogen':
        if not args.mitogen_lib or not os.path.isdir(os.path.join(args.mitogen_lib, 'ansible_mitogen')):
            parser.error('--strategy mitogen needs --mitogen-lib DIR holding ansible_mitogen (pip install --target DIR '
                         '-r requirements/bench.txt)')
        STRATEGY_ENV.update(mitogen_env(args.mitogen_lib))
    if os.geteuid() != 0:
        print('needs root (network namespaces, mounts, sshd per host)')
        return 2
    if labctl.leftovers_exist():
        print('a lab is already up as %s: run `NOREBOOT_XEN_LAB_INSTANCE=%d python3 tests/lab/labctl.py down` first'
              % (labctl.LAB_ROOT, labctl.INSTANCE))
        return 2
    workdir = tempfile.mkdtemp(prefix='bench-naive-')
    print('make bench: %s, %s, %d cores, %s, strategy %s; work dir %s'
          % (datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC'), platform.node(), os.cpu_count(),
             os.path.basename(args.spec), args.strategy, workdir))
    results = {}
    try:
        inventory, up_s = bring_up(args.spec, workdir)
        hosts = sorted(rl.lab_hosts())
        manifest, expects = rl.write_advisory(os.path.join(workdir, 'advisory'))
        rl.stage_fixed_build(hosts)
        print('fleet: %d hosts, up in %.1f s' % (len(hosts), up_s))
        extra = {'noreboot_xen_reboot_ok': True, 'reboot_fallback_install_packages': False}
        extra.update(json.loads(args.extra_vars))
        summary_path = os.path.join(workdir, 'summary.json')
        ours = timed_run(rl.rollout_command(inventory, manifest, summary_path, extra), workdir, 'ours.log')
        with open(summary_path) as handle:
            summary = json.load(handle)
        results['ours'] = ours
        outcomes = summary.get('hosts') or {}
        patched = [h for h in hosts if (outcomes.get(h) or {}).get('outcome') == 'patched']
        sizes = [row['hosts'] for row in summary.get('waves') or [] if row.get('kind') != 'reboot' and row['hosts']]
        print('(a) ours:  %7.1f s  rc %d  peak %6.0f MiB  modules/host (patched) min/median/max %s  totals %s'
              % (ours['elapsed_s'], ours['rc'], mib(ours['peak_pss']), per_host(ours['calls'], patched),
                 json.dumps(summary.get('totals'), sort_keys=True)))
        print('    live patch waves (hosts): %s' % sizes)
        if args.only == 'ours':
            return 0
        round_trips = int(per_host(ours['calls'], patched)[1])
        floor = timed_run([rl.ANSIBLE_PLAYBOOK, '-i', inventory, FLOOR, '-e', json.dumps(
            {'floor_serial': sizes, 'floor_round_trips': round_trips, 'floor_target': ':'.join(patched)})],
            workdir, 'floor.log')
        results['floor'] = floor
        print('(c) floor: %7.1f s  rc %d  peak %6.0f MiB  pings/host %d, same batches'
              % (floor['elapsed_s'], floor['rc'], mib(floor['peak_pss']), round_trips))
        labctl.main(['down'])
        inventory, up_s = bring_up(args.spec, workdir)
        manifest, expects = rl.write_advisory(os.path.join(workdir, 'advisory-naive'))
        naive = timed_run([rl.ANSIBLE_PLAYBOOK, '-i', inventory, NAIVE, '-e', json.dumps(
            {'naive_serial': sizes, 'naive_target': ':'.join(patched),
             'naive_payloads': lab_payloads(os.path.join(workdir, 'advisory-naive'), expects)})],
            workdir, 'naive.log')
        results['naive'] = naive
        print('(b) naive: %7.1f s  rc %d  peak %6.0f MiB  modules/host min/median/max %s (lab up again in %.1f s)'
              % (naive['elapsed_s'], naive['rc'], mib(naive['peak_pss']), per_host(naive['calls'], patched), up_s))
        print('ratios: naive/ours %.2f (target >= 3), ours/floor %.2f (target <= 1.3)'
              % (naive['elapsed_s'] / ours['elapsed_s'], ours['elapsed_s'] / floor['elapsed_s']))
    finally:
        labctl.main(['down'])
        with open(os.path.join(workdir, 'results.json'), 'w') as handle:
            json.dump(dict((k, dict((kk, vv) for kk, vv in v.items() if kk != 'calls')) for k, v in results.items()),
                      handle, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
