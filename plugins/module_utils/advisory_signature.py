# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify signed advisory directories before any manifest in them is parsed.

The format is ansible-sign's project layout (what ``ansible-sign project gpg-sign DIR`` writes)::

    DIR/.ansible-sign/sha256sum.txt       GNU sha256sum lines "<64 hex>  <path relative to DIR>"
    DIR/.ansible-sign/sha256sum.txt.sig   detached OpenPGP signature over sha256sum.txt

Verification (``verify_advisory_dirs``):

1. the signature over the exact bytes of sha256sum.txt is checked with GnuPG (``gpg --verify``
   by argv, reading ``--status-fd`` lines) against a throwaway keyring built from the
   operator's key files only; anything but a good signature by an unexpired, unrevoked key of
   that set is refused, naming the file and the key;
2. every path listed must stay inside DIR (no absolute path, no ``..``), must be a regular
   file there and must have the listed sha256;
3. every regular file in DIR (except ``.ansible-sign/``) must be listed: nothing unsigned can
   sit next to the manifest. ansible-sign honours exclusions written in ``MANIFEST.in``; this
   verifier does not (an excluded file present in DIR is refused), and symbolic links are refused.

Pure Python: files are read and gpg is run through the injected ``access`` (FileAccess) and
``run`` (argv list -> ``(rc, stdout, stderr)``), so the logic is tested without Ansible.
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

SIGN_DIR = '.ansible-sign'
CHECKSUM_FILE = SIGN_DIR + '/sha256sum.txt'
SIGNATURE_FILE = SIGN_DIR + '/sha256sum.txt.sig'
FORMAT = 'ansible-sign (sha256sum.txt + OpenPGP detached signature)'
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


def verify_directory(directory, keyring, access):
    """Verify one signed advisory directory; return its result dict or raise AdvisoryManifestError."""
    checksum_path = os.path.join(directory, CHECKSUM_FILE)
    signature_path = os.path.join(directory, SIGNATURE_FILE)
    checksum_bytes = access.read(checksum_path, MAX_CHECKSUM_SIZE)
    signature = access.read(signature_path, MAX_SIGNATURE_SIZE)
    if len(checksum_bytes) > MAX_CHECKSUM_SIZE or len(signature) > MAX_SIGNATURE_SIZE:
        raise AdvisoryManifestError([ManifestProblem(checksum_path, '', 'the checksum or signature file is too large', SIGNED_FIX)])
    status = keyring.verify(signature, checksum_bytes)
    if not status['good']:
        raise AdvisoryManifestError([_signature_problem(checksum_path, signature_path, status, keyring)])
    key = _describe_key(keyring, status['primary_fingerprint'], status['uid'])
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
    return dict(directory=directory, format=FORMAT, status='verified', fingerprint=status['primary_fingerprint'],
                signing_key=status['fingerprint'], key_file=keyring.keys.get(status['primary_fingerprint']), uid=status['uid'],
                signature_time=iso_utc(status['timestamp']), signature_timestamp=status['timestamp'],
                files=len(sums), checksums=sums)


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

    Returns ``(results, warnings)``: one result dict per directory (``status`` V(verified),
    V(unsigned) or V(not_verified)) and the warnings to print. Raises AdvisoryManifestError
    with every refused directory.
    """
    access = access or FileAccess()
    trusted_keys = list(trusted_keys or [])
    required = require_signature_effective(require_signature, trusted_keys)
    if required and not trusted_keys:
        raise AdvisoryManifestError([ManifestProblem(
            'noreboot_xen_require_signature', '', 'signatures are required but no trusted keys are configured',
            'set noreboot_xen_advisory_trusted_keys to the public key files of the advisory signers')])
    results, warnings, problems = [], [], []
    keyring = None
    try:
        for directory in advisory_dirs(manifests):
            kinds = [access.lstat_kind(os.path.join(directory, name)) for name in (CHECKSUM_FILE, SIGNATURE_FILE)]
            signed = [kind is not None for kind in kinds]
            if not any(signed):
                if required:
                    problems.append(ManifestProblem(directory, '', 'the advisory directory is not signed (no %s) and signatures '
                                                    'are required' % SIGNATURE_FILE, SIGNED_FIX))
                results.append(dict(directory=directory, format=None, status='unsigned'))
                continue
            if not all(signed) or any(kind != 'file' for kind in kinds):
                problems.append(ManifestProblem(os.path.join(directory, SIGN_DIR), '', 'needs both sha256sum.txt and '
                                                'sha256sum.txt.sig as regular files', SIGNED_FIX))
                continue
            if not trusted_keys:
                results.append(dict(directory=directory, format=FORMAT, status='not_verified'))
                continue
            if keyring is None:
                keyring = GpgKeyring(run, access, gpg=gpg)
                key_problems = keyring.load(trusted_keys)
                if key_problems:
                    raise AdvisoryManifestError(key_problems)
            try:
                results.append(verify_directory(directory, keyring, access))
            except AdvisoryManifestError as exc:
                problems.extend(exc.problems)
    finally:
        if keyring is not None:
            keyring.close()
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
        return 'Signature: %s verified, key %s, signed %s, %d file(s)' % (
            result['directory'], result['fingerprint'], result['signature_time'], result['files'])
    if result['status'] == 'not_verified':
        return 'Signature: %s is signed but NOT VERIFIED (no trusted keys configured)' % result['directory']
    return 'Signature: %s is NOT SIGNED' % result['directory']
