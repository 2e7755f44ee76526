# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's guarded live patch transaction (runners injected, no AnsibleModule).

``RolloutTransaction(xl, livepatch, RolloutOptions(...))``: the options are one object. Beside it:
the lock in host_lock.py, the ledger's readers and its one writer in rollout_ledger.py, the first
decision (step 2 below) in rollout_start_decision.py, a pure function with a table test.

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
import hashlib
import os
import stat
import time

from ansible_collections.noreboot.xen.plugins.module_utils import host_health
from ansible_collections.noreboot.xen.plugins.module_utils import rollout_start_decision as start
from ansible_collections.noreboot.xen.plugins.module_utils.host_lock import HostLock, LockHeld, ProcessIdentity
from ansible_collections.noreboot.xen.plugins.module_utils.host_state_files import (
    O_CLOEXEC,
    O_NOFOLLOW,
    TransactionError,
    utc_iso,
    write_fully,
)
from ansible_collections.noreboot.xen.plugins.module_utils.utc_timestamp import parse_utc_timestamp
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_ledger import Ledger
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_run_id import run_id_problem
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_lifecycle import (
    LivepatchFailure,
    LivepatchLifecycle,
    inspect_payload,
    normalize_checksum,
    validate_name,
)
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import MAX_PAYLOAD_SIZE
from ansible_collections.noreboot.xen.plugins.module_utils.private_file_read import UnsafeFile, read_private_file
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

STAGING_NAME = 'staging'
# The private copy Xen uploads from: <state_dir>/upload/<name>.livepatch, directory 0700, file 0600.
UPLOAD_NAME = 'upload'
# A staged or sent payload larger than this is not copied (the payload reader's cap: Xen payloads are kilobytes
# to a few MiB, Xen refuses uploads over 2 MiB).
MAX_PAYLOAD_BYTES = MAX_PAYLOAD_SIZE

# The names of the lock and the ledger (tests and callers that import them from here keep working).
__all__ = ['RolloutOptions', 'RolloutTransaction', 'LockHeld', 'TransactionError', 'OUTCOMES']


class RolloutOptions(object):
    """What one transaction is asked to do: the options of noreboot.xen.livepatch_rollout (see its
    argument spec for each), normalized. ``from_params`` takes them from the module's parameters."""

    REQUIRED = ('name', 'src', 'checksum', 'run_id')
    DEFAULTS = dict(state_dir='/var/lib/noreboot-xen', payload_build_id=None, hypervisor_build_id=None, expect=None,
                    soak_seconds=0, retries=5, delay=1.0, replace=False, revert_on_failure=True, remove_src=False,
                    advisory=None, retry_reverted=False, check_mode=False, verification=None, apply_until=None,
                    content=None)

    def __init__(self, name, src, checksum, run_id, **optional):
        unknown = sorted(set(optional) - set(self.DEFAULTS))
        if unknown:
            raise TypeError('unknown rollout option(s): %s' % ', '.join(unknown))
        given = dict(self.DEFAULTS, **optional)
        self.name = name
        self.src = src
        self.checksum = checksum
        self.run_id = run_id
        self.state_dir = given['state_dir']
        self.payload_build_id = (given['payload_build_id'] or '').lower() or None
        self.hypervisor_build_id = (given['hypervisor_build_id'] or '').lower() or None
        self.expect = dict(given['expect'] or {})
        self.soak_seconds = float(given['soak_seconds'] or 0)
        self.retries = int(given['retries'])
        self.delay = float(given['delay'])
        self.replace = bool(given['replace'])
        self.revert_on_failure = bool(given['revert_on_failure'])
        self.remove_src = bool(given['remove_src'])
        self.advisory = given['advisory']
        self.retry_reverted = bool(given['retry_reverted'])
        self.check_mode = bool(given['check_mode'])
        # What the plan verified (payload_verification): recorded in every ledger entry of this transaction.
        self.verification = dict(given['verification']) if given['verification'] else None
        # From when the payload must not be applied any more (the plan's apply_until; UTC ISO 8601), or None.
        self.apply_until = given['apply_until'] or None
        # The payload's bytes sent by the controller in the module's arguments (action plugin
        # noreboot.xen.livepatch_rollout), or None: then the staged file ``src`` is read.
        self.content = given['content']

    @classmethod
    def from_params(cls, params, check_mode):
        """The options from the module's parameters (keys it does not know, such as prepare_only, are left)."""
        known = cls.REQUIRED + tuple(sorted(cls.DEFAULTS))
        return cls(check_mode=check_mode, **dict((key, params[key]) for key in known if key in params and key != 'check_mode'))


