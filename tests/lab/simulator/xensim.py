# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simulated ``xl`` and ``xen-livepatch`` (and a reboot stand-in) for lab hosts.

One program, dispatched on the name it runs as (argv[0]): ``xl``, ``xen-livepatch``, or
``systemctl`` / ``reboot`` / ``shutdown`` / ``halt`` / ``poweroff``. Output, stream (stdout or
stderr), write order and exit status follow the real tools of Xen 4.17
(tools/misc/xen-livepatch.c, tools/xl/xl_info.c) and the hypervisor's checks
(xen/common/livepatch.c); tests/lab/tests/test_simulator_contract.py replays real transcripts.

State: one JSON file per host (``NOREBOOT_XEN_LAB_STATE``, default
``/var/lib/noreboot-xen-lab/state.json``, a per-host directory bind-mounted there), guarded
by an exclusive lock so concurrent calls see a consistent hypervisor.
"""

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lab_elf_notes import ElfError, ElfPayload  # noqa: E402

DEFAULT_STATE = '/var/lib/noreboot-xen-lab/state.json'
NAME_SIZE = 128
MAX_PAYLOAD_SIZE = 2 * 1024 * 1024
CONSOLE_RING = 16 * 1024
LIVEPATCH_FUNC_SIZE = 104
CHECKED, APPLIED = 1, 2
STATE_NAMES = {CHECKED: 'CHECKED', APPLIED: 'APPLIED'}

# Real Xen test payloads (xen/test/livepatch): what applying them does, known by the name of
# their source file (an STT_FILE symbol in the payload) or, failing that, the file's name.
ACTION_HOOKS = ['apply_action', 'revert_action', 'post_revert']
PREPOST_HOOKS = ['pre_apply', 'post_apply', 'pre_revert', 'post_revert']
REAL_TEST_PAYLOADS = {
    'xen_hello_world': {'xen_extra': 'Hello World'},
    'xen_bye_world': {'xen_extra': 'Bye World!'},
    'xen_replace_world': {'xen_extra': 'Hello Again World!'},
    'xen_expectations': {'xen_extra': 'Hello World'},
    'xen_expectations_fail': {'apply_error': errno.EINVAL, 'apply_error_phase': 'expectations'},
    'xen_prepost_hooks': {'xen_extra': 'Hello World', 'hooks': PREPOST_HOOKS, 'revert_error': errno.EPERM,
                          'revert_error_phase': 'pre-revert', 'revert_error_times': 1},
    'xen_prepost_hooks_fail': {'hooks': ['pre_apply'], 'apply_error': errno.EINVAL, 'apply_error_phase': 'pre-apply'},
    'xen_action_hooks': {'xen_extra': 'Hello World', 'hooks': ACTION_HOOKS},
    'xen_action_hooks_marker': {'xen_extra': 'Hello World', 'hooks': PREPOST_HOOKS},
    'xen_action_hooks_nofunc': {'hooks': ACTION_HOOKS},
    'xen_action_hooks_noapply': {'hooks': ['pre_apply', 'apply_action', 'post_apply'],
                                 'apply_error': errno.EINVAL, 'apply_error_phase': 'action'},
    'xen_action_hooks_norevert': {'xen_extra': 'Hello World', 'hooks': PREPOST_HOOKS + ['revert_action'],
                                  'revert_error': errno.EINVAL, 'revert_error_phase': 'action'},
    'xen_nop': {'crash': 'DOUBLE FAULT'},
    'xen_no_xen_buildid': {},
}
LAB_EFFECT_SECTION = '.noreboot.lab_effect'
# xl sub-commands for moving guests, simulated in lab_guest_ops.py.
GUEST_COMMANDS = ('save', 'restore', 'create', 'shutdown', 'migrate')


class Output(object):
    """Unbuffered writes, in the order the real tool makes them (it sets stdout unbuffered)."""

    def out(self, text):
        os.write(1, text.encode('utf-8', 'surrogateescape'))

    def err(self, text):
        os.write(2, text.encode('utf-8', 'surrogateescape'))


IO = Output()


def strerror(code):
    return os.strerror(code)


# ----------------------------------------------------------------------------- state


class HostState(object):
    def __init__(self, path=None):
        self.path = path or os.environ.get('NOREBOOT_XEN_LAB_STATE') or DEFAULT_STATE
        self.dir = os.path.dirname(self.path)
        self.lock_fd = None
        self.data = None

    def __enter__(self):
        try:
            self.lock_fd = os.open(self.path + '.lock', os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SystemExit('xensim: cannot open the host state lock %s.lock: %s (is this a lab host?)'
                             % (self.path, exc.strerror))
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        with open(self.path) as handle:
            self.data = json.load(handle)
        return self

    def save(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as handle:
            json.dump(self.data, handle, indent=1, sort_keys=True)
        os.rename(tmp, self.path)

    def release(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def __exit__(self, *exc):
        self.release()
        return False


def dmesg(state, line):
    state['dmesg'].append('(XEN) ' + line)


def find_payload(state, name):
    for payload in state['payloads']:
        if payload['name'] == name:
            return payload
    return None


def effective_extra(state):
    extra = state['build']['extra']
    for name in state['applied']:
        payload = find_payload(state, name)
        if payload and payload['effect'].get('xen_extra') is not None:
            extra = payload['effect']['xen_extra']
    # XENVER_extraversion is a 16-byte buffer: at most 15 characters reach the tools.
    return extra[:15]


def count_attempt(state, op, name):
    """counters.attempts[op][name] += 1: every hypercall asked of the hypervisor, failed ones too."""
    per_op = state['counters'].setdefault('attempts', {}).setdefault(op, {})
    per_op[name] = per_op.get(name, 0) + 1


def take_fault(state, key, op, default_ops=('apply', 'revert', 'replace')):
    """Whether fault ``key`` fires for this attempt of ``op`` (first k attempts, or always).

    A fault is ``true`` (always), ``{"first": k}`` (the first k attempts) or ``{"always": true}``,
    optionally limited to some operations with ``"ops": [...]``.
    """
    fault = state['faults'].get(key)
    if not fault:
        return False
    if fault is True:
        fault = {'always': True}
    ops = fault.get('ops', default_ops)
    if ops is not None and op not in ops:
        return False
    counters = state['counters'].setdefault('faults', {})
    seen = counters.get(key, 0)
    counters[key] = seen + 1
    if fault.get('always'):
        return True
    return seen < int(fault.get('first', 1))


# ----------------------------------------------------------------------------- hypervisor


class Hypervisor(object):
    """The live patching hypercalls of xen/common/livepatch.c, over the JSON state."""

    def __init__(self, state):
        self.state = state

    def enabled(self):
        return self.state['build'].get('livepatch', True)

    def upload(self, name, path, raw):
        state = self.state
        count_attempt(state, 'upload', name)
        if not self.enabled():
            return errno.ENOSYS
        if len(name) + 1 > NAME_SIZE or not raw or len(raw) > MAX_PAYLOAD_SIZE:
            return errno.EINVAL
        if find_payload(state, name):
            return errno.EEXIST
        try:
            elf = ElfPayload(raw)
        except ElfError:
            dmesg(state, 'livepatch: %s: Not a valid ELF payload' % name)
            return errno.EINVAL
        if elf.e_type != 1 or elf.e_machine != 62:
            dmesg(state, 'livepatch: %s: Unsupported ELF type or machine' % name)
            return errno.EINVAL
        for special in ('.livepatch.depends', '.livepatch.xen_depends', '.note.gnu.build-id'):
            sec = elf.section(special)
            if sec is None:
                dmesg(state, 'livepatch: %s: %s is missing' % (name, special))
                return errno.EINVAL
            if not sec.size:
                dmesg(state, 'livepatch: %s: %s is empty' % (name, special))
                return errno.EINVAL
            if elf.count(special) > 1:
                dmesg(state, 'livepatch: %s: %s was seen more than once' % (name, special))
                return errno.EINVAL
        hooks = ('.livepatch.funcs', '.livepatch.hooks.load', '.livepatch.hooks.unload',
                 '.livepatch.hooks.preapply', '.livepatch.hooks.apply', '.livepatch.hooks.postapply',
                 '.livepatch.hooks.prerevert', '.livepatch.hooks.revert', '.livepatch.hooks.postrevert')
        if not any(elf.section(h) is not None for h in hooks):
            dmesg(state, 'livepatch: %s: Nothing to patch. Aborting...' % name)
            return errno.EINVAL
        try:
            own_id = elf.build_id_note('.note.gnu.build-id')
            depends = elf.build_id_note('.livepatch.depends')
            xen_depends = elf.build_id_note('.livepatch.xen_depends')
        except ElfError:
            return errno.EINVAL
        for other in state['payloads']:
            if other['build_id'] == own_id:
                return errno.EEXIST
        metadata = elf.modinfo()
        if metadata is not None and metadata[-1:] != b'\0':
            dmesg(state, 'livepatch: %s: Incorrect metadata format detected' % name)
            return errno.EINVAL
        if xen_depends != state['build']['build_id']:
            dmesg(state, 'livepatch: %s: check against hypervisor build-id failed' % name)
            return errno.EINVAL
        funcs = elf.section('.livepatch.funcs')
        nfuncs = funcs.size // LIVEPATCH_FUNC_SIZE if funcs is not None else 0
        effect = self.effect_of(elf, path)
        writable = [s for s in elf.writable_alloc_sections() if s != '.livepatch.funcs']
        state['payloads'].append({
            'name': name, 'state': CHECKED, 'rc': 0, 'build_id': own_id, 'depends': depends,
            'xen_depends': xen_depends, 'nfuncs': nfuncs,
            'metadata': metadata.decode('utf-8', 'replace') if metadata is not None else None,
            'effect': effect, 'reverted': False, 'safe_to_reapply': not writable,
            'file': os.path.basename(path),
        })
        return 0

    @staticmethod
    def effect_of(elf, path):
        raw = elf.content(LAB_EFFECT_SECTION)
        if raw is not None:
            try:
                effect = json.loads(raw.rstrip(b'\0').decode('utf-8'))
            except ValueError:
                effect = {}
            effect['source'] = LAB_EFFECT_SECTION
            return effect
        candidates = []
        for sym in elf.file_symbols():
            base = os.path.basename(sym)
            for suffix in ('.c', '.o'):
                if base.endswith(suffix):
                    base = base[:-len(suffix)]
            candidates.append(base)
            if base.endswith('_func'):
                candidates.append(base[:-len('_func')])
        stem = os.path.basename(path)
        if stem.endswith('.livepatch'):
            stem = stem[:-len('.livepatch')]
        candidates.append(stem)
        for name in candidates:
            if name in REAL_TEST_PAYLOADS:
                effect = dict(REAL_TEST_PAYLOADS[name])
                effect['source'] = 'xen-test:' + name
                return effect
        return {}

    def get(self, name):
        """(errno, payload) as XEN_SYSCTL_LIVEPATCH_GET answers."""
        if not self.enabled():
            return errno.ENOSYS, None
        if len(name) + 1 > NAME_SIZE:
            return errno.EINVAL, None
        payload = find_payload(self.state, name)
        if payload is None:
            return errno.ENOENT, None
        return 0, payload

    def action(self, op, payload, nodeps=False):
        """XEN_SYSCTL_LIVEPATCH_ACTION: a synchronous errno; the work's outcome lands in payload['rc']."""
        state = self.state
        name = payload['name']
        count_attempt(state, op, name)
        if op == 'unload':
            if payload['state'] != CHECKED:
                return errno.EINVAL
            state['payloads'].remove(payload)
            return 0
        if op == 'revert':
            if payload['state'] != APPLIED:
                return 0
            top = state['applied'][-1]
            if top != name:
                dmesg(state, "livepatch: %s: can't unload. Top is %s" % (name, top))
                return errno.EBUSY
            effect = payload['effect']
            if 'pre_revert' in effect.get('hooks', ()):
                dmesg(state, 'livepatch: %s: Calling pre-revert hook function' % name)
                if effect.get('revert_error') and effect.get('revert_error_phase') == 'pre-revert':
                    done = payload.get('revert_errors', 0)
                    if done < int(effect.get('revert_error_times', 1 << 30)):
                        payload['revert_errors'] = done + 1
                        dmesg(state, 'livepatch: %s: pre-revert hook failed (rc=-%d), aborting!'
                              % (name, effect['revert_error']))
                        payload['rc'] = -effect['revert_error']
                        return 0
            return self.run_work('revert', payload)
        if op == 'apply':
            if payload['state'] != CHECKED:
                return 0
            if payload['reverted'] and not payload['safe_to_reapply']:
                dmesg(state, "livepatch: %s: can't revert as payload has .data. Please unload" % name)
                payload['rc'] = -errno.EINVAL
                return 0
            if not nodeps:
                rc = self.build_id_dep(payload, not state['applied'])
                if rc:
                    return rc
            dmesg(state, 'livepatch: %s: Verifying enabled expectations for all functions' % name)
            effect = payload['effect']
            if effect.get('apply_error') and effect.get('apply_error_phase') == 'expectations':
                dmesg(state, 'livepatch: %s: expectations of xen_extra_version failed (rc=-%d), aborting!'
                      % (name, effect['apply_error']))
                return effect['apply_error']
            if 'pre_apply' in effect.get('hooks', ()):
                dmesg(state, 'livepatch: %s: Calling pre-apply hook function' % name)
                if effect.get('apply_error') and effect.get('apply_error_phase') == 'pre-apply':
                    dmesg(state, 'livepatch: %s: pre-apply hook failed (rc=-%d), aborting!' % (name, effect['apply_error']))
                    payload['rc'] = -effect['apply_error']
                    return 0
            return self.run_work('apply', payload)
        if op == 'replace':
            if payload['state'] != CHECKED:
                return 0
            rc = self.build_id_dep(payload, True)
            if rc:
                return rc
            return self.run_work('replace', payload)
        return errno.EOPNOTSUPP

    def build_id_dep(self, payload, against_hypervisor):
        state = self.state
        if against_hypervisor:
            want, what = state['build']['build_id'], 'hypervisor'
        else:
            top = find_payload(state, state['applied'][-1])
            want, what = top['build_id'], top['name']
        if payload['depends'] != want:
            dmesg(state, 'livepatch: %s: check against %s build-id failed' % (payload['name'], what))
            return errno.EINVAL
        return 0

    def run_work(self, op, payload):
        """The scheduled work (CPU rendezvous, patching), with the host's faults."""
        state = self.state
        name = payload['name']
        label = {'apply': 'APPLY', 'revert': 'REVERT', 'replace': 'REPLACE'}[op]
        if take_fault(state, 'ebusy', op):
            fault = state['faults']['ebusy'] if isinstance(state['faults']['ebusy'], dict) else {}
            # The CPUs did not all arrive in time: in the first (CPU) or second (IRQ) phase.
            dmesg(state, 'livepatch: %s: Timed out on semaphore in %s quiesce phase 0/%d'
                  % (name, fault.get('phase', 'IRQ'), max(1, state['hardware'].get('dom0_vcpus', 2) - 1)))
            payload['rc'] = -errno.EBUSY
            dmesg(state, 'livepatch: %s finished %s with rc=%d' % (name, label, payload['rc']))
            return 0
        if take_fault(state, 'didnt_complete', op):
            # The work is still pending when the tool looks (it completes later).
            payload['rc'] = -errno.EAGAIN
            payload['pending'] = op
            return 0
        self.do_work(op, payload)
        return 0

    def do_work(self, op, payload):
        state = self.state
        name = payload['name']
        label = {'apply': 'APPLY', 'revert': 'REVERT', 'replace': 'REPLACE'}[op]
        payload.pop('pending', None)
        if op in ('apply', 'replace'):
            if op == 'replace':
                for other_name in list(reversed(state['applied'])):
                    other = find_payload(state, other_name)
                    dmesg(state, 'livepatch: %s: Reverting' % other_name)
                    other['state'] = CHECKED
                    other['reverted'] = True
                    other['rc'] = 0
                    state['applied'].remove(other_name)
                dmesg(state, 'livepatch: %s: Verifying enabled expectations for all functions' % name)
            effect = payload['effect']
            hooks = effect.get('hooks', ())
            rc = 0
            if 'apply_action' in hooks:
                dmesg(state, 'livepatch: %s: Calling apply action hook function' % name)
                if effect.get('apply_error') and effect.get('apply_error_phase') == 'action':
                    rc = -effect['apply_error']
            else:
                dmesg(state, 'livepatch: %s: Applying %d functions' % (name, payload['nfuncs']))
                if payload['metadata']:
                    dmesg(state, 'livepatch: module metadata:')
                    for text in payload['metadata'].rstrip('\0').split('\0'):
                        dmesg(state, 'livepatch:   %s' % text)
            if 'post_apply' in hooks:
                dmesg(state, 'livepatch: %s: Calling post-apply hook function with rc=%d' % (name, rc))
            payload['rc'] = rc
            dmesg(state, 'livepatch: %s finished %s with rc=%d' % (name, label, rc))
            if rc:
                return
            payload['state'] = APPLIED
            state['applied'].append(name)
            state['counters']['applied_ok'] = state['counters'].get('applied_ok', 0) + 1
            after_apply_faults(state)
        else:
            effect = payload['effect']
            hooks = effect.get('hooks', ())
            rc = 0
            if 'revert_action' in hooks:
                dmesg(state, 'livepatch: %s: Calling revert action hook function' % name)
                if effect.get('revert_error') and effect.get('revert_error_phase') == 'action':
                    rc = -effect['revert_error']
            else:
                dmesg(state, 'livepatch: %s: Reverting' % name)
            if 'post_revert' in hooks:
                dmesg(state, 'livepatch: %s: Calling post-revert hook function with rc=%d' % (name, rc))
            if rc:
                # A failing revert action hook: Xen reverts the functions itself, the error stays.
                dmesg(state, 'livepatch: %s: Reverting' % name)
            payload['state'] = CHECKED
            payload['reverted'] = True
            payload['rc'] = rc
            state['applied'].remove(name)
            dmesg(state, 'livepatch: %s finished %s with rc=%d' % (name, label, rc))

    def settle(self):
        """Work left pending by a 'didn't complete' fault completes on the next hypercall."""
        for payload in list(self.state['payloads']):
            if payload.get('pending'):
                self.do_work(payload['pending'], payload)


