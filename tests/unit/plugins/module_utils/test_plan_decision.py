# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plan_decision: one decision per host with a reason, over hand-made, captured and generated facts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os
import random
import re

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import advisory_manifest as am
from ansible_collections.noreboot.xen.plugins.module_utils import plan_decision as pd
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import LivepatchRunner, XlRunner
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import collect_xen_facts
from xen_builds import XEN_4175, XEN_4176, XEN_4177  # Debian xen-hypervisor-4.17 4.17.5 and 4.17.7, the fixed build (fixtures)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'fixtures')

OTHER = 'ee' * 20


def advisory(**changes):
    manifest = {
        'schema': 1, 'id': 'XSA-999', 'title': 'example',
        'affected': {'hypervisors': {'versions': ['>=4.17.0,<4.17.7']}},
        'livepatches': [
            {'xen_build_id': XEN_4175, 'file': 'p/a.livepatch', 'sha256': 'a' * 64, 'name': 'xsa999_4175'},
            {'xen_build_id': XEN_4176, 'file': 'p/b.livepatch', 'sha256': 'b' * 64, 'name': 'xsa999_4176',
             'metadata': 'XSA999_V2'},
        ],
        'fallback': {'reboot': True, 'fixed_build_ids': [XEN_4177],
                     'packages': {'debian': {'package': 'xen-hypervisor-4.17-amd64', 'version': '4.17.7-1'}}},
    }
    for key, value in changes.items():
        if value is None:
            manifest.pop(key, None)
        else:
            manifest[key] = value
    return am.validate_manifest(manifest, '/srv/advisories/%s.yml' % manifest['id'], check_payload_files=False)


def facts(version='4.17.5', build_id=XEN_4175, payloads=(), supported=True, reason_kind=None,
          hardware=('intel', 6, 85)):
    vendor, family, model = hardware
    major, minor = (int(part) for part in re.match(r'(\d+)\.(\d+)', version).groups())
    return {
        'present': True, 'reason': None,
        'hypervisor': {'version': version, 'major': major, 'minor': minor, 'extra': version[4:], 'build_id': build_id,
                       'virt_caps': ['pv', 'hvm', 'hap'], 'hw_caps': '1fcbf3fd:f6d8320b'},
        'livepatch': {'supported': supported, 'reason': None if supported else 'Function not implemented',
                      'reason_kind': reason_kind, 'payloads': [dict(p) for p in payloads]},
        'effective_version': version,
        'hardware': {'vendor': vendor, 'family': family, 'model': model, 'stepping': 4,
                     'class': '%s-%s-%s' % (vendor, family, model), 'generation': None},
        'domains': [],
    }


def decide(xen, advisories=None, **entry):
    entry['xen'] = xen
    return pd.decide_host('h1', entry, [advisory()] if advisories is None else advisories)


@pytest.mark.parametrize('xen, entry, decision, words', [
    (facts(), {}, 'livepatch', 'apply payload xsa999_4175'),
    (facts(version='4.17.7', build_id=XEN_4177), {}, 'not_affected', 'is a fixed build'),
    (facts(version='4.16.9', build_id=OTHER), {}, 'not_affected', 'version 4.16.9 is outside >=4.17.0,<4.17.7'),
    (facts(build_id=OTHER), {}, 'reboot', 'no payload for build-id ' + OTHER),
    (facts(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}]), {}, 'already_patched',
     'payload xsa999_4175 is APPLIED on its build-id ' + XEN_4175),
    (facts(payloads=[{'name': 'xsa999_4175', 'state': 'CHECKED'}]), {}, 'livepatch', 'loaded but CHECKED, not APPLIED'),
    (facts(), {'force_reboot': True}, 'reboot', 'operator forced a reboot'),
    (facts(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED'}]), {'force_reboot': True}, 'already_patched', 'APPLIED'),
    (facts(supported=False, reason_kind='hypervisor_without_livepatch'), {}, 'reboot', 'hypervisor cannot live patch'),
    (facts(supported=False, reason_kind='tool_missing'), {}, 'undecided', 'live patch state unknown (tool_missing'),
    (facts(supported=False, reason_kind='no_control_interface'), {}, 'undecided', 'fix the tooling'),
    ({'present': False, 'reason': 'xl not found on PATH'}, {}, 'not_xen', 'xl not found on PATH'),
    (None, {'unreachable': True, 'error': 'ssh: timeout'}, 'unreachable', 'ssh: timeout'),
    (None, {'error': 'xen_facts: MODULE FAILURE'}, 'undecided', 'detection failed: xen_facts: MODULE FAILURE'),
    (None, {}, 'undecided', 'did noreboot.xen.xen_facts run?'),
    ({'present': True}, {}, 'undecided', 'facts lack xen.hypervisor'),
    ({'hypervisor': {}}, {}, 'undecided', 'facts lack xen.present'),
], ids=['livepatch', 'fixed-build', 'old-version', 'no-payload', 'applied', 'checked-only', 'forced',
        'forced-but-applied', 'no-livepatch-hypervisor', 'tool-missing', 'no-handler', 'not-xen', 'unreachable',
        'detect-failed', 'no-facts', 'no-hypervisor', 'no-present'])