# ------------------------------------------------------------------------------------------
# Transaction
# ------------------------------------------------------------------------------------------

class RolloutTransaction(object):
    """Run one host's transaction. ``xl`` and ``livepatch`` are runners (xen_command_runner)."""

    def __init__(self, xl, livepatch, options, identity=None, clock=time.time, sleep=time.sleep,
                 lifecycle=LivepatchLifecycle):
        self.xl = xl
        self.lp = livepatch
        xl.history = livepatch.history
        self.opts = options
        self._deadline = None
        self.identity = identity or ProcessIdentity()
        self.clock = clock
        self.sleep = sleep
        self.lifecycle = lifecycle
        self.lock = HostLock(options.state_dir, options.run_id, self.identity, clock, sleep)
        self.ledger = Ledger(options.state_dir)
        # What Xen uploads: the private copy made under the lock (the staged file itself in check mode).
        self.upload_src = options.src
        self.timings = {}
        self.baseline = None
        self.result = dict(changed=False, outcome=None, name=options.name, run_id=options.run_id, failed_checks=[],
                           checks=[], resumed=False, uploaded=False, proven=None, baseline=None, payload=None,
                           hypervisor_build_id=None, lock=None, ledger_entry=None, actions=[], cleanup=None,
                           src_removed=False, msg='')

    # --- helpers -----------------------------------------------------------------------------
    def _timed(self, step, started):
        self.timings[step] = round(self.clock() - started, 3)

    def _lifecycle(self, state, src=None, checksum=None):
        cycle = self.lifecycle(self.lp, xl=self.xl, name=self.opts.name, state=state, src=src, checksum=checksum,
                               replace=self.opts.replace, retries=self.opts.retries, delay=self.opts.delay,
                               check_mode=self.opts.check_mode)
        result = cycle.run()
        self.result['actions'].extend('%s %s' % (a, self.opts.name) for a in result.get('actions') or [])
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
        entry = dict(event=event, run_id=self.opts.run_id, time=utc_iso(self.clock()), name=self.opts.name,
                     sha256=self.opts.checksum, payload_build_id=(self.result.get('payload') or {}).get('build_id'),
                     hypervisor_build_id=self.result.get('hypervisor_build_id'), advisory=self.opts.advisory)
        if self.opts.verification is not None:
            entry['verification'] = self.opts.verification
        entry.update(fields)
        return entry

    def _check_state_dir(self):
        """Refuse a state directory others could use to change what we stage, lock or record."""
        try:
            info = os.lstat(self.opts.state_dir)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            raise TransactionError('cannot read the state directory %s: %s' % (self.opts.state_dir, exc.strerror or exc))
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
                                   'state_dir to one); nothing was staged or changed' % (self.opts.state_dir, problem))

    def prepare_state_dir(self):
        """Refuse an unsafe state directory, create a missing one (0700): before anything is staged."""
        self._check_state_dir()
        if self.opts.check_mode or os.path.isdir(self.opts.state_dir):
            return False
        try:
            os.makedirs(self.opts.state_dir, 0o700)
        except OSError as exc:
            raise TransactionError('cannot create the state directory %s: %s' % (self.opts.state_dir, exc.strerror or exc))
        return True

    def _private_dir(self):
        path = os.path.join(self.opts.state_dir, UPLOAD_NAME)
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

    def _source(self):
        """What the messages call the payload: the staged file, or the bytes the controller sent."""
        return self.opts.src or 'sent by the controller'

    def _read_staged(self):
        """The staged file's bytes, read through one descriptor that does not follow a symlink (or the bytes
        the controller sent, ``content``: they never were a file on the host)."""
        if self.opts.content is not None:
            if len(self.opts.content) > MAX_PAYLOAD_BYTES:
                raise TransactionError('the payload sent by the controller has %d bytes, more than %d: refused'
                                       % (len(self.opts.content), MAX_PAYLOAD_BYTES))
            return self.opts.content
        try:
            return read_private_file(self.opts.src, MAX_PAYLOAD_BYTES)
        except UnsafeFile as exc:
            raise TransactionError('the staged payload %s %s: refused (only a regular file staged by this rollout, '
                                   'private to root, is uploaded); nothing was changed' % (self.opts.src, exc.reason))

    def _private_copy(self):
        """Copy the staged file, under the lock, to a file only root can reach; Xen uploads that copy.

        The bytes are hashed as read and the same bytes are written, so what Xen gets is what was
        verified, whatever happens to the staged path afterwards."""
        data = self._read_staged()
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.opts.checksum:
            raise TransactionError('checksum mismatch for the staged payload %s: its sha256 is %s, expected %s; it was not '
                                   'uploaded' % (self._source(), actual, self.opts.checksum),
                                   payload=dict(path=self.opts.src, sha256=actual))
        path = os.path.join(self._private_dir(), self.opts.name + '.livepatch')
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
        if not self.opts.remove_src or self.opts.check_mode or not self.opts.src:
            return
        try:
            os.unlink(self.opts.src)
            self.result['src_removed'] = True
            self.result['changed'] = True
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.result.setdefault('warnings', []).append('could not remove the staged payload %s: %s'
                                                              % (self.opts.src, exc.strerror or exc))
            return
        try:
            os.rmdir(os.path.dirname(self.opts.src))  # the run's staging directory, when now empty
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
            validate_name(self.opts.name)
            self.opts.checksum = normalize_checksum(self.opts.checksum)
        except LivepatchFailure as exc:
            raise TransactionError(exc.msg)
        if not self.opts.run_id:
            raise TransactionError('run_id must not be empty: the ledger and the lock record which run acted')
        problem = run_id_problem(self.opts.run_id)
        if problem:
            raise TransactionError(problem)
        if self.opts.apply_until is not None:
            try:
                self._deadline = parse_utc_timestamp(self.opts.apply_until)
            except ValueError as exc:
                raise TransactionError('apply_until %s: %s; nothing was changed. Give an ISO 8601 time with its zone, '
                                       'as the plan writes it (2027-01-31T12:00:00Z)' % (self.opts.apply_until, exc))

    def _expired(self):
        """The message when the payload's apply_until is at or before the clock now, else None."""
        if self._deadline is None or self._deadline.timestamp() > self.clock():
            return None
        return ('%s was not applied: it may be applied only until %s (apply_until, from the manifest\'s apply_until '
                'or livepatch_end_of_life of this build) and it is %s now. The plan was made before that time; a plan '
                'made now sends this host to the reboot fallback. Xen and the ledger were not touched; run the rollout '
                'again (with noreboot_xen_reboot_ok=true) to reboot it into the fixed build'
                % (self.opts.name, self.opts.apply_until, utc_iso(self.clock())))

    def _verify_payload(self, running_build_id):
        if self.opts.check_mode and self.opts.src and not os.path.exists(self.opts.src):
            # In check mode the staging copy did not run: nothing to read yet.
            self.result.setdefault('warnings', []).append(
                'check mode: the staged payload %s is not there (the copy did not run), so its sha256 and build-ids '
                'were not verified' % self.opts.src)
            return
        if not self.opts.check_mode:
            self.upload_src = self._private_copy()
        # Check mode with the bytes sent by the controller: checked in memory, nothing written.
        in_memory = self.opts.content if self.opts.check_mode and self.opts.content is not None else None
        try:
            payload = inspect_payload(self.upload_src or self._source(), self.opts.checksum, data=in_memory)
        except LivepatchFailure as exc:
            raise TransactionError(exc.msg, payload=exc.fields.get('payload'))
        self.result['payload'] = payload
        if self.opts.payload_build_id and payload['build_id'] != self.opts.payload_build_id:
            raise TransactionError('staged payload %s has build-id %s, the plan expects %s: it is not the payload '
                                   'the advisory names; nothing was changed'
                                   % (self._source(), payload['build_id'], self.opts.payload_build_id))
        if payload['xen_depends'] != running_build_id:
            raise TransactionError('staged payload %s was built for hypervisor build-id %s but this host runs %s; '
                                   'nothing was changed (re-run the plan: the host may have been updated)'
                                   % (self._source(), payload['xen_depends'], running_build_id))

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
        if self.opts.hypervisor_build_id and build_id != self.opts.hypervisor_build_id:
            raise TransactionError('this host runs hypervisor build-id %s, the plan expected %s: the plan is stale '
                                   '(was the host updated or rebooted into another build?); nothing was changed. '
                                   'Re-run the rollout so that it plans again' % (build_id, self.opts.hypervisor_build_id))
        return build_id

    def _health(self):
        if self.opts.soak_seconds > 0:
            started = self.clock()
            self.sleep(self.opts.soak_seconds)
            self._timed('soak', started)
        started = self.clock()
        retried = sum(max(0, c.attempts - 1) for c in self.lp.history
                      if len(c.argv) > 2 and c.argv[1] in ('apply', 'replace') and c.argv[2] == self.opts.name and c.rc == 0)
        checks = host_health.run_checks(self.baseline, self.opts.name, self.opts.expect, self._outputs(), retried=retried)
        self._timed('health', started)
        return checks

    def _revert(self):
        """Revert and unload the payload; True when it is gone."""
        try:
            self._lifecycle('absent')
            self.result['cleanup'] = dict(action='revert+unload', done=True,
                                          msg='reverted and unloaded %s' % self.opts.name)
            return True
        except LivepatchFailure as exc:
            self.result['cleanup'] = dict(action='revert+unload', done=False,
                                          msg='could not revert %s: %s' % (self.opts.name, exc.msg))
            return False

    def _finish(self, outcome, msg):
        self.result['outcome'] = outcome
        self.result['msg'] = msg
        if not self.opts.check_mode:
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
        row = payload_index(table).get(self.opts.name)
        last = self.ledger.last_for(self.opts.name)
        expired = self._expired()
        decision = start.start_decision(row['state'] if row else None, last, self.opts.name, self.opts.checksum,
                                        retry_reverted=self.opts.retry_reverted, expired=bool(expired))
        if decision == start.FINISH_INTERRUPTED:
            return self._finish_interrupted(last)
        if decision in (start.ALREADY_APPLIED_PROVEN, start.ALREADY_APPLIED_UNPROVEN):
            return self._already_applied(decision == start.ALREADY_APPLIED_PROVEN, last, running)
        if decision == start.PREVIOUSLY_REVERTED:
            self._remove_src()
            self.result.update(outcome=PREVIOUSLY_REVERTED, failed_checks=[], msg=(
                '%s was reverted on this host by run %s at %s (failed checks: %s); it is not applied again. Find out '
                'why, then run with retry_reverted=true (playbook: noreboot_xen_retry_reverted=true), or plan a reboot'
                % (self.opts.name, last.get('run_id'), last.get('time'), ', '.join(last.get('failed_checks') or []) or
                   'none recorded')))
            return self.result
        if decision == start.EXPIRED:
            # Checked at apply time, under the lock: a run planned before the deadline must not apply after it.
            self._remove_src()
            self.result.update(outcome=PENDING_REBOOT, failed_checks=[], msg=expired)
            return self.result
        return self._apply(decision, last, running)

    def _already_applied(self, proven, last, running):
        self.result['proven'] = proven
        if not proven:
            # Not recorded by us: let the payload code check what it can (metadata), read-only.
            self._verify_payload(running)
            self._lifecycle('applied', src=self.upload_src, checksum=self.opts.checksum)
        self._remove_src()
        msg = '%s is already APPLIED%s' % (
            self.opts.name, ' (recorded in the ledger by run %s)' % last.get('run_id') if proven
            else ' (not recorded in the ledger; its name and metadata match)')
        self.result.update(outcome=ALREADY_PATCHED, msg=msg)
        return self.result

    def _apply(self, decision, last, running):
        """Verify, (unload an unproven CHECKED copy,) baseline, intent, apply, health checks, outcome."""
        started = self.clock()
        self._verify_payload(running)
        self._timed('verify', started)
        self.result['resumed'] = decision == start.RESUME
        if decision == start.RELOAD:
            if self.opts.check_mode:
                self.result.update(outcome=PATCHED, changed=True,
                                   msg='would unload the unproven CHECKED %s and upload the staged file'
                                   % self.opts.name)
                return self.result
            # Cannot prove it is ours: unload, then upload the staged, verified file.
            self._lifecycle('absent')
            self.result['msg'] = 'unloaded a CHECKED %s the ledger does not vouch for' % self.opts.name
        if self.opts.check_mode:
            self.result.update(outcome=PATCHED, changed=True, msg='would apply %s%s' % (
                self.opts.name, ' (resume: already uploaded by run %s)' % last.get('run_id') if self.result['resumed']
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
            applied = self._lifecycle('applied', src=self.upload_src, checksum=self.opts.checksum)
        except LivepatchFailure as exc:
            self._timed('apply', started)
            self.result['failed_checks'] = ['apply']
            self.result['checks'] = [dict(name='apply', ok=False, detail=exc.msg)]
            self.result['uploaded'] = 'upload' in (exc.fields.get('actions') or [])
            self.result['cleanup'] = exc.fields.get('cleanup')
            self.result['changed'] = True
            table = self._table_or_none()
            row = payload_index(table or []).get(self.opts.name)
            if row is not None and row['state'] == 'APPLIED':
                outcome = REVERTED if self.opts.revert_on_failure and self._revert() else FAILED_APPLIED
            else:
                outcome = FAILED
            return self._finish(outcome, 'applying %s failed: %s' % (self.opts.name, exc.msg))
        self._timed('apply', started)
        self.result['uploaded'] = 'upload' in (applied.get('actions') or [])

        checks = self._health()
        self.result['checks'] = checks
        failing = host_health.failed_checks(checks)
        self.result['failed_checks'] = [c['name'] for c in failing]
        if not failing:
            self._remove_src()
            return self._finish(PATCHED, '%s applied%s; all %d health checks passed' % (
                self.opts.name, ' (resumed: uploaded by an earlier run)' if self.result['resumed'] else '', len(checks)))
        why = '; '.join('%s: %s' % (c['name'], c['detail']) for c in failing)
        if not self.opts.revert_on_failure:
            return self._finish(FAILED_APPLIED, 'health check(s) failed after applying %s, left applied '
                                '(revert_on_failure=false): %s' % (self.opts.name, why))
        if self._revert():
            self._remove_src()
            return self._finish(REVERTED, 'health check(s) failed after applying %s, reverted and unloaded it: %s'
                                % (self.opts.name, why))
        return self._finish(FAILED_APPLIED, 'health check(s) failed after applying %s and the revert failed too (%s): %s'
                            % (self.opts.name, self.result['cleanup']['msg'], why))

    def _finish_interrupted(self, intent):
        """An earlier run applied the payload and was interrupted before it recorded an outcome
        (the ledger's last entry is its intent): its baseline is lost, so run the checks that need
        none, and revert on failure as usual."""
        self.result['resumed'] = True
        self.result['proven'] = True
        if self.opts.check_mode:
            self.result.update(outcome=PATCHED, changed=True, msg='would verify %s, applied by the interrupted run %s'
                               % (self.opts.name, intent.get('run_id')))
            return self.result
        started = self.clock()
        outputs = self._outputs()
        checks = host_health.run_checks_without_baseline(self.opts.name, self.opts.expect, outputs)
        self._timed('health', started)
        self.result['checks'] = checks
        failing = host_health.failed_checks(checks)
        self.result['failed_checks'] = [c['name'] for c in failing]
        note = ('applied by the interrupted run %s; its baseline is lost, so guests_running and dmesg_clean '
                'could not be checked' % intent.get('run_id'))
        if not failing:
            self._remove_src()
            return self._finish(PATCHED, '%s %s; %d checks passed' % (self.opts.name, note, len(checks)))
        why = '; '.join('%s: %s' % (c['name'], c['detail']) for c in failing)
        if self.opts.revert_on_failure and self._revert():
            self._remove_src()
            return self._finish(REVERTED, '%s %s; check(s) failed, reverted and unloaded it: %s'
                                % (self.opts.name, note, why))
        return self._finish(FAILED_APPLIED, '%s %s; check(s) failed and it is still applied: %s' % (self.opts.name, note, why))

    def _remove_stale_staging(self):
        """Remove what other runs left in ``<state_dir>/staging``: only the directories of runs whose
        transaction on this host is in the ledger (it ran, so they will not use their file again), and
        never anything outside the state directory. A run that staged and waits for the lock keeps its file."""
        if self.opts.check_mode or not self.opts.remove_src:
            return
        staging = os.path.join(self.opts.state_dir, STAGING_NAME)
        try:
            names = os.listdir(staging)
        except OSError:
            return
        done = set(entry.get('run_id') for entry in self.ledger.entries())
        for run in sorted(names):
            path = os.path.join(staging, run)
            if run == self.opts.run_id or run not in done:
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
        if not self.opts.check_mode:
            self.lock.acquire()
            self.result['lock'] = dict(path=self.lock.path, took_over_from=self.lock.took_over_from)
        try:
            return self._transaction()
        finally:
            if not self.opts.check_mode:
                if self.upload_src != self.opts.src:
                    self._remove_private_copy(self.upload_src)
                self._remove_stale_staging()
                self.lock.release()
            self._timed('total', total)
            self.result['timings'] = dict(self.timings)
            self.result['commands'] = self.commands()
