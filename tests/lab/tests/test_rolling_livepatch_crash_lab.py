# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_livepatch.yml when the payload cannot be taken back or kills the host (issue 13,
must show (b) and (e)), over SSH.

Needs root (the lab). One lab of Debian's Xen 4.17.5 hosts, two fleets addressed with
noreboot_xen_target:

(b) ``ca-001`` (the canary), ``eb-001``, ``la-001``: one build/hardware group, waves of one host.
    On ``eb-001`` the hypervisor prints livepatch failures right after the apply (the health
    check ``dmesg_clean`` fails) and every revert times out (EBUSY, always): its payload stays
    APPLIED, the outcome is ``failed_applied``, the run stops before ``la-001`` whatever the
    budget (``unlimited`` here) and exits non-zero; playbooks/plan.yml then plans ``eb-001``
    ``needs_attention``, not ``already_patched``.
(e) ``nop-001``..``nop-003`` (one group, another hardware class): the advisory declares Xen's test
    payload ``xen_nop`` as the fix, and applying it kills the hypervisor. The canary crashes and
    the run stops; after a power-cycle the same command applies nothing (the canary and its group
    are ``held``, "may have killed the host"); with noreboot_xen_retry_failed=[xen_nop] the canary
    gets it again.

Applies, reverts and uploads are counted per host from the simulator's state
(``counters.attempts``, every hypercall asked of the hypervisor, a crashing apply included),
read from the lab's files, not from what the playbook says.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
if 'labctl' not in sys.modules:
    # A lab instance of its own (nrxl27-*, /run/noreboot-xen-lab-27), beside a user's lab (0) and
    # the other lab tests (7, 9, 11, 13, 15, 17).
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_CRASH_LAB_INSTANCE', '27')

import bench_rolling_livepatch as rl  # noqa: E402  pylint: disable=wrong-import-position
import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position
import labctl  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

FIX = 'lab_xsa_fix_4_17_5'
NOP = 'xen_nop'
XEN_LINES = ['livepatch: %s: apply failed with rc=-22' % FIX,
             'livepatch: %s: Timed out on semaphore in CPU quiesce phase 1/2' % FIX]
SPEC = '''name: crash-busy
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: ca, count: 1, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domain: rack-a}
  - name: eb
    count: 1
    build: deb-4.17.5
    hardware: intel-cascadelake
    guests: 1
    failure_domain: rack-b
    faults:
      ebusy: {always: true, ops: [revert]}
      console_after_apply: {after_applies: 1, from: xen, lines: %(lines)s}
  - {name: la, count: 1, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domain: rack-c}
  - {name: nop, count: 3, build: deb-4.17.5, hardware: amd-milan, guests: 1, failure_domains: [rack-d, rack-e, rack-f]}
''' % dict(lines='[%s]' % ', '.join('"%s"' % line for line in XEN_LINES))
BUSY_FLEET = ['ca-001', 'eb-001', 'la-001']
NOP_FLEET = ['nop-001', 'nop-002', 'nop-003']
PLAN_PLAYBOOK = os.path.join(rl.REPO, 'playbooks', 'plan.yml')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('crash_busy'))
    with lab_for_test.lab_up(workdir, SPEC) as up:
        inventory = up['inventory']
        fix_manifest = rl.write_advisory(os.path.join(workdir, 'advisory'))[0]
        nop_manifest = write_nop_advisory(os.path.join(workdir, 'advisory-nop'))
        yield dict(workdir=workdir, inventory=inventory, fix_manifest=fix_manifest, nop_manifest=nop_manifest,
                   hosts=sorted(rl.lab_hosts()), runs=[])