def after_apply_faults(state):
    """Health regressions and unreachability that follow the Nth successful apply."""
    count = state['counters']['applied_ok']
    crash = state['faults'].get('guest_crash_after_apply')
    if crash:
        if crash is True:
            crash = {}
        if count >= int(crash.get('after_applies', 1)):
            guests = [d for d in state['domains'] if d['id'] != 0]
            target = crash.get('domain') or (guests[0]['name'] if guests else None)
            for dom in list(state['domains']):
                if dom['name'] == target:
                    if crash.get('mode', 'crashed') == 'vanish':
                        state['domains'].remove(dom)
                    else:
                        dom['state'] = '----c-'
                    dmesg(state, 'd%d has crashed (lab fault guest_crash_after_apply)' % dom['id'])
    console_after_apply(state, count)
    gone = state['faults'].get('unreachable_after_applies')
    if gone and not state.get('unreachable_scheduled'):
        if isinstance(gone, int):
            gone = {'count': gone}
        if count >= int(gone.get('count', 1)):
            state['unreachable_scheduled'] = True
            state.setdefault('pending_host_actions', []).append(
                {'action': gone.get('how', 'link_down'), 'delay': float(gone.get('delay', 0.5))})
    if state['crashed']:
        pass


def console_after_apply(state, count):
    """Fault ``console_after_apply``: lines written to the console ring right after the Nth
    successful apply (``{"lines": [...], "after_applies": 1, "from": "guest"|"xen", "domain": NAME}``).

    From a guest (the default: its first guest, or ``domain``) a line reads ``(dN) TEXT``, as
    Xen prefixes what an HVM guest writes to port 0xE9 or a PV guest to its console; from
    ``xen`` it reads ``(XEN) TEXT``, as the hypervisor's own messages do.
    """
    console = state['faults'].get('console_after_apply')
    if not console or count != int(console.get('after_applies', 1)):
        return
    if console.get('from', 'guest') == 'xen':
        prefix = '(XEN) '
    else:
        guests = [d for d in state['domains'] if d['id'] != 0]
        wanted = console.get('domain') or (guests[0]['name'] if guests else None)
        domid = [d['id'] for d in guests if d['name'] == wanted]
        if not domid:
            return
        prefix = '(d%d) ' % domid[0]
    for line in console.get('lines') or []:
        state['dmesg'].append(prefix + line)


