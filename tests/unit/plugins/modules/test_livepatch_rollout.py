# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.livepatch_rollout, driven by the cases in livepatch_rollout_cases.yml.

Each case gives the module args, the ledger and lock the host holds first, and the exact
commands the module must run, in order, with the rc/stdout/stderr each returns (real Xen 4.17
output from tests/fixtures). The test fails on any unexpected argv and on a command left unrun.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import json
import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import local_patch_fact
from ansible_collections.noreboot.xen.plugins.modules import livepatch_rollout as rollout_module

from module_case_harness import ExpectedCommands, assert_subset, load_cases, run_module


def assert_subset_strict(expected, actual, where='result'):
    assert_subset(expected, actual, where, lists_equal=True)


HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', '..', '..', 'fixtures')
import livepatch_payload_forge as forge  # noqa: E402  pylint: disable=wrong-import-position
from xen_builds import XEN_4175  # noqa: E402  pylint: disable=wrong-import-position

BINARIES = {'xl': '/usr/sbin/xl', 'xen-livepatch': '/usr/sbin/xen-livepatch'}

CASES = load_cases(HERE, 'livepatch_rollout_cases.yml')


def _fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def _expand(value, env):
    if isinstance(value, str):
        for key, text in env.items():
            value = value.replace('{%s}' % key, text)
        return value
    if isinstance(value, list):
        return [_expand(v, env) for v in value]
    if isinstance(value, dict):
        return dict((k, _expand(v, env)) for k, v in value.items())
    return value


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_livepatch_rollout_case(case, tmp_path, monkeypatch):
    data, meta = forge.forge_payload_bytes(xen_build_id=XEN_4175)
    state_dir = tmp_path / 'state'
    staging = state_dir / 'staging' / 'run-2'
    staging.mkdir(parents=True)
    src = staging / 'xsa999.livepatch'
    src.write_bytes(data)
    env = {'src': str(src), 'sha256': meta['sha256'], 'upload': str(state_dir / 'upload' / 'xsa999.livepatch'),
           'dmesg+retry': _fixture('xen-4.17.5/xl_dmesg.txt')
           + '(XEN) livepatch: xsa999: Timed out on semaphore in IRQ quiesce phase 0/1\n'
           + '(XEN) livepatch: xsa999 finished APPLY with rc=-16\n'
           + '(XEN) livepatch: xsa999: Applying 1 functions\n(XEN) livepatch: xsa999 finished APPLY with rc=0\n',
           'fact': str(tmp_path / 'facts.d' / 'noreboot_xen.fact')}
    ledger_path = state_dir / 'ledger.jsonl'
    if case.get('ledger'):
        ledger_path.write_text(''.join(json.dumps(_expand(e, env)) + '\n' for e in case['ledger']))
    if case.get('lock'):
        lock = dict(case['lock'])
        if lock.get('pid') == 'self':  # a live process: this test's own
            lock['pid'] = os.getpid()
        (state_dir / 'rollout.lock').write_text(json.dumps(lock))

    args = dict(src=str(src), checksum=meta['sha256'], run_id='run-2', state_dir=str(state_dir))
    args.update(_expand(case['args'], env))
    # send: the payload's bytes in the module's arguments, as the action plugin sends them from payload_src
    # (no staged file on the host); content-corrupt: bytes that are not the checksum's.
    if case.get('send'):
        del args['src']
        src.unlink()
        sent = data + b'x' if case['send'] == 'content-corrupt' else data
        args['content'] = base64.b64encode(sent).decode('ascii')
    args['_ansible_check_mode'] = bool(case.get('check_mode'))
    if case.get('fact_disk_full'):  # the fact's file system is full when the fact is flushed (the ledger's is not)
        real_write_atomic = local_patch_fact.write_atomic

        def no_space(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def write_on_full_disk(*a, **kw):
            with monkeypatch.context() as during:
                during.setattr(os, 'fsync', no_space)
                return real_write_atomic(*a, **kw)
        monkeypatch.setattr(local_patch_fact, 'write_atomic', write_on_full_disk)
    commands = ExpectedCommands([_expand(c, env) for c in case.get('commands') or []], BINARIES.__getitem__)
    sleeps = []

    def answer(argv, environ_update):
        step = commands.take(argv, environ_update)
        stdout = _fixture(step['stdout_file']) if 'stdout_file' in step else step.get('stdout', '')
        if step.get('replace'):
            stdout = stdout.replace(*step['replace'])
        return step.get('rc', 0), stdout, step.get('stderr', '')

    result = run_module(rollout_module.main, args, answer=answer, binaries=BINARIES, sleeps=sleeps)
    want = _expand(case['expect'], env)

    commands.assert_all_ran()
    assert bool(result.get('failed')) == bool(want.get('failed', False)), result.get('msg')
    if 'changed' in want:
        assert result.get('changed') == want['changed']
    for text in want.get('msg_contains', []):
        assert text in result['msg'], result['msg']
    if 'sleeps' in want:
        assert sleeps == want['sleeps']
    assert_subset_strict(want.get('result', {}), result)
    if 'ledger' in want:
        entries = [json.loads(line) for line in ledger_path.read_text().splitlines()] if ledger_path.exists() else []
        assert [[e['event'], e.get('outcome')] for e in entries] == want['ledger']
    if 'fact' in want:
        written = json.loads((tmp_path / 'facts.d' / 'noreboot_xen.fact').read_text()) if want['fact'] else None
        assert (written or {}).get('last_run') == want['fact'], written
    if case.get('fact_disk_full'):
        assert not os.path.exists(env['fact']) and os.listdir(os.path.dirname(env['fact'])) == [], 'no partial fact'
    if case.get('send'):
        assert not (state_dir / 'upload' / 'xsa999.livepatch').exists(), 'the private copy must be removed'
        assert not (staging).exists() or not os.listdir(str(staging)), 'nothing is staged from content'
    if not case.get('lock'):
        assert not (state_dir / 'rollout.lock').exists(), 'the lock must be released'
    else:
        assert (state_dir / 'rollout.lock').exists(), "another run's lock must stay"


def test_argument_spec():
    spec = rollout_module.get_argument_spec()
    assert [k for k, v in spec.items() if v.get('required')] == ['name', 'checksum', 'run_id']
    assert spec['content']['no_log'] is True
    assert spec['local_fact']['default'] is False
    assert spec['revert_on_failure']['default'] is True
    assert spec['remove_src']['default'] is False
    assert spec['state_dir']['default'] == '/var/lib/noreboot-xen'
