#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: livepatch_rollout
short_description: Apply one Xen live patch payload to a host as a guarded transaction
version_added: 1.0.0
description:
  - One host's part of a rolling live patch, in one module call, so a rollout costs a single round trip per host.
  - "With O(payload_src) (a file on the controller), the action plugin opens it without following a symlink, refuses
    a file others can write, checks its SHA-256 against O(checksum) on the controller, and sends those exact bytes
    in the module's arguments (O(content)): no staging copy, no second round trip. The module checks the SHA-256
    again on the host, under the lock, before anything reaches Xen."
  - "O(local_fact) writes the host's local fact C(/etc/ansible/facts.d/noreboot_xen.fact) (as
    M(noreboot.xen.patch_state_fact) does) in the same execution, after an outcome V(patched) or V(already_patched)."
  - Takes the host's lock (C(<state_dir>/rollout.lock)), reads the payload table and the ledger
    (C(<state_dir>/ledger.jsonl)), verifies the staged payload (SHA-256, payload build-id, built for the running
    hypervisor build-id), takes a health baseline, records an intent in the ledger, applies the payload with
    retries on exit status 2, waits O(soak_seconds), runs the health checks, reverts and unloads the payload
    when a check fails, records the outcome in the ledger, removes the staged file (O(remove_src)) and releases
    the lock.
  - "Health checks: C(hypervisor_answers) (C(xl info) answers with the same build-id), C(guests_running) (every
    guest present before is still there with the same domain id, not crashed, shut down or dying),
    C(dmesg_clean) (no new error line in C(xl dmesg): live patch, build-id, expectation, crash,
    C(Timed out on semaphore)), C(payload_applied) (the payload is APPLIED without error) and C(expected_effect)
    (each O(expect) key of C(xl info) has its value; only when O(expect) is given)."
  - "Resume: a payload left CHECKED by an interrupted run whose ledger intent matches O(name) and O(checksum)
    is applied without a second upload; a CHECKED payload the ledger does not vouch for is unloaded and the
    staged file uploaded fresh; an APPLIED payload the ledger vouches for is RV(outcome=already_patched); an
    APPLIED payload whose last ledger entry is an intent (the run died after the apply) is verified with the
    checks that need no baseline (C(hypervisor_answers), C(payload_applied), C(expected_effect)) and reverted if
    one fails."
  - "Locks: the lock is the kernel's C(flock) on C(<state_dir>/rollout.lock), held by this module's process for the
    whole transaction, so it goes away with the process however that ends and two runs can never both hold it. A
    lock held by another process ends the task at once with RV(outcome=held_by_other_run), naming the run id and pid
    its file records (not a failure). A lock file left by a process that died is taken over (RV(lock.took_over_from))."
  - "What Xen uploads: under the lock, the staged file is opened without following a symlink (a symlink, a
    non-regular file or a file others could write is refused), its bytes are hashed and the same bytes are written
    to a private copy C(<state_dir>/upload/<name>.livepatch) (directory 0700, file 0600, owned by the running user);
    that copy is verified and uploaded, then removed. A staged file replaced after the check never reaches Xen."
  - "The state directory must be owned by root (or the running user) and not writable by its group or others;
    otherwise the task fails before anything is read or changed. O(prepare_only) makes this check (and creates a
    missing directory) before the payload is staged. A missing O(state_dir) is created with mode 0700."
  - "Ledger writes are whole lines (short writes are continued), synced with their directory; a line torn by a
    crash is ended before the next entry. A ledger that cannot be written (full or read-only disk) fails the task
    before the payload is applied."
