# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""role_outcome: each outcome of the reboot fallback role's two entry points and of the live patch
role, with its message, from what a run of the role left (the dict roles/reboot_fallback/tasks/report.yml,
roles/reboot_fallback/tasks/finish.yml and roles/livepatch/tasks/report.yml hand over); the live patch
role's preflight (filter livepatch_preflight: the checks of its two former asserts, with their messages)
and the facts the action plugin of livepatch_rollout returns."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter.role_outcome import (
    finish_reboot_outcome,
    finish_reboot_result,
    livepatch_outcome,
    livepatch_preflight,
    reboot_fallback_outcome,
    reboot_fallback_result,
)
from ansible_collections.noreboot.xen.plugins.plugin_utils import role_outcome as rfo
from xen_builds import XEN_4175 as OLD, XEN_4177 as FIXED

SAVED = dict(name='web', action='save', file='/var/lib/noreboot-xen/saved-guests/web.save', state='saved')
BACK = dict(name='db', action='save', file='/var/lib/noreboot-xen/saved-guests/db.save', state='restored')
ON_PEER = dict(name='app', action='migrate', peer='peer-001', state='on_peer')
PLANNED = dict(name='web', action='save', file='/var/lib/noreboot-xen/saved-guests/web.save', state='planned')
WEB_WHERE = 'web (saved to /var/lib/noreboot-xen/saved-guests/web.save, state saved)'


def end(**changes):
    """What a run that was allowed to reboot left after every step worked."""
    base = dict(needed=True, go=True, outcome='in_progress', reason='no payload for build %s' % OLD, host='xen-07',
                check_mode=False, phase='restore', failure={}, recovery={}, build_id_after=FIXED,
                fixed_build_ids=[FIXED], guests=[BACK])
    base.update(changes)
    return base


# id, what the run left, outcome, guests as last known (names), stranded (in words), message (exact)
REBOOT_CASES = [
    ('check-mode', end(check_mode=True, phase='reboot', build_id_after=OLD, guests=[PLANNED]),
     'would_reboot', ['web'], [],
     'check mode: the fixed hypervisor would be installed, the guests moved (web) and the host rebooted'),
    ('check-mode-no-guest', end(check_mode=True, guests=[]), 'would_reboot', [], [],
     'check mode: the fixed hypervisor would be installed, the guests moved (none) and the host rebooted'),
    ('rebooted', end(), 'rebooted', ['db'], [],
     'rebooted into build-id %s; every guest runs again' % FIXED),
    ('rebooted-guests-on-peer', end(guests=[BACK, ON_PEER]), 'rebooted', ['db', 'app'], [],
     'rebooted into build-id %s; every guest runs again (on the migration peer: app)' % FIXED),
    ('refused', end(phase='evacuate', failure=dict(failed=True, outcome='refused', msg='guest name(s) bad'),
                    recovery=dict(skipped=True)),
     'refused', ['db'], [], 'guest name(s) bad'),
    ('unreachable', end(phase='reboot', failure=dict(failed=True, msg='timed out waiting for xl info'),
                        recovery=dict(unreachable=True, msg='ssh: no route'), guests=[SAVED]),
     'unreachable', ['web'], [WEB_WHERE], 'xen-07 did not come back after the reboot (timed out waiting for xl info)'),
    ('unreachable-recovery-skipped', end(phase='reboot', failure=dict(failed=True, msg='gone'),
                                         recovery=dict(skipped=True), guests=[SAVED]),
     'unreachable', ['web'], [WEB_WHERE], 'xen-07 did not come back after the reboot (gone)'),
    ('restore-failed', end(failure=dict(failed=True, msg='xl restore web failed',
                                        manifest=dict(guests=[SAVED, BACK]))),
     'guests_not_restored', ['web', 'db'], [WEB_WHERE], 'xl restore web failed'),
    ('evacuate-failed-and-recovery-failed',
     end(phase='evacuate', failure=dict(failed=True, msg='xl save web failed'),
         recovery=dict(failed=True, msg='xl restore web failed', guests=[SAVED])),
     'guests_not_restored', ['web'], [WEB_WHERE],
     'xl save web failed; bringing the guests back also failed: xl restore web failed'),
    ('verify-failed-and-recovery-failed',
     end(phase='verify', build_id_after=OLD, failure=dict(failed=True, msg='not the fixed build'),
         recovery=dict(failed=True, msg='no manifest')),
     'guests_not_restored', ['db'], [], 'not the fixed build; bringing the guests back also failed: no manifest'),
    ('wrong-build', end(phase='verify', build_id_after=OLD.upper(), failure=dict(failed=True, msg='came back on old'),
                        recovery=dict(changed=True, guests=[BACK])),
     'wrong_build', ['db'], [], 'came back on old'),
    ('verify-failed-on-the-fixed-build', end(phase='verify', failure=dict(failed=True, msg='xl info failed'),
                                             recovery=dict(guests=[BACK])),
     'failed', ['db'], [], 'xl info failed'),
    ('verify-failed-no-build', end(phase='verify', build_id_after=None, failure=dict(failed=True, msg='no build'),
                                   recovery=dict(guests=[BACK])),
     'failed', ['db'], [], 'no build'),
    ('install-failed', end(phase='install', failure=dict(failed=True, msg='apt failed'), recovery=dict(skipped=True)),
     'failed', ['db'], [], 'apt failed'),
    ('evacuate-failed-recovered', end(phase='evacuate', failure=dict(failed=True, msg='peer full'),
                                      recovery=dict(changed=True, guests=[BACK])),
     'failed', ['db'], [], 'peer full'),
    ('not-needed', end(needed=False, go=False, outcome='not_needed', phase='preflight', guests=[]),
     'not_needed', [], [], 'no payload for build %s' % OLD),
    ('not-allowed', end(go=False, outcome='reboot_required', phase='preflight', guests=[]),
     'reboot_required', [], [], 'reboot required; noreboot_xen_reboot_ok is false, nothing was changed'),
]


