# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report filters over registered xen_facts results: reached, not a dom0, unreachable, failed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter.xen_report import (
    FilterModule,
    xen_fleet_summary,
    xen_host_line,
    xen_host_summary,
)
from xen_builds import XEN_4175 as BID_5, XEN_4177 as BID_7


def facts_result(version, build_id, hw_class, payloads=(), supported=True, domains=None, effective=None):
    applied = [name for name, state in payloads if state == 'APPLIED']
    return {'changed': False, 'ansible_facts': {'xen': {
        'present': True, 'reason': None,
        'hypervisor': {'version': version, 'build_id': build_id},
        'livepatch': {'supported': supported, 'reason': None, 'reason_kind': None if supported else 'tool_missing',
                      'payloads': [{'name': n, 'state': s, 'error': None, 'metadata': ''} for n, s in payloads]},
        'effective_version': effective if effective is not None else '+'.join([version] + applied),
        'hardware': {'class': hw_class, 'generation': None},
        'domains': domains if domains is not None else [{'name': 'Domain-0', 'id': 0}],
    }}}


NOT_DOM0 = {'changed': False, 'ansible_facts': {'xen': {
    'present': False, 'reason': 'xl not found on PATH', 'hypervisor': None,
    'livepatch': {'supported': False, 'reason': 'not a Xen dom0', 'reason_kind': 'not_xen_dom0', 'payloads': []},
    'effective_version': None, 'hardware': {'class': 'intel-6-85', 'generation': 'Skylake-SP/Cascade Lake'},
    'domains': []}}}
UNREACHABLE = {'unreachable': True, 'changed': False, 'msg': 'Failed to connect to the host via ssh'}
FAILED = {'failed': True, 'changed': False, 'msg': 'MODULE FAILURE'}


def test_host_summary_reached_dom0_with_payloads_and_guests():
    result = facts_result('4.17.5', BID_5, 'amd-15-107', payloads=[('xsa1', 'APPLIED'), ('xsa2', 'CHECKED')],
                          domains=[{'name': 'Domain-0', 'id': 0}, {'name': 'web', 'id': 3}, {'name': 'db', 'id': 4}])
    summary = xen_host_summary(result, 'dom0-a')
    assert summary == dict(host='dom0-a', status='ok', msg=None, present=True, reason=None, version='4.17.5',
                           effective_version='4.17.5+xsa1', build_id=BID_5, hardware_class='amd-15-107',
                           generation=None, livepatch_supported=True, livepatch_reason_kind=None,
                           applied=['xsa1'], guests=2, unfinished_reboot=False, guests_not_back=[])
    assert xen_host_line(summary) == (
        'dom0-a: present=yes version=4.17.5 effective=4.17.5+xsa1 build_id=%s class=amd-15-107 '
        'livepatch=yes applied=xsa1 guests=2' % BID_5)


def test_host_summary_not_dom0_keeps_hardware_and_reason():
    summary = xen_host_summary(NOT_DOM0, 'laptop')
    assert summary['status'] == 'ok' and summary['present'] is False
    assert summary['hardware_class'] == 'intel-6-85'
    assert summary['livepatch_reason_kind'] == 'not_xen_dom0'
    assert xen_host_line(summary) == (
        'laptop: present=no version=- effective=- build_id=- class=intel-6-85 livepatch=no(not_xen_dom0) '
        'applied=- guests=0 reason=xl not found on PATH')


@pytest.mark.parametrize('result, status, line', [
    (UNREACHABLE, 'unreachable', 'h: UNREACHABLE Failed to connect to the host via ssh'),
    (FAILED, 'failed', 'h: FAILED MODULE FAILURE'),
    ({'changed': False}, 'failed', 'h: FAILED noreboot.xen.xen_facts returned no xen facts'),
], ids=['unreachable', 'module-failed', 'no-facts'])
def test_host_summary_hosts_not_reached(result, status, line):
    summary = xen_host_summary(result, 'h')
    assert summary['status'] == status
    assert xen_host_line(summary) == line


