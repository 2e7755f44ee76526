#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: livepatch
short_description: Manage one Xen hypervisor live patch payload with xen-livepatch
version_added: 1.0.0
description:
  - Uploads, applies, reverts, replaces and unloads one Xen livepatch payload on one host with C(xen-livepatch),
    without rebooting it.
  - A payload runs with full hypervisor privilege and fits exactly one hypervisor build. Before the hypervisor sees
    the file, the module checks on the host that its SHA-256 equals O(checksum), that it is an ELF64 x86-64
    relocatable object carrying the build-id notes Xen requires, and that its C(.livepatch.xen_depends) build-id
    equals the running hypervisor's C(build_id) (from C(xl info)). A payload built for another hypervisor build is
    refused and never uploaded.
  - The module also refuses, before upload, an apply or replace the hypervisor is known to refuse because of the
    payload's C(.livepatch.depends) (Xen checks it against the hypervisor build-id for V(replace) and for an apply
    when nothing is applied, else against the payload applied last). O(nodeps) skips this check for apply.
  - Whether anything changed is decided from the parsed C(xen-livepatch list) before and after, never from the
    tool's wording.
  - Commands that exit with status 2 (the hypervisor is busy with another operation, or could not quiesce the CPUs
    within 30 ms) are retried O(retries) times, waiting O(delay) seconds and doubling the wait after each attempt.
  - After a failure the host is left as found where possible; a payload this run uploaded and could not apply is
    unloaded again, and RV(cleanup) says how that went.
author:
  - noreboot.xen contributors (@noreboot)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - noreboot.xen.command_retries
  - noreboot.xen.payload_name
attributes:
  check_mode:
    support: full
    details: Runs only C(xl info) and C(xen-livepatch list) and predicts the payload table.
  diff_mode:
    support: full
    details: The payload table (as C(xen-livepatch list) prints it) before and after.
  idempotent:
    description: Running the task again with the same options changes nothing and reports no change.
    support: full
  platform:
    platforms: posix
    details: A Xen dom0 (x86-64) with C(xen-livepatch) and C(xl), run as root.
options:
  src:
    description:
      - Path of the payload file on the managed host (copy it there first, for example with M(ansible.builtin.copy)).
      - Required unless O(state=absent); ignored with O(state=absent).
    type: path
  checksum:
    description:
      - SHA-256 of the payload file, 64 hex digits, optionally prefixed with C(sha256:).
      - The file is refused, and nothing is run, when its SHA-256 differs.
      - Required unless O(state=absent).
    type: str
  state:
    description:
      - V(applied) uploads the payload if needed and applies it.
      - V(checked) uploads the payload if needed and leaves it, or reverts it to, not applied.
      - V(absent) reverts the payload if it is applied, then unloads it.
    type: str
    choices: [applied, checked, absent]
    default: applied
  replace:
    description:
      - With O(state=applied), make this payload the only applied one in one hypervisor operation
        (C(xen-livepatch replace NAME)); the others stay loaded in CHECKED state.
      - When the payload is already applied together with others the module fails rather than revert them one by
        one.
    type: bool
    default: false
  nodeps:
    description:
      - Pass C(--nodeps) to C(xen-livepatch apply) so the hypervisor does not check C(.livepatch.depends) against
        the payload below it (the hypervisor build-id is still checked). Cannot be combined with O(replace).
    type: bool
    default: false
notes:
  - C(xen-livepatch list) shows no build-ids. When the payload's name is already loaded, the module compares the
    metadata the hypervisor shows with the payload's C(.modinfo); RV(identity) says what the comparison could use.
seealso:
  - name: Xen live patching design (docs/misc/livepatch.pandoc)
    description: Payload format, states and the build-id checks the hypervisor makes.
    link: https://xenbits.xen.org/docs/unstable/misc/livepatch.html
