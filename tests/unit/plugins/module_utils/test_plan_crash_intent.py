# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A payload that may have killed a host (its intent is open, it is no longer loaded, the host
booted since) is not applied to it again: the host and its group are held."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.noreboot.xen.plugins.module_utils import fleet_plan_builder as fpb
from ansible_collections.noreboot.xen.plugins.module_utils import plan_decision as pd

from rollout_fake_host import FakeHost  # noqa: E402  pylint: disable=wrong-import-position
from test_rollout_transaction import ledger, staged, transaction  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from test_plan_decision import advisory, facts  # noqa: E402  pylint: disable=wrong-import-position

CRASH_RUN = '20260101T000000Z-dead'


def crashed(boot_now='boot-2', payloads=(), intent_boot='boot-1'):
    xen = facts(payloads=payloads)
    xen['livepatch'].update(ledger_error=None, last_outcomes=[], boot_id=boot_now, open_intents=[
        dict(name='xsa999_4175', sha256='a' * 64, run_id=CRASH_RUN, time='2026-01-01T00:00:05Z', boot_id=intent_boot)])
    return xen


def test_the_intent_records_the_boot_it_was_written_in(staged):  # noqa: F811
    transaction(FakeHost(), staged).run()
    intents = [e for e in ledger(staged) if e['event'] == 'intent']
    assert intents and intents[0]['boot_id'] == 'boot-a'


def test_open_intent_payload_gone_host_rebooted_is_held_as_a_possible_crash():
    result = pd.decide_host('h1', dict(xen=crashed()), [advisory()])
    assert result['decision'] == 'held', result['reason']
    assert 'may have killed the host' in result['reason'] and CRASH_RUN in result['reason']
    assert 'noreboot_xen_retry_failed=[xsa999_4175]' in result['reason']


def test_its_group_is_held_and_only_the_release_applies_it_again():
    hosts = {'h1': dict(xen=crashed()), 'h2': dict(xen=facts())}
    plan = fpb.build_plan([advisory()], hosts)
    assert [plan['decisions'][h]['decision'] for h in ('h1', 'h2')] == ['held', 'held']
    assert plan['waves'] == []
    released = fpb.build_plan([advisory()], {'h1': dict(xen=crashed()), 'h2': dict(xen=facts())},
                              retry_failed=['xsa999_4175'])
    assert released['decisions']['h1']['decision'] == 'livepatch'
    assert released['waves'][0]['kind'] == 'canary' and released['waves'][0]['hosts'] == ['h1']


def test_same_boot_or_payload_applied_is_not_a_crash():
    # Same boot: the run died before its upload; nothing crashed.
    assert pd.decide_host('h1', dict(xen=crashed(boot_now='boot-1')), [advisory()])['decision'] == 'livepatch'
    # Payload APPLIED with its intent open: the interrupted run's resume, unchanged.
    applied = crashed(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}])
    result = pd.decide_host('h1', dict(xen=applied), [advisory()])
    assert result['decision'] == 'livepatch' and 'applied by interrupted run' in result['reason']
