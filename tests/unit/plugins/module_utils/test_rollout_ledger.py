# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_ledger: reading a host's ledger and lock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.noreboot.xen.plugins.module_utils import rollout_ledger as rl

LEDGER = '\n'.join(json.dumps(e) for e in [
    dict(event='intent', name='a', sha256='1', run_id='r1'),
    dict(event='outcome', name='a', sha256='1', run_id='r1', outcome='patched'),
    dict(event='intent', name='b', sha256='2', run_id='r2'),
]) + '\n{"event": "outcome", "name": "b", "sha2'  # torn by a crash


def test_torn_last_line_is_skipped():
    entries = rl.parse_ledger(LEDGER)
    assert [(e['event'], e['name']) for e in entries] == [('intent', 'a'), ('outcome', 'a'), ('intent', 'b')]


def test_open_intents_are_intents_without_a_later_outcome():
    assert [(e['name'], e['run_id']) for e in rl.open_intents(rl.parse_ledger(LEDGER))] == [('b', 'r2')]
    assert rl.last_by_name(rl.parse_ledger(LEDGER))['a']['outcome'] == 'patched'


def test_empty_ledger_and_lock():
    assert rl.parse_ledger(None) == [] and rl.open_intents([]) == []
    assert rl.parse_lock(None) is None and rl.parse_lock('  ') is None
    assert rl.parse_lock('{"run_id": "r", "pid": 1}') == dict(run_id='r', pid=1)
    assert rl.parse_lock('{"run_id": ') == dict(unreadable=True)
    assert rl.parse_lock('[1]') == dict(unreadable=True)


def test_scan_ledger_numbers_the_lines_parse_ledger_skips():
    text = LEDGER + '\n\n[1]\n"text"\n{"event": "intent", "name": "c"}\n'
    entries, skipped = rl.scan_ledger(text)
    assert skipped == [4, 6, 7]
    assert entries == rl.parse_ledger(text)
    assert len(entries) == len([line for line in text.splitlines() if line.strip()]) - 3
    assert rl.scan_ledger(None) == ([], []) and rl.scan_ledger('\n  \n') == ([], [])


def test_open_reboot_intent_sees_the_reboot_fallback_entries_written_with_name_null():
    intent = {'event': 'intent', 'kind': 'reboot_fallback', 'run_id': 'r1', 'name': None, 'sha256': None}
    outcome = {'event': 'outcome', 'kind': 'reboot_fallback', 'run_id': 'r1', 'name': None, 'outcome': 'rebooted'}
    payload = {'event': 'intent', 'name': 'p', 'sha256': '1', 'run_id': 'r0'}
    assert rl.open_reboot_intent([payload, intent]) == intent
    assert rl.open_reboot_intent([intent, outcome]) is None
    assert rl.open_reboot_intent([intent, outcome, dict(intent, run_id='r2')])['run_id'] == 'r2'
    assert rl.open_reboot_intent([payload]) is None
