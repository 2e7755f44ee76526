# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reboot fallback filters for hosts an earlier run left unfinished (plan decision
finish_reboot), for reboot hosts lost mid wave, and the failures that end a run non-zero."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.filter.reboot_fallback import (
    finish_reboot_gate,
    finish_reboot_hosts,
    finish_reboot_lines,
    reboot_fallback_failures,
    reboot_fallback_summary,
)
from ansible_collections.noreboot.xen.plugins.filter.rollout_budget import rollout_summary
from ansible_collections.noreboot.xen.plugins.module_utils import rollout_budget as rb

PLAN = {
    'waves': [
        {'number': 1, 'kind': 'canary', 'hosts': ['c1']},
        {'number': 2, 'kind': 'reboot', 'hosts': ['r1']},
    ],
    'decisions': {
        'c1': {'decision': 'livepatch'},
        'r1': {'decision': 'reboot'},
        'f1': {'decision': 'finish_reboot', 'finish': {'guests': [{'name': 'web1'}], 'resumed_run_id': 'r0'}},
        'f2': {'decision': 'finish_reboot', 'finish': {'guests': [], 'resumed_run_id': 'r0'}},
    },
    'domains': [],
}
WEB1 = 'web1 (saved to /var/lib/noreboot-xen/saved-guests/web1.save, state saved)'


def hostvars(**facts):
    found = dict((h, {}) for h in PLAN['decisions'])
    for host, values in facts.items():
        found[host].update(values)
    return found


def finished(outcome, msg='', stranded=()):
    return dict(reboot_fallback_outcome=outcome, reboot_fallback_result=dict(msg=msg, stranded=list(stranded)))


def test_finish_hosts_come_from_the_plan_decisions():
    assert finish_reboot_hosts(PLAN) == ['f1', 'f2']


def test_every_guest_back_lets_the_waves_start():
    found = hostvars(f1=finished('rebooted', 'finished the reboot fallback of run r0'), f2=finished('not_rebooted'))
    assert finish_reboot_gate(PLAN, found, previous={}) == {}
    assert finish_reboot_lines(PLAN, found) == ['f1: rebooted finished the reboot fallback of run r0', 'f2: not_rebooted']


def test_a_guest_still_not_back_or_a_host_not_reached_stops_before_any_wave():
    found = hostvars(f1=finished('guests_not_restored', 'xl restore failed', [WEB1]))
    gate = finish_reboot_gate(PLAN, found, previous={})
    assert gate['proceed'] is False
    assert 'f1 (guests_not_restored: %s)' % WEB1 in gate['reason']
    assert 'f2 (not_reached)' in gate['reason']
    assert finish_reboot_lines(PLAN, found)[:2] == ['f1: guests_not_restored xl restore failed', '  guest ' + WEB1]
    # A stop is final.
    assert finish_reboot_gate(PLAN, hostvars(), previous=dict(proceed=False, reason='earlier'))['reason'] == 'earlier'


def test_the_summaries_list_the_finished_hosts_first():
    found = hostvars(f1=finished('rebooted', 'web1 runs again'), f2=finished('guests_not_restored', 'no', [WEB1]),
                     c1=dict(livepatch_outcome='patched'))
    summary = reboot_fallback_summary(PLAN, found)
    assert [(r['host'], r['wave'], r['outcome']) for r in summary['hosts']] == [
        ('f1', 'finish', 'rebooted'), ('f2', 'finish', 'guests_not_restored'), ('r1', 2, 'not_started')]
    assert [r['host'] for r in reboot_fallback_failures(summary)] == ['f2']
    rolling = rollout_summary(PLAN, found)
    assert rolling['waves'][0]['wave'] == 'finish' and rolling['waves'][0]['hosts'] == 2
    assert rolling['hosts']['f1']['outcome'] == rb.REBOOTED
    assert rolling['hosts']['f2']['outcome'] == rb.FAILED
    assert WEB1 in rolling['hosts']['f2']['detail']