@pytest.mark.parametrize('left,outcome,guests,stranded,msg', [c[1:] for c in REBOOT_CASES],
                         ids=[c[0] for c in REBOOT_CASES])
def test_reboot_outcome_and_message(left, outcome, guests, stranded, msg):
    record = reboot_fallback_outcome(left)
    assert record['outcome'] == outcome
    assert [g['name'] for g in record['guests']] == guests
    assert record['stranded'] == stranded
    assert record['msg'] == msg


def test_every_reboot_outcome_is_covered():
    seven = {'would_reboot', 'rebooted', 'refused', 'unreachable', 'guests_not_restored', 'wrong_build', 'failed'}
    assert set(c[2] for c in REBOOT_CASES) >= seven


def test_check_mode_that_failed_is_not_would_reboot():
    assert rfo.reboot_outcome(end(check_mode=True, phase='install', failure=dict(failed=True, msg='x'))) == 'failed'


def test_planned_guests_are_never_stranded_but_unknown_states_are():
    assert rfo.stranded([PLANNED, ON_PEER, BACK]) == []
    assert rfo.stranded([dict(name='odd', action='save', file='/s/odd.save')]) == ['odd (saved to /s/odd.save, state None)']
    assert rfo.stranded([BACK, ON_PEER], placed=rfo.FINISH_PLACED_STATES) == []
    assert rfo.stranded([PLANNED], placed=rfo.FINISH_PLACED_STATES) == [
        'web (saved to /var/lib/noreboot-xen/saved-guests/web.save, state planned)']


def test_missing_recovery_counts_as_not_run():
    left = end(phase='reboot', failure=dict(failed=True, msg='gone'))
    del left['recovery']
    assert rfo.reboot_outcome(left) == 'failed'
    assert rfo.reboot_outcome(dict(left, recovery=None)) == 'failed'


def finish_end(**changes):
    base = dict(check_mode=False, phase='restore', failure={}, build_id_after=FIXED, good_build_ids=[FIXED.upper()],
                resumed_run_id='20261201T101500Z-1a2b', guests=[BACK, SAVED])
    base.update(changes)
    return base


FINISH_CASES = [
    ('check-mode', finish_end(check_mode=True), 'would_finish', [],
     'check mode: the guests of run 20261201T101500Z-1a2b would be brought back'),
    ('rebooted', finish_end(), 'rebooted', [],
     'finished the reboot fallback of run 20261201T101500Z-1a2b: build-id %s runs; guest(s) running again: db, web'
     % FIXED),
    ('not-rebooted', finish_end(build_id_after=OLD, guests=[]), 'not_rebooted', [],
     'guest(s) running again (none) but build-id %s is not a fixed one: the host still needs its reboot (run the '
     'same command again)' % OLD),
    ('failed-before-the-build-was-read', finish_end(phase='finish', build_id_after=None, resumed_run_id=None,
                                                    failure=dict(failed=True, msg='xl info failed')),
     'failed', [WEB_WHERE], 'finishing the reboot fallback of run ? failed: xl info failed'),
    ('restore-failed', finish_end(failure=dict(failed=True, msg='xl restore web failed'), check_mode=True),
     'guests_not_restored', [WEB_WHERE],
     'finishing the reboot fallback of run 20261201T101500Z-1a2b failed: xl restore web failed'),
    ('restore-failed-manifest-says-where', finish_end(failure=dict(failed=True, msg='xl restore web failed',
                                                                   manifest=dict(guests=[SAVED]))),
     'guests_not_restored', [WEB_WHERE],
     'finishing the reboot fallback of run 20261201T101500Z-1a2b failed: xl restore web failed'),
]


