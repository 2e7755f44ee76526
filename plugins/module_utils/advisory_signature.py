# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify signed advisory directories before any manifest in them is parsed.

The format is ansible-sign's project layout (what ``ansible-sign project gpg-sign DIR`` writes)::

    DIR/.ansible-sign/sha256sum.txt           GNU sha256sum lines "<64 hex>  <path relative to DIR>"
    DIR/.ansible-sign/sha256sum.txt.sig       detached OpenPGP signature over sha256sum.txt
    DIR/.ansible-sign/sha256sum.txt.minisig   or, and/or, a minisign signature over it (``minisign -Sm``)

Verification (``verify_advisory_dirs``):

1. every signature present over the exact bytes of sha256sum.txt must verify (both, when both
   are there). The OpenPGP one is checked with GnuPG (``gpg --verify`` by argv, reading
   ``--status-fd`` lines) against a throwaway keyring built from the operator's OpenPGP key files
   only; the minisign one in Python (minisign_signature.py) against the operator's minisign
   public key files. The trusted key files are one list; a file that starts with
   ``untrusted comment:`` is a minisign public key, any other an OpenPGP key file. Anything but
   a good signature by a key of that set (for OpenPGP: unexpired, unrevoked) is refused, naming
   the file and the key;
2. every path listed must stay inside DIR (no absolute path, no ``..``), must be a regular
   file there and must have the listed sha256;
3. every regular file in DIR (except ``.ansible-sign/``) must be listed: nothing unsigned can
   sit next to the manifest. ansible-sign honours exclusions written in ``MANIFEST.in``; this
   verifier does not (an excluded file present in DIR is refused), and symbolic links are refused.

Pure Python: files are read and gpg is run through the injected ``access`` (FileAccess) and
``run`` (argv list -> ``(rc, stdout, stderr)``, only called when an OpenPGP signature is checked),
so the logic is tested without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time

from ansible_collections.noreboot.xen.plugins.module_utils.advisory_manifest import (
    AdvisoryManifestError,
    ManifestProblem,
)
from ansible_collections.noreboot.xen.plugins.module_utils import minisign_signature as minisign

SIGN_DIR = '.ansible-sign'
CHECKSUM_FILE = SIGN_DIR + '/sha256sum.txt'
SIGNATURE_FILE = SIGN_DIR + '/sha256sum.txt.sig'
MINISIGN_FILE = SIGN_DIR + '/sha256sum.txt.minisig'
FORMAT = 'ansible-sign (sha256sum.txt + OpenPGP detached signature)'
FORMAT_MINISIGN = 'ansible-sign layout (sha256sum.txt + minisign signature)'
FORMAT_BOTH = 'ansible-sign layout (sha256sum.txt + OpenPGP detached signature + minisign signature)'
MAX_CHECKSUM_SIZE = 1024 * 1024
MAX_SIGNATURE_SIZE = 64 * 1024
MAX_FILES = 10000

_LINE_RE = re.compile(r'^([0-9a-fA-F]{64}) [ *](.+)$')
# Status keywords (doc/DETAILS of GnuPG) that refuse a signature.
_REFUSING = {
    'BADSIG': 'the signature does not match the file (it was changed after signing)',
    'EXPSIG': 'the signature has expired',
    'EXPKEYSIG': 'the signing key has expired',
    'REVKEYSIG': 'the signing key has been revoked',
    'ERRSIG': 'the signature cannot be checked',
    'NO_PUBKEY': 'the signing key is not among the trusted keys',
}
SIGNED_FIX = ('sign the advisory directory again with a trusted key (`ansible-sign project gpg-sign DIR`, '
              'see docs/advisory_manifest.md), or correct noreboot_xen_advisory_trusted_keys')
MINISIGN_FIX = ('sign the checksum file again with a trusted minisign key (`minisign -Sm .ansible-sign/sha256sum.txt -s KEY`, '
                'see docs/advisory_manifest.md), or correct noreboot_xen_advisory_trusted_keys')
MINISIGN_KEY_FIX = ('give the public key file that `minisign -G` wrote (minisign.pub: an "untrusted comment:" line and '
                    'the base64 key), or remove it from noreboot_xen_advisory_trusted_keys')


