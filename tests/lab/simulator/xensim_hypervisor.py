# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live patching hypercalls of xen/common/livepatch.c (upload, get, apply, revert, replace,
unload) over a host's JSON state, with the effects of Xen's own test payloads.
"""

import errno
import json
import os

from lab_elf_notes import ElfError, ElfPayload
from xensim_faults import after_apply_faults, take_fault
from xensim_state import count_attempt, dmesg, find_payload


NAME_SIZE = 128
MAX_PAYLOAD_SIZE = 2 * 1024 * 1024
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
    # Its pre-revert hook returns -(pre_revert_retry--), an unsigned counter from 1: -EPERM, then 0,
    # then 1, 2, ... once the counter has wrapped (a positive return the tool cannot name).
    'xen_prepost_hooks': {'xen_extra': 'Hello World', 'hooks': PREPOST_HOOKS, 'pre_revert_retry': 1},
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


class ActionReturned(int):
    """A positive value the action sysctl returned (not an errno: libxc passes it on, errno 0)."""


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
        early = state['build'].get('generation') == '4.20'
        if early:
            # 4.20 checks the running Xen's build-id first (check_xen_buildid), before anything
            # else in the payload, and logs both build-ids on lines of their own.
            rc = self.check_xen_buildid(name, elf)
            if rc:
                return rc
        for special in (('.livepatch.depends', '.note.gnu.build-id') if early else
                        ('.livepatch.depends', '.livepatch.xen_depends', '.note.gnu.build-id')):
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
            xen_depends = None if early else elf.build_id_note('.livepatch.xen_depends')
        except ElfError:
            return errno.EINVAL
        for other in state['payloads']:
            if other['build_id'] == own_id:
                return errno.EEXIST
        metadata = elf.modinfo()
        if metadata is not None and metadata[-1:] != b'\0':
            dmesg(state, 'livepatch: %s: Incorrect metadata format detected' % name)
            return errno.EINVAL
        if early:
            xen_depends = state['build']['build_id']
        elif xen_depends != state['build']['build_id']:
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

    def check_xen_buildid(self, name, elf):
        """4.20's check_xen_buildid: .livepatch.xen_depends present, readable, the running build's."""
        state = self.state
        if elf.section('.livepatch.xen_depends') is None:
            dmesg(state, 'livepatch: %s: section .livepatch.xen_depends is missing' % name)
            return errno.EINVAL
        try:
            xen_depends = elf.build_id_note('.livepatch.xen_depends')
        except ElfError:
            dmesg(state, 'livepatch: %s: failed to parse section .livepatch.xen_depends as build-id: -%d'
                  % (name, errno.EINVAL))
            return errno.EINVAL
        if xen_depends != state['build']['build_id']:
            # Debian's 4.20.4 indents the two build-ids with no-break spaces (U+00A0), as captured.
            dmesg(state, 'livepatch: %s: build-id mismatch:' % name)
            dmesg(state, '\u00a0 livepatch: %s' % xen_depends)
            dmesg(state, '%s xen: %s' % ('\u00a0' * 7, state['build']['build_id']))
            return errno.EINVAL
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
                rc = self.pre_revert_hook(payload)
                if rc:
                    dmesg(state, 'livepatch: %s: pre-revert hook failed (rc=%d), aborting!' % (name, rc))
                    payload['rc'] = rc
                    # The sysctl returns the hook's value: -errno, or a positive one the tool
                    # reports as a failure with errno 0 (ActionReturned).
                    return -rc if rc < 0 else ActionReturned(rc)
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

    @staticmethod
    def pre_revert_hook(payload):
        """What the payload's pre-revert hook returns this time (0: go on with the revert)."""
        effect = payload['effect']
        if 'pre_revert_retry' in effect:
            # return -(pre_revert_retry--); with an unsigned int, as a C int.
            retry = (int(effect['pre_revert_retry']) - payload.get('pre_revert_calls', 0)) & 0xffffffff
            payload['pre_revert_calls'] = payload.get('pre_revert_calls', 0) + 1
            value = (-retry) & 0xffffffff
            return value - (1 << 32) if value >= 1 << 31 else value
        if effect.get('revert_error') and effect.get('revert_error_phase') == 'pre-revert':
            done = payload.get('revert_errors', 0)
            if done < int(effect.get('revert_error_times', 1 << 30)):
                payload['revert_errors'] = done + 1
                return -int(effect['revert_error'])
        return 0

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
