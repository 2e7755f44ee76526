# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a Xen livepatch payload without binutils (pure Python, no AnsibleModule).

A payload is a relocatable ELF object (docs/misc/livepatch.pandoc). Before a payload goes
anywhere near the hypervisor we check here that it is an ELF64 little-endian x86-64 ``ET_REL``
object whose section headers all lie inside the file, and read:

* ``.note.gnu.build-id``: the payload's own build-id;
* ``.livepatch.xen_depends``: the build-id of the hypervisor the payload was built for;
* ``.livepatch.depends``: the build-id of what it stacks on (the hypervisor for the first
  payload, the payload below it otherwise);
* ``.modinfo``: the metadata ``xen-livepatch list`` shows (e.g. ``LIVEPATCH_RULEZ``);
* the section list and the file's SHA-256.

Every problem raises ``PayloadError`` whose message names the problem (truncated file, not an
ELF file, wrong machine, not relocatable, bad section header, bad build-id note, more than
``MAX_SECTIONS`` sections, a section name longer than ``MAX_SECTION_NAME`` bytes, a file larger
than ``MAX_PAYLOAD_SIZE``). The bounds keep what a hostile file can make us hold to a small
multiple of its size.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import hashlib
import struct

XEN_DEPENDS_SECTION = '.livepatch.xen_depends'
DEPENDS_SECTION = '.livepatch.depends'
BUILD_ID_SECTION = '.note.gnu.build-id'
FUNCS_SECTION = '.livepatch.funcs'
MODINFO_SECTION = '.modinfo'

ELF_MAGIC = b'\x7fELF'
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2
ET_REL = 1
EM_X86_64 = 62
SHT_STRTAB = 3
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHN_UNDEF = 0
SHN_LORESERVE = 0xff00
SHN_XINDEX = 0xffff
NT_GNU_BUILD_ID = 3

ELF64_EHDR_SIZE = 64
ELF64_SHDR_SIZE = 64
# Bounds on what a payload may make us read or hold (issue 13 item 6: without them, N section
# headers naming one long string cost N times its length). Real payloads are kilobytes with tens
# of sections named like .text.do_domctl or .rela.livepatch.funcs; Xen refuses an upload larger
# than 2 MiB. Every limit is also bounded by the file: the section header table must lie in it.
MAX_PAYLOAD_SIZE = 8 * 1024 * 1024
MAX_SECTIONS = 8192
MAX_SECTION_NAME = 1024

ELF_TYPES = {0: 'ET_NONE (no file type)', 1: 'ET_REL (relocatable object)', 2: 'ET_EXEC (executable)',
             3: 'ET_DYN (shared object or position-independent executable)', 4: 'ET_CORE (core dump)'}
MACHINES = {3: 'x86 (i386)', 40: 'ARM', 62: 'x86-64', 183: 'AArch64 (arm64)', 243: 'RISC-V'}


class PayloadError(ValueError):
    """The file is not a livepatch payload we can read; ``problem`` says why."""

    def __init__(self, problem, source=None):
        msg = '%s: %s' % (source, problem) if source else problem
        super(PayloadError, self).__init__(msg)
        self.problem = problem
        self.source = source
        self.msg = msg


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk_size=1024 * 1024):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def parse_gnu_build_id_note(data, section_name='note'):
    """Return the hex build-id of the first note in ``data``, which must be a GNU build-id.

    Xen reads exactly the first note of ``.livepatch.depends`` / ``.livepatch.xen_depends`` /
    ``.note.gnu.build-id`` and wants type ``NT_GNU_BUILD_ID`` with a non-empty descriptor.
    """
    if len(data) < 12:
        raise PayloadError('section %s is %d bytes, too short for an ELF note (at least 12)'
                           % (section_name, len(data)))
    namesz, descsz, note_type = struct.unpack_from('<III', data, 0)
    name_end = 12 + namesz
    desc_start = 12 + namesz + ((-namesz) % 4)
    if name_end > len(data) or desc_start + descsz > len(data):
        raise PayloadError('section %s holds a truncated note (name %d bytes, descriptor %d bytes, '
                           'section %d bytes)' % (section_name, namesz, descsz, len(data)))
    name = data[12:name_end].rstrip(b'\0')
    if name != b'GNU' or note_type != NT_GNU_BUILD_ID:
        raise PayloadError('section %s is not a GNU build-id note (owner %r, type %d; expected GNU, type %d)'
                           % (section_name, name.decode('latin-1'), note_type, NT_GNU_BUILD_ID))
    if descsz == 0:
        raise PayloadError('section %s holds an empty build-id' % section_name)
    return binascii.hexlify(data[desc_start:desc_start + descsz]).decode('ascii')


