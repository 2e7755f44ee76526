# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.xen_facts run as Ansible runs it, over the cases of xen_facts_cases.yml.

Each case says which tools and files the host has, the exact argv of every command the module
must run (in order) with the rc/stdout/stderr to answer, and the facts expected.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

import pytest
import yaml

from ansible.module_utils.common import warnings as module_warnings

from ansible_collections.noreboot.xen.plugins.modules import livepatch_rollout, xen_facts
from module_case_harness import run_module_printed


HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', '..', '..', 'fixtures')

LIVEPATCH_KEYS = ('supported', 'reason', 'reason_kind', 'payloads', 'open_intents', 'ledger_error', 'last_outcomes',
                  'boot_id', 'rollout_lock')

with open(os.path.join(HERE, 'xen_facts_cases.yml')) as _handle:
    CASES = yaml.safe_load(_handle)['cases']


def text_of(spec):
    """A case value: plain text, or ``{fixture: path}`` read from tests/fixtures."""
    if isinstance(spec, dict):
        with open(os.path.join(FIXTURES, spec['fixture'])) as handle:
            return handle.read()
    return spec or ''


def assert_subset(expected, actual, where='xen'):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), '%s: expected a dict, got %r' % (where, actual)
        for key, value in expected.items():
            assert key in actual, '%s.%s missing' % (where, key)
            assert_subset(value, actual[key], '%s.%s' % (where, key))
    elif isinstance(expected, list):
        assert isinstance(actual, list), '%s: expected a list, got %r' % (where, actual)
        assert len(actual) == len(expected), '%s: %d items, expected %d: %r' % (where, len(actual), len(expected), actual)
        for index, (item, got) in enumerate(zip(expected, actual)):
            assert_subset(item, got, '%s[%d]' % (where, index))
    else:
        assert actual == expected, '%s: %r != %r' % (where, actual, expected)
        assert type(actual) is type(expected), '%s: %r is a %s, expected a %s' % (
            where, actual, type(actual).__name__, type(expected).__name__)


class FakeHost(object):
    """Answers get_bin_path, run_command and file reads from one case; records the argv run."""

    def __init__(self, case):
        self.tools = case.get('tools') or {}
        self.files = dict((path, text_of(spec)) for path, spec in (case.get('files') or {}).items())
        self.unreadable = list(case.get('unreadable') or [])
        self.expected = list(case.get('commands') or [])
        self.ran = []
        self.files_read = []
        self.rollout_lock = case.get('rollout_lock')
        self.locks_read = []

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        return self.tools.get(arg)

    def run_command(self, args, check_rc=False, environ_update=None, **kwargs):
        assert isinstance(args, list), 'argv must be a list, got %r' % (args,)
        assert not check_rc
        assert (environ_update or {}).get('LC_ALL') == 'C', 'commands must run with LC_ALL=C'
        self.ran.append(list(args))
        assert self.expected, 'unexpected command %r (ran so far: %r)' % (args, self.ran[:-1])
        command = self.expected.pop(0)
        assert args == command['argv'], 'command %d: ran %r, expected %r' % (len(self.ran), args, command['argv'])
        return command.get('rc', 0), text_of(command.get('stdout')), text_of(command.get('stderr'))

    def read_file(self, path):
        self.files_read.append(path)
        return self.files.get(path)

    def read_lock(self, state_dir):
        """Like host_lock.inspect_lock: what the case says the host's lock is."""
        self.locks_read.append(state_dir)
        return self.rollout_lock

    def read_ledger(self, path):
        """Like read_ledger_text: None when missing, IOError for a path the case lists as unreadable."""
        self.files_read.append(path)
        if path in self.unreadable:
            raise IOError(errno.EACCES, 'Permission denied', path)
        return self.files.get(path)


def run_module(case, monkeypatch, capsys):
    host = FakeHost(case)
    monkeypatch.setattr(xen_facts, 'read_text_file', host.read_file)
    monkeypatch.setattr(xen_facts, 'read_ledger_text', host.read_ledger)
    monkeypatch.setattr(xen_facts, 'inspect_lock', host.read_lock)
    monkeypatch.setattr(module_warnings, '_global_warnings', type(module_warnings._global_warnings)())  # dict on 2.19+, list before
    if hasattr(module_warnings, '_internal'):
        # Once any controller code is imported (other tests do), ansible-core >= 2.19 sends
        # warnings to the controller's display instead of the module result: run as a module.
        monkeypatch.setattr(module_warnings._internal, 'is_controller', False)
    code, result = run_module_printed(xen_facts.main, case.get('args') or {}, capsys,
                                      answer=lambda argv, environ_update: host.run_command(argv, environ_update=environ_update),
                                      binaries=host.get_bin_path)
    return host, code, result


