# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""livepatch_signature_note over real Xen test payloads signed as livepatch-build-tools sign them.

Uses the testbed's payload cache (see test_payload_elf_real_payloads.py); fails, never skips,
when it is missing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_payload_elf as elf
from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_signature_note as note

import payload_note_signing as signing

CACHE = os.path.join(os.environ.get('NOREBOOT_XEN_TESTBED_CACHE', '/var/cache/noreboot-xen-testbed'), 'payloads')


@pytest.mark.parametrize('version', ('4.17.5', '4.17.7'))
def test_real_payload_signed_verifies_and_a_flipped_byte_is_refused(tmp_path, version):
    source = os.path.join(CACHE, version, 'xen_hello_world.livepatch')
    assert os.path.isfile(source), 'no real payload at %s: build the testbed first (tests/testbed/)' % source
    private, public = signing.make_rsa_key(str(tmp_path), 'signer')
    path = str(tmp_path / 'xen_hello_world.livepatch')
    shutil.copyfile(source, path)
    before = elf.read_payload(source)
    signing.sign_payload(path, private, str(tmp_path))
    after = elf.read_payload(path)
    assert after['xen_depends'] == before['xen_depends'] and after['build_id'] == before['build_id']
    assert note.check_payload_file(path, [public])['status'] == 'verified'
    with open(path, 'r+b') as handle:
        handle.seek(note.find_signature_note(handle.read())['file_offset'])
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x80]))
    assert note.check_payload_file(path, [public])['status'] == 'refused'
