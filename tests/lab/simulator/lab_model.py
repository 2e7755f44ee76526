# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a simulated Xen host is made of: builds, hardware classes, and its initial state.

Used by labctl.py (to write each lab host's state, /proc/cpuinfo and DMI files) and by the
contract test (to set up a state that matches a recorded real host). Standard library only.
"""

import copy
import os
import uuid

# Captured output has one home, tests/fixtures/ (tests/fixtures/README.md): the boot log and the build-id of
# each real build are read from there. Lab hosts see the checkout's tests/ directory bind-mounted
# (labctl_instance.TESTS_DIR_IN_NS), the simulator inside it, so this path holds in a lab host too.
FIXTURES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'fixtures')


def captured(rel):
    """The text of the captured output ``tests/fixtures/<rel>`` (``xen-4.17.5/xl_dmesg.txt``)."""
    with open(os.path.join(FIXTURES_DIR, rel)) as handle:
        return handle.read()


def captured_build_id(version):
    """The build-id ``xl info`` printed on the real build ``version`` (tests/fixtures/xen-<version>/xl_info.txt)."""
    for line in captured('xen-%s/xl_info.txt' % version).splitlines():
        key, _colon, value = line.partition(':')
        if key.strip() == 'build_id':
            return value.strip()
    raise ValueError('tests/fixtures/xen-%s/xl_info.txt has no build_id line' % version)


# Real Debian bookworm builds, as measured on the real testbed (xen-testbed.md, reference/).
KNOWN_BUILDS = {
    '4.17.5': {
        'version': '4.17.5',
        'build_id': captured_build_id('4.17.5'),
        'debian_version': '4.17.5+72-g01140da4e8-1',
        'compile_date': 'Sat Nov 29 13:52:25 UTC 2025',
        'virt_caps': 'pv hvm hap shadow gnttab-v1 gnttab-v2',
        'boot_dmesg': 'xen-4.17.5/xl_dmesg.txt',
    },
    '4.17.7': {
        'version': '4.17.7',
        'build_id': captured_build_id('4.17.7'),
        'debian_version': '4.17.7+13-g2445b30a44-0+deb12u1',
        'compile_date': 'Wed Nov  4 16:52:28 UTC 2026',
        'virt_caps': 'pv hvm hap gnttab-v1 gnttab-v2',
        'boot_dmesg': 'xen-4.17.7/xl_dmesg.txt',
    },
    # Debian 13 (trixie): upstream's stable-4.20 after RELEASE-4.20.4, which calls itself 4.20.5-pre
    # (tests/testbed/xen-4.20-differences.md); dom0 runs Debian 13's 6.12 kernel.
    '4.20.4': {
        'version': '4.20.4',
        'extra': '.5-pre',
        'build_id': captured_build_id('4.20.4'),
        'debian_version': '4.20.4+63-g7abfd2bce2-0+deb13u1',
        'compiler': 'x86_64-linux-gnu-gcc (Debian 14.2.0-19) 14.2.0',
        'compile_date': 'Tue Nov  3 20:11:50 UTC 2026',
        'virt_caps': 'pv hvm hap gnttab-v1 gnttab-v2',
        'boot_dmesg': 'xen-4.20.4/xl_dmesg.txt',
        'dom0_kernel': {'release': '6.12.117+deb13-amd64',
                        'version': '#1 SMP PREEMPT_DYNAMIC Debian 6.12.117-1 (2026-11-12)'},
    },
}

# How the tools and the hypervisor behave, by generation (tests/testbed/xen-4.20-differences.md):
# '4.17' as captured on Debian 12's 4.17.5 / 4.17.7, '4.20' as captured on Debian 13's 4.20.4
# (xen-livepatch --force and its usage text, commands matched exactly, the Xen build-id checked
# first at upload with a three-line "build-id mismatch:" log). A build's generation follows its
# version (4.19 and later: '4.20', where --force and the early build-id check arrived), or the
# fleet spec's ``generation``.
GENERATIONS = ('4.17', '4.20')

BUILD_DEFAULTS = {
    'compiler': 'x86_64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0',
    'compile_by': 'pkg-xen-devel',
    'compile_domain': 'lists.alioth.debian.org',
    'compile_date': 'Mon Jun  2 10:00:00 UTC 2025',
    'virt_caps': 'pv hvm hap shadow gnttab-v1 gnttab-v2',
    'xen_caps': 'xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 ',
    'scheduler': 'credit2',
    'livepatch': True,
}

# Hardware classes. 'qemu' is the real testbed's QEMU TCG machine the reference came from.
HARDWARE_CLASSES = {
    'qemu': {
        'vendor': 'AuthenticAMD', 'family': 15, 'model': 107, 'stepping': 1, 'raw': '00060fb1',
        'model_name': 'QEMU Virtual CPU version 2.5+', 'microcode': '0x1000065',
        'sockets': 1, 'cores_per_socket': 2, 'threads_per_core': 1, 'cpu_khz': 2599998,
        'hw_caps': '1fcbf3fd:f6d8320b:ec500800:00000077:00000005:01884329:0000020c:00000000',
        'total_memory': 2047, 'free_memory': 1000, 'dom0_mem': 1024, 'dom0_vcpus': 2,
        'dmi': {'sys_vendor': 'QEMU', 'product_name': 'Standard PC (i440FX + PIIX, 1996)',
                'product_version': 'pc-i440fx-7.2', 'board_vendor': '', 'board_name': '',
                'bios_vendor': 'SeaBIOS', 'bios_version': '1.16.2-debian-1.16.2-1',
                'bios_date': '04/01/2014', 'chassis_vendor': 'QEMU'},
    },
    'intel-cascadelake': {
        'vendor': 'GenuineIntel', 'family': 6, 'model': 85, 'stepping': 7, 'raw': '00050657',
        'model_name': 'Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz', 'microcode': '0x5003604',
        'sockets': 2, 'cores_per_socket': 20, 'threads_per_core': 2, 'cpu_khz': 2500000,
        'hw_caps': 'bfebfbff:77fefbff:2c100800:00000121:0000000f:d19ffffb:00000008:00000100',
        'total_memory': 393216, 'dom0_mem': 8192, 'dom0_vcpus': 8,
        'dmi': {'sys_vendor': 'Dell Inc.', 'product_name': 'PowerEdge R640', 'product_version': '',
                'board_vendor': 'Dell Inc.', 'board_name': '0H28RR', 'bios_vendor': 'Dell Inc.',
                'bios_version': '2.19.1', 'bios_date': '06/21/2023', 'chassis_vendor': 'Dell Inc.'},
    },
    'intel-icelake': {
        'vendor': 'GenuineIntel', 'family': 6, 'model': 106, 'stepping': 6, 'raw': '000606a6',
        'model_name': 'Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz', 'microcode': '0xd0003a5',
        'sockets': 2, 'cores_per_socket': 32, 'threads_per_core': 2, 'cpu_khz': 2000000,
        'hw_caps': 'bfebfbff:77fefbff:2c100800:00000121:0000000f:f3bfbfbf:0040069c:00000100',
        'total_memory': 524288, 'dom0_mem': 8192, 'dom0_vcpus': 8,
        'dmi': {'sys_vendor': 'Supermicro', 'product_name': 'SYS-120U-TNR', 'product_version': '0123456789',
                'board_vendor': 'Supermicro', 'board_name': 'X12DPU-6', 'bios_vendor': 'American Megatrends International, LLC.',
                'bios_version': '1.4b', 'bios_date': '09/29/2022', 'chassis_vendor': 'Supermicro'},
    },
    'amd-rome': {
        'vendor': 'AuthenticAMD', 'family': 23, 'model': 49, 'stepping': 0, 'raw': '00830f10',
        'model_name': 'AMD EPYC 7502 32-Core Processor', 'microcode': '0x830107a',
        'sockets': 2, 'cores_per_socket': 32, 'threads_per_core': 2, 'cpu_khz': 2500000,
        'hw_caps': '178bfbff:7ed8320b:2fd3fbff:000005ff:0000000f:219c91a9:00000004:00000000',
        'total_memory': 524288, 'dom0_mem': 8192, 'dom0_vcpus': 8,
        'dmi': {'sys_vendor': 'HPE', 'product_name': 'ProLiant DL385 Gen10 Plus', 'product_version': '',
                'board_vendor': 'HPE', 'board_name': 'ProLiant DL385 Gen10 Plus', 'bios_vendor': 'HPE',
                'bios_version': 'A42', 'bios_date': '11/08/2023', 'chassis_vendor': 'HPE'},
    },
    'amd-milan': {
        'vendor': 'AuthenticAMD', 'family': 25, 'model': 1, 'stepping': 1, 'raw': '00a00f11',
        'model_name': 'AMD EPYC 7543 32-Core Processor', 'microcode': '0xa0011d1',
        'sockets': 2, 'cores_per_socket': 32, 'threads_per_core': 2, 'cpu_khz': 2800000,
        'hw_caps': '178bfbff:7ed8320b:2fd3fbff:000005ff:0000000f:219c95a9:0040068c:00000000',
        'total_memory': 1048576, 'dom0_mem': 16384, 'dom0_vcpus': 16,
        'dmi': {'sys_vendor': 'Lenovo', 'product_name': 'ThinkSystem SR665', 'product_version': '',
                'board_vendor': 'Lenovo', 'board_name': '7D2VCTO1WW', 'bios_vendor': 'Lenovo',
                'bios_version': 'D8E132G-3.10', 'bios_date': '03/14/2023', 'chassis_vendor': 'Lenovo'},
    },
}

DEFAULT_KERNEL = {
    'release': '6.1.0-50-amd64',
    'version': '#1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1 (2026-07-02)',
}

REFERENCE_COMMANDLINE = ('console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all '
                         'guest_loglvl=all noreboot ')


class ModelError(ValueError):
    """A fleet spec names a build or hardware class the lab does not know how to build."""


def resolve_build(spec):
    """A full build description from a spec entry: a known version or an invented build."""
    if isinstance(spec, str):
        spec = {'version': spec}
    spec = dict(spec)
    version = str(spec.get('version', ''))
    base = dict(BUILD_DEFAULTS)
    if version in KNOWN_BUILDS and spec.get('build_id', KNOWN_BUILDS[version]['build_id']) == KNOWN_BUILDS[version]['build_id']:
        base.update(KNOWN_BUILDS[version])
    elif not spec.get('build_id'):
        raise ModelError('build %r is not a known real build (%s): give it an invented build_id'
                         % (version, ', '.join(sorted(KNOWN_BUILDS))))
    base.update(spec)
    parts = version.split('.')
    if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ModelError('build version %r must look like MAJOR.MINOR.PATCH' % version)
    build_id = str(base['build_id']).lower()
    if len(build_id) != 40 or any(c not in '0123456789abcdef' for c in build_id):
        raise ModelError('build %s: build_id %r must be 40 hex digits' % (version, build_id))
    base['build_id'] = build_id
    base['major'] = int(parts[0])
    base['minor'] = int(parts[1])
    base.setdefault('generation', '4.20' if (base['major'], base['minor']) >= (4, 19) else '4.17')
    base['generation'] = str(base['generation'])
    if base['generation'] not in GENERATIONS:
        raise ModelError('build %s: generation %r is not one the simulator models (%s)'
                         % (version, base['generation'], ', '.join(GENERATIONS)))
    base.setdefault('extra', '.' + '.'.join(parts[2:]))
    base.setdefault('debian_version', '%s-1' % version)
    return base


def resolve_hardware(name_or_spec):
    if isinstance(name_or_spec, dict):
        spec = dict(name_or_spec)
        base_name = spec.pop('class', None)
    else:
        spec, base_name = {}, name_or_spec
    if base_name not in HARDWARE_CLASSES:
        raise ModelError('unknown hardware class %r (known: %s)' % (base_name, ', '.join(sorted(HARDWARE_CLASSES))))
    hw = copy.deepcopy(HARDWARE_CLASSES[base_name])
    dmi = spec.pop('dmi', {})
    hw.update(spec)
    hw['dmi'].update(dmi)
    hw['name'] = base_name
    return hw


def boot_dmesg(build, hardware, commandline):
    """The hypervisor's boot messages (xl dmesg right after boot)."""
    lines = captured(build.get('boot_dmesg') or 'xen-4.17.5/xl_dmesg.txt').splitlines()
    vendor = 'Intel' if hardware['vendor'] == 'GenuineIntel' else 'AMD'
    out = []
    for line in lines:
        if line.startswith('(XEN) Xen version '):
            line = ('(XEN) Xen version %d.%d%s (Debian %s) (pkg-xen-devel@lists.alioth.debian.org) (%s) debug=n %s'
                    % (build['major'], build['minor'], build['extra'], build['debian_version'],
                       build['compiler'], build['compile_date']))
        elif line.startswith('(XEN) build-id: '):
            line = '(XEN) build-id: %s' % build['build_id']
        elif line.startswith('(XEN) Command line: '):
            line = '(XEN) Command line: %s' % commandline
        elif line.startswith('(XEN) CPU Vendor: '):
            line = ('(XEN) CPU Vendor: %s, Family %d (%#x), Model %d (%#x), Stepping %d (raw %s)'
                    % (vendor, hardware['family'], hardware['family'], hardware['model'], hardware['model'],
                       hardware['stepping'], hardware['raw']))
        out.append(line)
    return out


def initial_domains(hardware, guests):
    """Domain-0 plus the spec's guests, as rows for xl list."""
    domains = [{'name': 'Domain-0', 'id': 0, 'mem': hardware['dom0_mem'], 'vcpus': hardware['dom0_vcpus'],
                'state': 'r-----', 'time': 68.9}]
    for index, guest in enumerate(guests or []):
        if isinstance(guest, str):
            guest = {'name': guest}
        domains.append({'name': guest['name'], 'id': guest.get('id', index + 1), 'mem': guest.get('mem', 2048),
                        'vcpus': guest.get('vcpus', 2), 'state': guest.get('state', '-b----'),
                        'time': float(guest.get('time', 12.5 + index))})
    return domains


def new_state(hostname, build, hardware, guests=None, faults=None, commandline=None, kernel=None,
              installed_build=None):
    """A host's simulator state right after boot."""
    build = resolve_build(build) if not isinstance(build, dict) or 'major' not in build else build
    hardware = resolve_hardware(hardware) if not isinstance(hardware, dict) or 'name' not in hardware else hardware
    if commandline is None:
        commandline = ('dom0_mem=%dM,max:%dM dom0_max_vcpus=%d console=com1 com1=115200,8n1 loglvl=all '
                       % (hardware['dom0_mem'], hardware['dom0_mem'], hardware['dom0_vcpus']))
    domains = initial_domains(hardware, guests)
    return {
        'format': 1,
        'hostname': hostname,
        'kernel': dict(kernel or build.get('dom0_kernel') or DEFAULT_KERNEL),
        'build': build,
        'installed_build': installed_build,
        'hardware': hardware,
        'commandline': commandline,
        'boot_dmesg': boot_dmesg(build, hardware, commandline),
        'dmesg': [],
        'payloads': [],
        'applied': [],
        'guests_at_boot': domains,
        'domains': copy.deepcopy(domains),
        'faults': dict(faults or {}),
        'counters': {'attempts': {}, 'applied_ok': 0},
        'boots': 1,
        'boot_id': str(uuid.uuid4()),
        'crashed': False,
    }


def cpuinfo(hardware):
    """/proc/cpuinfo as a PV dom0 on this hardware shows it (dom0's vCPUs)."""
    intel = hardware['vendor'] == 'GenuineIntel'
    flags = ('fpu de tsc msr pae mce cx8 apic sep mca cmov pat clflush mmx fxsr sse sse2 ht syscall nx '
             'mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid pni pclmulqdq '
             'ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm '
             'bmi1 avx2 bmi2 erms rdseed adx clflushopt sha_ni xsaveopt xsavec xgetbv1')
    flags += ' avx512f avx512dq avx512cd avx512bw avx512vl' if intel else ' cr8_legacy sse4a misalignsse 3dnowprefetch topoext'
    mhz = '%d.%03d' % (hardware['cpu_khz'] // 1000, hardware['cpu_khz'] % 1000)
    blocks = []
    for cpu in range(hardware['dom0_vcpus']):
        blocks.append('\n'.join([
            'processor\t: %d' % cpu,
            'vendor_id\t: %s' % hardware['vendor'],
            'cpu family\t: %d' % hardware['family'],
            'model\t\t: %d' % hardware['model'],
            'model name\t: %s' % hardware['model_name'],
            'stepping\t: %d' % hardware['stepping'],
            'microcode\t: %s' % hardware['microcode'],
            'cpu MHz\t\t: %s' % mhz,
            'cache size\t: 512 KB',
            'physical id\t: 0',
            'siblings\t: %d' % hardware['dom0_vcpus'],
            'core id\t\t: %d' % cpu,
            'cpu cores\t: %d' % hardware['dom0_vcpus'],
            'apicid\t\t: %d' % cpu,
            'initial apicid\t: %d' % cpu,
            'fpu\t\t: yes',
            'fpu_exception\t: yes',
            'cpuid level\t: 13',
            'wp\t\t: yes',
            'flags\t\t: %s' % flags,
            'bugs\t\t: %s' % ('spectre_v1 spectre_v2 spec_store_bypass swapgs' if intel else 'sysret_ss_attrs spectre_v1 spectre_v2 spec_store_bypass'),
            'bogomips\t: %d.00' % (hardware['cpu_khz'] * 2 // 1000),
            'clflush size\t: 64',
            'cache_alignment\t: 64',
            'address sizes\t: 46 bits physical, 48 bits virtual',
            'power management:',
        ]))
    return '\n\n'.join(blocks) + '\n\n'


DMI_FILES = ('sys_vendor', 'product_name', 'product_version', 'product_serial', 'product_uuid',
             'board_vendor', 'board_name', 'board_serial', 'bios_vendor', 'bios_version', 'bios_date',
             'chassis_vendor', 'chassis_type')


def dmi_files(hardware, hostname):
    """/sys/class/dmi/id/* contents for one host."""
    dmi = dict(hardware['dmi'])
    dmi.setdefault('product_serial', 'LAB-%s' % hostname.upper())
    dmi.setdefault('board_serial', 'LABB-%s' % hostname.upper())
    dmi.setdefault('product_uuid', str(uuid.uuid5(uuid.NAMESPACE_DNS, hostname + '.lab.noreboot.invalid')))
    dmi.setdefault('chassis_type', '23')
    return {name: '%s\n' % dmi.get(name, '') for name in DMI_FILES}


LAUNCHER = '''#!/usr/bin/python3 -S
# Generated by noreboot.xen tests/lab: the simulated Xen tools (see xensim.py in %(simdirs)r).
import os
import sys
sys.path[:0] = [d for d in %(simdirs)r if os.path.isfile(os.path.join(d, 'xensim.py'))][:1]
import xensim
sys.exit(xensim.main())
'''


def write_launcher(dest, simdirs=None):
    """Write the program that runs as xl / xen-livepatch / systemctl ... (dispatch on argv[0]).

    ``simdirs``: where to look for the simulator, first found wins (default: this directory).
    Lab hosts see the simulator at a fixed path of their own (labctl bind-mounts it), because
    the checkout may sit under /tmp or /root, which a lab host covers with its own tmpfs.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    with open(dest, 'w') as handle:
        handle.write(LAUNCHER % {'simdirs': list(simdirs or []) + [here]})
    os.chmod(dest, 0o755)
    return dest
