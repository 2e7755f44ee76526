# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's guarded live patch transaction (runners injected, no AnsibleModule).

Steps, in order (``RolloutTransaction.run``):

1. **lock** ``<state_dir>/rollout.lock``: ``flock`` on the open file, held until the transaction ends
   (the kernel drops it when the process dies, so there is no staleness to guess and no takeover
   race); the file records run id, pid, the pid's start time, the boot id and the time for the
   messages. A lock held by another process fails fast naming the holder its file records.
2. **read** the payload table and the hypervisor build-id; decide with the **ledger**
   (``<state_dir>/ledger.jsonl``, one JSON object a line) what the table means:

   * APPLIED and the ledger's last entry for the name proves our sha256 -> ``already_patched``;
   * CHECKED and the ledger's last entry for the name is an *intent* with our sha256 (a run
     was interrupted between upload and apply) -> apply it without a second upload;
   * CHECKED otherwise (cannot be proven ours) -> unload it, then upload the staged file fresh;
   * APPLIED without ledger proof -> the payload code checks its identity (metadata) and
     reports ``already_patched`` with ``proven: false``.
3. **verify** the staged file: read it once without following a symlink (a regular file that
   others cannot write), hash those bytes and write the same bytes to the private copy
   ``<state_dir>/upload/<name>.livepatch`` (0700 directory, 0600 file); check the copy's sha256,
   payload build-id, and that it was built for the running hypervisor (``.livepatch.xen_depends``
   == ``xl info`` build_id). Xen uploads that copy.
4. **baseline**: running guests and their domain ids, ``xl dmesg`` (line count and last lines),
   payload table.
5. **intent** entry in the ledger, then **apply** through ``livepatch_lifecycle`` (retries on
   exit status 2), optional **soak**, then the **health checks** of ``host_health``.
6. On a failed check: **revert and unload** (``outcome: reverted``); if that fails too (or
   ``revert_on_failure`` is false) the host is left with the payload: ``outcome: failed_applied``
   (it stops the rolling run whatever the budget, and later plans report ``needs_attention``).
7. **outcome** entry in the ledger, staged file removed, lock released.

A payload the ledger says this host reverted (same name and sha256) is not applied again unless
``retry_reverted``: the outcome is ``previously_reverted`` (not a new failure: the host still needs
the fix, by a reboot or after the cause is found) and nothing on Xen changes (a guest that
crashed once is not crashed again by the next run).

