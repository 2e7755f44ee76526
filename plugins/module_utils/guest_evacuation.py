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

Guest names must be plain Xen domain names and the peer a host name or address (both checked
before anything is written); a save image is always ``<save_dir>/<name>.save`` and restore reads
and removes no other file. ``verify_evacuated`` lists the domains again right before the reboot.
A save image is removed only once its guest was seen running after ``RESTORE_SETTLE`` seconds; a
saved guest found already running at restore (started cold by xendomains / ``/etc/xen/auto``)
is a ``conflict``, its image kept. Autostart entries of saved and migrated guests are held over
the reboot (see ``read_xendomains``). ``reserve_peer_memory`` shares a peer out among a wave.

Commands are argv lists through an ``XlRunner`` (plugins/module_utils/xen_command_runner.py);
the file system is reached through a small ``Files`` object so tests can replace it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import re
import socket
import time

from ansible_collections.noreboot.xen.plugins.module_utils.host_state_files import utc_iso
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
CONFLICT = 'conflict'        # saved, but found started cold after the boot: its image was not used (kept)
ON_PEER = 'on_peer'

EVACUATED = 'evacuated'
EVACUATING = 'evacuating'
MANIFEST_NAME = 'guests.json'
# The distribution's xendomains settings (Debian, then RHEL-likes) and its default autostart directory.
XENDOMAINS_FILES = ('/etc/default/xendomains', '/etc/sysconfig/xendomains')
XENDOMAINS_AUTO = '/etc/xen/auto'
# An autostart entry held over the reboot: renamed in its own directory to a dot file, which
# xendomains' ``$XENDOMAINS_AUTO/*`` does not match (same file system: an atomic rename).
HELD_SUFFIX = '.noreboot-xen-held'
DOM0_ID = 0
MIB = 1024 * 1024
# xl save attempts per guest (a failed save that leaves the guest running is tried again), and the
# pause between them.
SAVE_ATTEMPTS = 2
SAVE_RETRY_DELAY = 10.0
# A save image is the guest's memory plus a little; ask for this much more room.
SAVE_OVERHEAD = 1.05
SAVE_MARGIN_MIB = 64
# Seconds between the last xl restore / xl create and the xl list that must show the guests running: a guest
# that dies on resume is gone (or crashed) by then, and its save image is still there.
RESTORE_SETTLE = 5.0


class EvacuationError(Exception):
    """Evacuation cannot start or stopped; ``msg`` says why and what to do, ``fields`` add context."""

    def __init__(self, msg, **fields):
        super(EvacuationError, self).__init__(msg)
        self.msg = msg
        self.fields = fields


class RestoreError(EvacuationError):
    """Not every guest runs again; ``missing`` lists them with where they are."""


# A plain Xen domain name: what becomes part of a save-file path, a config path and an xl argv.
# Letters, digits, '_', '-', '.', ':' (no '/', no '..', no shell characters), not starting with '.' or '-'.
_DOMAIN_NAME_RE = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$')
# A DNS host name: labels of letters, digits and inner '-', separated by single dots.
_HOST_LABEL = r'[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
_HOST_NAME_RE = re.compile(r'^%s(?:\.%s)*\.?$' % (_HOST_LABEL, _HOST_LABEL))


def plain_domain_name(name):
    """True when ``name`` is a plain Xen domain name (safe in a path and an argv)."""
    return (isinstance(name, str) and bool(_DOMAIN_NAME_RE.match(name)) and '..' not in name)


def host_or_address(peer):
    """True when ``peer`` is a host name, an IPv4 or an IPv6 address (nothing ssh or a shell reads more into)."""
    if not isinstance(peer, str) or not peer or len(peer) > 253:
        return False
    if _HOST_NAME_RE.match(peer):
        return True
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, peer)
            return True
        except (socket.error, ValueError):
            continue
    return False


def check_domain_names(names, what='guest'):
    """Raise naming every name that is not a plain Xen domain name."""
    bad = sorted(n for n in names if not plain_domain_name(n))
    if bad:
        raise EvacuationError('%s name(s) %s: not a plain Xen domain name (letters, digits, _ - . :, no / or ..; at '
                              'most 64 characters): nothing was moved (fix: rename the domain, or move it away by '
                              'hand)' % (what, ', '.join(repr(n) for n in bad)), refused=bad)


