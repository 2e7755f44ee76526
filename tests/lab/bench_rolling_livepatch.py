# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time the rolling live patch on a lab fleet, and the helpers its lab test shares.

    python3 tests/lab/bench_rolling_livepatch.py [--spec tests/lab/fleets/rolling50.yml] [--keep]

Brings the fleet up (labctl), writes an advisory manifest for the lab's own ``lab_xsa_fix``
payloads (one per live-patchable build; 4.17.7 gets none, so its hosts are planned for a
reboot), runs ``playbooks/rolling_livepatch.yml`` once over SSH, prints the wall time, the
summary table and the module calls per host (counted by a small callback), and tears the
fleet down. Prints figures; asserts nothing. Needs root.
"""

from __future__ import absolute_import, division, print_function

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, 'simulator'))

import labctl  # noqa: E402

DEFAULT_SPEC = os.path.join(HERE, 'fleets', 'rolling50.yml')
PLAYBOOK = os.path.join(REPO, 'playbooks', 'rolling_livepatch.yml')
ANSIBLE_PLAYBOOK = os.path.join(REPO, '.venv', 'bin', 'ansible-playbook')
COLLECTIONS = os.path.join(REPO, '.cache', 'collections')
PAYLOAD = 'lab_xsa_fix'
# The build that fixes the lab's flaw on the 4.17 branch (invented: no lab host runs it). The
# advisory names it as the reboot fallback's fixed build; the lab cannot run apt, so it is staged
# on the hosts as if the package were installed (stage_fixed_build).
FIXED_BUILD = {'version': '4.17.8', 'build_id': '4178c0de' + '0' * 28 + '4178', 'debian_version': '4.17.8-1~lab1'}

# Counts, per host, the task results that ran a module on the host: every result that is not
# skipped, not of a controller-side action, and not delegated elsewhere (module_calls.json); and every
# task result a worker process produced for the host, skipped ones and controller-side actions included,
# with the role of the task (task_results.json: what the controller forks per host).
CALLBACK = '''
from __future__ import absolute_import, division, print_function
__metaclass__ = type
import json
import os
from ansible.plugins.callback import CallbackBase

CONTROLLER_ACTIONS = set("""set_fact assert debug meta add_host group_by include_role import_role include_tasks
import_tasks validate_argument_spec fail set_stats include_vars""".split())


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'noreboot_module_calls'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.calls = {}
        self.tasks = {}

    def _record(self, result, status):
        task = result._task
        action = task.action.split('.')[-1]
        if action in CONTROLLER_ACTIONS or result._result.get('skipped'):
            return
        if task.delegate_to and task.delegate_to != result._host.get_name():
            return
        entry = self.calls.setdefault(result._host.get_name(), [])
        entry.append(dict(action=task.action, status=status, changed=bool(result._result.get('changed'))))

    def _record_task(self, result, status):
        # Every task a worker process ran for the host (a fork each, skipped ones too); meta tasks run in the
        # strategy itself, without a worker.
        task = result._task
        if task.action.split('.')[-1] == 'meta':
            return
        role = task._role.get_name() if task._role else None
        self.tasks.setdefault(result._host.get_name(), []).append(
            dict(role=role, task=task.get_name(), action=task.action, status=status))

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')
        self._record_task(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')
        self._record_task(result, 'failed')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')
        self._record_task(result, 'unreachable')

    def v2_runner_on_skipped(self, result):
        self._record_task(result, 'skipped')

    def v2_playbook_on_stats(self, stats):
        with open(os.environ['NOREBOOT_MODULE_CALLS_PATH'], 'w') as handle:
            json.dump(self.calls, handle, indent=1, sort_keys=True)
        if os.environ.get('NOREBOOT_TASK_RESULTS_PATH'):
            with open(os.environ['NOREBOOT_TASK_RESULTS_PATH'], 'w') as handle:
                json.dump(self.tasks, handle, indent=1, sort_keys=True)
'''


def write_callback(directory):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, 'noreboot_module_calls.py'), 'w') as handle:
        handle.write(CALLBACK)
    return directory


def lab_hosts():
    state = labctl.load_lab_state() or {}
    return dict((h['name'], h) for h in state.get('hosts') or [])


def kill_host_modules(host):
    """SIGKILL the Ansible module processes running on a lab host (a pipelined module is a bare
    ``python3`` reading its code from stdin), as if the host-side process died."""
    netns = lab_hosts()[host]['netns']
    pids = subprocess.run(['ip', 'netns', 'pids', netns], stdout=subprocess.PIPE, check=True).stdout.split()
    killed = []
    for pid in pids:
        try:
            with open('/proc/%s/cmdline' % pid.decode(), 'rb') as handle:
                argv = [a for a in handle.read().split(b'\0') if a]
        except OSError:
            continue
        if len(argv) == 1 and os.path.basename(argv[0]).startswith(b'python3'):
            os.kill(int(pid), signal.SIGKILL)
            killed.append(int(pid))
    return killed


def sim_state(host):
    """The simulator's state of a lab host (payload table, counters, domains)."""
    with open(os.path.join(labctl.LAB_ROOT, 'hosts', host, 'state.json')) as handle:
        return json.load(handle)


