# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_livepatch.yml on a 50-host lab fleet (tests/lab/fleets/rolling50.yml), over SSH.

Needs root (network namespaces, mounts, one sshd per host). The fleet comes up once for this
module and goes down at its end. The tests run in file order, each on what the one before left:

0. without noreboot_xen_reboot_ok the run stops before the first wave, naming the 12 hosts
   that need a reboot; nothing changes (later runs set it false: those hosts are reported);
1. a failure budget of 0 stops the run after the wave whose guest crashed; later waves are
   untouched;
2. ansible-playbook and the module on a host both killed while that host's payload is
   uploaded but not yet applied (EBUSY retries): the payload stays CHECKED, the ledger holds
   the intent, the lock stays with a dead pid; the next run takes the lock over and applies
   the payload without a second upload;
3. ansible-playbook killed (SIGKILL) in the middle of a wave, then run again: the fleet
   converges, no payload is uploaded twice, no lock or staged file is left behind;
4. a further full run changes nothing on Xen;
5. noreboot_xen_reboot_ok true, the fixed build (4.17.8) staged as its package would install it:
   the same playbook runs the plan's reboot waves after the live patch waves; a guest that fails
   to restore on a host of the first reboot wave stops the run whatever the budget, and the
   summary names the host and the guest; later reboot waves are untouched;
6. once that guest is restored (xen_guests action=restore), a rerun reboots the rest: every
   reboot host runs the fixed build with all its guests running, and a further run has nothing
   left to do.

What the hosts end as is read from the summary JSON, from the simulator's state (payload
table, applies counted) and from each host's ledger (its private /var seen from outside).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
if 'labctl' not in sys.modules:
    # A lab instance of its own (nrxl11-*, /run/noreboot-xen-lab-11), so that this module runs
    # while the other lab tests (instance 7, tests/lab/tests/conftest.py) or a user's lab are up.
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_ROLLING_LAB_INSTANCE', '11')

import bench_rolling_livepatch as rl  # noqa: E402
import lab_for_test  # noqa: E402
import labctl  # noqa: E402

SPEC = os.path.join(LAB, 'fleets', 'rolling50.yml')
CRASH = 'b5-001-001'      # guest crash after apply
FLAKY = 'c18-9-001'     # unreachable after apply
BUSY = ('a5-001-001', 'a5-001-002')  # EBUSY twice, then fine
REBOOT = ['e7-%03d' % i for i in range(1, 11)] + ['nolp-001', 'nolp-002']
# make lab-test-mitogen runs these tests with Mitogen for Ansible's strategy.
MITOGEN = os.environ.get('ANSIBLE_STRATEGY') == 'mitogen_linear'

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('rolling'))
    with lab_for_test.lab_up(workdir, spec_path=SPEC) as up:
        inventory = up['inventory']
        manifest, expects = rl.write_advisory(os.path.join(workdir, 'advisory'))
        yield dict(workdir=workdir, inventory=inventory, manifest=manifest, expects=expects,
                   hosts=sorted(rl.lab_hosts()), runs=[])


