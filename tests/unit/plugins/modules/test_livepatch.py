# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.livepatch, driven by the cases in livepatch_cases.yml.

Each case names the module args, the payload forged on the "host", and the exact commands the
module must run, in order, with the rc/stdout/stderr each returns (wording from real Xen 4.17
transcripts). The test fails on any unexpected argv, on a command left unrun, and, in check
mode, on any mutating xen-livepatch command.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

import pytest
import yaml

from ansible_collections.noreboot.xen.plugins.modules import livepatch as livepatch_module
import livepatch_payload_forge as forge
from module_case_harness import ExpectedCommands, assert_subset, load_cases, run_module
from xen_builds import XEN_4175


HERE = os.path.dirname(os.path.abspath(__file__))

BINARIES = {'xl': '/usr/sbin/xl', 'xen-livepatch': '/usr/sbin/xen-livepatch'}
MUTATING = ('upload', 'apply', 'revert', 'replace', 'unload', 'load')

CASES = load_cases(HERE, 'livepatch_cases.yml')


def _write_payload(case, tmp_path):
    spec = dict(case.get('payload') or {})
    corrupt = spec.pop('corrupt', None)
    spec.setdefault('xen_build_id', XEN_4175)
    data = forge.forge_payload_bytes(**spec)[0]
    if corrupt == 'not_elf':
        data = b'#!/bin/sh\necho this is not a payload\n'
    elif corrupt and corrupt.startswith('truncate:'):
        data = data[:int(corrupt.split(':', 1)[1])]
    path = tmp_path / ('%s.livepatch' % case['args'].get('name', 'payload'))
    path.write_bytes(data)
    return str(path), hashlib.sha256(data).hexdigest()


def _expand(value, src):
    if isinstance(value, str):
        return value.replace('{src}', src)
    if isinstance(value, list):
        return [_expand(v, src) for v in value]
    if isinstance(value, dict):
        return dict((k, _expand(v, src)) for k, v in value.items())
    return value


def run_case(case, tmp_path):
    """Run the module for one case; return (result, argv lists run, sleeps, src)."""
    src, sha256 = _write_payload(case, tmp_path)
    args = dict(case['args'])
    if not case.get('no_src') and args.get('state', 'applied') != 'absent':
        args.setdefault('src', '{src}')
        args.setdefault('checksum', sha256)
    args = _expand(args, src)
    args['_ansible_check_mode'] = bool(case.get('check_mode'))
    args['_ansible_diff'] = bool(case.get('diff', True))

    commands = ExpectedCommands([_expand(c, src) for c in case.get('commands') or []], lambda name: BINARIES.get(name, name))
    sleeps = []

    def answer(argv, environ_update):
        step = commands.take(argv, environ_update)
        return step.get('rc', 0), step.get('stdout', ''), step.get('stderr', '')

    result = run_module(livepatch_module.main, args, answer=answer, binaries=case.get('binaries', BINARIES),
                        sleeps=sleeps)
    commands.assert_all_ran()
    return result, commands.ran, sleeps, src


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_livepatch_case(case, tmp_path):
    result, ran, sleeps, src = run_case(case, tmp_path)
    want = case['expect']
    diff_mode = bool(case.get('diff', True))
    if case.get('check_mode'):
        assert not [a for a in ran if a[0].endswith('xen-livepatch') and a[1] in MUTATING], ran
    assert bool(result.get('failed')) == bool(want.get('failed', False)), result.get('msg')
    if 'changed' in want:
        assert result.get('changed') == want['changed']
    for text in want.get('msg_contains', []):
        assert _expand(text, src) in result['msg'], result['msg']
    if 'sleeps' in want:
        assert sleeps == want['sleeps']
    assert_subset(_expand(want.get('result', {}), src), result)
    if want.get('commands_attempts') is not None:
        assert [(c['argv'][1], c['attempts']) for c in result['commands']] == [
            tuple(x) for x in want['commands_attempts']]
    if not result.get('failed') and diff_mode:
        assert result['diff']['before'] != result['diff']['after'] or not result['changed']
        for check in want.get('diff_after_contains', []):
            assert check in result['diff']['after']