def host_file(host, path):
    """A file of the host's private /var (overlay upper layer), or None."""
    assert path.startswith('/var/')
    full = os.path.join(labctl.LAB_ROOT, 'hosts', host, 'ovl', 'var', 'upper', path[len('/var/'):])
    return full if os.path.lexists(full) else None


def ledger(host):
    path = host_file(host, '/var/lib/noreboot-xen/ledger.jsonl')
    if not path:
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_advisory(directory):
    """An advisory manifest for the lab_xsa_fix payloads of every build the lab made, except 4.17.7
    (its hosts, and hosts without live patching, plan for a reboot into FIXED_BUILD).

    Returns the manifest path and {build_id: expected xen_extra}.
    """
    os.makedirs(directory, exist_ok=True)
    payload_root = os.path.join(labctl.LAB_ROOT, 'payloads')
    entries = []
    expects = {}
    for build_id in sorted(os.listdir(payload_root)):
        with open(os.path.join(payload_root, build_id, 'BUILD')) as handle:
            version = handle.read().split()[0]
        if version == '4.17.7':
            continue  # no payload for this build: its hosts get a reboot decision
        src = os.path.join(payload_root, build_id, PAYLOAD + '.livepatch')
        dest = os.path.join(directory, '%s-%s.livepatch' % (PAYLOAD, version))
        shutil.copyfile(src, dest)
        with open(dest, 'rb') as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        # lab_xsa_fix's effect (lab_payloads.write_build_payloads): the build's own xen_extra plus
        # -lp1, '.5-pre-lp1' on Debian 13's 4.20.4 (it reports 4.20.5-pre).
        extra = labctl.lab_model.resolve_build({'version': version, 'build_id': build_id})['extra'] + '-lp1'
        expects[build_id] = extra
        entries.append('''  - xen_build_id: %s
    file: %s
    sha256: %s
    name: %s_%s
    metadata: LAB_XSA_FIX
    expect:
      xl_info:
        xen_extra: "%s"
''' % (build_id, os.path.basename(dest), digest, PAYLOAD, version.replace('.', '_'), extra))
    manifest = os.path.join(directory, 'lab-xsa.yml')
    with open(manifest, 'w') as handle:
        handle.write('''schema: 1
id: LAB-XSA-1
title: "lab: a flaw every lab build has, fixed by lab_xsa_fix (xen_extra gains -lp1) or by Xen 4.17.8"
affected:
  hypervisors:
    versions: [">=4.16.0,<4.17.8", ">=4.18.0,<4.19.0", ">=4.20.0,<4.21.0"]
livepatches:
%sfallback:
  reboot: true
  fixed_build_ids: [%s]
  packages:
    debian: {package: xen-hypervisor-4.17-amd64, version: "%s"}
''' % (''.join(entries), FIXED_BUILD['build_id'], FIXED_BUILD['debian_version']))
    return manifest, expects


def stage_fixed_build(hosts):
    """Stage FIXED_BUILD on these lab hosts as its package would install it: their next boot runs
    it, and GRUB's default entry boots its /boot/xen-4.17-amd64.gz."""
    build = labctl.lab_model.resolve_build(FIXED_BUILD)
    for host in hosts:
        labctl.stage_installed_build(host, build)
    return build


def rollout_command(inventory, manifest, summary_path, extra_vars=None):
    # The run records live beside the summary (the work directory), not in the shared ~/.cache/noreboot-xen/runs:
    # another lab instance with the same host names (another test, another checkout) is not this run's rival.
    extra = {'noreboot_xen_advisories': [manifest], 'noreboot_xen_summary_path': summary_path,
             'noreboot_xen_run_lock_dir': os.path.join(os.path.dirname(summary_path), 'runs')}
    extra.update(extra_vars or {})
    return [ANSIBLE_PLAYBOOK, '-i', inventory, PLAYBOOK, '-e', json.dumps(extra)]


