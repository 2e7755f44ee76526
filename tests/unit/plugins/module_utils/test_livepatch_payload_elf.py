# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""livepatch_payload_elf over forged payloads and hand-corrupted ones."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import struct

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_payload_elf as elf
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import PayloadError
from xen_builds import XEN_4175, XEN_4177

import livepatch_payload_forge as forge

OWN = 'aa' * 20
BELOW = 'bb' * 20


def forged(**kwargs):
    kwargs.setdefault('xen_build_id', XEN_4175)
    return forge.forge_payload_bytes(**kwargs)


def test_forged_payload_reads_back_all_ids_and_sections():
    data, meta = forged(build_id=OWN, depends=BELOW, metadata='LIVEPATCH_RULEZ',
                        extra_sections={'.noreboot.lab_effect': {'xen_extra': 'Hello World'}})
    info = elf.parse_payload_bytes(data)
    assert info['build_id'] == OWN
    assert info['xen_depends'] == XEN_4175
    assert info['depends'] == BELOW
    assert info['metadata'] == ['LIVEPATCH_RULEZ']
    assert info['has_funcs'] is True
    assert info['sections'] == meta['sections']
    assert '.noreboot.lab_effect' in info['sections']
    assert info['sha256'] == hashlib.sha256(data).hexdigest() == meta['sha256']
    assert info['size'] == len(data)


def test_forge_defaults_depends_to_the_hypervisor_and_derives_a_stable_build_id():
    data1, meta1 = forged()
    data2, meta2 = forged()
    dummy, other = forged(funcs=['do_domctl'])
    assert data1 == data2
    assert meta1['build_id'] == meta2['build_id'] != other['build_id']
    info = elf.parse_payload_bytes(data1)
    assert info['depends'] == XEN_4175
    assert info['build_id'] == meta1['build_id']
    assert info['metadata'] is None


def test_forge_can_leave_out_depends_and_xen_depends():
    info = elf.parse_payload_bytes(forged(depends=False)[0])
    assert info['depends'] is None and info['xen_depends'] == XEN_4175
    info = elf.parse_payload_bytes(forged(xen_build_id=None)[0])
    assert info['xen_depends'] is None
    assert elf.XEN_DEPENDS_SECTION not in info['sections']


def test_forge_extra_section_bytes_written_verbatim(tmp_path):
    path = tmp_path / 'xen_hello_world.livepatch'
    meta = forge.forge_payload(str(path), XEN_4177, extra_sections={'.noreboot.lab_effect': b'\x01\x02'})
    assert meta['name'] == 'xen_hello_world'
    data = path.read_bytes()
    assert meta['sha256'] == hashlib.sha256(data).hexdigest()
    assert elf.read_payload(str(path))['xen_depends'] == XEN_4177
    assert b'\x01\x02' in data


def test_forge_cli_writes_file_and_prints_metadata(tmp_path, capsys):
    out = tmp_path / 'p.livepatch'
    assert forge.main(['--xen-build-id', XEN_4177, '--depends', BELOW, '--metadata', 'M',
                       '--extra-section', '.noreboot.lab_effect={"xen_extra": "Bye World!"}', '-o', str(out)]) == 0
    assert '"depends": "%s"' % BELOW in capsys.readouterr().out
    info = elf.read_payload(str(out))
    assert (info['xen_depends'], info['depends'], info['metadata']) == (XEN_4177, BELOW, ['M'])


def test_read_payload_missing_file_names_the_path(tmp_path):
    with pytest.raises(PayloadError) as err:
        elf.read_payload(str(tmp_path / 'nope.livepatch'))
    assert 'nope.livepatch' in str(err.value) and 'cannot read' in str(err.value)


