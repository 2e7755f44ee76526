# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a file that must be private to root (or this user) before its bytes are trusted.

One reader for both ends of a payload's way: the controller's copy that the action plugin of
noreboot.xen.livepatch_rollout sends (plugins/plugin_utils/controller_payload.py) and a payload staged on
the host that the rollout transaction uploads (rollout_transaction.py). ``read_private_file`` opens the
path once without following a symlink, refuses a file that is not regular, one owned by another user than
root or ``euid``, one its group or others can write, and one larger than ``max_bytes`` (also when it grows
while it is read), and returns the bytes read through that one descriptor. The caller hashes those bytes:
what it verifies is what it uses, whatever happens to the path afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
O_NONBLOCK = getattr(os, 'O_NONBLOCK', 0)  # a FIFO put in the file's place does not block the open
CHUNK = 1 << 20


class UnsafeFile(Exception):
    """The file cannot be trusted or read. ``reason`` completes a sentence about the file ("... is a
    symlink"); ``kind`` is one of symlink, unreadable, not_regular, owner, mode, size."""

    def __init__(self, reason, kind):
        super(UnsafeFile, self).__init__(reason)
        self.reason = reason
        self.kind = kind


def read_private_file(path, max_bytes, euid=None):
    """The bytes of ``path``; raises UnsafeFile naming why the file is refused."""
    euid = os.geteuid() if euid is None else euid
    try:
        fd = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile('is a symlink', 'symlink')
        raise UnsafeFile('cannot be read (%s)' % (exc.strerror or exc), 'unreadable')
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile('is not a regular file', 'not_regular')
        if info.st_uid not in (0, euid):
            raise UnsafeFile('is owned by uid %d, neither root nor this user (%d): another user could have written it'
                             % (info.st_uid, euid), 'owner')
        if info.st_mode & 0o022:
            raise UnsafeFile('is writable by its group or others (mode %04o)' % stat.S_IMODE(info.st_mode), 'mode')
        if info.st_size > max_bytes:
            raise UnsafeFile('has %d bytes, more than %d' % (info.st_size, max_bytes), 'size')
        chunks = []
        total = 0
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise UnsafeFile('grew past %d bytes while it was read' % max_bytes, 'size')
            chunks.append(chunk)
        return b''.join(chunks)
    finally:
        os.close(fd)