def test_decisions_with_reasons(xen, entry, decision, words):
    result = decide(xen, **entry)
    assert result['decision'] == decision, result['reason']
    assert words in result['reason']


def test_livepatch_decision_names_the_payload_and_group_keys():
    result = decide(facts(), failure_domain='rack-1')
    assert [(p['name'], p['xen_build_id'], p['advisory']) for p in result['payloads']] == [('xsa999_4175', XEN_4175, 'XSA-999')]
    assert result['build_id'] == XEN_4175
    assert result['hardware_class'] == 'intel-6-85'
    assert result['failure_domain'] == 'rack-1'
    assert result['advisories'][0]['payload']['path'] == '/srv/advisories/p/a.livepatch'


def test_already_patched_needs_the_payload_of_this_build_not_just_the_name():
    # The 4.17.5 payload's name is applied, but the host runs 4.17.6: Xen could not have loaded
    # that payload here, so it is a different payload of the same name.
    result = decide(facts(version='4.17.6', build_id=XEN_4176,
                          payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}]))
    assert result['decision'] == 'livepatch'
    assert result['payloads'][0]['name'] == 'xsa999_4176'


def test_already_patched_needs_the_declared_metadata_marker():
    applied_v1 = [{'name': 'xsa999_4176', 'state': 'APPLIED', 'metadata': 'XSA999_V1'}]
    result = decide(facts(version='4.17.6', build_id=XEN_4176, payloads=applied_v1))
    assert result['decision'] == 'livepatch'
    assert "lacks 'XSA999_V2'" in result['reason']
    applied_v2 = [{'name': 'xsa999_4176', 'state': 'APPLIED', 'metadata': 'XSA999_V2;built=2026'}]
    assert decide(facts(version='4.17.6', build_id=XEN_4176, payloads=applied_v2))['decision'] == 'already_patched'


def test_hardware_outside_the_advisory_is_not_affected():
    hw = {'hypervisors': {'versions': ['>=4.17.0,<4.17.7']}, 'hardware': [{'vendor': 'amd', 'family': 25}]}
    result = decide(facts(), [advisory(affected=hw)])
    assert result['decision'] == 'not_affected'
    assert 'intel-6-85 matches no affected.hardware predicate' in result['reason']
    assert decide(facts(hardware=('amd', 25, 1)), [advisory(affected=hw)])['decision'] == 'livepatch'
    partial = facts()
    partial['hardware'] = {'class': 'unknown'}
    result = decide(partial, [advisory(affected=hw)])
    assert result['decision'] == 'undecided'
    assert 'no hardware.vendor' in result['reason']


def test_version_altered_by_a_payload_is_undecided_unless_the_build_id_is_listed():
    altered = facts(version='4.17Hello World', payloads=[{'name': 'xen_hello_world', 'state': 'APPLIED'}])
    result = decide(altered)
    assert result['decision'] == 'undecided'
    assert "'4.17Hello World'" in result['reason']
    listed = {'hypervisors': {'versions': ['>=4.17.0,<4.17.7'], 'build_ids': [XEN_4175]}}
    assert decide(altered, [advisory(affected=listed)])['decision'] == 'livepatch'


