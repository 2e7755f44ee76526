# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's rollout lock ``<state_dir>/rollout.lock``: one rollout transaction per host at a time.

HostLock takes it for a transaction (``flock``, released by the kernel when the process ends);
inspect_lock looks at it for detection (xen_facts) without waiting; ProcessIdentity tells a live
holder from one that died (also used by the controller's run lock).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import time

from ansible_collections.noreboot.xen.plugins.module_utils.host_state_files import (
    O_CLOEXEC,
    O_NOFOLLOW,
    TransactionError,
    read_text,
    utc_iso,
    write_fully,
)

LOCK_NAME = 'rollout.lock'


class LockHeld(Exception):
    """Another live process holds the host's lock."""

    def __init__(self, msg, holder):
        super(LockHeld, self).__init__(msg)
        self.msg = msg
        self.holder = holder


def process_start_time(pid, read=read_text):
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks since boot), or None."""
    text = read('/proc/%d/stat' % int(pid))
    if not text:
        return None
    # The command name (field 2) is in parentheses and may hold blanks: split after it.
    rest = text[text.rfind(')') + 2:].split()
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def boot_id(read=read_text):
    text = read('/proc/sys/kernel/random/boot_id')
    return text.strip() if text else None


class ProcessIdentity(object):
    """Who we are and whether another process is still alive (overridable for tests)."""

    def __init__(self, pid=None, read=read_text):
        self.pid = pid if pid is not None else os.getpid()
        self._read = read

    def me(self):
        return dict(pid=self.pid, pid_start=process_start_time(self.pid, self._read), boot_id=boot_id(self._read))

    def alive(self, holder):
        """True when the lock holder's process still runs (same boot, same pid start time)."""
        pid = holder.get('pid')
        if not isinstance(pid, int) or pid <= 0:
            return False
        current_boot = boot_id(self._read)
        if holder.get('boot_id') and current_boot and holder['boot_id'] != current_boot:
            return False
        start = process_start_time(pid, self._read)
        if start is None:
            return False
        if holder.get('pid_start') is not None and holder['pid_start'] != start:
            return False
        return True


class HostLock(object):
    """``<state_dir>/rollout.lock``: one rollout transaction per host at a time.

    The lock is the kernel's ``flock`` on the open lock file, held for the whole transaction (one
    module call) and released by the kernel when the process ends, however it ends: no staleness
    is guessed and a takeover cannot race. The file also records the holder (run id, pid, time)
    for the messages and for ``xen_facts``. After ``flock`` the path must still name the locked
    inode (a releasing run unlinks it): otherwise the lock is taken again on the new file. A
    record naming a live process that holds no ``flock`` (an older version of this collection)
    is respected as held.
    """

    # A reader that only looks (xen_facts' probe takes a shared flock for an instant) must not make a
    # transaction think the host is held: a busy flock is tried again this many times, BUSY_PAUSE apart.
    BUSY_TRIES = 5
    BUSY_PAUSE = 0.05

    def __init__(self, state_dir, run_id, identity, clock=time.time, sleep=time.sleep):
        self.path = os.path.join(state_dir, LOCK_NAME)
        self.run_id = run_id
        self.identity = identity
        self.clock = clock
        self.sleep = sleep
        self.record = None
        self.took_over_from = None
        self.fd = None

    def _read_holder(self):
        text = read_text(self.path)
        if text is None or not text.strip():
            return None
        try:
            holder = json.loads(text)
            if not isinstance(holder, dict):
                raise ValueError('not an object')
            return holder
        except ValueError:
            try:
                mtime = os.stat(self.path).st_mtime
            except OSError:
                return None
            return dict(unreadable=True, mtime=mtime, text=text[:200])

    def describe(self, holder):
        if not holder:
            return 'another process (it has not written its record yet)'
        if holder.get('unreadable'):
            return 'an unreadable lock file %s (written %s)' % (self.path, utc_iso(holder['mtime']))
        return 'run %s (pid %s, since %s)' % (holder.get('run_id'), holder.get('pid'), holder.get('time'))

    def _held(self, holder):
        return LockHeld('host is locked by %s (lock file %s): another rollout transaction is working on this '
                        'host. Wait for it to finish; the lock goes away with its process'
                        % (self.describe(holder), self.path), holder or {})

    def _open_locked(self):
        """The descriptor of the lock file under our flock, or None when the path moved meanwhile."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        except OSError as exc:
            raise TransactionError('cannot open the lock file %s: %s' % (self.path, exc.strerror or exc))
        for attempt in range(self.BUSY_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise TransactionError('cannot lock %s: %s' % (self.path, exc.strerror or exc))
                if attempt + 1 == self.BUSY_TRIES:
                    os.close(fd)
                    raise self._held(self._read_holder())
                self.sleep(self.BUSY_PAUSE)
        try:
            named = os.lstat(self.path)
        except OSError:
            named = None
        mine = os.fstat(fd)
        if named is None or (named.st_dev, named.st_ino) != (mine.st_dev, mine.st_ino):
            os.close(fd)  # released (unlinked) between our open and our flock: lock the new file
            return None
        return fd

    def acquire(self):
        now = self.clock()
        self.record = dict(self.identity.me(), run_id=self.run_id, time=utc_iso(now), epoch=now)
        for _attempt in range(3):
            fd = self._open_locked()
            if fd is None:
                continue
            try:
                holder = self._read_holder()
                if holder and not holder.get('unreadable') and self.identity.alive(holder):
                    raise self._held(holder)
                self.took_over_from = holder
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                write_fully(fd, (json.dumps(self.record, sort_keys=True) + '\n').encode('utf-8'))
                os.fsync(fd)
            except OSError as exc:
                os.close(fd)
                raise TransactionError('cannot write the lock file %s: %s' % (self.path, exc.strerror or exc))
            except LockHeld:
                os.close(fd)
                raise
            self.fd = fd
            return self.record
        raise TransactionError('could not take the lock %s after 3 attempts (other runs keep taking it)' % self.path)

    def release(self):
        """Remove the lock file (we still hold its flock, so it is ours), then drop the flock."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def inspect_lock(state_dir):
    """What ``<state_dir>/rollout.lock`` says, for detection (xen_facts); never raises, never waits.

    None when there is no lock file. Otherwise ``{path, held, run_id, pid, time}``: ``held`` is true
    when a process holds the file's ``flock`` now (a transaction is running: tried with a shared
    flock taken and dropped at once, which a transaction starting at that instant retries past), or,
    for a file without one, when the process its record names is alive (an older version's lock);
    false for a lock file left by a process that died. ``run_id``, ``pid`` and ``time`` are what the
    file records (None when it has no readable record yet)."""
    path = os.path.join(state_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | getattr(os, 'O_NONBLOCK', 0))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            flocked = False
            fcntl.flock(fd, fcntl.LOCK_UN)
        except (IOError, OSError) as exc:
            flocked = exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
        try:
            text = os.read(fd, 4096).decode('utf-8', 'replace')
        except OSError:
            text = ''
    finally:
        os.close(fd)
    try:
        record = json.loads(text) if text.strip() else {}
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    held = flocked or (bool(record) and ProcessIdentity().alive(record))
    return dict(path=path, held=held, run_id=record.get('run_id'), pid=record.get('pid'), time=record.get('time'))