class FileAccess(object):
    """The file system as the verifier sees it; tests may pass their own."""

    def lstat_kind(self, path):
        """``'file'``, ``'dir'``, ``'link'``, ``'other'`` or None (absent)."""
        try:
            mode = os.lstat(path).st_mode
        except (IOError, OSError):
            return None
        if stat.S_ISLNK(mode):
            return 'link'
        if stat.S_ISREG(mode):
            return 'file'
        if stat.S_ISDIR(mode):
            return 'dir'
        return 'other'

    def read(self, path, limit):
        with open(path, 'rb') as handle:
            return handle.read(limit + 1)

    def sha256(self, path):
        digest = hashlib.sha256()
        with open(path, 'rb') as handle:
            for block in iter(lambda: handle.read(1 << 20), b''):
                digest.update(block)
        return digest.hexdigest()

    def tree(self, root):
        """Every entry below ``root`` as ``(relative posix path, kind)``; links are not followed."""
        entries = []
        for current, dirs, files in os.walk(root, followlinks=False):
            rel_dir = os.path.relpath(current, root)
            for name in sorted(dirs + files):
                rel = name if rel_dir == '.' else os.path.join(rel_dir, name)
                kind = self.lstat_kind(os.path.join(root, rel))
                if kind != 'dir':
                    entries.append((rel.replace(os.sep, '/'), kind))
            dirs[:] = [d for d in dirs if not (rel_dir == '.' and d == SIGN_DIR)
                       and self.lstat_kind(os.path.join(current, d)) == 'dir']
        return entries

    def mkdtemp(self):
        return tempfile.mkdtemp(prefix='noreboot-xen-gpg-')

    def write(self, path, data):
        with open(path, 'wb') as handle:
            handle.write(data)

    def rmtree(self, path):
        shutil.rmtree(path, ignore_errors=True)


def checked_relative_path(rel):
    """``rel`` normalized (``./a`` -> ``a``), or None when it is absolute, empty or has a ``..`` part."""
    if not rel or rel.startswith('/') or '\\' in rel or '\x00' in rel:
        return None
    parts = [p for p in rel.split('/') if p not in ('', '.')]
    if not parts or '..' in parts:
        return None
    return '/'.join(parts)


def parse_checksums(text, file):
    """Parse sha256sum.txt; return ``({relative path: sha256}, [ManifestProblem])``."""
    sums, problems = {}, []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE_RE.match(line)
        if not match:
            problems.append(ManifestProblem(file, 'line %d' % number, 'not a sha256sum line "<64 hex>  <path>": %r' % line[:200],
                                            'write the file with `ansible-sign project gpg-sign DIR` or `sha256sum`'))
            continue
        rel = checked_relative_path(match.group(2))
        if rel is None:
            problems.append(ManifestProblem(file, 'line %d' % number, 'path %r leaves the advisory directory (absolute or with ..)'
                                            % match.group(2), 'list only paths relative to the advisory directory, inside it'))
            continue
        if rel in sums:
            problems.append(ManifestProblem(file, 'line %d' % number, 'path %r is listed twice' % rel, 'list each file once'))
            continue
        sums[rel] = match.group(1).lower()
    return sums, problems


def parse_gpg_status(text):
    """Read ``gpg --status-fd`` output of one ``--verify``.

    Returns a dict: ``good`` (True only for GOODSIG + VALIDSIG and nothing refusing), ``refusals``
    ([(keyword, key id or fingerprint)]), ``fingerprint`` (the signing key), ``primary_fingerprint``,
    ``key_id``, ``uid``, ``timestamp`` (signature creation, seconds since the epoch) and ``signatures``
    (how many signatures gpg looked at).
    """
    result = dict(good=False, refusals=[], fingerprint=None, primary_fingerprint=None, key_id=None, uid=None,
                  timestamp=None, signatures=0, goodsig=False)
    for line in text.splitlines():
        if not line.startswith('[GNUPG:] '):
            continue
        fields = line[len('[GNUPG:] '):].split(' ')
        keyword, args = fields[0], fields[1:]
        if keyword == 'NEWSIG':
            result['signatures'] += 1
        elif keyword == 'GOODSIG' and args:
            result['goodsig'] = True
            result['key_id'] = args[0]
            result['uid'] = ' '.join(args[1:]) or None
        elif keyword == 'VALIDSIG' and len(args) >= 3:
            result['fingerprint'] = args[0]
            result['primary_fingerprint'] = args[9] if len(args) >= 10 else args[0]
            result['timestamp'] = _timestamp(args[2])
        elif keyword in _REFUSING:
            result['refusals'].append((keyword, _refusing_key(keyword, args)))
            if keyword in ('BADSIG', 'EXPKEYSIG', 'REVKEYSIG') and len(args) > 1:
                result['uid'] = ' '.join(args[1:])
    result['good'] = (result['goodsig'] and result['fingerprint'] is not None and not result['refusals']
                      and result['signatures'] <= 1)
    return result


