# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet spec (tests/lab/fleets/*.yml) read and expanded into hosts, and the Ansible
inventory written for them.
"""

import os
import sys

import lab_model
from labctl_instance import LAB_ROOT, NS_PREFIX, OVERLAYS, LabError


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
