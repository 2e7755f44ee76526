# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""payload_verification: the record of what was verified, per planned payload."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils import payload_verification as pv

VERIFIED = dict(directory='/srv/a/xsa-1', format='ansible-sign', status='verified', fingerprint='F' * 40, signing_key='E' * 40,
                key_file='/k/signer.asc', uid='Signer', signature_time='2026-12-02T13:10:53Z', signature_timestamp=1796216253, files=2)
ADVISORIES = [dict(id='XSA-1', manifest='/srv/a/xsa-1/xsa-1.yml'), dict(id='XSA-2', manifest='/srv/a/xsa-2/xsa-2.yml')]


def decisions():
    return dict(
        xen01=dict(decision='livepatch', payloads=[dict(name='p1', advisory='XSA-1'), dict(name='p2', advisory='XSA-2')]),
        xen02=dict(decision='reboot'))


def test_each_payload_gets_its_own_directory_and_note_result():
    signatures = [VERIFIED, dict(directory='/srv/a/xsa-2', format=None, status='unsigned')]
    notes = [dict(advisory='XSA-1', name='p1', file='p1.livepatch', status='absent', key_id=None),
             dict(advisory='XSA-2', name='p2', file='p2.livepatch', status='verified', key_id='sha256:00', key_file='/k/rsa.pem')]
    result = pv.attach_verification(decisions(), ADVISORIES, signatures, notes)
    first, second = result['xen01']['payloads']
    assert first['verification'] == dict(
        advisory_signature=dict(status='verified', directory='/srv/a/xsa-1', fingerprint='F' * 40, signing_key='E' * 40,
                                signature_time='2026-12-02T13:10:53Z'),
        payload_signature=None)
    assert second['verification'] == dict(
        advisory_signature=dict(status='unsigned', directory='/srv/a/xsa-2'),
        payload_signature=dict(status='verified', key_id='sha256:00', file='p2.livepatch'))
    assert 'payloads' not in result['xen02']


def test_signed_but_not_verified_keeps_its_status_without_key_fields():
    signatures = [dict(directory='/srv/a/xsa-1', format='ansible-sign', status='not_verified')]
    notes = [dict(advisory='XSA-1', name='p1', file='p1.livepatch', status='not_checked', key_id=None)]
    result = pv.attach_verification(dict(h=dict(payloads=[dict(name='p1', advisory='XSA-1')])), ADVISORIES, signatures, notes)
    assert result['h']['payloads'][0]['verification'] == dict(
        advisory_signature=dict(status='not_verified', directory='/srv/a/xsa-1'),
        payload_signature=dict(status='not_checked', key_id=None, file='p1.livepatch'))


def test_a_minisign_signed_directory_records_its_key_id_and_time():
    # minisign's result (advisory_signature) keeps the OpenPGP fields at the top level (None here) and its own under
    # 'minisign': without these the ledger would say "verified" and name no key.
    minisigned = dict(directory='/srv/a/xsa-1', format='ansible-sign', status='verified', fingerprint=None, signing_key=None,
                      signature_time=None, minisign=dict(key_id='4EB1A2C3D4E5FC74', key_file='/k/minisign.pub',
                                                         trusted_comment='timestamp:1796216253', algorithm='prehashed',
                                                         signature_time='2026-12-02T13:10:53Z'))
    result = pv.attach_verification(dict(h=dict(payloads=[dict(name='p1', advisory='XSA-1')])), ADVISORIES, [minisigned], [])
    record = result['h']['payloads'][0]['verification']['advisory_signature']
    assert record['status'] == 'verified' and record['fingerprint'] is None
    assert record['minisign'] == dict(key_id='4EB1A2C3D4E5FC74', signature_time='2026-12-02T13:10:53Z')
