# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_livepatch.yml on a lab host whose module died after the apply, over SSH.

Needs root (the lab). Four hosts of Debian's Xen 4.17.5 on one hardware class, the lab's own
lab_xsa_fix payload (tests/lab/bench_rolling_livepatch.py write_advisory). The tests run in
file order, each on what the one before left:

1. the canary's host-side module is killed (SIGKILL, with ansible-playbook) during its soak: the
   payload is APPLIED, the ledger's last entry is the intent, the lock stays with a dead pid;
2. the next run's detection reports the open intent and the plan sends the host to a wave as
   ``livepatch`` ("applied by interrupted run R; its health checks and outcome are pending"):
   the rollout takes the stale lock over, runs the checks that need no baseline and records
   ``patched`` with ``resumed: true``, without a second upload or apply; the other hosts are
   patched as usual;
3. a third run plans every host ``already_patched`` and changes nothing.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
if 'labctl' not in sys.modules:
    # A lab instance of its own (nrxl15-*, /run/noreboot-xen-lab-15), beside a user's lab (0) and
    # the other lab tests (7, 9, 11, 13).
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_RESUME_LAB_INSTANCE', '15')

import bench_rolling_livepatch as rl  # noqa: E402  pylint: disable=wrong-import-position
import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

SPEC = '''name: resume
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: r5, count: 4, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b]}
'''
PAYLOAD = 'lab_xsa_fix_4_17_5'
LEDGER = '/var/lib/noreboot-xen/ledger.jsonl'
LOCK = '/var/lib/noreboot-xen/rollout.lock'
PENDING = 'its health checks and outcome are pending: the rollout finishes it'


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('resume_applied'))
    with lab_for_test.lab_up(workdir, SPEC) as up:
        inventory = up['inventory']
        manifest = rl.write_advisory(os.path.join(workdir, 'advisory'))[0]
        yield dict(workdir=workdir, inventory=inventory, manifest=manifest, hosts=sorted(rl.lab_hosts()), runs=[])


def run(lab, extra_vars=None, kill_when=None):
    """One run of the playbook (reboot switch false: no host here needs a reboot anyway); returns
    run_rollout's result with the plan the run wrote."""
    number = len(lab['runs']) + 1
    plan_path = os.path.join(lab['workdir'], 'plan%d.json' % number)
    extra = {'noreboot_xen_reboot_ok': False, 'noreboot_xen_plan_path': plan_path}
    extra.update(extra_vars or {})
    result = rl.run_rollout(lab['inventory'], lab['manifest'], lab['workdir'], extra_vars=extra,
                            kill_when=kill_when, log_name='run%d.log' % number)
    result['plan'] = None
    if os.path.exists(plan_path):
        with open(plan_path) as handle:
            result['plan'] = json.load(handle)
    lab['runs'].append(result)
    print('run %d: rc %s, %.1f s, killed %s, log %s'
          % (number, result['rc'], result['elapsed_s'], result['killed'], result['log']))
    return result


def sim(host):
    """The simulator's state, or None while it is being rewritten."""
    try:
        return rl.sim_state(host)
    except ValueError:
        return None


def xen_view(hosts):
    """Per host: applied payloads, loaded payloads (name, state, reverted) and successful applies."""
    view = {}
    for host in hosts:
        state = rl.sim_state(host)
        view[host] = (tuple(state['applied']),
                      tuple(sorted((p['name'], p['state'], p['reverted']) for p in state['payloads'])),
                      state['counters'].get('applied_ok', 0))
    return view


def events(host):
    return [(e['event'], e.get('outcome')) for e in rl.ledger(host)]


def test_module_killed_after_the_apply_leaves_an_open_intent(lab):
    caught = {}

    def applied_not_recorded():
        # Any host: the canary wave has one host, soaking 8 s between its apply and its checks.
        for host in lab['hosts']:
            state = sim(host)
            if state and state['applied'] and events(host) == [('intent', None)]:
                caught['host'] = host
                caught['modules'] = rl.kill_host_modules(host)
                return True
        return False

    result = run(lab, {'noreboot_xen_soak_seconds': 8}, kill_when=applied_not_recorded)
    assert result['killed'] is True and caught.get('modules'), 'the host-side module was not caught in its soak'
    target = lab['target'] = caught['host']
    assert result['plan']['waves'][0]['kind'] == 'canary' and result['plan']['waves'][0]['hosts'] == [target]
    state = rl.sim_state(target)
    assert state['applied'] == [PAYLOAD] and state['counters']['applied_ok'] == 1
    assert events(target) == [('intent', None)], 'the module died before its outcome'
    intent = lab['intent'] = rl.ledger(target)[0]
    assert intent['name'] == PAYLOAD and intent['run_id']
    lock = rl.host_file(target, LOCK)
    assert lock is not None, 'the killed module leaves its lock'
    with open(lock) as handle:
        assert int(json.load(handle)['pid']) in caught['modules']
    for host in lab['hosts']:
        if host != target:
            assert rl.sim_state(host)['applied'] == [] and rl.ledger(host) == [], '%s was touched' % host
    lab['after_kill'] = xen_view([target])