def write_nop_advisory(directory):
    """An advisory whose declared fix for 4.17.5 is Xen's test payload xen_nop (it kills the hypervisor)."""
    os.makedirs(directory)
    build_id = labctl.lab_model.resolve_build('4.17.5')['build_id']
    src = os.path.join(labctl.LAB_ROOT, 'payloads', build_id, NOP + '.livepatch')
    dest = os.path.join(directory, NOP + '.livepatch')
    shutil.copyfile(src, dest)
    with open(dest, 'rb') as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    manifest = os.path.join(directory, 'lab-nop.yml')
    with open(manifest, 'w') as handle:
        handle.write('''schema: 1
id: LAB-NOP-1
title: "lab: a fix that is really Xen's crashing test payload xen_nop"
affected:
  hypervisors:
    versions: [">=4.16.0,<4.17.8"]
livepatches:
  - xen_build_id: %s
    file: %s
    sha256: %s
    name: %s
fallback:
  reboot: true
  fixed_build_ids: [%s]
  packages:
    debian: {package: xen-hypervisor-4.17-amd64, version: "%s"}
''' % (build_id, os.path.basename(dest), digest, NOP, rl.FIXED_BUILD['build_id'], rl.FIXED_BUILD['debian_version']))
    return manifest


def run(lab, manifest, target, extra_vars=None):
    """One run of playbooks/rolling_livepatch.yml on ``target``; returns run_rollout's result and the plan."""
    number = len(lab['runs']) + 1
    plan_path = os.path.join(lab['workdir'], 'plan%d.json' % number)
    extra = {'noreboot_xen_reboot_ok': False, 'noreboot_xen_plan_path': plan_path, 'noreboot_xen_target': target,
             'noreboot_xen_run_lock_dir': os.path.join(lab['workdir'], 'run-locks')}
    extra.update(extra_vars or {})
    result = rl.run_rollout(lab['inventory'], manifest, lab['workdir'], extra_vars=extra, log_name='run%d.log' % number)
    result['plan'] = load_json(plan_path)
    lab['runs'].append(result)
    print('run %d: rc %s, %.1f s, log %s' % (number, result['rc'], result['elapsed_s'], result['log']))
    return result


def run_plan(lab, manifest, target):
    """playbooks/plan.yml (detect and plan, changes nothing); returns (rc, plan, log path)."""
    plan_path = os.path.join(lab['workdir'], 'plan-only.json')
    log_path = os.path.join(lab['workdir'], 'plan-only.log')
    extra = {'noreboot_xen_advisories': [manifest], 'noreboot_xen_plan_path': plan_path, 'noreboot_xen_target': target}
    with open(log_path, 'w') as log:
        rc = subprocess.call([rl.ANSIBLE_PLAYBOOK, '-i', lab['inventory'], PLAN_PLAYBOOK, '-e', json.dumps(extra)],
                             cwd=rl.REPO, env=rl.rollout_env(lab['workdir']), stdout=log, stderr=subprocess.STDOUT)
    return rc, load_json(plan_path), log_path


def load_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def attempts(host):
    """Hypercalls asked of the host's hypervisor so far, per operation and payload (the simulator's count)."""
    return rl.sim_state(host)['counters'].get('attempts', {})


def events(host):
    return [(e['event'], e.get('outcome')) for e in rl.ledger(host)]


def outcomes(result):
    return dict((h, e['outcome']) for h, e in result['summary']['hosts'].items())


def actions(result, host):
    return [c['action'] for c in (result['calls'] or {}).get(host, [])]


def wait_for_sshd(host, wait=20):
    addr = rl.lab_hosts()[host]['addr']
    deadline = time.time() + wait
    while True:
        sock = socket.socket()
        sock.settimeout(0.3)
        try:
            sock.connect((addr, 22))
            return True
        except OSError:
            if time.time() > deadline:
                return False
            time.sleep(0.2)
        finally:
            sock.close()


