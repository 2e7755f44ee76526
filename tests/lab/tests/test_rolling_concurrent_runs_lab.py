# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two runs of playbooks/rolling_livepatch.yml started at once on the same lab fleet, over SSH (issue 13 item 11).

Needs root (the lab). Nine hosts of Debian's Xen 4.17.5 on one hardware class, in four inventory groups
(lab_group_ga/gb/gc/gd); each test works on hosts no other test touched. A first run (A) is slowed by a long
canary soak, and a second run is started while A holds hosts:

1. the same run records (noreboot_xen_run_lock_dir) for both, as on one controller: the second run is refused
   before anything changes, naming A (A's record must be seen as live: it names ansible-playbook, not the
   worker the module ran under);
2. the same run records, the second run asked to skip held hosts: it leaves A's hosts to A and patches the
   others; the summary lists the hosts left to A;
3. run records of their own, as two controllers: only the hosts' own locks tell. A run started while A's canary
   soaks is refused, naming A from the host's lock; one asked to skip plans without A's canary and holds its own
   canary's lock when A's next wave reaches that host, so A meets it: held_by_other_run, not a failure.

Every time: no host is a failure of either run, every host has at most one transaction (one intent and one
outcome in its ledger, one successful apply in the simulator).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
if 'labctl' not in sys.modules:
    # A lab instance of its own (nrxl23-*, /run/noreboot-xen-lab-23), beside the other lab tests and a user's lab.
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_CONCURRENT_LAB_INSTANCE', '23')

import bench_rolling_livepatch as rl  # noqa: E402  pylint: disable=wrong-import-position
import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

SPEC = '''name: concurrent
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: ga, count: 2, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b]}
  - {name: gb, count: 2, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b]}
  - {name: gc, count: 2, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b]}
  - {name: gd, count: 3, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b]}
'''
PAYLOAD = 'lab_xsa_fix_4_17_5'
LOCK = '/var/lib/noreboot-xen/rollout.lock'
# One canary wave (one host: one build and hardware class), then every other host in one wave.
POLICY = {'wave_sizes': ['100%'], 'max_per_domain': '100%'}
REFUSED = 'another rollout is in progress on hosts of this inventory'


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('concurrent'))
    with lab_for_test.lab_up(workdir, SPEC) as up:
        inventory = up['inventory']
        manifest = rl.write_advisory(os.path.join(workdir, 'advisory'))[0]
        hosts = sorted(rl.lab_hosts())
        groups = dict((g, [h for h in hosts if h.startswith(g + '-')]) for g in ('ga', 'gb', 'gc', 'gd'))
        assert sorted(sum(groups.values(), [])) == hosts, hosts
        yield dict(workdir=workdir, inventory=inventory, manifest=manifest, hosts=hosts, groups=groups)


class Run(object):
    """One ansible-playbook run in a work directory of its own, started at once (not waited for)."""

    def __init__(self, lab, name, target, extra_vars=None):
        self.name = name
        self.run_id = 'run-%s' % name
        self.workdir = os.path.join(lab['workdir'], name)
        os.makedirs(self.workdir)
        self.summary_path = os.path.join(self.workdir, 'summary.json')
        self.plan_path = os.path.join(self.workdir, 'plan.json')
        self.log = os.path.join(self.workdir, 'run.log')
        extra = {'noreboot_xen_reboot_ok': False, 'noreboot_xen_run_id': self.run_id, 'noreboot_xen_target': target,
                 'noreboot_xen_wave_policy': POLICY, 'noreboot_xen_plan_path': self.plan_path}
        extra.update(extra_vars or {})
        self.started = time.time()
        with open(self.log, 'w') as log:
            self.proc = subprocess.Popen(rl.rollout_command(lab['inventory'], lab['manifest'], self.summary_path, extra),
                                         cwd=rl.REPO, env=rl.rollout_env(self.workdir), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout=600):
        self.rc = self.proc.wait(timeout=timeout)
        self.elapsed = round(time.time() - self.started, 1)
        self.summary = self._json(self.summary_path)
        self.plan = self._json(self.plan_path)
        self.calls = self._json(os.path.join(self.workdir, 'module_calls.json')) or {}
        with open(self.log) as handle:
            self.output = handle.read()
        print('%s: rc %s, %.1f s, log %s' % (self.run_id, self.rc, self.elapsed, self.log))
        return self

    @staticmethod
    def _json(path):
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return json.load(handle)

    def outcomes(self):
        return dict((h, e['outcome']) for h, e in self.summary['hosts'].items())

    def actions(self, host):
        return [c['action'] for c in self.calls.get(host, [])]


