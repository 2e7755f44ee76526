# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Setting up one lab host: its directory (state, sshd config, DMI, overlay files), its boot
inside its namespaces (mounts, simulated tools, network, init) and waiting for its sshd.
"""

import json
import os
import signal
import socket
import subprocess
import time

import lab_model
from labctl_instance import (HOST_DIR_IN_NS, LAB_ROOT, NS_PREFIX, OVERLAYS, POWER_TOOLS, PREFIXLEN, TESTS_DIR,
                             TESTS_DIR_IN_NS, TMPFS, XEN_TOOLS)
from labctl_netns import (CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS, MNT_DETACH, MS_BIND, MS_PRIVATE, MS_REC,
                          _check, host_addr, libc, mount)

# The host's init: runs sshd in the foreground; when sshd is gone (a simulated reboot killed
# every process but this one), waits the host's down time and starts it again, unless the host
# is halted (crashed hypervisor, "reboot that never comes back", sshd killed by a fault).
INIT_SCRIPT = r'''
d="$1"
echo $$ > "$d/init.pid"
while :; do
  if [ -e "$d/halted" ]; then
    while [ -e "$d/halted" ]; do sleep 1; done
    continue
  fi
  mkdir -p /run/sshd
  /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log"
  read s < "$d/down_seconds" 2>/dev/null || s=1
  sleep "$s"
done
'''

SSHD_CONFIG = '''# sshd of lab host {name} (noreboot.xen tests/lab)
ListenAddress {addr}:22
HostKey {hostdir}/ssh_host_ed25519_key
AuthorizedKeysFile {hostdir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
PidFile none
MaxStartups 200:30:400
MaxSessions 100
LogLevel ERROR
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
'''


def write_file(path, text, mode=0o644):
    with open(path, 'w') as handle:
        handle.write(text)
    os.chmod(path, mode)


def prepare_host_dir(host, index, client_pub):
    hostdir = os.path.join(LAB_ROOT, 'hosts', host['name'])
    os.makedirs(os.path.join(hostdir, 'dmi', 'id'), exist_ok=True)
    os.chmod(hostdir, 0o755)
    addr = host_addr(index)
    state = lab_model.new_state(host['name'], host['build'], host['hardware'], guests=host['guests'],
                                faults=host['faults'])
    write_file(os.path.join(hostdir, 'state.json'), json.dumps(state, indent=1, sort_keys=True), 0o600)
    write_file(os.path.join(hostdir, 'boot_id'), state['boot_id'] + '\n')
    write_file(os.path.join(hostdir, 'cpuinfo'), lab_model.cpuinfo(host['hardware']))
    for fname, text in lab_model.dmi_files(host['hardware'], host['name']).items():
        write_file(os.path.join(hostdir, 'dmi', 'id', fname), text, 0o444)
    write_file(os.path.join(hostdir, 'down_seconds'), '%s\n' % host['faults'].get('reboot_delay', 3))
    write_file(os.path.join(hostdir, 'authorized_keys'), client_pub, 0o600)
    write_file(os.path.join(hostdir, 'sshd_config'),
               SSHD_CONFIG.format(name=host['name'], addr=addr, hostdir=HOST_DIR_IN_NS))
    # Files the host sees in its private /etc (overlay upper layer).
    etc = os.path.join(hostdir, 'ovl', 'etc', 'upper')
    os.makedirs(etc, exist_ok=True)
    write_file(os.path.join(etc, 'hostname'), host['name'] + '\n')
    with open('/etc/hosts') as handle:
        hosts_text = handle.read()
    write_file(os.path.join(etc, 'hosts'), '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n%s\t%s\n' % (host['name'], addr, host['name'])
               + ''.join(l for l in hosts_text.splitlines(True) if ':' in l.split('#')[0]))
    write_file(os.path.join(etc, 'resolv.conf'), '# lab host: no DNS (only 10.213.0.0/16 is reachable)\n')
    # Files of the spec (group key ``files``), in the host's overlays before it boots.
    for path, text in sorted((host.get('files') or {}).items()):
        parts = path.strip('/').split('/', 1)
        target = os.path.join(hostdir, 'ovl', parts[0], 'upper', parts[1])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        write_file(target, text)
    return hostdir, addr


def host_boot(host, hostdir, addr):
    """In a forked child: enter the host's namespaces, build its view of the machine, exec its init."""
    ns_fd = os.open('/run/netns/' + NS_PREFIX + host['name'], os.O_RDONLY)
    _check(libc().setns(ns_fd, CLONE_NEWNET), 'setns')
    os.close(ns_fd)
    _check(libc().unshare(CLONE_NEWNS | CLONE_NEWUTS), 'unshare')
    mount(None, '/', None, MS_REC | MS_PRIVATE)
    socket.sethostname(host['name'])
    # sysfs of this network namespace (as `ip netns exec` does), DMI files overlaid on /sys/class.
    _check(libc().umount2(b'/sys', MNT_DETACH), 'umount /sys')
    mount('sysfs', '/sys', 'sysfs', 0)
    # As on real hardware: /sys/devices/virtual/dmi/id/* files, /sys/class/dmi/id a link to them.
    for target, key, link in (('/sys/devices/virtual', 'sysdevvirt', os.path.join(HOST_DIR_IN_NS, 'dmi', 'id')),
                              ('/sys/class', 'sysclass', '../../devices/virtual/dmi/id')):
        upper = os.path.join(hostdir, 'ovl', key, 'upper')
        work = os.path.join(hostdir, 'ovl', key, 'work')
        os.makedirs(os.path.join(upper, 'dmi'), exist_ok=True)
        os.makedirs(work, exist_ok=True)
        if not os.path.lexists(os.path.join(upper, 'dmi', 'id')):
            os.symlink(link, os.path.join(upper, 'dmi', 'id'))
        mount('overlay', target, 'overlay', 0, 'lowerdir=%s,upperdir=%s,workdir=%s' % (target, upper, work))
    for path in OVERLAYS:
        if not os.path.isdir(path):
            continue
        key = path.strip('/').replace('/', '_')
        upper = os.path.join(hostdir, 'ovl', key, 'upper')
        work = os.path.join(hostdir, 'ovl', key, 'work')
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        mount('overlay', path, 'overlay', 0, 'lowerdir=%s,upperdir=%s,workdir=%s' % (path, upper, work))
    os.makedirs(HOST_DIR_IN_NS, exist_ok=True)
    mount(hostdir, HOST_DIR_IN_NS, None, MS_BIND)
    os.makedirs(TESTS_DIR_IN_NS, exist_ok=True)
    mount(TESTS_DIR, TESTS_DIR_IN_NS, None, MS_BIND)
    launcher = os.path.join(LAB_ROOT, 'bin', 'xensim')
    for path in XEN_TOOLS + POWER_TOOLS:
        real = os.path.realpath(path)
        if not os.path.exists(real):
            open(real, 'a').close()
            os.chmod(real, 0o755)
        mount(launcher, real, None, MS_BIND)
    mount(os.path.join(HOST_DIR_IN_NS, 'cpuinfo'), '/proc/cpuinfo', None, MS_BIND)
    mount(os.path.join(HOST_DIR_IN_NS, 'boot_id'), '/proc/sys/kernel/random/boot_id', None, MS_BIND)
    for path, opts in TMPFS:
        mount('tmpfs', path, 'tmpfs', 0, opts)
    mount('tmpfs', '/run', 'tmpfs', 0, 'mode=0755')
    # File systems of their own (group key ``filesystems``: path -> size), e.g. a small save directory.
    for path, size in sorted((host.get('filesystems') or {}).items()):
        os.makedirs(path, mode=0o700, exist_ok=True)
        mount('tmpfs', path, 'tmpfs', 0, 'size=%s,mode=0700' % size)
    os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
    proc = subprocess.run(['ip', '-batch', '-'], input=(
        'link set lo up\n'
        'addr add %s/%d dev eth0\n'
        'link set eth0 up\n' % (addr, PREFIXLEN)).encode(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode:
        raise OSError(0, 'network setup failed: %s' % proc.stdout.decode())
    os.chdir('/')
    os.execv('/bin/sh', ['/bin/sh', '-c', INIT_SCRIPT, 'lab-init', HOST_DIR_IN_NS])


def spawn_host(host, hostdir, addr):
    """Fork, detach (new session, reparented), boot the host in the grandchild."""
    pid = os.fork()
    if pid:
        status = os.waitpid(pid, 0)[1]
        return status == 0
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        log = os.open(os.path.join(hostdir, 'boot.log'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 4096)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        host_boot(host, hostdir, addr)
    except BaseException as exc:  # noqa: broad: the reason goes to boot.log, then the child dies
        try:
            os.write(2, ('lab host boot failed: %r\n' % (exc,)).encode())
        finally:
            os._exit(1)
    os._exit(1)


def wait_for_ssh(hosts, timeout):
    pending = {h['name']: h['addr'] for h in hosts}
    deadline = time.time() + timeout
    while pending and time.time() < deadline:
        for name, addr in list(pending.items()):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(0.2)
            try:
                sock.connect((addr, 22))
                if sock.recv(4).startswith(b'SSH-'):
                    del pending[name]
            except OSError:
                pass
            finally:
                sock.close()
        if pending:
            time.sleep(0.1)
    return sorted(pending)


def ssh_ready(addr):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(0.3)
    try:
        sock.connect((addr, 22))
        return sock.recv(4).startswith(b'SSH-')
    except OSError:
        return False
    finally:
        sock.close()
