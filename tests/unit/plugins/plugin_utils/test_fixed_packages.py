# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fixed_packages: which fixed hypervisor packages the reboot fallback installs on a host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter.reboot_fallback_packages import fixed_packages

DEB = dict(package='xen-hypervisor-4.17-amd64', version='4.17.7-1')
UBUNTU = dict(package='xen-hypervisor-4.17-amd64', version='4.17.7-0ubuntu1')
RPM = dict(package='xen-hypervisor', version=4.17)
PACKAGES = dict(debian=[DEB, dict(DEB)], ubuntu=[UBUNTU], redhat=[RPM])

# id, packages, facts, distribution key, names, pairs
CASES = [
    ('distribution-entry', PACKAGES, dict(distribution='Ubuntu', os_family='Debian'),
     'ubuntu', ['xen-hypervisor-4.17-amd64'], [['xen-hypervisor-4.17-amd64', '4.17.7-0ubuntu1']]),
    ('family-entry-repeats-fold', PACKAGES, dict(distribution='Debian', os_family='Debian'),
     'debian', ['xen-hypervisor-4.17-amd64'], [['xen-hypervisor-4.17-amd64', '4.17.7-1']]),
    ('os-family-when-no-distribution-entry', PACKAGES, dict(distribution='Rocky', os_family='RedHat'),
     'redhat', ['xen-hypervisor'], [['xen-hypervisor', '4.17']]),
    ('nothing-for-this-host', PACKAGES, dict(distribution='Gentoo', os_family='Gentoo'), 'gentoo', [], []),
    ('no-facts', PACKAGES, {}, '', [], []),
    ('two-versions-of-one-package', dict(debian=[DEB, dict(DEB, version='4.17.8-1')]),
     dict(distribution='Debian', os_family='Debian'), 'debian', ['xen-hypervisor-4.17-amd64'],
     [['xen-hypervisor-4.17-amd64', '4.17.7-1'], ['xen-hypervisor-4.17-amd64', '4.17.8-1']]),
]


@pytest.mark.parametrize('packages,facts,key,names,pairs', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fixed_packages(packages, facts, key, names, pairs):
    assert fixed_packages(dict(packages=packages, fixed_build_ids=[]), facts) == dict(distribution=key, names=names, pairs=pairs)


def test_a_fallback_without_packages_gives_none():
    assert fixed_packages({}, dict(os_family='Debian')) == dict(distribution='debian', names=[], pairs=[])


def test_not_a_mapping_is_refused_with_what_was_expected():
    with pytest.raises(AnsibleFilterError, match='expected the fallback mapping'):
        fixed_packages(['debian'], {})