def wait_for(what, timeout=180, runs=()):
    """Poll ``what()`` until it is true; fail when it is not within ``timeout`` s or a run ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if what():
            return
        for run in runs:
            if run.proc.poll() is not None:
                run.wait()
                pytest.fail('%s ended (rc %s) before the other run could be started; see %s'
                            % (run.run_id, run.rc, run.log))
        time.sleep(0.2)
    pytest.fail('timed out waiting for %s' % what.__doc__)


def sim(host):
    """The simulator's state, or None while it is being rewritten."""
    try:
        return rl.sim_state(host)
    except ValueError:
        return None


def transactions(host):
    """The host's ledger as (event, outcome, run id)."""
    return [(e['event'], e.get('outcome'), e.get('run_id')) for e in rl.ledger(host)]


def assert_one_transaction_each(hosts, runs):
    """Every host: one intent and one patched outcome, of one of ``runs``; one successful apply on Xen."""
    for host in hosts:
        entries = transactions(host)
        assert len(entries) == 2 and entries[0][0] == 'intent' and entries[1][:2] == ('outcome', 'patched'), (host, entries)
        assert entries[0][2] == entries[1][2] and entries[0][2] in runs, (host, entries)
        state = rl.sim_state(host)
        assert state['applied'] == [PAYLOAD] and state['counters']['applied_ok'] == 1, (host, state['counters'])
        assert rl.host_file(host, LOCK) is None, '%s: lock left behind' % host


def assert_no_failure(run):
    assert run.summary['budget']['failures'] == 0 and run.summary['stopped'] is False, run.summary['stop_reason']
    assert run.summary['needs_reboot'] == [] and run.summary['state_unknown'] == [], run.log
    assert not [h for h, o in run.outcomes().items() if o not in ('patched', 'already_patched', 'held_by_other_run')], \
        run.outcomes()


def test_same_run_records_the_second_run_refuses_naming_the_first(lab):
    ga = lab['groups']['ga']
    shared = os.path.join(lab['workdir'], 'runs-1')
    first = Run(lab, 'a1', 'lab_group_ga', {'noreboot_xen_run_lock_dir': shared, 'noreboot_xen_canary_soak_seconds': 60})
    record = os.path.join(shared, first.run_id + '.json')

    def first_holds_its_hosts():
        """run-a1's record and its canary applied (soaking)"""
        return os.path.exists(record) and any((sim(h) or {}).get('applied') for h in ga)
    wait_for(first_holds_its_hosts, runs=[first])
    second = Run(lab, 'b1', 'all', {'noreboot_xen_run_lock_dir': shared}).wait()
    assert first.proc.poll() is None, 'the first run should still be soaking its canary'
    assert second.rc != 0 and second.summary is None and second.plan is None, second.log
    assert REFUSED in second.output, second.log
    assert 'run run-a1 (pid %d, since' % first.proc.pid in second.output, \
        'the refusal names the first run and its ansible-playbook process; see %s' % second.log
    assert 'holds %s' % ', '.join(ga) in second.output and 'noreboot_xen_skip_held_hosts=true' in second.output
    assert not os.path.exists(os.path.join(shared, second.run_id + '.json')), 'a refused run claims nothing'
    for host in lab['hosts']:
        assert second.actions(host) == ['noreboot.xen.xen_facts'], (host, second.actions(host))

    first.wait()
    assert first.rc == 0, first.log
    assert_no_failure(first)
    assert first.outcomes() == dict((h, 'patched') for h in ga) and first.summary['held_by_other_run'] == {}
    assert_one_transaction_each(ga, [first.run_id])
    assert not os.path.exists(record), 'the run releases its hosts at the end'
    for host in lab['hosts']:
        if host not in ga:
            assert transactions(host) == [] and rl.sim_state(host)['applied'] == [], host


