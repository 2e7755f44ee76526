# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_health over real Xen 4.17 output (tests/fixtures) and small edits of it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import host_health as hh
from xen_builds import XEN_4175, XEN_4177

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'fixtures')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


INFO = fixture('xen-4.17.5/xl_info.txt')
INFO_HELLO = fixture('variants/xl_info_4.17.5_hello_world_applied.txt')
GUESTS = fixture('variants/xl_list_guests.txt')
DMESG = fixture('xen-4.17.5/xl_dmesg.txt')
EMPTY = fixture('xen-4.17.5/livepatch_list_empty.txt')
APPLIED = fixture('xen-4.17.5/livepatch_list_applied.txt')
CHECKED = fixture('xen-4.17.5/livepatch_list_checked.txt')
HELLO_LINES = fixture('xen-4.17.5/xl_dmesg_livepatch_lines.txt')
ERRORS = fixture('variants/xl_dmesg_errors.txt')
WRAPPED = fixture('variants/xl_dmesg_wrapped.txt')


@pytest.fixture
def baseline():
    return hh.take_baseline(INFO, GUESTS, DMESG, EMPTY)


def by_name(checks):
    return dict((c['name'], c) for c in checks)


def outputs(info=INFO_HELLO, domains=GUESTS, dmesg=None, table=APPLIED):
    return dict(xl_info=(0, info), xl_list=(0, domains), xl_dmesg=(0, DMESG + HELLO_LINES if dmesg is None else dmesg),
                livepatch_list=(0, table))


def test_baseline_from_real_output(baseline):
    assert baseline['build_id'] == XEN_4175
    assert baseline['guests']['web-01'] == dict(id=3, state='-b----')
    assert baseline['guests']['db primary (legacy name)']['id'] == 12
    assert 'Domain-0' not in baseline['guests']
    assert baseline['dmesg_lines'] == len([line for line in DMESG.splitlines() if line.strip()])
    assert baseline['payloads'] == []
    assert 'dmesg_seen' not in hh.public_baseline(baseline)


def test_baseline_refuses_unreadable_output():
    with pytest.raises(hh.HealthError, match='xl list'):
        hh.take_baseline(INFO, 'garbage\n', DMESG, EMPTY)
    with pytest.raises(hh.HealthError, match='failed to get the handler'):
        hh.take_baseline(INFO, GUESTS, DMESG, 'failed to get the handler\n')


def test_healthy_host_after_hello_world_passes_every_check(baseline):
    checks = hh.run_checks(baseline, 'xen_hello_world', {'xen_extra': 'Hello World'}, outputs())
    assert [c['name'] for c in checks] == list(hh.CHECK_NAMES)
    assert hh.failed_checks(checks) == [], checks


def test_expected_effect_is_left_out_when_not_declared(baseline):
    checks = hh.run_checks(baseline, 'xen_hello_world', {}, outputs())
    assert 'expected_effect' not in by_name(checks)


def test_replace_world_reads_hello_again_wor_and_fails_the_effect(baseline):
    info = INFO_HELLO.replace('xen_extra              : Hello World', 'xen_extra              : Hello Again Wor')
    checks = by_name(hh.run_checks(baseline, 'xen_hello_world', {'xen_extra': 'Hello World'}, outputs(info=info)))
    assert checks['expected_effect']['ok'] is False
    assert "xl info xen_extra is 'Hello Again Wor', the advisory expects 'Hello World'" in checks['expected_effect']['detail']


def test_hypervisor_that_does_not_answer(baseline):
    check, info = hh.check_hypervisor(baseline, 1, '')
    assert check['ok'] is False and info is None
    assert 'exited with 1' in check['detail']


def test_hypervisor_with_another_build_id_fails(baseline):
    check, _info = hh.check_hypervisor(baseline, 0, fixture('xen-4.17.7/xl_info.txt'))
    assert check['ok'] is False
    assert 'build-id %s' % XEN_4177 in check['detail']


@pytest.mark.parametrize('edit, problem', [
    (lambda t: t.replace('web-01                                       3', 'web-01                                       9'),
     'web-01 changed domain id 3 -> 9 (it was restarted)'),
    (lambda t: '\n'.join(l for l in t.splitlines() if not l.startswith('web-01')) + '\n', 'web-01 (domid 3) is gone'),
    (lambda t: t.replace('-b----    5123.0', '----c-    5123.0'), 'web-01 (domid 3) is crashed (state ----c-)'),
    (lambda t: t.replace('-b----    5123.0', '-----d    5123.0'), 'web-01 (domid 3) is dying (state -----d)'),
], ids=['restarted', 'gone', 'crashed', 'dying'])
def test_guest_problems_are_named(baseline, edit, problem):
    check = hh.check_guests(baseline, 0, edit(GUESTS))
    assert check['ok'] is False
    assert problem in check['detail']


def test_guest_already_shut_down_before_is_not_blamed_on_the_patch(baseline):
    assert baseline['guests']['shutdown-guest']['state'] == '---s--'
    assert hh.check_guests(baseline, 0, GUESTS)['ok'] is True


def test_new_guests_are_fine(baseline):
    extra = GUESTS + 'new-guest                                   30  1024     1     -b----       1.0\n'
    assert hh.check_guests(baseline, 0, extra)['ok'] is True