"""

EXAMPLES = r"""
- name: Copy the payload built for this host's hypervisor
  ansible.builtin.copy:
    src: "payloads/{{ xen_build_id }}/xsa-999.livepatch"
    dest: /var/lib/noreboot-xen/xsa-999.livepatch
    mode: "0600"

- name: Apply the XSA-999 live patch
  noreboot.xen.livepatch:
    name: xsa-999
    src: /var/lib/noreboot-xen/xsa-999.livepatch
    checksum: sha256:9f2c54a4b0e0c1bd4c6f0a4fcd3a0d4a6ad0a0d8c1c8b0b5a0f5e9d7c3b2a190
    state: applied

- name: Make the cumulative patch the only applied one
  noreboot.xen.livepatch:
    name: cumulative-2026-11
    src: /var/lib/noreboot-xen/cumulative-2026-11.livepatch
    checksum: "{{ cumulative_sha256 }}"
    replace: true
    retries: 10
    delay: 0.5

- name: Upload only (apply later, in the maintenance window)
  noreboot.xen.livepatch:
    name: xsa-999
    src: /var/lib/noreboot-xen/xsa-999.livepatch
    checksum: "{{ xsa_999_sha256 }}"
    state: checked

- name: Revert and unload it
  noreboot.xen.livepatch:
    name: xsa-999
    state: absent
"""

RETURN = r"""
name:
  description: The payload name.
  returned: always
  type: str
  sample: xen_hello_world
state:
  description: The state asked for.
  returned: always
  type: str
  sample: applied
payload:
  description: What the module read from O(src) (null with O(state=absent)).
  returned: when O(src) was read
  type: dict
  contains:
    name:
      description: The payload name.
      type: str
    path:
      description: The file on the host.
      type: str
    sha256:
      description: SHA-256 of the file.
      type: str
    size:
      description: Size of the file in bytes.
      type: int
    build_id:
      description: The payload's own build-id (C(.note.gnu.build-id)).
      type: str
    xen_depends:
      description: Build-id of the hypervisor it was built for (C(.livepatch.xen_depends)).
      type: str
    depends:
      description: Build-id of what it stacks on (C(.livepatch.depends)).
      type: str
    metadata:
      description: Strings of its C(.modinfo) section, as C(xen-livepatch list) shows them.
      type: list
      elements: str
    sections:
      description: Section names in header order.
      type: list
      elements: str
    writable_sections:
      description:
        - Allocated, writable, non-empty sections. Xen applies a reverted payload again only when
          C(.livepatch.funcs) is its one writable section.
      type: list
      elements: str
  sample:
    name: xen_hello_world
    path: /var/lib/noreboot-xen/xen_hello_world.livepatch
    sha256: 8362c60a6f02823d4e1f08ba3aaaad3ba5f6fc9ba6119f15939fb9c71a479924
    build_id: 6ebb7840084194ef1ac5af1496a03a862370e829
    xen_depends: 39a640e6f1412319235087391df9f1c5e13ae920
    depends: 39a640e6f1412319235087391df9f1c5e13ae920
hypervisor_build_id:
  description: The running hypervisor's build_id from C(xl info) (null with O(state=absent)).
  returned: always
  type: str
  sample: 39a640e6f1412319235087391df9f1c5e13ae920
payloads_before:
  description: The parsed C(xen-livepatch list) before the run.
  returned: when the list could be read
  type: list
  elements: dict
  contains:
    name:
      description: Payload name.
      type: str
    state:
      description: C(CHECKED), C(APPLIED) or C(unknown).
      type: str
    error:
      description: The error of the payload's last operation (C(errno), C(text)), or null.
      type: dict
    metadata:
      description: The metadata column (null before Xen 4.14).
      type: str
  sample:
    - name: xen_hello_world
      state: APPLIED
      error: null
      metadata: LIVEPATCH_RULEZ
payloads_after:
  description: The parsed C(xen-livepatch list) after the run (in check mode, the predicted one).
  returned: when the list could be read
  type: list
  elements: dict
  sample: []
