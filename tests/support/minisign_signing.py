# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real minisign keys and minisign-signed advisory directories for the tests, made with Debian's ``minisign``.

``Keys.sign`` signs a directory the way docs/advisory_manifest.md tells operators to: ``sha256sum`` of
every file into ``.ansible-sign/sha256sum.txt`` (ansible_sign_layout.py), then
``minisign -Sm .ansible-sign/sha256sum.txt -s KEY``, which writes ``.ansible-sign/sha256sum.txt.minisig``.
Keys are made without a password (``minisign -G -W``), so nothing asks for one.

A missing ``minisign`` fails the tests (``make setup`` installs it): a skipped test proves nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess

from ansible_sign_layout import write_checksums

MINISIGN = '/usr/bin/minisign'


class MinisignMissing(AssertionError):
    """The minisign binary the tests sign with is not installed."""


def require_minisign(binary=MINISIGN):
    """Raise MinisignMissing, saying how to install it, when ``binary`` cannot be run."""
    if not os.access(binary, os.X_OK):
        raise MinisignMissing('%s is not installed: the minisign tests sign with the real tool. `make setup` installs it '
                              '(Debian package minisign, in APT_PACKAGES of the Makefile; or apt-get install minisign)' % binary)


def run(argv):
    """argv in, ``(rc, stdout, stderr)`` out; nothing is read from the terminal."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          env=dict(os.environ, LC_ALL='C'))
    return done.returncode, done.stdout.decode('utf-8', 'replace'), done.stderr.decode('utf-8', 'replace')


class Keys(object):
    """Throwaway minisign key pairs: ``files[name]`` the public key file an operator would trust,
    ``key_ids[name]`` the key id as minisign prints it, ``secret[name]`` the secret key file."""

    def __init__(self, out, binary=MINISIGN):
        require_minisign(binary)
        self.out = out
        self.binary = binary
        self.files = {}
        self.secret = {}
        self.key_ids = {}

    def minisign(self, *args):
        rc, out, err = run([self.binary] + list(args))
        assert rc == 0, 'minisign %s: %s %s' % (' '.join(args), out, err)
        return out

    def make(self, name):
        public = os.path.join(self.out, '%s.pub' % name)
        secret = os.path.join(self.out, '%s.key' % name)
        self.minisign('-G', '-W', '-p', public, '-s', secret)
        with open(public) as handle:
            comment = handle.readline()
        # minisign names the key in the comment it writes: "untrusted comment: minisign public key <ID>", with
        # no leading zeros there (about 1 key in 16 has fewer than 16 digits); its messages print it as %016X.
        self.key_ids[name] = re.match(r'^untrusted comment: minisign public key ([0-9A-F]{1,16})$',
                                      comment.rstrip('\n')).group(1).zfill(16)
        self.files[name] = public
        self.secret[name] = secret

    def sign(self, directory, name, legacy=False, trusted_comment=None, checksums=None):
        """Sign ``directory``: sha256sum.txt of every file, then ``minisign -Sm`` over it (``-l``: the legacy form)."""
        checksum_file = write_checksums(directory, checksums)
        target = checksum_file + '.minisig'
        if os.path.exists(target):
            os.remove(target)
        options = (['-l'] if legacy else []) + (['-t', trusted_comment] if trusted_comment is not None else [])
        self.minisign(*(['-S'] + options + ['-s', self.secret[name], '-m', checksum_file]))
        return target

    def verify(self, path, name, signature=None):
        """What ``minisign -V`` says of ``path`` and its signature (``path``.minisig, or ``signature``) with ``name``'s key:
        ``(rc, stdout, stderr)``."""
        return run([self.binary, '-V', '-p', self.files[name], '-m', path] + (['-x', signature] if signature else []))


def make_keys(out, binary=MINISIGN):
    """The keys of the tests: ``signer`` and ``stranger`` (never trusted)."""
    made = Keys(out, binary)
    made.make('signer')
    made.make('stranger')
    return made