def test_several_advisories_combine_to_the_most_demanding_decision():
    second = advisory(id='XSA-1000', livepatches=[
        {'xen_build_id': XEN_4175, 'file': 'p/c.livepatch', 'sha256': 'c' * 64, 'name': 'xsa1000_4175'}])
    third = advisory(id='XSA-1001', livepatches=None)
    host = facts(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED'}])
    both = decide(host, [advisory(), second])
    assert both['decision'] == 'livepatch'
    assert [p['name'] for p in both['payloads']] == ['xsa1000_4175']
    assert [a['decision'] for a in both['advisories']] == ['already_patched', 'livepatch']
    fresh = decide(facts(), [advisory(), second])
    assert [p['name'] for p in fresh['payloads']] == ['xsa999_4175', 'xsa1000_4175']  # advisory order = apply order
    with_reboot = decide(facts(), [advisory(), second, third])
    assert with_reboot['decision'] == 'reboot'
    assert with_reboot['reason'].startswith('XSA-1001: ')
    assert with_reboot['fallback']['packages']['debian'] == [
        {'package': 'xen-hypervisor-4.17-amd64', 'version': '4.17.7-1', 'advisory': 'XSA-1001'}]
    assert with_reboot['payloads'] == []


def _fixture(*parts):
    with open(os.path.join(FIXTURES, *parts)) as handle:
        return handle.read()


@pytest.mark.parametrize('version_dir, listing, decision', [
    ('xen-4.17.5', 'livepatch_list_empty.txt', 'livepatch'),
    ('xen-4.17.7', 'livepatch_list_empty.txt', 'not_affected'),
], ids=['4.17.5-empty', '4.17.7-empty'])
def test_facts_from_real_captures(version_dir, listing, decision):
    outputs = {
        ('xl', 'info'): _fixture(version_dir, 'xl_info.txt'),
        ('xl', 'list'): _fixture(version_dir, 'xl_list.txt'),
        ('xl', 'dmesg'): _fixture(version_dir, 'xl_dmesg.txt'),
        ('xen-livepatch', 'list'): _fixture(version_dir, listing),
    }

    def run(argv):
        return 0, outputs[(os.path.basename(argv[0]), argv[1])], ''

    def read_file(path):
        if path == '/proc/cpuinfo':
            return _fixture('variants', 'cpuinfo_intel_cascade_lake.txt')
        if path == '/proc/xen/capabilities':
            return 'control_d\n'
        return None
    xen = collect_xen_facts(XlRunner(run, '/usr/sbin/xl'), LivepatchRunner(run, '/usr/sbin/xen-livepatch'), read_file)
    result = decide(xen)
    assert result['decision'] == decision, result['reason']
    assert result['hardware_class'] == xen['hardware']['class'] != 'unknown'


# ---------------------------------------------------------------------------------------------
# Generated fleets and partial facts

BUILDS = [('4.17.5', XEN_4175), ('4.17.6', XEN_4176), ('4.17.7', XEN_4177), ('4.17.3', OTHER), ('4.16.2', 'dd' * 20)]
HARDWARE = [('intel', 6, 85), ('intel', 6, 106), ('amd', 25, 1), ('amd', 23, 49)]


def random_entry(rng):
    roll = rng.random()
    if roll < 0.05:
        return {'unreachable': True}
    if roll < 0.1:
        return {'xen': {'present': False, 'reason': 'xl not found on PATH'}}
    version, build_id = rng.choice(BUILDS)
    payloads = []
    if rng.random() < 0.3:
        payloads.append({'name': rng.choice(['xsa999_4175', 'xsa999_4176', 'xen_hello_world']),
                         'state': rng.choice(['APPLIED', 'CHECKED']), 'metadata': rng.choice(['', 'XSA999_V2'])})
    supported = rng.random() > 0.1
    xen = facts(version, build_id, payloads, supported,
                None if supported else rng.choice(['hypervisor_without_livepatch', 'tool_missing']), rng.choice(HARDWARE))
    return {'xen': xen, 'force_reboot': rng.random() < 0.05, 'failure_domain': rng.choice(['r1', 'r2', None])}


def _paths(tree, prefix=()):
    for key, value in tree.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


def _without(tree, path):
    tree = copy.deepcopy(tree)
    node = tree
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return tree


def check_invariants(host, entry, result):
    assert result['decision'] in pd.DECISIONS
    assert result['reason'] and isinstance(result['reason'], str)
    xen = entry.get('xen') or {}
    if entry.get('unreachable'):
        assert result['decision'] == 'unreachable'
    if xen.get('present') is False:
        assert result['decision'] == 'not_xen'
    if result['decision'] == 'livepatch':
        assert result['payloads']
        assert all(p['xen_build_id'] == xen['hypervisor']['build_id'] for p in result['payloads'])
        assert not entry.get('force_reboot')
    if result['decision'] == 'already_patched':
        applied = [p['name'] for p in xen['livepatch']['payloads'] if p.get('state') == 'APPLIED']
        assert all(a['payload']['name'] in applied for a in result['advisories'] if a['decision'] == 'already_patched')
    if result['decision'] == 'reboot':
        assert result['fallback']['packages']


@pytest.mark.parametrize('seed', range(4))
def test_generated_fleets_keep_the_invariants(seed):
    rng = random.Random(seed)
    advisories = [advisory(), advisory(id='XSA-1000', livepatches=[
        {'xen_build_id': XEN_4176, 'file': 'p/c.livepatch', 'sha256': 'c' * 64, 'name': 'xsa1000_4176'}])]
    hosts = dict(('host%03d' % i, random_entry(rng)) for i in range(150))
    decisions = pd.decide_fleet(hosts, advisories)
    assert [d['host'] for d in decisions] == sorted(hosts)
    for result in decisions:
        check_invariants(result['host'], hosts[result['host']], result)
    counts = pd.count_decisions(decisions)
    assert sum(counts.values()) == len(hosts)
    assert counts['livepatch'] and counts['reboot'] and counts['not_affected']
    assert pd.decide_fleet(hosts, advisories) == decisions


@pytest.mark.parametrize('seed', range(3))
def test_partial_facts_give_the_same_decision_or_undecided(seed):
    rng = random.Random(100 + seed)
    hw_advisory = advisory(affected={'hypervisors': {'versions': ['>=4.17.0,<4.17.7']},
                                     'hardware': [{'vendor': 'intel', 'models': [85, 106], 'virt_caps': ['hap']},
                                                  {'vendor': 'amd', 'hw_caps': ['0:0']}]})
    checked = 0
    for dummy in range(40):
        entry = random_entry(rng)
        if not isinstance(entry.get('xen'), dict) or 'hypervisor' not in entry['xen']:
            continue
        full = pd.decide_host('h', entry, [hw_advisory])
        for path in _paths(entry['xen']):
            partial = dict(entry, xen=_without(entry['xen'], path))
            result = pd.decide_host('h', partial, [hw_advisory])
            assert result['decision'] in (full['decision'], 'undecided'), (path, full['reason'], result['reason'])
            assert result['reason']
            if result['decision'] == 'undecided' and full['decision'] != 'undecided':
                assert any(word in result['reason'] for word in ('lack', 'unknown', 'incomplete', 'no ')), result['reason']
            checked += 1
    assert checked > 200


def test_facts_with_a_payload_build_id_decide_the_match_alone():
    adv = advisory()
    adv['livepatches'][0]['payload_build_id'] = 'aa' * 20
    same = facts(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'build_id': 'AA' * 20}])
    other = facts(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'build_id': 'bb' * 20}])
    assert decide(same, [adv])['decision'] == 'already_patched'
    result = decide(other, [adv])
    assert result['decision'] == 'livepatch'
    assert 'its build-id is %s, not %s' % ('bb' * 20, 'aa' * 20) in result['reason']


