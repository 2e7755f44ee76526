# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_budget: the whole-run failure budget, the canary rule and the summary."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb

HOSTS = ['h%02d' % i for i in range(20)]


@pytest.mark.parametrize('total, hosts, percent, limit', [
    (20, None, None, 0),
    (20, 2, None, 2),
    (20, None, 10, 2),
    (20, None, 12.5, 2),
    (20, 5, 10, 2),
    (20, 1, 50, 1),
    (20, 0, None, 0),
    (3, None, 10, 0),
    (20, '', '', 0),
    (20, 'unlimited', 'unlimited', None),
], ids=['none', 'hosts', 'percent', 'percent-rounds-down', 'both-smaller-percent', 'both-smaller-hosts',
        'zero', 'small-fleet', 'empty-strings', 'unlimited'])
def test_failure_limit(total, hosts, percent, limit):
    assert rb.failure_limit(total, hosts, percent) == limit


@pytest.mark.parametrize('hosts, percent', [(-1, None), (None, 101), (None, -5)])
def test_failure_limit_refuses_nonsense(hosts, percent):
    with pytest.raises(ValueError, match='noreboot_xen_failure_budget'):
        rb.failure_limit(10, hosts, percent)


def test_budget_is_exceeded_only_above_the_limit():
    outcomes = {'h01': 'patched', 'h02': 'reverted', 'h03': 'failed'}
    at_limit = rb.evaluate_gate(HOSTS, outcomes, canaries=['h00'], budget_hosts=2)
    assert at_limit['proceed'] is True and at_limit['failures'] == 2
    outcomes['h04'] = 'unreachable'
    over = rb.evaluate_gate(HOSTS, outcomes, canaries=['h00'], budget_hosts=2)
    assert over['proceed'] is False
    assert over['reason'].startswith('failure budget exceeded: 3 failed host(s) of 20 to patch, the budget allows 2')
    assert 'h04 (unreachable)' in over['reason']


def test_in_progress_after_the_wave_counts_as_unreachable():
    gate = rb.evaluate_gate(HOSTS, {'h05': 'in_progress'}, budget_hosts=0)
    assert gate['proceed'] is False
    assert gate['failed_hosts'] == [dict(host='h05', outcome='unreachable', detail=None)]


def test_hosts_not_started_and_successes_do_not_count():
    gate = rb.evaluate_gate(HOSTS, {'h01': 'patched', 'h02': 'already_patched', 'h03': None}, budget_hosts=0)
    assert gate['proceed'] is True and gate['failures'] == 0


def test_any_failed_canary_stops_whatever_the_budget():
    gate = rb.evaluate_gate(HOSTS, {'h00': 'reverted'}, canaries=['h00', 'h10'], budget_hosts=10,
                            details={'h00': 'expected_effect'})
    assert gate['proceed'] is False
    assert gate['reason'].startswith('canary failed: h00 (reverted: expected_effect)')


def test_a_stop_is_final_and_keeps_its_first_reason():
    first = rb.evaluate_gate(HOSTS, {'h00': 'failed'}, canaries=['h00'])
    later = rb.evaluate_gate(HOSTS, {'h00': 'failed'}, canaries=[], previous=first)
    assert later['proceed'] is False and later['reason'] == first['reason']


def test_an_unlimited_budget_means_only_canaries_stop_the_run():
    outcomes = dict((h, 'failed') for h in HOSTS[1:])
    assert rb.evaluate_gate(HOSTS, outcomes, canaries=['h00'], budget_hosts='unlimited')['proceed'] is True


def test_a_host_reverted_in_an_earlier_run_still_counts_and_is_held():
    gate = rb.evaluate_gate(HOSTS, {'h00': 'previously_reverted'}, canaries=['h00'], budget_hosts=10)
    assert gate['proceed'] is False
    summary = rb.summarize({'h00': dict(decision='livepatch', wave='wave_1')}, {'h00': 'previously_reverted'})
    assert summary['hosts']['h00']['outcome'] == 'held'
    assert summary['held'] == ['h00']


def test_hosts_outside_the_plan_do_not_count():
    gate = rb.evaluate_gate(['h01'], {'h01': 'patched', 'other': 'failed'}, budget_hosts=0)
    assert gate['proceed'] is True


def test_summary_rows_per_wave_and_totals():
    plan_hosts = {
        'c1': dict(decision='livepatch', wave='wave_1'),
        'a1': dict(decision='livepatch', wave='wave_2'),
        'a2': dict(decision='livepatch', wave='wave_2'),
        'a3': dict(decision='livepatch', wave='wave_2'),
        'b1': dict(decision='livepatch', wave='wave_3'),
        'r1': dict(decision='reboot', wave=None),
        'p1': dict(decision='already_patched', wave=None),
        'u1': dict(decision='unreachable', wave=None),
        'n1': dict(decision='not_xen', wave=None),
    }
    outcomes = {'c1': 'patched', 'a1': 'reverted', 'a2': 'in_progress', 'a3': 'already_patched'}
    gate = rb.evaluate_gate([h for h, e in plan_hosts.items() if e['wave']], outcomes, canaries=['c1'],
                            budget_hosts=1)
    summary = rb.summarize(plan_hosts, outcomes,
                           waves=[dict(label='wave_1', kind='canary'), dict(label='wave_2', kind='livepatch'),
                                  dict(label='wave_3', kind='livepatch')],
                           wave_times={'wave_1': {'start': 10, 'end': 22.25}, 'wave_2': {'start': 23}},
                           gate=gate, run_id='r')
    rows = dict((row['wave'], row) for row in summary['waves'])
    assert [row['wave'] for row in summary['waves']] == ['wave_1', 'wave_2', 'wave_3', 'not_in_a_wave']
    assert rows['wave_1']['patched'] == 1 and rows['wave_1']['elapsed_s'] == 12.2
    assert rows['wave_2']['hosts'] == 3
    assert (rows['wave_2']['reverted'], rows['wave_2']['unreachable'], rows['wave_2']['already_patched']) == (1, 1, 1)
    assert rows['wave_2']['elapsed_s'] is None
    assert rows['wave_3']['not_started'] == 1
    assert rows['not_in_a_wave']['pending_reboot'] == 1
    assert rows['not_in_a_wave']['already_patched'] == 1
    assert rows['not_in_a_wave']['unreachable'] == 1
    assert rows['not_in_a_wave']['not_xen'] == 1
    assert summary['totals']['hosts'] == 9
    assert summary['stopped'] is True
    assert summary['stop_reason'].startswith('failure budget exceeded: 2 failed host(s) of 5 to patch')
    assert summary['hosts']['a2']['outcome'] == 'unreachable'
    assert summary['needs_reboot'] == ['a1', 'r1']
    assert summary['state_unknown'] == ['a2', 'b1', 'u1']
    table = rb.format_summary(summary)
    assert 'STOPPED: failure budget exceeded' in table
    assert table.splitlines()[0].split()[:3] == ['wave', 'kind', 'hosts']