def run(lab, extra_vars=None, kill_when=None, reboot_ok=False):
    """One run of the playbook; reboot_ok None leaves noreboot_xen_reboot_ok unset."""
    extra = {} if reboot_ok is None else {'noreboot_xen_reboot_ok': reboot_ok}
    extra.update(extra_vars or {})
    result = rl.run_rollout(lab['inventory'], lab['manifest'], lab['workdir'], extra_vars=extra,
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


def livepatch_hosts(lab):
    return [h for h in lab['hosts'] if h not in REBOOT]


def test_unset_reboot_switch_stops_before_any_wave(lab):
    result = run(lab, reboot_ok=None)
    assert result['rc'] != 0 and result['summary'] is None
    with open(result['log']) as handle:
        output = handle.read()
    assert '12 host(s) need a reboot to get the fix' in output, result['log']
    assert ', '.join(sorted(REBOOT)) in output and 'noreboot_xen_reboot_ok is not set' in output
    for host in lab['hosts']:
        assert applied(host) == [] and loaded(host) == [] and rl.ledger(host) == [], host
    assert set(result['calls']) <= set(lab['hosts']) | {'localhost'}
    for host in lab['hosts']:
        assert [c['action'] for c in result['calls'].get(host, [])] == ['noreboot.xen.xen_facts'], host


def test_failure_budget_stops_the_run(lab):
    result = run(lab, {'noreboot_xen_failure_budget_hosts': 0})
    summary = result['summary']
    assert summary is not None, 'no summary written; see %s' % result['log']
    assert result['rc'] != 0, 'a run that stopped itself must fail'
    assert summary['stopped'] is True
    assert summary['stop_reason'] == (
        'failure budget exceeded: 1 failed host(s) of 38 to patch, the budget allows 0 '
        '(noreboot_xen_failure_budget_hosts=0): %s (reverted: guests_running)' % CRASH)
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
    # One module call per patched host besides detection (xen_facts): livepatch_rollout, whose action plugin
    # sends the verified payload in its arguments and which writes the local fact in the same execution.
    canaries = [h for h, e in summary['hosts'].items() if e['wave'] == 'wave_1']
    for host in canaries:
        actions = [c['action'] for c in result['calls'][host]]
        assert actions == ['noreboot.xen.xen_facts', 'noreboot.xen.livepatch_rollout'], host
    for host in later + REBOOT:
        assert [c['action'] for c in result['calls'][host]] == ['noreboot.xen.xen_facts'], host


def test_host_interrupted_between_upload_and_apply_resumes(lab):
    target = BUSY[1]  # EBUSY on its first two apply attempts: CHECKED for a second or two
    assert loaded(target) == [] and rl.ledger(target) == []
    killed_modules = []

    def uploaded_not_applied():
        if loaded(target) and not applied(target):
            killed_modules.extend(rl.kill_host_modules(target))
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

    # The flaky host drops off the network after its apply: a budget of one host lets both runs go on.
    killed = run(lab, {'noreboot_xen_soak_seconds': 1, 'noreboot_xen_failure_budget_hosts': 1}, kill_when=mid_wave)
    assert killed['killed'] is True and killed['summary'] is None, 'the run should have been killed mid-wave'
    partly = set(h for h in lab['hosts'] if applied(h))
    assert len(before) + 10 <= len(partly) < 36, 'killed too late to be mid-run: %d hosts patched' % len(partly)

    result = run(lab, {'noreboot_xen_failure_budget_hosts': 1})
    summary = result['summary']
    out = outcomes(result)
    assert summary['stopped'] is False, summary['stop_reason']
    for host in livepatch_hosts(lab):
        if host == CRASH:
            assert out[host] == 'held'  # reverted in the first run: planned held, not crashed again
            assert applied(host) == []
        elif host == FLAKY and out[host] == 'unreachable':
            continue  # it dropped off the network after its apply (in whichever run reached it)
        else:
            assert out[host] in ('patched', 'already_patched'), (host, out[host], summary['hosts'][host]['detail'])
            assert len(applied(host)) == 1, host
    # Every host the killed run had already patched is already_patched now: not applied again.
    for host in partly - set([FLAKY]):
        if out[host] == 'patched' and MITOGEN:
            # With Mitogen the transaction runs in Mitogen's interpreter on the host, which exits when the
            # killed controller's connection goes: it can be cut after the apply, before its outcome is
            # written. The rerun then finishes that transaction: resumed, no second upload (and, above, the
            # payload applied once).
            last = [e for e in rl.ledger(host) if e.get('event') == 'outcome'][-1]
            assert (last.get('resumed'), last.get('uploaded')) == (True, False), (host, last)
            continue
        assert out[host] in ('already_patched', 'held'), (host, out[host])
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
    # The crash host stays held (its payload was reverted there): the run says so and exits non-zero.
    assert result['rc'] != 0 and summary['stopped'] is False and summary['held'] == [CRASH]
    assert summary['totals']['patched'] == 0
    assert xen_view(lab['hosts']) == before, 'a second run must not change what Xen holds'
    for host in lab['hosts']:
        if host != CRASH:
            assert rl.ledger(host) == ledgers[host], '%s: ledger changed' % host
    changed = dict((h, [c['action'] for c in calls if c['changed']]) for h, calls in result['calls'].items()
                   if h in lab['hosts'])
    assert dict((h, c) for h, c in changed.items() if c) == {}, changed
    out = outcomes(result)
    assert out[CRASH] == 'held'
    with open(result['log']) as handle:
        assert 'ended reverted on this host in run' in handle.read(), result['log']


def guest_names(host):
    return sorted(d['name'] for d in rl.sim_state(host)['domains'] if d['id'] != 0)


def reboot_extra(budget_hosts):
    return {'noreboot_xen_failure_budget_hosts': budget_hosts, 'reboot_fallback_install_packages': False,
            'reboot_fallback_reboot_timeout': 120}


def test_reboot_waves_stop_on_a_guest_that_is_not_restored(lab):
    fixed = rl.stage_fixed_build(REBOOT)
    lab['guests_before'] = dict((h, guest_names(h)) for h in REBOOT)
    live_before = xen_view(livepatch_hosts(lab))
    victim = 'e7-001'
    guest = lab['guests_before'][victim][-1]
    labctl.edit_host_state(victim, lambda state: state['faults'].__setitem__('guest_restore_fails',
                                                                             {'domains': [guest]}))
    result = run(lab, reboot_extra(5), reboot_ok=True)
    summary = result['summary']
    assert summary is not None, result['log']
    assert result['rc'] != 0 and summary['stopped'] is True
    save_file = '/var/lib/noreboot-xen/saved-guests/%s.save' % guest
    # The stop names the host and the guest, and where the guest is; the budget (5) was not what stopped it.
    assert summary['stop_reason'].startswith('guests are not running again: %s (guests_not_restored: %s (saved to %s'
                                             % (victim, guest, save_file)), summary['stop_reason']
    entry = summary['hosts'][victim]
    assert entry['outcome'] == 'failed' and guest in entry['detail'], entry
    waves = dict((row['wave'], row) for row in summary['waves'])
    victim_wave = entry['wave']
    assert waves[victim_wave]['kind'] == 'reboot'
    reboot_labels = [row['wave'] for row in summary['waves'] if row['kind'] == 'reboot']
    assert reboot_labels[0] == victim_wave, 'the fault host should be in the first reboot wave: %s' % reboot_labels
    assert len(reboot_labels) >= 2, 'the plan must have reboot waves after the first: %s' % reboot_labels
    rows_by_host = dict((row['host'], row) for row in summary['reboot_fallback']['hosts'])
    assert rows_by_host[victim]['outcome'] == 'guests_not_restored'
    assert rows_by_host[victim]['stranded'][0].startswith('%s (saved to %s, state saved: xl restore failed' % (
        guest, save_file))
    for host in REBOOT:
        state = rl.sim_state(host)
        if summary['hosts'][host]['wave'] == victim_wave:
            assert state['build']['build_id'] == fixed['build_id'] and state['boots'] == 2, host
            expected = [g for g in lab['guests_before'][host] if not (host == victim and g == guest)]
            assert guest_names(host) == expected, host
            if host != victim:
                assert summary['hosts'][host]['outcome'] == 'rebooted', host
        else:
            # A later reboot wave: never started, nothing on the host changed.
            assert summary['hosts'][host]['outcome'] == 'pending_reboot', host
            assert state['boots'] == 1 and state['build']['build_id'] != fixed['build_id'], host
            assert guest_names(host) == lab['guests_before'][host], host
    assert xen_view(livepatch_hosts(lab)) == live_before, 'live patch hosts must not change in this run'
    assert rl.host_file(victim, save_file) is not None, 'the save file of the guest that failed must be kept'
    lab['victim'] = (victim, guest)


def test_rerun_after_the_guest_is_restored_reboots_the_rest(lab):
    victim, guest = lab['victim']
    labctl.edit_host_state(victim, lambda state: state['faults'].pop('guest_restore_fails'))
    # What the stop message tells the operator to do: bring the guest back with the restore action.
    restore = subprocess.run([os.path.join(rl.REPO, '.venv', 'bin', 'ansible'), '-i', lab['inventory'], victim,
                              '-m', 'noreboot.xen.xen_guests', '-a', 'action=restore'],
                             cwd=rl.REPO, env=rl.rollout_env(lab['workdir']), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert restore.returncode == 0, restore.stdout
    assert guest_names(victim) == lab['guests_before'][victim]
    result = run(lab, reboot_extra(0), reboot_ok=True)
    summary = result['summary']
    # Every wave ran; the run exits non-zero only because the crash host stays held.
    assert result['rc'] != 0 and summary['stopped'] is False and summary['held'] == [CRASH], result['log']
    fixed = rl.labctl.lab_model.resolve_build(rl.FIXED_BUILD)['build_id']
    for host in REBOOT:
        state = rl.sim_state(host)
        assert state['build']['build_id'] == fixed and state['boots'] == 2, host
        assert guest_names(host) == lab['guests_before'][host], host
        # Rebooted in this run, or (the first wave's hosts) running the fixed build already: not affected.
        assert summary['hosts'][host]['outcome'] in ('rebooted', 'not_affected'), (host, summary['hosts'][host])
    rebooted = sorted(h for h in REBOOT if summary['hosts'][h]['outcome'] == 'rebooted')
    assert rebooted and summary['totals']['rebooted'] == len(rebooted)
    assert summary['needs_reboot'] == [CRASH]
    again = run(lab, reboot_extra(0), reboot_ok=True)
    assert again['summary']['held'] == [CRASH] and again['summary']['totals']['rebooted'] == 0, again['log']
    assert [rl.sim_state(h)['boots'] for h in REBOOT] == [2] * len(REBOOT)