def _stack_advisories(first_depends, second_depends):
    first = advisory(livepatches=[{'xen_build_id': XEN_4175, 'file': 'a', 'sha256': 'a' * 64, 'name': 'first'}])
    second = advisory(id='XSA-1000', livepatches=[{'xen_build_id': XEN_4175, 'file': 'b', 'sha256': 'b' * 64, 'name': 'second'}])
    first['livepatches'][0].update(payload_build_id='11' * 20, depends=first_depends)
    second['livepatches'][0].update(payload_build_id='22' * 20, depends=second_depends)
    return [first, second]


@pytest.mark.parametrize('applied, first_dep, second_dep, statuses', [
    ([], XEN_4175, '11' * 20, ['ok', 'ok']),                       # a proper stack
    ([], XEN_4175, XEN_4175, ['ok', 'replace_only']),               # both built against the hypervisor
    ([], XEN_4175, '99' * 20, ['ok', 'mismatch']),
    (['xen_hello_world'], XEN_4175, '11' * 20, ['unknown', 'ok']),  # top of stack not from a manifest
    ([], None, '11' * 20, ['unknown', 'ok']),                       # files not inspected
], ids=['stack', 'replace-only', 'mismatch', 'foreign-top', 'no-depends'])
def test_stacking_of_several_payloads(applied, first_dep, second_dep, statuses):
    host = facts(payloads=[{'name': name, 'state': 'APPLIED'} for name in applied])
    result = decide(host, _stack_advisories(first_dep, second_dep))
    assert result['decision'] == 'livepatch'
    assert [s['status'] for s in result['stacking']] == statuses
    assert [s['on_top_of'] for s in result['stacking']] == [applied[-1] if applied else None, 'first']
    assert len(result['notes']) == sum(1 for s in statuses if s != 'ok')


