# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Payload files for the lab and the contract test.

Real payloads (built by the testbed from Xen's own xen/test/livepatch, for the real Debian
builds) are taken from the testbed cache when it exists; otherwise payloads of the same names
and build-id relations are forged with tests/support/livepatch_payload_forge.py (the shared
forge; this file does not write ELF itself).
"""

import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'support'))

from livepatch_payload_forge import forge_payload  # noqa: E402

REAL_PAYLOAD_CACHE = os.path.join(os.environ.get('NOREBOOT_XEN_TESTBED_CACHE', '/var/cache/noreboot-xen-testbed'), 'payloads')

# Xen's test payloads: (depends on, metadata). 'hypervisor' = the build-id of the hypervisor.
XEN_TEST_PAYLOADS = {
    'xen_hello_world': ('hypervisor', 'LIVEPATCH_RULEZ'),
    'xen_bye_world': ('xen_hello_world', None),
    'xen_replace_world': ('hypervisor', None),
    'xen_expectations': ('hypervisor', None),
    'xen_expectations_fail': ('hypervisor', None),
    'xen_prepost_hooks': ('hypervisor', None),
    'xen_prepost_hooks_fail': ('hypervisor', None),
    'xen_action_hooks': ('hypervisor', None),
    'xen_action_hooks_marker': ('hypervisor', None),
    'xen_action_hooks_nofunc': ('hypervisor', None),
    'xen_action_hooks_noapply': ('hypervisor', None),
    'xen_action_hooks_norevert': ('hypervisor', None),
    'xen_nop': ('hypervisor', None),
    'xen_no_xen_buildid': ('hypervisor', None),
}


def forged_build_id(version, name):
    return hashlib.sha1(('noreboot-lab:%s:%s' % (version, name)).encode('utf-8')).hexdigest()


def real_payload(version, name):
    path = os.path.join(REAL_PAYLOAD_CACHE, version, name + '.livepatch')
    return path if os.path.isfile(path) else None


def forge_xen_test_payload(path, version, xen_build_id, name):
    """A forged stand-in for Xen's test payload ``name`` built for (version, xen_build_id)."""
    depends, metadata = XEN_TEST_PAYLOADS[name]
    dep_id = xen_build_id if depends == 'hypervisor' else forged_build_id(version, depends)
    return forge_payload(path, xen_build_id=None if name == 'xen_no_xen_buildid' else xen_build_id,
                         build_id=forged_build_id(version, name), depends=dep_id, metadata=metadata)


def forge_lab_payload(path, xen_build_id, effect, build_id=None, depends=None, metadata=None):
    """A synthetic payload whose visible effect the simulator reads from .noreboot.lab_effect."""
    return forge_payload(path, xen_build_id=xen_build_id, build_id=build_id, depends=depends,
                         metadata=metadata, extra_sections={'.noreboot.lab_effect': effect})
