# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xen_image_build_id over Debian's own hypervisor images, as the testbed unpacked them.

Runs in ``make testbed-test``, after ``testbed-build`` has put the images in the testbed cache
(``NOREBOOT_XEN_TESTBED_CACHE``, default ``/var/cache/noreboot-xen-testbed``). It fails, never
skips, when they are missing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.xen_image_build_id import read_image_build_id
from xen_builds import BUILD_IDS as DEBIAN_XEN_BUILD_IDS

CACHE = os.environ.get('NOREBOOT_XEN_TESTBED_CACHE', '/var/cache/noreboot-xen-testbed')


def image_path(version):
    directory = os.path.join(CACHE, 'xen')
    matches = sorted(name for name in os.listdir(directory) if name.split('+')[0] == version)
    assert matches, 'no Debian %s hypervisor under %s: run make testbed-build first' % (version, directory)
    return os.path.join(directory, matches[-1], 'xen-4.17-amd64')


@pytest.mark.parametrize('version', sorted(DEBIAN_XEN_BUILD_IDS))
def test_real_debian_image_build_id(version, tmp_path):
    with open(image_path(version), 'rb') as handle:
        raw = handle.read()
    gz = tmp_path / 'xen-4.17-amd64.gz'
    gz.write_bytes(gzip.compress(raw))       # as Debian installs it in /boot
    assert read_image_build_id(str(gz)) == DEBIAN_XEN_BUILD_IDS[version]
    plain = tmp_path / 'xen-4.17-amd64'
    plain.write_bytes(raw)                   # as QEMU's -kernel takes it
    assert read_image_build_id(str(plain)) == DEBIAN_XEN_BUILD_IDS[version]