def test_every_case_command_runs_against_the_real_binaries_map():
    """The case file itself: known tools only, and check-mode cases list no mutating command."""
    for case in CASES:
        for step in case.get('commands') or []:
            assert step['argv'][0] in BINARIES, case['id']
            if case.get('check_mode'):
                assert step['argv'][0] != 'xen-livepatch' or step['argv'][1] not in MUTATING, case['id']
    ids = [c['id'] for c in CASES]
    assert len(ids) == len(set(ids))


def test_argument_spec_defaults():
    spec = livepatch_module.get_argument_spec()
    assert spec['state']['default'] == 'applied'
    assert spec['retries']['default'] == 5
    assert spec['delay'] == dict(type='float', default=1.0)
    assert spec['name']['required'] is True


# ------------------------------------------------------------------------------------------
# The same module runs fed with output captured byte for byte on real Xen 4.17.5 and 4.17.7
# (tests/fixtures/transcripts/, recorded by tests/testbed/capture_transcripts.py).
TRANSCRIPTS = os.path.join(HERE, '..', '..', '..', 'fixtures', 'transcripts')
VERSIONS = ('4.17.5', '4.17.7')


def transcript(version, scenario):
    path = os.path.join(TRANSCRIPTS, 'xen-%s' % version, '%s.yml' % scenario)
    with open(path) as handle:
        return yaml.safe_load(handle)


def captured(version, scenario, argv, nth=0):
    """The nth captured step of ``scenario`` whose argv starts with ``argv``, as a command step."""
    steps = [s for s in transcript(version, scenario)['steps'] if s['argv'][:len(argv)] == list(argv)]
    assert len(steps) > nth, '%s/%s has no step %r #%d' % (version, scenario, argv, nth)
    step = steps[nth]
    return dict(argv=list(step['argv']), rc=step['rc'], stdout=step['stdout'], stderr=step['stderr'])


def with_argv(step, argv):
    step = dict(step)
    step['argv'] = argv
    return step


def real_payload(version, **kwargs):
    kwargs.setdefault('xen_build_id', transcript(version, 'xl-info')['build']['build_id'])
    return kwargs


@pytest.mark.parametrize('version', ['4.17.7'])
def test_real_output_apply_then_absent(version, tmp_path):
    hello = dict(args=dict(name='xen_hello_world'), payload=real_payload(version, metadata='LIVEPATCH_RULEZ'))
    hello['commands'] = [
        captured(version, 'xl-info', ['xl', 'info']),
        captured(version, 'list-empty', ['xen-livepatch', 'list']),
        with_argv(captured(version, 'hello-cycle', ['xen-livepatch', 'upload']),
                  ['xen-livepatch', 'upload', 'xen_hello_world', '{src}']),
        captured(version, 'hello-cycle', ['xen-livepatch', 'apply', 'xen_hello_world']),
        captured(version, 'hello-cycle', ['xen-livepatch', 'list'], nth=1),
    ]
    result = run_case(hello, tmp_path)[0]
    assert result['changed'] is True and not result.get('failed')
    assert result['payloads_after'] == [dict(name='xen_hello_world', state='APPLIED', error=None,
                                             metadata='LIVEPATCH_RULEZ')]
    assert result['hypervisor_build_id'] == result['payload']['xen_depends']

    absent = dict(args=dict(name='xen_hello_world', state='absent'), commands=[
        captured(version, 'hello-cycle', ['xen-livepatch', 'list'], nth=1),
        captured(version, 'hello-cycle', ['xen-livepatch', 'revert', 'xen_hello_world']),
        captured(version, 'hello-cycle', ['xen-livepatch', 'unload', 'xen_hello_world']),
        captured(version, 'hello-cycle', ['xen-livepatch', 'list'], nth=3),
    ])
    result = run_case(absent, tmp_path)[0]
    assert result['changed'] is True and result['payloads_after'] == []
    assert result['actions'] == ['revert', 'unload']


