# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sliced mode's pure logic: which slice a job is (AWX's cut), the budget shares, the slice's plan, the merge."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools
import random

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import plan_reuse as pr
from ansible_collections.noreboot.xen.plugins.module_utils import sliced_rollout as sr

HOSTS = ['h%02d' % i for i in range(1, 15)]  # 14 hosts


def _plan(hosts=HOSTS, canaries=('h01', 'h02'), reboot=('h14',)):
    live = [h for h in hosts if h not in canaries and h not in reboot]
    waves = [dict(number=1, kind='canary', hosts=list(canaries)),
             dict(number=2, kind='livepatch', hosts=live[:4]),
             dict(number=3, kind='livepatch', hosts=live[4:]),
             dict(number=4, kind='reboot', hosts=list(reboot))]
    decisions = dict((h, dict(decision='reboot' if h in reboot else 'livepatch', build_id='b1', hardware_class='x',
                              failure_domain='rack-a', payloads=[], wave=None)) for h in hosts)
    for wave in waves:
        for host in wave['hosts']:
            decisions[host]['wave'] = wave['number']
    return dict(decisions=decisions, waves=waves, policy={}, advisories=[{'id': 'XSA-1', 'manifest_sha256': 'a'}],
                counts={}, matrix=[], groups=[], domains=[])


# -- AWX's cut and which slice a job is -------------------------------------------------------------------------------

def test_slices_are_awx_cut_sorted_by_name_every_nth_from_k_minus_1():
    hosts = ['b', 'a', 'e', 'c', 'd']
    assert [sr.slice_hosts(hosts, k, 2) for k in (1, 2)] == [['a', 'c', 'e'], ['b', 'd']]
    assert [sr.slice_hosts(hosts, k, 3) for k in (1, 2, 3)] == [['a', 'd'], ['b', 'e'], ['c']]


@pytest.mark.parametrize('count', [2, 3, 4, 5])
def test_each_slice_identifies_itself(count):
    for number in range(1, count + 1):
        assert sr.identify_slice(HOSTS, sr.slice_hosts(HOSTS, number, count), count) == number


def test_a_job_that_is_not_one_slice_is_refused_naming_the_difference():
    own = sr.slice_hosts(HOSTS, 2, 4) + ['h03']
    with pytest.raises(sr.SliceError) as err:
        sr.identify_slice(HOSTS, own, 4)
    text = str(err.value)
    assert 'closest is slice 2 of 4' in text and 'not in that slice: h03' in text and 'Nothing was changed' in text
    with pytest.raises(sr.SliceError, match='missing here: h06'):
        sr.identify_slice(HOSTS, ['h02', 'h10', 'h14'], 4)
    with pytest.raises(sr.SliceError, match='not in the plan at all: zz'):
        sr.identify_slice(HOSTS, sr.slice_hosts(HOSTS, 1, 4) + ['zz'], 4)
    # The whole inventory (job slicing 1, slices variable 4) is no slice of 4.
    with pytest.raises(sr.SliceError):
        sr.identify_slice(HOSTS, HOSTS, 4)


@pytest.mark.parametrize('count', [0, 1, -2, 'four', True, 2.5, None])
def test_a_slice_count_below_2_or_not_a_number_is_refused(count):
    with pytest.raises(sr.SliceError, match='noreboot_xen_rollout_slices'):
        sr.check_slice_count(count)


@pytest.mark.parametrize('count,sliced', [(None, False), ('', False), (0, False), (1, False), ('0', False),
                                          ('1', False), (2, True), ('4', True), ('four', True), (-2, True)])
def test_the_sliced_mode_is_on_for_any_value_but_off_ones(count, sliced):
    # A value that is neither off nor a valid count turns the mode on, so check_slice_count refuses it by name.
    assert sr.sliced_mode(count) is sliced
    assert (pr.sliced_problem(count, True, 'after_canary') is not None) == (sliced and count not in (2, '4'))