options:
  src:
    description:
      - Path of the staged payload on the host.
      - One of O(src), O(payload_src) and O(content) is required.
    type: path
  payload_src:
    description:
      - Path of the payload on the controller, for example the plan's C(path) of the payload (the file that
        M(noreboot.xen.fleet_plan) verified). Read by the action plugin, never by the host.
      - A symlink, a file that is not regular, a file owned by another user than root or the controller's user, a
        file writable by its group or others, a file larger than 8 MiB or whose SHA-256 is not O(checksum) is
        refused on the controller and nothing reaches the host.
    type: path
  content:
    description:
      - The payload's bytes, base64. Set by the action plugin from O(payload_src); not meant to be given by hand.
      - Written only to the private upload copy under the lock (never to a staging file).
    type: str
  local_fact:
    description:
      - After an outcome V(patched) or V(already_patched), write the host's local fact O(fact_path) as
        M(noreboot.xen.patch_state_fact) does (effective version, applied payloads by advisory, C(last_run)), in the
        same module execution. A fact that cannot be written is a warning (RV(local_fact.error)), not a failure of
        the transaction. Not in check mode (the host's state has not changed).
    type: bool
    default: false
  fact_path:
    description: Where O(local_fact) writes the fact file.
    type: path
    default: /etc/ansible/facts.d/noreboot_xen.fact
  checksum:
    description: SHA-256 of the payload (64 hex digits, optionally prefixed with C(sha256:)).
    type: str
    required: true
  payload_build_id:
    description: The payload's own build-id the plan expects (C(.note.gnu.build-id)); checked when given.
    type: str
  hypervisor_build_id:
    description:
      - The hypervisor build-id the plan expects the host to run. When given and the host runs another build,
        nothing is done and the task fails (the plan is stale).
    type: str
  expect:
    description:
      - "The advisory's expected effect, as C(xl info) keys and values, for example C({xen_extra: Hello World})."
      - Checked after the apply (and the soak) by the C(expected_effect) health check.
    type: dict
    default: {}
  soak_seconds:
    description: Seconds to wait after the apply before the health checks.
    type: float
    default: 0
  replace:
    description: Apply with C(xen-livepatch replace) (revert every other applied payload in the same operation).
    type: bool
    default: false
  revert_on_failure:
    description: Revert and unload the payload when a health check fails.
    type: bool
    default: true
  remove_src:
    description: Remove the staged file (and its directory when empty) once the transaction is over.
    type: bool
    default: false
  retry_reverted:
    description:
      - Apply the payload even when the ledger says this host reverted it before (same name and sha256).
      - By default the outcome of such a host is V(previously_reverted) (the task does not fail) and Xen is not
        touched.
    type: bool
    default: false
  advisory:
    description: Advisory id recorded in the ledger.
    type: str
  verification:
    description:
      - What the plan verified before this payload was planned (the C(verification) of the payload in
        M(noreboot.xen.fleet_plan)'s C(decisions)) - C(advisory_signature) (status,
        key fingerprint, signature time, or V(unsigned)) and C(payload_signature) (the C(.note.Xen.signature)
        result, V(null) without a note).
      - Recorded as it is in the intent and the outcome entry of the ledger, so each host keeps what was
        verified before its payload was applied.
    type: dict
  apply_until:
    description:
      - From when the payload must not be applied any more (ISO 8601 with its zone, for example
        V(2027-01-31T12:00:00Z)) - the plan's C(apply_until) of the payload for this host, the earlier of the manifest's
        C(apply_until) and the C(livepatch_end_of_life) of the host's build.
      - Checked again at apply time, under the lock, with the module's own clock - a run planned before this time
        and applied after it does not apply; the outcome is then V(pending_reboot) (not a failure), as a plan made
        now would send the host to the reboot fallback. Xen and the ledger are not touched and the staged file is
        removed.
      - It stops applying, not what is applied - a payload already APPLIED stays V(already_patched), and a payload an
        interrupted run applied is still checked and finished.
    type: str
  prepare_only:
    description:
      - Only check the state directory (owned by root or the running user, not writable by its group or others)
        and create it (mode 0700) when missing; take no lock and touch nothing else. Run it before staging the
        payload, so that nothing is staged in a directory others can write.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - noreboot.xen.command_retries
  - noreboot.xen.payload_name
  - noreboot.xen.run_id
  - noreboot.xen.state_dir
attributes:
  check_mode:
    support: full
    details: Reads the payload table and the ledger and says what would be done; takes no lock, writes nothing.
  diff_mode:
    support: none
  idempotent:
    description: A second run finds the payload APPLIED and recorded in the ledger and changes nothing on Xen.
    support: full
  platform:
    platforms: posix
requirements:
  - C(xl) and C(xen-livepatch) on the Xen control domain (dom0), run as root.
notes:
  - The task fails when RV(outcome) is V(reverted), V(failed) or V(failed_applied) (the health checks failed and the
    payload is still APPLIED - the revert failed or O(revert_on_failure) is false); every result carries
    RV(outcome), RV(failed_checks) and RV(msg), so a C(rescue) can record them.
  - A host whose lock another live process holds (another run's transaction) does not fail the task -
    RV(outcome=held_by_other_run), RV(held_by) names the holder, nothing on Xen, in the ledger or in the lock changes,
    and only this run's own staged file is removed (O(remove_src)). It is not a failure of this run.
  - The payload itself is applied through the same code as M(noreboot.xen.livepatch).
seealso:
  - module: noreboot.xen.livepatch
  - module: noreboot.xen.xen_facts
author:
  - noreboot.xen developers (@noreboot)
"""

EXAMPLES = r"""
- name: Check (or create) the state directory before staging a payload in it
  noreboot.xen.livepatch_rollout:
    name: xsa-999-4.17.5
    src: /var/lib/noreboot-xen/staging/20261127T2300Z-ab12/xsa-999.livepatch
    checksum: "sha256:5f0c1a4f2d7bb0b0d3c1e2f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e"
    run_id: 20261127T2300Z-ab12
    prepare_only: true
  become: true

- name: Send the controller's copy, apply it with health checks, revert on failure, record the local fact
  noreboot.xen.livepatch_rollout:
    name: xsa-999-4.17.5
    payload_src: /srv/advisories/xsa-999/xsa-999-4.17.5.livepatch
    checksum: "sha256:5f0c1a4f2d7bb0b0d3c1e2f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e"
    run_id: 20261127T2300Z-ab12
    local_fact: true
  become: true

- name: Apply the staged payload with health checks, revert on failure
  noreboot.xen.livepatch_rollout:
    name: xsa-999-4.17.5
    src: /var/lib/noreboot-xen/staging/20261127T2300Z-ab12/xsa-999.livepatch
    checksum: "sha256:5f0c1a4f2d7bb0b0d3c1e2f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e"
    run_id: 20261127T2300Z-ab12
    hypervisor_build_id: 39a640e6f1412319235087391df9f1c5e13ae920
    expect:
      xen_extra: Hello World
    soak_seconds: 10
    remove_src: true
  become: true
  register: rollout

- name: Show what failed
  ansible.builtin.debug:
    msg: "{{ rollout.outcome }}: {{ rollout.failed_checks | join(', ') }}"
"""

RETURN = r"""
outcome:
  description: What happened on the host.
  returned: always
  type: str
  choices: [patched, already_patched, reverted, failed, failed_applied, previously_reverted, held_by_other_run, pending_reboot]
  sample: patched
msg:
  description: One sentence on the outcome, naming the failed checks and their details.
  returned: always
  type: str
  sample: "xen_hello_world applied; all 5 health checks passed"
failed_checks:
  description: Names of the health checks that failed (C(apply) when the apply itself failed, C(preconditions) when
    nothing could start).
  returned: always
  type: list
  elements: str
  sample: [expected_effect]
checks:
  description: Every health check run, with V(name), V(ok) and V(detail).
  returned: always
  type: list
  elements: dict
  sample: [{name: payload_applied, ok: true, detail: "xen_hello_world is APPLIED"}]
resumed:
  description: The payload was left CHECKED by an interrupted run and applied without a second upload.
  returned: always
  type: bool
uploaded:
  description: This call uploaded the payload to the hypervisor.
  returned: always
  type: bool
proven:
  description: For an APPLIED payload, whether the ledger vouches for it (V(null) when it was not APPLIED).
  returned: always
  type: bool
baseline:
  description: The health baseline (hypervisor build-id, guests with domain ids, dmesg line count, payloads).
  returned: when the payload was applied
  type: dict
payload:
  description: What the staged payload is (sha256, build_id, xen_depends, depends, metadata, size).
  returned: when the staged file was read
  type: dict
hypervisor_build_id:
  description: Build-id of the running hypervisor.
  returned: when xl info answered
  type: str
lock:
  description: The host's lock.
  returned: unless in check mode
  type: dict
  contains:
    path:
      description: Path of the lock file.
      type: str
      returned: always
      sample: /var/lib/noreboot-xen/rollout.lock
    took_over_from:
      description: What a stale lock taken over recorded (run id, pid, time); V(null) when there was none.
      type: dict
      returned: always
held_by:
  description: The lock's holder (run id, pid, time) when the host was locked by another live run
    (RV(outcome=held_by_other_run)).
  returned: when the lock was held
  type: dict
held_by_run:
  description: The run id the holder's lock file records (V(null) when it has not written it yet).
  returned: when the lock was held
  type: str
  sample: 20261127T2250Z-0f0f
ledger_entry:
  description: The outcome entry written to the ledger (with C(verification) when O(verification) was given).
  returned: when an outcome was recorded
  type: dict
cleanup:
  description: How the revert and unload after a failed check went.
  returned: when a revert was attempted
  type: dict
upload_src:
  description: The private copy of the verified payload that was uploaded (removed at the end).
  returned: when the staged payload was read
  type: str
  sample: /var/lib/noreboot-xen/upload/xen_hello_world.livepatch
stale_staging_removed:
  description: Run ids whose staging directories in C(<state_dir>/staging) were removed (runs whose transaction on
    this host is in the ledger).
  returned: when there were any
  type: list
  elements: str
actions:
  description: The C(xen-livepatch) operations done, in order.
  returned: always
  type: list
  elements: str
  sample: ["upload xen_hello_world", "apply xen_hello_world"]
commands:
  description: Every command run, with argv, rc and attempts.
  returned: always
  type: list
  elements: dict
timings:
  description: Seconds spent per step (read, verify, baseline, apply, soak, health, total).
  returned: always
  type: dict
local_fact:
  description: What O(local_fact) wrote (V(changed), V(path), V(fact)), or V(error) when it could not.
  returned: when O(local_fact) is true, not in check mode, and the outcome is V(patched) or V(already_patched)
  type: dict
  contains:
    changed:
      description: The file's text changed.
      type: bool
      returned: always
    path:
      description: The fact file.
      type: str
      returned: always
      sample: /etc/ansible/facts.d/noreboot_xen.fact
    fact:
      description: The document written (as M(noreboot.xen.patch_state_fact) returns it).
      type: dict
      returned: when it was written
    error:
      description: Why the fact could not be written (the transaction's outcome stands).
      type: str
      returned: when it could not be written
"""

import base64

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.noreboot.xen.plugins.module_utils.local_patch_fact import FACT_PATH, record_patch_state

from ansible_collections.noreboot.xen.plugins.module_utils.rollout_transaction import (
    FAILED,
    LockHeld,
    RolloutOptions,
    RolloutTransaction,
    TransactionError,
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
        payload_src=dict(type='path'),
        content=dict(type='str', no_log=True),
        local_fact=dict(type='bool', default=False),
        fact_path=dict(type='path', default=FACT_PATH),
        checksum=dict(type='str', required=True),
        run_id=dict(type='str', required=True),
        payload_build_id=dict(type='str'),
        hypervisor_build_id=dict(type='str'),
        expect=dict(type='dict', default={}),
        soak_seconds=dict(type='float', default=0),
        retries=dict(type='int', default=5),
        delay=dict(type='float', default=1.0),
        replace=dict(type='bool', default=False),
        revert_on_failure=dict(type='bool', default=True),
        remove_src=dict(type='bool', default=False),
        retry_reverted=dict(type='bool', default=False),
        state_dir=dict(type='path', default='/var/lib/noreboot-xen'),
        advisory=dict(type='str'),
        verification=dict(type='dict'),
        apply_until=dict(type='str'),
        prepare_only=dict(type='bool', default=False),
    )


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[('src', 'payload_src', 'content')],
                           required_one_of=[('src', 'payload_src', 'content')])
    params = dict(module.params)
    if params['payload_src'] is not None:
        module.fail_json(msg='payload_src is read on the controller by the action plugin noreboot.xen.livepatch_rollout, '
                             'which did not run: call the module by its name (noreboot.xen.livepatch_rollout) as a task')
    if params['content'] is not None:
        try:
            params['content'] = base64.b64decode(params['content'].encode('ascii'))
        except (ValueError, TypeError, UnicodeError) as exc:
            module.fail_json(msg='content is not base64 (%s): it is set by the action plugin from payload_src' % exc)
    if params['retries'] < 0 or params['delay'] < 0 or params['soak_seconds'] < 0:
        module.fail_json(msg='retries, delay and soak_seconds must not be negative')
    history = []
    run = module_command_function(module)
    try:
        livepatch = LivepatchRunner(run, module.get_bin_path('xen-livepatch'), history=history)
        xl = XlRunner(run, module.get_bin_path('xl'), history=history)
    except ToolNotFound as exc:
        module.fail_json(msg=exc.msg, changed=False, outcome=FAILED, failed_checks=['tools'], checks=[])
    transaction = RolloutTransaction(xl, livepatch, RolloutOptions.from_params(params, module.check_mode))
    if params['prepare_only']:
        try:
            created = transaction.prepare_state_dir()
        except TransactionError as exc:
            module.fail_json(msg=exc.msg, changed=False, outcome=FAILED, failed_checks=['preconditions'], checks=[])
        module.exit_json(changed=created, msg='state directory %s is safe to stage in' % params['state_dir'])
    try:
        result = transaction.run()
    except LockHeld as exc:
        # Another run's transaction is on this host: not a failure of this run (the task does not fail).
        module.exit_json(**transaction.held_result(exc))
    except TransactionError as exc:
        fields = dict(transaction.result)
        fields.update(exc.fields)
        fields.update(outcome=FAILED, failed_checks=['preconditions'], commands=transaction.commands(), msg=exc.msg)
        module.fail_json(**fields)
    warnings = result.pop('warnings', [])
    for warning in warnings:
        module.warn(warning)
    if result['outcome'] in ('reverted', 'failed', 'failed_applied'):
        module.fail_json(**result)
    if params['local_fact'] and not module.check_mode and result['outcome'] in ('patched', 'already_patched'):
        result['local_fact'] = local_fact(module, xl, livepatch, params, result['outcome'])
        result['changed'] = result['changed'] or result['local_fact'].get('changed', False)
    module.exit_json(**result)


def local_fact(module, xl, livepatch, params, outcome):
    """Write the local fact in this execution; a failure to write it is a warning, not the transaction's."""
    try:
        written = record_patch_state(xl, livepatch, params['state_dir'], params['run_id'], outcome, 'livepatch',
                                     path=params['fact_path'], check_mode=module.check_mode, warn=module.warn)
    except (IOError, OSError) as exc:
        msg = 'could not write the local fact %s: %s' % (params['fact_path'], exc)
        module.warn(msg)
        return dict(changed=False, path=params['fact_path'], error=msg)
    return dict(changed=written['changed'], path=written['path'], fact=written['fact'])


if __name__ == '__main__':
    main()
