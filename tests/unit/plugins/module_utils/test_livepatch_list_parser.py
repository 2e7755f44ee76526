# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""livepatch_list_parser over real `xen-livepatch list` output of Xen 4.17.5 / 4.17.7 and variants."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_list_parser import (
    LIST_FAILED,
    NO_CONTROL_INTERFACE,
    UNPARSED_OUTPUT,
    UNSUPPORTED_HYPERVISOR,
    LivepatchListError,
    find_tool_error,
    format_livepatch_table,
    parse_livepatch_list,
    payload_index,
)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'fixtures')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


def row(name, state, metadata, error=None):
    return dict(name=name, state=state, error=error, metadata=metadata)


TABLE_CASES = [
    pytest.param('xen-4.17.5/livepatch_list_empty.txt', [], id='4.17.5-nothing-to-list'),
    pytest.param('xen-4.17.7/livepatch_list_empty.txt', [], id='4.17.7-nothing-to-list'),
    pytest.param('xen-4.17.5/livepatch_list_applied.txt',
                 [row('xen_hello_world', 'APPLIED', 'LIVEPATCH_RULEZ')], id='4.17.5-applied'),
    pytest.param('xen-4.17.5/livepatch_list_checked.txt',
                 [row('xen_hello_world', 'CHECKED', 'LIVEPATCH_RULEZ')], id='4.17.5-reverted-checked'),
    pytest.param('xen-4.17.5/livepatch_list_two_applied.txt',
                 [row('xen_hello_world', 'APPLIED', 'LIVEPATCH_RULEZ'), row('xen_bye_world', 'APPLIED', '')],
                 id='4.17.5-two-applied-empty-metadata'),
    pytest.param('xen-4.17.5/livepatch_list_replace.txt',
                 [row('replace', 'APPLIED', ''), row('xen_hello_world', 'CHECKED', 'LIVEPATCH_RULEZ')],
                 id='4.17.5-after-replace'),
    pytest.param('xen-4.17.7/livepatch_list_two_applied.txt',
                 [row('xen_hello_world', 'APPLIED', 'LIVEPATCH_RULEZ'), row('xen_bye_world', 'APPLIED', '')],
                 id='4.17.7-two-applied'),
    # Debian 13's 4.20.4: the same table.
    pytest.param('xen-4.20.4/livepatch_list_empty.txt', [], id='4.20.4-nothing-to-list'),
    pytest.param('xen-4.20.4/livepatch_list_applied.txt',
                 [row('xen_hello_world', 'APPLIED', 'LIVEPATCH_RULEZ')], id='4.20.4-applied'),
    pytest.param('xen-4.20.4/livepatch_list_two_applied.txt',
                 [row('xen_hello_world', 'APPLIED', 'LIVEPATCH_RULEZ'), row('xen_bye_world', 'APPLIED', '')],
                 id='4.20.4-two-applied'),
    pytest.param('xen-4.20.4/livepatch_list_replace.txt',
                 [row('replace', 'APPLIED', ''), row('xen_hello_world', 'CHECKED', 'LIVEPATCH_RULEZ')],
                 id='4.20.4-after-replace'),
    # A pre-revert hook that returned 1 (tests/testbed/xen-4.20-differences.md, 6): a negative errno.
    pytest.param('xen-4.20.4/livepatch_list_row_error.txt',
                 [row('xen_prepost_hooks', 'APPLIED', '', error=dict(errno=-1, text='Unknown error -1'))],
                 id='4.20.4-row-error-negative-errno'),
    pytest.param('variants/livepatch_list_no_metadata_column.txt',
                 [row('xen_hello_world', 'APPLIED', None), row('xen_bye_world', 'CHECKED', None)],
                 id='variant-before-4.14-no-metadata'),
    pytest.param('variants/livepatch_list_row_error.txt',
                 [row('xen_hello_world', 'APPLIED', 'LIVEPATCH_RULEZ'),
                  row('xen_bye_world', 'CHECKED', '', error=dict(errno=16, text='Device or resource busy'))],
                 id='variant-row-error-ebusy'),
]


