# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read minisign public keys and signatures, and verify a signature over bytes, as ``minisign -V`` does.

The formats are minisign's (https://jedisct1.github.io/minisign/), read strictly::

    minisign.pub       untrusted comment: <text>
                       base64("Ed" | key id (8 bytes) | Ed25519 public key (32 bytes))

    FILE.minisig       untrusted comment: <text>
                       base64(algorithm (2 bytes) | key id (8 bytes) | Ed25519 signature (64 bytes))
                       trusted comment: <text>
                       base64(global signature (64 bytes))

The algorithm is ``ED`` (what minisign 0.11 writes by default: the Ed25519 signature is over the
BLAKE2b-512 hash of the file) or ``Ed`` (legacy, ``minisign -S -l``: over the file itself). The
global signature is an Ed25519 signature over the 64 signature bytes followed by the trusted
comment, so the trusted comment (minisign puts ``timestamp:<seconds since the epoch>`` in it) is
signed too. A key id is shown as minisign shows it: the 8 bytes read as a little-endian integer,
as 16 upper-case hex digits.

Ed25519 comes from the ``cryptography`` library, BLAKE2b from hashlib. Hostile input gives
MinisignError with a message, never another exception.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import re
import unicodedata

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError as exc:  # pragma: no cover - the controller's venv has cryptography
    CRYPTOGRAPHY_IMPORT_ERROR = str(exc)

UNTRUSTED_PREFIX = b'untrusted comment: '
TRUSTED_PREFIX = b'trusted comment: '
KEY_ALGORITHM = b'Ed'
ALGORITHMS = {b'ED': 'prehashed', b'Ed': 'legacy'}
KEY_ID_BYTES = 8
PUBLIC_KEY_BYTES = 2 + KEY_ID_BYTES + 32
SIGNATURE_BYTES = 2 + KEY_ID_BYTES + 64
GLOBAL_SIGNATURE_BYTES = 64
SECRET_KEY_BYTES = 2 + 2 + 2 + 32 + 8 + 8 + KEY_ID_BYTES + 64 + 32
COMMENT_MAX = 1024          # minisign's COMMENTMAXBYTES (the line, prefix and newline included)
TRUSTED_COMMENT_MAX = 8192  # minisign's TRUSTEDCOMMENTMAXBYTES
MAX_PUBLIC_KEY_FILE = COMMENT_MAX + 64
MAX_SIGNATURE_FILE = COMMENT_MAX + TRUSTED_COMMENT_MAX + 256
_TIMESTAMP_RE = re.compile(r'(?:^|\t)timestamp:([0-9]{1,12})(?:\t|$)')


class MinisignError(ValueError):
    """A key or signature that cannot be read or does not verify; the message says why."""


class SignatureMismatch(MinisignError):
    """The signature does not match the signed bytes (they, or the signature, changed after signing)."""


def looks_like_public_key(data):
    """True when ``data`` (the first bytes of a file) starts as minisign's key and signature files do."""
    return data.startswith(UNTRUSTED_PREFIX.rstrip())


def key_id_text(key_id):
    """The key id as minisign prints it (``%016X`` of the little-endian 64-bit number)."""
    return '%016X' % int(binascii.hexlify(bytearray(reversed(bytearray(key_id)))), 16)


def _lines(data, count, what):
    """The ``count`` lines of ``data`` (a final newline is optional, nothing may follow), ``\\r\\n`` allowed."""
    if not isinstance(data, bytes):
        raise MinisignError('%s is not bytes' % what)
    parts = data.split(b'\n')
    if len(parts) > count and parts[count:] != [b'']:
        raise MinisignError('%s has more than %d lines (minisign writes exactly %d)' % (what, count, count))
    if len(parts) < count:
        raise MinisignError('%s has %d line(s), %d expected' % (what, len(parts), count))
    lines = []
    for number, line in enumerate(parts[:count], 1):
        if line.endswith(b'\r'):
            line = line[:-1]
        if b'\r' in line or b'\x00' in line:
            raise MinisignError('%s line %d holds a carriage return or NUL byte' % (what, number))
        lines.append(line)
    return lines


def _base64(line, size, what):
    """Strict base64 of exactly ``size`` bytes (any size when None) (canonical padding, no other characters)."""
    try:
        decoded = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise MinisignError('%s is not base64' % what)
    if base64.b64encode(decoded) != line:
        raise MinisignError('%s is not base64 in canonical form' % what)
    if size is not None and len(decoded) != size:
        raise MinisignError('%s decodes to %d bytes, %d expected' % (what, len(decoded), size))
    return decoded


def _comment(line, prefix, limit, what):
    if not line.startswith(prefix):
        raise MinisignError('%s does not start with "%s"' % (what, prefix.decode('ascii')))
    if len(line) + 1 >= limit:
        raise MinisignError('%s is longer than minisign allows (%d bytes)' % (what, limit - 1))
    try:
        text = line[len(prefix):].decode('utf-8')
    except UnicodeDecodeError:
        raise MinisignError('%s is not UTF-8 text' % what)
    if any(c != '\t' and unicodedata.category(c) == 'Cc' for c in text):
        raise MinisignError('%s holds control characters' % what)
    return text