def _patch_header(data, fmt, offset, value):
    data = bytearray(data)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize('mangle, problem', [
    (lambda d: b'', 'not an ELF file'),
    (lambda d: b'#!/bin/sh\necho hello\n', 'not an ELF file'),
    (lambda d: b'{"xen_extra": "Hello"}', 'not an ELF file'),
    (lambda d: d[:10], 'truncated ELF file'),
    (lambda d: d[:40], 'shorter than the 64-byte ELF64 header'),
    (lambda d: d[:200], 'truncated ELF file: the section header table'),
    (lambda d: d[:-10], 'truncated ELF file: the section header table'),
    (lambda d: d[:4] + b'\x01' + d[5:], 'ELF class ELF32'),
    (lambda d: d[:5] + b'\x02' + d[6:], 'big-endian'),
    (lambda d: _patch_header(d, '<H', 16, 2), 'ELF type ET_EXEC (executable), expected ET_REL'),
    (lambda d: _patch_header(d, '<H', 16, 3), 'ET_DYN'),
    (lambda d: _patch_header(d, '<H', 18, 183), 'ELF machine AArch64 (arm64) (183), expected x86-64 (62)'),
    (lambda d: _patch_header(d, '<Q', 40, 0), 'no section header table'),
    (lambda d: _patch_header(d, '<H', 58, 40), 'section header entry size 40'),
    (lambda d: _patch_header(d, '<H', 62, 200), 'section name table index 200'),
])
def test_corrupted_payloads_raise_a_named_problem(mangle, problem):
    data = forged()[0]
    with pytest.raises(PayloadError) as err:
        elf.parse_payload_bytes(mangle(data), source='/srv/p.livepatch')
    assert problem in str(err.value)
    assert str(err.value).startswith('/srv/p.livepatch: ')


def _section_header_offset(data, name):
    e_shoff = struct.unpack_from('<Q', data, 40)[0]
    shnum = struct.unpack_from('<H', data, 60)[0]
    strndx = struct.unpack_from('<H', data, 62)[0]
    names_off, names_size = struct.unpack_from('<QQ', data, e_shoff + strndx * 64 + 24)
    table = data[names_off:names_off + names_size]
    for index in range(shnum):
        base = e_shoff + index * 64
        name_off = struct.unpack_from('<I', data, base)[0]
        if table[name_off:table.index(b'\0', name_off)].decode() == name:
            return base
    raise AssertionError(name)


def test_section_past_end_of_file_is_reported():
    data = forged()[0]
    base = _section_header_offset(data, '.livepatch.funcs')
    bad = _patch_header(data, '<Q', base + 32, 10 ** 6)  # sh_size
    with pytest.raises(PayloadError) as err:
        elf.parse_payload_bytes(bad)
    assert 'extends past the end of the file' in str(err.value)


def test_xen_depends_that_is_not_a_build_id_note_is_reported():
    data = forged()[0]
    base = _section_header_offset(data, elf.XEN_DEPENDS_SECTION)
    offset = struct.unpack_from('<Q', data, base + 24)[0]
    bad = _patch_header(data, '<I', offset + 8, 1)  # note type NT_GNU_ABI_TAG
    with pytest.raises(PayloadError) as err:
        elf.parse_payload_bytes(bad)
    assert 'section .livepatch.xen_depends is not a GNU build-id note' in str(err.value)
    bad = _patch_header(data, '<Q', base + 32, 8)  # sh_size too small for a note
    with pytest.raises(PayloadError) as err:
        elf.parse_payload_bytes(bad)
    assert 'too short for an ELF note' in str(err.value)
    bad = _patch_header(data, '<I', offset + 4, 400)  # descsz past the section
    with pytest.raises(PayloadError) as err:
        elf.parse_payload_bytes(bad)
    assert 'truncated note' in str(err.value)


def test_parse_gnu_build_id_note_round_trip():
    raw = bytes(bytearray(range(20)))
    assert elf.parse_gnu_build_id_note(forge.gnu_build_id_note(raw)) == raw.hex()
    with pytest.raises(PayloadError, match='empty build-id'):
        elf.parse_gnu_build_id_note(struct.pack('<III', 4, 0, 3) + b'GNU\0')


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(b'x' * 3000000)
    assert elf.sha256_file(str(path), chunk_size=65536) == hashlib.sha256(b'x' * 3000000).hexdigest()


def test_oversized_file_refused(tmp_path):
    path = tmp_path / 'big.livepatch'
    path.write_bytes(b'\x7fELF' + b'\0' * 2000)
    with pytest.raises(PayloadError, match='larger than 1000 bytes'):
        elf.read_payload(str(path), max_size=1000)


def test_writable_sections_listed_for_the_reapply_rule():
    assert elf.parse_payload_bytes(forged()[0])['writable_sections'] == ['.livepatch.funcs']
    info = elf.parse_payload_bytes(forged(data=b'\0' * 8)[0])
    assert info['writable_sections'] == ['.livepatch.funcs', '.data']
