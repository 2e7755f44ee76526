# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side run lock: which rollout run holds which inventory hosts (no AnsibleModule).

Each run writes ``<directory>/<run_id>.json`` (run id, hosts, the ansible-playbook process's pid,
its start time and boot id, the time) when it starts and removes it when it ends. A run that
starts while a live run holds some of its hosts is refused, naming that run, unless it was asked
to skip the held hosts (then it plans without them, and they are never a failure of this run).
A record whose ansible-playbook process is gone (pid missing, reused, or another boot) is stale
and removed. A record without a pid (the controller process could not be identified) counts as
live until its file is removed. Check-and-write happens under ``flock`` of ``<directory>/.guard``,
so two runs started at once cannot both claim a host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import time

from ansible_collections.noreboot.xen.plugins.module_utils.host_lock import ProcessIdentity, boot_id, process_start_time
from ansible_collections.noreboot.xen.plugins.module_utils.host_state_files import (
    fsync_directory,
    read_text,
    utc_iso,
    write_fully,
)

GUARD_NAME = '.guard'
CONTROLLER_NAMES = ('ansible-playbook',)


class RunHeld(Exception):
    """Another live run holds hosts of this run's inventory."""

    def __init__(self, msg, held):
        super(RunHeld, self).__init__(msg)
        self.msg = msg
        self.held = held


def _parent(pid, read):
    text = read('/proc/%d/stat' % pid)
    if not text:
        return None
    rest = text[text.rfind(')') + 2:].split()
    try:
        return int(rest[1])
    except (IndexError, ValueError):
        return None


def _is_controller(pid, read):
    cmdline = read('/proc/%d/cmdline' % pid) or ''
    words = [os.path.basename(word) for word in cmdline.split('\0')[:3]]
    return any(word.startswith(name) for word in words for name in CONTROLLER_NAMES)


def controller_pid(pid, read=read_text, depth=12):
    """The pid of the ansible-playbook process ``pid`` descends from (itself included), or None.

    A module runs under a worker process that ansible-playbook forked for the task: it has the same
    command line and ends with the task. So the controller is the topmost of the consecutive
    ancestors whose command line is ansible-playbook's, not the first one met."""
    found = None
    for _level in range(depth):
        if not pid or pid <= 1:
            break
        if _is_controller(pid, read):
            found = pid
        elif found is not None:
            break
        pid = _parent(pid, read)
    return found


class RunLocks(object):
    def __init__(self, directory, identity=None, clock=time.time):
        self.directory = directory
        self.identity = identity or ProcessIdentity()
        self.clock = clock

    def _path(self, run_id):
        return os.path.join(self.directory, '%s.json' % run_id)

    def _records(self):
        records = []
        for name in sorted(os.listdir(self.directory)):
            if not name.endswith('.json') or name.startswith('.'):
                continue
            path = os.path.join(self.directory, name)
            try:
                record = json.loads(read_text(path) or '')
            except ValueError:
                record = None
            if not isinstance(record, dict):
                record = dict(run_id=name[:-len('.json')], hosts=[], unreadable=True)
            records.append((path, record))
        return records

    def _live(self, record):
        if record.get('unreadable'):
            return False
        if record.get('pid') is None:
            return True
        return self.identity.alive(record)

    def _write(self, run_id, record):
        path = self._path(run_id)
        tmp = '%s.tmp%d' % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_fully(fd, (json.dumps(record, sort_keys=True) + '\n').encode('utf-8'))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        fsync_directory(self.directory)

    def claim(self, run_id, hosts, owner, skip_held=False, check_mode=False, host_locks=None):
        """Claim ``hosts`` for ``run_id``; ``owner`` is ``{pid, pid_start, boot_id}`` of its controller process.

        ``host_locks``: host -> ``{run_id, pid, time}`` of the hosts whose own rollout lock another run's
        transaction holds (detection; filter rollout_host_locks): they are held like hosts of a live
        record here (that run may be driven from another controller or lock directory).

        Returns ``{'hosts': [ours], 'held': {host: run_id}, 'stale_removed': [run ids]}``; raises RunHeld."""
        if not os.path.isdir(self.directory):
            os.makedirs(self.directory, 0o700)
        guard = os.open(os.path.join(self.directory, GUARD_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            held, holders, stale = {}, {}, []
            wanted = set(hosts)
            for path, record in self._records():
                if record.get('run_id') == run_id:
                    continue
                if not self._live(record):
                    if not check_mode:
                        try:
                            os.unlink(path)
                        except OSError as exc:
                            if exc.errno != errno.ENOENT:
                                raise
                    stale.append(record.get('run_id'))
                    continue
                for host in sorted(wanted & set(record.get('hosts') or [])):
                    held[host] = record.get('run_id')
                    holders[record.get('run_id')] = (path, record)
            on_hosts = {}
            for host in sorted(wanted & set(host_locks or {})):
                if host in held:
                    continue
                lock = host_locks[host] or {}
                if lock.get('run_id') == run_id:
                    continue
                held[host] = lock.get('run_id') or 'unknown'
                on_hosts[host] = lock
            if held and not skip_held:
                raise RunHeld(self.describe(held, holders, on_hosts), held)
            ours = [host for host in hosts if host not in held]
            if not check_mode:
                record = dict(owner, run_id=run_id, hosts=ours, time=utc_iso(self.clock()))
                self._write(run_id, record)
            return dict(hosts=ours, held=held, stale_removed=stale)
        finally:
            os.close(guard)

    @staticmethod
    def describe(held, holders, on_hosts=None):
        parts = []
        for run_id, (path, record) in sorted(holders.items()):
            mine = sorted(host for host, holder in held.items() if holder == run_id and host not in (on_hosts or {}))
            parts.append('run %s (%s, since %s, record %s) holds %s' % (
                run_id, 'pid %s' % record['pid'] if record.get('pid') is not None else 'controller process unknown',
                record.get('time'), path, ', '.join(mine)))
        for host, lock in sorted((on_hosts or {}).items()):
            parts.append('run %s has a transaction in progress on %s (pid %s on the host, since %s: its rollout lock)' % (
                lock.get('run_id') or '(not named in its lock file)', host, lock.get('pid'), lock.get('time')))
        return ('another rollout is in progress on hosts of this inventory: %s. Nothing was changed. Wait for it to '
                'end, or set noreboot_xen_skip_held_hosts=true to leave those hosts to it and roll out the others '
                '(a record whose run is really gone can be removed)' % '; '.join(parts))

    def release(self, run_id):
        """Remove this run's record; True when there was one."""
        try:
            os.unlink(self._path(run_id))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True


def controller_owner(pid=None, read=read_text):
    """``{pid, pid_start, boot_id}`` of the ansible-playbook process this module runs under (pid None if unknown)."""
    found = controller_pid(pid or os.getpid(), read=read)
    return dict(pid=found, pid_start=process_start_time(found, read) if found else None, boot_id=boot_id(read))