@pytest.mark.parametrize('left,outcome,stranded,msg', [c[1:] for c in FINISH_CASES],
                         ids=[c[0] for c in FINISH_CASES])
def test_finish_outcome_and_message(left, outcome, stranded, msg):
    record = finish_reboot_outcome(left)
    assert record['outcome'] == outcome
    assert record['guests'] == (left['failure'].get('manifest') or left)['guests']
    assert record['stranded'] == stranded
    assert record['msg'] == msg


# The role's reboot_fallback_result in one step (tasks/report.yml, tasks/finish.yml): the record of the
# outcome filter and what the run left around it.
@pytest.mark.parametrize('left', [c[1] for c in REBOOT_CASES], ids=[c[0] for c in REBOOT_CASES])
def test_reboot_result_is_the_record_and_what_the_run_left(left):
    left = dict(left, decision='reboot', run_id='run-7', build_id_before=OLD, reboot=dict(rebooted=True, elapsed=40))
    result = reboot_fallback_result(left)
    record = reboot_fallback_outcome(left)
    assert result == dict(decision='reboot', outcome=record['outcome'], phase=left['phase'], rebooted=True,
                          build_id_before=OLD, build_id_after=left['build_id_after'],
                          fixed_build_ids=left['fixed_build_ids'], guests=record['guests'],
                          stranded=record['stranded'], run_id='run-7', msg=record['msg'])


@pytest.mark.parametrize('reboot,rebooted', [
    (None, False),  # the reboot task did not run (a step before it failed, or the host needs no reboot)
    ({}, False),
    (dict(skipped=True), False),
    (dict(rebooted=True, elapsed=40, changed=True), True),
    (dict(rebooted=True, elapsed=0, changed=True), True),  # check mode: would reboot
    (dict(rebooted=True, failed=True, msg='Timed out waiting for last boot time check'), False),
    (dict(rebooted=False, failed=True, msg='Reboot command failed'), False),
    (dict(unreachable=True, msg='ssh: no route'), False),
], ids=['not-run', 'empty', 'skipped', 'came-back', 'check-mode', 'not-back-in-time', 'command-failed', 'unreachable'])
def test_rebooted_only_when_the_reboot_task_saw_the_host_back(reboot, rebooted):
    left = end(decision='reboot', run_id='run-7', build_id_before=OLD)
    if reboot is not None:
        left['reboot'] = reboot
    assert reboot_fallback_result(left)['rebooted'] is rebooted


def test_reboot_result_of_a_host_not_allowed_to_reboot():
    left = dict(needed=True, go=False, outcome='reboot_required', reason='no payload', host='xen-07',
                check_mode=False, phase='preflight', failure={}, recovery={}, build_id_after=None,
                fixed_build_ids=[FIXED], guests=[], decision='reboot', run_id='run-7', build_id_before=OLD, reboot={})
    assert reboot_fallback_result(left) == dict(
        decision='reboot', outcome='reboot_required', phase='preflight', rebooted=False, build_id_before=OLD,
        build_id_after=None, fixed_build_ids=[FIXED], guests=[], stranded=[], run_id='run-7',
        msg='reboot required; noreboot_xen_reboot_ok is false, nothing was changed')


@pytest.mark.parametrize('left', [c[1] for c in FINISH_CASES], ids=[c[0] for c in FINISH_CASES])
def test_finish_result_is_the_record_and_what_the_run_left(left):
    left = dict(left, run_id='run-8')
    record = finish_reboot_outcome(left)
    assert finish_reboot_result(left) == dict(
        decision='finish_reboot', outcome=record['outcome'], phase=left['phase'], rebooted=False,
        resumed_run_id=left['resumed_run_id'], build_id_after=left['build_id_after'],
        fixed_build_ids=left['good_build_ids'], guests=record['guests'], stranded=record['stranded'], run_id='run-8',
        msg=record['msg'])


@pytest.mark.parametrize('function', [reboot_fallback_outcome, finish_reboot_outcome, livepatch_outcome,
                                      reboot_fallback_result, finish_reboot_result])