def _refusing_key(keyword, args):
    if keyword == 'ERRSIG' and len(args) >= 7 and args[6] != '-':
        return args[6]
    return args[0] if args else None


def _timestamp(text):
    if text.isdigit():
        return int(text)
    try:  # the ISO 8601 form GnuPG may print instead: 20261202T131053
        return calendar.timegm(time.strptime(text, '%Y%m%dT%H%M%S'))
    except ValueError:
        return None


def iso_utc(timestamp):
    if timestamp is None:
        return None
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(timestamp))


class GpgKeyring(object):
    """A throwaway GnuPG home holding only the operator's trusted keys."""

    def __init__(self, run, access, gpg='gpg'):
        self.run = run
        self.access = access
        self.gpg = gpg
        self.home = None
        self.keys = {}  # fingerprint -> key file it came from

    def _argv(self, *args):
        return [self.gpg, '--batch', '--no-tty', '--homedir', self.home, '--no-default-keyring',
                '--keyring', os.path.join(self.home, 'trusted.kbx'), '--status-fd', '1'] + list(args)

    def load(self, key_files):
        """Import each key file; return the problems (a file that gives no key is one)."""
        self.home = self.access.mkdtemp()
        problems = []
        for key_file in key_files:
            rc, out, err = self.run(self._argv('--import', '--', key_file))
            imported = [line.split(' ')[3] for line in out.splitlines()
                        if line.startswith('[GNUPG:] IMPORT_OK ') and len(line.split(' ')) >= 4]
            if rc != 0 or not imported:
                problems.append(ManifestProblem(key_file, '', 'no OpenPGP public key could be read from this trusted key file (gpg: %s)'
                                                % _gpg_said(err), 'export the key with `gpg --export --armor FINGERPRINT > FILE`'))
            for fingerprint in imported:
                self.keys.setdefault(fingerprint, key_file)
        return problems

    def verify(self, signature, data):
        """Check a detached signature over ``data`` (bytes); return parse_gpg_status() plus ``stderr``."""
        sig_path = os.path.join(self.home, 'checked.sig')
        data_path = os.path.join(self.home, 'checked.txt')
        self.access.write(sig_path, signature)
        self.access.write(data_path, data)
        rc, out, err = self.run(self._argv('--trust-model', 'always', '--verify', '--', sig_path, data_path))
        status = parse_gpg_status(out)
        if rc != 0 and status['good']:
            status['good'] = False
            status['refusals'].append(('ERRSIG', status['fingerprint']))
        status['stderr'] = _gpg_said(err)
        return status

    def close(self):
        if self.home:
            self.access.rmtree(self.home)
            self.home = None


def _gpg_said(text, last=3):
    """The last ``last`` distinct lines gpg wrote on stderr (its message may span several), on one line."""
    lines = []
    for line in (text or '').splitlines():
        line = line.strip()
        if line.startswith('gpg: '):
            line = line[len('gpg: '):]
        if line and line not in lines:
            lines.append(line)
    return ' '.join(lines[-last:])[:400] or 'no output'


def _describe_key(keyring, fingerprint, uid):
    text = fingerprint or 'unknown key'
    if uid:
        text += ' (%s)' % uid
    if fingerprint and fingerprint in keyring.keys:
        text += ' from %s' % keyring.keys[fingerprint]
    return text


