# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the in-payload signature note ``.note.Xen.signature`` (XenServer livepatch-build-tools).

Format, version 1, as XenServer's livepatch-build-tools write it (``sign/livepatch-sign`` of the
CP-50319 signing patch) and as the Xen verification patch posted to xen-devel in May 2025 reads it:

* a section ``.note.Xen.signature`` holding one ELF note: ``namesz``, ``descsz``, ``type`` (three
  uint32, type 0), the name ``Xen\\0`` padded to 4 bytes, then the descriptor;
* the descriptor: ``uint16 version`` (1), ``uint8 algorithm`` (0: RSA), ``uint8 hash``
  (0: SHA-256), ``uint32 length``, then ``length`` signature bytes (RSA PKCS#1 v1.5, the output
  of ``openssl dgst -sha256 -sign``). Integers are in the payload's byte order (little-endian
  x86-64: livepatch-sign packs them in native order);
* the signature is over the whole payload file with the ``length`` signature bytes set to zero
  (the signer adds the note with a zeroed signature, signs the file, then fills the bytes in).

The format carries no key identifier: a signature is tried against every configured public key,
and a payload changed after signing cannot be told apart from one signed by an unknown key.
The key id reported is ``sha256:`` and the SHA-256 of the key's DER SubjectPublicKeyInfo
(``openssl pkey -pubin -outform DER | sha256sum``).

``parse_signature_note`` is the one place that knows the layout. Pure Python; RSA verification
uses the ``cryptography`` library on the controller.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import struct

from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import (
    MAX_PAYLOAD_SIZE,
    SHT_NOBITS,
    PayloadError,
    read_sections,
)

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
except ImportError as exc:  # pragma: no cover - the controller's venv has cryptography
    CRYPTOGRAPHY_IMPORT_ERROR = str(exc)

SIGNATURE_SECTION = '.note.Xen.signature'
NOTE_NAME = b'Xen'
NOTE_TYPE = 0
SIGNATURE_VERSION = 1
ALGORITHMS = {0: 'rsa'}
HASHES = {0: 'sha256'}
HEADER = struct.Struct('<HBBI')
NOTE_HEADER = struct.Struct('<III')
MAX_SIGNATURE = 1024  # bytes; RSA-8192 is 1024. The Xen patch refuses notes of 1024 bytes or more.


class SignatureNoteError(ValueError):
    """The signature note cannot be read; the message says why."""


def parse_signature_note(section):
    """Parse the bytes of a ``.note.Xen.signature`` section (version 1).

    Returns a dict: ``version``, ``algorithm`` ('rsa'), ``hash`` ('sha256'), ``signature``
    (bytes) and ``signature_offset`` (where the signature bytes start in ``section``).
    Raises SignatureNoteError naming what is wrong.
    """
    if len(section) < NOTE_HEADER.size:
        raise SignatureNoteError('the section is %d bytes, too short for an ELF note' % len(section))
    namesz, descsz, note_type = NOTE_HEADER.unpack_from(section, 0)
    desc_start = NOTE_HEADER.size + namesz + (-namesz) % 4
    if desc_start + descsz > len(section):
        raise SignatureNoteError('the note is truncated (name %d bytes, descriptor %d bytes, section %d bytes)'
                                 % (namesz, descsz, len(section)))
    name = section[NOTE_HEADER.size:NOTE_HEADER.size + namesz].rstrip(b'\0')
    if name != NOTE_NAME or note_type != NOTE_TYPE:
        raise SignatureNoteError('the note is owner %r type %d, expected owner Xen type 0 (livepatch-build-tools '
                                 'signature version 1)' % (name.decode('latin-1'), note_type))
    if descsz < HEADER.size:
        raise SignatureNoteError('the descriptor is %d bytes, shorter than the %d-byte signature header' % (descsz, HEADER.size))
    version, algorithm, digest, length = HEADER.unpack_from(section, desc_start)
    if version != SIGNATURE_VERSION:
        raise SignatureNoteError('signature version %d, only version %d is known' % (version, SIGNATURE_VERSION))
    if algorithm not in ALGORITHMS or digest not in HASHES:
        raise SignatureNoteError('signature algorithm %d hash %d, only RSA (0) over SHA-256 (0) is known' % (algorithm, digest))
    if length == 0 or length > MAX_SIGNATURE or HEADER.size + length > descsz:
        raise SignatureNoteError('signature length %d does not fit the %d-byte descriptor (1 to %d bytes)'
                                 % (length, descsz, MAX_SIGNATURE))
    start = desc_start + HEADER.size
    return dict(version=version, algorithm=ALGORITHMS[algorithm], hash=HASHES[digest],
                signature=bytes(section[start:start + length]), signature_offset=start)