def rollout_env(workdir):
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=os.path.join(HERE, 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_CALLBACK_PLUGINS=write_callback(
                   os.path.join(workdir, 'callbacks')),
               ANSIBLE_CALLBACKS_ENABLED='noreboot_module_calls',
               NOREBOOT_MODULE_CALLS_PATH=os.path.join(workdir, 'module_calls.json'),
               NOREBOOT_TASK_RESULTS_PATH=os.path.join(workdir, 'task_results.json'),
               ANSIBLE_FORCE_COLOR='0', ANSIBLE_NOCOLOR='1',
               # ansible.cfg names instance 0's directory; every lab instance has its own.
               ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(labctl.LAB_ROOT, 'cp'))
    return env


def kill_stragglers(marker):
    """SIGKILL every process whose command line names ``marker`` (this run's inventory path).

    Some of ansible-playbook's forks start sessions of their own, so killing the process group
    leaves them behind; an operator's kill -9 of the run leaves them too, but a test must not.
    """
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmdline = handle.read().decode('utf-8', 'replace')
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def run_rollout(inventory, manifest, workdir, extra_vars=None, kill_when=None, log_name='run.log'):
    """Run the rolling live patch; returns dict(rc, elapsed_s, summary, calls, log, killed).

    ``kill_when()`` is polled every 0.2 s; when it returns true, ansible-playbook and its
    children (its process group) get SIGKILL, as an operator's kill -9 would.
    """
    summary_path = os.path.join(workdir, 'summary.json')
    for stale in (summary_path, os.path.join(workdir, 'module_calls.json')):
        if os.path.exists(stale):
            os.unlink(stale)
    log_path = os.path.join(workdir, log_name)
    started = time.time()
    killed = False
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(rollout_command(inventory, manifest, summary_path, extra_vars), cwd=REPO,
                                env=rollout_env(workdir), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        while proc.poll() is None:
            if kill_when is not None and not killed and kill_when():
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.2)
    elapsed = time.time() - started
    if killed:
        kill_stragglers(inventory)
    result = dict(rc=proc.returncode, elapsed_s=round(elapsed, 1), killed=killed, log=log_path)
    for key, path in (('summary', summary_path), ('calls', os.path.join(workdir, 'module_calls.json'))):
        if os.path.exists(path):
            with open(path) as handle:
                result[key] = json.load(handle)
        else:
            result[key] = None
    return result


def calls_per_host(calls, hosts):
    """Module calls per host for ``hosts``: {host: count}."""
    return dict((h, len((calls or {}).get(h, []))) for h in hosts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--spec', default=DEFAULT_SPEC)
    parser.add_argument('--keep', action='store_true', help='leave the fleet up afterwards')
    parser.add_argument('--extra-vars', default='{}', help='JSON of extra variables for the playbook')
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print('needs root (network namespaces, mounts, sshd per host)')
        return 2
    if labctl.leftovers_exist():
        print('a lab is already up on this machine (%s): run `labctl.py down` first' % labctl.LAB_ROOT)
        return 2
    workdir = tempfile.mkdtemp(prefix='bench-rolling-')
    inventory = os.path.join(workdir, 'inventory.yml')
    t0 = time.time()
    if labctl.main(['up', '--spec', args.spec, '--inventory', inventory]) != 0:
        return 1
    up_s = time.time() - t0
    try:
        manifest = write_advisory(os.path.join(workdir, 'advisory'))[0]
        run = run_rollout(inventory, manifest, workdir, extra_vars=json.loads(args.extra_vars))
        summary = run['summary'] or {}
        hosts = sorted(lab_hosts())
        calls = calls_per_host(run['calls'], hosts)
        outcomes = summary.get('hosts') or {}
        by_outcome = {}
        for host in hosts:
            by_outcome.setdefault((outcomes.get(host) or {}).get('outcome'), []).append(calls[host])
        print('fleet: %d hosts (%s), up in %.1f s' % (len(hosts), os.path.basename(args.spec), up_s))
        print('rolling live patch wall time: %.1f s (rc %d; log %s)' % (run['elapsed_s'], run['rc'], run['log']))
        for row in summary.get('waves') or []:
            print('  %-14s %-10s hosts %3d  elapsed %s s'
                  % (row['wave'], row.get('kind') or '', row['hosts'], row.get('elapsed_s')))
        print('outcomes: %s' % json.dumps(summary.get('totals'), sort_keys=True))
        for outcome in sorted(by_outcome, key=str):
            counts = by_outcome[outcome]
            print('module calls per host, %s: min %d max %d (%d hosts)'
                  % (outcome, min(counts), max(counts), len(counts)))
        print('(a module call = one task result that ran on the host; copy = stat + copy modules + 1 transfer)')
    finally:
        if not args.keep:
            labctl.main(['down'])
    return 0


if __name__ == '__main__':
    sys.exit(main())