def test_stacking_on_a_payload_applied_by_an_earlier_advisory():
    advisories = _stack_advisories(XEN_4175, '11' * 20)
    host = facts(payloads=[{'name': 'first', 'state': 'APPLIED'}])
    result = decide(host, advisories)
    assert [p['name'] for p in result['payloads']] == ['second']
    assert result['stacking'][0]['status'] == 'ok'
    assert result['stacking'][0]['note'] == 'payload second stacks on payload first'
    assert result['notes'] == []


# --- Open intents: a run interrupted after the apply ------------------------------------------

APPLIED_4175 = [{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}]


def with_ledger(xen, intents=(), ledger_error=None):
    xen['livepatch'].update(open_intents=[dict(i) for i in intents], ledger_error=ledger_error)
    return xen


def intent(name='xsa999_4175', sha256='a' * 64, run_id='20260101T000000Z-dead'):
    return dict(name=name, sha256=sha256, run_id=run_id, time='2026-01-01T00:00:05Z')


def test_applied_with_an_open_intent_for_it_is_livepatch_so_the_rollout_finishes_it():
    result = decide(with_ledger(facts(payloads=APPLIED_4175), [intent()]), failure_domain='rack-1')
    assert result['decision'] == 'livepatch', result['reason']
    assert result['reason'].endswith(
        'payload xsa999_4175 is APPLIED on its build-id %s, applied by interrupted run 20260101T000000Z-dead; '
        'its health checks and outcome are pending: the rollout finishes it' % XEN_4175)
    assert [(p['name'], p['sha256'], p['advisory']) for p in result['payloads']] == [('xsa999_4175', 'a' * 64, 'XSA-999')]
    assert result['advisories'][0]['open_intent'] == intent()
    # The payload is not stacked on itself: no replace_only/mismatch note for it.
    assert [(s['name'], s['status']) for s in result['stacking']] == [('xsa999_4175', 'ok')]
    assert 'already applied (interrupted run 20260101T000000Z-dead)' in result['stacking'][0]['note']
    assert result['notes'] == []


def test_applied_without_open_intent_stays_already_patched_as_before():
    before = decide(facts(payloads=APPLIED_4175))
    for xen in (with_ledger(facts(payloads=APPLIED_4175)),
                with_ledger(facts(payloads=APPLIED_4175), [intent(name='xsa1_other')])):
        result = decide(xen)
        assert result['decision'] == 'already_patched'
        assert result['reason'] == before['reason']
        assert 'open_intent' not in result['advisories'][0]


def test_open_intent_for_another_file_of_that_name_is_not_finished():
    result = decide(with_ledger(facts(payloads=APPLIED_4175), [intent(sha256='f' * 64)]))
    assert result['decision'] == 'already_patched'
    assert ('the ledger has an open intent of interrupted run 20260101T000000Z-dead for another file of that name '
            '(sha256 %s), not this payload' % ('f' * 64)) in result['reason']


def test_unreadable_ledger_is_named_in_already_patched():
    result = decide(with_ledger(facts(payloads=APPLIED_4175), ledger_error='the ledger L cannot be read (EACCES)'))
    assert result['decision'] == 'already_patched'
    assert result['reason'].endswith('the rollout ledger could not be read (the ledger L cannot be read (EACCES)), '
                                     'so an interrupted run would go unseen')


