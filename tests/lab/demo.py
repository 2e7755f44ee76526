# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make demo`: bring the lab fleet up, run the collection's main job on it, tear it down.

    sudo .venv/bin/python tests/lab/demo.py [--spec SPEC] [--playbook PLAYBOOK] [-- EXTRA ansible-playbook ARGS]

The fleet is torn down whatever happens (playbook failure, Ctrl-C). Ansible settings come from
tests/lab/ansible.cfg (forks, pipelining, ControlPersist sockets under the lab's directory so
`down` can close them); host key checking is off for the lab hosts only, by inventory vars.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

# The faulty hosts of fleets/rolling50.yml: the crash host and the flaky one.
DEMO_FAILURE_BUDGET = 2
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import labctl  # noqa: E402


def say(text):
    print('\n==== %s' % text, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--spec', default=os.path.join(HERE, 'fleets', 'default.yml'))
    parser.add_argument('--playbook', default=os.path.join(REPO, 'playbooks', 'inventory_report.yml'))
    parser.add_argument('--keep', action='store_true', help='leave the fleet up afterwards (then: make lab-down)')
    parser.add_argument('--lab-advisory', action='store_true',
                        help='write an advisory manifest for the lab payloads (lab_xsa_fix, one per live-patchable '
                             'build; 4.17.7 gets none, so its hosts plan for a reboot into the fixed 4.17.8, staged '
                             'on every host) and pass it to the playbook as noreboot_xen_advisories, with '
                             'noreboot_xen_summary_path and noreboot_xen_reboot_ok=true (for rolling_livepatch.yml)')
    parser.add_argument('extra', nargs=argparse.REMAINDER, help='more ansible-playbook arguments, after --')
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('make demo: the lab needs root (network namespaces, mounts, one sshd per host). '
                 'Run it as root, e.g. `sudo make demo`.')
    if not os.path.isfile(args.playbook):
        sys.exit('make demo: playbook %s does not exist (set LAB_PLAYBOOK=...)' % args.playbook)
    extra = [a for a in args.extra if a != '--']

    def on_signal(signum, _frame):
        raise KeyboardInterrupt('signal %d' % signum)

    signal.signal(signal.SIGTERM, on_signal)
    rc = 1
    kept = []
    try:
        say('bringing up the lab fleet %s' % os.path.relpath(args.spec, REPO))
        if labctl.leftovers_exist() and not labctl.only_stray_directory():
            print('make demo: a lab is already up here (%s): it may be someone else\'s, so the demo does not '
                  'touch it. Take it down with `make lab-down` first.' % labctl.LAB_ROOT, file=sys.stderr)
            args.keep = True  # nothing of ours to tear down
            return 1
        if labctl.main(['up', '--spec', args.spec, '--timeout', '120']) != 0:
            return 1
        inventory = os.path.join(labctl.LAB_ROOT, 'inventory.yml')
        report_dir = os.path.join(labctl.LAB_ROOT, 'report')
        env = dict(os.environ)
        env['ANSIBLE_CONFIG'] = os.path.join(HERE, 'ansible.cfg')
        env['ANSIBLE_SSH_CONTROL_PATH_DIR'] = os.path.join(labctl.LAB_ROOT, 'cp')
        env.setdefault('ANSIBLE_COLLECTIONS_PATH', os.path.join(REPO, '.cache', 'collections'))
        # Live wave progress ([rollout] lines) beside the default output, as docs/rolling_livepatch.md shows.
        env.setdefault('ANSIBLE_CALLBACKS_ENABLED', 'noreboot.xen.rollout_progress')
        playbook_vars = dict(noreboot_xen_report_dir=report_dir)
        rollout_summary = os.path.join(report_dir, 'rollout_summary.json')
        if args.lab_advisory:
            import bench_rolling_livepatch  # pylint: disable=import-outside-toplevel
            manifest = bench_rolling_livepatch.write_advisory(os.path.join(labctl.LAB_ROOT, 'advisory'))[0]
            say('advisory manifest for the lab payloads: %s' % manifest)
            playbook_vars.update(noreboot_xen_advisories=[manifest], noreboot_xen_summary_path=rollout_summary)
            # The hosts no payload fits are rebooted into the advisory's fixed build. The lab cannot run
            # apt: the fixed package is staged on every host as if the site's package pipeline had
            # installed it (next boot runs it, GRUB's default boots it), and the role is told so.
            fixed = bench_rolling_livepatch.stage_fixed_build(sorted(bench_rolling_livepatch.lab_hosts()))
            say('fixed hypervisor %s (build-id %s) staged on every host as its package would install it; hosts '
                'no payload fits get it by a reboot (noreboot_xen_reboot_ok=true, guests saved and restored)'
                % (fixed['debian_version'], fixed['build_id']))
            playbook_vars.update(noreboot_xen_reboot_ok=True, reboot_fallback_install_packages=False,
                                 reboot_fallback_reboot_timeout=120)
            # The fleet has two faulty hosts on purpose (a guest that crashes after the apply, a host that
            # drops off the network): the demo writes a budget out for them, as an operator must; by
            # default (no budget written) the run halts at the first failed host. -e in LAB_PLAYBOOK_ARGS wins.
            playbook_vars.update(noreboot_xen_failure_budget_hosts=DEMO_FAILURE_BUDGET)
            say('failure budget written out: noreboot_xen_failure_budget_hosts=%d (the lab fleet has %d faulty hosts '
                'on purpose; without a budget the run halts at the first failure)'
                % (DEMO_FAILURE_BUDGET, DEMO_FAILURE_BUDGET))
        argv = [os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i', inventory, args.playbook,
                '-e', json.dumps(playbook_vars)] + extra
        say('running %s on it: %s' % (os.path.relpath(args.playbook, REPO), ' '.join(argv[1:])))
        t0 = time.time()
        rc = subprocess.call(argv, env=env, cwd=labctl.LAB_ROOT)
        say('playbook finished with rc %d in %.0f s' % (rc, time.time() - t0))
        summary = rollout_summary if args.lab_advisory else os.path.join(report_dir, 'fleet_summary.json')
        if os.path.isfile(summary):
            with open(summary) as handle:
                data = json.load(handle)
            say('fleet summary (%s)' % summary)
            if isinstance(data, dict):
                # Fleet-wide figures; per-host tables shown by their size (the file has them all).
                short = {k: (v if not isinstance(v, (dict, list)) or len(v) <= 12 else '<%d entries>' % len(v))
                         for k, v in data.items()}
                print(json.dumps(short, indent=1, sort_keys=True))
            else:
                print(json.dumps(data, indent=1)[:4000])
        if args.lab_advisory and os.path.basename(args.playbook) != 'inventory_report.yml':
            # The fleet as the run left it, with the same advisory: the state per advisory (changes nothing).
            argv = [os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i', inventory,
                    os.path.join(REPO, 'playbooks', 'inventory_report.yml'),
                    '-e', json.dumps(dict(noreboot_xen_report_dir=report_dir,
                                          noreboot_xen_advisories=playbook_vars['noreboot_xen_advisories']))]
            say('the fleet\'s patch state after the run: %s' % ' '.join(argv[1:]))
            subprocess.call(argv, env=env, cwd=labctl.LAB_ROOT, stdout=subprocess.DEVNULL)
        kept = keep_reports(report_dir, [os.path.splitext(rollout_summary)[0] + '.html',
                                         os.path.join(report_dir, 'fleet_report.html')])
        say('lab status after the run')
        labctl.main(['status'])
    except KeyboardInterrupt:
        print('\ninterrupted: tearing the lab down', file=sys.stderr)
        rc = 130
    finally:
        if not args.keep:
            say('tearing the lab fleet down')
            labctl.main(['down'])
    if kept:
        say('reports (kept after the lab is torn down; open them in a browser)')
        for name, path in kept:
            print('%s: %s' % (name, path))
    return rc


def keep_reports(report_dir, paths):
    """Copy the HTML reports (and the JSON next to them) out of the lab's directory, which `down` removes,
    to tests/output/demo/; returns ``[(what, kept path)]``."""
    keep_dir = os.path.join(REPO, 'tests', 'output', 'demo')
    os.makedirs(keep_dir, exist_ok=True)
    kept = []
    for path in paths:
        if not os.path.isfile(path):
            continue
        for companion in (path, os.path.splitext(path)[0] + '.json',
                          os.path.join(report_dir, 'fleet_summary.json') if path.endswith('fleet_report.html') else None):
            if companion and os.path.isfile(companion):
                shutil.copy(companion, os.path.join(keep_dir, os.path.basename(companion)))  # the mode too (0600)
        what = 'fleet state report' if path.endswith('fleet_report.html') else 'run report'
        kept.append((what, os.path.join(keep_dir, os.path.basename(path))))
    return kept


if __name__ == '__main__':
    sys.exit(main())
