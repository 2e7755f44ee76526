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
