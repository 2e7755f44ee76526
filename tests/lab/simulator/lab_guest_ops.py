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
* ``xl migrate``: not simulated (lab hosts cannot reach each other's state): rc 1.

A domain that leaves (save, shutdown) also leaves ``guests_at_boot`` (it is no longer started
at boot); one that comes back (restore, create) joins it again, so a reboot keeps what runs.

Faults (``state['faults']``, e.g. ``labctl.py fault HOST guest_restore_fails '{"domains": ["g1"]}'``):
``guest_restore_fails: {domains: [...]}`` (xl restore of those fails, rc 1, the file is kept),
``guest_shutdown_hangs: {domains: [...]}`` (xl shutdown returns 0 but the domain keeps running).

``install_build(state, build)`` is the package install: the build the host boots next
(``installed_build``, which xensim's boot() takes), as a dpkg -i of a hypervisor package would.
``hypervisor_image(build_id)`` is a small gzip ELF32 image carrying that build-id note, and
``grub_cfg()`` a grub.cfg whose default entry boots /boot/xen-4.17-amd64.gz, for tests that
write them into a lab host's /boot.
"""

import gzip
import json
import os
import struct

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
    if cmd == 'migrate':
        io.err('xl migrate: live migration is not simulated in the lab\n')
        return 1
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
        _join(state, record)
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
