# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xen_facts_collector: the ledger's last outcome per payload and the boot ids the plan needs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import ledger_history, read_ledger_text


def test_last_outcome_per_payload_survives_a_later_intent_and_intents_carry_their_boot(tmp_path):
    (tmp_path / 'ledger.jsonl').write_bytes(
        b'{"event": "intent", "name": "a", "sha256": "1", "run_id": "r1", "time": "t1", "boot_id": "B1"}\n'
        b'{"event": "outcome", "name": "a", "sha256": "1", "run_id": "r1", "time": "t2", "outcome": "reverted",'
        b' "failed_checks": ["expected_effect"]}\n'
        b'{"event": "intent", "name": "a", "sha256": "1", "run_id": "r2", "time": "t3", "boot_id": "B2"}\n'
        b'{"event": "outcome", "name": "b", "sha256": "2", "run_id": "r2", "time": "t4", "outcome": "patched"}\n')
    intents, outcomes, error = ledger_history(str(tmp_path), read_ledger_text)
    assert error is None
    assert intents == [dict(name='a', sha256='1', run_id='r2', time='t3', boot_id='B2')]
    assert outcomes == [dict(name='a', sha256='1', run_id='r1', time='t2', outcome='reverted',
                             failed_checks=['expected_effect']),
                        dict(name='b', sha256='2', run_id='r2', time='t4', outcome='patched', failed_checks=None)]


def test_no_ledger_no_history(tmp_path):
    assert ledger_history(str(tmp_path), read_ledger_text) == ([], [], None)
