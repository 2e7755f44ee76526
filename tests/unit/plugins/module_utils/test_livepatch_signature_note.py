# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""livepatch_signature_note over payloads signed with openssl and objcopy as livepatch-build-tools do."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import subprocess

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_signature_note as note
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import read_payload, read_sections
from xen_builds import XEN_4177

import livepatch_payload_forge as forge
import payload_note_signing as signing


@pytest.fixture(scope='module')
def rsa_keys(tmp_path_factory):
    base = str(tmp_path_factory.mktemp('rsa'))
    return dict(signer=signing.make_rsa_key(base, 'signer'), other=signing.make_rsa_key(base, 'other'))


@pytest.fixture
def signed(tmp_path, rsa_keys):
    """A forged payload signed by ``signer``: (path, signature bytes)."""
    path = str(tmp_path / 'xsa999.livepatch')
    forge.forge_payload(path, xen_build_id=XEN_4177, metadata='LIVEPATCH_RULEZ')
    signature = signing.sign_payload(path, rsa_keys['signer'][0], str(tmp_path))
    return path, signature


def flip(path, offset):
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def key_id(public_pem):
    der = subprocess.check_output(['openssl', 'pkey', '-pubin', '-in', public_pem, '-outform', 'DER'])
    return 'sha256:' + hashlib.sha256(der).hexdigest()


def test_good_signature_is_verified_and_names_the_key(signed, rsa_keys, tmp_path):
    path, signature = signed
    public = rsa_keys['signer'][1]
    result = note.check_payload_file(path, [rsa_keys['other'][1], public], name='xsa999.livepatch')
    assert result['status'] == 'verified' and result['refused'] is False
    assert result['key_file'] == public
    assert result['key_id'] == key_id(public)
    assert (result['version'], result['algorithm'], result['hash']) == (1, 'rsa', 'sha256')
    # Independent oracle: openssl verifies the signature over the file with the signature bytes zeroed.
    data = read(path)
    found = note.find_signature_note(data)
    assert found['signature'] == signature
    zeroed = tmp_path / 'zeroed'
    zeroed.write_bytes(note.signed_bytes(data, found))
    sig = tmp_path / 'sig'
    sig.write_bytes(signature)
    out = subprocess.check_output(['openssl', 'dgst', '-sha256', '-verify', public, '-signature', str(sig), str(zeroed)])
    assert b'Verified OK' in out
    # The signed payload is still a payload the ELF reader accepts.
    assert note.SIGNATURE_SECTION in read_payload(path)['sections']


def test_one_flipped_signature_byte_is_refused_naming_file_and_key(signed, rsa_keys):
    path, dummy = signed
    found = note.find_signature_note(read(path))
    flip(path, found['file_offset'] + 17)
    result = note.check_payload_file(path, [rsa_keys['signer'][1]], name='xsa999.livepatch')
    assert result['status'] == 'refused' and result['refused'] is True
    assert 'xsa999.livepatch' in result['reason'] and rsa_keys['signer'][1] in result['reason']
    assert key_id(rsa_keys['signer'][1]) in result['reason']


def test_one_flipped_payload_byte_is_refused(signed, rsa_keys):
    path, dummy = signed
    data = read(path)
    text = [s for s in read_sections(data) if s['name'] == '.text'][0]
    flip(path, text['offset'])
    result = note.check_payload_file(path, [rsa_keys['signer'][1]], name='xsa999.livepatch')
    assert result['status'] == 'refused'
    assert 'does not verify' in result['reason']


def test_signature_by_an_unknown_key_is_refused(signed, rsa_keys):
    path, dummy = signed
    result = note.check_payload_file(path, [rsa_keys['other'][1]], name='xsa999.livepatch')
    assert result['status'] == 'refused'
    assert rsa_keys['other'][1] in result['reason']


def test_payload_without_a_note_is_reported_absent_not_refused(tmp_path, rsa_keys):
    path = str(tmp_path / 'plain.livepatch')
    forge.forge_payload(path, xen_build_id=XEN_4177)
    result = note.check_payload_file(path, [rsa_keys['signer'][1]], name='plain.livepatch')
    assert (result['status'], result['refused']) == ('absent', False)
    required = note.check_payload_file(path, [rsa_keys['signer'][1]], name='plain.livepatch', require=True)
    assert (required['status'], required['refused']) == ('absent', True)
    assert 'plain.livepatch' in required['reason']


def test_note_without_configured_keys_is_not_checked(signed):
    path, dummy = signed
    result = note.check_payload_file(path, [], name='xsa999.livepatch')
    assert (result['status'], result['refused']) == ('not_checked', False)


@pytest.mark.parametrize('kwargs, problem', [
    (dict(version=2), 'signature version 2'),
    (dict(algorithm=1), 'algorithm 1'),
    (dict(digest=3), 'hash 3'),
    (dict(note_type=0x10001), 'type 65537'),
])
def test_unknown_note_layouts_are_refused_by_the_parser(kwargs, problem):
    with pytest.raises(note.SignatureNoteError, match=problem):
        note.parse_signature_note(signing.note_bytes(b'\1' * 256, **kwargs))


def test_signature_length_past_the_descriptor_is_refused():
    raw = bytearray(signing.note_bytes(b'\1' * 256))
    raw[20:24] = (300).to_bytes(4, 'little')
    with pytest.raises(note.SignatureNoteError, match='signature length 300'):
        note.parse_signature_note(bytes(raw))


def test_malformed_note_in_a_payload_is_refused_not_crashed(tmp_path, rsa_keys):
    path = str(tmp_path / 'bad.livepatch')
    forge.forge_payload(path, xen_build_id=XEN_4177)
    bad = tmp_path / 'note.bin'
    bad.write_bytes(signing.note_bytes(b'\1' * 256, version=7))
    subprocess.check_call(['objcopy', '--add-section', '%s=%s' % (note.SIGNATURE_SECTION, bad), path])
    result = note.check_payload_file(path, [rsa_keys['signer'][1]], name='bad.livepatch')
    assert result['status'] == 'refused' and 'signature version 7' in result['reason']


def test_key_file_that_is_no_key_is_a_configuration_error(signed, tmp_path):
    path, dummy = signed
    junk = tmp_path / 'junk.pem'
    junk.write_text(u'not a key\n')
    with pytest.raises(note.SignatureNoteError, match='junk.pem is not a PEM public key'):
        note.check_payload_file(path, [str(junk)])
