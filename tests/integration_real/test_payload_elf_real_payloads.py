# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""livepatch_payload_elf (and the lifecycle's pre-upload checks) over real Xen test payloads.

The testbed (tests/testbed/) builds Xen's own test payloads (xen/test/livepatch: xen_hello_world,
xen_bye_world, ...) from Debian's Xen source into
``/var/cache/noreboot-xen-testbed/payloads/<version>/`` with a ``manifest.json`` whose
``xen_depends`` values it read with objcopy: an oracle independent of our reader.
Another testbed cache: ``NOREBOOT_XEN_TESTBED_CACHE`` (its ``payloads/``). These tests fail, never skip, when
the cache is missing: run them after the testbed is built.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_payload_elf as elf
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_lifecycle import (
    LivepatchFailure,
    inspect_payload,
)
from xen_builds import BUILD_IDS as DEBIAN_XEN_BUILD_IDS

CACHE = os.path.join(os.environ.get('NOREBOOT_XEN_TESTBED_CACHE', '/var/cache/noreboot-xen-testbed'), 'payloads')
VERSIONS = ('4.17.5', '4.17.7')
WITHOUT_XEN_DEPENDS = 'xen_no_xen_buildid'


def load(version):
    """Return (manifest, {name: reader result}) for one version's payload directory."""
    directory = os.path.join(CACHE, version)
    manifest_path = os.path.join(directory, 'manifest.json')
    assert os.path.isfile(manifest_path), (
        'no real livepatch payloads: %s is missing. Build the testbed first (tests/testbed/), or point '
        'NOREBOOT_XEN_TESTBED_CACHE at a testbed cache whose payloads/<version>/ holds manifest.json and *.livepatch' % manifest_path)
    with open(manifest_path) as handle:
        manifest = json.load(handle)
    assert manifest.get('payloads'), '%s lists no payloads' % manifest_path
    read = dict((name, elf.read_payload(os.path.join(directory, name + '.livepatch')))
                for name in manifest['payloads'])
    return manifest, read


@pytest.mark.parametrize('version', VERSIONS)
def test_reader_agrees_with_the_testbed_manifest(version):
    manifest, read = load(version)
    assert manifest['build_id'] == DEBIAN_XEN_BUILD_IDS[version]
    assert 'xen_hello_world' in read and WITHOUT_XEN_DEPENDS in read
    for name, entry in manifest['payloads'].items():
        info = read[name]
        assert info['sha256'] == entry['sha256'], name
        assert info['size'] == entry['size'], name
        assert info['xen_depends'] == entry['xen_depends'], name
        assert len(info['build_id'] or '') == 40, (name, info['build_id'])
        assert len(info['depends'] or '') == 40, (name, info['depends'])
        assert '.symtab' in info['sections'] and '.strtab' in info['sections'], name
    assert read[WITHOUT_XEN_DEPENDS]['xen_depends'] is None
    assert '.livepatch.xen_depends' not in read[WITHOUT_XEN_DEPENDS]['sections']


@pytest.mark.parametrize('version', VERSIONS)
def test_stacking_ids_match_xen_test_makefile(version):
    """xen_hello_world depends on the hypervisor; xen_bye_world on xen_hello_world's own build-id."""
    manifest, read = load(version)
    hello, bye = read['xen_hello_world'], read['xen_bye_world']
    assert hello['depends'] == hello['xen_depends'] == manifest['build_id']
    assert hello['metadata'] == ['LIVEPATCH_RULEZ']
    assert '.livepatch.funcs' in hello['sections']
    assert bye['depends'] == hello['build_id'] != manifest['build_id']
    own_ids = [info['build_id'] for info in read.values()]
    assert len(own_ids) == len(set(own_ids)), 'two payloads of %s share a build-id' % version


def test_versions_are_built_for_different_hypervisors():
    ids = dict((version, load(version)[1]['xen_hello_world']['xen_depends']) for version in VERSIONS)
    assert ids == DEBIAN_XEN_BUILD_IDS


@pytest.mark.parametrize('version', VERSIONS)
def test_lifecycle_pre_upload_checks_on_real_payloads(version):
    manifest, read = load(version)
    hello = read['xen_hello_world']
    payload = inspect_payload(hello['path'], 'sha256:' + manifest['payloads']['xen_hello_world']['sha256'])
    assert payload['xen_depends'] == manifest['build_id']
    nobid = read[WITHOUT_XEN_DEPENDS]
    with pytest.raises(LivepatchFailure) as err:
        inspect_payload(nobid['path'], nobid['sha256'])
    assert 'has no .livepatch.xen_depends section' in err.value.msg
