# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Namespace and network plumbing of the lab: mount/setns/unshare through libc, ip commands,
host addresses, and finding the lab's namespaces, links, processes and mounts.
"""

import ctypes
import ctypes.util
import os
import subprocess

from labctl_instance import BRIDGE, LAB_ROOT, NS_PREFIX, SUBNET_OCTET, VETH_PREFIX, LabError

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    return _libc


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))


def mount(source, target, fstype=None, flags=0, data=None):
    def enc(value):
        return value.encode() if value is not None else None

    _check(libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           'mount %s on %s' % (source, target))


def run(argv, check=True, **kwargs):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kwargs, check=False)
    if check and proc.returncode != 0:
        raise LabError('command failed (rc %d): %s\n%s%s' % (proc.returncode, ' '.join(argv), proc.stdout, proc.stderr))
    return proc


def ip_batch(lines, check=True):
    if not lines:
        return None
    return run(['ip', '-force', '-batch', '-'], check=check, input=''.join(line + '\n' for line in lines))


def host_addr(index):
    """10.213.A.B for host number index (1-based); 10.213.0.x is kept for the bridge."""
    return '10.%d.%d.%d' % (SUBNET_OCTET, 1 + (index - 1) // 250, 1 + (index - 1) % 250)


def lab_namespaces():
    try:
        names = os.listdir('/run/netns')
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(NS_PREFIX))


def lab_links():
    proc = run(['ip', '-o', 'link', 'show'], check=False)
    links = []
    for line in proc.stdout.splitlines():
        parts = line.split(':')
        if len(parts) > 1:
            name = parts[1].strip().split('@')[0]
            if name == BRIDGE or name.startswith(VETH_PREFIX):
                links.append(name)
    return links


def namespace_inodes():
    inodes = {}
    for name in lab_namespaces():
        try:
            inodes[os.stat('/run/netns/' + name).st_ino] = name
        except OSError:
            pass
    return inodes


def lab_processes():
    """{pid: namespace} for every process inside a lab network namespace."""
    inodes = namespace_inodes()
    found = {}
    if not inodes:
        return found
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            ino = os.stat('/proc/%s/ns/net' % entry).st_ino
        except OSError:
            continue
        if ino in inodes:
            found[int(entry)] = inodes[ino]
    return found


def lab_mounts():
    found = []
    with open('/proc/self/mountinfo') as handle:
        for line in handle:
            point = line.split()[4]
            if (point == LAB_ROOT or point.startswith(LAB_ROOT + '/')
                    or point.startswith('/run/netns/' + NS_PREFIX)):
                found.append(point)
    return found
