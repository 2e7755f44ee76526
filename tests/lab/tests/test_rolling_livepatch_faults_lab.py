# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_livepatch.yml under faults, over SSH (issue 13, must show (a) and (d)).

Needs root (the lab). One lab of 17 hosts of Debian's Xen 4.17.5, the lab's own lab_xsa_fix
payload (tests/lab/bench_rolling_livepatch.py write_advisory), in two build/hardware groups that
the runs address apart (noreboot_xen_target):

* Cascade Lake (ca-001, cb-001, cc-001..003): cb-001's hypervisor logs an error line right after
  its first apply (simulator fault ``console_after_apply`` from ``xen``), so its health check
  ``dmesg_clean`` fails and it reverts. The tests run in file order, each on what the one before
  left:

  1. a run that leaves ca-001 out: cb-001 is the canary (first by name), fails and is reverted;
     the run stops, rc 2; no other host was contacted beyond detection, none got the payload;
  2. the same advisory again, on the whole group: every host is ``held`` (cb-001 for its failure,
     the others for their group's failed canary); nothing is uploaded or applied anywhere, no
     ledger changes, rc 2, and each held host's summary detail is the plan's reason, which names
     the failed host, the run that saw it fail and the release variable;
  3. with ``noreboot_xen_retry_failed=[lab_xsa_fix_4_17_5]`` (the fault cleared): cb-001 goes
     first, alone, as the canary, though ca-001 comes before it by name; no other host gets the
     payload before cb-001's outcome is recorded; then every host is patched, rc 0.

* AMD Milan (da-001..003, db-001..003, dc-001..006): the three db hosts log the same error line
  after their apply; the default wave sizes (the canary wave, then 1 host, 5 %, 25 % of the
  12 and the rest) put them together in the fourth wave. No budget variable is set: the default budget (0 failed hosts) stops
  the run after the wave in which they fail, the stop reason and the summary say the default is
  in force, and the later waves' hosts never get the payload.

What reached the hosts is read from the simulator's state (its per-operation attempt counters
``counters.attempts``, the payload table), from each host's ledger and staging directory (its
private /var seen from outside) and from the module calls counted per host.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
if 'labctl' not in sys.modules:
    # A lab instance of its own (nrxl21-*, /run/noreboot-xen-lab-21), beside a user's lab (0) and
    # the other lab tests (7, 9, 11, 13, 15, 17).
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_FAULTS_LAB_INSTANCE', '21')

import bench_rolling_livepatch as rl  # noqa: E402  pylint: disable=wrong-import-position
import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position
import labctl  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

PAYLOAD = 'lab_xsa_fix_4_17_5'
# An error line of the hypervisor's own (find_error_lines: an assertion), right after the apply.
ERROR_LINE = "Assertion 'spin_is_locked(&d->page_alloc_lock)' failed at common/page_alloc.c:2404"
FAULT = {'console_after_apply': {'after_applies': 1, 'from': 'xen', 'lines': [ERROR_LINE]}}
SPEC = '''name: rolling-faults
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: ca, count: 1, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domain: rack-a}
  - {name: cb, count: 1, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domain: rack-b,
     faults: %(fault)s}
  - {name: cc, count: 3, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b]}
  - {name: da, count: 3, build: deb-4.17.5, hardware: amd-milan, guests: 1, failure_domain: rack-c}
  - {name: db, count: 3, build: deb-4.17.5, hardware: amd-milan, guests: 1, failure_domain: rack-c, faults: %(fault)s}
  - {name: dc, count: 6, build: deb-4.17.5, hardware: amd-milan, guests: 1, failure_domain: rack-c}
''' % dict(fault=json.dumps(FAULT))
GROUP_A = ['ca-001', 'cb-001', 'cc-001', 'cc-002', 'cc-003']
CANARY_A = 'cb-001'
GROUP_D = ['da-001', 'da-002', 'da-003', 'db-001', 'db-002', 'db-003'] + ['dc-%03d' % i for i in range(1, 7)]
FAILING_D = ['db-001', 'db-002', 'db-003']
LEDGER = '/var/lib/noreboot-xen/ledger.jsonl'
STAGING = '/var/lib/noreboot-xen/staging'
DEFAULT_BUDGET = 'default: noreboot_xen_failure_budget_hosts and noreboot_xen_failure_budget_percent unset'


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('rolling_faults'))
    with lab_for_test.lab_up(workdir, SPEC) as up:
        inventory = up['inventory']
        manifest = rl.write_advisory(os.path.join(workdir, 'advisory'))[0]
        yield dict(workdir=workdir, inventory=inventory, manifest=manifest, hosts=sorted(rl.lab_hosts()), runs=[])


