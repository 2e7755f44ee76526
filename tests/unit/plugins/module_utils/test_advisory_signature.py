# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed advisory directories, with real keys and signatures made by GnuPG and sha256sum."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import time

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import advisory_signature as sig
from ansible_collections.noreboot.xen.plugins.module_utils.advisory_manifest import AdvisoryManifestError

from gpg_signing import GPG, run  # noqa: E402  pylint: disable=wrong-import-position

# The session fixture ``keys`` (tests/unit/plugins/conftest.py) holds the throwaway keys.


def advisory(directory):
    (directory / 'payloads').mkdir()
    (directory / 'xsa-999.yml').write_text('schema: 1\nid: XSA-999\n')
    (directory / 'payloads' / 'xsa999.livepatch').write_bytes(b'\x7fELF payload bytes')
    return str(directory / 'xsa-999.yml')


def verify(manifest, keys, names=('signer',), require=None):
    return sig.verify_advisory_dirs([manifest], [keys.files[n] for n in names], require, run=run, gpg=GPG)


def refused(manifest, keys, names=('signer',), require=None):
    with pytest.raises(AdvisoryManifestError) as caught:
        verify(manifest, keys, names, require)
    return caught.value.problems


def flip_byte(path, offset=0):
    with open(path, 'rb') as handle:
        data = bytearray(handle.read())
    data[offset] ^= 0x01
    with open(path, 'wb') as handle:
        handle.write(bytes(data))


def test_good_signature_is_verified_with_key_and_time(tmp_path, keys):
    manifest = advisory(tmp_path)
    before = int(time.time())
    keys.sign(str(tmp_path), 'signer')
    results, warnings = verify(manifest, keys)
    assert warnings == []
    [result] = results
    assert result['status'] == 'verified'
    assert result['directory'] == str(tmp_path)
    assert result['fingerprint'] == keys.fingerprints['signer']
    assert result['key_file'] == keys.files['signer']
    assert 'signer@example.org' in result['uid']
    assert before - 5 <= result['signature_timestamp'] <= int(time.time()) + 5
    assert result['signature_time'] == sig.iso_utc(result['signature_timestamp'])
    assert result['files'] == 2
    assert sorted(result['checksums']) == ['payloads/xsa999.livepatch', 'xsa-999.yml']
    assert keys.fingerprints['signer'] in sig.summary_line(result)
    assert 'checksums' not in sig.public_result(result)