def test_open_intent_of_a_payload_not_applied_changes_nothing():
    # CHECKED with an intent (died between upload and apply) was livepatch already; absent too.
    checked = [{'name': 'xsa999_4175', 'state': 'CHECKED'}]
    result = decide(with_ledger(facts(payloads=checked), [intent()]))
    assert result['decision'] == 'livepatch'
    assert result['reason'].endswith('loaded but CHECKED, not APPLIED: apply payload xsa999_4175')
    assert decide(with_ledger(facts(), [intent()]))['reason'].endswith('is not loaded: apply payload xsa999_4175')


def test_open_intent_with_forced_reboot_is_a_reboot():
    result = decide(with_ledger(facts(payloads=APPLIED_4175), [intent()]), force_reboot=True)
    assert result['decision'] == 'reboot'
    assert 'operator forced a reboot' in result['reason']


def test_open_intent_next_to_a_fresh_payload_of_another_advisory():
    advisories = _stack_advisories(XEN_4175, '11' * 20)
    host = with_ledger(facts(payloads=[{'name': 'first', 'state': 'APPLIED'}]), [intent(name='first')])
    result = decide(host, advisories)
    assert result['decision'] == 'livepatch'
    assert [p['name'] for p in result['payloads']] == ['first', 'second']
    assert [(s['name'], s['status']) for s in result['stacking']] == [('first', 'ok'), ('second', 'ok')]
    assert result['stacking'][1]['note'] == 'payload second stacks on payload first'


# --- An unfinished reboot fallback: finish_reboot, whatever the build ----------------------------

def unfinished(xen, guests=None, intent=None, error=None):
    xen = dict(xen)
    if guests is None:
        guests = [dict(name='web1', action='save', state='saved', file='/var/lib/noreboot-xen/saved-guests/web1.save',
                       peer=None, config=None, error=None, running=False)]
    xen['evacuation'] = dict(unfinished=True, manifest_path='/var/lib/noreboot-xen/guests.json', status='evacuated',
                             run_id='r1', updated='t', guests=guests, reboot_intent=intent, error=error,
                             ledger_error=None)
    return xen


def test_fixed_build_with_a_saved_guest_is_finish_reboot_not_not_affected():
    result = decide(unfinished(facts(version='4.17.7', build_id=XEN_4177)))
    assert result['decision'] == 'finish_reboot'
    assert 'web1 (saved to /var/lib/noreboot-xen/saved-guests/web1.save, state saved)' in result['reason']
    assert result['resumes']['decision'] == 'not_affected'
    assert XEN_4177 in result['finish']['good_build_ids']
    assert result['finish']['guests'][0]['name'] == 'web1'
    assert pd.count_decisions([result])['finish_reboot'] == 1


@pytest.mark.parametrize('xen, resumes, good', [
    (facts(), 'livepatch', [XEN_4177]),                                   # never rebooted: old build, a payload fits
    (facts(build_id=OTHER), 'reboot', [XEN_4177]),                        # came back on a build the advisory lacks
    (facts(version='4.16.9', build_id=OTHER), 'not_affected', [OTHER, XEN_4177]),   # outside the advisory: good as is
], ids=['old-build', 'unknown-build', 'outside-advisory'])
def test_unfinished_evacuation_is_finish_reboot_whatever_the_build(xen, resumes, good):
    intent = dict(run_id='r0', time='t', advisory='XSA-999', hypervisor_build_id=XEN_4175, fixed_build_ids=[XEN_4177],
                  guests=['web1'])
    result = decide(unfinished(xen, guests=[], intent=intent))
    assert result['decision'] == 'finish_reboot'
    assert 'reboot intent of run r0 has no outcome' in result['reason']
    assert result['resumes']['decision'] == resumes
    assert result['finish']['good_build_ids'] == sorted(good)
    assert result['finish']['resumed_run_id'] == 'r0'


def test_finished_evacuation_or_unreachable_host_is_not_finish_reboot():
    xen = facts(version='4.17.7', build_id=XEN_4177)
    xen['evacuation'] = dict(unfinished=False, guests=[], reboot_intent=None, error=None)
    assert decide(xen)['decision'] == 'not_affected'
    assert decide(unfinished(xen), unreachable=True)['decision'] == 'unreachable'
