# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated ``xen-livepatch`` (tools/misc/xen-livepatch.c of Xen 4.17 and 4.20): its
commands, output and exit statuses, over the simulated hypervisor.

The host's build says which tool it is (``build['generation']``, lab_model.py): 4.20's takes
``--force`` before the command, says so in its usage text, and matches commands exactly; 4.17's
matches a command by any prefix of its name (``lis`` lists, an empty word is ``help``).
"""

import errno
import os
import time

from xensim_faults import take_fault
from xensim_hypervisor import APPLIED, CHECKED, NAME_SIZE, STATE_NAMES, ActionReturned, Hypervisor
from xensim_output import IO, strerror
from xensim_power import host_power, in_lab_host, run_pending_host_actions
from xensim_state import count_attempt, dmesg


HELP_HEAD = {
    '4.17': 'Usage: xen-livepatch <command> [args] [command-flags]\n',
    '4.20': 'Usage: xen-livepatch [--force] <command> [args] [command-flags]\n'
            ' Use --force option to bypass some checks.\n',
}
HELP_BODY = (
    ' <name> An unique name of payload. Up to %d characters.\n'
    'Commands:\n'
    '  help                   display this help\n'
    '  upload <name> <file>   upload file <file> with <name> name\n'
    '  list                   list payloads uploaded.\n'
    '  apply <name> [flags]   apply <name> patch.\n'
    '    Supported flags:\n'
    '      --nodeps           Disable inter-module buildid dependency check.\n'
    '                         Check only against hypervisor buildid.\n'
    '  revert <name>          revert name <name> patch.\n'
    '  replace <name>         apply <name> patch and revert all others.\n'
    '  unload <name>          unload name <name> patch.\n'
    '  load <file> [flags]    upload and apply <file> with name as the <file> name\n'
    '    Supported flags:\n'
    '      --nodeps           Disable inter-module buildid dependency check.\n'
    '                         Check only against hypervisor buildid.\n'
) % NAME_SIZE


def help_text(gen):
    return 'xen-livepatch: live patching tool\n' + HELP_HEAD[gen] + HELP_BODY


ACTIONS = {
    # name: (allow, expected, verb)
    'apply': (CHECKED, APPLIED, 'Applying'),
    'revert': (APPLIED, CHECKED, 'Reverting'),
    'unload': (CHECKED, -errno.ENOENT, 'Unloading'),
    'replace': (CHECKED, APPLIED, 'Replacing all live patches with'),
}
ACTION_ORDER = ('apply', 'revert', 'unload', 'replace')
MAIN_ORDER = ('help', 'list', 'upload', 'load')


def state2str(value):
    return STATE_NAMES.get(value, 'unknown')


class LivepatchTool(object):
    def __init__(self, host):
        self.host = host
        self.state = host.data
        self.hv = Hypervisor(self.state)

    def show_help(self):
        IO.err(help_text(generation(self.state)))

    def cmd_help(self, args):
        self.show_help()
        return 0

    def cmd_list(self, args):
        if args:
            self.show_help()
            return -1
        if not self.hv.enabled():
            IO.err('Failed to get list sizes.\nError %d: %s\n' % (errno.ENOSYS, strerror(errno.ENOSYS)))
            return errno.ENOSYS
        payloads = self.state['payloads']
        if not payloads:
            IO.out('Nothing to list\n')
            return 0
        IO.out(' ID                                     | status     | metadata\n'
               '----------------------------------------+------------+---------------\n')
        for payload in payloads:
            line = '%-40s| %s' % (payload['name'], state2str(payload['state']))
            if payload['rc']:
                line += ' (%d, %s)    | ' % (-payload['rc'], strerror(-payload['rc']))
            else:
                line += '    | '
            meta = payload['metadata']
            if meta:
                # NULs between strings show as ';', the final terminator ends the string.
                meta = meta[:-1].replace('\0', ';') if meta.endswith('\0') else meta.replace('\0', ';')
            IO.out(line + (meta or '') + '\n')
        return 0

    def get_name(self, name):
        if len(name.encode('utf-8', 'surrogateescape')) > NAME_SIZE:
            IO.err('ID must be no more than %d characters.\n' % NAME_SIZE)
            return errno.EINVAL
        return 0

    def cmd_upload(self, args):
        if len(args) != 2:
            self.show_help()
            return -1
        name, filename = args
        if self.get_name(name):
            return errno.EINVAL
        try:
            with open(filename, 'rb') as handle:
                raw = handle.read()
        except OSError as exc:
            IO.err('Could not open %s.\nError %d: %s\n' % (filename, exc.errno, strerror(exc.errno)))
            return exc.errno
        IO.out('Uploading %s... ' % filename)
        self.hv.settle()
        rc = self.hv.upload(name, filename, raw)
        self.host.save()
        if rc:
            IO.out('failed\n')
            IO.err('Error %d: %s\n' % (rc, strerror(rc)))
        else:
            IO.out('completed\n')
        return rc

    def action(self, op, args):
        if len(args) < 1:
            self.show_help()
            return -1
        name, flags = args[0], args[1:]
        if self.get_name(name):
            return errno.EINVAL
        nodeps = False
        for flag in flags:
            if op == 'apply' and flag == '--nodeps':
                nodeps = True
            else:
                IO.err('Unsupported flag: %s.\n' % flag)
                return errno.EINVAL
        allow, expected, verb = ACTIONS[op]
        self.hv.settle()
        rc, payload = self.hv.get(name)
        if rc:
            IO.err('Failed to get status of %s.\nError %d: %s\n' % (name, rc, strerror(rc)))
            return rc
        if payload['rc'] == -errno.EAGAIN:
            IO.err('Cannot execute %s.\nOperation already in progress.\n' % op)
            return errno.EAGAIN
        if payload['state'] == expected:
            IO.out('No action needed.\n')
            return 0
        if not allow & payload['state']:
            IO.err('%s is in the wrong state.\nCurrent state: %s\nExpected state: %s\n'
                   % (name, state2str(payload['state']), state2str(allow)))
            return -1
        IO.out('%s %s... ' % (verb, name))
        crash = payload['effect'].get('crash') if op in ('apply', 'replace') else None
        if crash:
            return self.crash_host(op, payload, crash)
        rc = self.hv.action(op, payload, nodeps=nodeps)
        self.host.save()
        if isinstance(rc, ActionReturned):
            # The sysctl returned a positive value: libxc returns it as is, the tool takes any
            # non-zero return for a failure and reports errno, which nothing set (exit status 0).
            IO.out('failed\n')
            IO.err('Error 0: %s\n' % strerror(0))
            return 0
        if rc:
            IO.out('failed\n')
            IO.err('Error %d: %s\n' % (rc, strerror(rc)))
            return rc
        rc, payload = self.hv.get(name)
        if rc:
            rc = -rc
        elif payload['rc']:
            rc = payload['rc']
        if rc == -errno.EAGAIN:
            IO.out('failed\n')
            IO.err("Operation didn't complete.\n")
            return errno.EAGAIN
        if rc == 0:
            rc = payload['state']
        if expected == rc:
            IO.out('completed\n')
        elif rc < 0:
            IO.out('failed\n')
            IO.err('Error %d: %s\n' % (-rc, strerror(-rc)))
            return -rc
        else:
            IO.out('failed\n')
            IO.err('%s is in the wrong state.\nCurrent state: %s\nExpected state: %s\n'
                   % (name, state2str(rc), state2str(expected)))
            return -1
        return 0

    def crash_host(self, op, payload, what):
        """A payload that kills the hypervisor: the host hangs (no reboot) until power-cycled."""
        state = self.state
        count_attempt(state, op, payload['name'])  # asked of the hypervisor, like any other attempt
        dmesg(state, 'livepatch: %s: Applying %d functions' % (payload['name'], payload['nfuncs']))
        dmesg(state, '*** %s ***' % what)
        state['crashed'] = True
        self.host.save()
        self.host.release()
        if in_lab_host(self.host.dir):
            # The hypervisor is dead: this command never returns, the host is gone until reset.
            host_power(self.host.dir, 'crash', delay=0.2)
            time.sleep(3600)
        # Outside a lab host (contract test) the caller sees what ssh shows: a dead connection.
        os._exit(255)

    def cmd_load(self, args):
        if len(args) < 1:
            self.show_help()
            return -1
        path = args[0]
        name = os.path.basename(path.rstrip('/')) if path.rstrip('/') else path
        if '.' in name:
            name = name[:name.rfind('.')]
        rc = self.cmd_upload([name, path])
        if rc:
            return rc
        rc = self.action('apply', [name] + list(args[1:]))
        if rc:
            self.action('unload', [name])
        return rc


def generation(state):
    return state['build'].get('generation', '4.17')


def find_command(gen, cmd):
    """(main command, action) the word ``cmd`` names: 4.20 compares whole words, 4.17 a prefix."""
    def matches(name):
        # 4.17: strncmp(name, cmd, strlen(cmd)), the first command in the tool's order wins.
        return name == cmd if gen == '4.20' else name.startswith(cmd)

    main = next((m for m in MAIN_ORDER if matches(m)), None)
    act = None if main else next((a for a in ACTION_ORDER if matches(a)), None)
    return main, act


def xen_livepatch_main(argv, host_factory):
    with host_factory() as host:
        gen = generation(host.data)
    argv = list(argv)
    if len(argv) <= 1:
        IO.err(help_text(gen))
        return 0
    if gen == '4.20' and argv[1] == '--force':
        # A global option before the command; alone it is a usage error. The 4.20 hypervisor
        # takes the flag on upload and in 4.20.4 skips no check with it: nothing changes here.
        if len(argv) <= 2:
            IO.err(help_text(gen))
            return 1
        argv = argv[:1] + argv[2:]
    cmd = argv[1]
    main, act = find_command(gen, cmd)
    if main is None and act is None:
        IO.err("Unrecognised command '%s' -- try 'xen-livepatch help'\n" % cmd)
        return 1
    with host_factory() as host:
        if take_fault(host.data, 'no_handler', cmd, default_ops=None):
            host.save()
            IO.err('failed to get the handler\n')
            return 0
        tool = LivepatchTool(host)
        tool.hv.settle()
        if main:
            ret = getattr(tool, 'cmd_' + main)(argv[2:])
        else:
            ret = tool.action(act, argv[2:])
        host.save()
        run_pending_host_actions(host)
    if ret == 0:
        return 0
    if ret in (errno.EAGAIN, errno.EBUSY):
        return 2
    return 1
