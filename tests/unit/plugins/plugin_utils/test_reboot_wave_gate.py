# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""reboot_wave_gate: the shared failure budget, lost guests and failure domain caps."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import guest_evacuation, plan_decision
from ansible_collections.noreboot.xen.plugins.plugin_utils import reboot_wave_gate as gate

PLAN = dict(
    waves=[
        dict(number=1, kind='canary', hosts=['lp1']),
        dict(number=2, kind='livepatch', hosts=['lp2', 'lp3']),
        dict(number=3, kind='reboot', hosts=['rb-a1', 'rb-b1']),
        dict(number=4, kind='reboot', hosts=['rb-a2', 'rb-b2']),
    ],
    decisions=dict((h, dict(failure_domain=d)) for h, d in (
        ('lp1', 'a'), ('lp2', 'b'), ('lp3', 'a'), ('rb-a1', 'a'), ('rb-a2', 'a'), ('rb-b1', 'b'), ('rb-b2', 'b'))),
    domains=[dict(name='a', hosts=4, max_per_wave=2), dict(name='b', hosts=3, max_per_wave=1)],
)
LIVE_OK = {'lp1': 'patched', 'lp2': 'patched', 'lp3': 'already_patched'}
SECOND = ['rb-a2', 'rb-b2']


def test_all_well_proceeds_and_counts_every_host():
    result = gate.evaluate(PLAN, LIVE_OK, {'rb-a1': 'rebooted', 'rb-b1': 'rebooted'}, next_hosts=SECOND,
                           budget_hosts=0)
    assert result['proceed'] is True
    assert result['to_patch'] == 7
    assert result['failures'] == 0


def test_live_patch_failures_use_up_the_same_budget():
    live = dict(LIVE_OK, lp2='reverted')
    result = gate.evaluate(PLAN, live, {'rb-a1': 'failed', 'rb-b1': 'rebooted'}, next_hosts=SECOND, budget_hosts=1)
    assert result['proceed'] is False
    assert result['reason'].startswith('failure budget exceeded: 2 failed host(s) of 7 to patch, the budget allows 1')
    assert 'lp2 (reverted)' in result['reason'] and 'rb-a1 (failed)' in result['reason']


def test_a_stop_is_final():
    result = gate.evaluate(PLAN, LIVE_OK, {}, previous=dict(proceed=False, reason='canary failed: lp1'))
    assert result == dict(result, proceed=False, reason='canary failed: lp1')


def test_guests_not_restored_stops_whatever_the_budget():
    stranded = {'rb-b1': ['web1 (saved to /var/lib/noreboot-xen/saved-guests/web1.save, state saved: xl restore failed '
                          '(rc=1))']}
    result = gate.evaluate(PLAN, LIVE_OK, {'rb-a1': 'rebooted', 'rb-b1': 'guests_not_restored'}, stranded=stranded,
                           next_hosts=SECOND, budget_hosts=5)
    assert result['proceed'] is False
    assert result['reason'] == ('guests are not running again: rb-b1 (guests_not_restored: web1 (saved to '
                                '/var/lib/noreboot-xen/saved-guests/web1.save, state saved: xl restore failed (rc=1))); '
                                'no further host is rebooted until they are brought back')


def test_host_that_never_came_back_with_guests_on_its_disk_stops():
    stranded = {'rb-a1': ['db1 (saved to /srv/db1.save, state saved)']}
    result = gate.evaluate(PLAN, LIVE_OK, {'rb-a1': 'unreachable', 'rb-b1': 'rebooted'}, stranded=stranded,
                           next_hosts=SECOND, budget_hosts='unlimited')
    assert result['proceed'] is False
    assert 'rb-a1 (unreachable: db1 (saved to /srv/db1.save, state saved))' in result['reason']


@pytest.mark.parametrize('outcome', ['unreachable', 'in_progress', 'lost', 'wrong_build'])
def test_a_host_that_did_not_come_back_or_on_the_wrong_build_stops_whatever_the_budget(outcome):
    # rb-b1 had no guests: before, a host that never came back stopped the run only when it had guests
    # on its disk (or its domain's cap was reached); an unbootable fixed build took down wave after wave.
    result = gate.evaluate(PLAN, LIVE_OK, {'rb-a1': 'rebooted', 'rb-b1': outcome}, next_hosts=['rb-a2'],
                           budget_hosts=5)
    assert result['proceed'] is False
    assert result['reason'].startswith('reboot host(s) did not come back, or came back on a build that is not the '
                                       'fixed one: rb-b1 (%s)' % outcome)


