# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xen_facts_collector with injected runners and files (the module cases are in
tests/unit/plugins/modules/xen_facts_cases.yml; these are the corners a module test cannot reach)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import LivepatchRunner, XlRunner
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import (
    collect_xen_facts,
    read_text_file,
    runner_or_none,
)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'fixtures')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


class Host(object):
    """Answers argv -> (rc, stdout, stderr); an Exception instance as answer is raised."""

    def __init__(self, answers):
        self.answers = answers
        self.ran = []

    def __call__(self, argv):
        self.ran.append(list(argv))
        answer = self.answers[tuple(argv)]
        if isinstance(answer, Exception):
            raise answer
        return answer


def runners(host, xl='xl', livepatch='xen-livepatch'):
    return runner_or_none(XlRunner, host, xl), runner_or_none(LivepatchRunner, host, livepatch)


def no_files(path):
    return None


def test_runner_or_none_without_binary():
    assert runner_or_none(XlRunner, Host({}), None) is None
    assert isinstance(runner_or_none(XlRunner, Host({}), '/usr/sbin/xl'), XlRunner)


def test_xl_that_cannot_start_is_not_present_and_not_raised():
    host = Host({('xl', 'info'): OSError(8, 'Exec format error')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files)
    assert facts['present'] is False
    assert facts['reason'].startswith('xl info could not run: ')
    assert host.ran == [['xl', 'info']]


@pytest.mark.parametrize('stdout, reason', [
    ('', 'xl info output could not be read'),
    ('host                   : dom0\nxen_minor              : 17\n', 'xl info did not report xen_major and xen_minor'),
], ids=['empty-output', 'no-xen-major'])
def test_xl_info_without_version_is_not_present(stdout, reason):
    xl, livepatch = runners(Host({('xl', 'info'): (0, stdout, '')}))
    facts = collect_xen_facts(xl, livepatch, no_files)
    assert facts['present'] is False
    assert facts['reason'].startswith(reason)


def test_capabilities_with_control_d_lets_xl_run():
    host = Host({('xl', 'info'): (0, fixture('xen-4.17.5/xl_info.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_empty.txt'), ''),
                 ('xl', 'list'): (0, fixture('xen-4.17.5/xl_list.txt'), '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, {'/proc/xen/capabilities': 'control_d\n'}.get)
    assert facts['present'] is True
    assert host.ran == [['xl', 'info'], ['xen-livepatch', 'list'], ['xl', 'list']]


def test_applied_but_hypervisor_not_gathered_still_reads_boot_version_for_effective_version():
    host = Host({('xl', 'info'): (0, fixture('variants/xl_info_4.17.5_hello_world_applied.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_applied.txt'), ''),
                 ('xl', 'dmesg'): (0, fixture('xen-4.17.5/xl_dmesg.txt'), '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['livepatch'])
    assert facts['hypervisor'] is None
    assert facts['effective_version'] == '4.17.5+xen_hello_world'


def test_nothing_needs_the_version_then_dmesg_is_not_run():
    host = Host({('xl', 'info'): (0, fixture('variants/xl_info_4.17.5_hello_world_applied.txt'), ''),
                 ('xl', 'list'): (0, fixture('xen-4.17.5/xl_list.txt'), '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['domains'])
    assert host.ran == [['xl', 'info'], ['xl', 'list']]
    assert facts['effective_version'] is None
    assert facts['livepatch'] is None


def test_banner_of_other_minor_version_is_not_taken():
    dmesg = fixture('xen-4.17.5/xl_dmesg.txt').replace('Xen version 4.17.5', 'Xen version 4.170.5').replace(
        'build-id: 39a640e6f1412319235087391df9f1c5e13ae920\n', '')
    host = Host({('xl', 'info'): (0, fixture('variants/xl_info_4.17.5_hello_world_applied.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_applied.txt'), ''),
                 ('xl', 'dmesg'): (0, dmesg, '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['hypervisor', 'livepatch'])
    assert facts['hypervisor']['version_source'] == 'xl_info_live'


def test_warnings_go_to_the_injected_function():
    warnings = []
    host = Host({('xl', 'info'): (0, fixture('xen-4.17.5/xl_info.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_empty.txt'), ''),
                 ('xl', 'list'): (0, 'Name  ID\ngarbage\n', '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, warn=warnings.append)
    assert facts['domains'] == []
    assert len(warnings) == 1 and warnings[0].startswith('xl list output could not be read')


def test_read_text_file(tmp_path):
    good = tmp_path / 'cpuinfo'
    good.write_bytes(b'vendor_id\t: GenuineIntel\n')
    odd = tmp_path / 'product_name'
    odd.write_bytes(b'Box \xff\n')
    assert read_text_file(str(good)) == 'vendor_id\t: GenuineIntel\n'
    assert read_text_file(str(odd)) == u'Box \ufffd\n'
    assert read_text_file(str(tmp_path / 'missing')) is None
    assert read_text_file(str(tmp_path)) is None  # a directory: unreadable as a file
