# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A payload that failed on a host keeps counting: the plan holds the host and its build/hardware
group until the operator releases the payload (noreboot_xen_retry_failed), and then the host goes
first, as a canary again."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils import fleet_plan_builder as fpb
from ansible_collections.noreboot.xen.plugins.module_utils import plan_decision as pd
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb

from test_plan_decision import XEN_4175, advisory, facts

FAILED_RUN = '20260101T000000Z-beef'


def failed_outcome(outcome='reverted', sha256='a' * 64, name='xsa999_4175'):
    return dict(name=name, sha256=sha256, outcome=outcome, run_id=FAILED_RUN, time='2026-01-01T00:01:00Z',
                failed_checks=['expected_effect'])


def with_history(xen, last_outcomes=(), open_intents=(), boot_id=None):
    xen['livepatch'].update(last_outcomes=[dict(o) for o in last_outcomes], open_intents=[dict(i) for i in open_intents],
                            ledger_error=None, boot_id=boot_id)
    return xen


def test_a_host_that_reverted_the_payload_is_held_with_the_run_that_saw_it_fail():
    result = pd.decide_host('h1', dict(xen=with_history(facts(), [failed_outcome()])), [advisory()])
    assert result['decision'] == 'held', result['reason']
    assert FAILED_RUN in result['reason'] and 'reverted' in result['reason']
    assert 'noreboot_xen_retry_failed' in result['reason']
    assert result['payloads'] == []


def test_a_failure_of_another_file_of_that_name_does_not_hold():
    result = pd.decide_host('h1', dict(xen=with_history(facts(), [failed_outcome(sha256='f' * 64)])), [advisory()])
    assert result['decision'] == 'livepatch'


def _fleet(failed_host='h3'):
    hosts = {}
    for name in ('h1', 'h2', 'h3'):
        outcomes = [failed_outcome()] if name == failed_host else []
        hosts[name] = dict(xen=with_history(facts(), outcomes))
    hosts['x1'] = dict(xen=with_history(facts(hardware=('amd', 25, 1))))
    return hosts


def test_the_failed_hosts_whole_group_is_held_and_no_wave_takes_it():
    plan = fpb.build_plan([advisory()], _fleet())
    decisions = plan['decisions']
    assert [decisions[h]['decision'] for h in ('h1', 'h2', 'h3', 'x1')] == ['held', 'held', 'held', 'livepatch']
    assert 'h3' in decisions['h1']['reason'] and FAILED_RUN in decisions['h1']['reason']
    in_waves = [h for w in plan['waves'] for h in w['hosts']]
    assert in_waves == ['x1']
    assert plan['counts']['held'] == 3


def test_released_payload_goes_first_on_the_host_that_failed_as_a_canary():
    plan = fpb.build_plan([advisory()], _fleet(), retry_failed=['xsa999_4175'])
    decisions = plan['decisions']
    assert [decisions[h]['decision'] for h in ('h1', 'h2', 'h3')] == ['livepatch'] * 3
    canaries = [h for w in plan['waves'] if w['kind'] == 'canary' for h in w['hosts']]
    assert 'h3' in canaries and 'h1' not in canaries
    assert decisions['h3']['retry_failed'] is True
    assert decisions['h1'].get('retry_failed') is False


def test_a_reverted_canary_rerun_by_an_old_plan_still_counts_as_a_failure():
    gate = rb.evaluate_gate(['h00', 'h01'], {'h00': 'previously_reverted'}, canaries=['h00'], budget_hosts=0)
    assert gate['proceed'] is False
    assert 'h00 (previously_reverted' in gate['reason']


def test_the_summary_lists_held_hosts_and_counts_them_as_needing_attention():
    summary = rb.summarize({'h1': dict(decision='held', wave=None), 'x1': dict(decision='livepatch', wave='wave_1')},
                           {'x1': 'patched'}, details={'h1': 'held: reverted by run R'})
    assert summary['hosts']['h1']['outcome'] == 'held'
    assert summary['held'] == ['h1']
    assert summary['attention'] is True
    assert 'held (1): h1' in rb.format_summary(summary)
    assert XEN_4175


def test_the_summary_detail_of_a_held_or_attention_host_is_the_plans_reason():
    """A held / needs_attention host runs no module this run: its summary detail is the plan's reason
    (the cause and the run that saw it fail, how to release it), never empty."""
    held = 'held: payload xsa999_4175 ended reverted on this host in run R (failed checks: dmesg_clean)'
    attention = 'payload xsa999_4175 is APPLIED, but the ledger says run R ended it failed_applied'
    summary = rb.summarize({'h1': dict(decision='held', wave=None, reason=held),
                            'h2': dict(decision='needs_attention', wave=None, reason=attention),
                            'n1': dict(decision='not_affected', wave=None, reason='not affected: 4.18'),
                            'x1': dict(decision='livepatch', wave='wave_1', reason='apply payload xsa999_4175')},
                           {'x1': 'patched'})
    assert summary['hosts']['h1']['detail'] == held
    assert summary['hosts']['h2']['detail'] == attention
    # Hosts with nothing to look at keep no detail; a wave host's detail comes from its own result.
    assert summary['hosts']['n1']['detail'] is None and summary['hosts']['x1']['detail'] is None
    # A detail the run recorded for the host wins over the plan's reason.
    again = rb.summarize({'h1': dict(decision='held', wave=None, reason=held)}, {}, details={'h1': 'seen now'})
    assert again['hosts']['h1']['detail'] == 'seen now'


def test_a_group_where_the_payload_works_on_its_canary_holds_only_the_failed_host():
    hosts = _fleet(failed_host='h3')
    hosts['h1'] = dict(xen=with_history(facts(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}])))
    plan = fpb.build_plan([advisory()], hosts)
    decisions = plan['decisions']
    assert [decisions[h]['decision'] for h in ('h1', 'h2', 'h3')] == ['already_patched', 'livepatch', 'held']
