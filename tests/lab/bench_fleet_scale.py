# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: bring a lab fleet up, measure it, tear it down; print the figures.

    sudo .venv/bin/python tests/lab/bench_fleet_scale.py [--spec tests/lab/fleets/scale200.yml] [--ansible]

Prints: up time (until every host's sshd answers), memory of every process in the lab's
namespaces (sum of RSS, and sum of PSS, which counts shared pages once), the lab's tmpfs use,
optionally the time of one Ansible ad-hoc command over the whole fleet, and down time.
The targets (200 hosts up in < 30 s, < 2 GiB) are printed next to the figures, not asserted.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import labctl  # noqa: E402


def memory_of(pids):
    rss = pss = 0
    for pid in pids:
        try:
            with open('/proc/%d/smaps_rollup' % pid) as handle:
                for line in handle:
                    if line.startswith('Rss:'):
                        rss += int(line.split()[1])
                    elif line.startswith('Pss:'):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss * 1024, pss * 1024


def mem_available():
    with open('/proc/meminfo') as handle:
        for line in handle:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    return 0


def tmpfs_use():
    """Bytes the lab's files take under LAB_ROOT (a tmpfs: that is memory)."""
    total = 0
    for root, _dirs, files in os.walk(labctl.LAB_ROOT):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--spec', default=os.path.join(HERE, 'fleets', 'scale200.yml'))
    parser.add_argument('--ansible', action='store_true', help='also time `ansible -m ping` over the fleet')
    args = parser.parse_args()
    if labctl.leftovers_exist():
        sys.exit('bench: a lab is already up here; run `labctl.py down` first')
    inventory = os.path.join(labctl.LAB_ROOT, 'inventory.yml')
    available_before = mem_available()
    t0 = time.time()
    rc = labctl.main(['up', '--spec', args.spec, '--timeout', '120'])
    t_up = time.time() - t0
    try:
        if rc:
            sys.exit('bench: up failed (rc %d)' % rc)
        time.sleep(1)
        procs = labctl.lab_processes()
        rss, pss = memory_of(procs)
        hosts = len(labctl.lab_namespaces())
        files = tmpfs_use()
        available_drop = available_before - mem_available()
        print()
        print('hosts:             %d' % hosts)
        print('up time:           %.1f s (until every sshd answers; target < 30 s for 200 hosts)' % t_up)
        print('processes:         %d (%.1f per host: init shell + sshd)' % (len(procs), len(procs) / max(hosts, 1)))
        print('memory, sum RSS:   %.0f MiB (%.2f MiB per host)' % (rss / 2 ** 20, rss / 2 ** 20 / max(hosts, 1)))
        print('memory, sum PSS:   %.0f MiB (%.2f MiB per host; target < 2048 MiB in total)'
              % (pss / 2 ** 20, pss / 2 ** 20 / max(hosts, 1)))
        print('lab files (tmpfs): %.0f MiB' % (files / 2 ** 20))
        print('MemAvailable drop: %.0f MiB (whole machine, includes kernel objects; noisy when the machine is shared)'
              % (available_drop / 2 ** 20))
        if args.ansible:
            env = dict(os.environ, ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(labctl.LAB_ROOT, 'cp'),
                       ANSIBLE_PIPELINING='1', ANSIBLE_HOST_KEY_CHECKING='0', ANSIBLE_FORKS='50')
            ansible = os.path.join(REPO, '.venv', 'bin', 'ansible')
            t1 = time.time()
            proc = subprocess.run([ansible, '-i', inventory, 'all', '-m', 'ansible.builtin.ping', '-o'], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
            ok = proc.stdout.count('SUCCESS')
            print('ansible ping:      %d/%d hosts in %.1f s (forks 50, pipelining)' % (ok, hosts, time.time() - t1))
    finally:
        t2 = time.time()
        labctl.main(['down'])
        print('down time:         %.1f s' % (time.time() - t2))
        left = labctl.leftovers_report()
        print('leftovers:         %s' % ('none' if not left else '; '.join(left)))


if __name__ == '__main__':
    main()
