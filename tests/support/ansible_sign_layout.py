# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checksum manifest of ansible-sign's layout, written for the tests as docs/advisory_manifest.md tells operators to.

Both signing helpers (gpg_signing.py, minisign_signing.py) sign the file this writes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess

SIGN_DIR = '.ansible-sign'
CHECKSUM_FILE = os.path.join(SIGN_DIR, 'sha256sum.txt')


def write_checksums(directory, checksums=None):
    """Write ``DIR/.ansible-sign/sha256sum.txt`` (``sha256sum`` of every file outside .ansible-sign/, or ``checksums``
    bytes as given) and return its path."""
    sign_dir = os.path.join(directory, SIGN_DIR)
    os.makedirs(sign_dir, exist_ok=True)
    if checksums is None:
        files = sorted(os.path.relpath(os.path.join(d, f), directory) for d, dummy, fs in os.walk(directory)
                       for f in fs if not os.path.relpath(d, directory).startswith(SIGN_DIR))
        checksums = subprocess.run(['sha256sum', '--'] + files, cwd=directory, stdout=subprocess.PIPE, check=True).stdout
    path = os.path.join(directory, CHECKSUM_FILE)
    with open(path, 'wb') as handle:
        handle.write(checksums)
    return path
