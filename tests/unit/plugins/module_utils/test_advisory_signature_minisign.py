# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Advisory directories signed with minisign (.ansible-sign/sha256sum.txt.minisig), with real keys and
signatures made by Debian's minisign; alone and beside the OpenPGP signature."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import time

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import advisory_signature as sig
from ansible_collections.noreboot.xen.plugins.module_utils.advisory_manifest import AdvisoryManifestError

from gpg_signing import GPG, run  # noqa: E402  pylint: disable=wrong-import-position
from minisign_signing import MinisignMissing, require_minisign  # noqa: E402  pylint: disable=wrong-import-position
from test_advisory_signature import advisory, flip_byte  # noqa: E402  pylint: disable=wrong-import-position

# The session fixtures ``minisign_keys`` and ``keys`` (tests/unit/plugins/conftest.py) hold the throwaway keys.


def not_run(argv):
    raise AssertionError('gpg must not run for a minisign signature: %r' % (argv,))


def verify(manifest, key_files, require=None, run_gpg=not_run):
    return sig.verify_advisory_dirs([manifest], key_files, require, run=run_gpg, gpg=GPG)


def refused(manifest, key_files, require=None, run_gpg=not_run):
    with pytest.raises(AdvisoryManifestError) as caught:
        verify(manifest, key_files, require, run_gpg)
    return caught.value.problems


def minisig(directory):
    return str(directory / '.ansible-sign' / 'sha256sum.txt.minisig')


def rewrite_line(path, number, change):
    with open(path, 'rb') as handle:
        lines = handle.read().split(b'\n')
    lines[number - 1] = change(lines[number - 1])
    with open(path, 'wb') as handle:
        handle.write(b'\n'.join(lines))


def flip_decoded(offset):
    """A change of one base64 line: one byte of what it encodes flipped, still well-formed base64."""
    def change(line):
        raw = bytearray(base64.b64decode(line))
        raw[offset] ^= 0x01
        return base64.b64encode(bytes(raw))
    return change


