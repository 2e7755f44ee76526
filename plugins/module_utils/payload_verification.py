# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification record a payload carries from the plan to each host's ledger entry.

noreboot.xen.fleet_plan verifies every advisory directory (advisory_signature) and every
payload's ``.note.Xen.signature`` (livepatch_signature_note) before it plans. This module
turns those results into one small record per planned payload, ``verification``::

    {'advisory_signature': {'status': 'verified', 'directory': ..., 'fingerprint': ...,
                            'signing_key': ..., 'signature_time': '2026-12-02T13:10:53Z',
                            'minisign': {'key_id': ..., 'signature_time': ...} (minisign-signed only)},
     'payload_signature': {'status': 'verified', 'key_id': 'sha256:...', 'file': ...} or None}

``advisory_signature.status`` is ``verified``, ``unsigned`` (not signed) or ``not_verified``
(signed, no trusted keys configured); ``payload_signature`` is None when the payload carries no
signature note, else its ``status`` (``verified`` or ``not_checked``: no payload keys configured).
The role passes the record to noreboot.xen.livepatch_rollout, which writes it into the host's
ledger entries (intent and outcome), so each host records what was verified before its payload
was applied. Pure Python, no AnsibleModule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

ADVISORY_FIELDS = ('fingerprint', 'signing_key', 'signature_time')
MINISIGN_FIELDS = ('key_id', 'signature_time')
NOT_SIGNED = 'unsigned'


def advisory_signature_record(result):
    """The ledger's view of one directory's verification result (None: the directory was not checked)."""
    if not result:
        return dict(status=NOT_SIGNED, directory=None)
    record = dict(status=result.get('status'), directory=result.get('directory'))
    if result.get('status') == 'verified':
        record.update((key, result.get(key)) for key in ADVISORY_FIELDS)
        if result.get('minisign'):
            # A minisign signature (alone or beside the OpenPGP one): its key id and signature time.
            record['minisign'] = dict((key, result['minisign'].get(key)) for key in MINISIGN_FIELDS)
    return record


def payload_signature_record(result):
    """The ledger's view of one payload's signature note result; None when it carries no note."""
    if not result or result.get('status') in (None, 'absent'):
        return None
    return dict(status=result['status'], key_id=result.get('key_id'), file=result.get('file'))


def attach_verification(decisions, advisories, signatures, payload_signatures):
    """Add ``verification`` to every payload of every decision's ``payloads``, in place.

    ``decisions``: host -> decision (fleet_plan); ``advisories``: the loaded advisories (``id``,
    ``manifest``); ``signatures``: the per-directory results; ``payload_signatures``: the per-payload
    note results (``advisory``, ``name``). Returns ``decisions``.
    """
    by_directory = dict((s.get('directory'), s) for s in signatures or [])
    directory_of = dict((a['id'], os.path.dirname(os.path.abspath(a['manifest']))) for a in advisories or [])
    notes = dict(((p.get('advisory'), p.get('name')), p) for p in payload_signatures or [])

    def record(payload, advisory_id):
        return dict(advisory_signature=advisory_signature_record(by_directory.get(directory_of.get(advisory_id))),
                    payload_signature=payload_signature_record(notes.get((advisory_id, payload.get('name')))))

    for decision in (decisions or {}).values():
        for payload in decision.get('payloads') or []:
            payload['verification'] = record(payload, payload.get('advisory'))
    return decisions
