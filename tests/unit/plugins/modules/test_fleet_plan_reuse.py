# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet_plan with from_plan: an approved plan (an AWX workflow's artifact) is run only while the fleet matches it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest
import yaml

from test_fleet_plan import XEN_4177, fleet, run, write_advisory, xen  # pylint: disable=import-error


def _artifact(result):
    """What rolling_livepatch.yml / plan.yml publish with set_stats: the result without changed/failed/invocation."""
    plan = dict((k, v) for k, v in result.items() if k not in ('changed', 'failed', 'invocation', 'warnings'))
    plan['run_id'] = '20261203T070000Z-awx41'
    return plan


def _applied(hosts, name):
    hosts[name]['xen']['livepatch']['payloads'] = [{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}]


def _change_build(hosts, name):
    hosts[name]['xen'] = xen('4.17.7', XEN_4177)


def _add(hosts, name):
    hosts['new01'] = {'xen': xen()}


def _remove(hosts, name):
    del hosts[name]


def _move_domain(hosts, name):
    hosts[name]['failure_domain'] = 'rack-9'


# (id, what changes between the plan node and the rollout node, the differences named)
DRIFT = [
    ('payload-applied-meanwhile', _applied, 'xen03', ['xen03: decision livepatch in the plan, already_patched now; now: ']),
    ('host-changed-build', _change_build, 'xen04',
     ['xen04: decision livepatch in the plan, not_affected now; build-id 39a640e6f1412319235087391df9f1c5e13ae920 in the '
      'plan, 151b373fd64b321593bf987fd923cd10dabadac4 now; now: ']),
    ('host-added', _add, None, ["new01: not in the plan, but in this run's hosts now (added since), decided livepatch"]),
    ('host-removed', _remove, 'xen05', ["xen05: in the plan, but not in this run's hosts now"]),
    ('failure-domain-moved', _move_domain, 'xen06', ['xen06: failure-domain rack-0 in the plan, rack-9 now']),
]