def run(lab, target, extra_vars=None, observe=None):
    """One run of the playbook on ``target`` (an inventory pattern); no budget variable unless
    ``extra_vars`` sets one. Returns run_rollout's result with the plan the run wrote and its log text."""
    number = len(lab['runs']) + 1
    plan_path = os.path.join(lab['workdir'], 'plan%d.json' % number)
    extra = {'noreboot_xen_reboot_ok': False, 'noreboot_xen_target': target, 'noreboot_xen_plan_path': plan_path,
             # The controller's run records of this test only (the default directory is shared).
             'noreboot_xen_run_lock_dir': os.path.join(lab['workdir'], 'run-locks')}
    extra.update(extra_vars or {})

    def poll():
        if observe is not None:
            observe()
        return False  # never kill: only watch

    result = rl.run_rollout(lab['inventory'], lab['manifest'], lab['workdir'], extra_vars=extra,
                            kill_when=poll, log_name='run%d.log' % number)
    result['plan'] = None
    if os.path.exists(plan_path):
        with open(plan_path) as handle:
            result['plan'] = json.load(handle)
    with open(result['log']) as handle:
        result['output'] = handle.read()
    lab['runs'].append(result)
    print('run %d (%s): rc %s, %.1f s, log %s' % (number, target, result['rc'], result['elapsed_s'], result['log']))
    return result


def sim(host):
    """The simulator's state, or None while it is being rewritten."""
    try:
        return rl.sim_state(host)
    except ValueError:
        return None


def attempts(host):
    """counters.attempts of the simulator: {operation: {payload: hypercalls asked, failed ones too}}."""
    return rl.sim_state(host)['counters'].get('attempts') or {}


def staged(host):
    staging = rl.host_file(host, STAGING)
    if not staging:
        return []
    return [os.path.join(walked[0], name) for walked in os.walk(staging) for name in walked[2]]


def hosts_view(hosts):
    """What each host holds: attempts, applied and loaded payloads, ledger, staged files."""
    view = {}
    for host in hosts:
        state = rl.sim_state(host)
        view[host] = dict(attempts=state['counters'].get('attempts') or {}, applied=list(state['applied']),
                          loaded=sorted(p['name'] for p in state['payloads']), ledger=rl.ledger(host),
                          staged=staged(host))
    return view


def untouched(view):
    return dict(attempts={}, applied=[], loaded=[], ledger=[], staged=[]) == view


def test_a_failed_canary_stops_the_run_before_any_other_host_gets_the_payload(lab):
    first = [h for h in GROUP_A if h != 'ca-001']
    result = run(lab, 'lab_hw_intel_cascadelake:!ca-001')
    assert result['rc'] == 2, result['log']
    plan, summary = result['plan'], result['summary']
    assert summary is not None, result['log']
    assert sorted(plan['decisions']) == first
    assert plan['waves'][0]['kind'] == 'canary' and plan['waves'][0]['hosts'] == [CANARY_A]
    assert summary['stopped'] is True
    assert summary['stop_reason'].startswith('canary failed: %s (reverted: dmesg_clean); no wave starts after a failed '
                                             'canary' % CANARY_A), summary['stop_reason']
    assert 'The rolling live patch stopped: canary failed: %s' % CANARY_A in result['output']
    outcomes = dict((h, e['outcome']) for h, e in summary['hosts'].items())
    assert outcomes == dict([(CANARY_A, 'reverted')] + [(h, 'not_started') for h in first if h != CANARY_A]), outcomes
    # The canary: one upload, one apply, one revert; the error line is in its xl dmesg; nothing left applied.
    state = rl.sim_state(CANARY_A)
    counted = attempts(CANARY_A)
    assert (counted['upload'], counted['apply'], counted['revert']) == ({PAYLOAD: 1}, {PAYLOAD: 1}, {PAYLOAD: 1}), counted
    assert state['applied'] == [] and '(XEN) ' + ERROR_LINE in state['dmesg']
    ledger = rl.ledger(CANARY_A)
    assert [(e['event'], e.get('outcome')) for e in ledger] == [('intent', None), ('outcome', 'reverted')]
    assert ledger[1]['failed_checks'] == ['dmesg_clean']
    lab['failed_run'] = ledger[1]['run_id']
    # No other host got anything: no hypercall, no ledger entry, no staged file, only detection ran.
    view = hosts_view(GROUP_A)
    for host in GROUP_A:
        if host != CANARY_A:
            assert untouched(view[host]), (host, view[host])
    for host in first:
        actions = [c['action'] for c in result['calls'][host]]
        if host == CANARY_A:
            # Detection and the transaction (it sends the payload; no local fact: not patched).
            assert actions == ['noreboot.xen.xen_facts', 'noreboot.xen.livepatch_rollout'], actions
        else:
            assert actions == ['noreboot.xen.xen_facts'], (host, actions)
    assert 'ca-001' not in result['calls']


