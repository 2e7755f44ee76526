# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.fleet_plan with signed advisory directories: verified first, refused before parsing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic

from test_fleet_plan import fleet, run_with_tools as run, write_advisory

# The session fixture ``keys`` (tests/unit/plugins/conftest.py) holds the throwaway keys.


@pytest.fixture
def warned(monkeypatch):
    """The texts the module passed to AnsibleModule.warn (how they reach the result depends on the core and on
    whether controller code was imported before, so they are caught at the call)."""
    texts = []
    real = basic.AnsibleModule.warn

    def record(self, warning):
        texts.append(warning)
        return real(self, warning)
    monkeypatch.setattr(basic.AnsibleModule, 'warn', record)
    return texts


def signed_advisory(tmp_path, keys, signer='signer'):
    directory = tmp_path / 'xsa-999'
    directory.mkdir()
    manifest = write_advisory(directory)
    keys.sign(str(directory), signer)
    return directory, manifest


def test_plan_carries_the_verified_signature(tmp_path, keys, capsys):
    directory, manifest = signed_advisory(tmp_path, keys)
    plan_path = tmp_path / 'plan.json'
    result = run(dict(advisories=[manifest], hosts=fleet(), trusted_keys=[keys.files['signer']], plan_path=str(plan_path)), capsys)
    assert not result.get('failed'), result.get('msg')
    [signature] = result['signatures']
    assert signature['status'] == 'verified'
    assert signature['directory'] == str(directory)
    assert signature['fingerprint'] == keys.fingerprints['signer']
    assert signature['files'] == 2 and 'checksums' not in signature
    assert result['table'][0].startswith('Signature: %s verified, key %s' % (directory, keys.fingerprints['signer']))
    assert json.loads(plan_path.read_text())['signatures'] == result['signatures']
    assert result['counts']['livepatch'] == 10


def test_tampered_directory_is_refused_before_the_manifest_is_read(tmp_path, keys, capsys):
    directory, manifest = signed_advisory(tmp_path, keys)
    with open(manifest, 'a') as handle:
        handle.write('not: [valid yaml\n')  # a parse error would be reported if the manifest were read
    result = run(dict(advisories=[manifest], hosts={}, validate_only=True, trusted_keys=[keys.files['signer']]), capsys)
    assert result['failed'] is True
    [problem] = result['problems']
    assert problem['file'] == manifest
    assert 'changed after signing' in problem['problem'] and keys.fingerprints['signer'] in problem['problem']
    assert 'YAML' not in result['msg']


def test_unknown_key_is_refused_naming_the_signature_file(tmp_path, keys, capsys):
    directory, manifest = signed_advisory(tmp_path, keys, signer='stranger')
    result = run(dict(advisories=[manifest], hosts={}, validate_only=True, trusted_keys=[keys.files['signer']]), capsys)
    assert result['failed'] is True
    assert result['problems'][0]['file'] == str(directory / '.ansible-sign' / 'sha256sum.txt')
    assert 'not among the trusted keys' in result['msg']


def test_unsigned_with_trusted_keys_is_refused_and_allowed_when_the_policy_is_off(tmp_path, keys, capsys, warned):
    manifest = write_advisory(tmp_path)
    refused = run(dict(advisories=[manifest], hosts={}, validate_only=True, trusted_keys=[keys.files['signer']]), capsys)
    assert refused['failed'] is True and 'not signed' in refused['msg']
    allowed = run(dict(advisories=[manifest], hosts={}, validate_only=True, trusted_keys=[keys.files['signer']],
                       require_signature=False), capsys)
    assert not allowed.get('failed'), allowed.get('msg')
    assert [s['status'] for s in allowed['signatures']] == ['unsigned']
    assert any('require_signature is false' in w for w in warned)


def test_without_keys_the_run_warns_that_nothing_is_signed(tmp_path, capsys, warned):
    manifest = write_advisory(tmp_path)
    result = run(dict(advisories=[manifest], hosts=fleet()), capsys)
    assert not result.get('failed'), result.get('msg')
    assert any(w.startswith('NOTHING IS SIGNATURE-CHECKED') for w in warned)
    assert result['table'][0] == 'Signature: %s is NOT SIGNED' % tmp_path


def minisigned_advisory(tmp_path, minisign_keys, signer='signer'):
    directory = tmp_path / 'xsa-999'
    directory.mkdir()
    manifest = write_advisory(directory)
    minisign_keys.sign(str(directory), signer)
    return directory, manifest


