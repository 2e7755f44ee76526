# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Forge synthetic, well-formed Xen livepatch payloads (pure Python standard library).

A real payload is a relocatable ELF object built by livepatch-build-tools for exactly one
hypervisor build (docs/misc/livepatch.pandoc). The files written here have the same shape,
so code that reads payloads (plugins/module_utils/livepatch_payload_elf.py) and the lab
simulator (tests/lab/) can be tested without a Xen build:

* ELF64, little-endian, ``EM_X86_64`` (62), ``ET_REL`` (1), no program headers;
* ``.text``: one function body per patched function (``livepatch_<old>``, ``ret``);
* ``.rodata.str1.1``: the names of the patched functions;
* ``.livepatch.funcs``: one ``struct livepatch_func`` per function (104 bytes, payload
  version 2 as in Xen 4.17), with ``.rela.livepatch.funcs`` relocating ``name`` and
  ``new_addr`` as a compiler would;
* ``.livepatch.xen_depends``: a GNU build-id note (``NT_GNU_BUILD_ID``) holding the build-id
  of the hypervisor the payload fits (mandatory, pass ``xen_build_id``);
* ``.livepatch.depends``: a GNU build-id note of what the payload stacks on. Xen 4.17 refuses
  payloads without it; the first payload depends on the hypervisor's build-id, each further
  one on the payload below it. ``depends=None`` (the default) writes the hypervisor's
  build-id (``xen_build_id``), a hex string writes that id, ``depends=False`` leaves the
  section out;
* ``.note.gnu.build-id``: the payload's own build-id note (``build_id``; by default the SHA-1
  of the payload's defining inputs, so the same inputs give the same id);
* ``.modinfo``: the metadata ``xen-livepatch list`` shows (e.g. ``LIVEPATCH_RULEZ``), only
  when ``metadata`` is given;
* any ``extra_sections`` of the caller's choosing, e.g. ``{'.noreboot.lab_effect':
  {'xen_extra': 'Hello World'}}`` (bytes are written as they are, str as UTF-8, anything
  else as compact JSON with sorted keys);
* ``.symtab`` / ``.strtab`` / ``.shstrtab`` as real payloads have.

API::

    from livepatch_payload_forge import forge_payload
    meta = forge_payload('/tmp/hello.livepatch',
                         xen_build_id=XEN_4175,  # tests/support/xen_builds.py
                         metadata='LIVEPATCH_RULEZ',
                         extra_sections={'.noreboot.lab_effect': {'xen_extra': 'Hello World'}})
    meta['build_id'], meta['sha256'], meta['sections']

``data`` (bytes or str) adds a writable ``.data`` section: Xen will not re-apply such a payload
after a revert. ``forge_payload_bytes(...)`` takes the same keywords (without ``path``) and returns
``(data, metadata)`` without writing a file; tests corrupt the bytes to build bad payloads.
``machine`` and ``elf_type`` may be changed to forge wrong-machine or ``ET_EXEC`` files, and
``xen_build_id=None`` leaves out ``.livepatch.xen_depends``.

CLI (prints the metadata as JSON)::

    python3 tests/support/livepatch_payload_forge.py \\
        --xen-build-id $XEN_4175 \\
        [--build-id HEX] [--depends HEX | --no-depends] [--metadata LIVEPATCH_RULEZ] [--func xen_extra_version] \\
        [--extra-section .noreboot.lab_effect='{"xen_extra": "Hello World"}'] \\
        -o xen_hello_world.livepatch
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import binascii
import hashlib
import json
import os
import struct
import sys

ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ET_REL = 1
ET_EXEC = 2
EM_X86_64 = 62
EM_AARCH64 = 183

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_NOTE = 7

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_MERGE = 0x10
SHF_STRINGS = 0x20
SHF_INFO_LINK = 0x40

STB_LOCAL = 0
STB_GLOBAL = 1
STT_NOTYPE = 0
STT_FUNC = 2
STT_SECTION = 3
STT_FILE = 4
SHN_ABS = 0xfff1

R_X86_64_64 = 1
NT_GNU_BUILD_ID = 3

ELF_HEADER_SIZE = 64
SECTION_HEADER_SIZE = 64
SYMBOL_SIZE = 24
RELA_SIZE = 24

