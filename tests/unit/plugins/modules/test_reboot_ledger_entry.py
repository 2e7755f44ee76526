# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.reboot_ledger_entry: the reboot fallback's ledger entries, written by the ledger
writer of livepatch_rollout and read back by rollout_ledger and xen_facts as before."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest
import yaml

from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.noreboot.xen.plugins.module_utils import reboot_ledger_entry as rle
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_ledger import (
    last_by_name,
    open_intents,
    open_reboot_intent,
    parse_ledger,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import evacuation_facts
from ansible_collections.noreboot.xen.plugins.modules import reboot_ledger_entry as module
from xen_builds import XEN_4175 as OLD, XEN_4177 as FIXED

RUN = '20261201T101500Z-1a2b'


class Done(Exception):
    pass


def run(args, check_mode=False):
    def leave(self, **kwargs):
        raise Done(kwargs)

    def fail(self, msg, **kwargs):
        raise Done(dict(kwargs, msg=msg, failed=True))

    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, 'exit_json', leave), \
            mock.patch.object(basic.AnsibleModule, 'fail_json', fail), \
            mock.patch.object(basic.AnsibleModule, 'run_command', side_effect=AssertionError('runs no command')):
        with pytest.raises(Done) as outcome:
            module.main()
    return outcome.value.args[0]


def lines(state_dir):
    with open(os.path.join(str(state_dir), 'ledger.jsonl')) as handle:
        return handle.read().splitlines()


INTENT = dict(event='intent', run_id=RUN, advisories=['XSA-1', 'XSA-2'], hypervisor_build_id=OLD,
              fixed_build_ids=[FIXED], guests=['db', 'web'])
OUTCOME = dict(event='outcome', run_id=RUN, outcome='rebooted', advisories=['XSA-1', 'XSA-2'],
               hypervisor_build_id=FIXED, previous_build_id=OLD, rebooted=True, guests=['db', 'web'])