@pytest.fixture
def no_gpg(monkeypatch):
    """A controller without gpg: AnsibleModule.get_bin_path finds no ``gpg``."""
    real = basic.AnsibleModule.get_bin_path

    def get_bin_path(self, arg, *args, **kwargs):
        return None if arg == 'gpg' else real(self, arg, *args, **kwargs)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', get_bin_path)


def test_minisign_signed_plan_carries_key_id_and_trusted_comment_without_gpg(tmp_path, minisign_keys, capsys, no_gpg):
    directory, manifest = minisigned_advisory(tmp_path, minisign_keys)
    plan_path = tmp_path / 'plan.json'
    result = run(dict(advisories=[manifest], hosts=fleet(), trusted_keys=[minisign_keys.files['signer']],
                      plan_path=str(plan_path)), capsys)
    assert not result.get('failed'), result.get('msg')
    [signature] = result['signatures']
    assert signature['status'] == 'verified' and signature['directory'] == str(directory)
    assert signature['minisign']['key_id'] == minisign_keys.key_ids['signer']
    assert signature['minisign']['key_file'] == minisign_keys.files['signer']
    assert signature['minisign']['trusted_comment'].startswith('timestamp:')
    assert result['table'][0].startswith('Signature: %s verified, minisign key %s, signed %s' % (
        directory, minisign_keys.key_ids['signer'], signature['minisign']['signature_time']))
    assert json.loads(plan_path.read_text())['signatures'] == result['signatures']
    assert result['counts']['livepatch'] == 10


def test_minisign_tampered_directory_is_refused_before_the_manifest_is_read(tmp_path, minisign_keys, capsys):
    directory, manifest = minisigned_advisory(tmp_path, minisign_keys)
    with open(manifest, 'a') as handle:
        handle.write('not: [valid yaml\n')
    result = run(dict(advisories=[manifest], hosts={}, validate_only=True, trusted_keys=[minisign_keys.files['signer']]), capsys)
    assert result['failed'] is True
    [problem] = result['problems']
    assert problem['file'] == manifest
    assert 'changed after signing' in problem['problem'] and minisign_keys.key_ids['signer'] in problem['problem']
    assert 'YAML' not in result['msg']


def test_openpgp_signature_without_gpg_fails_saying_so(tmp_path, keys, capsys, no_gpg):
    dummy, manifest = signed_advisory(tmp_path, keys)
    result = run(dict(advisories=[manifest], hosts={}, validate_only=True, trusted_keys=[keys.files['signer']]), capsys)
    assert result['failed'] is True
    assert 'gpg is not installed' in result['msg']


def test_each_planned_payload_carries_the_verification_for_the_ledger(tmp_path, keys, capsys):
    directory, manifest = signed_advisory(tmp_path, keys)
    plan_path = tmp_path / 'plan.json'
    result = run(dict(advisories=[manifest], hosts=fleet(), trusted_keys=[keys.files['signer']], plan_path=str(plan_path)), capsys)
    assert not result.get('failed'), result.get('msg')
    [signature] = result['signatures']
    planned = [d for d in result['decisions'].values() if d['decision'] == 'livepatch']
    assert len(planned) == 10
    for decision in planned:
        [payload] = decision['payloads']
        advisory = payload['verification']['advisory_signature']
        assert advisory['status'] == 'verified' and advisory['directory'] == str(directory)
        assert advisory['fingerprint'] == keys.fingerprints['signer']
        assert advisory['signature_time'] == signature['signature_time'] and advisory['signature_time'].endswith('Z')
        assert payload['verification']['payload_signature'] is None  # the payload carries no note
    written = json.loads(plan_path.read_text())['decisions']
    assert all(written[d['host']]['payloads'] == d['payloads'] for d in planned)


def test_unsigned_directory_is_recorded_as_not_signed(tmp_path, capsys):
    directory = tmp_path / 'xsa-999'
    directory.mkdir()
    manifest = write_advisory(directory)
    result = run(dict(advisories=[manifest], hosts=fleet()), capsys)
    assert not result.get('failed'), result.get('msg')
    payloads = [p for d in result['decisions'].values() for p in d.get('payloads') or []]
    assert payloads and all(p['verification'] == dict(advisory_signature=dict(status='unsigned', directory=str(directory)),
                                                      payload_signature=None) for p in payloads)
