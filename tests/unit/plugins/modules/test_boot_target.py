# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.boot_target over files laid out as on a Debian dom0 (cases as data)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import os
import re
import struct

import pytest

from ansible_collections.noreboot.xen.plugins.modules import boot_target as boot_target_module
from module_case_harness import run_module
from xen_builds import XEN_4175 as OLD, XEN_4177 as FIXED


HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, '..', 'module_utils', 'grub', 'debian12-xen.cfg')) as _handle:
    DEBIAN_CFG = _handle.read()
DEFAULT_LINE = '   set default="Debian GNU/Linux, with Xen hypervisor"\n'
SEPARATE_BOOT_CFG = "set default=0\nmenuentry 'Xen' {\n multiboot2 /xen-4.17-amd64.gz\n module2 /vmlinuz\n}\n"


def image(build_id):
    desc = bytes.fromhex(build_id)
    notes = struct.pack('<III', 4, len(desc), 3) + b'GNU\0' + desc
    header = b'\x7fELF' + bytes([1, 1, 1]) + b'\0' * 9
    header += struct.pack('<HHIIIIIHHHHHH', 2, 3, 1, 0x200000, 52, 0, 0, 52, 32, 1, 40, 0, 0)
    phdr = struct.pack('<IIIIIIII', 4, 84, 0, 0, len(notes), len(notes), 4, 4)
    return gzip.compress(header + phdr + notes)


CASES = [
    dict(id='default-xen-entry-runs-fixed-build', cfg=DEBIAN_CFG, files={'boot/xen-4.17-amd64.gz': image(FIXED)},
         expected=[FIXED], matches=True, build_id=FIXED, msg='build-id %s: the expected hypervisor' % FIXED),
    dict(id='package-not-updated-yet', cfg=DEBIAN_CFG, files={'boot/xen-4.17-amd64.gz': image(OLD)},
         expected=[FIXED], matches=False, build_id=OLD, msg='a reboot now would not run the fixed hypervisor'),
    dict(id='default-is-plain-linux', cfg=DEBIAN_CFG.replace(DEFAULT_LINE, '   set default="0"\n'),
         files={'boot/xen-4.17-amd64.gz': image(FIXED)}, expected=[FIXED], matches=False, build_id=None,
         msg='loads no multiboot kernel: the next boot does not start Xen'),
    dict(id='saved-entry-points-at-old-xen', cfg=DEBIAN_CFG.replace(DEFAULT_LINE, '   set default="${saved_entry}"\n'),
         grubenv='# GRUB Environment Block\nsaved_entry=3>1>0\n',
         files={'boot/xen-4.17-amd64.gz': image(FIXED), 'boot/xen-4.16-amd64.gz': image(OLD)},
         expected=[FIXED], matches=False, build_id=OLD, msg='/boot/xen-4.16-amd64.gz, build-id %s, not the expected %s' % (OLD, FIXED)),
    dict(id='hypervisor-file-missing', cfg=DEBIAN_CFG, files={}, expected=[FIXED], matches=False, build_id=None,
         msg='whose build-id cannot be read: file not found'),
    dict(id='separate-boot-partition', cfg=SEPARATE_BOOT_CFG, files={'boot/xen-4.17-amd64.gz': image(FIXED)},
         expected=[FIXED.upper()], matches=True, build_id=FIXED, msg='the expected hypervisor'),
    dict(id='nothing-expected-only-reports', cfg=DEBIAN_CFG, files={'boot/xen-4.17-amd64.gz': image(OLD)},
         expected=[], matches=None, build_id=OLD, msg='build-id %s' % OLD),
]


def run(args):
    return run_module(boot_target_module.main, args)


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_boot_target_case(case, tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'boot', 'grub'))
    for rel, data in case['files'].items():
        with open(os.path.join(root, rel), 'wb') as handle:
            handle.write(data)
    with open(os.path.join(root, 'boot', 'grub', 'grub.cfg'), 'w') as handle:
        # grub.cfg paths are absolute on the host: point them at the test's /boot.
        handle.write(re.sub(r'(\s)/boot/', r'\g<1>%s/boot/' % root, case['cfg']))
    if case.get('grubenv'):
        with open(os.path.join(root, 'boot', 'grub', 'grubenv'), 'w') as handle:
            handle.write(case['grubenv'])
    result = run(dict(grub_cfg=os.path.join(root, 'boot', 'grub', 'grub.cfg'),
                      grubenv=os.path.join(root, 'boot', 'grub', 'grubenv'),
                      default_grub=os.path.join(root, 'etc-default-grub'),
                      boot_dir=os.path.join(root, 'boot'), expected_build_ids=case['expected']))
    assert not result.get('failed'), result
    assert result['changed'] is False
    assert result['matches'] == case['matches']
    if case['build_id'] is not None:
        assert result['hypervisor']['build_id'] == case['build_id']
    assert case['msg'] in result['msg'], result['msg']


def test_no_grub_cfg_fails_with_a_fix(tmp_path):
    result = run(dict(grub_cfg=str(tmp_path / 'nope.cfg')))
    assert result['failed'] is True
    assert 'cannot read %s' % (tmp_path / 'nope.cfg') in result['msg']
    assert 'booted by GRUB 2' in result['msg']
