# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simulated ``xl save / restore / create / shutdown`` for lab hosts, and a simulated install
of a fixed hypervisor package (what the reboot fallback needs from a lab host).

Kept out of xensim.py so the transcript-exact tools stay as they were: xensim's ``xl`` hands
these sub-commands over (``COMMANDS``) and changes nothing else.

* ``xl save DOMAIN FILE``: writes FILE (a first line ``Xen saved domain, xl format``, then the
  domain as JSON), and the domain is gone. Messages on stderr as xl 4.17 prints them.
* ``xl restore FILE``: the domain from FILE runs again under a new domain id.
* ``xl create CONFIG``: starts the domain ``name = "..."`` (``memory``, ``vcpus``) of CONFIG.
* ``xl shutdown [-w] DOMAIN``: the domain shuts down cleanly (gone at once).
* ``xl migrate DOMAIN PEER``: the domain leaves this host and runs on the lab host PEER (same
  name, memory and vcpus, a new domain id there; PEER's free memory drops by its memory). Real
  xl runs ``ssh PEER xl migrate-receive``; a lab host has no key for its peers and no name for
  them, so the simulator writes the peer's state itself: it finds PEER's init process (the same
  lab: its /var/lib/noreboot-xen-lab is on the same file system as ours) and reaches PEER's state
  file through /proc/PID/root (lab hosts share the machine's PID namespace). Unknown or halted
  peer, a peer without the free memory, a peer already running a domain of that name, an
  unknown domain: rc 1, nothing changes (the domain runs here, under its id). The domain
  on the peer records ``migrated_from`` (host, domain id, boot_id, time), which xl does not show.

A domain that leaves (save, shutdown) also leaves ``guests_at_boot`` (it is no longer started
at boot); one that comes back (restore, create) joins it again, so a reboot keeps what runs.

Faults (``state['faults']``, e.g. ``labctl.py fault HOST guest_restore_fails '{"domains": ["g1"]}'``):
``guest_restore_fails: {domains: [...]}`` (xl restore of those fails, rc 1, the file is kept),
``guest_shutdown_hangs: {domains: [...]}`` (xl shutdown returns 0 but the domain keeps running),
``files_at_boot: {files: {PATH: TEXT}}`` (at every boot, before xendomains, the files are written:
what a configuration management agent that runs early at boot does to the files it manages, e.g.
an autostart entry in /etc/xen/auto that something renamed).

``counters.guest_ops``: ``{sub-command: {first argument: count}}`` of every guest command asked
(failed ones too): ``save``, ``restore`` (by file), ``create`` (by config), ``shutdown``, ``migrate``
(by domain). A restored domain records ``restored_from`` (the file), which xl does not show.

``xendomains_boot(state, root)``: what the distribution's xendomains service does at boot
(tools/hotplug/Linux/init.d/xendomains.in of Xen 4.17, ``start``): it reads XENDOMAINS_AUTO from
/etc/default/xendomains (or /etc/sysconfig/xendomains; default /etc/xen/auto) and starts, cold, every
config ``$XENDOMAINS_AUTO/*`` (dot files are not matched) whose domain does not run yet, as
``xl create`` would; the domain records ``autostarted`` (by, config, boot_id). XENDOMAINS_RESTORE
(restoring images of XENDOMAINS_SAVE) is not modelled. xensim's boot() calls it.

``install_build(state, build)`` is the package install: the build the host boots next
(``installed_build``, which xensim's boot() takes), as a dpkg -i of a hypervisor package would.
``hypervisor_image(build_id)`` is a small gzip ELF32 image carrying that build-id note, and
``grub_cfg()`` a grub.cfg whose default entry boots /boot/xen-4.17-amd64.gz, for tests that
write them into a lab host's /boot.
"""

import fcntl
import gzip
import json
import os
import struct
import time

COMMANDS = ('save', 'restore', 'create', 'shutdown', 'migrate')
SAVE_MAGIC = 'Xen saved domain, xl format'


def _domain(state, name):
    for dom in state['domains']:
        if dom['id'] != 0 and (dom['name'] == name or str(dom['id']) == name):
            return dom
    return None


def _fault_domains(state, key):
    fault = state['faults'].get(key) or {}
    return list(fault.get('domains') or []) if isinstance(fault, dict) else []


def _leave(state, dom):
    state['domains'] = [d for d in state['domains'] if d is not dom]
    state['guests_at_boot'] = [d for d in state['guests_at_boot'] if d['name'] != dom['name']]


def _join(state, record):
    next_id = max([d['id'] for d in state['domains']] + [state.get('last_domid', 0)]) + 1
    state['last_domid'] = next_id
    dom = dict(record, id=next_id, state='-b----', time=0.1)
    state['domains'].append(dom)
    state['guests_at_boot'] = [d for d in state['guests_at_boot'] if d['name'] != dom['name']] + [dict(dom)]
    return dom


def _count(state, cmd, key):
    ops = state['counters'].setdefault('guest_ops', {}).setdefault(cmd, {})
    ops[key] = ops.get(key, 0) + 1


XENDOMAINS_FILES = ('/etc/default/xendomains', '/etc/sysconfig/xendomains')
XENDOMAINS_AUTO = '/etc/xen/auto'


def _in_root(root, path):
    return os.path.join(root, path.lstrip('/'))


def xendomains_boot(state, root='/'):
    """xendomains ``start`` at boot: start the configs of the autostart directory whose domain does not run
    (``root``: where the host's file system is seen from, '/' inside the host). Returns what it started."""
    fault = state['faults'].get('files_at_boot') or {}
    for path, text in sorted((fault.get('files') or {}).items()):
        target = _in_root(root, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, 'w') as handle:
            handle.write(text)
    auto = XENDOMAINS_AUTO
    for settings in XENDOMAINS_FILES:
        try:
            with open(_in_root(root, settings)) as handle:
                values = _parse_config(handle.read())
        except (IOError, OSError):
            continue
        auto = values.get('XENDOMAINS_AUTO') or XENDOMAINS_AUTO
        break
    started = []
    try:
        entries = sorted(e for e in os.listdir(_in_root(root, auto)) if not e.startswith('.'))
    except OSError:
        return started
    for entry in entries:
        path = os.path.join(auto, entry)
        try:
            with open(_in_root(root, path)) as handle:
                config = _parse_config(handle.read())
        except (IOError, OSError):
            continue
        if not config.get('name') or _domain(state, config['name']) is not None:
            continue
        next_id = max([d['id'] for d in state['domains']] + [state.get('last_domid', 0)]) + 1
        state['last_domid'] = next_id
        state['domains'].append(dict(name=config['name'], mem=int(config.get('memory', 512)),
                                     vcpus=int(config.get('vcpus', 1)), id=next_id, state='-b----', time=0.1,
                                     autostarted={'by': 'xendomains', 'config': path, 'boot_id': state.get('boot_id')}))
        started.append(config['name'])
    return started


def _parse_config(text):
    values = {}
    for line in text.splitlines():
        line = line.split('#', 1)[0].strip()
        if '=' not in line:
            continue
        key, value = [part.strip() for part in line.split('=', 1)]
        values[key] = value.strip('"\'')
    return values


def guest_command(cmd, args, host, io):
    """Run ``xl CMD ARGS`` on the host state (locked by the caller); returns the exit status."""
    state = host.data
    words = [a for a in args if not a.startswith('-')]
    if cmd != 'migrate':
        _count(state, cmd, words[0] if words else '')
        host.save()
    if cmd == 'migrate':
        return migrate(args, host, io)
    if cmd in ('save', 'shutdown'):
        if not words:
            io.err('\'xl %s\' requires at least 1 argument.\n\n' % cmd)
            return 2
        dom = _domain(state, words[0])
        if dom is None:
            io.err('%s is an invalid domain identifier (rc=-6)\n' % words[0])
            return 1
        if cmd == 'shutdown':
            if dom['name'] in _fault_domains(state, 'guest_shutdown_hangs'):
                return 0
            _leave(state, dom)
            host.save()
            return 0
        if len(words) < 2:
            io.err('\'xl save\' requires at least 2 arguments.\n\n')
            return 2
        path = words[1]
        record = dict((k, dom[k]) for k in ('name', 'mem', 'vcpus'))
        with open(path, 'w') as handle:
            handle.write(SAVE_MAGIC + '\n' + json.dumps(record, sort_keys=True) + '\n')
        io.err('Saving to %s new xl format (info 0x3/0x0/1466)\n' % path)
        io.err('xc: info: Saving domain %d, type x86 PV\n' % dom['id'])
        _leave(state, dom)
        host.save()
        return 0
    if cmd == 'restore':
        if not words:
            io.err('\'xl restore\' requires at least 1 argument.\n\n')
            return 2
        path = words[-1]
        try:
            with open(path) as handle:
                magic = handle.readline().rstrip('\n')
                record = json.loads(handle.read())
        except (IOError, OSError) as exc:
            io.err('Failed to open restore file %s: %s\n' % (path, exc.strerror))
            return 1
        except ValueError:
            magic = None
        if magic != SAVE_MAGIC:
            io.err('File has wrong magic number - corrupt or for a different tool?\n')
            return 1
        io.err('Loading new save file %s (new xl fmt info 0x3/0x0/1466)\n' % path)
        io.err(' Savefile contains xl domain config in JSON format\n')
        io.err('Parsing config from <saved>\n')
        if record['name'] in _fault_domains(state, 'guest_restore_fails'):
            io.err('libxl: error: libxl_stream_read.c:852:libxl__xc_domain_restore_done: restoring domain: '
                   'Invalid argument\n')
            io.err('libxl: error: libxl_create.c:1919:domcreate_rebuild_done: Domain %d:cannot (re-)build domain: -3\n'
                   % (max(d['id'] for d in state['domains']) + 1))
            return 1
        if _domain(state, record['name']) is not None:
            io.err('libxl: error: libxl_create.c: Domain %s already exists\n' % record['name'])
            return 1
        _join(state, dict(record, restored_from=path))
        host.save()
        return 0
    if cmd == 'create':
        if not words:
            io.err('\'xl create\' requires a config file.\n')
            return 2
        path = words[0]
        try:
            with open(path) as handle:
                config = _parse_config(handle.read())
        except (IOError, OSError) as exc:
            io.err('Failed to read config file: %s: %s\n' % (path, exc.strerror))
            return 1
        io.err('Parsing config from %s\n' % path)
        if not config.get('name'):
            io.err('Domain name must be specified.\n')
            return 1
        if _domain(state, config['name']) is not None:
            io.err('libxl: error: libxl_create.c: Domain %s already exists\n' % config['name'])
            return 1
        _join(state, dict(name=config['name'], mem=int(config.get('memory', 512)), vcpus=int(config.get('vcpus', 1))))
        host.save()
        return 0
    io.err('command not implemented\n')
    return 1


# ----------------------------------------------------------------------------- migrate
#
# Modelled on tools/xl/xl_migrate.c of Xen 4.17 (main_migrate, migrate_domain, migrate_receive;
# the receiver's save file lines from create_domain in tools/xl/xl_vmcontrol.c, libxl's log lines
# from libxl_utils.c:505 and libxl_exec.c:117 of RELEASE-4.17.7): no transcript of a real xl
# migrate was recorded, so these lines are not replayed by the contract test. The receiver's
# messages reach the sender's stderr through ssh, as in the real transport. The libxc progress
# and restore lines of the receiver are left out.

HOST_DIR_IN_NS = '/var/lib/noreboot-xen-lab'
MIGRATE_OPTIONS_WITH_ARG = ('-C', '-s')
SAVE_INFO = '(info 0x3/0x0/1466)'
LOCK_WAIT = 30.0


def _lab_hosts():
    """{name or address: host directory seen through /proc/PID/root} of this lab's running hosts."""
    try:
        mine = os.stat(HOST_DIR_IN_NS).st_dev
    except OSError:
        return {}
    found = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                argv = handle.read().split(b'\0')
        except (IOError, OSError):
            continue
        if b'lab-init' not in argv:
            continue
        hostdir = '/proc/%s/root%s' % (entry, HOST_DIR_IN_NS)
        try:
            if os.stat(hostdir).st_dev != mine:
                continue  # a host of another lab instance
            with open(os.path.join(hostdir, 'state.json')) as handle:
                name = json.load(handle)['hostname']
            with open(os.path.join(hostdir, 'sshd_config')) as handle:
                addresses = [line.split()[1].rsplit(':', 1)[0] for line in handle if line.startswith('ListenAddress ')]
        except (IOError, OSError, ValueError, KeyError, IndexError):
            continue
        for key in [name] + addresses:
            found[key] = hostdir
    return found


def _free_memory(state):
    """xl info free_memory, as xensim computes it."""
    hw = state['hardware']
    return hw.get('free_memory', max(0, hw['total_memory'] - sum(d['mem'] for d in state['domains']) - 23))


def _lock_peer(path):
    """The peer's state lock, without waiting forever (two hosts migrating to each other)."""
    fd = os.open(path + '.lock', os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.time() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except (IOError, OSError):
            if time.time() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def migrate(args, host, io):
    """``xl migrate [-C config] [-s ssh] [-e] [-p] [-D] DOMAIN HOST`` (rc 0: the domain runs on HOST)."""
    state = host.data
    words = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in MIGRATE_OPTIONS_WITH_ARG:
            rest = rest[1:]
        elif not arg.startswith('-'):
            words.append(arg)
    _count(state, 'migrate', words[0] if words else '')
    host.save()
    if len(words) < 2:
        io.err('\'xl migrate\' requires at least 2 arguments.\n\n')
        return 2
    name, peer = words[0], words[1]
    dom = _domain(state, name)
    if dom is None:
        io.err('%s is an invalid domain identifier (rc=-6)\n' % name)  # find_domain()
        return 1
    transport = os.getpid() + 1  # the pid of the migration transport process (ssh), for the log line

    def transport_failed(ssh_error):
        io.err(ssh_error)
        io.err('libxl: error: libxl_utils.c:505:libxl_read_exactly: file/stream truncated reading banner from '
               'migration receiver stream\n')
        io.err('libxl: info: libxl_exec.c:117:libxl_report_child_exitstatus: migration transport process [%d] exited '
               'with error status 255\n' % transport)
        return 1

    peer_dir = _lab_hosts().get(peer)
    if peer_dir is None:
        return transport_failed('ssh: Could not resolve hostname %s: Name or service not known\r\n' % peer.lower())
    if os.path.exists(os.path.join(peer_dir, 'halted')):
        return transport_failed('ssh: connect to host %s port 22: Connection refused\r\n' % peer)
    peer_path = os.path.join(peer_dir, 'state.json')
    with open(peer_path) as handle:
        to_self = json.load(handle)['hostname'] == state['hostname']
    lock = None if to_self else _lock_peer(peer_path)
    if lock is None and not to_self:
        return transport_failed('ssh: connect to host %s port 22: Connection timed out\r\n' % peer)
    try:
        return _migrate_to(state if to_self else None, peer_path, dom, host, io, transport)
    finally:
        if lock is not None:
            os.close(lock)


def _migrate_to(peer_state, peer_path, dom, host, io, transport):
    """Both ends of a migration whose transport works: ``peer_state`` is None for another host
    (read from ``peer_path``, locked by the caller) or this host's own state (xl migrate to itself:
    the domain comes back under a new id, as on real Xen)."""
    state = host.data
    to_self = peer_state is not None
    if not to_self:
        with open(peer_path) as handle:
            peer_state = json.load(handle)
    name = dom['name']
    record = dict((k, dom[k]) for k in ('name', 'mem', 'vcpus'))
    io.err('migration target: Ready to receive domain.\n')
    io.err('Saving to migration stream new xl format %s\n' % SAVE_INFO)
    io.err('Loading new save file <incoming migration stream> (new xl fmt info 0x3/0x0/1466)\n')
    io.err(' Savefile contains xl domain config in JSON format\n')
    io.err('Parsing config from <saved>\n')
    if _free_memory(peer_state) < dom['mem']:
        # create_domain() fails on the target (xl_vmcontrol.c freemem()); the sender resumes the domain.
        io.err('failed to free memory for the domain\n')
        io.err('migration target: Domain creation failed (code -3).\n')
        io.err('migration sender: libxl_domain_suspend failed (rc=-3)\n')
        io.err('libxl: info: libxl_exec.c:117:libxl_report_child_exitstatus: migration transport process [%d] '
               'exited with error status 1\n' % transport)
        io.err('Migration failed, resuming at sender.\n')
        return 1
    io.err('xc: info: Saving domain %d, type x86 PV\n' % dom['id'])
    io.err('migration target: Transfer complete, requesting permission to start domain.\n')
    io.err('migration sender: Target has acknowledged transfer.\n')
    io.err('migration sender: Giving target permission to start.\n')
    io.err('migration target: Got permission, starting domain.\n')
    if not to_self and _domain(peer_state, name) is not None:
        # The target created the domain as NAME--incoming; renaming it to NAME fails
        # (libxl__domain_rename, ERROR_INVAL): the target destroys its copy, the sender resumes.
        incoming = max([d['id'] for d in peer_state['domains']] + [peer_state.get('last_domid', 0)]) + 1
        io.err('libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain %d:Domain with name "%s" already exists.\n'
               % (incoming, name))
        io.err('migration target: Failure, destroying our copy.\n')
        io.err('migration target: Cleanup OK, granting sender permission to resume.\n')
        io.err('migration sender: Target reports startup failure (status code 6).\n')
        io.err('migration sender: Trying to resume at our end.\n')
        io.err('migration sender: Resumed OK.\n')
        io.err('Migration failed due to problems at target.\n')
        return 1
    if to_self:
        _leave(state, dom)
    # Where it came from (not shown by xl): lets the lab tests tell a migration from a boot.
    _join(peer_state, dict(record, migrated_from={'host': state['hostname'], 'domid': dom['id'],
                                                  'boot_id': state.get('boot_id'), 'time': time.time()}))
    if not to_self:
        if 'free_memory' in peer_state['hardware']:
            peer_state['hardware']['free_memory'] -= record['mem']
        tmp = peer_path + '.tmp'
        with open(tmp, 'w') as handle:
            json.dump(peer_state, handle, indent=1, sort_keys=True)
        os.rename(tmp, peer_path)
    io.err('migration target: Domain started successsfully.\n')  # sic: xl_migrate.c spells it so
    io.err('migration sender: Target reports successful startup.\n')
    if not to_self:
        _leave(state, dom)
    host.save()
    io.err('Migration successful.\n')
    return 0


# ----------------------------------------------------------------------------- package install

def install_build(state, build):
    """What installing a hypervisor package does: the next boot runs ``build`` (a lab_model build)."""
    state['installed_build'] = build


def _pad(data):
    return data + b'\0' * ((-len(data)) % 4)


def _note(name, note_type, desc):
    name = name + b'\0'
    return struct.pack('<III', len(name), len(desc), note_type) + _pad(name) + _pad(desc)


def hypervisor_image(build_id):
    """A gzip-compressed ELF32 executable with a PT_NOTE segment holding the GNU build-id note, the
    layout of Debian's /boot/xen-4.17-amd64.gz (only the headers and the note: it does not boot)."""
    notes = _note(b'GNU', 3, bytes.fromhex(build_id))
    header = b'\x7fELF' + bytes([1, 1, 1]) + b'\0' * 9
    header += struct.pack('<HHIIIIIHHHHHH', 2, 3, 1, 0x200000, 52, 0, 0, 52, 32, 1, 40, 0, 0)
    phdr = struct.pack('<IIIIIIII', 4, 84, 0, 0, len(notes), len(notes), 4, 4)
    return gzip.compress(header + phdr + notes, mtime=0)


GRUB_CFG = '''#
# DO NOT EDIT THIS FILE (lab host: written by the reboot fallback lab test)
#
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="%(default)s"
fi
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-lab' {
\tlinux\t/boot/vmlinuz-6.1.0-28-amd64 root=/dev/vda ro quiet
\tinitrd\t/boot/initrd.img-6.1.0-28-amd64
}
menuentry 'Debian GNU/Linux, with Xen hypervisor' --class debian --class xen $menuentry_id_option 'xen-gnulinux-simple-lab' {
\techo\t'Loading Xen 4.17-amd64 ...'
\tmultiboot2\t/boot/xen-4.17-amd64.gz placeholder   ${xen_rm_opts}
\tmodule2\t/boot/vmlinuz-6.1.0-28-amd64 placeholder root=/dev/vda ro quiet
\tmodule2\t--nounzip   /boot/initrd.img-6.1.0-28-amd64
}
'''


def grub_cfg(default='Debian GNU/Linux, with Xen hypervisor'):
    return GRUB_CFG % {'default': default}


def write_boot_files(boot_dir, build_id, default='Debian GNU/Linux, with Xen hypervisor'):
    """Write /boot/xen-4.17-amd64.gz (build ``build_id``) and /boot/grub/grub.cfg under ``boot_dir``."""
    os.makedirs(os.path.join(boot_dir, 'grub'), exist_ok=True)
    with open(os.path.join(boot_dir, 'xen-4.17-amd64.gz'), 'wb') as handle:
        handle.write(hypervisor_image(build_id))
    with open(os.path.join(boot_dir, 'grub', 'grub.cfg'), 'w') as handle:
        handle.write(grub_cfg(default))
