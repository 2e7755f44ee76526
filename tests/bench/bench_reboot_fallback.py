# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: what the reboot fallback role costs per task at N rebooting hosts; prints figures.

    sudo .venv/bin/python tests/bench/bench_reboot_fallback.py [--hosts 100] [--guests 1] [--wave-size 50]
        [--keep-lab]

Brings up a lab fleet of its own (NOREBOOT_XEN_LAB_INSTANCE, which must be down) of ``--hosts`` hosts of Debian's Xen 4.17.5,
``--guests`` guests each, in ten failure domains; the advisory has no payload for that build, so the plan
sends every host to a reboot (the fixed 4.17.7 staged as its package would install it, as the reboot
lab tests do: reboot_fallback_install_packages false). One run of playbooks/reboot_fallback.yml with
noreboot_xen_reboot_ok true, guest policy save, reboot waves of ``--wave-size`` hosts, and the task
profile callback (tests/bench/noreboot_task_profile.py). Prints: the run's wall time and return code,
the controller's CPU, task results per host from the play recap (ok+changed+failed, skipped apart),
the tasks of the reboot waves play (role included) and the costliest of them. The profile JSON and the
log stay in the work dir. Not a test: nothing is asserted. Needs root. Takes the lab down at the end.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LAB = os.path.join(REPO, 'tests', 'lab')
sys.path.insert(0, LAB)
sys.path.insert(0, os.path.join(LAB, 'simulator'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'support'))

import labctl  # noqa: E402
import reboot_fallback_lab_support as support  # noqa: E402

SPEC = '''name: rbbench
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: r, count: %(hosts)d, build: deb-4.17.5, hardware: intel-cascadelake, guests: %(guests)d,
     failure_domains: [%(domains)s]}
'''

RECAP = re.compile(r'^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)')
WAVES_PLAY = 'Reboot waves'


def recap(output):
    """{host: {ok, changed, unreachable, failed, skipped}} of the log's PLAY RECAP."""
    rows = {}
    for line in output.splitlines():
        match = RECAP.match(line)
        if match:
            rows[match.group(1)] = dict(zip(('ok', 'changed', 'unreachable', 'failed', 'skipped'),
                                            (int(v) for v in match.groups()[1:])))
    return rows


def spread(values):
    return '%s / %s / %s' % (min(values), statistics.median(values), max(values)) if values else '-'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--hosts', type=int, default=100)
    parser.add_argument('--guests', type=int, default=1)
    parser.add_argument('--wave-size', default='50', help='noreboot_xen_wave_policy.reboot_wave_sizes: [this]')
    parser.add_argument('--up-timeout', type=float, default=600.0, help='seconds to wait for every sshd')
    parser.add_argument('--top', type=int, default=15, help='how many of the costliest tasks to print')
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print('needs root (network namespaces, mounts, sshd per host)')
        return 2
    workdir = tempfile.mkdtemp(prefix='bench-reboot-')
    print('bench_reboot_fallback: %s, %s, %d cores, lab instance %d, %d hosts x %d guests, waves of %s; work dir %s'
          % (datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M UTC'), platform.node(), os.cpu_count(),
             labctl.INSTANCE, args.hosts, args.guests, args.wave_size, workdir))
    domains = ', '.join('rack-%02d' % i for i in range(1, 11))
    spec = SPEC % dict(hosts=args.hosts, guests=args.guests, domains=domains)
    started = time.time()
    advisory = os.path.join(workdir, 'lab-xsa-bench.yml')
    with open(advisory, 'w') as handle:
        handle.write(support.ADVISORY % ('LAB-XSA-BENCH', support.FIXED))
    spec_path = os.path.join(workdir, 'spec.yml')
    with open(spec_path, 'w') as handle:
        handle.write(spec)
    inventory = os.path.join(workdir, 'inventory.yml')
    lab = dict(workdir=workdir, inventory=inventory, advisory=advisory, runs=0)
    try:
        # A loaded machine starts 100 sshd slowly: a longer wait than labctl's default.
        if labctl.main(['up', '--spec', spec_path, '--inventory', inventory, '--timeout', str(args.up_timeout)]) != 0:
            print('the lab did not come up')
            return 1
        hosts = sorted(h['name'] for h in labctl.load_lab_state()['hosts'])
        for host in hosts:
            support.install_fixed(host)
        print('fleet: %d hosts, up and staged in %.1f s' % (len(hosts), time.time() - started))
        profile_path = os.path.join(workdir, 'profile.json')
        os.environ['ANSIBLE_CALLBACK_PLUGINS'] = HERE
        os.environ['ANSIBLE_CALLBACKS_ENABLED'] = 'noreboot_task_profile'
        os.environ['NOREBOOT_TASK_PROFILE_PATH'] = profile_path
        result = support.run_reboot_fallback(lab, 'xen_hosts', {
            'noreboot_xen_reboot_ok': True,
            'reboot_fallback_reboot_timeout': 120,
            'noreboot_xen_wave_policy': {'reboot_wave_sizes': [args.wave_size], 'max_per_domain': '100%'}})
        report(result, hosts, profile_path, args.top)
    finally:
        labctl.main(['down', '--quiet'])
    return 0


def report(result, hosts, profile_path, top):
    outcomes = {}
    for row in (result['summary'] or {}).get('hosts', []):
        outcomes[row['outcome']] = outcomes.get(row['outcome'], 0) + 1
    print('run: rc %d, outcomes %s, log %s' % (result['rc'], json.dumps(outcomes, sort_keys=True), result['log']))
    rows = recap(result['output'])
    done = [rows[h]['ok'] + rows[h]['failed'] for h in hosts if h in rows]
    skipped = [rows[h]['skipped'] for h in hosts if h in rows]
    print('task results per host (recap ok+failed, min / median / max): %s; skipped: %s' % (spread(done), spread(skipped)))
    if not os.path.exists(profile_path):
        print('no task profile (%s)' % profile_path)
        return
    with open(profile_path) as handle:
        profile = json.load(handle)
    cpu = profile['controller_cpu_s']
    print('wall %.1f s; controller CPU %.1f s (ansible-playbook) + %.1f s (forks) = %.1f s'
          % (profile['wall_s'], cpu['ansible_playbook'], cpu['forks'], cpu['ansible_playbook'] + cpu['forks']))
    for name, seconds in sorted(profile['plays'].items(), key=lambda kv: -kv[1]):
        print('  play %7.1f s  %s' % (seconds, name))
    waves = [t for t in profile['tasks'] if t['task'].startswith(WAVES_PLAY + ' | ')]
    by_action = {}
    for task in waves:
        by_action.setdefault(task['action'], [0, 0.0])
        by_action[task['action']][0] += 1
        by_action[task['action']][1] += task['seconds']
    print('reboot waves play: %d tasks, %.1f s, %d results (%.1f per host)'
          % (len(waves), sum(t['seconds'] for t in waves), sum(t['results'] for t in waves),
             sum(t['results'] for t in waves) / float(len(hosts) or 1)))
    for action, (count, seconds) in sorted(by_action.items(), key=lambda kv: -kv[1][1]):
        print('  %-40s %3d tasks %7.1f s' % (action, count, seconds))
    print('costliest tasks of the reboot waves play:')
    for task in sorted(waves, key=lambda t: -t['seconds'])[:top]:
        name = task['task'][len(WAVES_PLAY) + 3:]
        values = (task['seconds'], task['runs'], task['results'], name, task['action'])
        print('  %7.1f s  x%-3d %-5d results  %s (%s)' % values)


if __name__ == '__main__':
    sys.exit(main())