@pytest.mark.parametrize('line, category', [
    ('(XEN) livepatch: xsa999: Timed out on semaphore in CPU quiesce phase 1/2', 'quiesce_timeout'),
    ('(XEN) livepatch: xsa998: check against hypervisor build-id failed', 'build_id'),
    ('(XEN) livepatch: xsa997: expectation of do_hello not met', 'expectations'),
    ('(XEN) Panic on CPU 1:', 'crash'),
], ids=['quiesce', 'build-id', 'expectation', 'panic'])
def test_new_error_lines_fail_dmesg_clean(baseline, line, category):
    check = hh.check_dmesg(baseline, 0, DMESG + HELLO_LINES + line + '\n')
    assert check['ok'] is False
    assert '[%s] %s' % (category, line) in check['detail']


def test_errors_already_in_the_baseline_do_not_count():
    base = hh.take_baseline(INFO, GUESTS, DMESG + ERRORS, EMPTY)
    check = hh.check_dmesg(base, 0, DMESG + ERRORS + HELLO_LINES)
    assert check['ok'] is True, check['detail']


def test_wrapped_ring_falls_back_to_lines_the_baseline_did_not_hold():
    base = hh.take_baseline(INFO, GUESTS, DMESG, EMPTY)
    # The ring wrapped past the baseline's last lines: every line the baseline did not hold is new.
    fresh = hh.new_dmesg_lines(base, [l for l in WRAPPED.splitlines() if l.strip()])
    assert fresh[0] == '(XEN) livepatch: xen_hello_world: Verifying enabled expectations for all functions'
    assert len(fresh) == 5
    assert hh.check_dmesg(base, 0, WRAPPED)['ok'] is True
    bad = WRAPPED + '(XEN) livepatch: xen_hello_world: Timed out on semaphore in IRQ quiesce phase 0/1\n'
    assert hh.check_dmesg(base, 0, bad)['ok'] is False


GUEST_LIVEPATCH_FAIL = ('(d1) livepatch: xsa999: apply failed with rc=-22\n'
                        '(d2) livepatch: xen_hello_world: check against hypervisor build-id failed\n'
                        '(d1) Panic on CPU 0: livepatch fail\n')


def test_guest_console_lines_do_not_fail_dmesg_clean(baseline):
    """Issue 13 item 8: a guest writing "livepatch ... fail" to its console cannot force a revert."""
    check = hh.check_dmesg(baseline, 0, DMESG + HELLO_LINES + GUEST_LIVEPATCH_FAIL)
    assert check['ok'] is True, check['detail']


def test_guest_lines_cannot_hide_a_hypervisor_error():
    """A guest that prints the baseline's last lines again (when they were guest lines) must not
    move the point after which lines count as new past a hypervisor error."""
    guest_tail = ''.join('(d1) boot step %d\n' % step for step in range(10))
    base = hh.take_baseline(INFO, GUESTS, DMESG + guest_tail, EMPTY)
    error = '(XEN) livepatch: xsa999: Timed out on semaphore in CPU quiesce phase 1/2\n'
    check = hh.check_dmesg(base, 0, DMESG + guest_tail + error + guest_tail)
    assert check['ok'] is False
    assert '[quiesce_timeout] ' + error.strip() in check['detail']


def test_retried_apply_noise_is_excused_but_only_as_often_as_retried(baseline):
    noise = ('(XEN) livepatch: xsa999: Timed out on semaphore in IRQ quiesce phase 0/1\n'
             '(XEN) livepatch: xsa999 finished APPLY with rc=-16\n')
    text = DMESG + noise + '(XEN) livepatch: xsa999 finished APPLY with rc=0\n'
    assert hh.check_dmesg(baseline, 0, text, name='xsa999', retried=1)['ok'] is True
    assert hh.check_dmesg(baseline, 0, text, name='xsa999', retried=0)['ok'] is False
    assert hh.check_dmesg(baseline, 0, DMESG + noise + noise, name='xsa999', retried=1)['ok'] is False
    assert hh.check_dmesg(baseline, 0, text, name='other', retried=1)['ok'] is False


@pytest.mark.parametrize('name, table, ok, detail', [
    ('xen_hello_world', APPLIED, True, 'xen_hello_world is APPLIED'),
    ('xen_hello_world', CHECKED, False, 'xen_hello_world is CHECKED, not APPLIED'),
    ('xen_hello_world', EMPTY, False, 'xen_hello_world is not listed'),
    ('xen_bye_world', fixture('variants/livepatch_list_row_error.txt'), False,
     'xen_bye_world is CHECKED, not APPLIED'),
    ('xen_hello_world', fixture('variants/livepatch_list_row_error.txt'), True, 'xen_hello_world is APPLIED'),
], ids=['applied', 'checked', 'absent', 'row-error', 'other-row-error'])
def test_payload_applied(name, table, ok, detail):
    check = hh.check_payload(name, 0, table)
    assert check['ok'] is ok
    assert detail in check['detail']


def test_payload_applied_but_carrying_an_error_fails():
    table = APPLIED.replace('| APPLIED    |', '| APPLIED (16, Device or resource busy)    |')
    check = hh.check_payload('xen_hello_world', 0, table)
    assert check['ok'] is False
    assert 'carries error 16 (Device or resource busy)' in check['detail']
