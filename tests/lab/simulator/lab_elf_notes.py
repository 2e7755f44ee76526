# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what Xen reads from a livepatch payload: a small ELF64 reader (standard library only).

The lab simulator reads payload files itself, as the hypervisor does, instead of importing
the collection's own ELF code from plugins/: the simulator must stay independent of what it
tests. Only what the simulator needs is read: section headers and names, section contents,
GNU build-id notes (``.livepatch.xen_depends``, ``.livepatch.depends``, ``.note.gnu.build-id``),
``.modinfo`` (the metadata ``xen-livepatch list`` shows), ``STT_FILE`` symbol names (to know
real Xen test payloads by their source files) and ``.noreboot.lab_effect`` (JSON).
"""

import binascii
import struct

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHT_SYMTAB = 2
STT_FILE = 4
NT_GNU_BUILD_ID = 3
ET_REL = 1
EM_X86_64 = 62


class ElfError(ValueError):
    """The bytes are not an ELF object the hypervisor would accept."""


class ElfSection(object):
    def __init__(self, name, sh_type, flags, offset, size, link, entsize):
        self.name = name
        self.sh_type = sh_type
        self.flags = flags
        self.offset = offset
        self.size = size
        self.link = link
        self.entsize = entsize


class ElfPayload(object):
    """Sections of a relocatable x86-64 ELF object, read from bytes."""

    def __init__(self, data):
        self.data = bytes(data)
        if len(self.data) < 64 or self.data[:4] != b'\x7fELF':
            raise ElfError('not an ELF file')
        if self.data[4] != 2 or self.data[5] != 1:
            raise ElfError('not ELF64 little-endian')
        (self.e_type, self.e_machine, _version, _entry, _phoff, shoff, _flags, _ehsize,
         _phentsize, _phnum, shentsize, shnum, shstrndx) = struct.unpack_from('<HHIQQQIHHHHHH', self.data, 16)
        if shoff == 0 or shnum == 0 or shentsize != 64:
            raise ElfError('no section headers')
        if shoff + shnum * 64 > len(self.data):
            raise ElfError('section headers beyond end of file')
        raw = []
        for i in range(shnum):
            (name_off, sh_type, flags, _addr, offset, size, link, _info, _align,
             entsize) = struct.unpack_from('<IIQQQQIIQQ', self.data, shoff + i * 64)
            if sh_type != 8 and offset + size > len(self.data):  # SHT_NOBITS has no bytes
                raise ElfError('section %d beyond end of file' % i)
            raw.append((name_off, sh_type, flags, offset, size, link, entsize))
        if shstrndx >= shnum:
            raise ElfError('bad section name table index')
        str_off, str_size = raw[shstrndx][3], raw[shstrndx][4]
        strtab = self.data[str_off:str_off + str_size]
        self.sections = []
        for name_off, sh_type, flags, offset, size, link, entsize in raw:
            end = strtab.find(b'\0', name_off)
            name = strtab[name_off:end if end >= 0 else None].decode('utf-8', 'replace')
            self.sections.append(ElfSection(name, sh_type, flags, offset, size, link, entsize))

    def section(self, name):
        """The first section called ``name``, or None."""
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None

    def count(self, name):
        return sum(1 for sec in self.sections if sec.name == name)

    def content(self, name):
        sec = self.section(name)
        if sec is None:
            return None
        if sec.sh_type == 8:
            return b''
        return self.data[sec.offset:sec.offset + sec.size]

    def build_id_note(self, name):
        """Hex descriptor of the GNU build-id note in section ``name``.

        None when the section is absent; raises ElfError when it is not a valid GNU build-id
        note (Xen's xen_build_id_check: type NT_GNU_BUILD_ID, name "GNU", non-empty id).
        """
        raw = self.content(name)
        if raw is None:
            return None
        if len(raw) <= 12:
            raise ElfError('%s too small' % name)
        namesz, descsz, n_type = struct.unpack_from('<III', raw, 0)
        name_end = 12 + ((namesz + 3) & ~3)
        if n_type != NT_GNU_BUILD_ID or namesz != 4 or raw[12:16] != b'GNU\0':
            raise ElfError('%s is not a GNU build-id note' % name)
        if descsz == 0 or name_end + descsz > len(raw):
            raise ElfError('%s has a bad descriptor size' % name)
        return binascii.hexlify(raw[name_end:name_end + descsz]).decode('ascii')

    def modinfo(self):
        """The ``.modinfo`` strings (metadata), or None when the payload has none."""
        raw = self.content('.modinfo')
        if not raw:
            return None
        return raw

    def file_symbols(self):
        """Names of STT_FILE symbols (the source files the payload was built from)."""
        names = []
        for sec in self.sections:
            if sec.sh_type != SHT_SYMTAB or sec.link >= len(self.sections):
                continue
            strsec = self.sections[sec.link]
            strtab = self.data[strsec.offset:strsec.offset + strsec.size]
            for off in range(sec.offset, sec.offset + sec.size - 23, 24):
                st_name, st_info = struct.unpack_from('<IB', self.data, off)
                if st_info & 0xf == STT_FILE and st_name:
                    end = strtab.find(b'\0', st_name)
                    names.append(strtab[st_name:end if end >= 0 else None].decode('utf-8', 'replace'))
        return names

    def writable_alloc_sections(self):
        return [s.name for s in self.sections
                if s.flags & SHF_ALLOC and s.flags & SHF_WRITE and not s.flags & 0x4 and s.size]


def read_payload(path):
    with open(path, 'rb') as handle:
        return ElfPayload(handle.read())
