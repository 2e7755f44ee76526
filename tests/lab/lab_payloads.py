# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Payload files for the lab and the contract test.

Real payloads (built by the testbed from Xen's own xen/test/livepatch, for the real Debian
builds) are taken from the testbed cache when it exists; otherwise payloads of the same names
and build-id relations are forged with tests/support/livepatch_payload_forge.py (the shared
forge; this file does not write ELF itself). A forged test payload names the C file of the
real one in its STT_FILE symbol (``xen_nop.c``), so the simulator gives it the real one's
effect whatever the file is called on the host (``xen_nop`` crashes the hypervisor).

``write_build_payloads`` fills one build's payload directory of the lab
(``<lab root>/payloads/<build_id>/``): every payload of XEN_TEST_PAYLOADS, ``lab_xsa_fix``
and a ``BUILD`` file.
"""

import hashlib
import os
import shutil
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
                         build_id=forged_build_id(version, name), depends=dep_id, metadata=metadata,
                         source_file=name + '.c')


def write_build_payloads(outdir, build, real_build=True):
    """Write every payload of one lab build to ``outdir``; return ``{file name: 'real'|'forged'}``.

    ``build`` is a lab build (``version``, ``build_id``, ``extra``). Xen's test payloads
    (XEN_TEST_PAYLOADS, the crashing ``xen_nop`` included) are the testbed's real ones when
    ``real_build`` (the build is a real Debian one) and the cache holds the whole set for its
    version (a mixed set would break the build-id chain bye -> hello); forged ones otherwise,
    so the lab works on a machine without the testbed cache. Then ``lab_xsa_fix``, a synthetic
    security fix whose effect is ``xen_extra: <extra>-lp1``, and ``BUILD`` (version, build-id).
    """
    if not os.path.isdir(outdir):
        os.makedirs(outdir)
    reals = dict((name, real_payload(build['version'], name)) for name in XEN_TEST_PAYLOADS)
    use_real = real_build and all(reals.values())
    made = {}
    for name in sorted(XEN_TEST_PAYLOADS):
        dest = os.path.join(outdir, name + '.livepatch')
        if use_real:
            shutil.copyfile(reals[name], dest)
        else:
            forge_xen_test_payload(dest, build['version'] + '-' + build['build_id'][:8], build['build_id'], name)
        made[os.path.basename(dest)] = 'real' if use_real else 'forged'
    fix = 'lab_xsa_fix'
    forge_lab_payload(os.path.join(outdir, fix + '.livepatch'), build['build_id'], {'xen_extra': build['extra'] + '-lp1'},
                      build_id=forged_build_id(build['build_id'], fix), metadata='LAB_XSA_FIX')
    made[fix + '.livepatch'] = 'forged'
    with open(os.path.join(outdir, 'BUILD'), 'w') as handle:
        handle.write('%s %s\n' % (build['version'], build['build_id']))
    return made


def forge_lab_payload(path, xen_build_id, effect, build_id=None, depends=None, metadata=None):
    """A synthetic payload whose visible effect the simulator reads from .noreboot.lab_effect."""
    return forge_payload(path, xen_build_id=xen_build_id, build_id=build_id, depends=depends,
                         metadata=metadata, extra_sections={'.noreboot.lab_effect': effect})
