# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xl_output_parsers over real xl output of Xen 4.17.5 / 4.17.7 / 4.20.4 and hand-made variants."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.xl_output_parsers import (
    XlOutputError,
    boot_banner,
    find_error_lines,
    info_int,
    info_text,
    info_words,
    parse_xen_commandline,
    parse_xl_dmesg,
    parse_xl_info,
    parse_xl_list,
)
from xen_builds import XEN_4175, XEN_4177, XEN_4204

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'fixtures')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


# ---------------------------------------------------------------- xl info

XL_INFO_CASES = [
    pytest.param('xen-4.17.5/xl_info.txt', '4', '17', '.5', '4.17.5', XEN_4175,
                 ['pv', 'hvm', 'hap', 'shadow', 'gnttab-v1', 'gnttab-v2'], id='4.17.5-booted'),
    pytest.param('xen-4.17.7/xl_info.txt', '4', '17', '.7', '4.17.7', XEN_4177,
                 ['pv', 'hvm', 'hap', 'gnttab-v1', 'gnttab-v2'], id='4.17.7-virt-caps-no-shadow'),
    pytest.param('variants/xl_info_4.17.5_hello_world_applied.txt', '4', '17', 'Hello World', '4.17Hello World',
                 XEN_4175,
                 ['pv', 'hvm', 'hap', 'shadow', 'gnttab-v1', 'gnttab-v2'], id='4.17.5-applied'),
    # Debian 13's 4.20.4 is upstream's stable-4.20 after RELEASE-4.20.4: it says 4.20.5-pre.
    pytest.param('xen-4.20.4/xl_info.txt', '4', '20', '.5-pre', '4.20.5-pre', XEN_4204,
                 ['pv', 'hvm', 'hap', 'gnttab-v1', 'gnttab-v2'], id='4.20.4-reports-4.20.5-pre'),
    pytest.param('xen-4.20.4/xl_info_hello_world_applied.txt', '4', '20', 'Hello World', '4.20Hello World',
                 XEN_4204, ['pv', 'hvm', 'hap', 'gnttab-v1', 'gnttab-v2'], id='4.20.4-applied'),
    pytest.param('variants/xl_info_colon_values.txt', '4', '17', '.3-pre', '4.17.3-pre',
                 '5d3a3c0b1c6f5b0e9a1b2c3d4e5f60718293a4b5',
                 ['pv', 'hvm', 'hvm_directio', 'pv_directio', 'hap', 'shadow', 'iommu_hap_pt_share',
                  'gnttab-v1', 'gnttab-v2'], id='variant-colon-values'),
]


@pytest.mark.parametrize('name, major, minor, extra, version, build_id, virt_caps', XL_INFO_CASES)
def test_xl_info_version_fields(name, major, minor, extra, version, build_id, virt_caps):
    info = parse_xl_info(fixture(name))
    assert (info['xen_major'], info['xen_minor'], info['xen_extra'], info['xen_version']) == (major, minor, extra, version)
    assert info['build_id'] == build_id
    assert info_words(info, 'virt_caps') == virt_caps


def test_xl_info_4175_values_trimmed_and_typed():
    info = parse_xl_info(fixture('xen-4.17.5/xl_info.txt'))
    assert len(info) == 34
    # xen_caps ends in a blank in the real output
    assert info['xen_caps'] == 'xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64'
    assert info['xen_changeset'] == ''
    assert info_text(info, 'xen_changeset') is None
    assert info['cc_compile_date'] == 'Sat Nov 29 13:52:25 UTC 2025'
    assert info['version'] == '#1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1 (2026-07-02)'
    assert info['hw_caps'] == '1fcbf3fd:f6d8320b:ec500800:00000077:00000005:01884329:0000020c:00000000'
    assert info_int(info, 'total_memory') == 2047
    assert info_int(info, 'free_memory') == 1000
    assert info_int(info, 'nr_cpus') == 2
    assert info_int(info, 'cpu_mhz') is None  # not a whole number
    assert info_int(info, 'no_such_key') is None


def test_xl_info_colon_values_kept_whole():
    info = parse_xl_info(fixture('variants/xl_info_colon_values.txt'))
    assert info['xen_changeset'] == 'Tue Dec 12 10:08:40 2023 +0100 git:38eebc6e5c-dirty'
    assert info['platform_params'] == 'virt_start=0xffff800000000000'
    assert info['cc_compile_domain'] == ''
    assert info['cc_compile_date'] == 'Tue Dec 12 10:20:02 UTC 2023'
    assert info['xen_commandline'].endswith('spec-ctrl=no-eager-fpu=0')