# struct livepatch_func (xen/include/public/sysctl.h, payload version 2, Xen 4.17):
# name, new_addr, old_addr (pointers), new_size, old_size (u32), version (u8), opaque[31],
# applied (u8), _pad[7], livepatch_expectation_t expect (enabled/len/rsv bit fields in one
# byte, data[31]) = 104 bytes.
LIVEPATCH_PAYLOAD_VERSION = 2
LIVEPATCH_FUNC_SIZE = 104

DEFAULT_FUNCS = ('xen_extra_version',)


class ForgeError(ValueError):
    """Bad arguments to the forge (not a bad payload: the forge only writes good ones)."""


def _build_id_bytes(value, what):
    if isinstance(value, bytes):
        raw = value
    else:
        text = str(value).strip().lower()
        try:
            raw = binascii.unhexlify(text)
        except (binascii.Error, TypeError, ValueError):
            raise ForgeError('%s must be a hex string, got %r' % (what, value))
    if not raw:
        raise ForgeError('%s must not be empty' % what)
    return raw


def _hex(raw):
    return binascii.hexlify(raw).decode('ascii')


def _pad(data, align):
    if align <= 1:
        return data
    return data + b'\0' * ((-len(data)) % align)


def gnu_build_id_note(raw):
    """Return an ELF note (``GNU``, ``NT_GNU_BUILD_ID``) whose descriptor is ``raw``."""
    name = b'GNU\0'
    return struct.pack('<III', len(name), len(raw), NT_GNU_BUILD_ID) + _pad(name, 4) + _pad(raw, 4)


def _section_bytes(value):
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode('utf-8')
    return json.dumps(value, sort_keys=True, separators=(',', ':')).encode('utf-8')


class _StrTab(object):
    def __init__(self):
        self.data = b'\0'
        self._index = {'': 0}

    def add(self, text):
        if text not in self._index:
            self._index[text] = len(self.data)
            self.data += text.encode('utf-8') + b'\0'
        return self._index[text]


class _Section(object):
    def __init__(self, name, sh_type, data=b'', flags=0, align=1, entsize=0, link=0, info=0):
        self.name = name
        self.sh_type = sh_type
        self.data = data
        self.flags = flags
        self.align = align
        self.entsize = entsize
        self.link = link
        self.info = info
        self.offset = 0
        self.name_offset = 0


