# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.xen_guests, driven by the cases in xen_guests_cases.yml (exact argv per step)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.noreboot.xen.plugins.modules import xen_guests as xen_guests_module

from module_case_harness import ExpectedCommands, assert_subset, load_cases, run_module


HERE = os.path.dirname(os.path.abspath(__file__))
BINARIES = {'xl': '/usr/sbin/xl'}

CASES = load_cases(HERE, 'xen_guests_cases.yml')


def _expand(value, tmp):
    if isinstance(value, str):
        return value.replace('{tmp}', tmp)
    if isinstance(value, list):
        return [_expand(v, tmp) for v in value]
    if isinstance(value, dict):
        return dict((k, _expand(v, tmp)) for k, v in value.items())
    return value


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_xen_guests_case(case, tmp_path):
    tmp = str(tmp_path)
    case = _expand(case, tmp)
    for path in case.get('files') or []:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, 'w').close()
    if case.get('manifest'):
        os.makedirs(os.path.join(tmp, 'state'), exist_ok=True)
        with open(os.path.join(tmp, 'state', 'guests.json'), 'w') as handle:
            json.dump(case['manifest'], handle)
    args = dict(case['args'], _ansible_check_mode=bool(case.get('check_mode')))
    commands = ExpectedCommands(case.get('commands') or [], BINARIES.__getitem__)

    def answer(argv, environ_update):
        step = commands.take(argv, environ_update)
        if step.get('creates'):
            open(step['creates'], 'w').close()
        return step.get('rc', 0), step.get('stdout', ''), step.get('stderr', '')

    result = run_module(xen_guests_module.main, args, answer=answer, binaries=case.get('binaries', BINARIES))
    commands.assert_all_ran()
    want = case['expect']
    assert bool(result.get('failed')) == bool(want.get('failed', False)), result.get('msg')
    if 'changed' in want:
        assert result.get('changed') == want['changed']
    for text in want.get('msg_contains', []):
        assert text in result['msg'], result['msg']
    assert_subset(want.get('result', {}), result)
    manifest_path = os.path.join(tmp, 'state', 'guests.json')
    if want.get('no_manifest'):
        assert not os.path.exists(manifest_path)
    if want.get('manifest_on_disk'):
        with open(manifest_path) as handle:
            manifest = json.load(handle)
        assert manifest['status'] == want['manifest_on_disk']['status']
        assert [[g['name'], g['state']] for g in manifest['guests']] == want['manifest_on_disk']['guests']
    if want.get('file_kept'):
        assert os.path.exists(want['file_kept'])


def test_argument_spec():
    spec = xen_guests_module.get_argument_spec()
    assert spec['action']['choices'] == ['evacuate', 'restore', 'status', 'verify_evacuated']
    assert spec['policy']['default'] == 'save'
    assert spec['policy']['choices'] == ['migrate', 'save', 'shutdown', 'refuse']