class PublicKey(object):
    """A minisign public key: ``key_id`` (8 bytes), ``key`` (32 bytes) and the file it came from."""

    def __init__(self, key_id, key, path=None):
        self.key_id = key_id
        self.key = key
        self.path = path

    @property
    def key_id_text(self):
        return key_id_text(self.key_id)

    def describe(self):
        return '%s (%s)' % (self.key_id_text, self.path) if self.path else self.key_id_text


def parse_public_key(data, path=None):
    """The PublicKey of a ``minisign.pub`` file's bytes; raises MinisignError."""
    if len(data) > MAX_PUBLIC_KEY_FILE:
        raise MinisignError('too large for a minisign public key file (%d bytes at most)' % MAX_PUBLIC_KEY_FILE)
    first, encoded = _lines(data, 2, 'the public key file')
    _comment(first, UNTRUSTED_PREFIX, COMMENT_MAX, 'line 1 (the untrusted comment)')
    raw = _base64(encoded, None, 'line 2 (the key)')
    if len(raw) == SECRET_KEY_BYTES and raw[:2] == KEY_ALGORITHM:
        raise MinisignError('this is a minisign secret key, not a public key: give the .pub file that `minisign -G` '
                            'wrote, and keep the secret key away from the controller')
    if len(raw) != PUBLIC_KEY_BYTES:
        raise MinisignError('line 2 (the key) decodes to %d bytes, %d expected' % (len(raw), PUBLIC_KEY_BYTES))
    if raw[:2] != KEY_ALGORITHM:
        raise MinisignError('unsupported key algorithm %r (minisign public keys are "Ed", Ed25519)' % raw[:2].decode('latin-1'))
    return PublicKey(raw[2:2 + KEY_ID_BYTES], raw[2 + KEY_ID_BYTES:], path)


class Signature(object):
    """A parsed ``.minisig`` file."""

    def __init__(self, algorithm, key_id, signature, trusted_comment, trusted_comment_bytes, global_signature):
        self.algorithm = algorithm                  # b'ED' or b'Ed'
        self.key_id = key_id
        self.signature = signature
        self.trusted_comment = trusted_comment      # text, as minisign prints it
        self.trusted_comment_bytes = trusted_comment_bytes
        self.global_signature = global_signature

    @property
    def key_id_text(self):
        return key_id_text(self.key_id)


def parse_signature(data):
    """The Signature in a ``.minisig`` file's bytes; raises MinisignError."""
    if len(data) > MAX_SIGNATURE_FILE:
        raise MinisignError('too large for a minisign signature file (%d bytes at most)' % MAX_SIGNATURE_FILE)
    untrusted, encoded, trusted, encoded_global = _lines(data, 4, 'the signature file')
    _comment(untrusted, UNTRUSTED_PREFIX, COMMENT_MAX, 'line 1 (the untrusted comment)')
    raw = _base64(encoded, SIGNATURE_BYTES, 'line 2 (the signature)')
    if raw[:2] not in ALGORITHMS:
        raise MinisignError('unsupported signature algorithm %r on line 2 (minisign writes "ED", or "Ed" with -l)'
                            % raw[:2].decode('latin-1'))
    comment = _comment(trusted, TRUSTED_PREFIX, TRUSTED_COMMENT_MAX, 'line 3 (the trusted comment)')
    global_signature = _base64(encoded_global, GLOBAL_SIGNATURE_BYTES, 'line 4 (the global signature)')
    return Signature(raw[:2], raw[2:2 + KEY_ID_BYTES], raw[2 + KEY_ID_BYTES:], comment, trusted[len(TRUSTED_PREFIX):],
                     global_signature)


def signature_timestamp(trusted_comment):
    """The ``timestamp:N`` minisign writes into the trusted comment, or None."""
    match = _TIMESTAMP_RE.search(trusted_comment or '')
    return int(match.group(1)) if match else None


def _ed25519_verify(key, signature, message):
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except InvalidSignature:
        return False
    except ValueError:  # a key that is not a valid Ed25519 point
        return False
    return True


def verify(signature, data, keys):
    """Check ``signature`` (a Signature) over ``data`` (bytes) with the trusted ``keys`` (PublicKey list).

    Returns ``dict(key=PublicKey, key_id, algorithm ('prehashed' or 'legacy'), trusted_comment,
    timestamp)``; raises MinisignError saying which key signed, which keys are trusted, and what failed.
    """
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise MinisignError('the Python cryptography library is needed on the controller to verify minisign '
                            'signatures (%s)' % CRYPTOGRAPHY_IMPORT_ERROR)
    matching = [key for key in keys if key.key_id == signature.key_id]
    if not matching:
        raise MinisignError('signed by minisign key %s, trusted minisign keys are %s' % (
            signature.key_id_text, ', '.join(key.describe() for key in keys) or 'none'))
    key = matching[0]
    message = hashlib.blake2b(data, digest_size=64).digest() if signature.algorithm == b'ED' else data
    if not _ed25519_verify(key.key, signature.signature, message):
        raise SignatureMismatch('the signature does not match the signed file (it was changed after signing), key %s'
                                % key.describe())
    if not _ed25519_verify(key.key, signature.global_signature, signature.signature + signature.trusted_comment_bytes):
        raise MinisignError('the global signature over the trusted comment does not verify (the trusted comment was '
                            'changed after signing), key %s' % key.describe())
    return dict(key=key, key_id=key.key_id_text, algorithm=ALGORITHMS[signature.algorithm],
                trusted_comment=signature.trusted_comment, timestamp=signature_timestamp(signature.trusted_comment))
