# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_budget: an unattended run halts by default; "no limit" is written out by the operator."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb

HOSTS = ['h%02d' % i for i in range(20)]


def test_without_budget_variables_the_first_failure_beyond_the_canaries_stops_the_run():
    outcomes = {'h00': 'patched', 'h01': 'failed', 'h02': 'reverted', 'h03': 'unreachable'}
    gate = rb.evaluate_gate(HOSTS, outcomes, canaries=['h00'])
    assert gate['proceed'] is False
    assert gate['limit'] == 0
    assert 'default' in gate['reason'] and 'noreboot_xen_failure_budget_hosts' in gate['reason']


def test_the_default_limit_is_zero_and_unlimited_must_be_written_out():
    assert rb.failure_limit(20) == 0
    assert rb.failure_limit(20, '', '') == 0
    assert rb.failure_limit(20, 'unlimited') is None
    assert rb.failure_limit(20, None, 'unlimited') is None
    assert rb.failure_limit(20, 'unlimited', 10) == 2


def test_unlimited_lets_failures_through_but_not_a_failed_canary():
    outcomes = dict((h, 'failed') for h in HOSTS[1:])
    assert rb.evaluate_gate(HOSTS, outcomes, canaries=['h00'], budget_hosts='unlimited')['proceed'] is True


@pytest.mark.parametrize('hosts, percent', [('lots', None), (None, 'most'), ('2.5', None)])
def test_a_budget_that_is_neither_a_number_nor_unlimited_is_refused(hosts, percent):
    with pytest.raises(ValueError, match='unlimited'):
        rb.failure_limit(10, hosts, percent)


def test_the_summary_prints_the_budget_in_force_and_where_it_came_from():
    gate = rb.evaluate_gate(HOSTS, {'h01': 'failed'}, canaries=['h00'])
    table = rb.format_summary(rb.summarize(dict((h, dict(decision='livepatch', wave='wave_2')) for h in HOSTS),
                                           {'h01': 'failed'}, gate=gate))
    assert 'budget 0 failed host(s) (default' in table
    explicit = rb.evaluate_gate(HOSTS, {}, canaries=['h00'], budget_hosts='unlimited')
    table = rb.format_summary(rb.summarize({}, {}, gate=explicit))
    assert 'budget unlimited (noreboot_xen_failure_budget_hosts=unlimited)' in table
