# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host power inside a lab host: the systemctl / reboot / shutdown / halt / poweroff stand-in,
and what a reboot, halt, crash, link cut or sshd kill does to the host (its processes, its
boot_id, the simulated hypervisor's boot).
"""

import json
import os
import signal
import subprocess
import time
import uuid

from xensim_output import IO
from xensim_state import HostState


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