def forge_payload_bytes(xen_build_id, build_id=None, depends=None, extra_sections=None,
                        funcs=DEFAULT_FUNCS, metadata=None, machine=EM_X86_64, elf_type=ET_REL, data=None,
                        source_file='livepatch_payload.c'):
    """Build a payload in memory; return ``(data, metadata_dict)``. See the module docstring.

    ``source_file`` is the name of the payload's ``STT_FILE`` symbol (the C file it was built
    from, e.g. ``xen_nop.c`` for a stand-in of Xen's test payload).
    """
    funcs = list(funcs or ())
    if not funcs:
        raise ForgeError('a payload patches at least one function')
    xen_raw = _build_id_bytes(xen_build_id, 'xen_build_id') if xen_build_id is not None else None
    if depends is None:
        dep_raw = xen_raw
    elif depends is False:
        dep_raw = None
    else:
        dep_raw = _build_id_bytes(depends, 'depends')
    extra = []
    for name in sorted(extra_sections or {}):
        if not name or '\0' in name:
            raise ForgeError('bad extra section name %r' % name)
        extra.append((name, _section_bytes((extra_sections or {})[name])))
    if build_id is None:
        digest = hashlib.sha1()
        for part in (xen_raw or b'-', dep_raw or b'-', '\0'.join(funcs).encode('utf-8'),
                     (metadata or '').encode('utf-8')):
            digest.update(part + b'\n')
        for name, data in extra:
            digest.update(name.encode('utf-8') + b'=' + data + b'\n')
        own_raw = digest.digest()
    else:
        own_raw = _build_id_bytes(build_id, 'build_id')

    # .text: one tiny function per patched function (endbr64; ret; padded to 16 bytes).
    body = b'\xf3\x0f\x1e\xfa\xc3'
    text = b''
    func_offsets = []
    for dummy in funcs:
        func_offsets.append(len(text))
        text += _pad(body, 16)
    # .rodata.str1.1: the old function names.
    rodata = b''
    name_offsets = []
    for func in funcs:
        name_offsets.append(len(rodata))
        rodata += func.encode('utf-8') + b'\0'
    # .livepatch.funcs: name/new_addr filled by relocations, old_addr resolved by Xen by name.
    funcs_data = b''
    for dummy in funcs:
        entry = struct.pack('<QQQII', 0, 0, 0, len(body), len(body))
        entry += struct.pack('<B', LIVEPATCH_PAYLOAD_VERSION) + b'\0' * 31  # version, opaque
        entry += b'\0' + b'\0' * 7  # applied, _pad
        entry += b'\0' * 32  # expect
        assert len(entry) == LIVEPATCH_FUNC_SIZE
        funcs_data += entry

    sections = [_Section('', SHT_NULL)]

    def add(section):
        sections.append(section)
        return len(sections) - 1

    i_text = add(_Section('.text', SHT_PROGBITS, text, SHF_ALLOC | SHF_EXECINSTR, 16))
    i_rodata = add(_Section('.rodata.str1.1', SHT_PROGBITS, rodata,
                            SHF_ALLOC | SHF_MERGE | SHF_STRINGS, 1, entsize=1))
    i_funcs = add(_Section('.livepatch.funcs', SHT_PROGBITS, funcs_data, SHF_ALLOC | SHF_WRITE, 8))
    rela = add(_Section('.rela.livepatch.funcs', SHT_RELA, b'', SHF_INFO_LINK, 8,
                        entsize=RELA_SIZE, info=i_funcs))
    if xen_raw is not None:
        add(_Section('.livepatch.xen_depends', SHT_PROGBITS, gnu_build_id_note(xen_raw), SHF_ALLOC, 4))
    if dep_raw is not None:
        add(_Section('.livepatch.depends', SHT_PROGBITS, gnu_build_id_note(dep_raw), SHF_ALLOC, 4))
    add(_Section('.note.gnu.build-id', SHT_NOTE, gnu_build_id_note(own_raw), SHF_ALLOC, 4))
    if data is not None:
        add(_Section('.data', SHT_PROGBITS, _section_bytes(data), SHF_ALLOC | SHF_WRITE, 8))
    if metadata is not None:
        add(_Section('.modinfo', SHT_PROGBITS, metadata.encode('utf-8') + b'\0', SHF_ALLOC, 1))
    for name, data in extra:
        add(_Section(name, SHT_PROGBITS, data, 0, 1))
    i_symtab = add(_Section('.symtab', SHT_SYMTAB, b'', 0, 8, entsize=SYMBOL_SIZE))
    i_strtab = add(_Section('.strtab', SHT_STRTAB, b'', 0, 1))
    i_shstrtab = add(_Section('.shstrtab', SHT_STRTAB, b'', 0, 1))

    # Symbols: null, file, one section symbol per allocated section we reference, then the
    # global new functions.
    strtab = _StrTab()
    symbols = [struct.pack('<IBBHQQ', 0, 0, 0, 0, 0, 0)]

    def sym(name, bind, sym_type, shndx, value=0, size=0):
        symbols.append(struct.pack('<IBBHQQ', strtab.add(name) if name else 0,
                                   (bind << 4) | sym_type, 0, shndx, value, size))
        return len(symbols) - 1

    sym(source_file, STB_LOCAL, STT_FILE, SHN_ABS)
    section_sym = {}
    for index in (i_text, i_rodata, i_funcs):
        section_sym[index] = sym(None, STB_LOCAL, STT_SECTION, index)
    first_global = len(symbols)
    new_func_syms = [sym('livepatch_' + func, STB_GLOBAL, STT_FUNC, i_text, off, len(body))
                     for func, off in zip(funcs, func_offsets)]
    sections[i_symtab].data = b''.join(symbols)
    sections[i_symtab].link = i_strtab
    sections[i_symtab].info = first_global
    sections[i_strtab].data = strtab.data

    relocs = b''
    for n, (name_off, new_sym) in enumerate(zip(name_offsets, new_func_syms)):
        base = n * LIVEPATCH_FUNC_SIZE
        relocs += struct.pack('<QQq', base + 0, (section_sym[i_rodata] << 32) | R_X86_64_64, name_off)
        relocs += struct.pack('<QQq', base + 8, (new_sym << 32) | R_X86_64_64, 0)
    sections[rela].data = relocs
    sections[rela].link = i_symtab

    shstrtab = _StrTab()
    for section in sections[1:]:
        section.name_offset = shstrtab.add(section.name)
    sections[i_shstrtab].data = shstrtab.data

    body_bytes = b''
    offset = ELF_HEADER_SIZE
    for section in sections[1:]:
        gap = (-offset) % max(section.align, 1)
        body_bytes += b'\0' * gap
        offset += gap
        section.offset = offset
        body_bytes += section.data
        offset += len(section.data)
    gap = (-offset) % 8
    body_bytes += b'\0' * gap
    shoff = offset + gap

    ident = b'\x7fELF' + struct.pack('<BBBBB', ELFCLASS64, ELFDATA2LSB, EV_CURRENT, 0, 0) + b'\0' * 7
    header = ident + struct.pack('<HHIQQQIHHHHHH', elf_type, machine, EV_CURRENT, 0, 0, shoff, 0,
                                 ELF_HEADER_SIZE, 0, 0, SECTION_HEADER_SIZE, len(sections), i_shstrtab)
    headers = b''
    for section in sections:
        if section.sh_type == SHT_NULL:
            headers += b'\0' * SECTION_HEADER_SIZE
            continue
        headers += struct.pack('<IIQQQQIIQQ', section.name_offset, section.sh_type, section.flags, 0,
                               section.offset, len(section.data), section.link, section.info,
                               section.align, section.entsize)
    data = header + body_bytes + headers

    meta = dict(
        build_id=_hex(own_raw),
        xen_depends=_hex(xen_raw) if xen_raw is not None else None,
        depends=_hex(dep_raw) if dep_raw is not None else None,
        funcs=funcs,
        metadata=metadata,
        sections=[s.name for s in sections[1:]],
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    return data, meta


def forge_payload(path, xen_build_id, build_id=None, depends=None, extra_sections=None, **kwargs):
    """Write a payload to ``path``; return its metadata.

    Metadata keys: ``path``, ``name`` (file base name without its last extension, the name
    ``xen-livepatch load`` would give it), ``build_id``, ``xen_depends``, ``depends``,
    ``funcs``, ``metadata``, ``sections`` (names in file order), ``sha256``, ``size``.
    Other keywords: ``funcs``, ``metadata``, ``machine``, ``elf_type``, ``data``, ``source_file``.
    """
    data, meta = forge_payload_bytes(xen_build_id, build_id=build_id, depends=depends,
                                     extra_sections=extra_sections, **kwargs)
    with open(path, 'wb') as handle:
        handle.write(data)
    base = os.path.basename(path)
    meta['path'] = str(path)
    meta['name'] = base.rsplit('.', 1)[0] if '.' in base else base
    return meta


def _parse_extra(items):
    result = {}
    for item in items or ():
        if '=' not in item:
            raise ForgeError('--extra-section wants NAME=TEXT, got %r' % item)
        name, text = item.split('=', 1)
        result[name] = text
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description='Forge a synthetic Xen livepatch payload (ELF ET_REL x86-64).')
    parser.add_argument('--xen-build-id', required=True, help='build-id of the hypervisor the payload fits (hex)')
    parser.add_argument('--build-id', help="the payload's own build-id (hex; default: derived from the inputs)")
    parser.add_argument('--depends', help='build-id the payload stacks on (hex; .livepatch.depends; '
                                          'default: the hypervisor build-id)')
    parser.add_argument('--no-depends', action='store_true', help='leave out .livepatch.depends')
    parser.add_argument('--no-xen-depends', action='store_true', help='leave out .livepatch.xen_depends')
    parser.add_argument('--metadata', help='.modinfo text shown by xen-livepatch list (e.g. LIVEPATCH_RULEZ)')
    parser.add_argument('--func', action='append', help='name of a patched function (repeatable)')
    parser.add_argument('--extra-section', action='append', metavar='NAME=TEXT',
                        help='add a section NAME holding TEXT (repeatable)')
    parser.add_argument('-o', '--output', required=True, help='file to write')
    args = parser.parse_args(argv)
    try:
        meta = forge_payload(args.output, None if args.no_xen_depends else args.xen_build_id,
                             build_id=args.build_id, depends=False if args.no_depends else args.depends,
                             extra_sections=_parse_extra(args.extra_section),
                             funcs=args.func or DEFAULT_FUNCS, metadata=args.metadata)
    except ForgeError as exc:
        parser.error(str(exc))
    json.dump(meta, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