def test_xl_info_n_topology_blocks_do_not_become_keys():
    info = parse_xl_info(fixture('xen-4.17.5/xl_info_n.txt'))
    for not_a_key in ('cpu', 'node', '0', '1', 'device'):
        assert not_a_key not in info
    assert info['cpu_topology'].splitlines() == ['cpu:    core    socket     node',
                                                 '  0:       0        0        0',
                                                 '  1:       1        0        0']
    assert info['device topology'].splitlines() == ['device           node', 'No device topology data available']
    assert info['numa_info'].splitlines()[0] == 'node:    memsize    memfree    distances'
    # keys after the blocks are still read
    assert info['build_id'] == XEN_4175
    assert info['xen_extra'] == '.5'


def test_xl_info_n_420_is_xl_info_plus_the_three_blocks():
    with_blocks = parse_xl_info(fixture('xen-4.20.4/xl_info_n.txt'))
    blocks = dict((key, with_blocks.pop(key)) for key in ('cpu_topology', 'device topology', 'numa_info'))
    assert with_blocks == parse_xl_info(fixture('xen-4.20.4/xl_info.txt'))
    assert blocks['device topology'].splitlines() == ['device           node', 'No device topology data available']
    assert blocks['numa_info'].splitlines()[0] == 'node:    memsize    memfree    distances'


def test_xl_info_ignores_noise_before_first_key():
    info = parse_xl_info('WARNING: something odd\nhost                   : dom0\nxen_major              : 4\n')
    assert info == {'host': 'dom0', 'xen_major': '4'}


@pytest.mark.parametrize('text', ['', '\n\n', 'xc: error: Could not obtain handle on privileged command interface\n'],
                         ids=['empty', 'blank-lines', 'error-text'])
def test_xl_info_without_any_key_is_an_error(text):
    with pytest.raises(XlOutputError):
        parse_xl_info(text)


# ---------------------------------------------------------------- Xen command line

def test_commandline_real_4175():
    info = parse_xl_info(fixture('xen-4.17.5/xl_info.txt'))
    cmdline = parse_xen_commandline(info['xen_commandline'])
    assert cmdline['raw'] == 'console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all noreboot'
    assert cmdline['options'] == {
        'console': 'com1', 'com1': '115200,8n1', 'dom0_mem': '1024M,max:1024M',
        'loglvl': 'all', 'guest_loglvl': 'all', 'noreboot': True,
    }


def test_commandline_values_with_equals_and_bare_flags():
    options = parse_xen_commandline(parse_xl_info(fixture('variants/xl_info_colon_values.txt'))['xen_commandline'])['options']
    assert options['spec-ctrl'] == 'no-eager-fpu=0'
    assert options['crashkernel'] == '256M@64M'
    assert options['dom0_max_vcpus'] == '1-16'
    assert options['console'] == 'com1,vga'
    assert options['placeholder'] is True
    assert options['no-real-mode'] is True


def test_commandline_last_repeat_wins_and_empty():
    assert parse_xen_commandline('loglvl=warning loglvl=all')['options'] == {'loglvl': 'all'}
    assert parse_xen_commandline('opt=')['options'] == {'opt': ''}
    assert parse_xen_commandline(None) == {'raw': '', 'options': {}}


# ---------------------------------------------------------------- xl list

@pytest.mark.parametrize('name, time_s', [('xen-4.17.5/xl_list.txt', 68.9), ('xen-4.17.7/xl_list.txt', 56.8),
                                          ('xen-4.20.4/xl_list.txt', 1250.7)],
                         ids=['4.17.5-dom0-only', '4.17.7-dom0-only', '4.20.4-dom0-only'])
def test_xl_list_real(name, time_s):
    assert parse_xl_list(fixture(name)) == [
        {'name': 'Domain-0', 'id': 0, 'memory_mib': 1024, 'vcpus': 2, 'state': 'r-----', 'time_s': time_s}]


