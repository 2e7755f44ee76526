# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hardware_class over /proc/cpuinfo variants (Intel Cascade Lake, AMD Rome, QEMU) and DMI files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.hardware_class import (
    describe_hardware,
    generation,
    hardware_class,
    normalize_vendor,
    parse_cpuinfo,
    read_dmi,
)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'fixtures')

NO_DMI = dict(sys_vendor=None, product_name=None, bios_vendor=None, bios_version=None, bios_date=None)


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


@pytest.mark.parametrize('name, expected', [
    ('variants/cpuinfo_intel_cascade_lake.txt', dict(
        vendor='intel', family=6, model=85, stepping=7, microcode='0x5003604',
        model_name='Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz', generation='Skylake-SP/Cascade Lake',
        **{'class': 'intel-6-85'})),
    ('variants/cpuinfo_amd_rome.txt', dict(
        vendor='amd', family=23, model=49, stepping=0, microcode='0x830107a',
        model_name='AMD EPYC 7502 32-Core Processor', generation='Rome (Zen 2)', **{'class': 'amd-23-49'})),
    ('variants/cpuinfo_qemu.txt', dict(
        vendor='amd', family=15, model=107, stepping=1, microcode='0x1000065',
        model_name='QEMU Virtual CPU version 2.5+', generation='QEMU virtual CPU (qemu64)',
        **{'class': 'amd-15-107'})),
], ids=['intel-cascade-lake', 'amd-rome', 'qemu64'])
def test_describe_hardware(name, expected):
    facts = describe_hardware(fixture(name), NO_DMI)
    dmi = facts.pop('dmi')
    assert facts == expected
    assert dmi == NO_DMI


def test_first_processor_wins_over_later_ones():
    # processor 1 of this fixture carries another microcode revision
    assert parse_cpuinfo(fixture('variants/cpuinfo_intel_cascade_lake.txt'))['microcode'] == '0x5003604'


def test_cpuinfo_missing_gives_nulls_not_errors():
    facts = describe_hardware(None, NO_DMI)
    assert facts['vendor'] is None and facts['family'] is None and facts['model'] is None
    assert facts['class'] is None and facts['generation'] is None and facts['microcode'] is None


def test_cpuinfo_without_microcode_and_odd_numbers():
    text = 'processor\t: 0\nvendor_id\t: CentaurHauls\ncpu family\t: 7\nmodel\t\t: x1b\nstepping\t: 2\n'
    facts = describe_hardware(text, NO_DMI)
    assert facts['vendor'] == 'centaurhauls'
    assert facts['microcode'] is None
    assert facts['model'] is None
    assert facts['class'] is None


@pytest.mark.parametrize('vendor_id, expected', [
    ('GenuineIntel', 'intel'), ('AuthenticAMD', 'amd'), ('HygonGenuine', 'hygon'), ('Shanghai  ', 'shanghai'),
    ('', None), (None, None),
])
def test_normalize_vendor(vendor_id, expected):
    assert normalize_vendor(vendor_id) == expected


@pytest.mark.parametrize('vendor, family, model, expected', [
    ('intel', 6, 85, 'Skylake-SP/Cascade Lake'),
    ('intel', 6, 106, 'Ice Lake-SP'),
    ('intel', 6, 143, 'Sapphire Rapids'),
    ('intel', 6, 207, 'Emerald Rapids'),
    ('intel', 6, 173, 'Granite Rapids'),
    ('intel', 6, 79, 'Broadwell-EP'),
    ('intel', 6, 63, 'Haswell-EP'),
    ('intel', 6, 62, 'Ivy Bridge-EP'),
    ('intel', 6, 45, 'Sandy Bridge-EP'),
    ('amd', 23, 1, 'Naples (Zen)'),
    ('amd', 23, 49, 'Rome (Zen 2)'),
    ('amd', 25, 1, 'Milan (Zen 3)'),
    ('amd', 25, 17, 'Genoa (Zen 4)'),
    ('amd', 15, 5, 'K8'),
    ('amd', 23, 113, None),
    ('intel', 6, 999, None),
    ('via', 6, 15, None),
    (None, 6, 85, None),
])
def test_generation_table(vendor, family, model, expected):
    assert generation(vendor, family, model) == expected


def test_class_is_decimal_and_needs_all_parts():
    assert hardware_class('amd', 25, 17) == 'amd-25-17'
    assert hardware_class('intel', 6, None) is None


def test_read_dmi_missing_unreadable_and_empty_are_null():
    files = {
        '/sys/class/dmi/id/sys_vendor': 'Dell Inc.\n',
        '/sys/class/dmi/id/product_name': 'PowerEdge R640\n',
        '/sys/class/dmi/id/bios_vendor': '\n',
        '/sys/class/dmi/id/bios_date': '06/13/2023\n',
    }
    read = []

    def read_file(path):
        read.append(path)
        return files.get(path)

    assert read_dmi(read_file) == dict(sys_vendor='Dell Inc.', product_name='PowerEdge R640', bios_vendor=None,
                                       bios_version=None, bios_date='06/13/2023')
    assert read == ['/sys/class/dmi/id/%s' % f for f in
                    ('sys_vendor', 'product_name', 'bios_vendor', 'bios_version', 'bios_date')]
