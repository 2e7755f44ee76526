# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_verdict and its filters: why a run failed, in words, and nothing when it did not."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter.run_verdict import reboot_fallback_verdict, rollout_verdict
from ansible_collections.noreboot.xen.plugins.plugin_utils import run_verdict as rv

CLEAN = dict(stopped=False, stop_reason=None, held=[], needs_attention=[], hosts={}, reboot_fallback=None)


def test_a_clean_rolling_run_has_no_verdict():
    assert rv.rolling_verdict(CLEAN) == '' and rollout_verdict(CLEAN) == ''


def test_every_reason_of_a_rolling_run_is_said_in_order():
    summary = dict(CLEAN, stopped=True, stop_reason='canary failed: c1', held=['h1', 'h2'], needs_attention=['a1'])
    failures = [dict(host='r1', outcome='guests_not_restored', msg='web not running'), dict(host='r2', outcome='lost')]
    assert rv.rolling_verdict(summary, failures) == (
        'The rolling live patch stopped: canary failed: c1. '
        'Held (a payload failed there or on its group before; release with noreboot_xen_retry_failed): h1, h2. '
        'Needs attention (payload left APPLIED after failed checks): a1. '
        'Reboot hosts not accounted for: r1 - guests_not_restored - web not running | r2 - lost - None')


def test_rolling_verdict_filter_reads_the_reboot_rows_of_the_summary():
    reboot = dict(hosts=[dict(host='r1', wave='wave_3', outcome='rebooted', msg='ok'),
                         dict(host='r2', wave='wave_3', outcome='failed', msg='boot target wrong')])
    assert rollout_verdict(dict(CLEAN, reboot_fallback=reboot)) == 'Reboot hosts not accounted for: r2 - failed - boot target wrong'


def test_reboot_fallback_verdict():
    assert rv.reboot_fallback_verdict({'proceed': True}, []) == ''
    assert rv.reboot_fallback_verdict({'proceed': False, 'reason': 'guest db not running'}, []) == (
        'The reboot fallback stopped: guest db not running.')
    summary = dict(hosts=[dict(host='r1', wave='wave_1', outcome='refused', msg='policy refuse')])
    assert reboot_fallback_verdict(summary, {'proceed': True}) == (
        'The reboot fallback did not succeed everywhere. r1 - refused - policy refuse')
    with pytest.raises(AnsibleFilterError, match='expected the output of noreboot.xen.reboot_fallback_summary'):
        reboot_fallback_verdict([], {})


PLAN = dict(decisions={
    'ok-1': dict(decision='livepatch', reason='payload p1 fits'),
    'gone-2': dict(decision='unreachable', reason='detection: host unreachable (ssh: connect timed out)'),
    'odd-1': dict(decision='undecided', reason='detection failed: xl info failed'),
    'nx-1': dict(decision='not_xen', reason='no Xen'),
})
UNEXAMINED = ('Not examined, so not fixed and their state unknown (2 host(s) unreachable or undecided at detection): '
              'gone-2 - unreachable - detection: host unreachable (ssh: connect timed out) | '
              'odd-1 - undecided - detection failed: xl info failed. Fix: bring them back (or repair detection) and '
              'run again - a rerun leaves the hosts already patched alone; or accept them in writing with '
              'noreboot_xen_unreachable_ok=true.')


def test_hosts_not_examined_at_detection_fail_a_rolling_run_unless_accepted():
    # A run whose hosts were all (or partly) unreachable at detection did nothing to them: it must not end rc 0.
    assert rollout_verdict(CLEAN, plan=PLAN) == UNEXAMINED
    assert rollout_verdict(CLEAN, plan=PLAN, unreachable_ok=True) == ''
    assert rollout_verdict(CLEAN, plan=dict(decisions={'ok-1': PLAN['decisions']['ok-1']})) == ''
    everyone_gone = dict(decisions=dict(('h%d' % i, dict(decision='unreachable', reason='down')) for i in range(3)))
    assert rollout_verdict(CLEAN, plan=everyone_gone).startswith(
        'Not examined, so not fixed and their state unknown (3 host(s) unreachable or undecided at detection): '
        'h0 - unreachable - down | h1 - unreachable - down | h2 - unreachable - down.')
    summary = dict(CLEAN, stopped=True, stop_reason='canary failed: c1')
    assert rollout_verdict(summary, plan=PLAN) == 'The rolling live patch stopped: canary failed: c1. ' + UNEXAMINED
    with pytest.raises(AnsibleFilterError, match='plan: expected the plan of noreboot.xen.fleet_plan'):
        rollout_verdict(CLEAN, plan=['gone-2'])


def test_hosts_not_examined_at_detection_fail_a_reboot_fallback_run_unless_accepted():
    summary = dict(hosts=[])
    assert reboot_fallback_verdict(summary, {'proceed': True}, plan=PLAN) == UNEXAMINED
    assert reboot_fallback_verdict(summary, {'proceed': True}, plan=PLAN, unreachable_ok=True) == ''
    assert reboot_fallback_verdict(summary, {'proceed': False, 'reason': 'r'}, plan=PLAN) == (
        'The reboot fallback stopped: r. ' + UNEXAMINED)
