# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GNU build-id of an installed Xen hypervisor image (``/boot/xen-*.gz``), pure Python.

Debian's ``/boot/xen-4.17-amd64.gz`` is a gzip-compressed ELF **32**-bit executable (mkelf32
of xen-syms) whose build-id note sits in a ``.note`` section (a ``PT_NOTE`` segment), next to
other notes. The payload reader of livepatch_payload_elf.py does not fit as a whole: it
accepts only ELF64 relocatable objects and looks for named sections (``.note.gnu.build-id``).
What it does fit is decoding one GNU build-id note, which is reused here
(``parse_gnu_build_id_note``); walking the notes of an ELF32/ELF64 executable is done here.

The build-id read this way is the one ``xl info`` reports once that hypervisor runs (checked
against Debian's 4.17.5 and 4.17.7 images: 39a640e6... and 151b373f...).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import io
import struct

from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import (
    PayloadError,
    parse_gnu_build_id_note,
)

ELF_MAGIC = b'\x7fELF'
GZIP_MAGIC = b'\x1f\x8b'
PT_NOTE = 4
SHT_NOTE = 7
NT_GNU_BUILD_ID = 3
# A hypervisor image is a few MB; refuse to inflate anything absurd.
MAX_IMAGE_SIZE = 64 * 1024 * 1024


class ImageError(ValueError):
    """The file is not a hypervisor image whose build-id can be read; the message says why."""


def decompress(data, max_size=MAX_IMAGE_SIZE):
    """The ELF bytes of ``data``: gunzipped when it is gzip, as is when it is ELF already."""
    if data[:2] == GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
                raw = handle.read(max_size + 1)
        except (IOError, OSError, EOFError) as exc:
            raise ImageError('corrupt gzip data (%s)' % exc)
        if len(raw) > max_size:
            raise ImageError('inflates to more than %d bytes: not a hypervisor image' % max_size)
        return raw
    return data


def _notes(blob):
    """Yield ``(name, type, raw_note_bytes)`` for each note of a note area."""
    offset = 0
    while offset + 12 <= len(blob):
        namesz, descsz, note_type = struct.unpack_from('<III', blob, offset)
        name_start = offset + 12
        desc_start = name_start + namesz + ((-namesz) % 4)
        end = desc_start + descsz + ((-descsz) % 4)
        if desc_start + descsz > len(blob):
            return
        name = blob[name_start:name_start + namesz].rstrip(b'\0')
        yield name, note_type, blob[offset:desc_start + descsz]
        offset = end


def _note_areas(data):
    """(offset, size) of each PT_NOTE segment and SHT_NOTE section of an ELF32/ELF64 file."""
    if data[:4] != ELF_MAGIC:
        raise ImageError('not an ELF file (first bytes %r)' % data[:4])
    if len(data) < 52:
        raise ImageError('truncated ELF header (%d bytes)' % len(data))
    elf_class = bytearray(data[4:5])[0]
    if bytearray(data[5:6])[0] != 1:
        raise ImageError('not a little-endian ELF file')
    areas = []
    if elf_class == 1:
        e_phoff, e_shoff = struct.unpack_from('<II', data, 28)
        e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from('<HHHH', data, 42)
        for index in range(e_phnum):
            base = e_phoff + index * e_phentsize
            if base + 32 > len(data):
                break
            p_type, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from('<IIIII', data, base)
            if p_type == PT_NOTE:
                areas.append((p_offset, p_filesz))
        for index in range(e_shnum):
            base = e_shoff + index * e_shentsize
            if base + 40 > len(data):
                break
            _name, sh_type, _flags, _addr, sh_offset, sh_size = struct.unpack_from('<IIIIII', data, base)
            if sh_type == SHT_NOTE:
                areas.append((sh_offset, sh_size))
    elif elf_class == 2:
        if len(data) < 64:
            raise ImageError('truncated ELF64 header (%d bytes)' % len(data))
        e_phoff, e_shoff = struct.unpack_from('<QQ', data, 32)
        e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from('<HHHH', data, 54)
        for index in range(e_phnum):
            base = e_phoff + index * e_phentsize
            if base + 56 > len(data):
                break
            p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from('<IIQQQQ', data, base)
            if p_type == PT_NOTE:
                areas.append((p_offset, p_filesz))
        for index in range(e_shnum):
            base = e_shoff + index * e_shentsize
            if base + 64 > len(data):
                break
            _name, sh_type, _flags, _addr, sh_offset, sh_size = struct.unpack_from('<IIQQQQ', data, base)
            if sh_type == SHT_NOTE:
                areas.append((sh_offset, sh_size))
    else:
        raise ImageError('unknown ELF class %d' % elf_class)
    return [(o, s) for o, s in areas if s and o + s <= len(data)]


def build_id_of_elf(data):
    """The hex GNU build-id of an ELF image in memory; ImageError when it has none."""
    for offset, size in _note_areas(data):
        for name, note_type, raw in _notes(data[offset:offset + size]):
            if name == b'GNU' and note_type == NT_GNU_BUILD_ID:
                try:
                    return parse_gnu_build_id_note(raw, 'note')
                except PayloadError as exc:
                    raise ImageError(str(exc))
    raise ImageError('no GNU build-id note in the ELF file')


def build_id_of_image(data):
    """The hex build-id of a hypervisor image (gzip or plain ELF bytes)."""
    return build_id_of_elf(decompress(data))


def read_image_build_id(path, max_size=MAX_IMAGE_SIZE):
    """Read ``path`` and return its build-id; ImageError naming the file on any problem."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read(max_size + 1)
    except (IOError, OSError) as exc:
        raise ImageError('%s: cannot read (%s)' % (path, getattr(exc, 'strerror', None) or exc))
    if len(data) > max_size:
        raise ImageError('%s: larger than %d bytes: not a hypervisor image' % (path, max_size))
    try:
        return build_id_of_image(data)
    except ImageError as exc:
        raise ImageError('%s: %s' % (path, exc))
