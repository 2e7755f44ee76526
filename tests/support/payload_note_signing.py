# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sign a livepatch payload the way XenServer's livepatch-build-tools do (test helper).

The steps of ``sign/livepatch-sign`` (CP-50319): add ``.note.Xen.signature`` with a zeroed
signature (objcopy --add-section), sign the whole file (``openssl dgst -sha256 -sign``), then
put the signature into the note (objcopy --update-section keeps the layout). Every tool is
called with an argv list.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct
import subprocess

SECTION = '.note.Xen.signature'


def make_rsa_key(directory, name, bits=2048):
    """``(private_pem, public_pem)`` paths of a new RSA key made by openssl."""
    private = os.path.join(directory, name + '.key.pem')
    public = os.path.join(directory, name + '.pub.pem')
    subprocess.check_call(['openssl', 'genrsa', '-out', private, str(bits)], stderr=subprocess.DEVNULL)
    subprocess.check_call(['openssl', 'rsa', '-in', private, '-pubout', '-out', public], stderr=subprocess.DEVNULL)
    return private, public


def note_bytes(signature, version=1, algorithm=0, digest=0, note_type=0):
    """The note as livepatch-sign packs it (version 1 header, then the signature)."""
    desc = struct.pack('<HBBI', version, algorithm, digest, len(signature)) + signature
    return struct.pack('<III', 4, len(desc), note_type) + b'Xen\0' + desc


def sign_payload(payload, private_key, work_dir, signature_size=256):
    """Add a signature note to ``payload`` in place; return the signature bytes."""
    note = os.path.join(work_dir, 'note.bin')
    with open(note, 'wb') as handle:
        handle.write(note_bytes(b'\0' * signature_size))
    subprocess.check_call(['objcopy', '--add-section', '%s=%s' % (SECTION, note), payload])
    signature = os.path.join(work_dir, 'signature.dat')
    subprocess.check_call(['openssl', 'dgst', '-sha256', '-sign', private_key, '-out', signature, payload])
    with open(signature, 'rb') as handle:
        raw = handle.read()
    assert len(raw) == signature_size, 'an RSA-%d key makes %d-byte signatures' % (signature_size * 8, signature_size)
    with open(note, 'wb') as handle:
        handle.write(note_bytes(raw))
    subprocess.check_call(['objcopy', '--update-section', '%s=%s' % (SECTION, note), payload])
    return raw
