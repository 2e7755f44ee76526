#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xen_guests
short_description: Move the guests of a Xen dom0 out of the way of a reboot, and bring them back
version_added: 1.0.0
description:
  - O(action=evacuate) reads C(xl list), chooses per guest what to do by O(policy) (and O(overrides)),
    checks every precondition for every guest before touching any (the peer's free memory for
    V(migrate), free space for V(save), a config file for V(shutdown); V(refuse) stops when any guest runs),
    writes a manifest (C(<state_dir>/guests.json)) that lists each guest with its action and its save file,
    peer or config file, and only then acts, guest by guest, updating the manifest after each.
  - O(action=restore) brings back every guest the manifest lists, with C(xl restore FILE) or C(xl create CONFIG);
    guests that already run are left alone, migrated guests are reported as running on the peer. It fails, naming
    each guest and where it is, when a guest does not run afterwards.
  - A save image is removed (O(remove_save_files)) only once its guest has been seen running (not crashed or dying)
    in C(xl list) a few seconds after the restore; a guest that dies on resume keeps its image, the manifest says
    V(saved) again and the error names the file.
  - Automatic actors at boot are handled on purpose. C(/etc/default/xendomains) (or C(/etc/sysconfig/xendomains))
    is read; with C(XENDOMAINS_RESTORE=true) and C(XENDOMAINS_SAVE) equal to O(save_dir), O(action=evacuate) fails
    before anything moves. Every autostart entry (in C(XENDOMAINS_AUTO), default C(/etc/xen/auto); xendomains
    starts all of them, a backup copy such as C(web.cfg~) too) that names a guest that is saved or migrated is
    held over the reboot (renamed beside itself to C(.NAME.noreboot-xen-held), which xendomains does not start)
    and recorded in the manifest (lists C(autostart) and C(autostart_held)); O(action=restore) puts them back once
    the guest itself runs here again (a migrated guest's entries stay held, the guest runs on the peer).
  - A saved guest that O(action=restore) finds already running was started cold after the boot (by xendomains,
    C(/etc/xen/auto) or a person), so its memory image was not used. It is reported as a conflict (state
    V(conflict), RV(conflicts)), the image is kept (and its autostart entries stay held) and the restore fails,
    naming both ways out and who started the guest (the host's autostart entry that names it, or that none does).
  - O(action=verify_evacuated), right before the reboot, lists the domains again and fails naming every guest that
    runs here (a guest created after the evacuation is not in the manifest); it changes nothing.
  - O(action=status) only reads C(xl info) and C(xl list) (free memory and running guests), for example on a
    migration peer.
  - A manifest whose guests were not all brought back is never overwritten; a later O(action=evacuate) keeps its
    entries.
  - Commands are run as argv lists with C(LC_ALL=C). Guests are never destroyed or forced off.
  - A guest whose name is not a plain Xen domain name (letters, digits, C(_ - . :), no C(/) or C(..), at most
    64 characters), or a O(peer) that is not a host name or IP address, makes O(action=evacuate) fail before anything
    is written or moved. Save images are only ever C(<save_dir>/<name>.save); O(action=restore) reads and removes no
    other file.
options:
  action:
    description: What to do.
    type: str
    choices: [evacuate, restore, status, verify_evacuated]
    required: true
  policy:
    description:
      - What O(action=evacuate) does with each guest. V(migrate) runs C(xl migrate DOMAIN PEER) to O(peer),
        V(save) runs C(xl save DOMAIN FILE) into O(save_dir) (a save that fails while the guest still runs,
        for example a guest slow to acknowledge the suspend request, is tried once more after 10 seconds),
        V(shutdown) runs C(xl shutdown DOMAIN) and waits up to O(shutdown_timeout) seconds, V(refuse) evacuates
        nothing and fails when any guest runs.
    type: str
    choices: [migrate, save, shutdown, refuse]
    default: save
  overrides:
    description: Per guest name, a policy that replaces O(policy) for that guest.
    type: dict
    default: {}
  peer:
    description: The dom0 guests migrate to (as C(xl migrate) reaches it over SSH), a host name or an IP address.
    type: str
  peer_free_memory_mib:
    description: The peer's C(xl info) free_memory (MiB), read there beforehand (O(action=status) on the peer).
    type: int
  save_dir:
    description:
      - Where save images go. Default C(<state_dir>/saved-guests).
      - For O(action=restore), the directory the manifest's save files must be in; default the one the manifest
        records.
    type: path
  config_dir:
    description: Where guest config files are looked up (C(NAME.cfg), then C(NAME)) for V(shutdown).
    type: path
    default: /etc/xen
  config_paths:
    description: Config file per guest name, when not found under O(config_dir).
    type: dict
    default: {}
  shutdown_timeout:
    description: Seconds to wait for a guest to shut down cleanly before giving up (the guest is left running).
    type: int
    default: 300
  remove_save_files:
    description: Remove a save image once its guest has been restored from it.
    type: bool
    default: true
  run_id:
    description: Id of the run, recorded in the manifest.
    type: str
    default: ''
  host:
    description: Name of this host, recorded in the manifest and used in messages.
    type: str
author:
  - noreboot.xen contributors (@noreboot)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - noreboot.xen.state_dir
attributes:
  check_mode:
    support: full
    details: Reads the guests, checks every precondition and returns the manifest it would write; runs no xl command
      that changes anything and writes no file.
  diff_mode:
    support: none
  idempotent:
    description: Evacuating a host without guests, or restoring guests that all run, changes nothing.
    support: full
  platform:
    platforms: posix
    details: A Xen dom0 with C(xl), run as root.
requirements:
  - C(xl) on the dom0.
seealso:
  - module: noreboot.xen.boot_target
  - module: noreboot.xen.xen_facts
"""

EXAMPLES = r"""
- name: Save every guest to local disk before a reboot
  noreboot.xen.xen_guests:
    action: evacuate
    policy: save
    run_id: "{{ run_id }}"
    host: "{{ inventory_hostname }}"

- name: Read a migration peer's free memory
  noreboot.xen.xen_guests:
    action: status
  delegate_to: xen-b.example.org
  register: peer

- name: Migrate the guests to the peer
  noreboot.xen.xen_guests:
    action: evacuate
    policy: migrate
    peer: xen-b.example.org
    peer_free_memory_mib: "{{ peer.free_memory_mib }}"

- name: Bring every guest back after the reboot
  noreboot.xen.xen_guests:
    action: restore
"""

RETURN = r"""
manifest:
  description: The manifest as written (or, in check mode, as it would be written); null when there is none.
  returned: action is evacuate, restore or verify_evacuated
  type: dict
  sample:
    schema: 1
    host: xen-a
    run_id: 20261127T230000Z-1a2b
    policy: save
    status: evacuated
    guests:
      - {name: web1, domid: 3, memory_mib: 512, vcpus: 1, action: save, state: saved,
         file: /var/lib/noreboot-xen/saved-guests/web1.save, peer: null, config: null, error: null}
manifest_path:
  description: Path of the manifest.
  returned: action is evacuate or restore
  type: str
guests:
  description: The manifest's guests (evacuate, restore), or the running guests (status).
  returned: always
  type: list
  elements: dict
free_memory_mib:
  description: C(xl info) free_memory of this host.
  returned: action is status
  type: int
actions:
  description: The xl commands that changed something, in order.
  returned: always
  type: list
  elements: str
conflicts:
  description: Saved guests found started cold at restore (their memory image unused and kept).
  returned: failed restore
  type: list
  elements: str
unexpected:
  description: Guests running right before the reboot that the manifest does not list (created after the evacuation).
  returned: failed verify_evacuated
  type: list
  elements: str
missing:
  description: Guests not running again after restore, each with where it is.
  returned: failed restore
  type: list
  elements: str
outcome:
  description: V(refused) when O(policy=refuse) (or an override) kept a running guest from being evacuated.
  returned: when refused
  type: str
commands:
  description: Every command run, with argv and rc.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import (
    POLICIES,
    EvacuationError,
    GuestEvacuation,
    free_memory_mib,
    running_guests,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import (
    ToolNotFound,
    XlRunner,
    module_command_function,
)


def get_argument_spec():
    return dict(
        action=dict(type='str', required=True, choices=['evacuate', 'restore', 'status', 'verify_evacuated']),
        policy=dict(type='str', default='save', choices=list(POLICIES)),
        overrides=dict(type='dict', default={}),
        peer=dict(type='str'),
        peer_free_memory_mib=dict(type='int'),
        save_dir=dict(type='path'),
        config_dir=dict(type='path', default='/etc/xen'),
        config_paths=dict(type='dict', default={}),
        shutdown_timeout=dict(type='int', default=300),
        remove_save_files=dict(type='bool', default=True),
        state_dir=dict(type='path', default='/var/lib/noreboot-xen'),
        run_id=dict(type='str', default=''),
        host=dict(type='str'),
    )


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    params = module.params
    history = []
    try:
        xl = XlRunner(module_command_function(module), module.get_bin_path('xl'), history=history)
    except ToolNotFound as exc:
        module.fail_json(msg=exc.msg, changed=False)

    def commands():
        return [dict(argv=c.argv, rc=c.rc) for c in history]

    if params['action'] == 'status':
        try:
            free = free_memory_mib(xl)
            guests = running_guests(xl)
        except EvacuationError as exc:
            module.fail_json(msg=exc.msg, changed=False, commands=commands(), **exc.fields)
        module.exit_json(changed=False, free_memory_mib=free, guests=[guests[n] for n in sorted(guests)],
                         actions=[], commands=commands())
    evacuation = GuestEvacuation(
        xl, state_dir=params['state_dir'], run_id=params['run_id'], host=params['host'], policy=params['policy'],
        overrides=params['overrides'], peer=params['peer'], peer_free_memory_mib=params['peer_free_memory_mib'],
        save_dir=params['save_dir'], config_dir=params['config_dir'], config_paths=params['config_paths'],
        shutdown_timeout=params['shutdown_timeout'], remove_save_files=params['remove_save_files'],
        check_mode=module.check_mode)
    try:
        if params['action'] == 'evacuate':
            result = evacuation.evacuate()
        elif params['action'] == 'verify_evacuated':
            result = evacuation.verify_evacuated()
        else:
            result = evacuation.restore()
    except EvacuationError as exc:
        fields = dict(exc.fields)
        if 'manifest' not in fields and not module.check_mode:
            try:
                fields['manifest'] = evacuation.read_manifest()
            except EvacuationError:
                fields['manifest'] = None
        module.fail_json(msg=exc.msg, changed=evacuation.changed, actions=evacuation.actions, commands=commands(),
                         manifest_path=evacuation.manifest_path, **fields)
    module.exit_json(commands=commands(), **result)


if __name__ == '__main__':
    main()
