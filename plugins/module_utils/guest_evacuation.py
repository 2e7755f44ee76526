# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Move a dom0's guests out of the way of a reboot and bring them back (runner injected).

No guest is stopped before it is written down. ``evacuate``:

1. reads ``xl list`` (every domain but Domain-0 is a guest);
2. chooses each guest's action from the policy (``migrate``, ``save``, ``shutdown``,
   ``refuse``; per-guest overrides allowed) and checks **all** of them before touching any:
   the peer's free memory holds every guest to migrate, the save directory has room for every
   memory image, every guest to shut down has a config file to start it again from;
3. writes the **manifest** (``<state_dir>/guests.json``: run id, host, and per guest its
   domain id, memory, action, file / peer / config and state ``planned``), fsynced;
4. acts guest by guest, rewriting the manifest after each (``saved``, ``migrated``,
   ``shut_down``, or ``failed`` with the error), and stops at the first failure;
5. checks with ``xl list`` that no evacuated guest still runs here.

``restore`` reads the manifest and brings every guest back: ``xl restore FILE`` for saved
guests, ``xl create CONFIG`` for guests shut down, nothing for migrated ones (they run on the
peer; the caller checks them there). A guest that already runs is left alone. Afterwards
every guest of the manifest must run here (or have migrated): otherwise RestoreError names
each missing guest and where it is (save file, config, peer). The manifest is kept, with
``status: restored`` once every guest is back.

A manifest whose guests are not all back (an earlier run stopped between evacuate and
restore) is never overwritten: ``evacuate`` keeps its entries and only adds guests running now.

Commands are argv lists through an ``XlRunner`` (plugins/module_utils/xen_command_runner.py);
the file system is reached through a small ``Files`` object so tests can replace it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import time

from ansible_collections.noreboot.xen.plugins.module_utils.xl_output_parsers import (
    XlOutputError,
    info_int,
    parse_xl_info,
    parse_xl_list,
)

MIGRATE = 'migrate'
SAVE = 'save'
SHUTDOWN = 'shutdown'
REFUSE = 'refuse'
POLICIES = (MIGRATE, SAVE, SHUTDOWN, REFUSE)

PLANNED = 'planned'
SAVED = 'saved'
MIGRATED = 'migrated'
SHUT_DOWN = 'shut_down'
FAILED = 'failed'
RESTORED = 'restored'
STARTED = 'started'
RUNNING = 'running'          # found running at restore (never left, or already started)
ON_PEER = 'on_peer'

EVACUATED = 'evacuated'
EVACUATING = 'evacuating'
MANIFEST_NAME = 'guests.json'
DOM0_ID = 0
MIB = 1024 * 1024
# xl save attempts per guest (a failed save that leaves the guest running is tried again), and the
# pause between them.
SAVE_ATTEMPTS = 2
SAVE_RETRY_DELAY = 10.0
# A save image is the guest's memory plus a little; ask for this much more room.
SAVE_OVERHEAD = 1.05
SAVE_MARGIN_MIB = 64


class EvacuationError(Exception):
    """Evacuation cannot start or stopped; ``msg`` says why and what to do, ``fields`` add context."""

    def __init__(self, msg, **fields):
        super(EvacuationError, self).__init__(msg)
        self.msg = msg
        self.fields = fields


class RestoreError(EvacuationError):
    """Not every guest runs again; ``missing`` lists them with where they are."""


