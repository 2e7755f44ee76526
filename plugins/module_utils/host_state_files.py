# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files of a host's state directory, read and written safely: whole writes, made durable.

Shared by the host lock (host_lock.py), the ledger writer (rollout_ledger.py) and the controller's
run lock (controller_run_lock.py). TransactionError is what a rollout transaction raises when it
cannot start or cannot record what it did (bad input, a state file it cannot read or write).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import time

O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)


class TransactionError(Exception):
    """The transaction cannot start (bad input, unreadable host state); nothing was changed."""

    def __init__(self, msg, **fields):
        super(TransactionError, self).__init__(msg)
        self.msg = msg
        self.fields = fields


def utc_iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def write_fully(fd, data):
    """Write all of ``data`` (os.write may write less than asked)."""
    view = memoryview(data)
    while len(view):
        written = os.write(fd, view)
        if not written or written < 0:
            raise OSError(errno.EIO, 'os.write wrote nothing')
        view = view[written:]


def fsync_directory(path):
    """Make a file's creation or growth in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
