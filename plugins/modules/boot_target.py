#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: boot_target
short_description: Tell which Xen hypervisor the boot loader's default entry will boot
version_added: 1.0.0
description:
  - Reads C(/boot/grub/grub.cfg) (and C(grubenv) for C(saved_entry) / C(next_entry), and C(GRUB_DEFAULT) of
    C(/etc/default/grub) for information), finds the menu entry GRUB boots by default and the hypervisor file of
    its C(multiboot2) / C(multiboot) line, and reads that file's GNU build-id (the file is a gzip-compressed ELF
    image; the build-id note is the one C(xl info) reports once it runs).
  - With O(expected_build_ids), RV(matches) says whether the next boot will run one of them. The module never
    fails because they differ; the caller decides (the role
    R(noreboot.xen.reboot_fallback,ansible_collections.noreboot.xen.reboot_fallback_role) stops and reboots nothing).
  - Read-only. Only GRUB 2 configurations as C(grub-mkconfig) writes them are understood; EFI boots that start
    C(xen.efi) directly are not.
options:
  grub_cfg:
    description: The GRUB configuration.
    type: path
    default: /boot/grub/grub.cfg
  grubenv:
    description: The GRUB environment block; a missing file is fine.
    type: path
    default: /boot/grub/grubenv
  default_grub:
    description: C(/etc/default/grub), only read to report C(GRUB_DEFAULT); a missing file is fine.
    type: path
    default: /etc/default/grub
  boot_dir:
    description:
      - Where the file system GRUB reads the hypervisor from is mounted. A hypervisor path in grub.cfg that is not
        found as is (C(/xen-4.17-amd64.gz) on a separate boot partition) is looked up under it.
    type: path
    default: /boot
  expected_build_ids:
    description: Build-ids (hex) the default entry's hypervisor should have.
    type: list
    elements: str
    default: []
author:
  - noreboot.xen contributors (@noreboot)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
  idempotent:
    description: Read-only; running it again gives the same result.
    support: full
  platform:
    platforms: posix
    details: A Xen dom0 booted by GRUB 2.
seealso:
  - module: noreboot.xen.xen_facts
  - module: noreboot.xen.xen_guests
"""

EXAMPLES = r"""
- name: Check that the next boot runs the fixed hypervisor
  noreboot.xen.boot_target:
    expected_build_ids:
      - 151b373fd64b321593bf987fd923cd10dabadac4
  register: boot

- name: Stop when it does not
  ansible.builtin.assert:
    that: boot.matches
    fail_msg: "{{ boot.msg }}"
"""

RETURN = r"""
entry:
  description: The default menu entry.
  returned: always
  type: dict
  contains:
    title:
      description: Its title.
      type: str
    id:
      description: Its id (C(--id) / C($menuentry_id_option)), or null.
      type: str
    title_path:
      description: Titles of the submenus leading to it, then its own.
      type: list
      elements: str
    default:
      description: The value of GRUB's C(default) variable after grub.cfg's top-level statements (null when unset).
      type: str
    source:
      description: The grub.cfg line that set it.
      type: str
    next_entry:
      description: A one-time entry grubenv asks for (taken into account).
      type: str
    saved_entry:
      description: grubenv's C(saved_entry).
      type: str
    grub_default:
      description: C(GRUB_DEFAULT) of /etc/default/grub (informative; grub.cfg is what boots).
      type: str
    notes:
      description: How the entry was chosen when it was not plain (fallback to entry 0, one-time entry).
      type: list
      elements: str
  sample:
    title: Debian GNU/Linux, with Xen hypervisor
    id: xen-gnulinux-simple-1b2c
    title_path: [Debian GNU/Linux, with Xen hypervisor]
    default: Debian GNU/Linux, with Xen hypervisor
hypervisor:
  description: The default entry's hypervisor, or null when the entry does not boot Xen.
  returned: always
  type: dict
  contains:
    command:
      description: V(multiboot2) or V(multiboot).
      type: str
    path:
      description: The path as grub.cfg gives it.
      type: str
    file:
      description: The file read on this host (null when not found).
      type: str
    build_id:
      description: Its GNU build-id (null when unreadable).
      type: str
    error:
      description: Why the build-id could not be read.
      type: str
  sample:
    command: multiboot2
    path: /boot/xen-4.17-amd64.gz
    file: /boot/xen-4.17-amd64.gz
    build_id: 151b373fd64b321593bf987fd923cd10dabadac4
