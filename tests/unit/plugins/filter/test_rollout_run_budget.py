# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failure budget of a job that runs a phase (or a slice) of an approved plan is the whole run's.

Issue 18 leftover: the remaining-waves job (phase after_canary) counted a fresh budget over its own hosts,
not the whole run's less what the canary job spent. Failed on 5a3ebc8 (no filter rollout_run_budget: the
after_canary job's gate took budget_percent of its own 36 hosts, limit 3, where the whole run of 40 allows 4).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter import rollout_waves as rw
from ansible_collections.noreboot.xen.plugins.filter import sliced_rollout as sf
from ansible_collections.noreboot.xen.plugins.module_utils import plan_reuse as pr
from ansible_collections.noreboot.xen.plugins.module_utils import sliced_rollout as sr

HOSTS = ['h%02d' % i for i in range(1, 41)]


def _plan():
    waves = [dict(number=1, kind='canary', hosts=HOSTS[:4]), dict(number=2, kind='livepatch', hosts=HOSTS[4:20]),
             dict(number=3, kind='livepatch', hosts=HOSTS[20:])]
    decisions = dict((h, dict(decision='livepatch', build_id='b', hardware_class='x', failure_domain='d', payloads=[],
                              wave=1 if h in HOSTS[:4] else 2)) for h in HOSTS)
    return dict(decisions=decisions, waves=waves, policy={}, advisories=[], counts={}, matrix=[], groups=[], domains=[])


def _canary_summary(failures=0, plan=None):
    return dict(phase='canary', plan_fingerprint=pr.plan_fingerprint(plan or _plan()), run_id='canary-run',
                budget=dict(failures=failures, limit=4, to_patch=4))


def _budget(plan, hosts=None, percent=None, earlier=None):
    """The filter as detect_and_plan.yml calls it, with the run's budget fact."""
    return sf.rollout_run_budget(plan, {'hosts': hosts, 'percent': percent, 'earlier': earlier}, False)


def _gate_after(plan, fixed, failed):
    hostvars = dict((h, {}) for h in plan['decisions'])
    for host in failed:
        hostvars[host]['livepatch_outcome'] = 'failed'
    hostvars['localhost'] = dict(noreboot_xen_plan=plan, noreboot_xen_gate={}, noreboot_xen_wave_times={},
                                 noreboot_xen_failure_budget={'hosts': None, 'percent': 10, 'fixed': fixed})
    return rw.rollout_wave_gate(hostvars, 'live')


def test_remaining_waves_budget_counts_from_the_whole_run():
    after = pr.restrict_to_phase(_plan(), 'after_canary')
    fixed = _budget(after, percent=10, earlier=_canary_summary())
    # 10 % of the whole run's 40 hosts, not of the 36 left: 4.
    assert fixed['limit'] == 4 and fixed['run_limit'] == 4 and fixed['spent'] == 0
    gate = _gate_after(after, fixed, HOSTS[4:8])
    assert gate['proceed'] and gate['limit'] == 4
    assert not _gate_after(after, fixed, HOSTS[4:9])['proceed']


def test_what_the_canary_job_spent_is_taken_off():
    after = pr.restrict_to_phase(_plan(), 'after_canary')
    fixed = _budget(after, hosts=3, earlier=_canary_summary(failures=1))
    assert (fixed['run_limit'], fixed['spent'], fixed['limit']) == (3, 1, 2)
    assert 'the canary job (run canary-run) spent 1' in fixed['source']
    # Without the canary summary: 0 spent, and said.
    unknown = _budget(after, hosts=3)
    assert unknown['limit'] == 3 and 'no canary summary given' in unknown['source']


def test_a_summary_of_another_plan_or_phase_is_refused():
    after = pr.restrict_to_phase(_plan(), 'after_canary')
    other = _plan()
    other['policy'] = {'wave_sizes': [2]}
    with pytest.raises(AnsibleFilterError, match='summary of the canary job of the same approved plan'):
        _budget(after, hosts=3, earlier=_canary_summary(plan=other))
    with pytest.raises(AnsibleFilterError, match='phase canary'):
        _budget(after, hosts=3, earlier=dict(_canary_summary(), phase='after_canary'))


def test_a_whole_run_in_one_job_keeps_its_own_budget():
    assert _budget(dict(_plan(), phase='all'), hosts=3) is None
    assert _budget(_plan(), hosts=3) is None


def test_unlimited_stays_unlimited_in_every_slice():
    plan = _plan()
    cut = pr.restrict_to_slice(plan, sr.slice_hosts(HOSTS, 1, 4), 4)
    fixed = _budget(cut, hosts='unlimited')
    assert fixed['limit'] is None and fixed['shares'] == [None] * 4


def test_slices_share_the_remaining_budget_and_never_exceed_it():
    plan = _plan()
    earlier = _canary_summary(failures=1)
    budgets = [_budget(pr.restrict_to_slice(plan, sr.slice_hosts(HOSTS, n, 4), 4), hosts=4, earlier=earlier)
               for n in range(1, 5)]
    shares = [b['shares'] for b in budgets]
    # Every slice computes the same shares, and takes its own.
    assert all(s == shares[0] for s in shares)
    assert [b['limit'] for b in budgets] == shares[0]
    assert sum(shares[0]) == 3 == budgets[0]['remaining']
    assert 'slice 2 of 4: share' in budgets[1]['source']


def test_a_slice_stops_on_its_share_only():
    plan = _plan()
    cuts = [pr.restrict_to_slice(plan, sr.slice_hosts(HOSTS, n, 4), 4) for n in range(1, 5)]
    budgets = [_budget(c, hosts=2) for c in cuts]
    assert [b['limit'] for b in budgets] == [1, 1, 0, 0]
    # One failed host in slice 3 (share 0) stops it; the same in slice 1 (share 1) does not.
    failed3 = list(cuts[2]['decisions'])[:1]
    failed1 = list(cuts[0]['decisions'])[:1]
    assert not _gate_after(cuts[2], budgets[2], failed3)['proceed']
    assert _gate_after(cuts[0], budgets[0], failed1)['proceed']
    summary = dict(slice=budgets[2]['slice'])
    assert sf.rollout_summary_artifact(summary) == {'noreboot_xen_rollout_slice_summary_3_of_4': summary}
    assert sf.rollout_summary_artifact({'slice': None}) == {'noreboot_xen_rollout_summary': {'slice': None}}


def test_percent_with_reboots_takes_the_strictest_kind():
    from ansible_collections.noreboot.xen.plugins.plugin_utils.rollout_budget import whole_run_limit
    assert whole_run_limit(100, 10, budget_percent=10)['limit'] == 1
    assert whole_run_limit(100, 0, budget_percent=10)['limit'] == 10
    assert whole_run_limit(100, 10, budget_hosts=5)['limit'] == 5
    assert whole_run_limit(100, 10)['limit'] == 0
