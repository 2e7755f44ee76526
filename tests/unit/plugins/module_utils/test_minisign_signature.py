# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""minisign keys and signatures read and verified in Python, checked against Debian's minisign:
key ids as minisign prints them, strict parsing, hostile input, and never accepting what minisign refuses."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import random
import re

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import minisign_signature as ms

# The session fixture ``minisign_keys`` (tests/unit/plugins/conftest.py) holds the throwaway keys.


@pytest.fixture
def signed(tmp_path, minisign_keys):
    """A file signed by ``signer`` (prehashed, minisign's default): ``(path, data, .minisig bytes)``."""
    path = tmp_path / 'sha256sum.txt'
    path.write_bytes(b'%s  xsa-999.yml\n' % (b'0' * 64))
    minisign_keys.minisign('-S', '-s', minisign_keys.secret['signer'], '-m', str(path))
    return str(path), path.read_bytes(), (tmp_path / 'sha256sum.txt.minisig').read_bytes()


def public_key(minisign_keys, name='signer'):
    with open(minisign_keys.files[name], 'rb') as handle:
        return ms.parse_public_key(handle.read(), minisign_keys.files[name])


def test_key_id_is_the_one_minisign_prints_for_keys_and_signatures(tmp_path, minisign_keys, signed):
    path, dummy, dummy = signed
    assert public_key(minisign_keys).key_id_text == minisign_keys.key_ids['signer']
    # Verifying with another key makes minisign print both ids: "Signature key id in F is X / but the key id in the public key is Y".
    rc, dummy, err = minisign_keys.verify(path, 'stranger')
    assert rc != 0
    # (minisign prints ids without leading zeros: about 1 key in 16 has fewer than 16 digits there)
    printed = [found.zfill(16) for found in re.findall(r'(?:is|the public key is) ([0-9A-F]{1,16})$', err, re.MULTILINE)]
    assert printed == [minisign_keys.key_ids['signer'], minisign_keys.key_ids['stranger']]
    with open(path + '.minisig', 'rb') as handle:
        assert ms.parse_signature(handle.read()).key_id_text == printed[0]


def test_key_id_text_is_the_little_endian_number():
    assert ms.key_id_text(b'\x74\xfc\x47\x7f\xda\x07\xb1\x4e') == '4EB107DA7F47FC74'
    assert ms.key_id_text(b'\x01' + b'\x00' * 7) == '0000000000000001'


def test_verify_reports_key_algorithm_comment_and_time(minisign_keys, signed):
    dummy, data, signature = signed
    result = ms.verify(ms.parse_signature(signature), data, [public_key(minisign_keys, 'stranger'), public_key(minisign_keys)])
    assert result['key_id'] == minisign_keys.key_ids['signer']
    assert result['algorithm'] == 'prehashed'
    assert result['trusted_comment'] == signature.split(b'\n')[2][len(b'trusted comment: '):].decode()
    assert result['timestamp'] == int(re.search(r'timestamp:(\d+)', result['trusted_comment']).group(1))


def test_signature_file_with_crlf_line_ends_verifies_as_minisign_reads_it(minisign_keys, signed):
    dummy, data, signature = signed
    assert ms.verify(ms.parse_signature(signature.replace(b'\n', b'\r\n')), data, [public_key(minisign_keys)])['key_id']


@pytest.mark.parametrize('change,message', [
    (lambda s: b'', 'has 1 line(s), 4 expected'),
    (lambda s: b'\n'.join(s.split(b'\n')[:3]), 'has 3 line(s), 4 expected'),
    (lambda s: s + b'extra\n', 'more than 4 lines'),
    (lambda s: s.replace(b'untrusted comment: ', b'untrusted: '), 'line 1 (the untrusted comment) does not start with'),
    (lambda s: _line(s, 3, lambda l: b'T' + l[1:]), 'line 3 (the trusted comment) does not start with'),
    (lambda s: s.replace(b'timestamp:', b'time\x01stamp:'), 'line 3 (the trusted comment) holds control characters'),
    (lambda s: s.replace(b'timestamp:', b'time\xc2\x85stamp:'), 'line 3 (the trusted comment) holds control characters'),
    (lambda s: s.replace(b'timestamp:', b'time\xffstamp:'), 'line 3 (the trusted comment) is not UTF-8 text'),
    (lambda s: s.replace(b'timestamp:', b'time\rstamp:'), 'carriage return'),
    (lambda s: s.replace(b'timestamp:', b'time\x00stamp:'), 'NUL byte'),
    (lambda s: _line(s, 2, lambda l: l[:-1]), 'line 2 (the signature) is not base64'),
    (lambda s: _line(s, 2, lambda l: l[:10] + b'!' + l[11:]), 'line 2 (the signature) is not base64'),
    (lambda s: _line(s, 2, lambda l: base64.b64encode(base64.b64decode(l)[:-1])), 'decodes to 73 bytes, 74 expected'),
    (lambda s: _line(s, 2, lambda l: base64.b64encode(b'Xx' + base64.b64decode(l)[2:])), 'unsupported signature algorithm'),
    (lambda s: _line(s, 4, lambda l: base64.b64encode(base64.b64decode(l) + b'\0')), 'line 4 (the global signature) decodes to 65'),
    (lambda s: _line(s, 4, lambda l: b'=' + l[1:]), 'line 4 (the global signature) is not base64'),
    (lambda s: _line(s, 4, lambda l: l[:-3] + b'B=='), 'line 4 (the global signature) is not base64 in canonical form'),
    (lambda s: _line(s, 3, lambda l: l + b'x' * 2 * ms.TRUSTED_COMMENT_MAX), 'too large for a minisign signature file'),
    (lambda s: _line(s, 3, lambda l: l + b'x' * (ms.TRUSTED_COMMENT_MAX - len(l) - 1)), 'longer than minisign allows'),
    (lambda s: _line(s, 1, lambda l: l + b'x' * ms.COMMENT_MAX), 'line 1 (the untrusted comment) is longer than minisign allows'),
])
def test_malformed_signature_files_are_refused_saying_what_is_wrong(signed, change, message):
    dummy, dummy, signature = signed
    with pytest.raises(ms.MinisignError) as caught:
        ms.parse_signature(change(signature))
    assert message in str(caught.value)


