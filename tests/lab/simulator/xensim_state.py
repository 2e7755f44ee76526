# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One lab host's simulated hypervisor state: a JSON file under an exclusive lock, and the
small readers and writers every simulated tool shares (console ring, payload lookup, counters).

``NOREBOOT_XEN_LAB_STATE`` names the file (default ``/var/lib/noreboot-xen-lab/state.json``, a
per-host directory bind-mounted there).
"""

import fcntl
import json
import os


DEFAULT_STATE = '/var/lib/noreboot-xen-lab/state.json'


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
    if state['build'].get('generation') == '4.20':
        # 4.20's tools read it with XENVER_extraversion2 (Xen 4.19), whole: `Hello Again World!`.
        return extra
    # XENVER_extraversion is a 16-byte buffer: at most 15 characters reach 4.17's tools.
    return extra[:15]


def count_attempt(state, op, name):
    """counters.attempts[op][name] += 1: every hypercall asked of the hypervisor, failed ones too."""
    per_op = state['counters'].setdefault('attempts', {}).setdefault(op, {})
    per_op[name] = per_op.get(name, 0) + 1
