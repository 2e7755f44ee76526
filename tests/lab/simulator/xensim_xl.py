# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated ``xl`` (tools/xl of Xen 4.17): info, list, dmesg and uptime here; the guest
commands (save, restore, create, shutdown, migrate) in lab_guest_ops.py.
"""

from xensim_hypervisor import Hypervisor
from xensim_output import IO
from xensim_state import effective_extra


CONSOLE_RING = 16 * 1024
# xl sub-commands for moving guests, simulated in lab_guest_ops.py.
GUEST_COMMANDS = ('save', 'restore', 'create', 'shutdown', 'migrate')


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