actions:
  description: The operations the run performed (in check mode, would perform), in order.
  returned: always
  type: list
  elements: str
  sample: [upload, apply]
identity:
  description:
    - How a payload already loaded under O(name) was matched to O(src), V(metadata) (the metadata column matches
      the payload's C(.modinfo)) or V(name) (nothing else to compare); null when it was not loaded.
  returned: always
  type: str
  sample: metadata
commands:
  description: Every command run, in order, with its exit status and how many attempts it took.
  returned: always
  type: list
  elements: dict
  sample:
    - argv: [/usr/sbin/xl, info]
      rc: 0
      attempts: 1
    - argv: [/usr/sbin/xen-livepatch, apply, xen_hello_world]
      rc: 0
      attempts: 2
cleanup:
  description:
    - What the module did to leave the host as found after a failure (unloading a payload it uploaded and could
      not apply), or null. Keys C(action), C(name), C(done), C(rc), C(msg).
  returned: always
  type: dict
  sample:
    action: unload
    name: xsa-999
    done: true
    rc: 0
    msg: "unloaded xsa-999 again: this run uploaded it and could not apply it"
cmd:
  description: On failure, the argv of the failing command.
  returned: failure caused by a command
  type: list
  elements: str
  sample: [/usr/sbin/xen-livepatch, revert, xen_hello_world]
rc:
  description: On failure, the failing command's exit status.
  returned: failure caused by a command
  type: int
  sample: 2
stdout:
  description: On failure, the failing command's standard output.
  returned: failure caused by a command
  type: str
  sample: "Reverting xen_hello_world... failed\n"
stderr:
  description: On failure, the failing command's standard error.
  returned: failure caused by a command
  type: str
  sample: "Error 16: Device or resource busy\n"
hypervisor_log:
  description: On a failure the hypervisor explains in its log, the C(xl dmesg) lines about the payload.
  returned: failure with Error 22
  type: list
  elements: str
  sample: ["(XEN) livepatch: xsa-999: check against hypervisor build-id failed"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_lifecycle import (
    LivepatchFailure,
    LivepatchLifecycle,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import (
    LivepatchRunner,
    ToolNotFound,
    XlRunner,
    module_command_function,
)


def get_argument_spec():
    return dict(
        name=dict(type='str', required=True),
        src=dict(type='path'),
        checksum=dict(type='str'),
        state=dict(type='str', default='applied', choices=['applied', 'checked', 'absent']),
        replace=dict(type='bool', default=False),
        nodeps=dict(type='bool', default=False),
        retries=dict(type='int', default=5),
        delay=dict(type='float', default=1.0),
    )


def main():
    module = AnsibleModule(
        argument_spec=get_argument_spec(),
        required_if=[('state', 'applied', ('src', 'checksum')), ('state', 'checked', ('src', 'checksum'))],
        supports_check_mode=True,
    )
    params = module.params
    if params['replace'] and params['nodeps']:
        module.fail_json(msg='replace and nodeps cannot be combined: xen-livepatch replace takes no --nodeps')
    if params['retries'] < 0 or params['delay'] < 0:
        module.fail_json(msg='retries and delay must not be negative')
    history = []
    run = module_command_function(module)
    try:
        livepatch = LivepatchRunner(run, module.get_bin_path('xen-livepatch'), history=history)
        xl = XlRunner(run, module.get_bin_path('xl'), history=history) if params['state'] != 'absent' else None
    except ToolNotFound as exc:
        module.fail_json(msg=exc.msg, changed=False)
    lifecycle = LivepatchLifecycle(
        livepatch, xl, name=params['name'], state=params['state'],
        src=params['src'] if params['state'] != 'absent' else None, checksum=params['checksum'],
        replace=params['replace'], nodeps=params['nodeps'], retries=params['retries'], delay=params['delay'],
        check_mode=module.check_mode)
    try:
        result = lifecycle.run()
    except LivepatchFailure as exc:
        module.fail_json(**exc.as_result())
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
