# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.fleet_plan run as Ansible runs it: manifests on disk, hosts in, plan out."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

import pytest
import yaml

from ansible.release import __version__ as CORE_RELEASE

from ansible_collections.noreboot.xen.plugins.module_utils import advisory_manifest as am
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import sha256_file
from ansible_collections.noreboot.xen.plugins.modules import fleet_plan
import livepatch_payload_forge as forge
from manifest_problems import manifest_problems
from module_case_harness import REAL_COMMANDS, run_module_printed
from xen_builds import XEN_4175, XEN_4177

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.join(HERE, '..', '..', '..', '..')


def write_advisory(directory, **changes):
    (directory / 'payloads').mkdir(exist_ok=True)
    meta = forge.forge_payload(str(directory / 'payloads' / 'xsa999.livepatch'), XEN_4175)
    manifest = {
        'schema': 1, 'id': 'XSA-999', 'title': 'x86: example flaw',
        'affected': {'hypervisors': {'versions': ['>=4.17.0,<4.17.7']}},
        'livepatches': [{'xen_build_id': XEN_4175, 'file': 'payloads/xsa999.livepatch', 'sha256': meta['sha256'],
                         'name': 'xsa999_4175'}],
        'fallback': {'reboot': True, 'fixed_build_ids': [XEN_4177],
                     'packages': {'debian': {'package': 'xen-hypervisor-4.17-amd64', 'version': '4.17.7-1'}}},
    }
    manifest.update(changes)
    path = directory / 'xsa-999.yml'
    path.write_text(yaml.safe_dump(manifest))
    return str(path)


def xen(version='4.17.5', build_id=XEN_4175, payloads=(), model=85):
    return {'present': True,
            'hypervisor': {'version': version, 'major': 4, 'minor': 17, 'build_id': build_id},
            'livepatch': {'supported': True, 'reason': None, 'reason_kind': None, 'payloads': list(payloads)},
            'hardware': {'vendor': 'intel', 'family': 6, 'model': model, 'class': 'intel-6-%d' % model}}


def fleet():
    hosts = dict(('xen%02d' % i, {'xen': xen(model=85 if i % 3 else 106), 'failure_domain': 'rack-%d' % (i % 2)})
                 for i in range(10))
    hosts['fixed01'] = {'xen': xen('4.17.7', XEN_4177)}
    hosts['old01'] = {'xen': xen('4.17.5', 'ee' * 20), 'failure_domain': 'rack-0'}
    hosts['done01'] = {'xen': xen(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}])}
    hosts['dom0less'] = {'xen': {'present': False, 'reason': 'xl not found on PATH'}}
    hosts['gone01'] = {'unreachable': True, 'error': 'Failed to connect to the host via ssh'}
    hosts['forced01'] = {'xen': xen(), 'force_reboot': True, 'failure_domain': 'rack-1'}
    return hosts


def run(args, capsys, monkeypatch=None, check_mode=False):  # pylint: disable=unused-argument
    """fleet_plan's printed result for ``args``; it runs no command (the harness fails the test if it does)."""
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    return run_module_printed(fleet_plan.main, args, capsys)[1]


def run_with_tools(args, capsys):
    """fleet_plan's printed result with the controller's real tools (gpg, minisign: the signature tests)."""
    return run_module_printed(fleet_plan.main, args, capsys, answer=REAL_COMMANDS)[1]