matches:
  description: Whether the hypervisor's build-id is one of O(expected_build_ids) (null when none were given).
  returned: always
  type: bool
msg:
  description: One sentence on what the next boot will run, and what to fix when it is not what was expected.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.noreboot.xen.plugins.module_utils.grub_default_entry import (
    GrubConfigError,
    default_boot,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xen_image_build_id import (
    ImageError,
    read_image_build_id,
)


def get_argument_spec():
    return dict(
        grub_cfg=dict(type='path', default='/boot/grub/grub.cfg'),
        grubenv=dict(type='path', default='/boot/grub/grubenv'),
        default_grub=dict(type='path', default='/etc/default/grub'),
        boot_dir=dict(type='path', default='/boot'),
        expected_build_ids=dict(type='list', elements='str', default=[]),
    )


def _read(path, required):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if required:
            raise GrubConfigError('cannot read %s (%s): is this host booted by GRUB 2? (fix: point grub_cfg at the '
                                  'GRUB configuration)' % (path, getattr(exc, 'strerror', None) or exc))
        return None


def hypervisor_file(path, boot_dir, exists=os.path.exists):
    """The file on this host for a grub.cfg path: as is, or under boot_dir (separate /boot)."""
    candidates = [path]
    if boot_dir and not path.startswith(boot_dir.rstrip('/') + '/'):
        candidates.append(os.path.join(boot_dir, path.lstrip('/')))
    for candidate in candidates:
        if exists(candidate):
            return candidate
    return None


def inspect_boot_target(params, read=_read, exists=os.path.exists, read_build_id=read_image_build_id):
    """The module's result for ``params`` (pure apart from the injected readers)."""
    expected = [b.strip().lower() for b in params['expected_build_ids'] if b and b.strip()]
    boot = default_boot(read(params['grub_cfg'], True), read(params['grubenv'], False),
                        read(params['default_grub'], False))
    hypervisor = boot.pop('hypervisor')
    entry = boot
    result = dict(changed=False, entry=entry, hypervisor=None, matches=None)
    if hypervisor is None:
        result['matches'] = False if expected else None
        result['msg'] = ('the default boot entry %r (%s) loads no multiboot kernel: the next boot does not start Xen '
                         '(fix: make the Xen entry the default, e.g. GRUB_DEFAULT and update-grub)'
                         % (entry['title'], entry['source'] or 'entry 0'))
        return result
    view = dict(command=hypervisor['command'], path=hypervisor['path'], args=hypervisor['args'],
                line=hypervisor['line'], modules=hypervisor['modules'], file=None, build_id=None, error=None)
    result['hypervisor'] = view
    found = hypervisor_file(hypervisor['path'], params['boot_dir'], exists)
    view['file'] = found
    if found is None:
        view['error'] = 'file not found'
    else:
        try:
            view['build_id'] = read_build_id(found)
        except ImageError as exc:
            view['error'] = str(exc)
    where = ('the default boot entry %r (grub.cfg line %d) boots %s'
             % (entry['title'], hypervisor['line'], hypervisor['path']))
    if view['build_id'] is None:
        result['matches'] = False if expected else None
        result['msg'] = '%s, whose build-id cannot be read: %s' % (where, view['error'])
        return result
    if not expected:
        result['msg'] = '%s, build-id %s' % (where, view['build_id'])
        return result
    result['matches'] = view['build_id'] in expected
    if result['matches']:
        result['msg'] = '%s, build-id %s: the expected hypervisor' % (where, view['build_id'])
    else:
        result['msg'] = ('%s, build-id %s, not the expected %s: a reboot now would not run the fixed hypervisor '
                         '(fix: check that the fixed package installed %s, run update-grub, and check GRUB_DEFAULT / '
                         'grubenv saved_entry)' % (where, view['build_id'], ' or '.join(expected), hypervisor['path']))
    return result


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    try:
        result = inspect_boot_target(module.params)
    except GrubConfigError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