def _cstring(table, offset, what):
    """The NUL-terminated name at ``offset``; at most MAX_SECTION_NAME bytes are looked at."""
    if offset >= len(table):
        raise PayloadError('%s name offset %d lies outside the section name table (%d bytes)'
                           % (what, offset, len(table)))
    end = table.find(b'\0', offset, offset + MAX_SECTION_NAME + 1)
    if end < 0:
        if offset + MAX_SECTION_NAME + 1 <= len(table):
            raise PayloadError('%s name at offset %d is longer than %d bytes; a livepatch payload\'s section '
                               'names are short, so this is not a payload we read' % (what, offset, MAX_SECTION_NAME))
        raise PayloadError('%s name at offset %d is not NUL-terminated' % (what, offset))
    return table[offset:end].decode('utf-8', 'replace')


def _check_header(data):
    size = len(data)
    if size < 4 or data[:4] != ELF_MAGIC:
        start = binascii.hexlify(data[:4]).decode('ascii') or 'empty file'
        raise PayloadError('not an ELF file (the first bytes are %s, not 7f454c46 "\\x7fELF")' % start)
    if size < 16:
        raise PayloadError('truncated ELF file: %d bytes, the ELF identification alone is 16' % size)
    ei_class, ei_data = data[4], data[5]
    if not isinstance(ei_class, int):  # Python 2 bytes
        ei_class, ei_data = ord(ei_class), ord(ei_data)
    if ei_class != ELFCLASS64:
        raise PayloadError('ELF class %s, expected ELF64 (a 64-bit x86-64 payload)'
                           % ('ELF32' if ei_class == ELFCLASS32 else ei_class))
    if ei_data != ELFDATA2LSB:
        raise PayloadError('ELF data encoding %s, expected little-endian'
                           % ('big-endian' if ei_data == ELFDATA2MSB else ei_data))
    if size < ELF64_EHDR_SIZE:
        raise PayloadError('truncated ELF file: %d bytes, shorter than the 64-byte ELF64 header' % size)
    (e_type, e_machine, _version, _entry, _phoff, e_shoff, _flags, _ehsize, _phentsize, _phnum,
     e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from('<HHIQQQIHHHHHH', data, 16)
    if e_type != ET_REL:
        raise PayloadError('ELF type %s, expected ET_REL (a relocatable object, as livepatch payloads are)'
                           % ELF_TYPES.get(e_type, e_type))
    if e_machine != EM_X86_64:
        raise PayloadError('ELF machine %s (%d), expected x86-64 (62)' % (MACHINES.get(e_machine, 'unknown'), e_machine))
    if e_shoff == 0:
        raise PayloadError('the ELF file has no section header table')
    if e_shentsize != ELF64_SHDR_SIZE:
        raise PayloadError('section header entry size %d, expected %d' % (e_shentsize, ELF64_SHDR_SIZE))
    return e_shoff, e_shnum, e_shstrndx


def _read_section_headers(data, e_shoff, e_shnum, e_shstrndx):
    size = len(data)
    if e_shoff + ELF64_SHDR_SIZE > size:
        raise PayloadError('truncated ELF file: the section header table starts at offset %d, '
                           'past the end of the file (%d bytes)' % (e_shoff, size))
    first = struct.unpack_from('<IIQQQQIIQQ', data, e_shoff)
    # Extended numbering: counts too big for the ELF header live in section 0.
    count = e_shnum if e_shnum else first[5]
    strndx = e_shstrndx if e_shstrndx != SHN_XINDEX else first[6]
    if count == 0:
        raise PayloadError('the ELF file has no sections')
    if count > MAX_SECTIONS:
        raise PayloadError('the ELF file declares %d sections, more than the %d a livepatch payload could have '
                           '(real payloads have tens)' % (count, MAX_SECTIONS))
    table_end = e_shoff + count * ELF64_SHDR_SIZE
    if table_end > size:
        raise PayloadError('truncated ELF file: the section header table (%d headers) ends at offset %d, '
                           'past the end of the file (%d bytes)' % (count, table_end, size))
    if strndx == SHN_UNDEF or strndx >= count:
        raise PayloadError('section name table index %d is not a valid section (there are %d)' % (strndx, count))
    headers = []
    for index in range(count):
        (sh_name, sh_type, sh_flags, _addr, sh_offset, sh_size, sh_link, sh_info, sh_addralign,
         sh_entsize) = struct.unpack_from('<IIQQQQIIQQ', data, e_shoff + index * ELF64_SHDR_SIZE)
        if index and sh_type != SHT_NOBITS and sh_offset + sh_size > size:
            raise PayloadError('truncated or corrupt ELF file: section %d (offset %d, %d bytes) extends past '
                               'the end of the file (%d bytes)' % (index, sh_offset, sh_size, size))
        headers.append(dict(index=index, name_offset=sh_name, type=sh_type, flags=sh_flags, offset=sh_offset,
                            size=sh_size, link=sh_link, info=sh_info, addralign=sh_addralign, entsize=sh_entsize))
    names = headers[strndx]
    if names['type'] != SHT_STRTAB:
        raise PayloadError('section name table (section %d) has type %d, not SHT_STRTAB (%d)'
                           % (strndx, names['type'], SHT_STRTAB))
    name_table = data[names['offset']:names['offset'] + names['size']]
    sections = []
    # Sections may share a name (a linker merges suffixes): decode each offset once, keep one copy.
    decoded = {}
    for header in headers[1:]:
        offset = header['name_offset']
        if offset not in decoded:
            decoded[offset] = _cstring(name_table, offset, 'section %d' % header['index'])
        header['name'] = decoded[offset]
        sections.append(header)
    return sections


def read_sections(data, source=None):
    """The checked section headers of the payload in ``data`` (dicts: name, type, offset, size, ...).

    Raises PayloadError like ``parse_payload_bytes``; used by readers of further sections
    (e.g. livepatch_signature_note.py) so that every section is bounds-checked in one place.
    """
    try:
        e_shoff, e_shnum, e_shstrndx = _check_header(data)
        return _read_section_headers(data, e_shoff, e_shnum, e_shstrndx)
    except PayloadError as exc:
        if source and not exc.source:
            raise PayloadError(exc.problem, source)
        raise
    except struct.error as exc:  # defensive: every read is bounds-checked first
        raise PayloadError('corrupt ELF file (%s)' % exc, source)


def parse_payload_bytes(data, source=None, sha256=None):
    """Check and read a payload held in memory; return a dict (see ``read_payload``).

    ``sha256``: the caller's hash of ``data`` when it has one already (not computed twice)."""
    try:
        e_shoff, e_shnum, e_shstrndx = _check_header(data)
        sections = _read_section_headers(data, e_shoff, e_shnum, e_shstrndx)
        by_name = {}
        for section in sections:
            by_name.setdefault(section['name'], []).append(section)

        def note(name):
            found = by_name.get(name)
            if not found:
                return None
            if len(found) > 1:
                raise PayloadError('section %s appears %d times' % (name, len(found)))
            section = found[0]
            if section['type'] == SHT_NOBITS:
                raise PayloadError('section %s has no contents in the file (SHT_NOBITS)' % name)
            return parse_gnu_build_id_note(data[section['offset']:section['offset'] + section['size']], name)

        metadata = None
        if by_name.get(MODINFO_SECTION):
            section = by_name[MODINFO_SECTION][0]
            raw = data[section['offset']:section['offset'] + section['size']]
            metadata = [part.decode('utf-8', 'replace') for part in raw.split(b'\0') if part]
        result = dict(
            build_id=note(BUILD_ID_SECTION),
            xen_depends=note(XEN_DEPENDS_SECTION),
            depends=note(DEPENDS_SECTION),
            metadata=metadata,
            has_funcs=bool(by_name.get(FUNCS_SECTION)),
            # Xen re-applies a reverted payload only when .livepatch.funcs is its one writable section.
            writable_sections=[s['name'] for s in sections
                               if s['flags'] & (SHF_WRITE | SHF_ALLOC) == (SHF_WRITE | SHF_ALLOC) and s['size']],
            sections=[s['name'] for s in sections],
            sha256=sha256 or sha256_bytes(data),
            size=len(data),
        )
    except PayloadError as exc:
        if source and not exc.source:
            raise PayloadError(exc.problem, source)
        raise
    except struct.error as exc:  # defensive: every read above is bounds-checked first
        raise PayloadError('corrupt ELF file (%s)' % exc, source)
    return result


def read_payload(path, max_size=MAX_PAYLOAD_SIZE):
    """Read the payload at ``path``; return a dict.

    Keys: ``path``, ``build_id`` (own, ``.note.gnu.build-id``), ``xen_depends``, ``depends``
    (hex strings, None when the section is absent), ``metadata`` (list of ``.modinfo``
    strings or None), ``has_funcs``, ``writable_sections`` (allocated, writable, non-empty),
    ``sections`` (names in header order), ``sha256``,
    ``size``. Raises PayloadError (OSError problems included) naming the problem.
    """
    try:
        with open(path, 'rb') as handle:
            data = handle.read(max_size + 1)
    except (IOError, OSError) as exc:
        raise PayloadError('cannot read the file (%s)' % (exc.strerror or exc), path)
    if len(data) > max_size:
        raise PayloadError('file is larger than %d bytes, far more than a livepatch payload (Xen refuses '
                           'uploads over 2 MiB)' % max_size, path)
    result = parse_payload_bytes(data, source=path)
    result['path'] = path
    return result