class Files(object):
    """The file system as evacuation needs it (tests pass their own)."""

    def exists(self, path):
        return os.path.exists(path)

    def free_bytes(self, path):
        stat = os.statvfs(path)
        return stat.f_bavail * stat.f_frsize

    def makedirs(self, path):
        try:
            os.makedirs(path, 0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def read(self, path):
        try:
            with open(path) as handle:
                return handle.read()
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise

    def write_atomic(self, path, text):
        tmp = path + '.tmp'
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode('utf-8'))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)

    def remove(self, path):
        try:
            os.unlink(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise


def utc_iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def running_guests(xl):
    """``{name: domain}`` of the guests ``xl list`` shows (Domain-0 left out)."""
    command = xl.list_domains()
    if command.rc != 0:
        raise EvacuationError('xl list failed (rc=%s): %s' % (command.rc, (command.stderr or '').strip()),
                              cmd=command.argv, rc=command.rc, stdout=command.stdout, stderr=command.stderr)
    try:
        domains = parse_xl_list(command.stdout)
    except XlOutputError as exc:
        raise EvacuationError('cannot read xl list: %s' % exc, cmd=command.argv, stdout=command.stdout)
    return dict((d['name'], d) for d in domains if d['id'] != DOM0_ID)


def error_detail(text):
    """The lines of a failed xl command that say what went wrong (its lines that say ``error`` or
    ``fail``: libxl's errors and xl's own verdict, e.g. "Migration failed, resuming at sender."),
    else its last line."""
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    errors = [line for line in lines if 'error' in line.lower() or 'fail' in line.lower()]
    return '; '.join(errors) if errors else (lines[-1] if lines else 'no message')


def free_memory_mib(xl):
    """``xl info`` free_memory (MiB) of the host ``xl`` runs on."""
    command = xl.info()
    if command.rc != 0:
        raise EvacuationError('xl info failed (rc=%s): %s' % (command.rc, (command.stderr or '').strip()),
                              cmd=command.argv, rc=command.rc, stdout=command.stdout, stderr=command.stderr)
    value = info_int(parse_xl_info(command.stdout), 'free_memory')
    if value is None:
        raise EvacuationError('xl info shows no free_memory', cmd=command.argv, stdout=command.stdout)
    return value


def check_policy(policy, overrides):
    if policy not in POLICIES:
        raise EvacuationError('guest policy %r is not one of %s' % (policy, ', '.join(POLICIES)))
    for name, value in (overrides or {}).items():
        if value not in POLICIES:
            raise EvacuationError('guest policy override %s: %r is not one of %s'
                                  % (name, value, ', '.join(POLICIES)))


def parse_manifest(text, path):
    """The guest manifest's data from its text (None when there is no manifest); raises
    EvacuationError naming ``path`` when the text is not a mapping with a guests list."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EvacuationError('the guest manifest %s cannot be read (%s): it may be the only record of where '
                              'guests are; look at it and move it away by hand once every guest is accounted for'
                              % (path, exc))
    if not isinstance(data, dict) or not isinstance(data.get('guests'), list):
        raise EvacuationError('the guest manifest %s is not a mapping with a guests list; look at it and move '
                              'it away by hand once every guest is accounted for' % path)
    return data


# Guest states of a manifest that mean the guest is back (or never left): restore has nothing to do.
BACK_STATES = (RESTORED, STARTED, RUNNING, ON_PEER)


def unfinished_guests(manifest):
    """The guests of a manifest that an evacuation moved (or was about to move) and no restore
    brought back yet: every guest whose state is not one of BACK_STATES, unless the manifest's
    status is ``restored``. [] for no manifest."""
    if not manifest or manifest.get('status') == RESTORED:
        return []
    return [g for g in manifest.get('guests') or [] if isinstance(g, dict) and g.get('state') not in BACK_STATES]


class GuestEvacuation(object):
    """Evacuate / restore one host's guests. ``xl`` is an XlRunner (its ``run`` takes argv words)."""

    def __init__(self, xl, state_dir='/var/lib/noreboot-xen', run_id='', host=None, policy=SAVE, overrides=None,
                 peer=None, peer_free_memory_mib=None, save_dir=None, config_dir='/etc/xen', config_paths=None,
                 shutdown_timeout=300, poll_interval=2.0, remove_save_files=True, check_mode=False,
                 files=None, clock=time.time, sleep=time.sleep):
        self.xl = xl
        self.state_dir = state_dir
        self.manifest_path = os.path.join(state_dir, MANIFEST_NAME)
        self.run_id = run_id
        self.host = host
        self.policy = policy
        self.overrides = dict(overrides or {})
        self.peer = peer or None
        self.peer_free_memory_mib = peer_free_memory_mib
        self.save_dir = save_dir or os.path.join(state_dir, 'saved-guests')
        self.config_dir = config_dir
        self.config_paths = dict(config_paths or {})
        self.shutdown_timeout = float(shutdown_timeout)
        self.poll_interval = float(poll_interval)
        self.remove_save_files = bool(remove_save_files)
        self.check_mode = bool(check_mode)
        self.files = files or Files()
        self.clock = clock
        self.sleep = sleep
        self.actions = []
        self.changed = False

    # --- manifest ----------------------------------------------------------------------------
    def read_manifest(self):
        return parse_manifest(self.files.read(self.manifest_path), self.manifest_path)

    def write_manifest(self, manifest):
        manifest['updated'] = utc_iso(self.clock())
        if self.check_mode:
            return
        self.files.makedirs(self.state_dir)
        self.files.write_atomic(self.manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + '\n')
        self.changed = True

    # --- evacuate ----------------------------------------------------------------------------
    def action_for(self, name):
        return self.overrides.get(name, self.policy)

    def config_for(self, name):
        if name in self.config_paths:
            return self.config_paths[name]
        for candidate in (os.path.join(self.config_dir, name + '.cfg'), os.path.join(self.config_dir, name)):
            if self.files.exists(candidate):
                return candidate
        return None

    def plan(self, guests):
        """The action per guest (sorted by name), after checking every precondition; raises on the first
        policy-level problem with every guest it concerns."""
        check_policy(self.policy, self.overrides)
        entries = []
        for name in sorted(guests):
            dom = guests[name]
            action = self.action_for(name)
            entry = dict(name=name, domid=dom['id'], memory_mib=dom['memory_mib'], vcpus=dom['vcpus'],
                         action=action, state=PLANNED, file=None, peer=None, config=None, error=None)
            if action == SAVE:
                entry['file'] = os.path.join(self.save_dir, '%s.save' % name)
            elif action == MIGRATE:
                entry['peer'] = self.peer
            elif action == SHUTDOWN:
                entry['config'] = self.config_for(name)
            entries.append(entry)
        refused = [e['name'] for e in entries if e['action'] == REFUSE]
        if refused:
            raise EvacuationError('guest(s) %s run here and their policy is refuse: this host is not rebooted '
                                  '(fix: move them away yourself, or choose migrate, save or shutdown for them)'
                                  % ', '.join(refused), refused=refused, outcome='refused')
        migrating = [e for e in entries if e['action'] == MIGRATE]
        if migrating:
            if not self.peer:
                raise EvacuationError('guest(s) %s are to be migrated but no peer is given (fix: set the peer host '
                                      'to migrate to)' % ', '.join(e['name'] for e in migrating))
            if self.peer in (self.host, 'localhost', '127.0.0.1'):
                raise EvacuationError('the migration peer %s is this host itself (fix: name another dom0)' % self.peer)
            need = sum(e['memory_mib'] for e in migrating)
            if self.peer_free_memory_mib is None:
                raise EvacuationError('the free memory of peer %s is unknown (fix: read it with xl info on the peer '
                                      'first)' % self.peer)
            if need > int(self.peer_free_memory_mib):
                raise EvacuationError('peer %s has %s MiB free (xl info free_memory) but guest(s) %s need %d MiB: '
                                      'nothing was migrated (fix: free memory on the peer, choose another peer, or '
                                      'save these guests instead)' % (self.peer, self.peer_free_memory_mib,
                                                                      ', '.join(e['name'] for e in migrating), need))
        saving = [e for e in entries if e['action'] == SAVE]
        if saving:
            need = int(sum(e['memory_mib'] for e in saving) * SAVE_OVERHEAD + SAVE_MARGIN_MIB) * MIB
            probe = self.save_dir if self.files.exists(self.save_dir) else self.state_dir
            if not self.files.exists(probe):
                probe = os.path.dirname(probe.rstrip('/')) or '/'
            free = self.files.free_bytes(probe)
            if free < need:
                raise EvacuationError('%s has %d MiB free but saving guest(s) %s needs about %d MiB: nothing was '
                                      'saved (fix: free space there, set another save directory, or migrate these '
                                      'guests)' % (probe, free // MIB, ', '.join(e['name'] for e in saving),
                                                   need // MIB))
            clashes = [e['file'] for e in saving if self.files.exists(e['file'])]
            if clashes:
                raise EvacuationError('save file(s) %s exist already: they may hold a guest not yet restored; nothing '
                                      'was saved (fix: restore or remove them by hand)' % ', '.join(clashes))
        no_config = [e['name'] for e in entries if e['action'] == SHUTDOWN and not e['config']]
        if no_config:
            raise EvacuationError('guest(s) %s are to be shut down but have no config file under %s to start them '
                                  'again from: nothing was shut down (fix: give their config paths, or save them)'
                                  % (', '.join(no_config), self.config_dir))
        return entries

    def evacuate(self):
        guests = running_guests(self.xl)
        previous = self.read_manifest()
        kept = []
        if previous and previous.get('status') != RESTORED:
            # An earlier run did not bring these back: keep them accounted for.
            kept = [g for g in previous['guests'] if g.get('state') not in (RESTORED, STARTED, RUNNING)
                    and g['name'] not in guests]
        entries = self.plan(guests)
        manifest = dict(schema=1, host=self.host, run_id=self.run_id, policy=self.policy, peer=self.peer,
                        created=utc_iso(self.clock()), status=EVACUATING, guests=kept + entries)
        if self.check_mode:
            return self._result(manifest)
        self.write_manifest(manifest)
        if entries and any(e['action'] == SAVE for e in entries):
            self.files.makedirs(self.save_dir)
        for entry in entries:
            try:
                self._evacuate_one(entry)
            except EvacuationError as exc:
                entry['state'] = FAILED
                entry['error'] = exc.msg
                self.write_manifest(manifest)
                raise EvacuationError('guest %s (%s) could not be evacuated: %s; guests evacuated so far: %s. The '
                                      'host is not rebooted; restore the guests with the restore action'
                                      % (entry['name'], entry['action'], exc.msg,
                                         _where_list([e for e in entries if e['state'] in (SAVED, MIGRATED, SHUT_DOWN)])
                                         or 'none'), manifest=manifest, **exc.fields)
            self.write_manifest(manifest)
        still = running_guests(self.xl)
        left = [e['name'] for e in entries if e['name'] in still]
        if left:
            raise EvacuationError('guest(s) %s still run here after evacuation; the host is not rebooted'
                                  % ', '.join(left), manifest=manifest)
        manifest['status'] = EVACUATED
        self.write_manifest(manifest)
        return self._result(manifest)

    def _run(self, *args):
        command = self.xl.run(*args)
        self.actions.append(' '.join(['xl'] + list(args)))
        self.changed = True
        if command.rc != 0:
            detail = error_detail(command.stderr or command.stdout)
            raise EvacuationError('xl %s failed (rc=%s): %s' % (args[0], command.rc, detail),
                                  cmd=command.argv, rc=command.rc, stdout=command.stdout, stderr=command.stderr)
        return command

    def _save(self, entry):
        """``xl save``, tried again when it failed and the guest still runs. xl resumes a guest whose
        save failed ("Failed to save domain, resuming domain"): a guest slow to acknowledge the
        suspend request (busy, or still booting its kernel) costs an attempt, not the guest."""
        name = entry['name']
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                self._run('save', name, entry['file'])
                return
            except EvacuationError as exc:
                if name not in running_guests(self.xl):
                    raise EvacuationError('%s; the guest no longer runs here and its save file may be incomplete: '
                                          'look at xl list and %s before anything else (fix: xl restore it, or '
                                          'start it from its config)' % (exc.msg, entry['file']), **exc.fields)
                if attempt == SAVE_ATTEMPTS:
                    raise EvacuationError('%s (%d attempts; the guest still runs here)' % (exc.msg, attempt),
                                          **exc.fields)
                if self.files.exists(entry['file']):
                    self.files.remove(entry['file'])
                self.actions.append('xl save %s failed, the guest still runs: trying again (%s)'
                                    % (name, error_detail(exc.fields.get('stderr') or exc.fields.get('stdout') or '')))
                self.sleep(SAVE_RETRY_DELAY)

    def _evacuate_one(self, entry):
        name = entry['name']
        if entry['action'] == SAVE:
            self._save(entry)
            if not self.files.exists(entry['file']):
                raise EvacuationError('xl save reported success but %s does not exist' % entry['file'])
            entry['state'] = SAVED
        elif entry['action'] == MIGRATE:
            self._run('migrate', name, entry['peer'])
            entry['state'] = MIGRATED
        elif entry['action'] == SHUTDOWN:
            self._run('shutdown', name)
            deadline = self.clock() + self.shutdown_timeout
            while name in running_guests(self.xl):
                if self.clock() >= deadline:
                    raise EvacuationError('guest %s did not shut down within %ss; it still runs and was not forced '
                                          'off (fix: look at the guest, raise the shutdown timeout, or save it)'
                                          % (name, int(self.shutdown_timeout)))
                self.sleep(self.poll_interval)
            entry['state'] = SHUT_DOWN

    # --- restore -----------------------------------------------------------------------------
    def restore(self):
        manifest = self.read_manifest()
        if manifest is None:
            return self._result(None)
        if manifest.get('status') == RESTORED:
            return self._result(manifest)
        guests = running_guests(self.xl)
        problems = []
        for entry in manifest['guests']:
            try:
                self._restore_one(entry, guests)
            except EvacuationError as exc:
                entry['error'] = exc.msg
                problems.append(entry)
            if not self.check_mode:
                self.write_manifest(manifest)
        if self.check_mode:
            return self._result(manifest)
        now = running_guests(self.xl)
        missing = [e for e in manifest['guests']
                   if e['state'] != ON_PEER and e['name'] not in now]
        if missing or problems:
            for entry in missing:
                if not entry.get('error'):
                    entry['error'] = 'not running after restore'
            manifest['status'] = 'incomplete'
            self.write_manifest(manifest)
            bad = missing + [p for p in problems if p not in missing]
            raise RestoreError('guest(s) not running again on %s: %s (manifest %s)'
                               % (self.host or 'this host', _where_list(bad), self.manifest_path),
                               manifest=manifest, missing=[_where(e) for e in bad])
        manifest['status'] = RESTORED
        self.write_manifest(manifest)
        return self._result(manifest)

    def _restore_one(self, entry, guests):
        name = entry['name']
        state = entry.get('state')
        if state in (RESTORED, STARTED, RUNNING, ON_PEER):
            return
        if state == MIGRATED:
            entry['state'] = ON_PEER
            return
        if name in guests:
            entry['state'] = RUNNING
            return
        if self.check_mode:
            return
        if entry.get('action') == SAVE and entry.get('file') and self.files.exists(entry['file']):
            self._run('restore', entry['file'])
            entry['state'] = RESTORED
            if self.remove_save_files:
                self.files.remove(entry['file'])
                entry['file_removed'] = True
            return
        if entry.get('action') == SHUTDOWN and entry.get('config') and state in (SHUT_DOWN, PLANNED, FAILED):
            self._run('create', entry['config'])
            entry['state'] = STARTED
            return
        raise EvacuationError('guest %s is not running and cannot be brought back automatically (%s)'
                              % (name, _where(entry)))

    def _result(self, manifest):
        return dict(changed=self.changed, manifest=manifest, manifest_path=self.manifest_path,
                    guests=(manifest or {}).get('guests') or [], actions=list(self.actions))


def _where(entry):
    action = entry.get('action')
    if action == SAVE:
        place = 'saved to %s' % entry.get('file')
    elif action == MIGRATE:
        place = 'migrated to %s' % entry.get('peer')
    elif action == SHUTDOWN:
        place = 'shut down, config %s' % entry.get('config')
    else:
        place = action or 'unknown'
    text = '%s (%s, state %s' % (entry.get('name'), place, entry.get('state'))
    if entry.get('error'):
        text += ': %s' % entry['error']
    return text + ')'


def _where_list(entries):
    return '; '.join(_where(e) for e in entries)
