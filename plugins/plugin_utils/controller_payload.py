# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The payload's bytes as the controller sends them to a host (action plugin noreboot.xen.livepatch_rollout).

``read_verified_payload(path, checksum)`` opens the controller's copy once, without following a symlink,
refuses a file that is not regular, one owned by another user than root or the controller's user, one its
group or others can write, and one larger than MAX_PAYLOAD_BYTES, reads it through that one descriptor,
hashes those bytes and compares the SHA-256 with ``checksum``: the bytes returned are the bytes verified,
whatever happens to the path afterwards. Raises PayloadRefused naming the problem and the fix; nothing has
reached any host then. Pure Python, no Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import re
import stat

# The same cap as the payload reader on the host (livepatch_payload_elf.MAX_PAYLOAD_SIZE); Xen itself
# refuses uploads over 2 MiB, and real payloads are kilobytes.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
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
    euid = os.geteuid() if euid is None else euid
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
                     | getattr(os, 'O_NONBLOCK', 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _problem(path, 'is a symlink: refused')
        raise _problem(path, 'cannot be read (%s)' % (exc.strerror or exc))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _problem(path, 'is not a regular file')
        if info.st_uid not in (0, euid):
            raise _problem(path, 'is owned by uid %d, neither root nor this user (%d)' % (info.st_uid, euid))
        if info.st_mode & 0o022:
            raise _problem(path, 'is writable by its group or others (mode %04o)' % stat.S_IMODE(info.st_mode))
        if info.st_size > MAX_PAYLOAD_BYTES:
            raise _problem(path, 'has %d bytes, more than %d' % (info.st_size, MAX_PAYLOAD_BYTES))
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_PAYLOAD_BYTES:
                raise _problem(path, 'grew past %d bytes while it was read' % MAX_PAYLOAD_BYTES)
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b''.join(chunks)
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise PayloadRefused('checksum mismatch for the payload %s on the controller: its sha256 is %s, the plan says '
                             '%s; nothing was sent to the host. The file changed after the plan verified it: plan '
                             'again (re-run the rollout) from the advisory as published' % (path, actual, expected))
    return data