@pytest.mark.parametrize('case', CASES, ids=[case['id'] for case in CASES])
def test_xen_facts_case(case, monkeypatch, capsys):
    host, code, result = run_module(case, monkeypatch, capsys)

    assert host.ran == [command['argv'] for command in case.get('commands') or []]
    assert host.expected == [], 'commands not run: %r' % host.expected

    if 'failed' in case:
        assert code == 1 and result.get('failed') is True
        assert case['failed'] in result['msg']
        return

    assert code == 0, result
    assert result['changed'] is False
    assert 'failed' not in result, result
    assert list(result['ansible_facts']) == ['xen']
    facts = result['ansible_facts']['xen']
    assert sorted(facts) == sorted(['present', 'reason', 'hypervisor', 'livepatch', 'effective_version',
                                    'hardware', 'domains', 'evacuation'])
    assert_subset(case['facts'], facts)
    if facts['livepatch'] is not None:
        assert sorted(facts['livepatch']) == sorted(LIVEPATCH_KEYS)
    assert result['commands'] == [dict(argv=command['argv'], rc=command.get('rc', 0))
                                  for command in case.get('commands') or []]

    # ansible-core >= 2.19 returns warnings as structured events, older ones as strings
    warnings = [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings') or []]
    expected_warnings = case.get('warnings') or []
    assert len(warnings) == len(expected_warnings), warnings
    for expected, warning in zip(expected_warnings, warnings):
        assert expected in warning


def test_argument_spec_is_small_and_defaults_to_all_sections():
    spec = xen_facts.get_argument_spec()
    assert list(spec) == ['gather', 'state_dir']
    assert spec['gather']['default'] == ['hypervisor', 'livepatch', 'hardware', 'domains', 'evacuation']
    assert spec['gather']['choices'] == spec['gather']['default']
    # The same directory noreboot.xen.livepatch_rollout writes its ledger to.
    assert spec['state_dir'] == dict(type='path', default='/var/lib/noreboot-xen')
    assert spec['state_dir']['default'] == livepatch_rollout.get_argument_spec()['state_dir']['default']


def test_documented_options_match_argument_spec():
    doc = yaml.safe_load(xen_facts.DOCUMENTATION)
    # state_dir is documented by the doc fragment noreboot.xen.state_dir (tests/unit/plugins/doc_fragments).
    assert 'noreboot.xen.state_dir' in doc['extends_documentation_fragment']
    assert sorted(doc['options']) + ['state_dir'] == sorted(xen_facts.get_argument_spec())
    assert doc['options']['gather']['default'] == xen_facts.get_argument_spec()['gather']['default']
    returned = yaml.safe_load(xen_facts.RETURN)['ansible_facts']['contains']['xen']['contains']
    assert sorted(returned) == sorted(['present', 'reason', 'hypervisor', 'livepatch', 'effective_version',
                                       'hardware', 'domains', 'evacuation'])
    assert sorted(returned['evacuation']['contains']) == sorted(
        ['unfinished', 'manifest_path', 'status', 'run_id', 'updated', 'guests', 'reboot_intent', 'error', 'ledger_error'])
    assert sorted(returned['livepatch']['contains']) == sorted(LIVEPATCH_KEYS)
    assert sorted(returned['livepatch']['contains']['open_intents']['contains']) == ['boot_id', 'name', 'run_id', 'sha256',
                                                                                     'time']


def test_files_read_are_only_the_documented_ones(monkeypatch, capsys):
    host, code, dummy = run_module(CASES[0], monkeypatch, capsys)
    assert code == 0
    assert host.files_read == ['/proc/cpuinfo'] + ['/sys/class/dmi/id/%s' % f for f in (
        'sys_vendor', 'product_name', 'bios_vendor', 'bios_version', 'bios_date')] + [
        '/proc/xen/capabilities', '/var/lib/noreboot-xen/ledger.jsonl', '/proc/sys/kernel/random/boot_id',
        '/var/lib/noreboot-xen/guests.json']


def test_the_ledger_is_read_from_state_dir_and_not_without_livepatch(monkeypatch, capsys):
    case = dict(CASES[0], args=dict(state_dir='/srv/nrx'))
    host, code, result = run_module(case, monkeypatch, capsys)
    assert code == 0 and host.files_read[-3:] == ['/srv/nrx/ledger.jsonl', '/proc/sys/kernel/random/boot_id', '/srv/nrx/guests.json']
    assert result['ansible_facts']['xen']['livepatch']['open_intents'] == []
    case = dict(CASES[0], args=dict(gather=['hardware', 'domains']),
                commands=[c for c in CASES[0]['commands'] if c['argv'][0] != '/usr/sbin/xen-livepatch'])
    host, code, result = run_module(case, monkeypatch, capsys)
    assert code == 0 and not [path for path in host.files_read if path.endswith('ledger.jsonl')]
    assert result['ansible_facts']['xen']['livepatch'] is None


def test_the_hosts_rollout_lock_is_reported_from_state_dir(monkeypatch, capsys):
    lock = dict(path='/srv/nrx/rollout.lock', held=True, run_id='run-a', pid=4711, time='2026-12-01T00:00:00Z')
    case = dict(CASES[0], args=dict(state_dir='/srv/nrx'), rollout_lock=lock)
    host, code, result = run_module(case, monkeypatch, capsys)
    assert code == 0 and host.locks_read == ['/srv/nrx']
    assert result['ansible_facts']['xen']['livepatch']['rollout_lock'] == lock
    returned = yaml.safe_load(xen_facts.RETURN)['ansible_facts']['contains']['xen']['contains']['livepatch']['contains']
    assert sorted(returned['rollout_lock']['contains']) == sorted(lock)
