# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""labctl: bring a fleet of simulated Xen dom0s up and down (network namespaces + sshd).

    python3 tests/lab/labctl.py up --spec tests/lab/fleets/default.yml --inventory OUT.yml
    python3 tests/lab/labctl.py status [--json]
    python3 tests/lab/labctl.py down
    python3 tests/lab/labctl.py fault HOST NAME JSON      # set a fault on a running host
    python3 tests/lab/labctl.py power-cycle HOST          # BMC-style reset of a crashed/halted host
    python3 tests/lab/labctl.py unreachable HOST [--how link_down|sshd_killed]   # trigger, mid-wave

Each host is a network namespace (nrxl-<host>) on the bridge nrxl-br0 (10.213.0.0/16, the only
addresses the lab uses), with its own hostname (UTS namespace), private mounts (mount namespace:
overlays over /etc /var /usr /opt /srv, tmpfs over /tmp /root /run, the simulated xl /
xen-livepatch / systemctl bind-mounted over the real paths, /proc/cpuinfo,
/proc/sys/kernel/random/boot_id and /sys/class/dmi/id/* from the host's hardware class) and
its own sshd (own config, host key, the lab's authorized key; root login by key only).
Everything lives under /run/noreboot-xen-lab; `down` finds leftovers by the nrxl prefix and
that directory, so it also cleans up after an interrupted `up`. Needs root.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'simulator'))
sys.path.insert(0, HERE)

import lab_model  # noqa: E402

# Several labs can live side by side (e.g. the lab's own tests while a user's lab is up):
# instance 0 (the default) is nrxl-* / 10.213.0.0/16 / /run/noreboot-xen-lab, instance N is
# nrxlN-* / 10.(213+N).0.0/16 / /run/noreboot-xen-lab-N. Set NOREBOOT_XEN_LAB_INSTANCE.
INSTANCE = int(os.environ.get('NOREBOOT_XEN_LAB_INSTANCE', '0') or 0)
if not 0 <= INSTANCE <= 40:
    raise SystemExit('labctl: NOREBOOT_XEN_LAB_INSTANCE must be 0..40')
PREFIX = 'nrxl%s' % (INSTANCE or '')
NS_PREFIX = PREFIX + '-'
VETH_PREFIX = PREFIX + 'v'
BRIDGE = PREFIX + '-br0'
LAB_ROOT = '/run/noreboot-xen-lab' + ('-%d' % INSTANCE if INSTANCE else '')
SUBNET_OCTET = 213 + INSTANCE
BRIDGE_ADDR = '10.%d.0.1' % SUBNET_OCTET
PREFIXLEN = 16
HOST_DIR_IN_NS = '/var/lib/noreboot-xen-lab'
# The simulator's own directory, bind-mounted here in every host: the checkout itself may sit
# under /tmp or /root, which each host covers with a tmpfs of its own.
SIM_DIR = os.path.join(HERE, 'simulator')
SIM_DIR_IN_NS = '/var/lib/noreboot-xen-lab-simulator'
INVENTORY_MARKER = '# Written by noreboot.xen tests/lab/labctl.py'
OVERLAYS = ('/etc', '/var', '/usr', '/opt', '/srv', '/boot')
TMPFS = (('/tmp', 'mode=1777'), ('/root', 'mode=0700'))
POWER_TOOLS = ('/usr/bin/systemctl', '/usr/sbin/reboot', '/usr/sbin/shutdown', '/usr/sbin/halt', '/usr/sbin/poweroff')
XEN_TOOLS = ('/usr/sbin/xl', '/usr/sbin/xen-livepatch')

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

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


class LabError(Exception):
    """Something the operator must fix; the message names the problem and the fix."""


# ----------------------------------------------------------------------------- helpers

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


def load_yaml(path):
    try:
        import yaml
    except ImportError:
        raise LabError('PyYAML is missing for %s: run labctl with the project venv (.venv/bin/python) '
                       'or install python3-yaml' % sys.executable)
    with open(path) as handle:
        return yaml.safe_load(handle)


def dump_yaml(data):
    import yaml
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=False)


def require_root():
    if os.geteuid() != 0:
        raise LabError('the lab needs root (network namespaces, mounts, sshd): run it as root, '
                       'e.g. `sudo make lab-up`')


def preflight():
    require_root()
    missing = [tool for tool in ('ip', 'ssh-keygen', 'ssh') if not shutil.which(tool)]
    if not os.access('/usr/sbin/sshd', os.X_OK):
        missing.append('/usr/sbin/sshd')
    if not os.access('/usr/bin/python3', os.X_OK):
        missing.append('/usr/bin/python3')
    if missing:
        raise LabError('missing on this machine: %s: install the Debian packages openssh-server, '
                       'openssh-client, iproute2 and python3 (`make setup` does it as root)' % ', '.join(missing))
    with open('/proc/filesystems') as handle:
        if 'overlay' not in handle.read():
            subprocess.call(['modprobe', 'overlay'])
            with open('/proc/filesystems') as again:
                if 'overlay' not in again.read():
                    raise LabError('the kernel has no overlay filesystem (modprobe overlay failed): '
                                   'lab hosts need it for their private /etc, /var and /usr')


# ----------------------------------------------------------------------------- fleet spec


def expand_spec(spec):
    """Hosts (name, build, hardware, guests, failure domain, faults) from a fleet spec."""
    if not isinstance(spec, dict) or not spec.get('groups'):
        raise LabError('a fleet spec needs a "groups" list (see tests/lab/fleets/default.yml)')
    builds = spec.get('builds', {})
    defaults = spec.get('defaults', {})
    hosts = []
    seen = set()
    for group in spec['groups']:
        merged = dict(defaults)
        merged.update(group)
        name = merged.get('name')
        if not name:
            raise LabError('every group in the fleet spec needs a name: %r' % group)
        build_ref = merged.get('build')
        build_spec = builds.get(build_ref, build_ref) if isinstance(build_ref, str) else build_ref
        try:
            build = lab_model.resolve_build(build_spec)
            if merged.get('livepatch', True) is False:
                build['livepatch'] = False
            hardware = lab_model.resolve_hardware(merged.get('hardware', 'intel-cascadelake'))
        except lab_model.ModelError as exc:
            raise LabError('fleet spec, group %s: %s' % (name, exc))
        domains = merged.get('failure_domains') or [merged.get('failure_domain', 'default')]
        guests = merged.get('guests', 2)
        count = int(merged.get('count', 1))
        files = dict(merged.get('files') or {})
        filesystems = dict(merged.get('filesystems') or {})
        for path in list(files) + list(filesystems):
            if not isinstance(path, str) or not path.startswith('/') or '..' in path.split('/') \
                    or '/' + path.strip('/').split('/')[0] not in OVERLAYS or path.strip('/') in [o.strip('/') for o in OVERLAYS]:
                raise LabError('fleet spec, group %s: %r must be an absolute path under %s (files and filesystems '
                               'live in the host\'s private overlays)' % (name, path, ' '.join(OVERLAYS)))
        for i in range(1, count + 1):
            host = '%s-%03d' % (name, i)
            if host in seen:
                raise LabError('fleet spec: host name %s appears twice' % host)
            if len(NS_PREFIX + host) > 60:
                raise LabError('fleet spec: group name %s is too long for a namespace name' % name)
            seen.add(host)
            guest_list = (['%s-vm%02d' % (host, g + 1) for g in range(int(guests))] if isinstance(guests, int)
                          else list(guests))
            faults = dict(merged.get('faults') or {})
            every = faults.pop('every', None)
            if every and (i - 1) % int(every) != 0:
                faults = {k: v for k, v in faults.items() if k in ('reboot_delay',)}
            if 'reboot_delay' in merged:
                faults.setdefault('reboot_delay', merged['reboot_delay'])
            hosts.append({'name': host, 'group': name, 'build': build, 'hardware': hardware, 'guests': guest_list,
                          'failure_domain': domains[(i - 1) % len(domains)], 'faults': faults,
                          'vars': dict(merged.get('vars') or {}), 'files': files, 'filesystems': filesystems})
    if len(hosts) > 250 * 250:
        raise LabError('at most %d hosts' % (250 * 250))
    return hosts


# ----------------------------------------------------------------------------- up


def write_file(path, text, mode=0o644):
    with open(path, 'w') as handle:
        handle.write(text)
    os.chmod(path, mode)


def lab_state_path():
    return os.path.join(LAB_ROOT, 'lab.json')


def save_lab_state(state):
    tmp = lab_state_path() + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(state, handle, indent=1)
    os.rename(tmp, lab_state_path())


def load_lab_state():
    try:
        with open(lab_state_path()) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


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
    os.makedirs(SIM_DIR_IN_NS, exist_ok=True)
    mount(SIM_DIR, SIM_DIR_IN_NS, None, MS_BIND)
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


def build_inventory(spec, hosts, key_path):
    group = spec.get('inventory_group', 'xen_hosts')
    hostvars = {}
    for host in hosts:
        hv = {'ansible_host': host['addr'], 'noreboot_xen_failure_domain': host['failure_domain']}
        hv.update(host.get('vars') or {})
        hostvars[host['name']] = hv
    children = {}
    for host in hosts:
        for grp in ('lab_build_' + host['build']['version'].replace('.', '_'),
                    'lab_hw_' + host['hardware']['name'].replace('-', '_'),
                    'lab_group_' + host['group'].replace('-', '_')):
            children.setdefault(grp, {'hosts': {}})['hosts'][host['name']] = None
    common = ('-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR '
              '-o ServerAliveInterval=5 -o ServerAliveCountMax=3 -o ConnectTimeout=10')
    return {'all': {
        'vars': {
            'ansible_user': 'root',
            'ansible_ssh_private_key_file': key_path,
            'ansible_ssh_common_args': common,
            'ansible_python_interpreter': '/usr/bin/python3',
            'noreboot_xen_lab': {'root': LAB_ROOT, 'payload_dir': os.path.join(LAB_ROOT, 'payloads'),
                                 'spec': spec.get('name', 'unnamed')},
        },
        'children': dict({group: {'hosts': hostvars}}, **dict(sorted(children.items()))),
    }}


def make_lab_payloads(hosts):
    """Payload files for every build in the fleet, by build-id (lab_payloads.write_build_payloads):
    Xen's test payloads (real ones from the testbed cache for the real builds, forged otherwise)
    and the synthetic fix lab_xsa_fix."""
    import lab_payloads
    done = set()
    for host in hosts:
        build = host['build']
        if build['build_id'] in done:
            continue
        done.add(build['build_id'])
        lab_payloads.write_build_payloads(os.path.join(LAB_ROOT, 'payloads', build['build_id']), build,
                                          real_build=lab_model.KNOWN_BUILDS.get(build['version'], {}).get('build_id')
                                          == build['build_id'])


def cmd_up(args):
    preflight()
    spec = load_yaml(args.spec)
    hosts = expand_spec(spec)
    if only_stray_directory():
        shutil.rmtree(LAB_ROOT)
    if leftovers_exist():
        if not args.replace:
            raise LabError('a lab (or leftovers of one) is already here: run `labctl.py down` first '
                           '(or `up --replace`)')
        cmd_down(argparse.Namespace(quiet=True))
    t0 = time.time()
    os.makedirs(LAB_ROOT, mode=0o755, exist_ok=True)
    # A tmpfs of its own: fast to fill and to empty, gone with the machine, one umount at down.
    mount('noreboot-xen-lab', LAB_ROOT, 'tmpfs', 0, 'mode=0755')
    inventory_path = os.path.abspath(args.inventory) if args.inventory else os.path.join(LAB_ROOT, 'inventory.yml')
    lab = {'status': 'starting', 'spec': os.path.abspath(args.spec), 'started': t0, 'inventory': inventory_path,
           'hosts': []}
    save_lab_state(lab)
    for sub in ('bin', 'hosts', 'ssh', 'cp'):
        os.makedirs(os.path.join(LAB_ROOT, sub), exist_ok=True)
    os.chmod(os.path.join(LAB_ROOT, 'ssh'), 0o700)
    lab_model.write_launcher(os.path.join(LAB_ROOT, 'bin', 'xensim'), simdirs=[SIM_DIR_IN_NS])
    key = os.path.join(LAB_ROOT, 'ssh', 'id_ed25519')
    run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'noreboot-xen-lab', '-f', key])
    with open(key + '.pub') as handle:
        client_pub = handle.read()
    # Bridge on the machine side: the controller reaches the hosts through it.
    ip_batch(['link add %s type bridge forward_delay 0 stp_state 0' % BRIDGE,
              'addr add %s/%d dev %s' % (BRIDGE_ADDR, PREFIXLEN, BRIDGE),
              'link set %s up' % BRIDGE])
    keygens = []
    for index, host in enumerate(hosts, 1):
        hostdir, addr = prepare_host_dir(host, index, client_pub)
        host['addr'] = addr
        host['dir'] = hostdir
        host['netns'] = NS_PREFIX + host['name']
        host['veth'] = '%s%04d' % (VETH_PREFIX, index)
        keygens.append(subprocess.Popen(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', host['name'],
                                         '-f', os.path.join(hostdir, 'ssh_host_ed25519_key')]))
        if len(keygens) >= 16:
            for proc in keygens:
                proc.wait()
            keygens = []
    for proc in keygens:
        proc.wait()
    lab['hosts'] = [{k: h[k] for k in ('name', 'addr', 'netns', 'veth', 'failure_domain', 'group')} for h in hosts]
    save_lab_state(lab)
    lines = []
    for host in hosts:
        lines += ['netns add %s' % host['netns'],
                  'link add %s type veth peer name eth0 netns %s' % (host['veth'], host['netns']),
                  'link set %s master %s up' % (host['veth'], BRIDGE)]
    ip_batch(lines)
    t_net = time.time()
    failed = [h['name'] for h in hosts if not spawn_host(h, h['dir'], h['addr'])]
    if failed:
        raise LabError('could not start hosts %s' % ', '.join(failed))
    not_ready = wait_for_ssh(hosts, args.timeout)
    if not_ready:
        details = []
        for name in not_ready[:5]:
            for log in ('boot.log', 'sshd.log'):
                path = os.path.join(LAB_ROOT, 'hosts', name, log)
                if os.path.exists(path):
                    with open(path) as handle:
                        details.append('%s %s: %s' % (name, log, handle.read()[-500:]))
        raise LabError('sshd did not answer on %d host(s) within %ss: %s\n%s\nRun `labctl.py down` to clean up.'
                       % (len(not_ready), args.timeout, ', '.join(not_ready[:10]), '\n'.join(details)))
    t_ready = time.time()
    make_lab_payloads(hosts)
    inventory = build_inventory(spec, hosts, key)
    text = INVENTORY_MARKER + ' (%s): removed by `labctl.py down`\n' % os.path.basename(args.spec) + dump_yaml(inventory)
    write_file(inventory_path, text)
    lab.update({'status': 'up', 'up_seconds': round(t_ready - t0, 2), 'network_seconds': round(t_net - t0, 2)})
    save_lab_state(lab)
    print('lab up: %d hosts in %.1f s (sshd ready on all), inventory %s'
          % (len(hosts), t_ready - t0, inventory_path))
    by_build = {}
    for host in hosts:
        by_build.setdefault('%s %s' % (host['build']['version'], 'livepatch' if host['build'].get('livepatch', True)
                                       else 'NO livepatch'), []).append(host['name'])
    for key_, names in sorted(by_build.items()):
        print('  %-24s %3d hosts' % (key_, len(names)))
    if args.print_inventory:
        print(text)
    return 0


# ----------------------------------------------------------------------------- down


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


def leftovers_exist():
    return bool(lab_namespaces() or lab_links() or os.path.exists(LAB_ROOT))


def only_stray_directory():
    """LAB_ROOT exists but holds no lab: not mounted, no lab.json, no namespaces or links
    (e.g. an empty ControlPersist directory an Ansible run created)."""
    return (os.path.isdir(LAB_ROOT) and not os.path.ismount(LAB_ROOT) and not lab_namespaces()
            and not lab_links() and not os.path.exists(lab_state_path()))


def close_control_masters():
    cpdir = os.path.join(LAB_ROOT, 'cp')
    if not os.path.isdir(cpdir):
        return
    for sock in os.listdir(cpdir):
        subprocess.call(['ssh', '-o', 'ControlPath=' + os.path.join(cpdir, sock), '-O', 'exit', 'lab-host'],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)


def cmd_down(args):
    require_root()
    t0 = time.time()
    lab = load_lab_state() or {}
    close_control_masters()
    killed = 0
    for dummy in range(50):
        procs = lab_processes()
        if not procs:
            break
        for pid in procs:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.1)
    left = lab_processes()
    if left:
        raise LabError('processes still alive in lab namespaces after SIGKILL: %s' % sorted(left)[:20])
    namespaces = lab_namespaces()
    ip_batch(['netns del %s' % n for n in namespaces], check=False)
    for name in lab_namespaces():
        run(['ip', 'netns', 'del', name], check=False)
    links = lab_links()
    ip_batch(['link del %s' % link for link in links], check=False)
    inventory = lab.get('inventory')
    if inventory and os.path.isfile(inventory):
        with open(inventory) as handle:
            if handle.readline().startswith(INVENTORY_MARKER):
                os.remove(inventory)
    if os.path.exists(LAB_ROOT):
        while os.path.ismount(LAB_ROOT):
            _check(libc().umount2(LAB_ROOT.encode(), MNT_DETACH), 'umount ' + LAB_ROOT)
        shutil.rmtree(LAB_ROOT)
    remaining = leftovers_report()
    if remaining:
        raise LabError('lab leftovers after down: %s' % '; '.join(remaining))
    if not getattr(args, 'quiet', False):
        print('lab down: %d namespaces, %d links, %d processes removed in %.1f s; nothing left'
              % (len(namespaces), len(links), killed, time.time() - t0))
    return 0


def lab_mounts():
    found = []
    with open('/proc/self/mountinfo') as handle:
        for line in handle:
            point = line.split()[4]
            if (point == LAB_ROOT or point.startswith(LAB_ROOT + '/')
                    or point.startswith('/run/netns/' + NS_PREFIX)):
                found.append(point)
    return found


def leftovers_report():
    found = []
    if lab_namespaces():
        found.append('namespaces %s' % lab_namespaces()[:5])
    if lab_links():
        found.append('links %s' % lab_links()[:5])
    if lab_processes():
        found.append('processes %s' % sorted(lab_processes())[:5])
    if os.path.exists(LAB_ROOT):
        found.append('directory %s' % LAB_ROOT)
    proc = run(['ip', '-o', 'addr', 'show'], check=False)
    if ' 10.%d.' % SUBNET_OCTET in proc.stdout:
        found.append('addresses in 10.%d.0.0/16 on the machine' % SUBNET_OCTET)
    mounts = lab_mounts()
    if mounts:
        found.append('%d mounts' % len(mounts))
    return found


# ----------------------------------------------------------------------------- status and runtime changes


def host_state(name):
    path = os.path.join(LAB_ROOT, 'hosts', name, 'state.json')
    with open(path) as handle:
        return json.load(handle)


def edit_host_state(name, func):
    sys.path.insert(0, os.path.join(HERE, 'simulator'))
    import xensim
    with xensim.HostState(os.path.join(LAB_ROOT, 'hosts', name, 'state.json')) as host:
        func(host.data)
        host.save()


def host_path(name, path):
    """A path of the host's private overlay (upper layer) seen from outside: /boot/x of host
    a5-001 is LAB_ROOT/hosts/a5-001/ovl/boot/upper/x."""
    parts = path.strip('/').split('/', 1)
    return os.path.join(LAB_ROOT, 'hosts', name, 'ovl', parts[0], 'upper', *parts[1:])


def stage_installed_build(name, build, default='Debian GNU/Linux, with Xen hypervisor'):
    """What installing a fixed hypervisor package does on a lab host (the lab cannot run apt): the
    next boot runs ``build`` (a lab_model build), /boot/xen-4.17-amd64.gz holds its build-id and
    GRUB's default entry is ``default``."""
    import lab_guest_ops
    edit_host_state(name, lambda state: lab_guest_ops.install_build(state, build))
    lab_guest_ops.write_boot_files(host_path(name, '/boot'), build['build_id'], default=default)


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


def cmd_status(args):
    lab = load_lab_state()
    namespaces = lab_namespaces()
    if not lab and not namespaces:
        print('no lab is up')
        return 0
    procs = lab_processes()
    per_ns = {}
    for ns in procs.values():
        per_ns[ns] = per_ns.get(ns, 0) + 1
    rows = []
    for host in (lab or {}).get('hosts', []):
        row = {'name': host['name'], 'addr': host['addr'], 'failure_domain': host['failure_domain'],
               'processes': per_ns.get(host['netns'], 0), 'ssh': ssh_ready(host['addr'])}
        try:
            st = host_state(host['name'])
            row.update({'build': st['build']['version'], 'applied': st['applied'],
                        'payloads': [p['name'] for p in st['payloads']], 'boots': st['boots'],
                        'crashed': st['crashed'],
                        'halted': os.path.exists(os.path.join(LAB_ROOT, 'hosts', host['name'], 'halted'))})
        except (OSError, ValueError, KeyError):
            pass
        rows.append(row)
    if args.json:
        print(json.dumps({'status': (lab or {}).get('status', 'leftovers'), 'namespaces': len(namespaces),
                          'hosts': rows}, indent=1))
        return 0
    print('lab %s: %d namespaces, %d processes, spec %s'
          % ((lab or {}).get('status', 'leftovers only'), len(namespaces), len(procs), (lab or {}).get('spec')))
    for row in rows:
        print('  %-16s %-13s %-10s %-8s ssh=%-3s procs=%-3d boots=%s applied=%s%s' % (
            row['name'], row['addr'], row.get('failure_domain', ''), row.get('build', '?'),
            'up' if row['ssh'] else 'DOWN', row['processes'], row.get('boots'), ','.join(row.get('applied', [])) or '-',
            ' CRASHED' if row.get('crashed') else (' HALTED' if row.get('halted') else '')))
    return 0


def cmd_fault(args):
    require_root()
    value = json.loads(args.value)

    def change(state):
        if value is None:
            state['faults'].pop(args.fault, None)
        else:
            state['faults'][args.fault] = value
        state['counters'].setdefault('faults', {}).pop(args.fault, None)

    edit_host_state(args.host, change)
    print('%s: fault %s = %s' % (args.host, args.fault, json.dumps(value)))
    return 0


def cmd_power_cycle(args):
    """Reset a host as a BMC would: fresh boot of the simulated hypervisor, link and sshd back."""
    require_root()
    lab = load_lab_state() or {}
    host = next((h for h in lab.get('hosts', []) if h['name'] == args.host), None)
    if host is None:
        raise LabError('no lab host called %s (see `labctl.py status`)' % args.host)
    import xensim
    hostdir = os.path.join(LAB_ROOT, 'hosts', args.host)
    init_pid = None
    try:
        with open(os.path.join(hostdir, 'init.pid')) as handle:
            init_pid = int(handle.read())
    except (OSError, ValueError):
        pass

    def change(state):
        # xendomains reads the host's own files: its view of the file system through its init process.
        xensim.boot(state, root='/proc/%d/root' % init_pid if init_pid else None)
        with open(os.path.join(hostdir, 'boot_id'), 'r+') as handle:
            handle.write(state['boot_id'] + '\n')
            handle.truncate()

    edit_host_state(args.host, change)
    for pid, ns in lab_processes().items():
        if ns == host['netns'] and pid != init_pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    run(['ip', '-n', host['netns'], 'link', 'set', 'eth0', 'up'], check=False)
    run(['ip', '-n', host['netns'], 'link', 'set', 'lo', 'up'], check=False)
    if os.path.exists(os.path.join(hostdir, 'halted')):
        os.remove(os.path.join(hostdir, 'halted'))
    print('%s: power-cycled' % args.host)
    return 0


def cmd_unreachable(args):
    """Make a host unreachable now (a trigger in the middle of a wave): link down or sshd killed."""
    require_root()
    lab = load_lab_state() or {}
    host = next((h for h in lab.get('hosts', []) if h['name'] == args.host), None)
    if host is None:
        raise LabError('no lab host called %s (see `labctl.py status`)' % args.host)
    hostdir = os.path.join(LAB_ROOT, 'hosts', args.host)
    open(os.path.join(hostdir, 'halted'), 'w').close()
    if args.how == 'link_down':
        run(['ip', '-n', host['netns'], 'link', 'set', 'eth0', 'down'])
    else:
        try:
            with open(os.path.join(hostdir, 'init.pid')) as handle:
                init_pid = int(handle.read())
        except (OSError, ValueError):
            init_pid = None
        for pid, ns in lab_processes().items():
            if ns == host['netns'] and pid != init_pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
    print('%s: unreachable (%s); `labctl.py power-cycle %s` brings it back' % (args.host, args.how, args.host))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='labctl.py', description=__doc__.split('\n', maxsplit=1)[0])
    sub = parser.add_subparsers(dest='command')
    up = sub.add_parser('up', help='bring a fleet up from a spec and write its Ansible inventory')
    up.add_argument('--spec', default=os.path.join(HERE, 'fleets', 'default.yml'))
    up.add_argument('--inventory', help='where to write the inventory (default: %s/inventory.yml)' % LAB_ROOT)
    up.add_argument('--timeout', type=float, default=60.0, help='seconds to wait for every sshd')
    up.add_argument('--replace', action='store_true', help='tear down an existing lab first')
    up.add_argument('--print-inventory', action='store_true')
    down = sub.add_parser('down', help='remove every lab namespace, process, link, mount and file')
    down.add_argument('--quiet', action='store_true')
    st = sub.add_parser('status', help='hosts, reachability and simulated hypervisor state')
    st.add_argument('--json', action='store_true')
    fault = sub.add_parser('fault', help='set (JSON value) or clear (null) a fault on a running host')
    fault.add_argument('host')
    fault.add_argument('fault')
    fault.add_argument('value')
    pc = sub.add_parser('power-cycle', help='reset a crashed or halted host')
    pc.add_argument('host')
    cut = sub.add_parser('unreachable', help='make a host unreachable now (link down or sshd killed)')
    cut.add_argument('host')
    cut.add_argument('--how', choices=('link_down', 'sshd_killed'), default='link_down')
    args = parser.parse_args(argv)
    handlers = {'up': cmd_up, 'down': cmd_down, 'status': cmd_status, 'fault': cmd_fault,
                'power-cycle': cmd_power_cycle, 'unreachable': cmd_unreachable}
    if args.command not in handlers:
        parser.print_help()
        return 64
    try:
        return handlers[args.command](args)
    except LabError as exc:
        sys.stderr.write('labctl %s: %s\n' % (args.command, exc))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write('labctl %s: interrupted; run `labctl.py down` to remove what was created\n' % args.command)
        return 130


if __name__ == '__main__':
    sys.exit(main())