def _line(data, number, change):
    lines = data.split(b'\n')
    lines[number - 1] = change(lines[number - 1])
    return b'\n'.join(lines)


@pytest.mark.parametrize('change,message', [
    (lambda k: k.split(b'\n')[0], 'has 1 line(s), 2 expected'),
    (lambda k: k + b'RWQ\n', 'more than 2 lines'),
    (lambda k: _line(k, 2, lambda l: l[:-1]), 'line 2 (the key) is not base64'),
    (lambda k: _line(k, 2, lambda l: base64.b64encode(base64.b64decode(l)[:-3])), 'decodes to 39 bytes, 42 expected'),
    (lambda k: _line(k, 2, lambda l: base64.b64encode(b'ED' + base64.b64decode(l)[2:])), 'unsupported key algorithm'),
    (lambda k: k + b'x' * ms.MAX_PUBLIC_KEY_FILE, 'too large'),
])
def test_malformed_public_key_files_are_refused_saying_what_is_wrong(minisign_keys, change, message):
    with open(minisign_keys.files['signer'], 'rb') as handle:
        key = handle.read()
    with pytest.raises(ms.MinisignError) as caught:
        ms.parse_public_key(change(key))
    assert message in str(caught.value)


def test_public_key_file_is_recognised_by_its_first_line(minisign_keys):
    with open(minisign_keys.files['signer'], 'rb') as handle:
        assert ms.looks_like_public_key(handle.read())
    assert not ms.looks_like_public_key(b'-----BEGIN PGP PUBLIC KEY BLOCK-----\n')
    assert not ms.looks_like_public_key(b'\x99\x01\x0d')  # a binary OpenPGP key


def _mutate(rng, data):
    kind = rng.randrange(7)
    at = rng.randrange(len(data)) if data else 0
    if kind == 0:
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]
    if kind == 1:
        return data[:at] + data[at + 1:]
    if kind == 2:
        return data[:at] + bytes([rng.randrange(256)]) + data[at:]
    if kind == 3:
        return data[:at]
    lines = data.split(b'\n')
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if kind == 4:
        lines.insert(i, lines[j])
    elif kind == 5:
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[i] = bytes(rng.randrange(256) for dummy in range(rng.randrange(1, 120)))
    return b'\n'.join(lines)


def test_mutated_signatures_never_crash_and_are_never_accepted_where_minisign_refuses(tmp_path, minisign_keys, signed):
    """Seeded random mutations of a real signature (bit flips, cut and inserted bytes, moved and garbage lines):
    each gives a result or MinisignError, nothing else; and whatever is accepted here, minisign accepts too."""
    path, data, signature = signed
    keys = [public_key(minisign_keys)]
    rng = random.Random(19)
    target = tmp_path / 'mutated.minisig'
    accepted = refused = 0
    for dummy in range(300):
        mutated = signature
        for dummy in range(rng.randrange(1, 4)):
            mutated = _mutate(rng, mutated)
        try:
            ms.verify(ms.parse_signature(mutated), data, keys)
        except ms.MinisignError:
            refused += 1
            continue
        accepted += 1
        target.write_bytes(mutated)
        rc, out, err = minisign_keys.verify(path, 'signer', signature=str(target))
        assert rc == 0, 'accepted here but minisign refuses %r: %s %s' % (mutated, out, err)
    assert refused > 250  # most mutations break the signature
    assert accepted > 0   # and some (of the untrusted comment) do not


def test_random_bytes_never_crash_the_readers():
    rng = random.Random(1919)
    for size in list(range(0, 200)) + [ms.MAX_SIGNATURE_FILE + 1]:
        blob = bytes(rng.randrange(256) for dummy in range(size))
        for reader in (ms.parse_signature, ms.parse_public_key):
            with pytest.raises(ms.MinisignError):
                reader(blob)
            with pytest.raises(ms.MinisignError):
                reader(b'untrusted comment: x\n' + blob)


def test_non_bytes_input_is_an_error_not_a_crash():
    with pytest.raises(ms.MinisignError):
        ms.parse_signature(u'untrusted comment: x\n')


def test_a_key_that_is_no_curve_point_does_not_verify(signed):
    dummy, data, signature = signed
    parsed = ms.parse_signature(signature)
    bogus = ms.PublicKey(parsed.key_id, b'\xff' * 32, 'bogus.pub')
    with pytest.raises(ms.SignatureMismatch):
        ms.verify(parsed, data, [bogus])