class TrustedKeys(object):
    """The operator's trusted key files, sorted by kind: OpenPGP key files (for gpg) and minisign public keys.

    A file whose first bytes are ``untrusted comment:`` is a minisign public key file; any other is an
    OpenPGP key file. The gpg keyring is built on first use only (a run with minisign keys only never
    runs gpg).
    """

    def __init__(self, paths, run, access, gpg='gpg'):
        self.paths = list(paths)
        self.run = run
        self.access = access
        self.gpg = gpg
        self.openpgp_files = []
        self.minisign_keys = []
        self._keyring = None

    def load(self):
        """Sort and read the key files; raise AdvisoryManifestError naming every file that is no usable key."""
        problems = []
        for path in self.paths:
            try:
                head = self.access.read(path, minisign.MAX_PUBLIC_KEY_FILE)
            except (IOError, OSError) as exc:
                problems.append(ManifestProblem(path, '', 'cannot read this trusted key file (%s)' % (getattr(exc, 'strerror', None) or exc),
                                                'correct the path in noreboot_xen_advisory_trusted_keys'))
                continue
            if not minisign.looks_like_public_key(head):
                self.openpgp_files.append(path)
                continue
            try:
                key = minisign.parse_public_key(head, path)
            except minisign.MinisignError as exc:
                problems.append(ManifestProblem(path, '', 'not a minisign public key file: %s' % exc, MINISIGN_KEY_FIX))
                continue
            same_id = [k for k in self.minisign_keys if k.key_id == key.key_id]
            if same_id and same_id[0].key != key.key:
                problems.append(ManifestProblem(path, '', 'minisign key id %s is also the id of another key, in %s: a signature '
                                                'names its key by id, so two keys with one id cannot both be trusted'
                                                % (key.key_id_text, same_id[0].path), 'trust only one of the two keys'))
            elif not same_id:
                self.minisign_keys.append(key)
        if problems:
            raise AdvisoryManifestError(problems)

    def keyring(self):
        """The GpgKeyring of the OpenPGP key files (built once); raises AdvisoryManifestError."""
        if self._keyring is None:
            if self.run is None:
                raise AdvisoryManifestError([ManifestProblem(', '.join(self.openpgp_files), '', 'OpenPGP key files are given '
                                                             'but gpg cannot be run', 'install gpg (Debian package gpg)')])
            self._keyring = GpgKeyring(self.run, self.access, gpg=self.gpg)
            problems = self._keyring.load(self.openpgp_files)
            if problems:
                raise AdvisoryManifestError(problems)
        return self._keyring

    def describe_minisign(self):
        return ', '.join(key.describe() for key in self.minisign_keys) or 'none'

    def close(self):
        if self._keyring is not None:
            self._keyring.close()
            self._keyring = None


def directory_format(signature_files):
    """The ``format`` of a directory signed with ``signature_files`` (SIGNATURE_FILE and/or MINISIGN_FILE)."""
    if SIGNATURE_FILE in signature_files and MINISIGN_FILE in signature_files:
        return FORMAT_BOTH
    return FORMAT_MINISIGN if MINISIGN_FILE in signature_files else FORMAT


def _verify_openpgp(directory, checksum_bytes, trusted, access):
    """``(result fields, key text)`` of the OpenPGP signature; raises AdvisoryManifestError."""
    checksum_path = os.path.join(directory, CHECKSUM_FILE)
    signature_path = os.path.join(directory, SIGNATURE_FILE)
    if not trusted.openpgp_files:
        raise AdvisoryManifestError([ManifestProblem(signature_path, '', 'an OpenPGP signature, but no OpenPGP key is among '
                                                     'the trusted keys (minisign keys: %s); every signature in .ansible-sign/ '
                                                     'must verify' % trusted.describe_minisign(),
                                                     'add the signer\'s OpenPGP key file to noreboot_xen_advisory_trusted_keys, '
                                                     'or remove %s' % SIGNATURE_FILE)])
    signature = access.read(signature_path, MAX_SIGNATURE_SIZE)
    if len(signature) > MAX_SIGNATURE_SIZE:
        raise AdvisoryManifestError([ManifestProblem(signature_path, '', 'the signature file is too large', SIGNED_FIX)])
    keyring = trusted.keyring()
    status = keyring.verify(signature, checksum_bytes)
    if not status['good']:
        raise AdvisoryManifestError([_signature_problem(checksum_path, signature_path, status, keyring)])
    fields = dict(fingerprint=status['primary_fingerprint'], signing_key=status['fingerprint'],
                  key_file=keyring.keys.get(status['primary_fingerprint']), uid=status['uid'],
                  signature_time=iso_utc(status['timestamp']), signature_timestamp=status['timestamp'])
    return fields, _describe_key(keyring, status['primary_fingerprint'], status['uid'])


