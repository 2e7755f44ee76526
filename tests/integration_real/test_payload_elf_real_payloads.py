# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""livepatch_payload_elf over real Xen test payloads built by the testbed.

The testbed (tests/testbed/) builds Xen's own test payloads (xen_hello_world, xen_bye_world,
...) from Debian's Xen source into ``/var/cache/noreboot-xen-testbed/payloads/<version>/``
(override with ``NOREBOOT_XEN_PAYLOAD_CACHE``). These tests fail, never skip, when the cache is
missing: run them after the testbed is built.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import hashlib
import os

from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_payload_elf as elf

CACHE = os.environ.get('NOREBOOT_XEN_PAYLOAD_CACHE', '/var/cache/noreboot-xen-testbed/payloads')
VERSIONS = ('4.17.5', '4.17.7')
# Build-ids of the Debian hypervisors in shared/reference/xen-<version>/xl_info.txt.
DEBIAN_XEN_BUILD_IDS = {'4.17.5': '39a640e6f1412319235087391df9f1c5e13ae920',
                        '4.17.7': '151b373fd64b321593bf987fd923cd10dabadac4'}


def payloads(version):
    directory = os.path.join(CACHE, version)
    found = sorted(glob.glob(os.path.join(directory, '*.livepatch')))
    assert found, ('no real livepatch payloads in %s: build the testbed first (tests/testbed/), '
                   'or point NOREBOOT_XEN_PAYLOAD_CACHE at a directory holding <version>/*.livepatch' % directory)
    return dict((os.path.basename(p)[:-len('.livepatch')], elf.read_payload(p)) for p in found)


def test_every_real_payload_reads_as_x86_64_relocatable_with_build_ids():
    for version in VERSIONS:
        for name, info in payloads(version).items():
            with open(info['path'], 'rb') as handle:
                assert info['sha256'] == hashlib.sha256(handle.read()).hexdigest()
            assert len(info['build_id'] or '') == 40, (version, name, info)
            assert len(info['xen_depends'] or '') == 40, (version, name, info)
            assert len(info['depends'] or '') == 40, (version, name, info)
            assert '.symtab' in info['sections'] and '.strtab' in info['sections'], (version, name)


def test_payloads_of_one_version_fit_one_hypervisor_and_versions_differ():
    xen_ids = {}
    for version in VERSIONS:
        ids = set(info['xen_depends'] for info in payloads(version).values())
        assert len(ids) == 1, 'payloads in %s/%s are built for several hypervisors: %s' % (CACHE, version, sorted(ids))
        xen_ids[version] = ids.pop()
    assert xen_ids['4.17.5'] != xen_ids['4.17.7']
    if xen_ids == DEBIAN_XEN_BUILD_IDS:
        return
    # The testbed may build its own hypervisor; then its build-ids differ from Debian's.
    for version, build_id in xen_ids.items():
        assert build_id != DEBIAN_XEN_BUILD_IDS[[v for v in VERSIONS if v != version][0]], (
            '%s payloads are built for the other version\'s hypervisor' % version)


def test_hello_world_stacks_on_the_hypervisor_and_bye_world_on_hello_world():
    for version in VERSIONS:
        found = payloads(version)
        assert 'xen_hello_world' in found, 'no xen_hello_world.livepatch in %s/%s' % (CACHE, version)
        hello = found['xen_hello_world']
        assert hello['depends'] == hello['xen_depends']
        assert hello['metadata'] == ['LIVEPATCH_RULEZ']
        assert '.livepatch.funcs' in hello['sections']
        if 'xen_bye_world' in found:
            assert found['xen_bye_world']['depends'] == hello['build_id']
        own_ids = [info['build_id'] for info in found.values()]
        assert len(own_ids) == len(set(own_ids)), 'two payloads of %s share a build-id' % version
