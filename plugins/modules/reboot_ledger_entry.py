#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: reboot_ledger_entry
version_added: 1.1.0
short_description: Record a reboot fallback intent or outcome in a Xen host's rollout ledger
description:
  - Appends one entry of kind V(reboot_fallback) to the host's rollout ledger C(<state_dir>/ledger.jsonl), with the
    writer M(noreboot.xen.livepatch_rollout) uses for its own entries (one JSON object a line, the line made durable
    with fsync, a line torn by a crash closed first).
  - V(intent) is written before the host is rebooted, V(outcome) when the role C(noreboot.xen.reboot_fallback) ends;
    an intent no outcome followed tells the next plan that a run died mid reboot (the host is sent to C(finish_reboot)).
  - The entry has C(name) and C(sha256) null (it is about no payload). An entry equal to the ledger's last reboot
    fallback entry but for its time is not written again (C(changed=false)).
  - Creates the state directory (mode 0700) when it is missing.
options:
  event:
    description: What is recorded.
    type: str
    choices: [intent, outcome]
    required: true
  run_id:
    description: The run id.
    type: str
    required: true
  outcome:
    description: The host's outcome (V(rebooted), V(failed), V(guests_not_restored)...). Required with O(event=outcome),
      not allowed with O(event=intent).
    type: str
  advisories:
    description: The names of the advisories the reboot fixes; the entry's C(advisory) is them joined with commas.
    type: list
    elements: str
    default: []
  hypervisor_build_id:
    description: The hypervisor build-id running (for an intent, before the reboot; for an outcome, after it).
    type: str
  previous_build_id:
    description: For an outcome, the build-id that ran before the reboot.
    type: str
  fixed_build_ids:
    description: For an intent, the build-ids the advisory declares fixed.
    type: list
    elements: str
    default: []
  rebooted:
    description: For an outcome, whether the host was rebooted.
    type: bool
    default: false
  resumed_run_id:
    description: For an outcome that finishes an earlier run's reboot, that run's id (recorded as C(resumed_run_id)).
    type: str
  guests:
    description: The names of the host's guests the run moved (or would move).
    type: list
    elements: str
    default: []
  msg:
    description: For an outcome, what failed (empty when nothing did).
    type: str
    default: ''
extends_documentation_fragment:
  - noreboot.xen.state_dir
attributes:
  check_mode:
    description: Reads the ledger and returns the entry it would append, writes nothing.
    support: full
  diff_mode:
    description: Returns the appended line as the diff's after.
    support: full
  idempotent:
    description: A repeated call with the same values finds its entry last in the ledger and writes nothing.
    support: full
seealso:
  - module: noreboot.xen.livepatch_rollout
  - module: noreboot.xen.xen_facts
author:
  - noreboot.xen developers (@noreboot)
"""

EXAMPLES = r"""
- name: Record the intent to reboot
  noreboot.xen.reboot_ledger_entry:
    event: intent
    run_id: "{{ run_id }}"
    advisories: [XSA-999]
    hypervisor_build_id: "{{ ansible_facts.xen.hypervisor.build_id }}"
    fixed_build_ids: [151b373fd64b321593bf987fd923cd10dabadac4]
    guests: [web, db]

- name: Record the outcome
  noreboot.xen.reboot_ledger_entry:
    event: outcome
    run_id: "{{ run_id }}"
    outcome: rebooted
    rebooted: true
    hypervisor_build_id: 151b373fd64b321593bf987fd923cd10dabadac4
    guests: [web, db]
"""

RETURN = r"""
entry:
  description: The entry appended (in check mode, that would be appended; when it was already recorded, the ledger's).
  returned: always
  type: dict
  sample: {"event": "outcome", "kind": "reboot_fallback", "run_id": "20261201T101500Z-1a2b",
           "time": "2026-12-01T10:31:02Z", "name": null, "sha256": null, "outcome": "rebooted",
           "advisory": "XSA-999", "hypervisor_build_id": "151b373f...", "previous_build_id": "39a640e6...",
           "rebooted": true, "guests": ["web", "db"], "msg": ""}
path:
  description: The ledger.
  returned: always
  type: str
  sample: /var/lib/noreboot-xen/ledger.jsonl
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.noreboot.xen.plugins.module_utils.reboot_ledger_entry import (
    already_recorded,
    last_reboot_entry,
    reboot_entry,
)
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_run_id import run_id_problem
# The one ledger writer, livepatch_rollout's (Ledger.append), and its time format.
from ansible_collections.noreboot.xen.plugins.module_utils.host_state_files import TransactionError, utc_iso
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_ledger import Ledger


def get_argument_spec():
    return dict(
        event=dict(type='str', choices=['intent', 'outcome'], required=True),
        run_id=dict(type='str', required=True),
        outcome=dict(type='str'),
        advisories=dict(type='list', elements='str', default=[]),
        hypervisor_build_id=dict(type='str'),
        previous_build_id=dict(type='str'),
        fixed_build_ids=dict(type='list', elements='str', default=[]),
        rebooted=dict(type='bool', default=False),
        resumed_run_id=dict(type='str'),
        guests=dict(type='list', elements='str', default=[]),
        msg=dict(type='str', default=''),
        state_dir=dict(type='path', default='/var/lib/noreboot-xen'),
    )


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    params = module.params
    ledger = Ledger(params['state_dir'])
    problem = run_id_problem(params['run_id'])
    if problem:
        module.fail_json(msg='%s; nothing was recorded' % problem, path=ledger.path)
    try:
        entry = reboot_entry(params['event'], params['run_id'], utc_iso(time.time()), outcome=params['outcome'],
                             advisories=params['advisories'], hypervisor_build_id=params['hypervisor_build_id'],
                             previous_build_id=params['previous_build_id'],
                             fixed_build_ids=params['fixed_build_ids'], rebooted=params['rebooted'],
                             resumed_run_id=params['resumed_run_id'], guests=params['guests'], msg=params['msg'])
    except ValueError as exc:
        module.fail_json(msg='%s; nothing was recorded' % exc, path=ledger.path)
    entries = ledger.entries()
    if already_recorded(entries, entry):
        module.exit_json(changed=False, entry=last_reboot_entry(entries), path=ledger.path)
    if not module.check_mode:
        try:
            if not os.path.isdir(params['state_dir']):
                os.makedirs(params['state_dir'], 0o700)
            ledger.append(entry)
        except OSError as exc:
            module.fail_json(msg='cannot create the state directory %s: %s; nothing was recorded'
                             % (params['state_dir'], exc.strerror or exc), path=ledger.path, entry=entry)
        except TransactionError as exc:
            module.fail_json(msg=exc.msg, path=ledger.path, entry=entry)
    module.exit_json(changed=True, entry=entry, path=ledger.path,
                     diff=dict(before='', after=json.dumps(entry, sort_keys=True) + '\n',
                               before_header=ledger.path, after_header='%s (appended)' % ledger.path))


if __name__ == '__main__':
    main()