def test_one_byte_changed_in_a_payload_is_refused_naming_file_and_key(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    flip_byte(str(tmp_path / 'payloads' / 'xsa999.livepatch'), 5)
    [problem] = refused(manifest, keys)
    assert problem.file == str(tmp_path / 'payloads' / 'xsa999.livepatch')
    assert 'changed after signing' in problem.problem
    assert keys.fingerprints['signer'] in problem.problem


def test_one_byte_changed_in_the_advisory_manifest_is_refused(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    flip_byte(manifest, 3)
    [problem] = refused(manifest, keys)
    assert problem.file == manifest
    assert 'changed after signing' in problem.problem


def test_one_byte_changed_in_the_checksum_manifest_is_a_bad_signature(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    checksums = str(tmp_path / '.ansible-sign' / 'sha256sum.txt')
    flip_byte(checksums, 0)  # first hex digit of the first sum: still a well-formed line
    [problem] = refused(manifest, keys)
    assert problem.file == checksums
    assert 'does not match the file' in problem.problem
    assert keys.fingerprints['signer'] in problem.problem


def test_signature_by_an_unknown_key_is_refused(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'stranger')
    [problem] = refused(manifest, keys)
    assert 'not among the trusted keys' in problem.problem
    assert keys.fingerprints['stranger'][-16:] in problem.problem
    assert keys.fingerprints['signer'] in problem.problem  # the trusted set is named too


def test_signature_by_an_expired_key_is_refused(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'old', faked_time='20200101T000100')
    [problem] = refused(manifest, keys, names=('signer', 'old'))
    assert 'the signing key has expired' in problem.problem
    assert keys.fingerprints['old'] in problem.problem
    assert keys.files['old'] in problem.problem


def test_revoked_key_is_refused(tmp_path, keys):
    # A revoked copy of the signer's key, made from the revocation certificate gpg wrote at key creation.
    directory = tmp_path / 'adv'
    directory.mkdir()
    manifest = advisory(directory)
    keys.sign(str(directory), 'signer')
    home = tmp_path / 'home'
    home.mkdir(mode=0o700)
    with open(os.path.join(keys.home, 'openpgp-revocs.d', keys.fingerprints['signer'] + '.rev')) as handle:
        certificate = handle.read().replace(':-----BEGIN PGP PUBLIC KEY BLOCK', '-----BEGIN PGP PUBLIC KEY BLOCK')
    (tmp_path / 'revocation.asc').write_text(certificate)
    try:
        for key_file in (keys.files['signer'], str(tmp_path / 'revocation.asc')):
            assert run([GPG, '--batch', '--homedir', str(home), '--import', key_file])[0] == 0
        revoked = tmp_path / 'revoked.asc'
        revoked.write_text(run([GPG, '--batch', '--homedir', str(home), '--armor', '--export', keys.fingerprints['signer']])[1])
    finally:
        run(['gpgconf', '--homedir', str(home), '--kill', 'all'])  # the agent gpg started for the import
    with pytest.raises(AdvisoryManifestError) as caught:
        sig.verify_advisory_dirs([manifest], [str(revoked)], None, run=run, gpg=GPG)
    assert 'the signing key has been revoked' in caught.value.problems[0].problem
    assert str(revoked) in caught.value.problems[0].problem


def test_unsigned_directory_refused_when_keys_are_configured(tmp_path, keys):
    manifest = advisory(tmp_path)
    [problem] = refused(manifest, keys)
    assert problem.file == str(tmp_path)
    assert 'not signed' in problem.problem


def test_unsigned_directory_accepted_with_a_warning_when_the_policy_is_off(tmp_path, keys):
    manifest = advisory(tmp_path)
    results, warnings = verify(manifest, keys, require=False)
    assert [r['status'] for r in results] == ['unsigned']
    assert len(warnings) == 1 and str(tmp_path) in warnings[0] and 'require_signature is false' in warnings[0]


def test_policy_off_still_refuses_a_bad_signature(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'stranger')
    [problem] = refused(manifest, keys, require=False)
    assert 'not among the trusted keys' in problem.problem


def test_without_keys_nothing_is_checked_and_it_says_so_loudly(tmp_path):
    manifest = advisory(tmp_path)
    results, warnings = sig.verify_advisory_dirs([manifest], [], None, run=None)
    assert [r['status'] for r in results] == ['unsigned']
    assert warnings and warnings[0].startswith('NOTHING IS SIGNATURE-CHECKED')
    assert 'NOT SIGNED' in sig.summary_line(results[0])


def test_required_without_keys_is_refused(tmp_path):
    manifest = advisory(tmp_path)
    with pytest.raises(AdvisoryManifestError) as caught:
        sig.verify_advisory_dirs([manifest], [], True, run=None)
    assert 'no trusted keys' in caught.value.problems[0].problem


def test_extra_unlisted_file_is_refused(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    (tmp_path / 'payloads' / 'evil.livepatch').write_bytes(b'x')
    [problem] = refused(manifest, keys)
    assert problem.file == str(tmp_path / 'payloads' / 'evil.livepatch')
    assert 'not signed in .ansible-sign/sha256sum.txt by ' + keys.fingerprints['signer'] in problem.problem


def test_listed_but_missing_file_is_refused(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    (tmp_path / 'payloads' / 'xsa999.livepatch').unlink()
    [problem] = refused(manifest, keys)
    assert problem.file == str(tmp_path / 'payloads' / 'xsa999.livepatch')
    assert 'missing' in problem.problem


def test_symbolic_link_is_refused(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    os.symlink('/etc/hostname', str(tmp_path / 'payloads' / 'link.livepatch'))
    [problem] = refused(manifest, keys)
    assert 'symbolic link' in problem.problem


@pytest.mark.parametrize('escaping', ['../outside', '/etc/passwd', 'payloads/../../outside'])
def test_signed_path_escaping_the_directory_is_refused(tmp_path, keys, escaping):
    directory = tmp_path / 'adv'
    directory.mkdir()
    manifest = advisory(directory)
    (tmp_path / 'outside').write_text('x')
    listed = subprocess.run(['sha256sum', 'xsa-999.yml', 'payloads/xsa999.livepatch'], cwd=str(directory),
                            stdout=subprocess.PIPE, check=True).stdout
    listed += ('%s  %s\n' % ('0' * 64, escaping)).encode()
    keys.sign(str(directory), 'signer', checksums=listed)
    problems = refused(manifest, keys)
    assert [p.path for p in problems] == ['line 3']
    assert 'leaves the advisory directory' in problems[0].problem


def test_half_signed_directory_is_refused(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    (tmp_path / '.ansible-sign' / 'sha256sum.txt.sig').unlink()
    [problem] = refused(manifest, keys, require=False)
    assert 'needs both' in problem.problem


def test_key_file_without_a_key_is_refused_naming_it(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    bogus = tmp_path / '.ansible-sign' / 'not-a-key.asc'  # .ansible-sign/ is not part of the signed files
    bogus.write_text('hello\n')
    with pytest.raises(AdvisoryManifestError) as caught:
        sig.verify_advisory_dirs([manifest], [str(bogus)], None, run=run, gpg=GPG)
    assert caught.value.problems[0].file == str(bogus)


def test_manifest_changed_after_verification_is_caught(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    results, dummy = verify(manifest, keys)
    signed = results[0]['checksums']['xsa-999.yml']
    assert sig.check_manifest_digests(results, [(manifest, {}, signed)]) == []
    [problem] = sig.check_manifest_digests(results, [(manifest, {}, 'f' * 64)])
    assert problem.file == manifest


@pytest.mark.parametrize('text,expected', [
    ('./a/b', 'a/b'), ('a//b', 'a/b'), ('../a', None), ('/abs', None), ('a/../../b', None), ('', None), ('.', None),
])
def test_checked_relative_path(text, expected):
    assert sig.checked_relative_path(text) == expected


def test_gpg_status_with_two_signatures_is_not_good():
    status = '\n'.join(['[GNUPG:] NEWSIG', '[GNUPG:] GOODSIG AAAA A <a@x>', '[GNUPG:] VALIDSIG %s 2026-01-01 1767225600 0 4 0 22 8 00 %s'
                        % ('A' * 40, 'A' * 40), '[GNUPG:] NEWSIG'])
    parsed = sig.parse_gpg_status(status)
    assert parsed['signatures'] == 2 and parsed['good'] is False
    assert sig.parse_gpg_status(status.rsplit('\n', 1)[0])['good'] is True


def test_run_summary_table_shows_key_and_signature_time(tmp_path, keys):
    from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    results, dummy = verify(manifest, keys)
    signatures = [sig.public_result(r) for r in results]
    table = rb.format_summary(dict(waves=[], totals={}, signatures=signatures)).splitlines()
    assert 'Signature: %s verified, key %s, signed %s, 2 file(s)' % (
        tmp_path, keys.fingerprints['signer'], results[0]['signature_time']) in table
    assert not any(line.startswith('Signature:') for line in rb.format_summary(dict(waves=[], totals={})).splitlines())


def test_html_run_report_shows_the_verified_signature(tmp_path, keys):
    from ansible_collections.noreboot.xen.plugins.plugin_utils import run_report_html as rh
    from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    results, dummy = verify(manifest, keys)
    summary = rb.summarize({}, {}, waves=[], wave_times={}, gate={}, details={}, run_id='20260101T000000Z-ab12')
    html = rh.run_report(summary, plan=dict(signatures=[sig.public_result(r) for r in results]), wave_times={}, started=0.0,
                         generated='2026-01-01 00:00:00 UTC')
    assert 'advisory signature' in html
    assert 'verified, key %s, signed %s' % (keys.fingerprints['signer'], results[0]['signature_time']) in html
    assert 'advisory signature' not in rh.run_report(summary, plan={}, wave_times={}, started=0.0, generated='2026-01-01 00:00:00 UTC')


def test_signature_file_that_is_no_signature_is_refused(tmp_path, keys):
    manifest = advisory(tmp_path)
    keys.sign(str(tmp_path), 'signer')
    (tmp_path / '.ansible-sign' / 'sha256sum.txt.sig').write_bytes(b'-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n')
    [problem] = refused(manifest, keys)
    assert problem.file == str(tmp_path / '.ansible-sign' / 'sha256sum.txt')
    assert 'sha256sum.txt.sig' in problem.problem