def test_plan_for_a_mixed_fleet(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    plan_path = tmp_path / 'out' / 'plan.json'
    result = run(dict(advisories=[manifest], hosts=fleet(), plan_path=str(plan_path)), capsys, monkeypatch)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True
    assert result['counts'] == {'livepatch': 10, 'reboot': 2, 'already_patched': 1, 'not_affected': 1,
                                'not_xen': 1, 'unreachable': 1, 'undecided': 0, 'held': 0, 'needs_attention': 0, 'finish_reboot': 0}
    assert result['decisions']['old01']['reason'].endswith('no payload for build-id ' + 'ee' * 20)
    assert result['decisions']['forced01']['decision'] == 'reboot'
    assert [(g['hardware_class'], g['canary']) for g in result['groups']] == [('intel-6-106', 'xen00'), ('intel-6-85', 'xen01')]
    kinds = [w['kind'] for w in result['waves']]
    assert kinds[0] == 'canary' and kinds[-1] == 'reboot'
    assert result['waves'][0]['hosts'] == ['xen00', 'xen01']
    assert sorted(h for w in result['waves'] if w['kind'] == 'reboot' for h in w['hosts']) == ['forced01', 'old01']
    assert result['decisions']['xen00']['wave'] == 1
    assert any(line.startswith('Decisions: unreachable 1, not_xen 1, reboot 2, livepatch 10') for line in result['table'])
    assert any('gone01: unreachable: detection could not reach the host' in line for line in result['table'])
    written = json.loads(plan_path.read_text())
    assert written['schema'] == 1
    assert written['waves'] == result['waves']
    assert written['advisories'][0]['manifest_sha256'] == sha256_file(manifest)
    # Same input: same bytes, nothing changed.
    again = run(dict(advisories=[manifest], hosts=fleet(), plan_path=str(plan_path)), capsys, monkeypatch)
    assert again['changed'] is False


def test_check_mode_does_not_write(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    plan_path = tmp_path / 'plan.json'
    result = run(dict(advisories=[manifest], hosts=fleet(), plan_path=str(plan_path)), capsys, monkeypatch, check_mode=True)
    assert result['changed'] is True
    assert result['waves']
    assert not plan_path.exists()


def test_without_plan_path_nothing_changes(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    result = run(dict(advisories=[manifest], hosts=fleet()), capsys, monkeypatch)
    assert result['changed'] is False
    assert 'plan_path' not in result


def test_policy_is_passed_through(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    result = run(dict(advisories=[manifest], hosts=fleet(), policy={'wave_sizes': ['100%'], 'max_per_domain': '100%'}),
                 capsys, monkeypatch)
    # The first reboot wave is the reboot canary (one host per fixed build and hardware class), then the rest.
    assert [w['kind'] for w in result['waves']] == ['canary', 'livepatch', 'reboot', 'reboot']
    assert [w['canary'] for w in result['waves'] if w['kind'] == 'reboot'] == [True, False]
    assert result['policy'] == {'wave_sizes': ['100%'], 'reboot_wave_sizes': ['100%'], 'max_per_domain': '100%',
                                'max_canaries_per_wave': 5}


def test_bad_manifest_is_refused_with_every_problem(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path, livepatches=[{'xen_build_id': XEN_4175, 'file': 'payloads/xsa999.livepatch',
                                                      'name': 'xsa999_4175', 'sha': 'x'}])
    result = run(dict(advisories=[manifest], hosts=fleet()), capsys, monkeypatch)
    assert result['failed'] is True
    assert [(p['file'], p['path']) for p in result['problems']] == [
        (manifest, 'livepatches[0].sha'), (manifest, 'livepatches[0].sha256')]
    assert '2 problem(s)' in result['msg'] and 'livepatches[0].sha256: missing sha256' in result['msg']
    assert 'decisions' not in result


def test_yaml_errors_name_the_line(tmp_path, capsys, monkeypatch):
    broken = tmp_path / 'broken.yml'
    broken.write_text('schema: 1\nid: XSA-1\nid: XSA-2\n')
    syntax = tmp_path / 'syntax.yml'
    syntax.write_text('schema: 1\ntitle: [unclosed\n')
    missing = str(tmp_path / 'missing.yml')
    result = run(dict(advisories=[str(broken), str(syntax), missing], hosts={}), capsys, monkeypatch)
    problems = result['problems']
    assert problems[0]['file'] == str(broken) and problems[0]['path'] == 'line 3 column 1'
    assert "key 'id' given twice" in problems[0]['problem']
    assert problems[1]['file'] == str(syntax) and problems[1]['path'].startswith('line ')
    assert problems[2]['file'] == missing and 'cannot read the manifest' in problems[2]['problem']


def test_non_scalar_yaml_key_is_a_problem_line(tmp_path, capsys, monkeypatch):
    """Issue 13 item 9: a list or mapping used as a key names its place instead of a traceback."""
    listkey = tmp_path / 'listkey.yml'
    listkey.write_text('schema: 1\n? [a, b]\n: 1\n')
    mapkey = tmp_path / 'mapkey.yml'
    mapkey.write_text('schema: 1\naffected:\n  {x: 1}: 2\n')
    result = run(dict(advisories=[str(listkey), str(mapkey)], hosts={}), capsys, monkeypatch)
    assert result['failed'] is True
    problems = result['problems']
    assert [(p['file'], p['path']) for p in problems] == [(str(listkey), 'line 2 column 3'),
                                                          (str(mapkey), 'line 3 column 3')]
    assert all('a key must be a single value' in p['problem'] for p in problems)


def test_manifest_larger_than_the_limit_is_not_parsed(tmp_path, capsys, monkeypatch):
    huge = tmp_path / 'huge.yml'
    huge.write_text('schema: 1\n' + '# padding\n' * 120000)
    result = run(dict(advisories=[str(huge)], hosts={}), capsys, monkeypatch)
    assert result['failed'] is True
    assert [p['file'] for p in result['problems']] == [str(huge)]
    assert 'larger than 1048576 bytes' in result['problems'][0]['problem']


@pytest.mark.parametrize('args, words', [
    (dict(policy={'wave_sizes': [0]}), 'policy.wave_sizes[0]: 0 hosts per wave cannot make progress'),
    (dict(hosts={'xen01': {'facts': {}}}), 'hosts.xen01: unknown key(s) facts'),
    (dict(hosts={'xen01': 'up'}), 'hosts.xen01 must be a mapping'),
    (dict(hosts={'xen01': {'force_reboot': 'maybe'}}), "hosts.xen01.force_reboot: 'maybe' is not a boolean"),
])
def test_bad_input_fails_clearly(tmp_path, capsys, monkeypatch, args, words):
    manifest = write_advisory(tmp_path)
    base = dict(advisories=[manifest], hosts=fleet())
    base.update(args)
    result = run(base, capsys, monkeypatch)
    assert result['failed'] is True
    assert words in result['msg']


def test_documented_example_manifest_is_valid_apart_from_its_payload_file():
    path = os.path.join(REPO, 'docs', 'examples', 'advisories', 'xsa-999.yml')
    documents, problems = fleet_plan.read_manifests([path])
    assert problems == []
    advisory = am.validate_manifest(documents[0][1], path, check_payload_files=False)
    assert advisory['id'] == 'XSA-999'
    assert advisory['fallback']['packages']['debian'] == {'package': 'xen-hypervisor-4.17-amd64',
                                                          'version': '4.17.7+13-g2445b30a44-0+deb12u1'}
    # With payload files checked, the only problem is the payload that is not shipped.
    assert [p.path for p in manifest_problems(documents[0][1], path)] == ['livepatches[0].file']


def test_argument_spec_matches_documentation():
    documented = yaml.safe_load(fleet_plan.DOCUMENTATION)['options']
    spec = fleet_plan.get_argument_spec()
    assert sorted(documented) == sorted(spec)
    assert sorted(documented['policy']['suboptions']) == sorted(spec['policy']['options'])


def test_documentation_shows_the_example_file():
    with open(os.path.join(REPO, 'docs', 'advisory_manifest.md')) as handle:
        text = handle.read()
    block = text.split('```yaml\n', 1)[1].split('```', 1)[0]
    with open(os.path.join(REPO, 'docs', 'examples', 'advisories', 'xsa-999.yml')) as handle:
        example = yaml.safe_load(handle)
    assert yaml.safe_load(block) == example


def test_payload_identity_from_the_file_is_in_the_decision(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    result = run(dict(advisories=[manifest], hosts={'xen01': {'xen': xen()}}), capsys, monkeypatch)
    payload = result['decisions']['xen01']['payloads'][0]
    meta = forge.forge_payload(str(tmp_path / 'again.livepatch'), XEN_4175)
    assert payload['depends'] == XEN_4175
    assert payload['payload_build_id'] == meta['build_id']
    assert payload['path'] == str(tmp_path / 'payloads' / 'xsa999.livepatch')


def test_boolean_strings_from_ini_inventories(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    hosts = {'xen01': {'xen': xen(), 'force_reboot': 'false'}, 'xen02': {'xen': xen(), 'force_reboot': 'True'},
             'xen03': {'unreachable': 'no', 'xen': xen()}}
    result = run(dict(advisories=[manifest], hosts=hosts), capsys, monkeypatch)
    assert [result['decisions'][h]['decision'] for h in ('xen01', 'xen02', 'xen03')] == ['livepatch', 'reboot', 'livepatch']


def test_two_advisories_whose_payloads_cannot_stack_are_noted(tmp_path, capsys, monkeypatch):
    first = write_advisory(tmp_path)
    other = tmp_path / 'xsa-1000'
    other.mkdir()
    # Built against the hypervisor too (the forge's default .livepatch.depends), not on top of xsa999.
    second = write_advisory(other, id='XSA-1000', livepatches=[{
        'xen_build_id': XEN_4175, 'file': 'payloads/xsa999.livepatch', 'name': 'xsa1000_4175',
        'sha256': sha256_file(str(tmp_path / 'payloads' / 'xsa999.livepatch'))}])
    result = run(dict(advisories=[first, second], hosts={'xen01': {'xen': xen()}}), capsys, monkeypatch)
    decision = result['decisions']['xen01']
    assert [p['name'] for p in decision['payloads']] == ['xsa999_4175', 'xsa1000_4175']
    assert [s['status'] for s in decision['stacking']] == ['ok', 'replace_only']
    assert 'Notes (1 host(s)):' in result['table']
    assert any(line.startswith('  xen01: payload xsa1000_4175 depends on the hypervisor') for line in result['table'])


def test_applied_payload_with_an_open_intent_lands_in_a_wave(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    sha256 = sha256_file(str(tmp_path / 'payloads' / 'xsa999.livepatch'))
    applied = [{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}]
    resumed = xen(payloads=applied)
    resumed['livepatch'].update(ledger_error=None, open_intents=[
        {'name': 'xsa999_4175', 'sha256': sha256, 'run_id': 'R1', 'time': '2026-01-01T00:00:00Z'}])
    done = xen(payloads=applied)
    done['livepatch'].update(ledger_error=None, open_intents=[])
    result = run(dict(advisories=[manifest], hosts={'resume01': {'xen': resumed}, 'done01': {'xen': done}}),
                 capsys, monkeypatch)
    assert not result.get('failed'), result.get('msg')
    decision = result['decisions']['resume01']
    assert decision['decision'] == 'livepatch'
    assert decision['reason'].endswith('applied by interrupted run R1; its health checks and outcome are pending: '
                                       'the rollout finishes it')
    assert [p['sha256'] for p in decision['payloads']] == [sha256]
    assert decision['wave'] == 1 and result['waves'][0]['hosts'] == ['resume01']
    assert result['decisions']['done01']['decision'] == 'already_patched'
    assert result['decisions']['done01']['wave'] is None


def test_validate_only_checks_every_manifest_and_plans_nothing(tmp_path, capsys, monkeypatch):
    """Issue 13 item 12: the playbooks validate the manifests before any host is contacted (hosts: {})."""
    good = write_advisory(tmp_path)
    result = run(dict(advisories=[good], hosts={}, validate_only=True), capsys, monkeypatch)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False
    assert [a['id'] for a in result['advisories']] == ['XSA-999']
    assert 'decisions' not in result and 'waves' not in result
    bad_dir = tmp_path / 'bad'
    bad_dir.mkdir()
    bad = write_advisory(bad_dir, livepatches=[{'xen_build_id': XEN_4175, 'file': 'payloads/xsa999.livepatch',
                                                'name': 'xsa999_4175', 'sha256': '0' * 64}])
    result = run(dict(advisories=[good, bad], hosts={}, validate_only=True), capsys, monkeypatch)
    assert result['failed'] is True
    assert [p['file'] for p in result['problems']] == [bad]
    assert 'sha256' in result['msg']


@pytest.mark.parametrize('apply_until, decision', [(datetime.date(2000, 1, 1), 'reboot'), (datetime.date(2999, 1, 1), 'livepatch')],
                         ids=['expired', 'not-yet'])
def test_payload_expiry_is_checked_against_the_real_utc_now(tmp_path, capsys, monkeypatch, apply_until, decision):
    manifest = write_advisory(tmp_path)
    line = '  name: xsa999_4175\n'
    text = (tmp_path / 'xsa-999.yml').read_text().replace(line, line + '  apply_until: %s\n' % apply_until.isoformat())
    (tmp_path / 'xsa-999.yml').write_text(text)
    result = run(dict(advisories=[manifest], hosts={'h1': {'xen': xen()}}), capsys, monkeypatch)
    assert not result.get('failed'), result.get('msg')
    assert result['decisions']['h1']['decision'] == decision
    if decision == 'reboot':
        assert 'payload xsa999_4175 expired at 2000-01-01T00:00:00Z (apply_until)' in result['decisions']['h1']['reason']


def test_naive_end_of_life_time_is_refused_before_planning(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path, livepatch_end_of_life=[{'xen_build_id': XEN_4175, 'from': '2027-01-31T00:00:00'}])
    result = run(dict(advisories=[manifest], hosts=fleet()), capsys, monkeypatch)
    assert result['failed'] is True
    assert [(p['file'], p['path']) for p in result['problems']] == [(manifest, 'livepatch_end_of_life[0].from')]
    assert "'2027-01-31T00:00:00' has no time zone" in result['msg']
    assert 'decisions' not in result


# ansible-core 2.21 returns a module's invocation only when the controller asks for it (INJECT_INVOCATION, sent as
# _ansible_inject_invocation); older cores always return it. Ask for it where that switch exists.
CORE_VERSION = tuple(int(part) for part in CORE_RELEASE.split('.')[:2])
INJECT_INVOCATION = {'_ansible_inject_invocation': True} if CORE_VERSION >= (2, 21) else {}


def test_the_result_does_not_echo_the_fleets_facts(tmp_path, capsys, monkeypatch):
    # AnsibleModule echoes every argument back as invocation.module_args: the hosts' facts would travel back to the
    # controller and sit in the registered plan a second time (tests/bench/bench_plan_scale.py measures the cost).
    manifest = write_advisory(tmp_path)
    hosts = fleet()
    result = run(dict(advisories=[manifest], hosts=hosts, policy={'max_per_domain': 2}, **INJECT_INVOCATION), capsys,
                 monkeypatch)
    args = result['invocation']['module_args']
    assert args['hosts'] == '(%d host(s); their facts are not repeated here, see decisions)' % len(hosts)
    assert args['advisories'] == [manifest] and args['policy']['max_per_domain'] == 2
    assert XEN_4175 not in json.dumps(result['invocation'])
    assert sorted(result['decisions']) == sorted(hosts)


def test_a_refused_plan_does_not_echo_the_fleets_facts_either(tmp_path, capsys, monkeypatch):
    manifest = write_advisory(tmp_path)
    result = run(dict(advisories=[manifest], hosts=fleet(), policy={'wave_sizes': [0]}, **INJECT_INVOCATION), capsys,
                 monkeypatch)
    assert result['failed'] and 'wave_sizes' in result['msg']
    assert XEN_4175 not in json.dumps(result['invocation'])