def test_real_output_apply_ebusy_after_upload_unloads_again(tmp_path):
    """Replays apply-busy-timeout: a real 4.17.5 apply that hit EBUSY (CPUs not quiesced in 30 ms)."""
    version = '4.17.5'
    scenario = 'apply-busy-timeout'
    apply_step = captured(version, scenario, ['xen-livepatch', 'apply', 'xen_hello_world'])
    assert apply_step['rc'] == 2, 'the capture this test replays changed: %s apply is no longer EBUSY' % scenario
    case = dict(args=dict(name='xen_hello_world', retries=0), payload=real_payload(version, metadata='LIVEPATCH_RULEZ'))
    case['commands'] = [
        captured(version, 'xl-info', ['xl', 'info']),
        captured(version, 'list-empty', ['xen-livepatch', 'list']),
        with_argv(captured(version, scenario, ['xen-livepatch', 'upload']),
                  ['xen-livepatch', 'upload', 'xen_hello_world', '{src}']),
        apply_step,
        captured(version, scenario, ['xen-livepatch', 'list'], nth=1),
        captured(version, scenario, ['xen-livepatch', 'unload', 'xen_hello_world']),
        captured(version, scenario, ['xen-livepatch', 'list'], nth=3),
    ]
    result = run_case(case, tmp_path)[0]
    assert result['failed'] and result['changed'] is False and result['rc'] == 2
    assert 'still failed with exit status 2 (retry) after 1 attempt (Error 16: Device or resource busy)' in result['msg']
    assert result['cleanup']['done'] is True and result['payloads_after'] == []
    assert 'Cleanup: unloaded xen_hello_world again' in result['msg']


@pytest.mark.parametrize('version', VERSIONS)
def test_real_output_stacked_revert_ebusy(version, tmp_path):
    case = dict(args=dict(name='xen_hello_world', state='absent', retries=0), commands=[
        captured(version, 'stacked-revert-ebusy', ['xen-livepatch', 'list']),
        captured(version, 'stacked-revert-ebusy', ['xen-livepatch', 'revert', 'xen_hello_world']),
        captured(version, 'stacked-revert-ebusy', ['xen-livepatch', 'list'], nth=1),
    ])
    result, dummy, sleeps, dummy_src = run_case(case, tmp_path)
    assert result['failed'] and result['changed'] is False and result['rc'] == 2
    assert 'another payload may depend on it' in result['msg']
    assert 'applied after it: xen_bye_world' in result['msg']
    assert 'Error 16: Device or resource busy' in result['msg']
    assert sleeps == []


@pytest.mark.parametrize('version', VERSIONS)
def test_real_output_replace(version, tmp_path):
    case = dict(args=dict(name='replace', replace=True), payload=real_payload(version), commands=[
        captured(version, 'xl-info', ['xl', 'info']),
        captured(version, 'replace', ['xen-livepatch', 'list']),
        captured(version, 'replace', ['xen-livepatch', 'replace', 'replace']),
        captured(version, 'replace', ['xen-livepatch', 'list'], nth=1),
    ])
    result = run_case(case, tmp_path)[0]
    assert result['changed'] is True and result['actions'] == ['replace'] and result['identity'] == 'name'
    assert [(r['name'], r['state']) for r in result['payloads_after']] == [
        ('replace', 'APPLIED'), ('xen_hello_world', 'CHECKED')]


@pytest.mark.parametrize('version', VERSIONS)
def test_real_output_same_payload_under_another_name_is_eexist(version, tmp_path):
    case = dict(args=dict(name='hello_again', nodeps=True), payload=real_payload(version, metadata='LIVEPATCH_RULEZ'))
    case['commands'] = [
        captured(version, 'xl-info', ['xl', 'info']),
        captured(version, 'already-in-state', ['xen-livepatch', 'list']),
        with_argv(captured(version, 'already-in-state', ['xen-livepatch', 'upload', 'hello_again']),
                  ['xen-livepatch', 'upload', 'hello_again', '{src}']),
        captured(version, 'already-in-state', ['xen-livepatch', 'list']),
    ]
    result = run_case(case, tmp_path)[0]
    assert result['failed'] and result['changed'] is False and result['rc'] == 1
    assert 'Error 17: File exists' in result['msg'] and 'same name or the same build-id' in result['msg']
    assert 'loaded now: xen_hello_world' in result['msg']