# -- the budget shares --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('total,weights,shares', [
    (0, [3, 3, 3, 3], [0, 0, 0, 0]),
    (1, [3, 3, 3, 3], [1, 0, 0, 0]),
    (2, [3, 3, 3, 2], [1, 1, 0, 0]),
    (4, [3, 3, 3, 3], [1, 1, 1, 1]),
    (5, [10, 0, 5, 5], [3, 0, 1, 1]),
    (3, [0, 0, 0], [0, 0, 0]),
    (None, [2, 2], [None, None]),
    (7, [1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 0]),
    (10, [250, 250, 250, 249], [3, 3, 2, 2]),
])
def test_budget_shares_table(total, weights, shares):
    assert sr.budget_shares(total, weights) == shares


def test_shares_sum_to_the_total_never_more_for_many_combinations():
    rng = random.Random(18)
    cases = [(count, total, weights) for count, total in itertools.product(range(1, 5), range(0, 12))
             for weights in itertools.product(range(0, 4), repeat=count)]
    cases += [(n, rng.randint(0, 300), [rng.randint(0, 400) for _i in range(n)])
              for n in [rng.randint(1, 16) for _i in range(3000)]]
    for _count, total, weights in cases:
        shares = sr.budget_shares(total, weights)
        assert sum(shares) <= total
        assert sum(shares) == (total if any(weights) else 0)
        assert all(s == 0 for s, w in zip(shares, weights) if w == 0)
        # Proportional within one host: no share is off by a whole host from its quota.
        whole = sum(weights)
        if whole:
            assert all(abs(s - total * w / float(whole)) < 1 for s, w in zip(shares, weights))


def test_shares_are_the_same_whatever_slice_computes_them():
    # Every slice computes the shares from the plan alone: the same input gives the same split.
    weights = [3, 3, 2, 2]
    assert len(set(tuple(sr.budget_shares(3, list(weights))) for _i in range(5))) == 1


# -- the slice's plan -----------------------------------------------------------------------------------------------------

def test_a_slice_plan_is_its_hosts_of_the_remaining_waves_in_plan_order():
    plan = _plan()
    own = sr.slice_hosts(HOSTS, 2, 4)  # h02 h06 h10 h14
    cut = pr.restrict_to_slice(plan, own, 4)
    assert cut['slice']['number'] == 2 and cut['slice']['count'] == 4
    # The canary h02 is the canary job's; the slice has h06 (wave 2), h10 (wave 3), h14 (reboot wave 4).
    assert [(w['number'], w['hosts']) for w in cut['waves']] == [(2, ['h06']), (3, ['h10']), (4, ['h14'])]
    assert sorted(cut['decisions']) == ['h06', 'h10', 'h14']
    assert cut['run_hosts_to_patch'] == {'live': 13, 'reboot': 1}
    assert cut['plan_fingerprint'] == pr.plan_fingerprint(plan)
    # Every slice's hosts to patch after the canaries, for the shares: 12 hosts over 4 slices.
    per = cut['slice']['hosts_to_patch']
    assert sum(c['live'] for c in per) == 11 and sum(c['reboot'] for c in per) == 1


def test_reuse_plan_sliced_compares_only_the_slice_hosts_and_refuses_without_plan_or_phase():
    plan = _plan()
    own = sr.slice_hosts(HOSTS, 3, 4)
    fresh = dict(plan, decisions=dict((h, dict(plan['decisions'][h])) for h in own))
    cut = pr.reuse_plan(plan, fresh, 'after_canary', slices=4)
    assert cut['slice']['number'] == 3 and set(cut['decisions']) <= set(own)
    fresh['decisions'][own[-1]]['build_id'] = 'b2'
    with pytest.raises(pr.PlanReuseError, match='build-id b1 in the plan, b2 now'):
        pr.reuse_plan(plan, fresh, 'after_canary', slices=4)
    with pytest.raises(pr.PlanReuseError, match='noreboot_xen_rollout_phase after_canary'):
        pr.reuse_plan(plan, fresh, 'canary', slices=4)
    assert 'noreboot_xen_rollout_plan (not given)' in pr.sliced_problem(4, False, 'after_canary')
    assert pr.sliced_problem(1, False, 'all') is None and pr.sliced_problem(None, False, 'all') is None


# -- the merge ------------------------------------------------------------------------------------------------------------