def test_revert_that_hits_ebusy_forever_stops_the_run_and_is_planned_needs_attention(lab):
    target = 'lab_group_ca:lab_group_eb:lab_group_la'
    result = run(lab, lab['fix_manifest'], target,
                 {'noreboot_xen_failure_budget_hosts': 'unlimited', 'noreboot_xen_wave_policy': {'wave_sizes': [1]}})
    summary = result['summary']
    assert summary is not None, 'no summary written; see %s' % result['log']
    assert [w['hosts'] for w in result['plan']['waves']] == [['ca-001'], ['eb-001'], ['la-001']]
    assert result['rc'] != 0, 'a run that left a payload applied after failed checks must fail'
    assert summary['stopped'] is True
    # The budget allows any number of failures: what stopped the run is the payload left applied.
    assert summary['stop_reason'].startswith('payload left APPLIED after failed checks: eb-001'), summary['stop_reason']
    assert outcomes(result) == {'ca-001': 'patched', 'eb-001': 'failed_applied', 'la-001': 'not_started'}
    assert summary['needs_attention'] == ['eb-001']
    assert 'dmesg_clean' in summary['hosts']['eb-001']['detail'], summary['hosts']['eb-001']['detail']
    # What Xen holds and was asked, host by host.
    busy = rl.sim_state('eb-001')
    assert busy['applied'] == [FIX] and [p['name'] for p in busy['payloads']] == [FIX], busy['payloads']
    asked = attempts('eb-001')
    assert asked['upload'] == {FIX: 1} and asked['apply'] == {FIX: 1}, asked
    # The first revert and livepatch_retries (5) more, each hit EBUSY; then the host is left as it is.
    assert asked['revert'] == {FIX: 6}, asked
    assert 'unload' not in asked, 'an APPLIED payload cannot be unloaded: %s' % asked
    assert busy['counters']['faults']['ebusy'] == asked['revert'][FIX], 'every revert hit EBUSY'
    assert ['(XEN) %s' % line for line in XEN_LINES][0] in busy['dmesg']
    assert [(e['event'], e.get('outcome')) for e in rl.ledger('eb-001')] == [('intent', None), ('outcome', 'failed_applied')]
    assert 'dmesg_clean' in rl.ledger('eb-001')[1]['failed_checks']
    assert rl.sim_state('ca-001')['applied'] == [FIX] and attempts('ca-001') == {'upload': {FIX: 1}, 'apply': {FIX: 1}}
    assert events('ca-001') == [('intent', None), ('outcome', 'patched')]
    # The wave after the stop never started: nothing asked of la-001's hypervisor, no ledger.
    assert attempts('la-001') == {} and rl.sim_state('la-001')['applied'] == [] and rl.ledger('la-001') == []
    assert actions(result, 'la-001') == ['noreboot.xen.xen_facts']

    # The next plan: eb-001 needs attention (never already_patched), and planning changes nothing.
    before = dict((h, (rl.sim_state(h)['applied'], attempts(h), rl.ledger(h))) for h in BUSY_FLEET)
    rc, plan, log = run_plan(lab, lab['fix_manifest'], target)
    assert rc == 0 and plan is not None, log
    decisions = plan['decisions']
    assert dict((h, d['decision']) for h, d in decisions.items()) == {
        'ca-001': 'already_patched', 'eb-001': 'needs_attention', 'la-001': 'livepatch'}
    reason = decisions['eb-001']['reason']
    assert 'ended it failed_applied' in reason and 'it was left applied after failed checks' in reason, reason
    assert 'run %s' % result['summary']['run_id'] in reason, reason
    assert all('eb-001' not in w['hosts'] for w in plan['waves']), plan['waves']
    assert dict((h, (rl.sim_state(h)['applied'], attempts(h), rl.ledger(h))) for h in BUSY_FLEET) == before


