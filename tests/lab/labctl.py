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

Made of: labctl_instance.py (the instance's names, addresses and paths), labctl_netns.py
(namespace and network plumbing), labctl_fleet_spec.py (fleet spec and inventory),
labctl_host_boot.py (one host's directory, boot and sshd); this file is the CLI.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'simulator'))
sys.path.insert(0, HERE)

# Names other lab code and the lab's tests use as labctl.NAME are imported here too (F401, unused-import).
import lab_model  # noqa: E402
from labctl_fleet_spec import build_inventory, dump_yaml, expand_spec, load_yaml  # noqa: E402,F401  pylint: disable=unused-import
from labctl_host_boot import prepare_host_dir, spawn_host, ssh_ready, wait_for_ssh, write_file  # noqa: E402
from labctl_instance import (BRIDGE, BRIDGE_ADDR, INSTANCE, INVENTORY_MARKER, LAB_ROOT, NS_PREFIX,  # noqa: E402,F401  pylint: disable=unused-import
                             PREFIXLEN, SIM_DIR_IN_NS, SUBNET_OCTET, VETH_PREFIX, LabError)
from labctl_netns import (MNT_DETACH, _check, ip_batch, lab_links, lab_mounts, lab_namespaces,  # noqa: E402
                          lab_processes, libc, mount, run)


# ----------------------------------------------------------------------------- checks and the lab's record


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


# ----------------------------------------------------------------------------- up


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
    timeout = ready_timeout(args.timeout, len(hosts))
    not_ready = wait_for_ssh(hosts, timeout)
    if not_ready:
        details = []
        for name in not_ready[:5]:
            for log in ('boot.log', 'sshd.log'):
                path = os.path.join(LAB_ROOT, 'hosts', name, log)
                if os.path.exists(path):
                    with open(path) as handle:
                        details.append('%s %s: %s' % (name, log, handle.read()[-500:]))
        raise LabError('sshd did not answer on %d host(s) within %ss: %s\n%s\nRun `labctl.py down` to clean up.'
                       % (len(not_ready), timeout, ', '.join(not_ready[:10]), '\n'.join(details)))
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


def ready_timeout(given, hosts):
    """How long ``up`` waits for every sshd: ``given``, else 60 s, more for a big fleet on a loaded machine
    (1000 sshd starting beside other labs took more than 60 s on 2 cores)."""
    return given if given is not None else max(60.0, 0.3 * hosts)


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
    up.add_argument('--timeout', type=float, default=None,
                    help='seconds to wait for every sshd (default: 60, or 0.3 s per host for fleets over 200 hosts)')
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
