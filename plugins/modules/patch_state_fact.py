#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: patch_state_fact
version_added: 1.1.0
short_description: Record a Xen host's patch state as the local fact noreboot_xen
description:
  - Reads the host's running hypervisor (C(xl info)), its live patch payloads (C(xen-livepatch list)) and the
    rollout ledger (C(<state_dir>/ledger.jsonl)), and writes C(/etc/ansible/facts.d/noreboot_xen.fact) (JSON), so that C(ansible_local.noreboot_xen)
    in any later play, AWX's fact cache and other tools see the host's state without this collection's modules.
  - The fact holds the effective version (booted version plus the applied payloads), the running build-id, the
    applied payloads grouped by advisory (name and sha256 from the ledger), and C(last_run) (id, outcome, kind),
    the run that last changed the host. A run whose outcome is not V(patched) or V(rebooted) keeps the previous
    C(last_run), so a rerun that changes nothing leaves the file as it is.
  - The file is written through a temporary file in the same directory and a rename (never torn).
  - The rolling playbooks call it after a host is patched, found already patched, or rebooted.
options:
  outcome:
    description: The host's outcome in this run (V(patched), V(already_patched), V(rebooted)...).
    type: str
    required: true
  kind:
    description: What the run did to the host.
    type: str
    choices: [livepatch, reboot_fallback]
    default: livepatch
  path:
    description: Where the fact file goes (its name, without C(.fact), is the key under C(ansible_local)).
    type: path
    default: /etc/ansible/facts.d/noreboot_xen.fact
extends_documentation_fragment:
  - noreboot.xen.run_id
  - noreboot.xen.state_dir
attributes:
  check_mode:
    description: Reads the host and returns the document, writes nothing.
    support: full
  diff_mode:
    description: Returns the file before and after.
    support: full
  idempotent:
    description: A second call with the same state writes nothing (C(changed) compares the file's text).
    support: full
author:
  - noreboot.xen developers (@noreboot)
"""

EXAMPLES = r"""
- name: Record the patch state after a live patch
  noreboot.xen.patch_state_fact:
    run_id: "{{ run_id }}"
    outcome: patched

- name: Read it in a later play
  ansible.builtin.debug:
    msg: "{{ ansible_local.noreboot_xen.effective_version }}"
"""

RETURN = r"""
fact:
  description: The document written (or, in check mode, that would be written).
  returned: always
  type: dict
  sample: {"schema": 1, "present": true, "hypervisor_version": "4.17.5", "build_id": "39a640e6...",
           "effective_version": "4.17.5+lab_xsa_fix_4_17_5",
           "applied_payloads": {"LAB-XSA-1": [{"name": "lab_xsa_fix_4_17_5", "sha256": "9f86d081..."}]},
           "last_run": {"id": "20261201T101500Z-1a2b", "outcome": "patched", "kind": "livepatch"}}
path:
  description: The fact file.
  returned: always
  type: str
  sample: /etc/ansible/facts.d/noreboot_xen.fact
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.noreboot.xen.plugins.module_utils.local_patch_fact import FACT_PATH, record_patch_state
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import (
    LivepatchRunner,
    XlRunner,
    module_command_function,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import STATE_DIR, runner_or_none


def get_argument_spec():
    return dict(
        run_id=dict(type='str', required=True),
        outcome=dict(type='str', required=True),
        kind=dict(type='str', choices=['livepatch', 'reboot_fallback'], default='livepatch'),
        path=dict(type='path', default=FACT_PATH),
        state_dir=dict(type='path', default=STATE_DIR),
    )


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    params = module.params
    run = module_command_function(module)
    xl = runner_or_none(XlRunner, run, module.get_bin_path('xl'))
    livepatch = runner_or_none(LivepatchRunner, run, module.get_bin_path('xen-livepatch'))
    try:
        written = record_patch_state(xl, livepatch, params['state_dir'], params['run_id'], params['outcome'],
                                     params['kind'], path=params['path'], check_mode=module.check_mode,
                                     warn=module.warn)
    except (IOError, OSError) as exc:
        module.fail_json(msg='could not write %s: %s' % (params['path'], exc), path=params['path'])
    module.exit_json(changed=written['changed'], fact=written['fact'], path=params['path'],
                     diff=dict(before=written['before'], after=written['after'], before_header=params['path'],
                               after_header=params['path']))


if __name__ == '__main__':
    main()
