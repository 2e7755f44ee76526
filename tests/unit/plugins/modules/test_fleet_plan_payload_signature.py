# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""noreboot.xen.fleet_plan with payloads carrying XenServer's .note.Xen.signature."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import sys

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args

from ansible_collections.noreboot.xen.plugins.modules import fleet_plan

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'support'))
from test_fleet_plan import fleet, write_advisory  # noqa: E402  pylint: disable=wrong-import-position
import payload_note_signing as signing  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope='module')
def rsa_keys(tmp_path_factory):
    base = str(tmp_path_factory.mktemp('rsa'))
    return dict(signer=signing.make_rsa_key(base, 'signer'), other=signing.make_rsa_key(base, 'other'))


def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            fleet_plan.main()
    return json.loads(capsys.readouterr().out)


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