def test_good_prehashed_signature_is_verified_with_key_id_and_trusted_comment(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    before = int(time.time())
    minisign_keys.sign(str(tmp_path), 'signer')
    checksums = str(tmp_path / '.ansible-sign' / 'sha256sum.txt')
    rc, out, err = minisign_keys.verify(checksums, 'signer')
    assert rc == 0, err  # minisign itself accepts what is verified here
    printed_comment = [line for line in out.splitlines() if line.startswith('Trusted comment: ')][0][len('Trusted comment: '):]
    results, warnings = verify(manifest, [minisign_keys.files['signer']])
    assert warnings == []
    [result] = results
    assert result['status'] == 'verified'
    assert result['format'] == sig.FORMAT_MINISIGN
    assert 'fingerprint' not in result  # no OpenPGP signature
    signed = result['minisign']
    assert signed['key_id'] == minisign_keys.key_ids['signer']  # as minisign printed it when it made the key
    assert signed['key_file'] == minisign_keys.files['signer']
    assert signed['algorithm'] == 'prehashed'
    assert signed['trusted_comment'] == printed_comment
    assert printed_comment.startswith('timestamp:') and printed_comment.endswith('\tfile:sha256sum.txt\thashed')
    assert before - 5 <= signed['signature_timestamp'] <= int(time.time()) + 5
    assert signed['signature_time'] == sig.iso_utc(signed['signature_timestamp'])
    assert result['files'] == 2
    assert sorted(result['checksums']) == ['payloads/xsa999.livepatch', 'xsa-999.yml']
    assert sig.summary_line(result) == 'Signature: %s verified, minisign key %s, signed %s (trusted comment: %s), 2 file(s)' % (
        tmp_path, minisign_keys.key_ids['signer'], signed['signature_time'], printed_comment.replace('\t', ' '))


def test_good_legacy_signature_is_verified(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer', legacy=True)
    with open(minisig(tmp_path), 'rb') as handle:
        assert base64.b64decode(handle.read().split(b'\n')[1])[:2] == b'Ed'  # minisign -l wrote the legacy form
    [result], dummy = verify(manifest, [minisign_keys.files['signer']])
    assert result['minisign']['algorithm'] == 'legacy'
    assert result['minisign']['key_id'] == minisign_keys.key_ids['signer']


def test_trusted_comment_without_a_timestamp_gives_no_signature_time(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer', trusted_comment='XSA-999 advisory, release 2')
    [result], dummy = verify(manifest, [minisign_keys.files['signer']])
    assert result['minisign']['trusted_comment'] == 'XSA-999 advisory, release 2'
    assert result['minisign']['signature_timestamp'] is None and result['minisign']['signature_time'] is None
    assert 'signed at a time not given (trusted comment: XSA-999 advisory, release 2)' in sig.summary_line(result)


def test_one_byte_changed_in_a_payload_is_refused_naming_file_and_key(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    flip_byte(str(tmp_path / 'payloads' / 'xsa999.livepatch'), 5)
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == str(tmp_path / 'payloads' / 'xsa999.livepatch')
    assert 'changed after signing' in problem.problem
    assert 'minisign key %s (%s)' % (minisign_keys.key_ids['signer'], minisign_keys.files['signer']) in problem.problem


def test_one_byte_changed_in_the_advisory_manifest_is_refused(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    flip_byte(manifest, 3)
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == manifest
    assert 'changed after signing' in problem.problem


@pytest.mark.parametrize('legacy', [False, True])
def test_one_byte_changed_in_the_checksum_manifest_is_a_bad_signature(tmp_path, minisign_keys, legacy):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer', legacy=legacy)
    checksums = str(tmp_path / '.ansible-sign' / 'sha256sum.txt')
    flip_byte(checksums, 0)  # first hex digit of the first sum: still a well-formed line
    assert minisign_keys.verify(checksums, 'signer')[0] != 0  # minisign refuses it too
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == checksums
    assert problem.problem.startswith('sha256sum.txt.minisig: the signature does not match the signed file')
    assert minisign_keys.key_ids['signer'] in problem.problem and minisign_keys.files['signer'] in problem.problem
    assert 'minisign -Sm .ansible-sign/sha256sum.txt' in problem.fix


@pytest.mark.parametrize('offset', [10, 73])  # the first and the last byte of the Ed25519 signature
def test_one_byte_changed_in_the_signature_is_refused(tmp_path, minisign_keys, offset):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    rewrite_line(minisig(tmp_path), 2, flip_decoded(offset))
    assert minisign_keys.verify(str(tmp_path / '.ansible-sign' / 'sha256sum.txt'), 'signer')[0] != 0
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert 'does not match' in problem.problem and minisign_keys.key_ids['signer'] in problem.problem


def test_one_byte_changed_in_the_global_signature_is_refused(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    rewrite_line(minisig(tmp_path), 4, flip_decoded(0))
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == minisig(tmp_path)
    assert 'global signature' in problem.problem


def test_tampered_trusted_comment_fails_the_global_signature(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    rewrite_line(minisig(tmp_path), 3, lambda line: line.replace(b'file:', b'file:x'))
    assert minisign_keys.verify(str(tmp_path / '.ansible-sign' / 'sha256sum.txt'), 'signer')[0] != 0
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == minisig(tmp_path)
    assert 'trusted comment was changed after signing' in problem.problem
    assert minisign_keys.key_ids['signer'] in problem.problem


def test_untrusted_comment_is_not_signed_and_may_change(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    rewrite_line(minisig(tmp_path), 1, lambda line: b'untrusted comment: anything at all')
    [result], dummy = verify(manifest, [minisign_keys.files['signer']])
    assert result['status'] == 'verified'


def test_signature_by_an_unknown_key_names_it_and_the_trusted_keys(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'stranger')
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == minisig(tmp_path)
    assert 'signed by minisign key %s, trusted minisign keys are %s (%s)' % (
        minisign_keys.key_ids['stranger'], minisign_keys.key_ids['signer'], minisign_keys.files['signer']) in problem.problem
    assert 'noreboot_xen_advisory_trusted_keys' in problem.fix


def test_unsigned_directory_refused_when_minisign_keys_are_configured(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == str(tmp_path)
    assert 'not signed' in problem.problem and 'sha256sum.txt.minisig' in problem.problem


def test_unsigned_directory_accepted_with_a_warning_when_the_policy_is_off(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    results, warnings = verify(manifest, [minisign_keys.files['signer']], require=False)
    assert [r['status'] for r in results] == ['unsigned']
    assert len(warnings) == 1 and 'require_signature is false' in warnings[0]


def test_policy_off_still_refuses_a_bad_minisign_signature(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'stranger')
    [problem] = refused(manifest, [minisign_keys.files['signer']], require=False)
    assert 'signed by minisign key %s' % minisign_keys.key_ids['stranger'] in problem.problem


def test_minisign_signed_directory_without_keys_is_not_verified(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    results, warnings = sig.verify_advisory_dirs([manifest], [], None, run=None)
    assert [(r['status'], r['format']) for r in results] == [('not_verified', sig.FORMAT_MINISIGN)]
    assert warnings[0].startswith('NOTHING IS SIGNATURE-CHECKED')


def test_minisign_signature_without_the_checksum_file_is_refused(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    (tmp_path / '.ansible-sign' / 'sha256sum.txt').unlink()
    [problem] = refused(manifest, [minisign_keys.files['signer']], require=False)
    assert 'needs both sha256sum.txt and a signature' in problem.problem


def test_extra_unlisted_file_is_refused_naming_the_minisign_key(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    (tmp_path / 'payloads' / 'evil.livepatch').write_bytes(b'x')
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == str(tmp_path / 'payloads' / 'evil.livepatch')
    assert 'not signed in .ansible-sign/sha256sum.txt by minisign key %s' % minisign_keys.key_ids['signer'] in problem.problem


def test_minisign_key_files_never_run_gpg_even_beside_openpgp_key_files(tmp_path, minisign_keys, keys):
    # The trusted list holds an OpenPGP key file too; a minisign-only directory does not need gpg.
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    [result], dummy = verify(manifest, [keys.files['signer'], minisign_keys.files['signer']])
    assert result['minisign']['key_id'] == minisign_keys.key_ids['signer']


def test_both_signatures_verified_and_reported(tmp_path, minisign_keys, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    minisign_keys.sign(str(tmp_path), 'signer')  # signs the same sha256sum.txt again
    [result], dummy = verify(manifest, [keys.files['signer'], minisign_keys.files['signer']], run_gpg=run)
    assert result['format'] == sig.FORMAT_BOTH
    assert result['fingerprint'] == keys.fingerprints['signer']
    assert result['minisign']['key_id'] == minisign_keys.key_ids['signer']
    line = sig.summary_line(result)
    assert line.startswith('Signature: %s verified, key %s, signed %s; minisign key %s, signed ' % (
        tmp_path, keys.fingerprints['signer'], result['signature_time'], minisign_keys.key_ids['signer']))
    assert line.endswith(', 2 file(s)')


def test_both_signatures_present_both_must_verify(tmp_path, minisign_keys, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    minisign_keys.sign(str(tmp_path), 'stranger')
    [problem] = refused(manifest, [keys.files['signer'], minisign_keys.files['signer']], run_gpg=run)
    assert 'signed by minisign key %s' % minisign_keys.key_ids['stranger'] in problem.problem


def test_both_signatures_present_with_only_a_minisign_key_is_refused(tmp_path, minisign_keys, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    minisign_keys.sign(str(tmp_path), 'signer')
    [problem] = refused(manifest, [minisign_keys.files['signer']])
    assert problem.file == str(tmp_path / '.ansible-sign' / 'sha256sum.txt.sig')
    assert 'no OpenPGP key is among the trusted keys' in problem.problem
    assert minisign_keys.key_ids['signer'] in problem.problem
    assert 'remove .ansible-sign/sha256sum.txt.sig' in problem.fix


def test_minisign_signature_with_only_openpgp_keys_is_refused(tmp_path, minisign_keys, keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    [problem] = refused(manifest, [keys.files['signer']], run_gpg=run)
    assert problem.file == minisig(tmp_path)
    assert 'no minisign public key is among the trusted keys' in problem.problem


def test_secret_key_given_as_trusted_key_is_refused_naming_it(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    [problem] = refused(manifest, [minisign_keys.secret['signer']])
    assert problem.file == minisign_keys.secret['signer']
    assert 'secret key' in problem.problem
    assert 'minisign -G' in problem.fix


def test_two_trusted_keys_with_one_key_id_are_refused(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    with open(minisign_keys.files['signer'], 'rb') as handle:
        comment, encoded = handle.read().split(b'\n')[:2]
    with open(minisign_keys.files['stranger'], 'rb') as handle:
        other = base64.b64decode(handle.read().split(b'\n')[1])
    forged = base64.b64decode(encoded)[:10] + other[10:]  # the signer's id, the stranger's key
    (tmp_path / '.ansible-sign' / 'forged.pub').write_bytes(comment + b'\n' + base64.b64encode(forged) + b'\n')
    problems = refused(manifest, [minisign_keys.files['signer'], str(tmp_path / '.ansible-sign' / 'forged.pub')])
    assert [p.file for p in problems] == [str(tmp_path / '.ansible-sign' / 'forged.pub')]
    assert 'is also the id of another key' in problems[0].problem


def test_the_same_minisign_key_twice_is_one_key(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    copy = tmp_path / '.ansible-sign' / 'copy.pub'
    copy.write_bytes(open(minisign_keys.files['signer'], 'rb').read())
    [result], dummy = verify(manifest, [minisign_keys.files['signer'], str(copy)])
    assert result['minisign']['key_file'] == minisign_keys.files['signer']


def test_unreadable_trusted_key_file_is_refused_naming_it(tmp_path, minisign_keys):
    manifest = advisory(tmp_path)
    minisign_keys.sign(str(tmp_path), 'signer')
    [problem] = refused(manifest, [str(tmp_path / 'no-such.pub')])
    assert problem.file == str(tmp_path / 'no-such.pub') and 'cannot read' in problem.problem


def test_missing_minisign_fails_saying_make_setup_installs_it(tmp_path):
    with pytest.raises(MinisignMissing) as caught:
        require_minisign(str(tmp_path / 'no-minisign'))
    assert '`make setup` installs it' in str(caught.value)