def check_peer(peer):
    if peer is not None and not host_or_address(peer):
        raise EvacuationError('migration peer %r is not a host name or address (no user@, port, path, option or shell '
                              'character): nothing was moved (fix: give the peer dom0 as a host name or IP address)'
                              % (peer,))


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
        """Replace ``path`` by ``text`` or leave it as it was: every byte written (os.write may write less
        than asked), the file fsynced, renamed over ``path``, the directory fsynced (the rename is durable).
        On any error the temporary file is removed and the old file is untouched."""
        tmp = path + '.tmp'
        data = text.encode('utf-8')
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                done = 0
                while done < len(data):
                    written = os.write(fd, data[done:])
                    if not written:
                        raise OSError(errno.EIO, 'wrote nothing to %s' % tmp)
                    done += written
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except Exception:
            self.remove(tmp)
            raise
        dir_fd = os.open(os.path.dirname(path) or '.', os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def remove(self, path):
        try:
            os.unlink(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def listdir(self, path):
        return sorted(os.listdir(path))

    def rename(self, src, dst):
        os.rename(src, dst)


_SHELL_ASSIGN_RE = re.compile(r'^\s*(XENDOMAINS_[A-Z_]+)=(.*)$')
_CFG_NAME_RE = re.compile(r'''^\s*name\s*=\s*["']([^"']+)["']''', re.MULTILINE)


def read_xendomains(files, paths=XENDOMAINS_FILES):
    """The xendomains settings that act on guests at shutdown and boot: ``path`` (the file read, or None),
    ``save`` (XENDOMAINS_SAVE: where it saves running domains at shutdown, '' for none), ``restore``
    (XENDOMAINS_RESTORE: whether it restores them from there at boot) and ``auto`` (XENDOMAINS_AUTO: the
    directory of configs it starts at boot)."""
    for path in paths:
        text = files.read(path)
        if text is None:
            continue
        values = {}
        for line in text.splitlines():
            match = _SHELL_ASSIGN_RE.match(line)
            if match:
                value = match.group(2).split(' #')[0].strip()
                values[match.group(1)] = value.strip('"').strip("'")
        return dict(path=path, save=values.get('XENDOMAINS_SAVE', ''),
                    restore=values.get('XENDOMAINS_RESTORE', 'true').lower() == 'true',
                    auto=values.get('XENDOMAINS_AUTO') or XENDOMAINS_AUTO)
    return dict(path=None, save='', restore=False, auto=XENDOMAINS_AUTO)


def autostart_configs(files, auto_dir):
    """``{domain name: [config paths]}`` of the configs in the autostart directory (their ``name = "..."``):
    xendomains starts every ``$XENDOMAINS_AUTO/*``, so a guest may have more than one (a backup ``web.cfg~``)."""
    found = {}
    if not auto_dir or not files.exists(auto_dir):
        return found
    for entry in files.listdir(auto_dir):
        if entry.startswith('.'):
            continue
        path = os.path.join(auto_dir, entry)
        try:
            text = files.read(path)
        except (IOError, OSError):
            continue
        match = _CFG_NAME_RE.search(text or '')
        if match:
            found.setdefault(match.group(1), []).append(path)
    return found


def _paths(value):
    """A manifest's autostart paths as a list (an older manifest holds one path as a string)."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


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


def alive(domain):
    """A domain ``xl list`` shows neither crashed (c) nor dying (d)."""
    state = domain.get('state') or ''
    return 'c' not in state and 'd' not in state


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


def migration_need_mib(guests, policy, overrides=None):
    """MiB of the guests (``xl list`` dicts) that ``policy`` (and per-guest ``overrides``) migrates."""
    overrides = overrides or {}
    return sum(int(g['memory_mib']) for g in guests if overrides.get(g['name'], policy) == MIGRATE)


def reserve_peer_memory(requests):
    """Assign the migration peers of one wave on the controller. ``requests``: per host of the wave
    ``host``, ``peer``, ``need_mib`` (what it migrates) and ``peer_free_mib`` (the peer's xl info
    free_memory read before any migration). Returns per host ``peer``, ``need_mib``, ``available_mib`` (the
    peer's free memory less what the hosts before it, by name, reserved) and ``refused`` (why, or None).
    A peer that cannot take the whole wave refuses every host migrating to it: nothing is migrated."""
    wave = set(r['host'] for r in requests)
    by_peer = {}
    for request in sorted(requests, key=lambda r: r['host']):
        if int(request.get('need_mib') or 0) > 0:
            by_peer.setdefault(request['peer'], []).append(request)
    plan = dict((r['host'], dict(peer=r.get('peer'), need_mib=int(r.get('need_mib') or 0), available_mib=None,
                                 refused=None)) for r in requests)
    for peer, hosts in by_peer.items():
        names = ', '.join(r['host'] for r in hosts)
        frees = [int(r['peer_free_mib']) for r in hosts if r.get('peer_free_mib') is not None]
        total = sum(int(r['need_mib']) for r in hosts)
        refused = None
        if not peer:
            refused = 'no migration peer is set for %s (fix: set the peer host to migrate to)' % names
        elif peer in wave:
            refused = ('the migration peer %s is rebooted in the same wave as %s (fix: choose a peer outside the '
                       'wave)' % (peer, names))
        elif len(frees) < len(hosts):
            refused = 'the free memory of peer %s is unknown (fix: read it with xl info on the peer)' % peer
        elif total > min(frees) and len(hosts) > 1:
            # (One host alone is checked by evacuate itself, with the same numbers.)
            refused = ('peer %s has %d MiB free but the wave migrates %d MiB to it (%s): nothing was migrated (fix: '
                       'free memory on the peer, spread the hosts over other peers or waves, or save these guests)'
                       % (peer, min(frees), total, ', '.join('%s %d' % (r['host'], int(r['need_mib'])) for r in hosts)))
        reserved = 0
        for request in hosts:
            entry = plan[request['host']]
            entry['refused'] = refused
            if frees:
                entry['available_mib'] = min(frees) - reserved
            reserved += int(request['need_mib'])
    return plan


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
        self.save_dir_given = save_dir or None
        self.save_dir = os.path.normpath(save_dir or os.path.join(state_dir, 'saved-guests'))
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

    def save_file(self, name, save_dir=None):
        """The save image of guest ``name``: ``<save_dir>/<name>.save``, never anywhere else."""
        return os.path.join(save_dir or self.save_dir, '%s.save' % name)

    def plan(self, guests):
        """The action per guest (sorted by name), after checking every precondition; raises on the first
        policy-level problem with every guest it concerns."""
        check_policy(self.policy, self.overrides)
        check_domain_names(guests)
        check_peer(self.peer)
        entries = []
        for name in sorted(guests):
            dom = guests[name]
            action = self.action_for(name)
            entry = dict(name=name, domid=dom['id'], memory_mib=dom['memory_mib'], vcpus=dom['vcpus'],
                         action=action, state=PLANNED, file=None, peer=None, config=None, error=None)
            if action == SAVE:
                entry['file'] = self.save_file(name)
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
        xendomains = read_xendomains(self.files)
        autostart = autostart_configs(self.files, xendomains['auto'])
        for entry in entries:
            # Started cold at boot it would lose its saved memory image, or run twice (here and on the peer).
            if entry['action'] in (SAVE, MIGRATE) and entry['name'] in autostart:
                entry['autostart'] = autostart[entry['name']]
                entry['autostart_held'] = []
        saving = [e for e in entries if e['action'] == SAVE]
        if saving and xendomains['restore'] and xendomains['save'] \
                and os.path.normpath(xendomains['save']) == self.save_dir:
            raise EvacuationError('%s sets XENDOMAINS_RESTORE=true and XENDOMAINS_SAVE %s, which is the save '
                                  'directory: xendomains would restore the saved guests at boot on its own; nothing '
                                  'was saved (fix: set another save directory)' % (xendomains['path'], self.save_dir))
        if saving:
            need = int(sum(e['memory_mib'] for e in saving) * SAVE_OVERHEAD + SAVE_MARGIN_MIB) * MIB
            # The save directory's file system: the directory itself, else its nearest existing parent.
            probe = self.save_dir
            while not self.files.exists(probe) and os.path.dirname(probe) != probe:
                probe = os.path.dirname(probe)
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
                        save_dir=self.save_dir, created=utc_iso(self.clock()), status=EVACUATING,
                        guests=kept + entries)
        if self.check_mode:
            return self._result(manifest)
        self.write_manifest(manifest)
        if entries and any(e['action'] == SAVE for e in entries):
            self.files.makedirs(self.save_dir)
        for entry in entries:
            for path in _paths(entry.get('autostart')):
                held = held_path(path)
                self.files.rename(path, held)
                entry['autostart_held'] = _paths(entry.get('autostart_held')) + [held]
                self.actions.append('held autostart entry %s as %s for the reboot' % (path, held))
                self.write_manifest(manifest)
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

    # --- right before the reboot -------------------------------------------------------------
    def verify_evacuated(self):
        """List the domains again, right before the reboot: any guest running here (one created after the
        evacuation, so not in the manifest, or one of the manifest back again) would be killed by the reboot.
        Read-only; raises naming each. Not a refusal (``outcome`` unset): the guests already moved are to be
        brought back by the caller."""
        guests = running_guests(self.xl)
        manifest = self.read_manifest() or dict(guests=[])
        listed = dict((g.get('name'), g) for g in manifest['guests'])
        if guests:
            unexpected = sorted(n for n in guests if n not in listed)
            back = sorted(n for n in guests if n in listed)
            parts = ['%s runs here but is not in the guest manifest %s (created after the evacuation)'
                     % (n, self.manifest_path) for n in unexpected]
            parts += ['%s runs here again although the manifest says %s' % (n, listed[n].get('state')) for n in back]
            raise EvacuationError('%s: %s is not rebooted, a reboot would kill them (fix: move these guests away '
                                  'or stop them, then run again; the evacuated guests are brought back)'
                                  % ('; '.join(parts), self.host or 'this host'), unexpected=unexpected, back=back,
                                  guests=[guests[n] for n in sorted(guests)])
        return self._result(manifest if manifest.get('status') else None)

    # --- restore -----------------------------------------------------------------------------
    def restore(self):
        manifest = self.read_manifest()
        if manifest is None:
            return self._result(None)
        if manifest.get('status') == RESTORED:
            return self._result(manifest)
        guests = running_guests(self.xl)
        problems = []
        # Save files are read (and removed) only inside the save directory: the one given, else the one the
        # manifest records (written by evacuate), else the default.
        save_dir = os.path.normpath(self.save_dir_given or manifest.get('save_dir') or self.save_dir)
        for entry in manifest['guests']:
            try:
                self._check_entry(entry, save_dir)
                self._restore_one(entry, guests)
            except EvacuationError as exc:
                entry['error'] = exc.msg
                problems.append(entry)
            if not self.check_mode:
                self.write_manifest(manifest)
        if self.check_mode:
            return self._result(manifest)
        if any(e['state'] in (RESTORED, STARTED) and e['name'] not in guests for e in manifest['guests']):
            self.sleep(RESTORE_SETTLE)
        now = dict((n, d) for n, d in running_guests(self.xl).items() if alive(d))
        missing = [e for e in manifest['guests']
                   if e['state'] != ON_PEER and e['name'] not in now]
        for entry in manifest['guests']:
            if entry['name'] not in now or entry.get('file_removed') or entry['state'] != RESTORED:
                continue
            # Seen running after the settle: only now is its memory image no longer needed.
            if self.remove_save_files and entry.get('file'):
                self.files.remove(entry['file'])
                entry['file_removed'] = True
        for entry in manifest['guests']:
            # Put back once the guest itself runs here again: not while a cold one of its name is in conflict.
            if entry.get('autostart_held') and entry['name'] in now and entry['state'] != CONFLICT:
                held = _paths(entry['autostart_held'])
                for path in _paths(entry.get('autostart')):
                    if held_path(path) in held:
                        self.files.rename(held_path(path), path)
                        self.actions.append('put back autostart entry %s' % path)
                entry['autostart_held'] = []
        for entry in missing:
            if entry['state'] == RESTORED and entry.get('file'):
                # The guest lives on in its image only: the manifest says so (a rerun restores from it again).
                entry['state'] = SAVED
                entry['error'] = ('xl restore exited 0 but the guest does not run (or crashed) %ss later: image kept '
                                  'at %s (fix: look at xl dmesg and the guest console, then xl restore it by hand)'
                                  % (int(RESTORE_SETTLE), entry['file']))
        if missing or problems:
            for entry in missing:
                if not entry.get('error'):
                    entry['error'] = 'not running after restore'
            manifest['status'] = 'incomplete'
            self.write_manifest(manifest)
            bad = missing + [p for p in problems if p not in missing]
            raise RestoreError('guest(s) not running again on %s: %s (manifest %s)'
                               % (self.host or 'this host', _where_list(bad), self.manifest_path),
                               manifest=manifest, missing=[where(e) for e in bad],
                               conflicts=[e['name'] for e in bad if e['state'] == CONFLICT])
        manifest['status'] = RESTORED
        self.write_manifest(manifest)
        return self._result(manifest)

    def _check_entry(self, entry, save_dir):
        """A manifest entry names a plain domain and, when saved, its own save file in the save directory."""
        name = entry.get('name')
        if not plain_domain_name(name):
            raise EvacuationError('%r is not a plain Xen domain name: not restored (fix: look at the manifest %s)'
                                  % (name, self.manifest_path))
        if entry.get('action') == SAVE and entry.get('file') and entry['file'] != self.save_file(name, save_dir):
            raise EvacuationError('%s is not the save file of guest %s in %s: not read, not removed (fix: look at the '
                                  'manifest %s, restore the guest by hand)'
                                  % (entry['file'], name, save_dir, self.manifest_path))

    def _restore_one(self, entry, guests):
        name = entry['name']
        state = entry.get('state')
        if state in (RESTORED, STARTED, RUNNING, ON_PEER):
            return
        if state == CONFLICT and not self.files.exists(entry.get('file') or ''):
            state = entry['state'] = RUNNING if name in guests else SAVED
            if state == RUNNING:
                return
        if state == MIGRATED:
            entry['state'] = ON_PEER
            return
        if name in guests:
            if entry.get('action') == SAVE and state in (SAVED, CONFLICT) and entry.get('file') \
                    and self.files.exists(entry['file']):
                entry['state'] = CONFLICT
                raise EvacuationError(
                    '%s was started cold after the boot (%s) and its memory image %s was not used: image kept (fix: to '
                    'resume the saved state, xl shutdown the cold guest and run the same command again, or xl restore '
                    '%s; to keep the cold one, remove the image%s)'
                    % (name, self._started_by(name, guests[name]['id']), entry['file'], entry['file'],
                       self._autostart_hint(name)))
            entry['state'] = RUNNING
            return
        if self.check_mode:
            return
        if entry.get('action') == SAVE and entry.get('file') and self.files.exists(entry['file']):
            self._run('restore', entry['file'])
            entry['state'] = RESTORED
            return
        if entry.get('action') == SHUTDOWN and entry.get('config') and state in (SHUT_DOWN, PLANNED, FAILED):
            self._run('create', entry['config'])
            entry['state'] = STARTED
            return
        raise EvacuationError('guest %s is not running and cannot be brought back automatically (%s)'
                              % (name, where(entry)))

    def _autostart_entry(self, name):
        """``(autostart directory, entries or None)``: the entries (paths joined by ', ') of the host's xendomains
        autostart directory (XENDOMAINS_AUTO of its settings) that name guest ``name``."""
        auto_dir = read_xendomains(self.files)['auto']
        return auto_dir, ', '.join(autostart_configs(self.files, auto_dir).get(name) or []) or None

    def _started_by(self, name, domid):
        """Who started a saved guest cold after the boot, as far as this host tells: its own autostart entry."""
        auto_dir, entry = self._autostart_entry(name)
        if entry:
            return 'domain %s, by xendomains from its autostart entry %s' % (domid, entry)
        return 'domain %s; no autostart entry in %s names it: something else started it' % (domid, auto_dir)

    def _autostart_hint(self, name):
        entry = self._autostart_entry(name)[1]
        return '; remove or rename %s if %s must not start at boot' % (entry, name) if entry else ''

    def _result(self, manifest):
        return dict(changed=self.changed, manifest=manifest, manifest_path=self.manifest_path,
                    guests=(manifest or {}).get('guests') or [], actions=list(self.actions))


def held_path(path):
    """Where an autostart entry is held over the reboot: a dot file beside it."""
    return os.path.join(os.path.dirname(path), '.%s%s' % (os.path.basename(path), HELD_SUFFIX))


def where(entry, with_error=True):
    """One guest's whereabouts in words: ``web1 (saved to /var/.../web1.save, state saved: error)``;
    without ``with_error``, the manifest entry's error is left out. The one wording of a guest's
    place, used by the module, the plan (plan_decision) and the reboot wave gate."""
    entry = entry or {}
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
    if with_error and entry.get('error'):
        text += ': %s' % entry['error']
    return text + ')'


def _where_list(entries):
    return '; '.join(where(e) for e in entries)