def test_same_run_records_the_second_run_asked_to_skip_leaves_the_first_runs_hosts(lab):
    gb, gc = lab['groups']['gb'], lab['groups']['gc']
    shared = os.path.join(lab['workdir'], 'runs-2')
    first = Run(lab, 'a2', 'lab_group_gb', {'noreboot_xen_run_lock_dir': shared, 'noreboot_xen_canary_soak_seconds': 60})
    record = os.path.join(shared, first.run_id + '.json')

    def first_holds_its_hosts():
        """run-a2's record and its canary applied (soaking)"""
        return os.path.exists(record) and any((sim(h) or {}).get('applied') for h in gb)
    wait_for(first_holds_its_hosts, runs=[first])
    second = Run(lab, 'b2', 'lab_group_gb:lab_group_gc',
                 {'noreboot_xen_run_lock_dir': shared, 'noreboot_xen_skip_held_hosts': True}).wait()
    first.wait()
    assert first.rc == 0 and second.rc == 0, (first.log, second.log)
    for run in (first, second):
        assert_no_failure(run)
    assert first.outcomes() == dict((h, 'patched') for h in gb) and first.summary['held_by_other_run'] == {}
    # The second run planned only the hosts nobody held; it names the run it left the others to.
    assert sorted(second.plan['decisions']) == gc
    assert second.outcomes() == dict((h, 'patched') for h in gc)
    assert second.summary['held_by_other_run'] == dict((h, first.run_id) for h in gb)
    assert 'held by another run (2): %s' % ', '.join('%s (run %s)' % (h, first.run_id) for h in gb) in second.output
    for host in gb:
        assert second.actions(host) == ['noreboot.xen.xen_facts'], (host, second.actions(host))
    assert_one_transaction_each(gb, [first.run_id])
    assert_one_transaction_each(gc, [second.run_id])


def test_two_controllers_the_hosts_locks_refuse_or_leave_the_held_hosts_and_nobody_fails(lab):
    gd = lab['groups']['gd']
    # A: its canary soaks 90 s; its next wave then reaches the host the run asked to skip is soaking (120 s) as its
    # own canary. Each run keeps its records in its own work directory: only the hosts' locks tell the runs apart.
    first = Run(lab, 'a3', 'lab_group_gd', {'noreboot_xen_canary_soak_seconds': 90})
    caught = {}

    def canary_soaking():
        """run-a3's canary holding its host lock, payload applied"""
        for host in gd:
            if rl.host_file(host, LOCK) and (sim(host) or {}).get('applied'):
                caught['canary'] = host
                return True
        return False
    wait_for(canary_soaking, runs=[first])
    refused = Run(lab, 'b3', 'lab_group_gd')
    skipping = Run(lab, 'c3', 'lab_group_gd', {'noreboot_xen_skip_held_hosts': True, 'noreboot_xen_soak_seconds': 120})
    refused.wait()
    skipping.wait()
    first.wait()
    canary = caught['canary']
    assert first.plan['waves'][0]['kind'] == 'canary' and first.plan['waves'][0]['hosts'] == [canary]

    # Refused, naming A from the canary host's own lock (a run of another controller); nothing done.
    assert refused.rc != 0 and refused.summary is None and refused.plan is None, refused.log
    assert REFUSED in refused.output, refused.log
    assert 'run run-a3 has a transaction in progress on %s (pid' % canary in refused.output, refused.log
    for host in gd:
        assert refused.actions(host) == ['noreboot.xen.xen_facts'], (host, refused.actions(host))

    # Asked to skip: A's canary left to A, the other two planned (canary + wave), nothing failed.
    assert skipping.rc == 0, skipping.log
    assert_no_failure(skipping)
    assert sorted(skipping.plan['decisions']) == sorted(h for h in gd if h != canary)
    assert skipping.summary['held_by_other_run'] == {canary: first.run_id}
    own_canary = skipping.plan['waves'][0]['hosts'][0]
    assert skipping.outcomes()[own_canary] == 'patched'

    # A met the skipping run's canary while that soaked: held_by_other_run, not a failure, not a reboot.
    assert first.rc == 0, first.log
    assert_no_failure(first)
    out = first.outcomes()
    assert out[canary] == 'patched', out
    assert out[own_canary] == 'held_by_other_run', (out, 'the timing did not make A meet the other run; see %s and %s'
                                                    % (first.log, skipping.log))
    assert first.summary['held_by_other_run'] == {own_canary: skipping.run_id}
    assert first.summary['budget']['failures'] == 0
    [third] = [h for h in gd if h not in (canary, own_canary)]
    # The third host: patched by one run; the other found it already patched (or met its lock).
    assert sorted([out[third], skipping.outcomes()[third]]) in (['already_patched', 'patched'],
                                                                ['held_by_other_run', 'patched']), \
        (out[third], skipping.outcomes()[third])
    assert_one_transaction_each([canary], [first.run_id])
    assert_one_transaction_each([own_canary], [skipping.run_id])
    assert_one_transaction_each([third], [first.run_id, skipping.run_id])
    # Nothing staged by either run is left on any host.
    for host in gd:
        staging = rl.host_file(host, '/var/lib/noreboot-xen/staging')
        if staging:
            leftovers = [os.path.join(walked[0], f) for walked in os.walk(staging) for f in walked[2]]
            assert leftovers == [], '%s: staged files left: %s' % (host, leftovers)