def find_signature_note(data, source=None):
    """The parsed note of the payload ``data`` with ``file_offset`` of the signature, or None without one.

    Raises PayloadError (the ELF file) or SignatureNoteError (the note).
    """
    found = [s for s in read_sections(data, source) if s['name'] == SIGNATURE_SECTION]
    if not found:
        return None
    if len(found) > 1:
        raise SignatureNoteError('section %s appears %d times; a payload carries one signature' % (SIGNATURE_SECTION, len(found)))
    section = found[0]
    if section['type'] == SHT_NOBITS:
        raise SignatureNoteError('section %s has no contents in the file (SHT_NOBITS)' % SIGNATURE_SECTION)
    note = parse_signature_note(data[section['offset']:section['offset'] + section['size']])
    note['file_offset'] = section['offset'] + note['signature_offset']
    return note


def signed_bytes(data, note):
    """The bytes the signature covers: the payload with the note's signature bytes zeroed."""
    start = note['file_offset']
    end = start + len(note['signature'])
    return bytes(data[:start]) + b'\0' * (end - start) + bytes(data[end:])


def load_public_key(path):
    """``(key, key_id)`` of the RSA public key in the PEM file ``path``; raises SignatureNoteError."""
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise SignatureNoteError('the Python cryptography library is needed on the controller to verify payload '
                                 'signatures (%s)' % CRYPTOGRAPHY_IMPORT_ERROR)
    try:
        with open(path, 'rb') as handle:
            key = serialization.load_pem_public_key(handle.read())
    except (IOError, OSError) as exc:
        raise SignatureNoteError('cannot read the payload signing key %s (%s)' % (path, getattr(exc, 'strerror', None) or exc))
    except ValueError as exc:
        raise SignatureNoteError('%s is not a PEM public key (%s)' % (path, exc))
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureNoteError('%s is not an RSA public key; signature version 1 is RSA' % path)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, 'sha256:' + hashlib.sha256(der).hexdigest()


def _rsa_sha256_ok(key, signature, data):
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def check_payload_signature(data, key_paths, name, require=False):
    """The signature note result of one payload (``name`` is how messages call the file).

    Returns a dict with ``status``:

    * ``absent``: no note (``refused`` True only with ``require``);
    * ``not_checked``: a note but no keys configured (nothing to verify against);
    * ``verified``: with ``key_id`` and ``key_file`` of the key that verified it;
    * ``refused``: with ``reason`` naming the file and the keys tried.

    ``refused`` is True when the payload must not be used. Key files that cannot be read raise
    SignatureNoteError (a configuration error, not the payload's).
    """
    result = dict(file=name, status='absent', refused=False, key_id=None, key_file=None, reason=None)
    try:
        note = find_signature_note(data, name)
    except (PayloadError, SignatureNoteError) as exc:
        result.update(status='refused', refused=True,
                      reason='%s: unreadable %s note: %s' % (name, SIGNATURE_SECTION, exc))
        return result
    if note is None:
        if require:
            result.update(refused=True, reason='%s carries no %s note and payload signatures are required'
                          % (name, SIGNATURE_SECTION))
        return result
    result.update(version=note['version'], algorithm=note['algorithm'], hash=note['hash'])
    if not key_paths:
        result.update(status='not_checked', reason='%s carries a %s note but no payload signing keys are configured'
                      % (name, SIGNATURE_SECTION))
        return result
    keys = [(path,) + load_public_key(path) for path in key_paths]
    covered = signed_bytes(data, note)
    for path, key, key_id in keys:
        if _rsa_sha256_ok(key, note['signature'], covered):
            result.update(status='verified', key_id=key_id, key_file=path)
            return result
    tried = ', '.join('%s (%s)' % (path, key_id) for path, dummy, key_id in keys)
    result.update(status='refused', refused=True,
                  reason='%s: the %s signature does not verify with any configured key: %s. The payload was '
                  'changed after signing, or signed by a key that is not trusted' % (name, SIGNATURE_SECTION, tried))
    return result


def check_payload_file(path, key_paths, name=None, require=False):
    """``check_payload_signature`` over the file at ``path`` (read whole, at most MAX_PAYLOAD_SIZE + 1 bytes)."""
    with open(path, 'rb') as handle:
        data = handle.read(MAX_PAYLOAD_SIZE + 1)
    return check_payload_signature(data, key_paths, name or path, require=require)