# ----------------------------------------------------------------------------- xen-livepatch

HELP = (
    'xen-livepatch: live patching tool\n'
    'Usage: xen-livepatch <command> [args] [command-flags]\n'
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
        IO.err(HELP)

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


def xen_livepatch_main(argv, host_factory):
    if len(argv) <= 1:
        IO.err(HELP)
        return 0
    cmd = argv[1]
    main = next((m for m in MAIN_ORDER if m.startswith(cmd)), None)
    act = None
    if main is None:
        act = next((a for a in ACTION_ORDER if a.startswith(cmd)), None)
        if act is None:
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


# ----------------------------------------------------------------------------- xl


def xl_info(state, numa=False):
    hw = state['hardware']
    build = state['build']
    nr_cpus = hw['sockets'] * hw['cores_per_socket'] * hw['threads_per_core']
    used = sum(d['mem'] for d in state['domains'])
    free = hw.get('free_memory', max(0, hw['total_memory'] - used - 23))
    extra = effective_extra(state)
    lines = [
        ('host', state['hostname']),
        ('release', state['kernel']['release']),
        ('version', state['kernel']['version']),
        ('machine', 'x86_64'),
        ('nr_cpus', nr_cpus),
        ('max_cpu_id', nr_cpus - 1),
        ('nr_nodes', hw['sockets']),
        ('cores_per_socket', hw['cores_per_socket']),
        ('threads_per_core', hw['threads_per_core']),
        ('cpu_mhz', '%d.%03d' % (hw['cpu_khz'] // 1000, hw['cpu_khz'] % 1000)),
        ('hw_caps', hw['hw_caps']),
        ('virt_caps', build['virt_caps']),
        ('total_memory', hw['total_memory']),
        ('free_memory', free),
        ('sharing_freed_memory', 0),
        ('sharing_used_memory', 0),
        ('outstanding_claims', 0),
        ('free_cpus', 0),
    ]
    text = ''.join('%-23s: %s\n' % (k, v) for k, v in lines)
    if numa:
        text += 'cpu_topology           :\ncpu:    core    socket     node\n'
        per_socket = hw['cores_per_socket'] * hw['threads_per_core']
        for cpu in range(nr_cpus):
            socket = cpu // per_socket
            core = (cpu % per_socket) // hw['threads_per_core']
            text += '%3d:    %4d     %4d     %4d\n' % (cpu, core, socket, socket)
        text += 'device topology        :\ndevice           node\nNo device topology data available\n'
        text += 'numa_info              :\nnode:    memsize    memfree    distances\n'
        nodes = hw['sockets']
        for node in range(nodes):
            dists = ','.join('10' if j == node else '21' for j in range(nodes))
            text += '%4d:    %6d     %6d      %s\n' % (node, hw['total_memory'] // nodes, free // nodes, dists)
    tail = [
        ('xen_major', build['major']),
        ('xen_minor', build['minor']),
        ('xen_extra', extra),
        ('xen_version', '%d.%d%s' % (build['major'], build['minor'], extra)),
        ('xen_caps', build['xen_caps']),
        ('xen_scheduler', build['scheduler']),
        ('xen_pagesize', 4096),
        ('platform_params', 'virt_start=0xffff800000000000'),
        ('xen_changeset', ''),
        ('xen_commandline', state['commandline']),
        ('cc_compiler', build['compiler']),
        ('cc_compile_by', build['compile_by']),
        ('cc_compile_domain', build['compile_domain']),
        ('cc_compile_date', build['compile_date']),
        ('build_id', build['build_id']),
        ('xend_config_format', 4),
    ]
    text += ''.join('%-23s: %s\n' % (k, v) for k, v in tail)
    return text


def xl_main(argv, host_factory):
    args = argv[1:]
    while args and args[0].startswith('-') and args[0] not in ('-h', '--help'):
        args = args[1:]  # global options (-v, -f, -N, -t, -T) change nothing here
    if not args:
        IO.out('Usage xl [-vfNtT] <subcommand> [args]\n\nxl full list of subcommands:\n\n'
               ' info                Get information about Xen host\n'
               ' list                List information about all/some domains\n'
               ' dmesg               Read and/or clear dmesg buffer\n')
        return 0
    cmd, rest = args[0], args[1:]
    with host_factory() as host:
        state = host.data
        if any(p.get('pending') for p in state['payloads']):
            Hypervisor(state).settle()
            host.save()
        if cmd == 'info':
            numa = any(a in ('-n', '--numa') for a in rest)
            IO.out(xl_info(state, numa=numa))
            return 0
        if cmd == 'list':
            names = [a for a in rest if not a.startswith('-')]
            domains = state['domains']
            if names:
                chosen = []
                for name in names:
                    match = [d for d in domains if d['name'] == name or str(d['id']) == name]
                    if not match:
                        IO.err('%s is an invalid domain identifier (rc=-6)\n' % name)
                        return 1
                    chosen.extend(match)
                domains = chosen
            text = 'Name                                        ID   Mem VCPUs\tState\tTime(s)\n'
            for dom in domains:
                text += ('%-40s %5d %5d %5d     %s  %8.1f\n'
                         % (dom['name'], dom['id'], dom['mem'], dom['vcpus'], dom['state'], dom['time']))
            IO.out(text)
            return 0
        if cmd == 'dmesg':
            lines = state['boot_dmesg'] + state['dmesg']
            text = ''.join(line + '\n' for line in lines)
            if len(text) > CONSOLE_RING:
                # The console ring keeps the last 16 KiB, cut anywhere (even mid-line).
                text = text[len(text) - CONSOLE_RING:]
            IO.out(text)
            if '-c' in rest or '--clear' in rest:
                state['boot_dmesg'] = []
                state['dmesg'] = []
                host.save()
            return 0
        if cmd in GUEST_COMMANDS:
            from lab_guest_ops import guest_command  # noqa: local import keeps xl start-up small
            return guest_command(cmd, rest, host, IO)
        if cmd == 'uptime':
            IO.out('Name                                ID Uptime\n')
            for dom in state['domains']:
                IO.out('%-36s %3d %s\n' % (dom['name'], dom['id'], '1 day,  2:03:04'))
            return 0
    IO.err('command not implemented\n')
    return 1


# ----------------------------------------------------------------------------- host power


def netns_inode(pid='self'):
    try:
        return os.stat('/proc/%s/ns/net' % pid).st_ino
    except OSError:
        return None


def kill_host_processes(host_dir, keep_init=True):
    """SIGKILL every process of this lab host (same network namespace), except its init."""
    mine = netns_inode()
    keep = {os.getpid()}
    if keep_init:
        try:
            with open(os.path.join(host_dir, 'init.pid')) as handle:
                keep.add(int(handle.read().strip()))
        except (OSError, ValueError):
            pass
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) in keep:
            continue
        if netns_inode(entry) == mine:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def in_lab_host(host_dir):
    return os.path.exists(os.path.join(host_dir, 'init.pid'))


def detach(func, *args):
    """Run func(*args) in a detached grandchild (the caller returns at once)."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        os.closerange(3, 4096)  # drop the state lock and anything else inherited
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        func(*args)
    finally:
        os._exit(0)


def host_power(host_dir, action, delay=1.0):
    """Reboot, halt, crash, cut the link or kill sshd of this lab host (no-op outside a lab)."""
    if not in_lab_host(host_dir):
        return

    def work():
        time.sleep(delay)
        state_path = os.path.join(host_dir, 'state.json')
        with HostState(state_path) as host:
            state = host.data
            faults = state['faults']
            if action == 'reboot':
                boot(state)
                with open(os.path.join(host_dir, 'down_seconds'), 'w') as handle:
                    handle.write('%s\n' % faults.get('reboot_delay', 3))
                if faults.get('reboot_never_returns'):
                    open(os.path.join(host_dir, 'halted'), 'w').close()
                # ansible.builtin.reboot compares boot_id: write the file the mount shows, in place.
                with open(os.path.join(host_dir, 'boot_id'), 'r+') as handle:
                    handle.write(state['boot_id'] + '\n')
                    handle.truncate()
            else:
                open(os.path.join(host_dir, 'halted'), 'w').close()
            state.setdefault('events', []).append({'time': time.time(), 'action': action})
            host.save()
        if action == 'link_down':
            subprocess.call(['ip', 'link', 'set', 'eth0', 'down'])
            return
        kill_host_processes(host_dir)

    detach(work)


def boot(state, root='/'):
    """What a (re)boot does to the simulated hypervisor, then xendomains (lab_guest_ops.xendomains_boot) on
    the host's file system seen at ``root`` ('/' inside the host; None: no xendomains)."""
    if state.get('installed_build'):
        state['build'] = state['installed_build']
    from lab_model import boot_dmesg  # noqa: local import keeps xl/xen-livepatch start-up small
    state['boot_dmesg'] = boot_dmesg(state['build'], state['hardware'], state['commandline'])
    state['dmesg'] = []
    state['payloads'] = []
    state['applied'] = []
    state['domains'] = json.loads(json.dumps(state['guests_at_boot']))
    state['boots'] = state.get('boots', 1) + 1
    state['boot_id'] = str(uuid.uuid4())
    state['crashed'] = False
    state['counters']['applied_ok'] = 0
    state.pop('unreachable_scheduled', None)
    if root is not None:
        from lab_guest_ops import xendomains_boot  # noqa: local import keeps xl/xen-livepatch start-up small
        xendomains_boot(state, root)


def run_pending_host_actions(host):
    actions = host.data.pop('pending_host_actions', [])
    if actions:
        host.save()
        for item in actions:
            host_power(host.dir, item['action'], delay=item.get('delay', 0.5))


SYSTEMCTL_NO_SYSTEMD = ('System has not been booted with systemd as init system (PID 1). Can\'t operate.\n'
                        'Failed to connect to bus: Host is down\n')


def power_main(argv, host_dir):
    """Stand-in for systemctl/reboot/shutdown/halt/poweroff inside a lab host."""
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog == 'systemctl':
        verbs = [a for a in args if not a.startswith('-')]
        verb = verbs[0] if verbs else ''
        if verb in ('reboot', 'kexec', 'soft-reboot'):
            host_power(host_dir, 'reboot')
            return 0
        if verb in ('poweroff', 'halt'):
            host_power(host_dir, 'halt')
            return 0
        if verb == 'is-system-running':
            IO.out('offline\n')
            return 1
        IO.err(SYSTEMCTL_NO_SYSTEMD)
        return 1
    if prog == 'shutdown':
        if '-c' in args:
            return 0
        if any(a in ('-r', '--reboot') for a in args):
            host_power(host_dir, 'reboot')
        else:
            host_power(host_dir, 'halt')
        return 0
    if prog == 'reboot':
        host_power(host_dir, 'reboot')
        return 0
    host_power(host_dir, 'halt')
    return 0


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    prog = os.path.basename(argv[0])
    if prog in ('xensim.py', 'xensim') and len(argv) > 1:
        argv = argv[1:]
        prog = os.path.basename(argv[0])
    os.environ['LC_ALL'] = 'C'
    state_path = os.environ.get('NOREBOOT_XEN_LAB_STATE') or DEFAULT_STATE
    if prog == 'xl':
        return xl_main(argv, lambda: HostState(state_path))
    if prog == 'xen-livepatch':
        return xen_livepatch_main(argv, lambda: HostState(state_path))
    if prog in ('systemctl', 'reboot', 'shutdown', 'halt', 'poweroff'):
        return power_main(argv, os.path.dirname(state_path))
    sys.stderr.write('xensim: run as xl, xen-livepatch, systemctl, reboot, shutdown, halt or poweroff, not %r\n' % prog)
    return 64


if __name__ == '__main__':
    sys.exit(main())