A host whose lock another live process holds (another run's transaction) is not touched:
``run`` raises LockHeld, and ``held_result`` gives the outcome ``held_by_other_run`` (not a failure
of this run: that run is rolling the host out; only this run's own staged file is removed).

Outcomes: ``patched``, ``already_patched``, ``reverted``, ``failed``, ``failed_applied``,
``previously_reverted``, ``held_by_other_run``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import json
import os
import stat
import time

from ansible_collections.noreboot.xen.plugins.module_utils import host_health
from ansible_collections.noreboot.xen.plugins.module_utils.advisory_manifest import parse_utc_timestamp
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_ledger import last_by_name, parse_ledger
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_run_id import run_id_problem
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_lifecycle import (
    LivepatchFailure,
    LivepatchLifecycle,
    inspect_payload,
    normalize_checksum,
    validate_name,
)
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_list_parser import (
    LivepatchListError,
    parse_livepatch_list,
    payload_index,
)

PATCHED = 'patched'
ALREADY_PATCHED = 'already_patched'
REVERTED = 'reverted'
FAILED = 'failed'
PREVIOUSLY_REVERTED = 'previously_reverted'
# The checks failed and the payload is still APPLIED (revert failed, or revert_on_failure=false).
FAILED_APPLIED = 'failed_applied'
# Another run's transaction holds the host's lock: nothing was done, and it is not a failure of this run.
HELD_BY_OTHER_RUN = 'held_by_other_run'
# The payload's apply_until passed between the plan and the apply: nothing was done; the host needs the reboot
# fallback, as a plan made now would decide (the summary's outcome for hosts the plan sends to a reboot).
PENDING_REBOOT = 'pending_reboot'
OUTCOMES = (PATCHED, ALREADY_PATCHED, REVERTED, FAILED, FAILED_APPLIED, PREVIOUSLY_REVERTED, HELD_BY_OTHER_RUN,
            PENDING_REBOOT)

LOCK_NAME = 'rollout.lock'
LEDGER_NAME = 'ledger.jsonl'
STAGING_NAME = 'staging'
# The private copy Xen uploads from: <state_dir>/upload/<name>.livepatch, directory 0700, file 0600.
UPLOAD_NAME = 'upload'
# A staged payload larger than this is not copied (Xen payloads are kilobytes to a few MiB).
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)


class LockHeld(Exception):
    """Another live process holds the host's lock."""

    def __init__(self, msg, holder):
        super(LockHeld, self).__init__(msg)
        self.msg = msg
        self.holder = holder


class TransactionError(Exception):
    """The transaction cannot start (bad input, unreadable host state); nothing was changed."""

    def __init__(self, msg, **fields):
        super(TransactionError, self).__init__(msg)
        self.msg = msg
        self.fields = fields


def utc_iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


# ------------------------------------------------------------------------------------------
# Process identity (for stale locks)
# ------------------------------------------------------------------------------------------

def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


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


# ------------------------------------------------------------------------------------------
# Lock
# ------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------
# Durable writes
# ------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------
# Ledger
# ------------------------------------------------------------------------------------------

class Ledger(object):
    """``<state_dir>/ledger.jsonl``: append-only record of what rollouts did on this host."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, LEDGER_NAME)

    def entries(self):
        return parse_ledger(read_text(self.path))

    def append(self, entry):
        """Append one whole line and make it durable; a line torn by a crash is closed first, so this entry
        is read back on its own. Raises TransactionError when it cannot be written (full or read-only disk)."""
        line = (json.dumps(entry, sort_keys=True) + '\n').encode('utf-8')
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b'\n':
                    line = b'\n' + line
                write_fully(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(os.path.dirname(self.path))
        except OSError as exc:
            raise TransactionError('cannot write the ledger %s: %s. Free space in (or fix the permissions of) the '
                                   'state directory, then run again' % (self.path, exc.strerror or exc))

    def last_for(self, name):
        return last_by_name(self.entries()).get(name)


def ledger_proves(entry, name, sha256, states):
    """Does the ledger's last entry for ``name`` prove the loaded payload is ours?

    ``states`` is the set of (event, outcome) shapes that count: an ``intent`` proves a CHECKED
    payload left by an interrupted run; an intent or a ``patched`` / ``already_patched`` outcome
    proves an APPLIED one.
    """
    if not entry or entry.get('name') != name or entry.get('sha256') != sha256:
        return False
    if entry.get('event') == 'intent':
        return 'intent' in states
    return entry.get('event') == 'outcome' and entry.get('outcome') in states


# ------------------------------------------------------------------------------------------
# Transaction
# ------------------------------------------------------------------------------------------

class RolloutTransaction(object):
    """Run one host's transaction. ``xl`` and ``livepatch`` are runners (xen_command_runner)."""

    def __init__(self, xl, livepatch, name, src, checksum, run_id, state_dir='/var/lib/noreboot-xen',
                 payload_build_id=None, hypervisor_build_id=None, expect=None, soak_seconds=0, retries=5,
                 delay=1.0, replace=False, revert_on_failure=True, remove_src=False, advisory=None, retry_reverted=False,
                 check_mode=False, identity=None, clock=time.time, sleep=time.sleep, lifecycle=LivepatchLifecycle,
                 verification=None, apply_until=None):
        self.xl = xl
        self.lp = livepatch
        xl.history = livepatch.history
        self.name = name
        self.src = src
        self.checksum = checksum
        self.run_id = run_id
        self.state_dir = state_dir
        self.payload_build_id = (payload_build_id or '').lower() or None
        self.hypervisor_build_id = (hypervisor_build_id or '').lower() or None
        self.expect = dict(expect or {})
        self.soak_seconds = float(soak_seconds or 0)
        self.retries = int(retries)
        self.delay = float(delay)
        self.replace = bool(replace)
        self.revert_on_failure = bool(revert_on_failure)
        self.remove_src = bool(remove_src)
        self.advisory = advisory
        # What the plan verified (payload_verification): recorded in every ledger entry of this transaction.
        self.verification = dict(verification) if verification else None
        # From when the payload must not be applied any more (the plan's apply_until; UTC ISO 8601), or None.
        self.apply_until = apply_until or None
        self._deadline = None
        self.retry_reverted = bool(retry_reverted)
        self.check_mode = bool(check_mode)
        self.identity = identity or ProcessIdentity()
        self.clock = clock
        self.sleep = sleep
        self.lifecycle = lifecycle
        self.lock = HostLock(state_dir, run_id, self.identity, clock, sleep)
        self.ledger = Ledger(state_dir)
        # What Xen uploads: the private copy made under the lock (the staged file itself in check mode).
        self.upload_src = src
        self.timings = {}
        self.baseline = None
        self.result = dict(changed=False, outcome=None, name=name, run_id=run_id, failed_checks=[], checks=[],
                           resumed=False, uploaded=False, proven=None, baseline=None, payload=None,
                           hypervisor_build_id=None, lock=None, ledger_entry=None, actions=[], cleanup=None,
                           src_removed=False, msg='')

    # --- helpers -----------------------------------------------------------------------------
    def _timed(self, step, started):
        self.timings[step] = round(self.clock() - started, 3)

    def _lifecycle(self, state, src=None, checksum=None):
        cycle = self.lifecycle(self.lp, xl=self.xl, name=self.name, state=state, src=src, checksum=checksum,
                               replace=self.replace, retries=self.retries, delay=self.delay,
                               check_mode=self.check_mode)
        result = cycle.run()
        self.result['actions'].extend('%s %s' % (a, self.name) for a in result.get('actions') or [])
        if result.get('changed'):
            self.result['changed'] = True
        return result

    def _table(self):
        command = self.lp.list()
        try:
            return parse_livepatch_list(command.stdout, command.stderr, command.rc)
        except LivepatchListError as exc:
            raise TransactionError('xen-livepatch list failed before anything was changed: %s' % exc.reason,
                                   cmd=command.argv, rc=command.rc, stdout=command.stdout, stderr=command.stderr)

    def _entry(self, event, **fields):
        entry = dict(event=event, run_id=self.run_id, time=utc_iso(self.clock()), name=self.name,
                     sha256=self.checksum, payload_build_id=(self.result.get('payload') or {}).get('build_id'),
                     hypervisor_build_id=self.result.get('hypervisor_build_id'), advisory=self.advisory)
        if self.verification is not None:
            entry['verification'] = self.verification
        entry.update(fields)
        return entry

    def _check_state_dir(self):
        """Refuse a state directory others could use to change what we stage, lock or record."""
        try:
            info = os.lstat(self.state_dir)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            raise TransactionError('cannot read the state directory %s: %s' % (self.state_dir, exc.strerror or exc))
        problem = None
        if stat.S_ISLNK(info.st_mode):
            problem = 'is a symlink'
        elif not stat.S_ISDIR(info.st_mode):
            problem = 'is not a directory'
        elif info.st_uid not in (0, os.geteuid()):
            problem = 'is owned by uid %d, not root' % info.st_uid
        elif info.st_mode & 0o022:
            problem = 'is writable by its group or by others (mode %04o)' % stat.S_IMODE(info.st_mode)
        if problem:
            raise TransactionError('the state directory %s %s: another user could replace the staged payload, the '
                                   'lock or the ledger. Make it a directory owned by root with mode 0700 (or set '
                                   'state_dir to one); nothing was staged or changed' % (self.state_dir, problem))

    def prepare_state_dir(self):
        """Refuse an unsafe state directory, create a missing one (0700): before anything is staged."""
        self._check_state_dir()
        if self.check_mode or os.path.isdir(self.state_dir):
            return False
        try:
            os.makedirs(self.state_dir, 0o700)
        except OSError as exc:
            raise TransactionError('cannot create the state directory %s: %s' % (self.state_dir, exc.strerror or exc))
        return True

    def _private_dir(self):
        path = os.path.join(self.state_dir, UPLOAD_NAME)
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise TransactionError('cannot create %s: %s' % (path, exc.strerror or exc))
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) != 0o700:
            raise TransactionError('%s must be a directory owned by uid %d with mode 0700 (it has uid %d, mode %04o, '
                                   'directory: %s); remove it and run again'
                                   % (path, os.geteuid(), info.st_uid, stat.S_IMODE(info.st_mode),
                                      stat.S_ISDIR(info.st_mode)))
        return path

    def _read_staged(self):
        """The staged file's bytes, read through one descriptor that does not follow a symlink."""
        try:
            fd = os.open(self.src, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC | getattr(os, 'O_NONBLOCK', 0))
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise TransactionError('the staged payload %s is a symlink: refused (only a regular file staged by '
                                       'this rollout is uploaded); nothing was changed' % self.src)
            raise TransactionError('cannot read the staged payload %s: %s; nothing was changed'
                                   % (self.src, exc.strerror or exc))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise TransactionError('the staged payload %s is not a regular file; nothing was changed' % self.src)
            if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022:
                raise TransactionError('the staged payload %s is owned by uid %d with mode %04o: another user could '
                                       'have written it; refused, nothing was changed'
                                       % (self.src, info.st_uid, stat.S_IMODE(info.st_mode)))
            if info.st_size > MAX_PAYLOAD_BYTES:
                raise TransactionError('the staged payload %s has %d bytes, more than %d: refused'
                                       % (self.src, info.st_size, MAX_PAYLOAD_BYTES))
            chunks = []
            total = 0
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_PAYLOAD_BYTES:
                    raise TransactionError('the staged payload %s grew past %d bytes: refused'
                                           % (self.src, MAX_PAYLOAD_BYTES))
                chunks.append(chunk)
            return b''.join(chunks)
        finally:
            os.close(fd)

    def _private_copy(self):
        """Copy the staged file, under the lock, to a file only root can reach; Xen uploads that copy.

        The bytes are hashed as read and the same bytes are written, so what Xen gets is what was
        verified, whatever happens to the staged path afterwards."""
        data = self._read_staged()
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.checksum:
            raise TransactionError('checksum mismatch for the staged payload %s: its sha256 is %s, expected %s; it was not '
                                   'uploaded' % (self.src, actual, self.checksum),
                                   payload=dict(path=self.src, sha256=actual))
        path = os.path.join(self._private_dir(), self.name + '.livepatch')
        try:
            try:
                os.unlink(path)  # left by a run that died; we hold the lock
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            try:
                write_fully(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self._remove_private_copy(path)
            raise TransactionError('cannot write the private copy %s of the payload: %s. Free space in (or fix '
                                   'the permissions of) the state directory; nothing was changed'
                                   % (path, exc.strerror or exc))
        self.result['upload_src'] = path
        return path

    @staticmethod
    def _remove_private_copy(path):
        try:
            os.unlink(path)
        except OSError:
            pass

    def _remove_src(self):
        if not self.remove_src or self.check_mode or not self.src:
            return
        try:
            os.unlink(self.src)
            self.result['src_removed'] = True
            self.result['changed'] = True
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.result.setdefault('warnings', []).append('could not remove the staged payload %s: %s'
                                                              % (self.src, exc.strerror or exc))
            return
        try:
            os.rmdir(os.path.dirname(self.src))  # the run's staging directory, when now empty
        except OSError:
            pass

    def _outputs(self):
        info = self.xl.info()
        domains = self.xl.list_domains()
        dmesg = self.xl.dmesg()
        table = self.lp.list()
        return dict(xl_info=(info.rc, info.stdout), xl_list=(domains.rc, domains.stdout),
                    xl_dmesg=(dmesg.rc, dmesg.stdout), livepatch_list=(table.rc, table.stdout + table.stderr))

    # --- steps -------------------------------------------------------------------------------
    def _verify_inputs(self):
        try:
            validate_name(self.name)
            self.checksum = normalize_checksum(self.checksum)
        except LivepatchFailure as exc:
            raise TransactionError(exc.msg)
        if not self.run_id:
            raise TransactionError('run_id must not be empty: the ledger and the lock record which run acted')
        problem = run_id_problem(self.run_id)
        if problem:
            raise TransactionError(problem)
        if self.apply_until is not None:
            try:
                self._deadline = parse_utc_timestamp(self.apply_until)
            except ValueError as exc:
                raise TransactionError('apply_until %s: %s; nothing was changed. Give an ISO 8601 time with its zone, '
                                       'as the plan writes it (2027-01-31T12:00:00Z)' % (self.apply_until, exc))

    def _expired(self):
        """The message when the payload's apply_until is at or before the clock now, else None."""
        if self._deadline is None or self._deadline.timestamp() > self.clock():
            return None
        return ('%s was not applied: it may be applied only until %s (apply_until, from the manifest\'s apply_until '
                'or livepatch_end_of_life of this build) and it is %s now. The plan was made before that time; a plan '
                'made now sends this host to the reboot fallback. Xen and the ledger were not touched; run the rollout '
                'again (with noreboot_xen_reboot_ok=true) to reboot it into the fixed build'
                % (self.name, self.apply_until, utc_iso(self.clock())))

    def _verify_payload(self, running_build_id):
        if self.check_mode and self.src and not os.path.exists(self.src):
            # In check mode the staging copy did not run: nothing to read yet.
            self.result.setdefault('warnings', []).append(
                'check mode: the staged payload %s is not there (the copy did not run), so its sha256 and build-ids '
                'were not verified' % self.src)
            return
        if not self.check_mode:
            self.upload_src = self._private_copy()
        try:
            payload = inspect_payload(self.upload_src, self.checksum)
        except LivepatchFailure as exc:
            raise TransactionError(exc.msg, payload=exc.fields.get('payload'))
        self.result['payload'] = payload
        if self.payload_build_id and payload['build_id'] != self.payload_build_id:
            raise TransactionError('staged payload %s has build-id %s, the plan expects %s: it is not the payload '
                                   'the advisory names; nothing was changed'
                                   % (self.src, payload['build_id'], self.payload_build_id))
        if payload['xen_depends'] != running_build_id:
            raise TransactionError('staged payload %s was built for hypervisor build-id %s but this host runs %s; '
                                   'nothing was changed (re-run the plan: the host may have been updated)'
                                   % (self.src, payload['xen_depends'], running_build_id))

    def _running_build_id(self):
        command = self.xl.info()
        if command.rc != 0:
            raise TransactionError('xl info failed (rc=%s): the hypervisor does not answer; nothing was changed'
                                   % command.rc, cmd=command.argv, rc=command.rc, stdout=command.stdout,
                                   stderr=command.stderr)
        try:
            info = host_health.parse_xl_info(command.stdout)
        except ValueError as exc:
            raise TransactionError('cannot read xl info: %s' % exc)
        build_id = (info.get('build_id') or '').lower() or None
        if not build_id:
            raise TransactionError('xl info shows no build_id: cannot prove the payload fits the running '
                                   'hypervisor; nothing was changed')
        if self.hypervisor_build_id and build_id != self.hypervisor_build_id:
            raise TransactionError('this host runs hypervisor build-id %s, the plan expected %s: the plan is stale '
                                   '(was the host updated or rebooted into another build?); nothing was changed. '
                                   'Re-run the rollout so that it plans again' % (build_id, self.hypervisor_build_id))
        return build_id

    def _health(self):
        if self.soak_seconds > 0:
            started = self.clock()
            self.sleep(self.soak_seconds)
            self._timed('soak', started)
        started = self.clock()
        retried = sum(max(0, c.attempts - 1) for c in self.lp.history
                      if len(c.argv) > 2 and c.argv[1] in ('apply', 'replace') and c.argv[2] == self.name and c.rc == 0)
        checks = host_health.run_checks(self.baseline, self.name, self.expect, self._outputs(), retried=retried)
        self._timed('health', started)
        return checks

    def _revert(self):
        """Revert and unload the payload; True when it is gone."""
        try:
            self._lifecycle('absent')
            self.result['cleanup'] = dict(action='revert+unload', done=True,
                                          msg='reverted and unloaded %s' % self.name)
            return True
        except LivepatchFailure as exc:
            self.result['cleanup'] = dict(action='revert+unload', done=False,
                                          msg='could not revert %s: %s' % (self.name, exc.msg))
            return False

    def _finish(self, outcome, msg):
        self.result['outcome'] = outcome
        self.result['msg'] = msg
        if not self.check_mode:
            entry = self._entry('outcome', outcome=outcome, failed_checks=self.result['failed_checks'],
                                resumed=self.result['resumed'], uploaded=self.result['uploaded'], msg=msg)
            try:
                self.ledger.append(entry)
            except TransactionError as exc:
                raise TransactionError('%s. The outcome was %s (%s) but it is not recorded: the ledger still shows '
                                       'the intent, so the next run checks this host again' % (exc.msg, outcome, msg))
            self.result['ledger_entry'] = entry
            self.result['changed'] = self.result['changed'] or outcome != ALREADY_PATCHED
        return self.result

    def _transaction(self):
        started = self.clock()
        running = self._running_build_id()
        self.result['hypervisor_build_id'] = running
        table = self._table()
        self._timed('read', started)
        row = payload_index(table).get(self.name)
        state = row['state'] if row else None
        last = self.ledger.last_for(self.name)

        if state == 'APPLIED' and ledger_proves(last, self.name, self.checksum, ('intent',)):
            return self._finish_interrupted(last)
        if state == 'APPLIED':
            proven = ledger_proves(last, self.name, self.checksum, (PATCHED, ALREADY_PATCHED))
            self.result['proven'] = proven
            if not proven:
                # Not recorded by us: let the payload code check what it can (metadata), read-only.
                self._verify_payload(running)
                self._lifecycle('applied', src=self.upload_src, checksum=self.checksum)
            self._remove_src()
            msg = '%s is already APPLIED%s' % (
                self.name, ' (recorded in the ledger by run %s)' % last.get('run_id') if proven
                else ' (not recorded in the ledger; its name and metadata match)')
            self.result.update(outcome=ALREADY_PATCHED, msg=msg)
            return self.result

        if (not self.retry_reverted and last and last.get('event') == 'outcome' and last.get('sha256') == self.checksum
                and last.get('outcome') == REVERTED):
            self._remove_src()
            self.result.update(outcome=PREVIOUSLY_REVERTED, failed_checks=[], msg=(
                '%s was reverted on this host by run %s at %s (failed checks: %s); it is not applied again. Find out '
                'why, then run with retry_reverted=true (playbook: noreboot_xen_retry_reverted=true), or plan a reboot'
                % (self.name, last.get('run_id'), last.get('time'), ', '.join(last.get('failed_checks') or []) or
                   'none recorded')))
            return self.result

        expired = self._expired()
        if expired:
            # Checked at apply time, under the lock: a run planned before the deadline must not apply after it.
            self._remove_src()
            self.result.update(outcome=PENDING_REBOOT, failed_checks=[], msg=expired)
            return self.result

        started = self.clock()
        self._verify_payload(running)
        self._timed('verify', started)
        if state == 'CHECKED':
            self.result['resumed'] = ledger_proves(last, self.name, self.checksum, ('intent',))
            if not self.result['resumed']:
                if self.check_mode:
                    self.result.update(outcome=PATCHED, changed=True,
                                       msg='would unload the unproven CHECKED %s and upload the staged file'
                                       % self.name)
                    return self.result
                # Cannot prove it is ours: unload, then upload the staged, verified file.
                self._lifecycle('absent')
                self.result['msg'] = 'unloaded a CHECKED %s the ledger does not vouch for' % self.name
        if self.check_mode:
            self.result.update(outcome=PATCHED, changed=True, msg='would apply %s%s' % (
                self.name, ' (resume: already uploaded by run %s)' % last.get('run_id') if self.result['resumed']
                else ''))
            return self.result

        started = self.clock()
        try:
            self.baseline = host_health.take_baseline(self.xl.info().stdout, self.xl.list_domains().stdout,
                                                      self.xl.dmesg().stdout, self.lp.list().stdout)
        except host_health.HealthError as exc:
            raise TransactionError('%s; nothing was changed' % exc)
        self.result['baseline'] = host_health.public_baseline(self.baseline)
        self._timed('baseline', started)

        if not self.result['resumed']:
            # The boot id tells a later detection whether the host rebooted since: an open intent of a
            # payload no longer loaded, written in another boot, means the payload may have killed the host.
            self.ledger.append(self._entry('intent', boot_id=self.identity.me().get('boot_id')))
        started = self.clock()
        try:
            applied = self._lifecycle('applied', src=self.upload_src, checksum=self.checksum)
        except LivepatchFailure as exc:
            self._timed('apply', started)
            self.result['failed_checks'] = ['apply']
            self.result['checks'] = [dict(name='apply', ok=False, detail=exc.msg)]
            self.result['uploaded'] = 'upload' in (exc.fields.get('actions') or [])
            self.result['cleanup'] = exc.fields.get('cleanup')
            self.result['changed'] = True
            table = self._table_or_none()
            row = payload_index(table or []).get(self.name)
            if row is not None and row['state'] == 'APPLIED':
                outcome = REVERTED if self.revert_on_failure and self._revert() else FAILED_APPLIED
            else:
                outcome = FAILED
            return self._finish(outcome, 'applying %s failed: %s' % (self.name, exc.msg))
        self._timed('apply', started)
        self.result['uploaded'] = 'upload' in (applied.get('actions') or [])

        checks = self._health()
        self.result['checks'] = checks
        failing = host_health.failed_checks(checks)
        self.result['failed_checks'] = [c['name'] for c in failing]
        if not failing:
            self._remove_src()
            return self._finish(PATCHED, '%s applied%s; all %d health checks passed' % (
                self.name, ' (resumed: uploaded by an earlier run)' if self.result['resumed'] else '', len(checks)))
        why = '; '.join('%s: %s' % (c['name'], c['detail']) for c in failing)
        if not self.revert_on_failure:
            return self._finish(FAILED_APPLIED, 'health check(s) failed after applying %s, left applied '
                                '(revert_on_failure=false): %s' % (self.name, why))
        if self._revert():
            self._remove_src()
            return self._finish(REVERTED, 'health check(s) failed after applying %s, reverted and unloaded it: %s'
                                % (self.name, why))
        return self._finish(FAILED_APPLIED, 'health check(s) failed after applying %s and the revert failed too (%s): %s'
                            % (self.name, self.result['cleanup']['msg'], why))

    def _finish_interrupted(self, intent):
        """An earlier run applied the payload and was interrupted before it recorded an outcome
        (the ledger's last entry is its intent): its baseline is lost, so run the checks that need
        none, and revert on failure as usual."""
        self.result['resumed'] = True
        self.result['proven'] = True
        if self.check_mode:
            self.result.update(outcome=PATCHED, changed=True, msg='would verify %s, applied by the interrupted run %s'
                               % (self.name, intent.get('run_id')))
            return self.result
        started = self.clock()
        outputs = self._outputs()
        checks = host_health.run_checks_without_baseline(self.name, self.expect, outputs)
        self._timed('health', started)
        self.result['checks'] = checks
        failing = host_health.failed_checks(checks)
        self.result['failed_checks'] = [c['name'] for c in failing]
        note = ('applied by the interrupted run %s; its baseline is lost, so guests_running and dmesg_clean '
                'could not be checked' % intent.get('run_id'))
        if not failing:
            self._remove_src()
            return self._finish(PATCHED, '%s %s; %d checks passed' % (self.name, note, len(checks)))
        why = '; '.join('%s: %s' % (c['name'], c['detail']) for c in failing)
        if self.revert_on_failure and self._revert():
            self._remove_src()
            return self._finish(REVERTED, '%s %s; check(s) failed, reverted and unloaded it: %s'
                                % (self.name, note, why))
        return self._finish(FAILED_APPLIED, '%s %s; check(s) failed and it is still applied: %s' % (self.name, note, why))

    def _remove_stale_staging(self):
        """Remove what other runs left in ``<state_dir>/staging``: only the directories of runs whose
        transaction on this host is in the ledger (it ran, so they will not use their file again), and
        never anything outside the state directory. A run that staged and waits for the lock keeps its file."""
        if self.check_mode or not self.remove_src:
            return
        staging = os.path.join(self.state_dir, STAGING_NAME)
        try:
            names = os.listdir(staging)
        except OSError:
            return
        done = set(entry.get('run_id') for entry in self.ledger.entries())
        for run in sorted(names):
            path = os.path.join(staging, run)
            if run == self.run_id or run not in done:
                continue
            try:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    continue
                for name in os.listdir(path):
                    if stat.S_ISREG(os.lstat(os.path.join(path, name)).st_mode):
                        os.unlink(os.path.join(path, name))
                os.rmdir(path)
                self.result.setdefault('stale_staging_removed', []).append(run)
            except OSError:
                pass

    def _table_or_none(self):
        command = self.lp.list()
        try:
            return parse_livepatch_list(command.stdout, command.stderr, command.rc)
        except LivepatchListError:
            return None

    def commands(self):
        return [dict(argv=c.argv, rc=c.rc, attempts=c.attempts) for c in self.lp.history]

    def held_result(self, held):
        """The result when ``run`` raised LockHeld: outcome ``held_by_other_run``, the holder in ``held_by``.

        Nothing on Xen, in the ledger or in the lock changed; only this run's own staged file is removed
        (``remove_src``; it is in this run's staging directory, which the other run never uses)."""
        self._remove_src()
        holder = dict(held.holder or {})
        self.result.update(outcome=HELD_BY_OTHER_RUN, failed_checks=[], checks=[], held_by=holder,
                           held_by_run=holder.get('run_id'), commands=self.commands(),
                           msg='%s; not a failure of this run: that run is rolling this host out' % held.msg)
        return self.result

    def run(self):
        """Return the result dict; ``outcome`` says what happened. Raises LockHeld / TransactionError."""
        self._verify_inputs()
        total = self.clock()
        self.prepare_state_dir()
        if not self.check_mode:
            self.lock.acquire()
            self.result['lock'] = dict(path=self.lock.path, took_over_from=self.lock.took_over_from)
        try:
            return self._transaction()
        finally:
            if not self.check_mode:
                if self.upload_src != self.src:
                    self._remove_private_copy(self.upload_src)
                self._remove_stale_staging()
                self.lock.release()
            self._timed('total', total)
            self.result['timings'] = dict(self.timings)
            self.result['commands'] = self.commands()