def _verify_minisign(directory, checksum_bytes, trusted, access):
    """``(result fields, key text)`` of the minisign signature; raises AdvisoryManifestError."""
    checksum_path = os.path.join(directory, CHECKSUM_FILE)
    signature_path = os.path.join(directory, MINISIGN_FILE)
    if not trusted.minisign_keys:
        raise AdvisoryManifestError([ManifestProblem(signature_path, '', 'a minisign signature, but no minisign public key is '
                                                     'among the trusted keys; every signature in .ansible-sign/ must verify',
                                                     'add the signer\'s minisign.pub to noreboot_xen_advisory_trusted_keys, '
                                                     'or remove %s' % MINISIGN_FILE)])
    data = access.read(signature_path, minisign.MAX_SIGNATURE_FILE)
    try:
        signature = minisign.parse_signature(data)
    except minisign.MinisignError as exc:
        raise AdvisoryManifestError([ManifestProblem(signature_path, '', 'not a minisign signature file: %s' % exc, MINISIGN_FIX)])
    try:
        verified = minisign.verify(signature, checksum_bytes, trusted.minisign_keys)
    except minisign.MinisignError as exc:
        # A signature that no longer matches sha256sum.txt names that file (as for OpenPGP); the rest the .minisig.
        changed = isinstance(exc, minisign.SignatureMismatch)
        raise AdvisoryManifestError([ManifestProblem(checksum_path if changed else signature_path, '',
                                                     '%s: %s' % (os.path.basename(signature_path), exc), MINISIGN_FIX)])
    fields = dict(key_id=verified['key_id'], key_file=verified['key'].path, algorithm=verified['algorithm'],
                  trusted_comment=verified['trusted_comment'], signature_time=iso_utc(verified['timestamp']),
                  signature_timestamp=verified['timestamp'])
    return fields, 'minisign key %s' % verified['key'].describe()


def verify_directory(directory, trusted, access, signature_files):
    """Verify one signed advisory directory; return its result dict or raise AdvisoryManifestError.

    Every file of ``signature_files`` (SIGNATURE_FILE and/or MINISIGN_FILE) must verify.
    """
    checksum_path = os.path.join(directory, CHECKSUM_FILE)
    checksum_bytes = access.read(checksum_path, MAX_CHECKSUM_SIZE)
    if len(checksum_bytes) > MAX_CHECKSUM_SIZE:
        raise AdvisoryManifestError([ManifestProblem(checksum_path, '', 'the checksum file is too large', SIGNED_FIX)])
    result = dict(directory=directory, format=directory_format(signature_files), status='verified')
    keys, problems = [], []
    for name, check in ((SIGNATURE_FILE, _verify_openpgp), (MINISIGN_FILE, _verify_minisign)):
        if name not in signature_files:
            continue
        try:
            fields, key = check(directory, checksum_bytes, trusted, access)
        except AdvisoryManifestError as exc:
            problems.extend(exc.problems)
            continue
        if name == MINISIGN_FILE:
            result['minisign'] = fields
        else:
            result.update(fields)
        keys.append(key)
    if problems:
        raise AdvisoryManifestError(problems)
    key = ' and '.join(keys)
    try:
        text = checksum_bytes.decode('utf-8')
    except UnicodeDecodeError:
        raise AdvisoryManifestError([ManifestProblem(checksum_path, '', 'not UTF-8 text (signed by %s)' % key, SIGNED_FIX)])
    sums, problems = parse_checksums(text, checksum_path)
    if problems:
        raise AdvisoryManifestError(problems)
    problems.extend(_compare_tree(directory, sums, key, access))
    if problems:
        raise AdvisoryManifestError(problems)
    result.update(files=len(sums), checksums=sums)
    return result