def test_fleet_summary_counts_and_groups():
    summaries = [
        xen_host_summary(facts_result('4.17.5', BID_5, 'intel-6-85', payloads=[('xsa1', 'APPLIED')]), 'b'),
        xen_host_summary(facts_result('4.17.5', BID_5, 'intel-6-85'), 'a'),
        xen_host_summary(facts_result('4.17.5', BID_5, 'amd-23-49'), 'c'),
        xen_host_summary(facts_result('4.17.7', BID_7, 'intel-6-85', supported=False, effective=None), 'd'),
        xen_host_summary(NOT_DOM0, 'e'),
        xen_host_summary(UNREACHABLE, 'f'),
        xen_host_summary(FAILED, 'g'),
    ]
    # effective_version None on d (live patch state unknown)
    summaries[3]['effective_version'] = None
    fleet = xen_fleet_summary(summaries)
    assert (fleet['hosts_total'], fleet['hosts_present'], fleet['hosts_not_present'], fleet['hosts_unreachable'],
            fleet['hosts_failed'], fleet['livepatch_supported']) == (7, 4, 1, 1, 1, 3)
    assert fleet['by_build_class'] == {
        BID_5: {'intel-6-85': {'count': 2, 'version': '4.17.5', 'hosts': ['a', 'b']},
                'amd-23-49': {'count': 1, 'version': '4.17.5', 'hosts': ['c']}},
        BID_7: {'intel-6-85': {'count': 1, 'version': '4.17.7', 'hosts': ['d']}},
    }
    assert fleet['by_effective_version'] == {'4.17.5': 2, '4.17.5+xsa1': 1, 'unknown': 1}
    assert fleet['applied_payloads'] == {'a': [], 'b': ['xsa1'], 'c': [], 'd': []}
    assert sorted(fleet['hosts']) == ['a', 'b', 'c', 'd', 'e', 'f', 'g']


def test_host_with_saved_guests_of_an_interrupted_reboot_is_listed():
    result = facts_result('4.17.7', BID_7, 'intel-6-85')
    result['ansible_facts']['xen']['evacuation'] = {
        'unfinished': True, 'guests': [
            {'name': 'web1', 'action': 'save', 'state': 'saved', 'file': '/var/lib/noreboot-xen/saved-guests/web1.save',
             'peer': None, 'config': None, 'running': False},
            {'name': 'db1', 'action': 'migrate', 'state': 'migrated', 'file': None, 'peer': 'dom0-b', 'config': None,
             'running': False}]}
    summary = xen_host_summary(result, 'h7')
    assert summary['unfinished_reboot'] is True
    assert summary['guests_not_back'] == ['web1@/var/lib/noreboot-xen/saved-guests/web1.save', 'db1@dom0-b']
    assert xen_host_line(summary).endswith(
        'guests=0 unfinished_reboot=yes not_back=web1@/var/lib/noreboot-xen/saved-guests/web1.save,db1@dom0-b')
    fleet = xen_fleet_summary([summary, xen_host_summary(facts_result('4.17.7', BID_7, 'intel-6-85'), 'h8')])
    assert fleet['unfinished_reboots'] == {'h7': ['web1@/var/lib/noreboot-xen/saved-guests/web1.save', 'db1@dom0-b']}


def test_fleet_summary_of_no_hosts():
    fleet = xen_fleet_summary([])
    assert fleet['hosts_total'] == 0 and fleet['by_build_class'] == {}


@pytest.mark.parametrize('call', [
    lambda: xen_host_summary('not a dict', 'h'),
    lambda: xen_host_summary({}, None),
    lambda: xen_host_line({'status': 'ok'}),
    lambda: xen_fleet_summary({'host': 'a'}),
    lambda: xen_fleet_summary([{'no': 'host'}]),
], ids=['summary-of-text', 'summary-without-host', 'line-of-garbage', 'fleet-of-dict', 'fleet-of-garbage'])
def test_wrong_input_is_a_filter_error(call):
    with pytest.raises(AnsibleFilterError):
        call()


def test_filter_names():
    assert sorted(FilterModule().filters()) == ['xen_fleet_summary', 'xen_host_line', 'xen_host_summary']
