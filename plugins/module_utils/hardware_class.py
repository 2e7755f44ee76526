# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Describe a host's hardware for fleet planning (pure functions, no AnsibleModule).

A live patch is built per hypervisor build, but operators roll it out per hardware class
(a payload that misbehaves tends to do so on one CPU generation). The class is a stable id,
``<vendor>-<family>-<model>`` in decimal (``intel-6-85``, ``amd-23-49``), read from the
first processor of ``/proc/cpuinfo``; ``generation`` is a human name from a small table.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

CPUINFO_PATH = '/proc/cpuinfo'
DMI_DIR = '/sys/class/dmi/id'
DMI_FIELDS = ('sys_vendor', 'product_name', 'bios_vendor', 'bios_version', 'bios_date')

VENDORS = {
    'GenuineIntel': 'intel',
    'AuthenticAMD': 'amd',
    'HygonGenuine': 'hygon',
}

# (vendor, family, model) -> generation. ``None`` as model covers the whole family when no
# model entry matches. Server parts first; a few desktop parts seen in labs.
GENERATIONS = {
    ('intel', 6, 45): 'Sandy Bridge-EP',
    ('intel', 6, 62): 'Ivy Bridge-EP',
    ('intel', 6, 63): 'Haswell-EP',
    ('intel', 6, 79): 'Broadwell-EP',
    ('intel', 6, 86): 'Broadwell-DE',
    ('intel', 6, 85): 'Skylake-SP/Cascade Lake',
    ('intel', 6, 106): 'Ice Lake-SP',
    ('intel', 6, 108): 'Ice Lake-D',
    ('intel', 6, 143): 'Sapphire Rapids',
    ('intel', 6, 207): 'Emerald Rapids',
    ('intel', 6, 173): 'Granite Rapids',
    ('intel', 6, 175): 'Sierra Forest',
    ('intel', 6, 94): 'Skylake',
    ('intel', 6, 158): 'Kaby Lake/Coffee Lake',
    ('amd', 23, 1): 'Naples (Zen)',
    ('amd', 23, 49): 'Rome (Zen 2)',
    ('amd', 25, 1): 'Milan (Zen 3)',
    ('amd', 25, 17): 'Genoa (Zen 4)',
    ('amd', 25, 160): 'Bergamo (Zen 4c)',
    ('amd', 26, 2): 'Turin (Zen 5)',
    ('amd', 15, 107): 'QEMU virtual CPU (qemu64)',
    ('amd', 15, None): 'K8',
    ('hygon', 24, 0): 'Dhyana',
}


def parse_cpuinfo(text):
    """Return the ``key: value`` pairs of the first processor block of ``/proc/cpuinfo``."""
    first = {}
    for line in (text or '').splitlines():
        if not line.strip():
            if first:
                break
            continue
        if ':' not in line:
            continue
        key, value = line.split(':', 1)
        key = key.strip()
        if key == 'processor' and first:
            break
        first.setdefault(key, value.strip())
    return first


def _int(value):
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def normalize_vendor(vendor_id):
    """``GenuineIntel`` -> ``intel``, ``AuthenticAMD`` -> ``amd``, ``HygonGenuine`` -> ``hygon``;
    any other vendor string lowercased; None when missing."""
    if not vendor_id:
        return None
    return VENDORS.get(vendor_id, vendor_id.strip().lower())


def hardware_class(vendor, family, model):
    """The stable class id ``<vendor>-<family>-<model>`` (decimal), or None if a part is unknown."""
    if vendor is None or family is None or model is None:
        return None
    return '%s-%d-%d' % (vendor, family, model)


def generation(vendor, family, model):
    """The generation name from GENERATIONS, or None when the table does not know the part."""
    if vendor is None or family is None:
        return None
    return GENERATIONS.get((vendor, family, model), GENERATIONS.get((vendor, family, None)))


def read_dmi(read_file, dmi_dir=DMI_DIR):
    """Read the DMI fields with ``read_file(path) -> str or None``; missing or empty -> None."""
    dmi = {}
    for field in DMI_FIELDS:
        value = read_file('%s/%s' % (dmi_dir, field))
        value = value.strip() if value is not None else None
        dmi[field] = value or None
    return dmi


def describe_hardware(cpuinfo_text, dmi):
    """Assemble the ``hardware`` facts from ``/proc/cpuinfo`` text (or None) and a DMI dict."""
    cpu = parse_cpuinfo(cpuinfo_text)
    vendor = normalize_vendor(cpu.get('vendor_id'))
    family = _int(cpu.get('cpu family'))
    model = _int(cpu.get('model'))
    microcode = cpu.get('microcode') or None
    return {
        'vendor': vendor,
        'family': family,
        'model': model,
        'stepping': _int(cpu.get('stepping')),
        'model_name': cpu.get('model name') or None,
        'microcode': microcode,
        'class': hardware_class(vendor, family, model),
        'generation': generation(vendor, family, model),
        'dmi': dict(dmi),
    }