def test_the_same_advisory_again_holds_the_failed_canarys_group(lab):
    before = hosts_view(GROUP_A)
    result = run(lab, 'lab_hw_intel_cascadelake')
    assert result['rc'] == 2, result['log']
    plan, summary = result['plan'], result['summary']
    decisions = plan['decisions']
    assert dict((h, d['decision']) for h, d in decisions.items()) == dict((h, 'held') for h in GROUP_A)
    assert [w for w in plan['waves'] if w['kind'] in ('canary', 'livepatch')] == []
    reason = decisions[CANARY_A]['reason']
    assert 'held: ' in reason and lab['failed_run'] in reason and 'reverted' in reason, reason
    assert 'noreboot_xen_retry_failed=[%s]' % PAYLOAD in reason, reason
    for host in GROUP_A:
        if host != CANARY_A:
            why = decisions[host]['reason']
            assert why.startswith('payload %s is held on its build-id/hardware group' % PAYLOAD), why
            assert 'it failed on %s' % CANARY_A in why and lab['failed_run'] in why, why
            assert 'released with noreboot_xen_retry_failed=[%s]' % PAYLOAD in why, why
    # The summary says why: every host held, its detail the plan's reason; the run exits non-zero.
    assert summary['stopped'] is False and summary['held'] == GROUP_A and summary['attention'] is True
    for host in GROUP_A:
        entry = summary['hosts'][host]
        assert (entry['outcome'], entry['wave'], entry['detail']) == ('held', 'not_in_a_wave', decisions[host]['reason'])
    assert summary['totals']['held'] == 5 and summary['totals']['patched'] == 0
    assert 'Held (a payload failed there or on its group before; release with noreboot_xen_retry_failed): %s.' % (
        ', '.join(GROUP_A)) in result['output'], result['log']
    # Nothing reached a host: no upload, apply or any other hypercall, no ledger entry, no staged
    # file; only detection ran.
    assert hosts_view(GROUP_A) == before
    for host in GROUP_A:
        assert [c['action'] for c in result['calls'][host]] == ['noreboot.xen.xen_facts'], host


