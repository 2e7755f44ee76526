# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xen_image_build_id: the build-id note of an installed hypervisor image.

Images are built here in the layout of Debian's /boot/xen-4.17-amd64.gz (gzip of an ELF32
executable whose PT_NOTE segment / .note section holds the GNU build-id, possibly after other
notes). Debian's own images are read in tests/integration_real/test_xen_image_build_id_real.py,
after the testbed has built them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import struct

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.xen_image_build_id import (
    ImageError,
    build_id_of_image,
    read_image_build_id,
)
from xen_builds import XEN_4177 as FIXED


def pad(data):
    return data + b'\0' * ((-len(data)) % 4)


def note(name, note_type, desc):
    name_bytes = name + b'\0'
    return struct.pack('<III', len(name_bytes), len(desc), note_type) + pad(name_bytes) + pad(desc)


def elf32(notes, with_phdr=True, with_section=True):
    """An ELF32 executable: header, one PT_NOTE program header, the notes, a section table."""
    ehdr_size, phdr_size, shdr_size = 52, 32, 40
    notes_off = ehdr_size + phdr_size
    shoff = notes_off + len(notes)
    phnum = 1 if with_phdr else 0
    shnum = 2 if with_section else 0
    header = b'\x7fELF' + bytes([1, 1, 1]) + b'\0' * 9
    header += struct.pack('<HHIIIIIHHHHHH', 2, 3, 1, 0x200000, ehdr_size if phnum else 0, shoff if shnum else 0, 0,
                          ehdr_size, phdr_size, phnum, shdr_size, shnum, 0)
    phdr = struct.pack('<IIIIIIII', 4, notes_off, 0, 0, len(notes), len(notes), 4, 4) if phnum else b'\0' * phdr_size
    shdrs = b''
    if shnum:
        shdrs = b'\0' * shdr_size + struct.pack('<IIIIIIIIII', 0, 7, 0, 0, notes_off, len(notes), 0, 0, 4, 0)
    return header + phdr + notes + shdrs


def elf64_with_section(notes):
    shoff = 64 + len(notes)
    header = b'\x7fELF' + bytes([2, 1, 1]) + b'\0' * 9
    header += struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, 2, 0)
    shdrs = b'\0' * 64 + struct.pack('<IIQQQQIIQQ', 0, 7, 0, 0, 64, len(notes), 0, 0, 4, 0)
    return header + notes + shdrs


XEN_NOTE = note(b'Xen', 18, struct.pack('<I', 0x100000))
GNU = note(b'GNU', 3, bytes.fromhex(FIXED))


@pytest.mark.parametrize('data', [
    gzip.compress(elf32(GNU)),
    gzip.compress(elf32(XEN_NOTE + GNU)),          # the build-id is not the first note
    gzip.compress(elf32(XEN_NOTE + GNU, with_phdr=False)),
    gzip.compress(elf32(XEN_NOTE + GNU, with_section=False)),
    elf32(GNU),                                    # already uncompressed (what QEMU's -kernel takes)
    gzip.compress(elf64_with_section(XEN_NOTE + GNU)),
], ids=['gz-elf32', 'gz-elf32-second-note', 'section-only', 'segment-only', 'plain-elf32', 'gz-elf64'])
def test_build_id(data):
    assert build_id_of_image(data) == FIXED


@pytest.mark.parametrize('data,message', [
    (gzip.compress(elf32(XEN_NOTE)), 'no GNU build-id note'),
    (b'MZ\x90\x00' + b'\0' * 100, 'not an ELF file'),
    (gzip.compress(elf32(GNU))[:40], 'corrupt gzip'),
    (gzip.compress(elf32(note(b'GNU', 3, b''))), 'empty build-id'),
], ids=['no-build-id', 'efi-pe-image', 'truncated-gzip', 'empty-build-id'])
def test_errors(data, message):
    with pytest.raises(ImageError, match=message):
        build_id_of_image(data)


def test_read_names_the_file(tmp_path):
    path = tmp_path / 'xen-4.17-amd64.gz'
    path.write_bytes(gzip.compress(elf32(XEN_NOTE)))
    with pytest.raises(ImageError, match=str(path)):
        read_image_build_id(str(path))
    with pytest.raises(ImageError, match='cannot read'):
        read_image_build_id(str(tmp_path / 'missing.gz'))