def test_payload_that_crashes_the_hypervisor_is_not_applied_again_after_a_power_cycle(lab):
    target = 'lab_group_nop'
    canary = 'nop-001'
    rest = NOP_FLEET[1:]
    # 1. The declared fix kills the canary's hypervisor: the run stops, nothing reaches the others.
    first = run(lab, lab['nop_manifest'], target, {'noreboot_xen_failure_budget_hosts': 'unlimited'})
    summary = first['summary']
    assert summary is not None, 'no summary written; see %s' % first['log']
    assert first['plan']['waves'][0]['kind'] == 'canary' and first['plan']['waves'][0]['hosts'] == [canary]
    assert first['rc'] != 0 and summary['stopped'] is True
    assert summary['stop_reason'].startswith('canary failed: %s' % canary), summary['stop_reason']
    assert outcomes(first)[canary] == 'unreachable', outcomes(first)
    for host in rest:
        assert outcomes(first)[host] == 'not_started', outcomes(first)
    crashed = rl.sim_state(canary)
    assert crashed['crashed'] is True and '(XEN) *** DOUBLE FAULT ***' in crashed['dmesg']
    assert attempts(canary) == {'upload': {NOP: 1}, 'apply': {NOP: 1}}
    entries = rl.ledger(canary)
    assert [(e['event'], e.get('name')) for e in entries] == [('intent', NOP)], 'the host died before any outcome'
    intent = entries[0]
    for host in rest:
        assert attempts(host) == {} and rl.ledger(host) == [], host
        assert actions(first, host) == ['noreboot.xen.xen_facts'], host

    # 2. A BMC reset, then the very same command: nothing is applied anywhere, the group is held.
    boot_before = crashed['boot_id']
    assert labctl.main(['power-cycle', canary]) == 0
    assert wait_for_sshd(canary), '%s did not come back after the power-cycle' % canary
    booted = rl.sim_state(canary)
    assert booted['crashed'] is False and booted['payloads'] == [] and booted['boot_id'] != boot_before
    second = run(lab, lab['nop_manifest'], target, {'noreboot_xen_failure_budget_hosts': 'unlimited'})
    assert second['summary'] is not None, second['log']
    assert second['rc'] != 0, 'held hosts make the run exit non-zero'
    decisions = second['plan']['decisions']
    assert dict((h, d['decision']) for h, d in decisions.items()) == dict((h, 'held') for h in NOP_FLEET)
    reason = decisions[canary]['reason']
    assert 'this payload may have killed the host' in reason, reason
    assert 'run %s wrote its intent to apply %s' % (intent['run_id'], NOP) in reason, reason
    assert 'noreboot_xen_retry_failed=[%s]' % NOP in reason, reason
    for host in rest:
        assert 'it failed on %s' % canary in decisions[host]['reason'], decisions[host]['reason']
    assert second['plan']['waves'] == []
    assert sorted(second['summary']['held']) == NOP_FLEET
    assert set(outcomes(second).values()) == {'held'}
    assert attempts(canary) == {'upload': {NOP: 1}, 'apply': {NOP: 1}}, 'applied again after the crash'
    assert rl.sim_state(canary)['crashed'] is False
    for host in NOP_FLEET:
        assert actions(second, host) == ['noreboot.xen.xen_facts'], host
    for host in rest:
        assert attempts(host) == {} and rl.ledger(host) == [], host
    assert rl.ledger(canary) == entries, 'a held host gets no new ledger entry'

    # 3. Released by the operator: the canary (and only it) is given the payload again, and crashes again.
    third = run(lab, lab['nop_manifest'], target,
                {'noreboot_xen_failure_budget_hosts': 'unlimited', 'noreboot_xen_retry_failed': [NOP]})
    assert third['summary'] is not None, third['log']
    decisions = third['plan']['decisions']
    assert dict((h, d['decision']) for h, d in decisions.items()) == dict((h, 'livepatch') for h in NOP_FLEET)
    assert decisions[canary]['retry_failed'] is True and decisions[canary]['advisories'][0]['retry_failed'] is True
    assert 'released by the operator' in decisions[canary]['reason'], decisions[canary]['reason']
    assert third['plan']['waves'][0]['kind'] == 'canary' and third['plan']['waves'][0]['hosts'] == [canary]
    assert third['rc'] != 0 and third['summary']['stopped'] is True
    assert third['summary']['stop_reason'].startswith('canary failed: %s' % canary), third['summary']['stop_reason']
    assert rl.sim_state(canary)['crashed'] is True
    assert attempts(canary) == {'upload': {NOP: 2}, 'apply': {NOP: 2}}
    assert [(e['event'], e.get('name')) for e in rl.ledger(canary)] == [('intent', NOP), ('intent', NOP)]
    for host in rest:
        assert attempts(host) == {} and rl.ledger(host) == [], host
        assert outcomes(third)[host] == 'not_started'
