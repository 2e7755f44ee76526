# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real OpenPGP keys and signed advisory directories for the tests, made with GnuPG and sha256sum.

Keys live in a throwaway GnuPG home; ``Keys.sign`` signs a directory the way docs/advisory_manifest.md
tells operators to (``sha256sum`` of every file into ``.ansible-sign/sha256sum.txt``, then
``gpg --detach-sign``), which gives the same files as ``ansible-sign project gpg-sign``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess

from ansible_sign_layout import write_checksums

GPG = '/usr/bin/gpg'


def run(argv):
    """The runner the module gives the verifier: argv in, ``(rc, stdout, stderr)`` out."""
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          env=dict(os.environ, LC_ALL='C'))
    return done.returncode, done.stdout.decode('utf-8', 'replace'), done.stderr.decode('utf-8', 'replace')


class Keys(object):
    """A throwaway GnuPG home with the keys of the tests and the public key files the operator would configure."""

    def __init__(self, home, out):
        self.home = home
        self.out = out
        self.fingerprints = {}
        self.files = {}

    def gpg(self, *args):
        rc, out, err = run([GPG, '--batch', '--homedir', self.home, '--pinentry-mode', 'loopback', '--passphrase', ''] + list(args))
        assert rc == 0, err
        return out

    def make(self, name, faked_time=None, expire='0'):
        faked = ['--faked-system-time', faked_time] if faked_time else []
        uid = '%s <%s@example.org>' % (name.title(), name)
        self.gpg(*(faked + ['--quick-gen-key', uid, 'ed25519', 'sign', expire]))
        listing = self.gpg('--with-colons', '--list-keys', '%s@example.org' % name)
        self.fingerprints[name] = [line.split(':')[9] for line in listing.splitlines() if line.startswith('fpr:')][0]
        path = os.path.join(self.out, '%s.asc' % name)
        with open(path, 'w') as handle:
            handle.write(self.gpg('--armor', '--export', self.fingerprints[name]))
        self.files[name] = path

    def sign(self, directory, name, faked_time=None, checksums=None):
        """Sign ``directory`` as the documented plain commands do: sha256sum of every file, gpg --detach-sign."""
        checksum_file = write_checksums(directory, checksums)
        faked = ['--faked-system-time', faked_time] if faked_time else []
        target = checksum_file + '.sig'
        if os.path.exists(target):
            os.remove(target)
        self.gpg(*(faked + ['--local-user', self.fingerprints[name], '--detach-sign', '--output', target, checksum_file]))


def make_keys(home, out):
    """The keys of the tests: ``signer``, ``stranger`` (never trusted) and ``old`` (expired: valid one day from 2020-01-01)."""
    made = Keys(home, out)
    made.make('signer')
    made.make('stranger')
    made.make('old', faked_time='20200101T000000', expire='1d')
    return made


def stop_agent(home):
    """Stop the gpg-agent that signing started in ``home`` (the tests started it)."""
    run(['gpgconf', '--homedir', home, '--kill', 'all'])