def test_not_a_mapping_is_refused_with_what_was_expected(function):
    with pytest.raises(AnsibleFilterError, match='expected what the run of the role left'):
        function(['phase', 'restore'])


def lp_end(**changes):
    """What a run of the live patch role left after the transaction patched the host."""
    base = dict(go=True, outcome='in_progress', reason='payload lab_xsa_fix for build %s' % OLD,
                stage=dict(changed=True), failure={},
                apply=dict(changed=True, outcome='patched', msg='applied lab_xsa_fix', failed_checks=[],
                           resumed=False, uploaded=True))
    base.update(changes)
    return base


CHECKS = [dict(name='dmesg', ok=False)]
# id, what the run left, the record expected
LIVEPATCH_CASES = [
    ('patched', lp_end(),
     dict(outcome='patched', msg='applied lab_xsa_fix', failed_checks=[], resumed=False, uploaded=True,
          held_by_run=None)),
    ('reverted-with-failed-checks',
     lp_end(apply=dict(outcome='reverted', msg='reverted: dmesg', failed_checks=CHECKS, resumed=True)),
     dict(outcome='reverted', msg='reverted: dmesg', failed_checks=CHECKS, resumed=True, uploaded=False,
          held_by_run=None)),
    ('held-by-another-run', lp_end(apply=dict(outcome='held_by_other_run', msg='held', held_by_run='r0')),
     dict(outcome='held_by_other_run', msg='held', failed_checks=[], resumed=False, uploaded=False,
          held_by_run='r0')),
    ('failed-task-wins-over-the-apply-result',
     lp_end(failure=dict(failed=True, outcome='failed_applied', msg='revert failed', failed_checks=CHECKS)),
     dict(outcome='failed_applied', msg='revert failed', failed_checks=CHECKS, resumed=False, uploaded=False,
          held_by_run=None)),
    ('failed-task-without-outcome', lp_end(apply={}, failure=dict(failed=True, msg='copy failed')),
     dict(outcome='failed', msg='copy failed', failed_checks=[], resumed=False, uploaded=False, held_by_run=None)),
    ('unreachable-while-staging', lp_end(stage=dict(unreachable=True, msg='ssh'), apply={}),
     dict(outcome='unreachable', msg='', failed_checks=[], resumed=False, uploaded=False, held_by_run=None)),
    ('unreachable-while-applying', lp_end(apply=dict(unreachable=True, msg='ssh: reset')),
     dict(outcome='unreachable', msg='ssh: reset', failed_checks=[], resumed=False, uploaded=False,
          held_by_run=None)),
    ('no-payload-for-this-host', lp_end(go=False, outcome='pending_reboot', stage={}, apply={}),
     dict(outcome='pending_reboot', msg='payload lab_xsa_fix for build %s' % OLD, failed_checks=[], resumed=False,
          uploaded=False, held_by_run=None)),
]


@pytest.mark.parametrize('left,record', [c[1:] for c in LIVEPATCH_CASES], ids=[c[0] for c in LIVEPATCH_CASES])
def test_livepatch_outcome_and_message(left, record):
    got = livepatch_outcome(left)
    result = got.pop('result')
    assert got == record
    assert result == dict(decision=None, payload=None, msg=record['msg'], failed_checks=record['failed_checks'],
                          resumed=record['resumed'], uploaded=record['uploaded'], run_id=None,
                          held_by_run=record['held_by_run'])


def test_livepatch_result_names_the_decision_the_payload_and_the_run():
    left = lp_end(apply=dict(unreachable=True, msg='ssh: reset'), decision='livepatch', payload='lab_xsa_fix',
                  run_id='r1')
    assert livepatch_outcome(left)['result'] == dict(
        decision='livepatch', payload='lab_xsa_fix', msg='ssh: reset', failed_checks=[], resumed=False,
        uploaded=False, run_id='r1', held_by_run=None)


SHA = 'ab' * 32
PAYLOAD = dict(name='lab_xsa_fix', path='/srv/adv/lab_xsa_fix.livepatch', sha256=SHA)


def decision(kind='livepatch', payloads=(PAYLOAD,), **changes):
    base = dict(decision=kind, reason='payload lab_xsa_fix for build %s' % OLD, payloads=list(payloads))
    base.update(changes)
    return base


def preflight_result(decision_name, msg, payload='lab_xsa_fix'):
    return dict(decision=decision_name, payload=payload, msg=msg, failed_checks=[], resumed=False, uploaded=False,
                run_id='r1', held_by_run=None)