def _signature_problem(checksum_path, signature_path, status, keyring):
    if status['refusals']:
        keyword, key = status['refusals'][0]
        reason = _REFUSING[keyword]
        if keyword in ('ERRSIG', 'NO_PUBKEY') and any(k == 'NO_PUBKEY' for k, dummy in status['refusals']):
            reason = _REFUSING['NO_PUBKEY']
        for fingerprint in keyring.keys:
            if key and len(key) >= 16 and fingerprint.endswith(key.upper()):
                key = fingerprint
        described = _describe_key(keyring, key, status['uid'])
        problem = '%s: %s, key %s (trusted: %s)' % (
            os.path.basename(signature_path), reason, described, ', '.join(sorted(keyring.keys)) or 'none')
    elif status['signatures'] > 1:
        problem = '%s holds %d signatures; one is expected' % (os.path.basename(signature_path), status['signatures'])
    else:
        problem = '%s is not a valid detached OpenPGP signature of %s (gpg: %s)' % (
            os.path.basename(signature_path), os.path.basename(checksum_path), status.get('stderr'))
    return ManifestProblem(checksum_path, '', problem, SIGNED_FIX)


def _compare_tree(directory, sums, key, access):
    problems = []
    signed_by = 'signed in %s by %s' % (CHECKSUM_FILE, key)
    entries = access.tree(directory)
    if len(entries) > MAX_FILES:
        return [ManifestProblem(directory, '', 'more than %d files in the advisory directory' % MAX_FILES, 'keep one advisory per directory')]
    present = {}
    for rel, kind in entries:
        present[rel] = kind
    for rel in sorted(present):
        path = os.path.join(directory, rel)
        if present[rel] != 'file':
            problems.append(ManifestProblem(path, '', 'a %s in a signed advisory directory (only regular files are allowed)'
                                            % ('symbolic link' if present[rel] == 'link' else 'special file'),
                                            'replace it by the file itself and sign again'))
        elif rel not in sums:
            problems.append(ManifestProblem(path, '', 'present in the advisory directory but not %s' % signed_by,
                                            'remove the file, or sign the directory again with it'))
    for rel in sorted(sums):
        path = os.path.join(directory, rel)
        if rel not in present:
            problems.append(ManifestProblem(path, '', 'listed (%s) but missing' % signed_by, 'restore the file or sign again'))
        elif present[rel] == 'file':
            actual = access.sha256(path)
            if actual != sums[rel]:
                problems.append(ManifestProblem(path, '', 'sha256 %s differs from %s %s: the file was changed after signing'
                                                % (actual, sums[rel], signed_by), 'restore the signed file, or sign again'))
    return problems


def advisory_dirs(manifests):
    """The distinct directories of the manifest paths, in first-seen order."""
    seen = []
    for manifest in manifests:
        directory = os.path.dirname(os.path.abspath(manifest))
        if directory not in seen:
            seen.append(directory)
    return seen


def require_signature_effective(require_signature, trusted_keys):
    """The policy: ``None`` means required once trusted keys are configured."""
    if require_signature is None:
        return bool(trusted_keys)
    return bool(require_signature)