@pytest.mark.parametrize('name, expected', TABLE_CASES)
def test_payload_tables(name, expected):
    assert parse_livepatch_list(fixture(name), '', 0) == expected


ERROR_CASES = [
    pytest.param('variants/livepatch_list_unsupported.stderr.txt', 1, UNSUPPORTED_HYPERVISOR, 38,
                 id='variant-error-38'),
    pytest.param('variants/livepatch_list_unsupported_old_tools.stderr.txt', 1, UNSUPPORTED_HYPERVISOR, 38,
                 id='variant-old-tools-error-38'),
    pytest.param('variants/livepatch_list_no_handler.stderr.txt', 0, NO_CONTROL_INTERFACE, None,
                 id='variant-no-handler-exit-0'),
]


@pytest.mark.parametrize('name, rc, kind, errno', ERROR_CASES)
def test_errors_on_stderr(name, rc, kind, errno):
    with pytest.raises(LivepatchListError) as caught:
        parse_livepatch_list('', fixture(name), rc)
    assert caught.value.kind == kind
    assert caught.value.errno == errno


def test_unsupported_detected_on_stdout_too():
    with pytest.raises(LivepatchListError) as caught:
        parse_livepatch_list(fixture('variants/livepatch_list_unsupported.stderr.txt'), '', 1)
    assert caught.value.kind == UNSUPPORTED_HYPERVISOR
    assert caught.value.text == 'Function not implemented'


@pytest.mark.parametrize('stdout, stderr, rc', [
    ('', 'Failed to get list sizes.\nError 13: Permission denied\n', 1),
    ('', '', 1),
], ids=['error-13', 'rc-1-silent'])
def test_other_failures_are_list_failed(stdout, stderr, rc):
    with pytest.raises(LivepatchListError) as caught:
        parse_livepatch_list(stdout, stderr, rc)
    assert caught.value.kind == LIST_FAILED


@pytest.mark.parametrize('stdout', [
    '',
    'Something else entirely\n',
    ' ID                                     | status     | metadata\n'
    '----------------------------------------+------------+---------------\n'
    'a row without a separator\n',
    ' ID                                     | status     | metadata\n'
    '----------------------------------------+------------+---------------\n'
    'p1                                      | APPLIED extra words    | x\n',
], ids=['empty', 'no-header', 'row-without-bar', 'status-unreadable'])
def test_unparsed_output(stdout):
    with pytest.raises(LivepatchListError) as caught:
        parse_livepatch_list(stdout, '', 0)
    assert caught.value.kind == UNPARSED_OUTPUT


def test_find_tool_error_first_line_wins():
    assert find_tool_error('Applying p... failed\nError 16: Device or resource busy\nError 22: x\n') == (
        16, 'Device or resource busy')
    assert find_tool_error('completed\n') is None


@pytest.mark.parametrize('name', [
    'xen-4.17.5/livepatch_list_empty.txt',
    'xen-4.17.5/livepatch_list_applied.txt',
    'xen-4.17.5/livepatch_list_two_applied.txt',
    'xen-4.17.5/livepatch_list_replace.txt',
    'variants/livepatch_list_row_error.txt',
    'xen-4.20.4/livepatch_list_two_applied.txt',
    'xen-4.20.4/livepatch_list_replace.txt',
    'xen-4.20.4/livepatch_list_row_error.txt',
], ids=['empty', 'applied', 'two-applied', 'replace', 'row-error', '4.20.4-two-applied', '4.20.4-replace',
        '4.20.4-row-error-negative-errno'])
def test_format_round_trips_real_tables(name):
    text = fixture(name)
    assert format_livepatch_table(parse_livepatch_list(text)) == text


def test_payload_index():
    payloads = parse_livepatch_list(fixture('xen-4.17.5/livepatch_list_replace.txt'))
    assert sorted(payload_index(payloads)) == ['replace', 'xen_hello_world']
    assert payload_index(payloads)['xen_hello_world']['state'] == 'CHECKED'