def test_xl_list_guests_read_from_the_right():
    domains = parse_xl_list(fixture('variants/xl_list_guests.txt'))
    assert [(d['name'], d['id'], d['state']) for d in domains] == [
        ('Domain-0', 0, 'r-----'),
        ('web-01', 3, '-b----'),
        ('db primary (legacy name)', 12, 'r-----'),
        ('migrating-guest--incoming', 17, '--p---'),
        ('shutdown-guest', 21, '---s--'),
    ]
    assert domains[2]['memory_mib'] == 16384
    assert domains[2]['vcpus'] == 8
    assert domains[0]['time_s'] == 918273.4
    assert isinstance(domains[3]['time_s'], float)


@pytest.mark.parametrize('text', [
    '',
    'libxl: error: cannot init xl context\n',
    'Name                                        ID   Mem VCPUs\tState\tTime(s)\nDomain-0  zero  1024  2  r-----  1.0\n',
], ids=['empty', 'no-header', 'bad-row'])
def test_xl_list_unreadable(text):
    with pytest.raises(XlOutputError):
        parse_xl_list(text)


# ---------------------------------------------------------------- xl dmesg

@pytest.mark.parametrize('name, version, build_id', [
    ('xen-4.17.5/xl_dmesg.txt', '4.17.5', XEN_4175),
    ('xen-4.17.7/xl_dmesg.txt', '4.17.7', XEN_4177),
    ('variants/xl_dmesg_console_timestamps.txt', '4.17.5', XEN_4175),
], ids=['4.17.5-boot-banner', '4.17.7-boot-banner', 'variant-console-timestamps'])
def test_boot_banner(name, version, build_id):
    banner = boot_banner(parse_xl_dmesg(fixture(name)))
    assert banner['version'] == version
    assert banner['build_id'] == build_id
    assert banner['version_detail'].startswith('(Debian %s' % version)


def test_boot_banner_420_version_is_what_xen_says_and_debian_version_follows():
    assert boot_banner(parse_xl_dmesg(fixture('xen-4.20.4/xl_dmesg.txt'))) == {
        'version': '4.20.5-pre',
        'version_detail': '(Debian 4.20.4+63-g7abfd2bce2-0+deb13u1) (pkg-xen-devel@lists.alioth.debian.org) '
                          '(x86_64-linux-gnu-gcc (Debian 14.2.0-19) 14.2.0) debug=n Tue Nov  3 20:11:50 UTC 2026',
        'build_id': XEN_4204,
        'commandline': 'console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all noreboot'}


def test_boot_banner_commandline_real():
    banner = boot_banner(parse_xl_dmesg(fixture('xen-4.17.7/xl_dmesg.txt')))
    assert banner['commandline'] == 'console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all noreboot'


def test_boot_banner_gone_when_ring_wrapped():
    assert boot_banner(parse_xl_dmesg(fixture('variants/xl_dmesg_wrapped.txt'))) == {
        'version': None, 'version_detail': None, 'build_id': None, 'commandline': None}


def test_dmesg_lines_split_source_timestamp_message():
    lines = parse_xl_dmesg(fixture('variants/xl_dmesg_console_timestamps.txt') + '(d3) guest says hi\nbare line\n')
    assert lines[1] == {'source': 'XEN', 'timestamp': '2026-11-04 16:52:28.102',
                        'message': 'build-id: ' + XEN_4175,
                        'line': '(XEN) [2026-11-04 16:52:28.102] build-id: ' + XEN_4175}
    assert lines[-2]['source'] == 'd3' and lines[-2]['message'] == 'guest says hi'
    assert lines[-1]['source'] is None and lines[-1]['message'] == 'bare line'


def test_dmesg_real_line_count_and_blank_lines_dropped():
    text = fixture('xen-4.17.5/xl_dmesg.txt')
    assert len(parse_xl_dmesg(text)) == len([x for x in text.splitlines() if x.strip()])


@pytest.mark.parametrize('name', ['xen-4.17.5/xl_dmesg.txt', 'xen-4.17.5/xl_dmesg_livepatch_lines.txt',
                                  'xen-4.17.7/xl_dmesg.txt', 'xen-4.20.4/xl_dmesg.txt'],
                         ids=['4.17.5-boot', '4.17.5-applied-reverted-clean', '4.17.7-boot', '4.20.4-boot'])
def test_no_error_lines_in_clean_logs(name):
    assert find_error_lines(parse_xl_dmesg(fixture(name))) == []


