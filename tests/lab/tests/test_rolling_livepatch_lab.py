# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_livepatch.yml on a 50-host lab fleet (tests/lab/fleets/rolling50.yml), over SSH.

Needs root (network namespaces, mounts, one sshd per host). The fleet comes up once for this
module and goes down at its end. The tests run in file order, each on what the one before left:

1. a failure budget of 0 stops the run after the wave whose guest crashed; later waves are
   untouched;
2. ansible-playbook and the module on a host both killed while that host's payload is
   uploaded but not yet applied (EBUSY retries): the payload stays CHECKED, the ledger holds
   the intent, the lock stays with a dead pid; the next run takes the lock over and applies
   the payload without a second upload;
3. ansible-playbook killed (SIGKILL) in the middle of a wave, then run again: the fleet
   converges, no payload is uploaded twice, no lock or staged file is left behind;
4. a further full run changes nothing on Xen.

What the hosts end as is read from the summary JSON, from the simulator's state (payload
table, applies counted) and from each host's ledger (its private /var seen from outside).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
if 'labctl' not in sys.modules:
    # A lab instance of its own (nrxl11-*, /run/noreboot-xen-lab-11), so that this module runs
    # while the other lab tests (instance 7, tests/lab/tests/conftest.py) or a user's lab are up.
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_ROLLING_LAB_INSTANCE', '11')
sys.path.insert(0, LAB)
sys.path.insert(0, os.path.join(LAB, 'simulator'))

import bench_rolling_livepatch as rl  # noqa: E402
import labctl  # noqa: E402

SPEC = os.path.join(LAB, 'fleets', 'rolling50.yml')
CRASH = 'b5-001-001'      # guest crash after apply
FLAKY = 'c18-9-001'     # unreachable after apply
BUSY = ('a5-001-001', 'a5-001-002')  # EBUSY twice, then fine
REBOOT = ['e7-%03d' % i for i in range(1, 11)] + ['nolp-001', 'nolp-002']

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    if labctl.leftovers_exist():
        pytest.fail('a lab is already up on this machine (%s): run `python3 tests/lab/labctl.py down` first '
                    '(or wait for whoever is using it)' % labctl.LAB_ROOT)
    workdir = str(tmp_path_factory.mktemp('rolling'))
    inventory = os.path.join(workdir, 'inventory.yml')
    assert labctl.main(['up', '--spec', SPEC, '--inventory', inventory]) == 0
    try:
        manifest, expects = rl.write_advisory(os.path.join(workdir, 'advisory'))
        yield dict(workdir=workdir, inventory=inventory, manifest=manifest, expects=expects,
                   hosts=sorted(rl.lab_hosts()), runs=[])
    finally:
        labctl.main(['down'])


def run(lab, extra_vars=None, kill_when=None):
    result = rl.run_rollout(lab['inventory'], lab['manifest'], lab['workdir'], extra_vars=extra_vars,
                            kill_when=kill_when, log_name='run%d.log' % (len(lab['runs']) + 1))
    lab['runs'].append(result)
    print('run %d: rc %s, %.1f s, killed %s, log %s'
          % (len(lab['runs']), result['rc'], result['elapsed_s'], result['killed'], result['log']))
    return result


def outcomes(result):
    return dict((h, e['outcome']) for h, e in result['summary']['hosts'].items())


def applied(host):
    return list(rl.sim_state(host)['applied'])


def xen_view(hosts):
    """What Xen holds per host: applied payloads, loaded payloads and the count of successful applies."""
    view = {}
    for host in hosts:
        state = rl.sim_state(host)
        view[host] = (tuple(state['applied']), tuple(sorted(p['name'] for p in state['payloads'])),
                      state['counters'].get('applied_ok', 0))
    return view


def loaded(host):
    return [p['name'] for p in rl.sim_state(host)['payloads']]


def kill_host_modules(host):
    """SIGKILL the Ansible module processes running on a lab host (a pipelined module is a bare
    ``python3`` reading its code from stdin), as if the host-side process died."""
    netns = rl.lab_hosts()[host]['netns']
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


def livepatch_hosts(lab):
    return [h for h in lab['hosts'] if h not in REBOOT]


def test_failure_budget_stops_the_run(lab):
    result = run(lab, {'noreboot_xen_failure_budget_hosts': 0})
    summary = result['summary']
    assert summary is not None, 'no summary written; see %s' % result['log']
    assert result['rc'] != 0, 'a run that stopped itself must fail'
    assert summary['stopped'] is True
    assert summary['stop_reason'] == (
        'failure budget exceeded: 1 failed host(s) of 38 to patch, the budget allows 0: %s (reverted: guests_running)'
        % CRASH)
    out = outcomes(result)
    waves = dict((row['wave'], row) for row in summary['waves'])
    assert waves['wave_1']['kind'] == 'canary' and waves['wave_1']['patched'] == waves['wave_1']['hosts'] == 4
    assert summary['hosts'][CRASH]['wave'] == 'wave_2' and out[CRASH] == 'reverted'
    assert applied(CRASH) == [], 'the crash host must be reverted and unloaded'
    later = [h for h, e in summary['hosts'].items() if e['wave'] not in ('wave_1', 'wave_2', 'not_in_a_wave')]
    assert len(later) == 33
    for host in later:
        assert out[host] == 'not_started', host
        assert applied(host) == [] and rl.ledger(host) == [], '%s was touched after the stop' % host
    for host in REBOOT:
        assert out[host] == 'pending_reboot'
    assert set(summary['needs_reboot']) == set(REBOOT + [CRASH])
    # Two module calls per patched host besides detection (xen_facts): copy and livepatch_rollout.
    canaries = [h for h, e in summary['hosts'].items() if e['wave'] == 'wave_1']
    for host in canaries:
        actions = [c['action'] for c in result['calls'][host]]
        assert actions == ['noreboot.xen.xen_facts', 'ansible.builtin.copy', 'noreboot.xen.livepatch_rollout'], host
    for host in later + REBOOT:
        assert [c['action'] for c in result['calls'][host]] == ['noreboot.xen.xen_facts'], host