def test_released_payload_goes_first_on_the_failed_host_as_a_canary(lab):
    labctl.main(['fault', CANARY_A, 'console_after_apply', 'null'])
    before = dict((h, attempts(h)) for h in GROUP_A)
    ledger_before = len(rl.ledger(CANARY_A))
    seen = []

    def watch():
        # The order in which hosts get their upload, and whether the canary had its outcome by then.
        for host in GROUP_A:
            if host in [s[0] for s in seen]:
                continue
            state = sim(host)
            if state is None:
                continue
            uploads = ((state['counters'].get('attempts') or {}).get('upload') or {}).get(PAYLOAD, 0)
            if uploads > (before[host].get('upload') or {}).get(PAYLOAD, 0):
                try:
                    entries = rl.ledger(CANARY_A)[ledger_before:]
                except ValueError:
                    return  # a line being written: look again at the next poll
                seen.append((host, [e.get('outcome') for e in entries if e['event'] == 'outcome']))

    result = run(lab, 'lab_hw_intel_cascadelake', {'noreboot_xen_retry_failed': [PAYLOAD]}, observe=watch)
    assert result['rc'] == 0, result['log']
    plan, summary = result['plan'], result['summary']
    decisions = plan['decisions']
    assert dict((h, d['decision']) for h, d in decisions.items()) == dict((h, 'livepatch') for h in GROUP_A)
    assert decisions[CANARY_A]['retry_failed'] is True
    assert 'released by the operator (noreboot_xen_retry_failed), first as a canary' in decisions[CANARY_A]['reason']
    assert [h for h in GROUP_A if decisions[h]['retry_failed']] == [CANARY_A]
    # The failed host is the canary again, alone, though ca-001 comes first by name.
    live = [w for w in plan['waves'] if w['kind'] in ('canary', 'livepatch')]
    assert live[0]['kind'] == 'canary' and live[0]['hosts'] == [CANARY_A], live
    assert sorted(h for w in live[1:] for h in w['hosts']) == [h for h in GROUP_A if h != CANARY_A]
    assert summary['stopped'] is False and summary['held'] == []
    assert dict((h, e['outcome']) for h, e in summary['hosts'].items()) == dict((h, 'patched') for h in GROUP_A)
    assert summary['hosts'][CANARY_A]['wave'] == 'wave_1'
    # Seen from outside: cb-001 got the payload first, and had its outcome before any other host got it.
    assert sorted(s[0] for s in seen) == GROUP_A, seen
    assert seen[0] == (CANARY_A, []), seen
    for host, canary_done in seen[1:]:
        assert canary_done == ['patched'], (host, seen)
    # cb-001: its second upload and apply; the others: one of each. The payload holds everywhere.
    for host in GROUP_A:
        counted = attempts(host)
        times = 2 if host == CANARY_A else 1
        assert (counted['upload'], counted['apply']) == ({PAYLOAD: times}, {PAYLOAD: times}), (host, counted)
        assert rl.sim_state(host)['applied'] == [PAYLOAD], host
        assert staged(host) == [], host
    events = [(e['event'], e.get('outcome')) for e in rl.ledger(CANARY_A)]
    assert events == [('intent', None), ('outcome', 'reverted'), ('intent', None), ('outcome', 'patched')], events


def test_default_budget_halts_after_three_failures_and_says_so(lab):
    result = run(lab, 'lab_hw_amd_milan')
    assert result['rc'] == 2, result['log']
    plan, summary = result['plan'], result['summary']
    assert sorted(plan['decisions']) == GROUP_D
    waves = [w for w in plan['waves'] if w['kind'] in ('canary', 'livepatch')]
    failing_wave = [w for w in waves if set(FAILING_D) & set(w['hosts'])]
    assert len(failing_wave) == 1 and failing_wave[0]['hosts'] == FAILING_D, waves
    number = failing_wave[0]['number']
    earlier = [h for w in waves if w['number'] < number for h in w['hosts']]
    later = [h for w in waves if w['number'] > number for h in w['hosts']]
    assert earlier and later, waves
    assert waves[0]['kind'] == 'canary' and FAILING_D[0] not in waves[0]['hosts']
    # The default budget stopped it, and the stop reason and the summary say so.
    assert summary['stopped'] is True
    assert summary['stop_reason'] == (
        'failure budget exceeded: 3 failed host(s) of 12 to patch, the budget allows 0 (%s): %s'
        % (DEFAULT_BUDGET, ', '.join('%s (reverted: dmesg_clean)' % h for h in FAILING_D))), summary['stop_reason']
    assert summary['budget'] == dict(limit=0, failures=3, to_patch=12, source=DEFAULT_BUDGET), summary['budget']
    assert 'failures: 3 of 12 host(s) to patch, budget 0 failed host(s) (%s)' % DEFAULT_BUDGET in result['output']
    assert 'The rolling live patch stopped: failure budget exceeded' in result['output']
    outcomes = dict((h, e['outcome']) for h, e in summary['hosts'].items())
    for host in earlier:
        assert outcomes[host] == 'patched' and rl.sim_state(host)['applied'] == [PAYLOAD], host
    for host in FAILING_D:
        assert outcomes[host] == 'reverted' and summary['hosts'][host]['detail'] == 'dmesg_clean', host
        counted = attempts(host)
        assert (counted['upload'], counted['apply'], counted['revert']) == ({PAYLOAD: 1},) * 3, (host, counted)
        assert rl.sim_state(host)['applied'] == [], host
    # Halted: the later waves never started, their hosts got nothing.
    view = hosts_view(later)
    for host in later:
        assert outcomes[host] == 'not_started', host
        assert untouched(view[host]), (host, view[host])
        assert [c['action'] for c in result['calls'][host]] == ['noreboot.xen.xen_facts'], host
    # The first group (patched in the tests before) was not part of this run.
    assert set(result['calls']) & set(GROUP_A) == set()