def test_error_lines_real_build_id_failures_4177():
    hits = find_error_lines(parse_xl_dmesg(fixture('xen-4.17.7/xl_dmesg_livepatch_lines.txt')))
    assert hits == [
        {'category': 'build_id', 'line': '(XEN) livepatch: wrongbid: check against hypervisor build-id failed'},
        {'category': 'build_id', 'line': '(XEN) livepatch: xen_hello_world: check against hypervisor build-id failed'},
        {'category': 'build_id', 'line': '(XEN) livepatch: xen_expectations: check against xen_bye_world build-id failed'},
    ]


def test_error_lines_real_420_log():
    # 4.20 logs a wrong build-id as "build-id mismatch:" and both build-ids on two lines indented
    # with U+00A0 (tests/testbed/xen-4.20-differences.md, 5): the first line is the hit, once.
    lines = parse_xl_dmesg(fixture('xen-4.20.4/xl_dmesg_after.txt'))
    assert [entry['message'] for entry in lines if entry['message'].startswith('\u00a0')] == [
        '\u00a0 livepatch: 54899eef59df26aed4541ce12fc0bbb364711b14',
        '\u00a0' * 7 + ' xen: ' + XEN_4204]
    assert [(h['category'], h['line']) for h in find_error_lines(lines)] == [
        ('livepatch', '(XEN) livepatch: xen_prepost_hooks_fail: pre-apply hook failed (rc=-22), aborting!'),
        ('quiesce_timeout', '(XEN) livepatch: xen_action_hooks: Timed out on semaphore in IRQ quiesce phase 0/1'),
        ('livepatch', '(XEN) livepatch: xen_action_hooks finished REVERT with rc=-16'),
        ('livepatch', '(XEN) livepatch: xen_action_hooks_noapply: Calling post-apply hook function with rc=-22'),
        ('livepatch', '(XEN) livepatch: xen_action_hooks_noapply finished APPLY with rc=-22'),
        ('livepatch', '(XEN) livepatch: xen_action_hooks_norevert: Calling post-revert hook function with rc=-22'),
        ('livepatch', '(XEN) livepatch: xen_action_hooks_norevert finished REVERT with rc=-22'),
        ('build_id', '(XEN) livepatch: wrongbid: build-id mismatch:'),
        ('expectations', '(XEN) livepatch: xen_extra_version: expectation failed: expected:deadc0debabe, '
                         'actual:488d052eae15'),
        ('expectations', '(XEN) livepatch: xen_expectations_fail: expectations of xen_extra_version failed (rc=-22), '
                         'aborting!'),
    ]


def test_error_lines_variant_categories():
    hits = find_error_lines(parse_xl_dmesg(fixture('variants/xl_dmesg_errors.txt')))
    assert [(h['category'], h['line']) for h in hits] == [
        ('quiesce_timeout', '(XEN) livepatch: xsa999: Timed out on semaphore in CPU quiesce phase 1/2'),
        ('livepatch', '(XEN) livepatch: xsa999 finished APPLY with rc=-16'),
        ('build_id', '(XEN) livepatch: xsa998: check against hypervisor build-id failed'),
        ('expectations', '(XEN) livepatch: xsa997: expectation of do_hello not met'),
        ('crash', '(XEN) Panic on CPU 1:'),
        ('crash', '(XEN) FATAL TRAP: vector = 6 (invalid opcode)'),
    ]


def test_guest_console_lines_are_not_hypervisor_errors():
    """Issue 13 item 8: an HVM guest writing to port 0xE9 (or a PV guest's console_io) gets
    ``(dN) `` lines in ``xl dmesg``; whatever they say, only ``(XEN)`` lines are the hypervisor's."""
    guest = ('(d1) livepatch: xsa999: apply failed with rc=-22\n'
             '(d2) [   12.345678] livepatch: xen_hello_world: check against hypervisor build-id failed\n'
             '(d12) Panic on CPU 0: livepatch expectation of do_hello not met\n'
             '(d3) livepatch: Timed out on semaphore in CPU quiesce phase 1/2\n')
    assert find_error_lines(parse_xl_dmesg(guest)) == []
    hits = find_error_lines(parse_xl_dmesg(guest + '(XEN) livepatch: xsa999 finished APPLY with rc=-16\n'))
    assert hits == [{'category': 'livepatch', 'line': '(XEN) livepatch: xsa999 finished APPLY with rc=-16'}]