def test_host_interrupted_between_upload_and_apply_resumes(lab):
    target = BUSY[1]  # EBUSY on its first two apply attempts: CHECKED for a second or two
    assert loaded(target) == [] and rl.ledger(target) == []
    killed_modules = []

    def uploaded_not_applied():
        if loaded(target) and not applied(target):
            killed_modules.extend(kill_host_modules(target))
            return True
        return False

    interrupted = run(lab, kill_when=uploaded_not_applied)
    assert interrupted['killed'] is True and killed_modules, 'the host-side module was not caught mid-apply'
    assert loaded(target) and not applied(target), 'the payload should be left CHECKED'
    events = [(e['event'], e.get('outcome')) for e in rl.ledger(target)]
    assert events == [('intent', None)], events
    lock = rl.host_file(target, '/var/lib/noreboot-xen/rollout.lock')
    assert lock is not None, 'the killed module leaves its lock'
    with open(lock) as handle:
        assert int(json.load(handle)['pid']) in killed_modules


def test_killed_mid_wave_then_rerun_converges(lab):
    before = set(h for h in lab['hosts'] if applied(h))
    resumed = BUSY[1]
    ledger_before = len(rl.ledger(resumed))

    def mid_wave():
        # Kill once a handful of hosts beyond those patched before hold the payload.
        return sum(1 for h in livepatch_hosts(lab) if applied(h)) >= len(before) + 10

    killed = run(lab, {'noreboot_xen_soak_seconds': 1}, kill_when=mid_wave)
    assert killed['killed'] is True and killed['summary'] is None, 'the run should have been killed mid-wave'
    partly = set(h for h in lab['hosts'] if applied(h))
    assert len(before) + 10 <= len(partly) < 36, 'killed too late to be mid-run: %d hosts patched' % len(partly)

    result = run(lab)
    summary = result['summary']
    out = outcomes(result)
    assert summary['stopped'] is False, summary['stop_reason']
    for host in livepatch_hosts(lab):
        if host == CRASH:
            assert out[host] == 'pending_reboot'  # reverted in the first run, not crashed again
            assert applied(host) == []
        elif host == FLAKY and out[host] == 'unreachable':
            continue  # it dropped off the network after its apply (in whichever run reached it)
        else:
            assert out[host] in ('patched', 'already_patched'), (host, out[host], summary['hosts'][host]['detail'])
            assert len(applied(host)) == 1, host
    # Every host the killed run had already patched is already_patched now: not applied again.
    for host in partly - set([FLAKY]):
        assert out[host] in ('already_patched', 'pending_reboot'), (host, out[host])
    for host in BUSY:
        assert applied(host), 'EBUSY twice must be cured by the retry'
    # No payload uploaded twice, no lock, no staged file left on any host that was reached.
    for host in livepatch_hosts(lab):
        uploads = [e for e in rl.ledger(host) if e.get('event') == 'outcome' and e.get('uploaded')]
        assert len(uploads) <= 1, '%s: uploaded %d times' % (host, len(uploads))
        if host == FLAKY:
            continue
        assert rl.host_file(host, '/var/lib/noreboot-xen/rollout.lock') is None, '%s: lock left behind' % host
        staging = rl.host_file(host, '/var/lib/noreboot-xen/staging')
        if staging:
            leftovers = [os.path.join(walked[0], f) for walked in os.walk(staging) for f in walked[2]]
            assert leftovers == [], '%s: staged files left: %s' % (host, leftovers)
    # The host left CHECKED by the interrupted module: stale lock taken over, applied without a second upload.
    outcome = [(e['event'], e.get('outcome'), e.get('resumed'), e.get('uploaded'))
               for e in rl.ledger(resumed)[ledger_before:]]
    assert outcome == [('outcome', 'patched', True, False)], outcome
    # The effect the advisory declares holds on every patched host (the health check compared it).
    for host in livepatch_hosts(lab):
        entries = [e for e in rl.ledger(host) if e.get('event') == 'outcome' and e.get('outcome') == 'patched']
        if entries:
            assert entries[-1]['failed_checks'] == []


def test_second_full_run_changes_nothing(lab):
    before = xen_view(lab['hosts'])
    ledgers = dict((h, rl.ledger(h)) for h in lab['hosts'])
    result = run(lab)
    summary = result['summary']
    assert result['rc'] == 0 and summary['stopped'] is False
    assert summary['totals']['patched'] == 0
    assert xen_view(lab['hosts']) == before, 'a second run must not change what Xen holds'
    for host in lab['hosts']:
        if host != CRASH:
            assert rl.ledger(host) == ledgers[host], '%s: ledger changed' % host
    changed = dict((h, [c['action'] for c in calls if c['changed']]) for h, calls in result['calls'].items()
                   if h in lab['hosts'])
    assert dict((h, c) for h, c in changed.items() if c) in (
        {}, {CRASH: ['ansible.builtin.copy', 'noreboot.xen.livepatch_rollout']}), changed
    out = outcomes(result)
    assert out[CRASH] == 'pending_reboot'
    assert 'reverted on this host by run' in summary['hosts'][CRASH]['detail']