def test_intent_then_outcome_are_the_entries_readers_expect(tmp_path):
    state_dir = tmp_path / 'state'
    first = run(dict(INTENT, state_dir=str(state_dir)))
    assert first['changed'] is True and first['path'] == str(state_dir / 'ledger.jsonl')
    assert stat.S_IMODE(os.stat(str(state_dir)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(first['path']).st_mode) == 0o600
    entries = parse_ledger('\n'.join(lines(state_dir)))
    assert open_reboot_intent(entries) == entries[0]
    intent = dict(entries[0])
    assert len(intent.pop('time')) == len('2026-12-01T10:15:00Z')
    assert intent == dict(event='intent', kind='reboot_fallback', run_id=RUN, name=None, sha256=None,
                          advisory='XSA-1,XSA-2', hypervisor_build_id=OLD, fixed_build_ids=[FIXED],
                          guests=['db', 'web'])
    # xen_facts reports the open intent with the keys it always did.
    facts = evacuation_facts(str(state_dir), lambda path: None, (entries, None))
    assert facts['unfinished'] is True
    assert facts['reboot_intent'] == dict(run_id=RUN, time=entries[0]['time'], advisory='XSA-1,XSA-2',
                                          hypervisor_build_id=OLD, fixed_build_ids=[FIXED], guests=['db', 'web'])

    second = run(dict(OUTCOME, state_dir=str(state_dir)))
    assert second['changed'] is True
    entries = parse_ledger('\n'.join(lines(state_dir)))
    assert len(entries) == 2 and open_reboot_intent(entries) is None
    outcome = dict(entries[1])
    del outcome['time']
    assert outcome == dict(event='outcome', kind='reboot_fallback', run_id=RUN, name=None, sha256=None,
                           outcome='rebooted', advisory='XSA-1,XSA-2', hypervisor_build_id=FIXED,
                           previous_build_id=OLD, rebooted=True, guests=['db', 'web'], msg='')
    assert second['entry'] == entries[1]
    # One JSON object a line with sorted keys: the bytes of livepatch_rollout's entries.
    assert lines(state_dir)[1] == json.dumps(entries[1], sort_keys=True)
    # Reboot entries name no payload: the live patch readers leave them out.
    assert last_by_name(entries) == {} and open_intents(entries) == []


def test_a_repeated_entry_is_not_written_again(tmp_path):
    args = dict(OUTCOME, state_dir=str(tmp_path))
    assert run(args)['changed'] is True
    again = run(args)
    assert again['changed'] is False
    assert len(lines(tmp_path)) == 1 and again['entry'] == json.loads(lines(tmp_path)[0])
    # Another run's same outcome, or this run's outcome after its intent, is new.
    assert run(dict(args, run_id='20261202T000000Z-ffff'))['changed'] is True
    assert run(dict(args, outcome='failed'))['changed'] is True
    assert len(lines(tmp_path)) == 3


def test_check_mode_writes_nothing_and_creates_no_directory(tmp_path):
    state_dir = tmp_path / 'state'
    result = run(dict(INTENT, state_dir=str(state_dir)), check_mode=True)
    assert result['changed'] is True and result['entry']['event'] == 'intent'
    assert result['diff']['after'] == json.dumps(result['entry'], sort_keys=True) + '\n'
    assert not state_dir.exists()


def test_finish_outcome_records_the_run_it_closes(tmp_path):
    run(dict(INTENT, state_dir=str(tmp_path)))
    result = run(dict(event='outcome', run_id='20261202T000000Z-ffff', resumed_run_id=RUN, outcome='rebooted',
                      hypervisor_build_id=FIXED, guests=['db', 'web'], state_dir=str(tmp_path)))
    assert result['entry']['resumed_run_id'] == RUN and result['entry']['advisory'] is None
    entries = parse_ledger('\n'.join(lines(tmp_path)))
    assert [(e['event'], e.get('outcome')) for e in entries] == [('intent', None), ('outcome', 'rebooted')]
    assert open_reboot_intent(entries) is None


def test_a_line_torn_by_a_crash_is_closed_before_the_entry(tmp_path):
    with open(str(tmp_path / 'ledger.jsonl'), 'w') as handle:
        handle.write('{"event": "intent", "na')
    run(dict(OUTCOME, state_dir=str(tmp_path)))
    assert lines(tmp_path)[0] == '{"event": "intent", "na'
    assert json.loads(lines(tmp_path)[1])['outcome'] == 'rebooted'


@pytest.mark.parametrize('args,problem', [
    (dict(event='outcome', run_id=RUN), 'an outcome entry needs the outcome'),
    (dict(event='intent', run_id=RUN, outcome='rebooted'), 'an intent entry has no outcome'),
    (dict(event='intent', run_id='../x'), 'is not allowed'),
], ids=['outcome-without-outcome', 'intent-with-outcome', 'bad-run-id'])
def test_bad_input_fails_before_anything_is_written(tmp_path, args, problem):
    result = run(dict(args, state_dir=str(tmp_path)))
    assert result['failed'] is True and problem in result['msg'] and 'nothing was recorded' in result['msg']
    assert os.listdir(str(tmp_path)) == []


def test_a_ledger_that_cannot_be_written_fails_with_the_fix(tmp_path):
    (tmp_path / 'ledger.jsonl').mkdir()
    result = run(dict(OUTCOME, state_dir=str(tmp_path)))
    assert result['failed'] is True
    assert 'cannot write the ledger %s' % (tmp_path / 'ledger.jsonl') in result['msg']
    assert 'then run again' in result['msg']


def test_entry_builder_keeps_intent_and_outcome_keys_apart():
    intent = rle.reboot_entry('intent', RUN, 't', fixed_build_ids=[FIXED], rebooted=True, msg='ignored')
    assert 'rebooted' not in intent and 'msg' not in intent and 'outcome' not in intent
    outcome = rle.reboot_entry('outcome', RUN, 't', outcome='failed', fixed_build_ids=[FIXED])
    assert 'fixed_build_ids' not in outcome and 'resumed_run_id' not in outcome
    with pytest.raises(ValueError, match='event must be one of intent, outcome'):
        rle.reboot_entry('begin', RUN, 't')


def test_only_the_last_reboot_entry_counts_as_already_recorded():
    intent = rle.reboot_entry('intent', RUN, 't1')
    outcome = rle.reboot_entry('outcome', RUN, 't2', outcome='rebooted')
    livepatch = dict(event='outcome', name='p', sha256='x', run_id=RUN, outcome='patched')
    assert rle.already_recorded([intent, livepatch], dict(intent, time='t9')) is True
    assert rle.already_recorded([intent, outcome], dict(intent, time='t9')) is False
    assert rle.already_recorded([], intent) is False


REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..')
FILE_WRITERS = ('lineinfile', 'blockinfile', 'copy', 'template', 'file', 'shell', 'command')


def _tasks(path):
    with open(path) as handle:
        stack = list(yaml.safe_load(handle) or [])
    while stack:
        task = stack.pop()
        if not isinstance(task, dict):
            continue
        for key in ('block', 'rescue', 'always', 'tasks', 'pre_tasks', 'post_tasks', 'handlers'):
            stack.extend(task.get(key) or [])
        yield task


def test_the_roles_and_playbooks_write_the_ledger_only_through_the_one_writer():
    writers = []
    for top in ('roles', 'playbooks'):
        for root, _dirs, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if not name.endswith('.yml'):
                    continue
                for task in _tasks(os.path.join(root, name)):
                    for key, args in task.items():
                        if key.split('.')[-1] in FILE_WRITERS and 'ledger' in json.dumps(args):
                            writers.append((name, task.get('name'), key))
                        if key == 'noreboot.xen.reboot_ledger_entry':
                            writers.append((name, task.get('name'), key))
    assert writers and all(key == 'noreboot.xen.reboot_ledger_entry' for _f, _n, key in writers), writers
    assert sorted(f for f, _n, _k in writers) == ['finish.yml', 'reboot.yml', 'report.yml']