INPUTS_PROBLEM = ('noreboot.xen.livepatch needs livepatch_run_id (a non-empty run id) and livepatch_decision (this '
                  'host\'s entry of the fleet_plan decisions, with a "decision" key); got run id %s and decision %s.')

# id, decision, run id, what the message says they were
BAD_INPUTS = [
    ('no-run-id', decision(), '', '""', None),
    ('decision-not-a-mapping', ['livepatch'], 'r1', '"r1"', '["livepatch"]'),
    ('no-decision', None, 'r1', '"r1"', 'null'),
    ('decision-without-its-key', dict(reason='x'), 'r1', '"r1"', '{"reason": "x"}'),
]


@pytest.mark.parametrize('given,run_id,run_json,decision_json', [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_preflight_refuses_inputs_it_cannot_use_naming_them_and_the_fix(given, run_id, run_json, decision_json):
    with pytest.raises(AnsibleFilterError) as caught:
        livepatch_preflight(given, run_id, 'xen-07')
    if decision_json is None:
        decision_json = json.dumps(given)
    assert str(caught.value) == INPUTS_PROBLEM % (run_json, decision_json)


def test_preflight_gives_a_host_with_one_payload_the_transaction():
    assert livepatch_preflight(decision(), 'r1', 'xen-07') == dict(
        go=True, outcome='in_progress', result=preflight_result('livepatch', 'payload lab_xsa_fix for build %s' % OLD))


@pytest.mark.parametrize('kind,outcome', [
    ('reboot', 'pending_reboot'), ('already_patched', 'already_patched'), ('not_affected', 'not_affected'),
    ('not_xen', 'not_xen'), ('unreachable', 'unreachable'), ('undecided', 'undecided'),
    ('something_new', 'something_new')])
def test_preflight_gives_a_host_without_a_payload_its_final_outcome_and_the_plans_reason(kind, outcome):
    # The payload check is only for the hosts that get one: a reboot host's payloads are not looked at.
    got = livepatch_preflight(decision(kind, payloads=[PAYLOAD, PAYLOAD], reason='why not'), 'r1', 'xen-07')
    assert got == dict(go=False, outcome=outcome, result=preflight_result(kind, 'why not'))


def test_preflight_of_a_host_without_payloads_or_reason():
    got = livepatch_preflight(dict(decision='not_xen'), 'r1', 'xen-07')
    assert got == dict(go=False, outcome='not_xen', result=preflight_result('not_xen', '', payload=None))


PAYLOAD_PROBLEM = ('xen-07: the plan gives %s payload(s) (%s). This role applies exactly one payload per host per '
                   'run, with a name, a controller path and a sha256: run the rollout once per advisory, or fix the '
                   'advisory manifest.')
OTHER = dict(PAYLOAD, name='other_fix')
# id, payloads, the message's count and names, the result's payload
BAD_PAYLOADS = [
    ('none', [], '0', '', None),
    ('two', [PAYLOAD, OTHER], '2', 'lab_xsa_fix, other_fix', 'lab_xsa_fix'),
    ('no-name', [dict(PAYLOAD, name='')], '1', '', ''),
    ('no-path', [dict(PAYLOAD, path=None)], '1', 'lab_xsa_fix', 'lab_xsa_fix'),
    ('no-sha256', [dict((k, v) for k, v in PAYLOAD.items() if k != 'sha256')], '1', 'lab_xsa_fix', 'lab_xsa_fix'),
    ('short-sha256', [dict(PAYLOAD, sha256=SHA[:-1])], '1', 'lab_xsa_fix', 'lab_xsa_fix'),
]


@pytest.mark.parametrize('payloads,count,names,payload', [c[1:] for c in BAD_PAYLOADS], ids=[c[0] for c in BAD_PAYLOADS])
def test_preflight_fails_a_host_whose_plan_does_not_give_exactly_one_usable_payload(payloads, count, names, payload):
    # As the role's rescued stage assert did: the host's outcome is failed, nothing touches it, the run goes on.
    got = livepatch_preflight(decision(payloads=payloads), 'r1', 'xen-07')
    assert got == dict(go=False, outcome='failed',
                       result=preflight_result('livepatch', PAYLOAD_PROBLEM % (count, names), payload=payload))


def test_preflight_without_payloads_key():
    got = livepatch_preflight(dict(decision='livepatch'), 'r1', 'xen-07')
    assert (got['go'], got['outcome'], got['result']['msg']) == (False, 'failed', PAYLOAD_PROBLEM % ('0', ''))