def verify_advisory_dirs(manifests, trusted_keys, require_signature, run, access=None, gpg='gpg'):
    """Verify the directories of ``manifests`` before any of them is parsed.

    ``trusted_keys`` are key files, OpenPGP or minisign (see TrustedKeys); ``run`` runs gpg and is
    only called when an OpenPGP signature is checked. Returns ``(results, warnings)``: one result dict
    per directory (``status`` V(verified), V(unsigned) or V(not_verified)) and the warnings to print.
    Raises AdvisoryManifestError with every refused directory.
    """
    access = access or FileAccess()
    trusted_keys = list(trusted_keys or [])
    required = require_signature_effective(require_signature, trusted_keys)
    if required and not trusted_keys:
        raise AdvisoryManifestError([ManifestProblem(
            'noreboot_xen_require_signature', '', 'signatures are required but no trusted keys are configured',
            'set noreboot_xen_advisory_trusted_keys to the public key files of the advisory signers')])
    results, warnings, problems = [], [], []
    trusted = None
    try:
        for directory in advisory_dirs(manifests):
            kinds = dict((name, access.lstat_kind(os.path.join(directory, name)))
                         for name in (CHECKSUM_FILE, SIGNATURE_FILE, MINISIGN_FILE))
            signature_files = [name for name in (SIGNATURE_FILE, MINISIGN_FILE) if kinds[name] is not None]
            if not any(kind is not None for kind in kinds.values()):
                if required:
                    problems.append(ManifestProblem(directory, '', 'the advisory directory is not signed (no %s and no %s) and '
                                                    'signatures are required' % (SIGNATURE_FILE, MINISIGN_FILE), SIGNED_FIX))
                results.append(dict(directory=directory, format=None, status='unsigned'))
                continue
            if (kinds[CHECKSUM_FILE] is None or not signature_files
                    or any(kind not in (None, 'file') for kind in kinds.values())):
                problems.append(ManifestProblem(os.path.join(directory, SIGN_DIR), '', 'needs both sha256sum.txt and a signature '
                                                'of it (sha256sum.txt.sig, sha256sum.txt.minisig, or both) as regular files',
                                                SIGNED_FIX))
                continue
            if not trusted_keys:
                results.append(dict(directory=directory, format=directory_format(signature_files), status='not_verified'))
                continue
            if trusted is None:
                trusted = TrustedKeys(trusted_keys, run, access, gpg=gpg)
                trusted.load()
            try:
                results.append(verify_directory(directory, trusted, access, signature_files))
            except AdvisoryManifestError as exc:
                problems.extend(exc.problems)
    finally:
        if trusted is not None:
            trusted.close()
    if problems:
        raise AdvisoryManifestError(problems)
    unverified = [r['directory'] for r in results if r['status'] != 'verified']
    if unverified and not trusted_keys:
        warnings.append('NOTHING IS SIGNATURE-CHECKED: no trusted keys are configured (noreboot_xen_advisory_trusted_keys), so '
                        'the advisory manifests and payloads in %s are trusted as they are on disk; anyone who can write there '
                        'decides what runs in the hypervisor' % ', '.join(unverified))
    elif unverified:
        warnings.append('advisory directories not signed, accepted because noreboot_xen_require_signature is false: %s'
                        % ', '.join(unverified))
    return results, warnings


def check_manifest_digests(results, documents):
    """Problems when a manifest's parsed bytes are not the ones signed (changed between check and read)."""
    verified = dict((r['directory'], r) for r in results if r['status'] == 'verified')
    problems = []
    for path, dummy, digest in documents:
        directory = os.path.dirname(os.path.abspath(path))
        if directory not in verified:
            continue
        rel = os.path.relpath(os.path.abspath(path), directory).replace(os.sep, '/')
        signed = verified[directory]['checksums'].get(rel)
        if signed != digest:
            problems.append(ManifestProblem(path, '', 'the manifest read (sha256 %s) is not the one signed in %s (%s)'
                                            % (digest, CHECKSUM_FILE, signed), SIGNED_FIX))
    return problems


def public_result(result):
    """A verification result without the per-file checksums, for the plan and the summary."""
    return dict((k, v) for k, v in result.items() if k != 'checksums')


def summary_line(result):
    """One line of text about one directory, for the plan table."""
    if result['status'] == 'verified':
        signers = []
        if result.get('fingerprint'):
            signers.append('key %s, signed %s' % (result['fingerprint'], result['signature_time']))
        if result.get('minisign'):
            signed = result['minisign']
            signers.append('minisign key %s, signed %s (trusted comment: %s)' % (
                signed['key_id'], signed['signature_time'] or 'at a time not given', signed['trusted_comment'].replace('\t', ' ')))
        return 'Signature: %s verified, %s, %d file(s)' % (result['directory'], '; '.join(signers), result['files'])
    if result['status'] == 'not_verified':
        return 'Signature: %s is signed but NOT VERIFIED (no trusted keys configured)' % result['directory']
    return 'Signature: %s is NOT SIGNED' % result['directory']