def _summary(hosts, number=None, count=4, failures=0, limit=1, stopped=False, fingerprint='f', phase='after_canary'):
    rows = [dict(wave='wave_2', kind='livepatch', hosts=len(hosts), patched=len(hosts) - failures, failed=failures,
                 elapsed_s=5.0 + (number or 0))]
    return dict(run_id='run-%s' % number, plan_fingerprint=fingerprint, phase=phase,
                slice=dict(number=number, count=count) if number else None,
                hosts=dict((h, dict(outcome='patched', wave='wave_2')) for h in hosts),
                totals=dict(hosts=len(hosts), patched=len(hosts) - failures, failed=failures), waves=rows,
                budget=dict(limit=limit, failures=failures, to_patch=len(hosts)), stopped=stopped,
                stop_reason='failure budget exceeded' if stopped else None, elapsed_s=5.0 + (number or 0),
                budget_split=dict(run_limit=3, spent=0, shares=[1, 1, 1, 0]), needs_reboot=[], state_unknown=[],
                held=[], needs_attention=[])


def test_merge_accounts_for_every_host_and_names_the_stopped_slice():
    slices = dict((sr.slice_summary_key(n, 4),
                   _summary(sr.slice_hosts(HOSTS[2:], n, 4), n, failures=int(n == 2), stopped=n == 2))
                  for n in range(1, 5))
    merged = sr.merge_slice_summaries(slices, 4, earlier=_summary(HOSTS[:2], phase='canary'), plan_hosts=HOSTS)
    assert merged['problems'] == []
    assert sorted(merged['hosts']) == HOSTS and merged['totals']['hosts'] == 14
    assert merged['stopped'] and merged['stop_reason'].startswith('slice 2 of 4: failure budget exceeded')
    assert [s['stopped'] for s in merged['slices']] == [False, True, False, False]
    assert merged['budget']['failures'] == 1 and merged['budget']['limit'] == 3
    assert merged['waves'][0]['hosts'] == 14 and merged['waves'][0]['elapsed_s'] == 9.0


def test_merge_flags_missing_duplicate_and_foreign_slices():
    slices = dict((sr.slice_summary_key(n, 4), _summary(sr.slice_hosts(HOSTS, n, 4), n)) for n in (1, 2, 3))
    slices[sr.slice_summary_key(3, 4)]['hosts']['h01'] = dict(outcome='patched')
    slices['noreboot_xen_rollout_slice_summary_1_of_3'] = _summary(['x'], 1, count=3)
    slices[sr.slice_summary_key(2, 4)]['plan_fingerprint'] = 'other'
    merged = sr.merge_slice_summaries(slices, 4, plan_hosts=HOSTS)
    text = ' | '.join(merged['problems'])
    assert 'no summary of slice(s) 4 of 4' in text
    assert 'a slice of 3, this run has 4 slices' in text
    assert 'h01 is in the summaries of slice 1 of 4 and slice 3 of 4' in text
    assert 'different plans' in text
    assert 'host(s) of the plan in no summary' in text
    assert merged['stopped'] and 'problem(s) merging the slices' in merged['stop_reason']


def test_a_slice_with_reboot_hosts_and_reboots_on_is_refused():
    # n slices at once would keep a failure domain's cap per slice only: up to n times the cap down at once.
    problem = sr.sliced_reboot_problem(['r-02', 'r-01'], 4, True)
    assert problem.startswith('a sliced rollout (noreboot_xen_rollout_slices=4) does not reboot hosts')
    assert 'up to 4 times the cap of one domain down' in problem
    assert 'This slice has 2 host(s) that need a reboot: r-01, r-02.' in problem
    assert 'noreboot_xen_reboot_ok=false' in problem and problem.endswith('Nothing was changed.')
    assert sr.sliced_reboot_problem(['r-01'], 4, False) is None      # reported as pending_reboot
    assert sr.sliced_reboot_problem([], 4, True) is None             # nothing to reboot in this slice
    assert sr.sliced_reboot_problem(['r-01'], 1, True) is None       # not sliced: one plan, one cap
    assert sr.sliced_reboot_problem(['r-01'], None, True) is None


def test_the_sliced_reboot_filter_reads_the_playbook_values():
    from ansible_collections.noreboot.xen.plugins.filter.sliced_rollout import rollout_sliced_reboot_problem
    assert rollout_sliced_reboot_problem(['r-01'], 4, 'true').startswith('a sliced rollout')
    assert rollout_sliced_reboot_problem(['r-01'], 4, False) == ''
    assert rollout_sliced_reboot_problem(['r-01'], '1', True) == ''
