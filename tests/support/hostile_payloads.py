# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile "payloads": small ELF files shaped to make a naive reader use unbounded memory.

Each is a valid ELF64 little-endian x86-64 ET_REL header with a section header table that
lies inside the file, so a reader gets past the header checks (issue 13 item 6). Used by the
unit tests (tests/unit/plugins/module_utils/test_livepatch_payload_elf_bounds.py) and by the
benchmark tests/tools/bench_payload_elf_hostile.py.

* ``shared_long_name``: N sections whose names all start at offset 0 of one long,
  NUL-terminated string: a reader that decodes each name holds N copies of it
  (N x len bytes: 1.5 MiB on disk, ~9 GiB decoded).
* ``suffix_names``: N sections whose names start at N different offsets of one long string
  (each a suffix of the one before), so caching names by offset does not help.
* ``many_short_names``: as many sections as the file size allows, each with a short name.
* ``short_suffix_names``: the worst a reader that bounds names to 1 KiB and sections to 8192
  must still decode: 8000 sections, each name starting at its own offset of blocks of 1023
  bytes (about 4 MiB of names from a 0.5 MiB file). It has no build-id notes, so it is not a
  payload, but the ELF reader alone may read it.

The first two keep below 8000 sections, so a reader's bound on the section count does not
hide a missing bound on name lengths.

Pure standard library.
"""

import struct

SHT_PROGBITS = 1
SHT_STRTAB = 3
ET_REL = 1
EM_X86_64 = 62
EHDR_SIZE = 64
SHDR_SIZE = 64
SHN_LORESERVE = 0xff00
MIB = 1024 * 1024
SECTIONS = 8000


def _elf(headers, blob):
    """ELF header, then ``blob`` (the section name table), then the section header table.

    ``headers`` are ``(sh_name, sh_type, sh_offset, sh_size)`` for sections 1..; section 1
    must be the name table (its offset is filled in here).
    """
    count = len(headers) + 1
    names_offset = EHDR_SIZE
    shoff = names_offset + len(blob)
    shoff += (-shoff) % 8
    e_shnum = count if count < SHN_LORESERVE else 0
    ident = b'\x7fELF' + bytes([2, 1, 1, 0]) + b'\0' * 8
    out = bytearray(ident + struct.pack('<HHIQQQIHHHHHH', ET_REL, EM_X86_64, 1, 0, 0, shoff, 0,
                                        EHDR_SIZE, 0, 0, SHDR_SIZE, e_shnum, 1))
    out += blob
    out += b'\0' * (shoff - len(out))
    # Section 0; with extended numbering it carries the count in sh_size.
    out += struct.pack('<IIQQQQIIQQ', 0, 0, 0, 0, 0, count if not e_shnum else 0, 0, 0, 0, 0)
    for sh_name, sh_type, sh_offset, sh_size in headers:
        out += struct.pack('<IIQQQQIIQQ', sh_name, sh_type, 0, 0, sh_offset, sh_size, 0, 0, 1, 0)
    return bytes(out)


def _names_header(blob):
    return (0, SHT_STRTAB, EHDR_SIZE, len(blob))


def shared_long_name(size=int(1.5 * MIB)):
    """About ``size`` bytes: half a name table holding one long name, half section headers all naming it."""
    name_len = size // 2
    count = (size - name_len - EHDR_SIZE) // SHDR_SIZE - 2
    count = min(count, SECTIONS)
    blob = b'A' * name_len + b'\0'
    return _elf([_names_header(blob)] + [(0, SHT_PROGBITS, 0, 0)] * count, blob)


def suffix_names(size=int(1.5 * MIB)):
    """About ``size`` bytes: each section's name starts one byte further into one long name."""
    name_len = size // 2
    count = (size - name_len - EHDR_SIZE) // SHDR_SIZE - 2
    count = min(count, SECTIONS, name_len)
    blob = b'B' * name_len + b'\0'
    return _elf([_names_header(blob)] + [(index, SHT_PROGBITS, 0, 0) for index in range(count)], blob)


def many_short_names(size=int(1.5 * MIB)):
    """About ``size`` bytes: as many section headers as fit, each with its own short name."""
    count = min((size - EHDR_SIZE) // (SHDR_SIZE + 16), SHN_LORESERVE - 3)
    blob = bytearray(b'\0')
    headers = []
    for index in range(count):
        headers.append((len(blob), SHT_PROGBITS, 0, 0))
        blob += ('.text.f%07d' % index).encode('ascii') + b'\0'
    blob = bytes(blob)
    return _elf([_names_header(blob)] + headers, blob)


def short_suffix_names(size=None):
    """About 0.5 MiB (``size`` is ignored): SECTIONS sections, each named from its own offset of 1023-byte names."""
    block = b'C' * 1023 + b'\0'
    blob = block * (SECTIONS // 1023 + 1)
    headers = [(index + index // 1023, SHT_PROGBITS, 0, 0) for index in range(SECTIONS)]
    return _elf([_names_header(blob)] + headers, blob)


SHAPES = {
    'shared_long_name': shared_long_name,
    'suffix_names': suffix_names,
    'many_short_names': many_short_names,
    'short_suffix_names': short_suffix_names,
}
# The shapes the ELF reader itself must refuse (the others it may read; the host and the
# controller then refuse them as payloads without build-id notes).
READER_REFUSES = ('shared_long_name', 'suffix_names', 'many_short_names')