@pytest.fixture
def approved(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    result = run(dict(advisories=[manifest], hosts=fleet()), capsys, monkeypatch)
    assert not result.get('failed'), result.get('msg')
    return manifest, _artifact(result)


def test_the_approved_plan_is_run_when_the_fleet_still_matches_it(approved, capsys, monkeypatch):
    manifest, plan = approved
    result = run(dict(advisories=[manifest], hosts=fleet(), from_plan=plan), capsys, monkeypatch)
    assert not result.get('failed'), result.get('msg')
    assert result['reused'] is True and result['phase'] == 'all'
    assert result['waves'] == plan['waves'] and result['decisions'] == plan['decisions']
    assert result['table'][0] == 'Plan: the approved plan of run 20261203T070000Z-awx41; the fleet still matches it'


@pytest.mark.parametrize('change, host, expected', [c[1:] for c in DRIFT], ids=[c[0] for c in DRIFT])
def test_a_fleet_that_drifted_from_the_approved_plan_is_refused_naming_each_difference(
        approved, capsys, monkeypatch, change, host, expected):
    manifest, plan = approved
    hosts = fleet()
    change(hosts, host)
    result = run(dict(advisories=[manifest], hosts=hosts, from_plan=plan), capsys, monkeypatch)
    assert result['failed'] is True
    assert len(result['differences']) == len(expected)
    for got, want in zip(result['differences'], expected):
        assert got.startswith(want), got
    assert result['msg'].startswith('the fleet no longer matches the approved plan (noreboot_xen_rollout_plan, run '
                                    '20261203T070000Z-awx41), so this run is refused before any host is changed: '
                                    '%d difference(s): ' % len(expected))
    assert 'Fix: plan again' in result['msg']


def test_an_edited_manifest_and_another_policy_are_differences(approved, tmp_path, capsys, monkeypatch):
    manifest, plan = approved
    with open(manifest) as handle:
        data = yaml.safe_load(handle)
    data['title'] = 'x86: example flaw (revised)'
    with open(manifest, 'w') as handle:
        yaml.safe_dump(data, handle)
    result = run(dict(advisories=[manifest], hosts=fleet(), from_plan=plan, policy={'max_per_domain': 1}),
                 capsys, monkeypatch)
    assert result['failed'] is True
    assert result['differences'][0].startswith('advisory XSA-999: its manifest changed since the plan (sha256 ')
    assert result['differences'][1].startswith("wave policy: {'")
    assert len(result['differences']) == 2


def test_the_canary_phase_then_the_rest_with_the_canaries_patched_in_between(approved, capsys, monkeypatch):
    manifest, plan = approved
    canary = run(dict(advisories=[manifest], hosts=fleet(), from_plan=plan, phase='canary'), capsys, monkeypatch)
    assert not canary.get('failed'), canary.get('msg')
    assert [w['kind'] for w in canary['waves']] == ['canary']
    assert sorted(canary['decisions']) == ['xen00', 'xen01']
    assert canary['phase_hosts_left_out'] == len(plan['decisions']) - 2
    assert 'Phase canary: %d host(s) of the plan left to the other phase' % (len(plan['decisions']) - 2) in canary['table']
    # The canary node patched its hosts: the next node finds them already patched, which is not drift...
    hosts = fleet()
    for name in ('xen00', 'xen01'):
        _applied(hosts, name)
    rest = run(dict(advisories=[manifest], hosts=hosts, from_plan=plan, phase='after_canary'), capsys, monkeypatch)
    assert not rest.get('failed'), rest.get('msg')
    assert 'canary' not in [w['kind'] for w in rest['waves']] and rest['waves'] == plan['waves'][1:]
    assert 'xen00' not in rest['decisions'] and 'gone01' in rest['decisions']
    # ... but in the phase that runs every wave, a patched canary is drift like any payload applied meanwhile.
    whole = run(dict(advisories=[manifest], hosts=hosts, from_plan=plan), capsys, monkeypatch)
    assert [d.split(':')[0] for d in whole['differences']] == ['xen00', 'xen01']


@pytest.mark.parametrize('given, expected', [
    ('a plan', 'noreboot_xen_rollout_plan must be the plan artifact of an earlier plan job'),
    ({'waves': []}, 'noreboot_xen_rollout_plan is not a plan of noreboot.xen.fleet_plan: decisions, policy, advisories, '
                    'counts, matrix, groups, domains missing'),
])
def test_something_else_than_a_plan_is_refused(approved, capsys, monkeypatch, given, expected):
    manifest, dummy = approved
    result = run(dict(advisories=[manifest], hosts=fleet(), from_plan=given), capsys, monkeypatch)
    assert result['failed'] is True and expected in result['msg']


def test_the_given_plan_is_not_changed(approved, capsys, monkeypatch):
    manifest, plan = approved
    before = copy.deepcopy(plan)
    run(dict(advisories=[manifest], hosts=fleet(), from_plan=plan, phase='after_canary'), capsys, monkeypatch)
    assert plan == before


def test_each_slice_of_a_sliced_job_takes_its_hosts_of_the_remaining_waves(approved, capsys, monkeypatch):
    manifest, plan = approved
    hosts = fleet()
    for name in ('xen00', 'xen01'):
        _applied(hosts, name)
    names = sorted(hosts)
    seen = []
    for number in range(1, 4):
        own = names[number - 1::3]
        result = run(dict(advisories=[manifest], hosts=dict((h, hosts[h]) for h in own), from_plan=plan,
                          phase='after_canary', slices=3), capsys, monkeypatch)
        assert not result.get('failed'), result.get('msg')
        assert result['slice']['number'] == number and result['slice']['count'] == 3
        assert 'Slice %d of 3: this job runs its' % number in ' '.join(result['table'])
        # Its waves are the plan's remaining waves cut to its hosts, in plan order.
        expected = [[h for h in w['hosts'] if h in own] for w in plan['waves'][1:]]
        assert [w['hosts'] for w in result['waves']] == [e for e in expected if e]
        seen.extend(result['decisions'])
    # Together the slices have every host of the remaining phase, once.
    assert sorted(seen) == sorted(h for h in plan['decisions'] if h not in ('xen00', 'xen01'))
    # Hosts that are not one slice (here: the whole inventory) are refused, before any host is changed.
    wrong = run(dict(advisories=[manifest], hosts=hosts, from_plan=plan, phase='after_canary', slices=3), capsys,
                monkeypatch)
    assert wrong['failed'] and 'not exactly one slice of 3' in wrong['msg']
    # Sliced without the plan: refused.
    bare = run(dict(advisories=[manifest], hosts=hosts, phase='after_canary', slices=3), capsys, monkeypatch)
    assert bare['failed'] and 'noreboot_xen_rollout_plan (not given)' in bare['msg']
