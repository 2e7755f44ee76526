# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The payload's bytes as the controller sends them to a host (action plugin noreboot.xen.livepatch_rollout).

``read_verified_payload(path, checksum)`` reads the controller's copy once through
module_utils/private_file_read.py (no symlink, a regular file of root or the controller's user that its
group and others cannot write, at most MAX_PAYLOAD_BYTES: the payload reader's own cap), hashes those
bytes and compares the SHA-256 with ``checksum``: the bytes returned are the bytes verified, whatever
happens to the path afterwards. Raises PayloadRefused naming the problem and the fix; nothing has
reached any host then. Pure Python, no Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re

from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import (
    MAX_PAYLOAD_SIZE as MAX_PAYLOAD_BYTES,
)
from ansible_collections.noreboot.xen.plugins.module_utils.private_file_read import UnsafeFile, read_private_file

SHA256 = re.compile(r'^(?:sha256:)?([0-9a-fA-F]{64})$')


class PayloadRefused(Exception):
    def __init__(self, msg):
        super(PayloadRefused, self).__init__(msg)
        self.msg = msg


def _problem(path, what):
    return PayloadRefused('the payload %s on the controller %s; nothing was sent to the host. %s'
                          % (path, what, 'Keep the advisory directory and its payloads owned by root (or the user '
                                         'running Ansible), not writable by group or others, as a regular file.'))


def read_verified_payload(path, checksum, euid=None):
    """The bytes of the controller's file ``path`` whose SHA-256 is ``checksum`` (64 hex digits, optionally
    prefixed with ``sha256:``). Raises PayloadRefused."""
    match = SHA256.match(str(checksum or ''))
    if not match:
        raise PayloadRefused('checksum %r is not a SHA-256 (64 hex digits, optionally prefixed with sha256:); '
                             'nothing was sent to the host' % (checksum,))
    expected = match.group(1).lower()
    if not path or not os.path.isabs(path):
        raise PayloadRefused('payload_src %r must be an absolute path on the controller (the plan gives one); '
                             'nothing was sent to the host' % (path,))
    try:
        data = read_private_file(path, MAX_PAYLOAD_BYTES, euid=euid)
    except UnsafeFile as exc:
        raise _problem(path, exc.reason + (': refused' if exc.kind == 'symlink' else ''))
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise PayloadRefused('checksum mismatch for the payload %s on the controller: its sha256 is %s, the plan says '
                             '%s; nothing was sent to the host. The file changed after the plan verified it: plan '
                             'again (re-run the rollout) from the advisory as published' % (path, actual, expected))
    return data
