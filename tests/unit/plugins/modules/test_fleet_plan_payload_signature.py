# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.fleet_plan with payloads carrying XenServer's .note.Xen.signature."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

import pytest
import yaml

import livepatch_payload_forge as forge
import payload_note_signing as signing
from test_fleet_plan import fleet, run_with_tools as run, write_advisory

OTHER_BUILD = 'ee' * 20  # the build of host old01 in fleet()


@pytest.fixture(scope='module')
def rsa_keys(tmp_path_factory):
    base = str(tmp_path_factory.mktemp('rsa'))
    return dict(signer=signing.make_rsa_key(base, 'signer'), other=signing.make_rsa_key(base, 'other'))


def signed_advisory(tmp_path, private_key, flip_signature=False):
    """An advisory whose payload carries a signature note; the manifest's sha256 is the signed file's."""
    directory = tmp_path / 'xsa-999'
    directory.mkdir()
    manifest = write_advisory(directory)
    payload = directory / 'payloads' / 'xsa999.livepatch'
    signing.sign_payload(str(payload), private_key, str(tmp_path))
    data = bytearray(payload.read_bytes())
    if flip_signature:
        at = data.rfind(b'Xen\0') + 4 + 8 + 5  # the note name, the version 1 header, then a signature byte
        data[at] ^= 0x01
        payload.write_bytes(bytes(data))
    with open(manifest) as handle:
        doc = yaml.safe_load(handle)
    doc['livepatches'][0]['sha256'] = hashlib.sha256(bytes(data)).hexdigest()
    with open(manifest, 'w') as handle:
        yaml.safe_dump(doc, handle)
    return manifest


def test_plan_reports_the_verified_payload_signature(tmp_path, rsa_keys, capsys):
    manifest = signed_advisory(tmp_path, rsa_keys['signer'][0])
    plan_path = tmp_path / 'plan.json'
    result = run(dict(advisories=[manifest], hosts=fleet(), payload_signature_keys=[rsa_keys['signer'][1]],
                      plan_path=str(plan_path)), capsys)
    assert not result.get('failed'), result.get('msg')
    [entry] = result['payload_signatures']
    assert entry['status'] == 'verified' and entry['key_file'] == rsa_keys['signer'][1]
    assert entry['key_id'].startswith('sha256:') and entry['file'] == 'payloads/xsa999.livepatch'
    assert json.loads(plan_path.read_text())['payload_signatures'] == result['payload_signatures']
    planned = [d for d in result['decisions'].values() if d['decision'] == 'livepatch']
    assert planned
    for decision in planned:
        [payload] = decision['payloads']
        assert payload['verification']['payload_signature'] == dict(
            status='verified', key_id=entry['key_id'], file='payloads/xsa999.livepatch')


def test_flipped_signature_byte_refuses_the_plan_naming_payload_and_key(tmp_path, rsa_keys, capsys):
    manifest = signed_advisory(tmp_path, rsa_keys['signer'][0], flip_signature=True)
    plan_path = tmp_path / 'plan.json'
    result = run(dict(advisories=[manifest], hosts=fleet(), payload_signature_keys=[rsa_keys['signer'][1]],
                      plan_path=str(plan_path)), capsys)
    assert result['failed'] is True
    assert 'payloads/xsa999.livepatch' in result['msg'] and rsa_keys['signer'][1] in result['msg']
    assert not plan_path.exists()


def test_unknown_key_refuses_the_plan(tmp_path, rsa_keys, capsys):
    manifest = signed_advisory(tmp_path, rsa_keys['other'][0])
    result = run(dict(advisories=[manifest], hosts=fleet(), payload_signature_keys=[rsa_keys['signer'][1]]), capsys)
    assert result['failed'] is True and 'does not verify' in result['msg']


def test_payload_without_note_is_reported_absent_and_refused_only_when_required(tmp_path, rsa_keys, capsys):
    directory = tmp_path / 'xsa-999'
    directory.mkdir()
    manifest = write_advisory(directory)
    args = dict(advisories=[manifest], hosts=fleet(), payload_signature_keys=[rsa_keys['signer'][1]])
    result = run(args, capsys)
    assert not result.get('failed'), result.get('msg')
    assert [e['status'] for e in result['payload_signatures']] == ['absent']
    required = run(dict(args, require_payload_signature=True), capsys)
    assert required['failed'] is True and 'carries no .note.Xen.signature' in required['msg']


def second_advisory_with_bad_note(tmp_path, private_key):
    """XSA-998 for another build (host old01 runs it), its payload signed, then one signature byte flipped."""
    directory = tmp_path / 'xsa-998'
    (directory / 'payloads').mkdir(parents=True)
    payload = directory / 'payloads' / 'xsa998.livepatch'
    forge.forge_payload(str(payload), OTHER_BUILD)
    signing.sign_payload(str(payload), private_key, str(tmp_path))
    data = bytearray(payload.read_bytes())
    data[data.rfind(b'Xen\0') + 4 + 8 + 5] ^= 0x01
    payload.write_bytes(bytes(data))
    manifest = {
        'schema': 1, 'id': 'XSA-998', 'title': 'x86: another flaw',
        'affected': {'hypervisors': {'versions': ['>=4.17.0,<4.17.7']}},
        'livepatches': [{'xen_build_id': OTHER_BUILD, 'file': 'payloads/xsa998.livepatch',
                         'sha256': hashlib.sha256(bytes(data)).hexdigest(), 'name': 'xsa998_other'}],
        'fallback': {'reboot': True, 'packages': {'debian': {'package': 'xen-hypervisor-4.17-amd64', 'version': '4.17.7-1'}}},
    }
    path = directory / 'xsa-998.yml'
    path.write_text(yaml.safe_dump(manifest))
    return str(path), str(payload)


def test_one_bad_note_refuses_the_whole_run_not_only_its_payload(tmp_path, rsa_keys, capsys):
    good = signed_advisory(tmp_path, rsa_keys['signer'][0])
    bad, bad_payload = second_advisory_with_bad_note(tmp_path, rsa_keys['signer'][0])
    plan_path = tmp_path / 'plan.json'
    key = rsa_keys['signer'][1]
    result = run(dict(advisories=[good, bad], hosts=fleet(), payload_signature_keys=[key], plan_path=str(plan_path)), capsys)
    assert result['failed'] is True
    # Nothing planned at all: not the good advisory's hosts either.
    assert 'decisions' not in result and 'waves' not in result and not plan_path.exists()
    msg = result['msg']
    assert 'whole run is refused' in msg and 'no host was changed' in msg
    assert bad_payload in msg and key in msg, msg  # the file (full path) and the key tried
    assert 'noreboot_xen_payload_signature_keys' in msg and 'livepatch-sign' in msg  # the fix
    assert 'xsa999.livepatch' not in msg  # the good payload is not blamed


def test_validate_only_refuses_a_bad_note_too(tmp_path, rsa_keys, capsys):
    bad, bad_payload = second_advisory_with_bad_note(tmp_path, rsa_keys['signer'][0])
    result = run(dict(advisories=[bad], hosts={}, validate_only=True, payload_signature_keys=[rsa_keys['signer'][1]]), capsys)
    assert result['failed'] is True and bad_payload in result['msg']