def test_a_failed_reboot_canary_stops_whatever_the_budget():
    plan = dict(PLAN, waves=[dict(w, canary=True) if w['number'] == 3 else dict(w, canary=False) if w['kind'] == 'reboot'
                             else w for w in PLAN['waves']])
    result = gate.evaluate(plan, LIVE_OK, {'rb-a1': 'failed', 'rb-b1': 'rebooted'}, next_hosts=SECOND, budget_hosts=5)
    assert result['proceed'] is False
    assert result['reason'].startswith('canary failed: rb-a1 (failed)')
    # The same failure in a later, non-canary reboot wave is within the budget.
    later = gate.evaluate(plan, LIVE_OK, {'rb-a1': 'rebooted', 'rb-b1': 'rebooted', 'rb-a2': 'failed'}, next_hosts=[],
                          budget_hosts=5)
    assert later['proceed'] is True


def test_a_reboot_canary_whose_guests_are_not_back_says_so_first():
    # The canary stop is certain either way; what the operator must act on is the guest that is not
    # running again, so that comes first, with where the guest is (before, the reason said only
    # "canary failed" and the saved guest was named nowhere in it).
    plan = dict(PLAN, waves=[dict(w, canary=True) if w['number'] == 3 else w for w in PLAN['waves']])
    stranded = {'rb-a1': ['db1 (saved to /srv/db1.save, state saved: xl restore failed (rc=1))']}
    result = gate.evaluate(plan, LIVE_OK, {'rb-a1': 'guests_not_restored', 'rb-b1': 'rebooted'}, stranded=stranded,
                           next_hosts=SECOND, budget_hosts=5)
    assert result['proceed'] is False
    assert result['reason'].startswith('guests are not running again: rb-a1 (guests_not_restored: db1 (saved to '
                                       '/srv/db1.save')
    assert [f['host'] for f in result['failed_hosts']] == ['rb-a1']
    # A stop already said stays as it was said.
    again = gate.evaluate(plan, LIVE_OK, {'rb-a1': 'guests_not_restored', 'rb-b1': 'rebooted'}, stranded=stranded,
                          previous=dict(proceed=False, reason='canary failed: lp1'))
    assert again['reason'] == 'canary failed: lp1'


def test_a_host_lost_mid_wave_counts_as_down_and_failed():
    result = gate.evaluate(PLAN, LIVE_OK, {'rb-a1': 'in_progress', 'rb-b1': 'rebooted'}, next_hosts=[],
                           budget_hosts=0)
    assert result['proceed'] is False
    assert 'rb-a1 (unreachable)' in result['reason']


@pytest.mark.parametrize('outcome', ['refused', 'reboot_required', 'not_needed', None])
def test_outcomes_that_are_not_failures(outcome):
    result = gate.evaluate(PLAN, LIVE_OK, {'rb-a1': outcome}, next_hosts=SECOND, budget_hosts=0)
    assert result['proceed'] is True


def test_summary_and_table():
    results = {'rb-a1': dict(msg='rb-a1 did not come back after the reboot (timed out)',
                             stranded=['db1 (saved to /srv/db1.save, state saved)'])}
    summary = gate.summarize(PLAN, {'rb-a1': 'unreachable', 'rb-b1': 'rebooted'}, results)
    assert summary['counts'] == {'unreachable': 1, 'rebooted': 1, 'not_started': 2}
    assert [r['host'] for r in summary['hosts']] == ['rb-a1', 'rb-b1', 'rb-a2', 'rb-b2']
    table = gate.format_summary(summary)
    assert 'wave 3   rb-a1                    unreachable          rb-a1 did not come back' in table
    assert '      guest db1 (saved to /srv/db1.save, state saved)' in table


def test_where():
    assert gate.where(dict(name='g', action='migrate', peer='xen-b', state='on_peer')) == 'g (migrated to xen-b, state on_peer)'
    assert gate.where(dict(name='g', action='shutdown', config='/etc/xen/g.cfg', state='shut_down', error='x')) == \
        'g (shut down, config /etc/xen/g.cfg, state shut_down: x)'


def test_where_is_the_one_wording_of_a_guest_s_place():
    """One where() (module_utils/guest_evacuation) serves the module, the plan and the gate; the
    plan's finish_reboot reason leaves the manifest entry's error out, as it always did."""
    assert gate.where is guest_evacuation.where
    guest = dict(name='g', action='save', file='/var/lib/s/g.save', state='saved', error='restore failed')
    assert guest_evacuation.where(guest) == 'g (saved to /var/lib/s/g.save, state saved: restore failed)'
    assert guest_evacuation.where(guest, with_error=False) == 'g (saved to /var/lib/s/g.save, state saved)'
    assert guest_evacuation.where(dict(name='g', state='running')) == 'g (unknown, state running)'
    decided = plan_decision.finish_reboot_decision(dict(decision='reboot', reason='r'), dict(guests=[guest]), [])
    assert 'guest(s) g (saved to /var/lib/s/g.save, state saved) are not back' in decided['reason']