def test_rerun_plans_the_host_livepatch_and_finishes_its_transaction(lab):
    target, intent = lab['target'], lab['intent']
    result = run(lab)
    assert result['rc'] == 0, result['log']
    decision = result['plan']['decisions'][target]
    assert decision['decision'] == 'livepatch', decision['reason']
    assert decision['reason'].endswith("payload %s is APPLIED on its build-id %s with metadata 'LAB_XSA_FIX', applied by "
                                       'interrupted run %s; %s' % (PAYLOAD, decision['build_id'], intent['run_id'], PENDING)), \
        decision['reason']
    assert decision['advisories'][0]['open_intent'] == dict(
        name=PAYLOAD, sha256=intent['sha256'], run_id=intent['run_id'], time=intent['time'], boot_id=intent['boot_id'])
    assert [s['status'] for s in decision['stacking']] == ['ok'] and decision['notes'] == []
    assert decision['wave'] is not None
    for host in lab['hosts']:
        if host != target:
            assert PENDING not in result['plan']['decisions'][host]['reason']
    summary = result['summary']
    assert summary['stopped'] is False, summary['stop_reason']
    out = dict((h, e['outcome']) for h, e in summary['hosts'].items())
    assert out == dict((h, 'patched') for h in lab['hosts']), out
    actions = [c['action'] for c in result['calls'][target]]
    # Detection and the transaction (payload sent in its arguments, local fact written in the same execution).
    assert actions == ['noreboot.xen.xen_facts', 'noreboot.xen.livepatch_rollout'], actions
    # Finished: the checks that need no baseline ran and passed, outcome recorded as resumed.
    entries = rl.ledger(target)
    assert [(e['event'], e.get('outcome')) for e in entries] == [('intent', None), ('outcome', 'patched')]
    outcome = entries[1]
    assert (outcome['run_id'] != intent['run_id'] and outcome['sha256'] == intent['sha256']
            and outcome['resumed'] is True and outcome['uploaded'] is False and outcome['failed_checks'] == [])
    assert 'applied by the interrupted run %s' % intent['run_id'] in outcome['msg']
    assert outcome['msg'].endswith('checks passed'), outcome['msg']
    # No second upload or apply: Xen holds what the killed run left, one successful apply.
    assert xen_view([target]) == lab['after_kill']
    applied_now, loaded_now, applies = lab['after_kill'][target]
    assert applied_now == (PAYLOAD,) and [p[0] for p in loaded_now] == [PAYLOAD] and applies == 1
    assert rl.host_file(target, LOCK) is None, 'the stale lock was taken over and released'
    for host in lab['hosts']:
        if host != target:
            assert [(e['event'], e.get('outcome'), e.get('resumed')) for e in rl.ledger(host)] == [
                ('intent', None, None), ('outcome', 'patched', False)], host
            assert xen_view([host])[host][2] == 1


def test_third_run_says_already_patched_and_changes_nothing(lab):
    before = xen_view(lab['hosts'])
    ledgers = dict((h, rl.ledger(h)) for h in lab['hosts'])
    result = run(lab)
    assert result['rc'] == 0, result['log']
    decisions = result['plan']['decisions']
    assert dict((h, d['decision']) for h, d in decisions.items()) == dict((h, 'already_patched') for h in lab['hosts'])
    assert decisions[lab['target']]['reason'].endswith("payload %s is APPLIED on its build-id %s with metadata 'LAB_XSA_FIX'"
                                                       % (PAYLOAD, decisions[lab['target']]['build_id']))
    assert result['plan']['waves'] == []
    assert set(e['outcome'] for e in result['summary']['hosts'].values()) == {'already_patched'}
    assert xen_view(lab['hosts']) == before
    assert dict((h, rl.ledger(h)) for h in lab['hosts']) == ledgers
    for host in lab['hosts']:
        assert [c['action'] for c in result['calls'][host]] == ['noreboot.xen.xen_facts'], host
