#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: fleet_plan
short_description: Decide per host what Xen advisories ask for and plan canaries and waves
version_added: 1.0.0
description:
  - First verifies the signature of every advisory directory (the directory of each manifest) against
    O(trusted_keys), before any manifest in it is parsed - ansible-sign's layout, C(.ansible-sign/sha256sum.txt)
    and its detached OpenPGP signature C(.ansible-sign/sha256sum.txt.sig), checked with GnuPG, or a minisign
    signature C(.ansible-sign/sha256sum.txt.minisig) (as C(minisign -Sm) writes it), checked in Python; when both
    are there, both must verify. Every file of the directory must be listed with its sha256, and nothing else may
    be there. See O(require_signature).
  - Reads advisory manifests (see C(docs/advisory_manifest.md) in the collection), validates them, including
    the payload files they name (sha256, and the ELF C(.livepatch.xen_depends) against the declared build-id),
    and refuses the run before any host is touched when one is wrong.
  - Decides for every host, from the facts of M(noreboot.xen.xen_facts), one of V(livepatch), V(reboot),
    V(already_patched), V(not_affected), V(not_xen), V(unreachable) or V(undecided), with the reason in words.
  - Plans canary waves (one host per hypervisor build-id and hardware class), then live patch waves sized by
    O(policy.wave_sizes), then reboot waves, never taking more than O(policy.max_per_domain) hosts of one failure
    domain in one wave. The same input always gives the same plan.
  - A payload past its C(apply_until), or a host build past its C(livepatch_end_of_life) time (both in the manifest),
    gets V(reboot), the reason saying which payload expired or which build is at its end of life, and when. The
    times are compared with the controller's current UTC time when the module runs.
  - Runs on the controller (with C(delegate_to) V(localhost) and C(run_once) V(true)) and contacts no host. The only
    thing it may change is the plan file O(plan_path).
options:
  advisories:
    description:
      - Paths of advisory manifests (YAML, schema 1) on the controller.
      - Payload paths inside a manifest are relative to the manifest's directory.
      - Use absolute paths; relative ones resolve against the module's working directory.
    type: list
    elements: path
    required: true
  hosts:
    description:
      - The fleet, as a mapping of inventory host name to what detection found.
      - Each value is a mapping with the keys C(xen) (the C(ansible_facts.xen) of M(noreboot.xen.xen_facts),
        may be partial), C(unreachable) (bool), C(error) (why detection failed), C(failure_domain) (the host
        var C(noreboot_xen_failure_domain), for example a rack or zone) and C(force_reboot) (the host var
        C(noreboot_xen_force_reboot)). Other keys are refused.
      - C(unreachable) and C(force_reboot) take booleans or the strings C(true)/C(false)/C(yes)/C(no), as host vars
        from INI inventories arrive; anything else is refused.
    type: dict
    required: true
  policy:
    description: How the waves are cut.
    type: dict
    default: {}
    suboptions:
      wave_sizes:
        description:
          - Sizes of the live patch waves after the canaries, like Ansible's C(serial) - an integer is a number of
            hosts, a string C(N%) a share of all live patch hosts (rounded down, at least one); the last size
            repeats; V(100%) takes the rest.
          - Defaults to V([1, "5%", "25%", "100%"]).
        type: list
        elements: raw
      reboot_wave_sizes:
        description: Sizes of the reboot waves, in the same form. Defaults to O(policy.wave_sizes).
        type: list
        elements: raw
      max_per_domain:
        description:
          - The most hosts of one failure domain in one wave, an integer or a share C(N%) of the domain's hosts
            (rounded down, at least one). Hosts without a failure domain share the domain C(unassigned).
          - V(100%) means no cap.
        type: raw
        default: "50%"
      max_canaries_per_wave:
        description:
          - The most canaries of one canary wave (one canary per build-id and hardware class); the groups beyond it
            wait for the next canary wave, so many groups give several small canary waves instead of one large one.
          - V(0) means no cap.
        type: int
        default: 5
  retry_failed:
    description:
      - Payload names the operator releases. A host where a payload of that name and sha256 ended V(reverted),
        V(failed) or V(failed_applied) (the ledger's last outcome, C(ansible_facts.xen.livepatch.last_outcomes) of
        M(noreboot.xen.xen_facts)), or where an intent for it is open while the payload is not loaded and the host
        has booted since (it may have killed the host), is planned V(held), and so is every other live patch host
        of its build-id and hardware class planned for that payload. Listed here, such hosts are planned for
        V(livepatch) again and the host that failed is its group's canary.
      - The playbooks take it from C(noreboot_xen_retry_failed).
    type: list
    elements: str
    default: []
  validate_only:
    description:
      - Only read and validate every manifest (and its payload files) completely, with the same code the plan uses,
        and return O(advisories) as read; plan nothing (O(hosts) may be V({})) and write nothing.
      - The playbooks run this on the controller first, so a bad manifest stops the run before any host is
        contacted.
    type: bool
    default: false
  trusted_keys:
    description:
      - Public key files of the people who sign advisory directories - OpenPGP (armored or binary, as
        C(gpg --export) writes them; several keys in one file are fine) and minisign (the C(minisign.pub) file
        C(minisign -G) writes) in one list. A file that starts with C(untrusted comment:) is read as a minisign
        public key, any other as OpenPGP.
      - Only these keys are trusted; the user's own GnuPG keyring is never used (a throwaway keyring is built from
        the OpenPGP files for each run, and only when an OpenPGP signature is checked).
      - The playbooks take it from C(noreboot_xen_advisory_trusted_keys).
    type: list
    elements: path
    default: []
    version_added: 1.1.0
  require_signature:
    description:
      - Refuse the run when an advisory directory is not signed. Left out, it is V(true) when O(trusted_keys) is given
        and V(false) otherwise.
      - With V(false), a directory that is signed is still verified (and refused when the signature or a file is bad)
        when O(trusted_keys) is given, and unsigned directories are accepted with a warning.
      - Without O(trusted_keys) nothing can be verified and the module warns loudly that nothing is signature-checked.
      - The playbooks take it from C(noreboot_xen_require_signature).
    type: bool
    version_added: 1.1.0
  payload_signature_keys:
    description:
      - RSA public keys (PEM files) trusted to sign payloads with XenServer's in-payload signature note
        C(.note.Xen.signature) (livepatch-build-tools signing, version 1). Each payload's note is verified against
        these keys after the manifest checks and before the plan is made; see RV(payload_signatures).
      - A payload whose note does not verify with any of these keys, or whose note cannot be read, refuses the whole
        run (every advisory and host, not only that payload's) with a message naming the payload file, the keys
        tried and the fix; nothing is planned. A payload without a note is reported as
        V(absent) and used (unless O(require_payload_signature)).
      - The playbooks take it from C(noreboot_xen_payload_signature_keys).
    type: list
    elements: path
    default: []
    version_added: 1.1.0
  require_payload_signature:
    description:
      - Refuse the run when a payload carries no C(.note.Xen.signature) note.
      - The playbooks take it from C(noreboot_xen_require_payload_signature).
    type: bool
    default: false
    version_added: 1.1.0
  plan_path:
    description:
      - Where to write the plan as JSON (sorted keys, so the same plan gives the same file).
      - Not written in check mode. Left out, nothing is written.
    type: path
  from_plan:
    description:
      - A plan made earlier and approved (an AWX workflow's plan artifact, C(noreboot_xen_rollout_plan)) to run
        instead of a new one.
      - The module still plans from O(hosts) and O(advisories) and compares the two - the hosts, each host's decision,
        hypervisor build-id, hardware class, failure domain and payloads (name and sha256), the advisories (manifest
        sha256) and the wave policy. When anything differs it fails, naming every difference, so the rollout stops
        before any host is changed; otherwise it returns the given plan (cut to O(phase)).
      - A mapping; anything else is refused with a message naming the variable.
    type: raw
    version_added: 1.1.0
  phase:
    description:
      - Which part of the plan this run takes, for a workflow that runs the canaries and the rest in separate jobs
        with an approval between them.
      - V(all) every wave; V(canary) the canary waves and their hosts only; V(after_canary) the waves after the
        canaries and the hosts in no wave (with O(from_plan), the canary hosts are then expected to be
        V(already_patched), which is not counted as a difference).
    type: str
    choices: [all, canary, after_canary]
    default: all
    version_added: 1.1.0
  slices:
    description:
      - This run is one slice of a sliced AWX job of this many slices (the job template's job slicing), taking the
        remaining waves of the approved plan; 1 (or left out) is not sliced.
      - Needs O(from_plan) and O(phase=after_canary). O(hosts) must then be exactly one slice of the plan's hosts as
        AWX cuts them (sorted by name, every n-th), which tells the slice its number; anything else is refused,
        naming the difference. The plan is compared and cut to this slice's hosts only.
    type: int
    default: 1
    version_added: 1.1.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode the plan is computed and returned but the plan file is not written.
  diff_mode:
    support: none
  idempotent:
    description: The plan file is rewritten only when its content changes.
    support: full
  platform:
    platforms: posix
requirements:
  - PyYAML (installed with ansible-core) on the host the module runs on, normally the controller.
  - GnuPG (C(gpg), Debian package C(gpg)) on that host when an advisory directory has an OpenPGP signature and
    O(trusted_keys) is given.
  - The Python C(cryptography) library on that host when O(payload_signature_keys) is given or an advisory directory
    has a minisign signature.
notes:
  - A payload counts as already applied when a payload of the manifest's name is APPLIED, the host runs the
    hypervisor build-id the payload was built for (its C(.livepatch.xen_depends)) and, when the manifest gives
    C(metadata), the payload's metadata contains it. C(xen-livepatch list) does not show payload build-ids.
  - "An applied payload with an open intent in the host's rollout ledger (C(xen.livepatch.open_intents) of
    M(noreboot.xen.xen_facts), same name and sha256) is not V(already_patched) but V(livepatch), with the reason
    C(applied by interrupted run R; its health checks and outcome are pending: the rollout finishes it) - a run
    died between the apply and its outcome, and M(noreboot.xen.livepatch_rollout) finishes that transaction
    (health checks, revert on failure, outcome) without applying the payload again."
  - Hosts decided V(undecided) or V(unreachable) are in no wave; the reason says what is missing.
  - "A signature is refused when it is bad (a byte of C(sha256sum.txt) changed), made by a key not in O(trusted_keys),
    by an expired or revoked key, for minisign when its trusted comment was changed (the global signature fails) or
    its file is malformed, or when a file differs from its signed sha256, is missing, is present but not
    listed, is a symbolic link, or a listed path leaves the directory (absolute or with C(..)). Exclusions of
    ansible-sign's C(MANIFEST.in) are not honoured: every file of the directory must be signed."
seealso:
  - module: noreboot.xen.xen_facts
author:
  - noreboot.xen developers (@noreboot)
"""

EXAMPLES = r"""
- name: Plan the rollout of XSA-999 on the controller
  noreboot.xen.fleet_plan:
    advisories:
      - /srv/advisories/xsa-999/xsa-999.yml
    hosts:
      xen01:
        xen: "{{ hostvars['xen01'].ansible_facts.xen }}"
        failure_domain: rack-a
      xen02:
        unreachable: true
    policy:
      wave_sizes: [1, "10%", "100%"]
      max_per_domain: "50%"
    plan_path: /var/tmp/noreboot-xen-plan.json
  delegate_to: localhost
  run_once: true
  register: noreboot_xen_plan

- name: Show the plan
  ansible.builtin.debug:
    msg: "{{ noreboot_xen_plan.table }}"
  run_once: true
"""

RETURN = r"""
counts:
  description: Number of hosts per decision.
  returned: success
  type: dict
  sample: {"livepatch": 40, "reboot": 2, "already_patched": 3, "not_affected": 10, "not_xen": 1, "unreachable": 1, "undecided": 0}
decisions:
  description:
    - Per host, the decision and its reason, the hypervisor build-id, hardware class and failure domain, the
      payloads to apply (V(livepatch)) in order with C(stacking) (does each payload's C(.livepatch.depends) fit
      what it goes on top of) and C(notes) (the misfits), the fixed packages (V(reboot)), the decision per
      advisory (with C(open_intent), the ledger entry of an interrupted run the rollout is to finish) and the wave.
    - Each payload carries C(verification), what was verified before it was planned, which
      M(noreboot.xen.livepatch_rollout) writes into the host's ledger entries - C(advisory_signature) (C(status)
      V(verified), V(unsigned) or V(not_verified), C(directory), and when verified C(fingerprint), C(signing_key),
      C(signature_time)) and C(payload_signature) (V(null) when the payload carries no C(.note.Xen.signature), else
      C(status), C(key_id), C(file)).
  returned: success
  type: dict
  sample:
    xen01:
      decision: livepatch
      reason: "XSA-999: version 4.17.5 is in >=4.17.0,<4.17.7, advisory covers all hardware; payload xsa999_4175 is not loaded: apply payload xsa999_4175"
      build_id: 39a640e6f1412319235087391df9f1c5e13ae920
      hardware_class: intel-6-85
      failure_domain: rack-a
      wave: 1
      payloads: [{"name": "xsa999_4175", "advisory": "XSA-999", "sha256": "4c4f...", "path": "/srv/advisories/xsa-999/xsa999.livepatch"}]
matrix:
  description: Host counts per hypervisor build-id and hardware class, by decision.
  returned: success
  type: list
  elements: dict
  sample: [{"build_id": "39a640e6f1412319235087391df9f1c5e13ae920", "hardware_class": "intel-6-85", "counts": {"livepatch": 40}}]
groups:
  description: The live patch groups (build-id and hardware class), their hosts and their canary.
  returned: success
  type: list
  elements: dict
  sample: [{"build_id": "39a640e6f1412319235087391df9f1c5e13ae920", "hardware_class": "intel-6-85", "size": 40,
            "canary": "xen01", "canary_wave": 1, "hosts": ["xen01", "xen02"]}]
waves:
  description: The waves in run order, each with its number, kind (V(canary), V(livepatch), V(reboot)), hosts and hosts per domain.
  returned: success
  type: list
  elements: dict
  sample: [{"number": 1, "kind": "canary", "size": 1, "hosts": ["xen01"], "per_domain": {"rack-a": 1}}]
domains:
  description: The failure domains, their number of hosts and the most hosts per wave the cap allows.
  returned: success
  type: list
  elements: dict
  sample: [{"name": "rack-a", "hosts": 20, "max_per_wave": 10}]
policy:
  description: The policy used, defaults filled in.
  returned: success
  type: dict
  sample: {"wave_sizes": [1, "5%", "25%", "100%"], "reboot_wave_sizes": [1, "5%", "25%", "100%"], "max_per_domain": "50%"}
advisories:
  description: The advisories as read (id, title, manifest path and sha256, affected builds and hardware, payloads, fallback).
  returned: success
  type: list
  elements: dict
  sample: [{"id": "XSA-999", "title": "x86: example flaw", "manifest": "/srv/advisories/xsa-999/xsa-999.yml"}]
table:
  description:
    - The plan as lines of text (one line per advisory directory on its signature, counts per decision, per build-id and
      hardware class, the waves).
    - With O(validate_only), only the lines on the signatures.
  returned: success
  type: list
  elements: str
  sample: ["Hosts: 57", "Decisions: livepatch 40, reboot 2", "wave  1 canary       1 host(s) [rack-a:1] xen01"]
payload_signatures:
  description:
    - Per payload of every advisory, the result of its C(.note.Xen.signature) note - C(advisory), C(name), C(file),
      C(status) (V(verified), V(absent), V(not_checked) when the payload has a note but no O(payload_signature_keys)
      are given), C(key_id) (V(sha256:) and the SHA-256 of the key's DER SubjectPublicKeyInfo) and C(key_file) of the
      key that verified it, and C(reason). A refused note fails the module instead.
  returned: success
  type: list
  elements: dict
  sample: [{"advisory": "XSA-999", "name": "xsa999", "file": "payloads/xsa999.livepatch", "status": "verified",
            "key_id": "sha256:6f1c...", "key_file": "/etc/noreboot-xen/payload-signing.pub.pem", "reason": null}]
signatures:
  description:
    - Per advisory directory, the signature verification result - C(directory), C(status) (V(verified), V(unsigned),
      V(not_verified) when signed but no O(trusted_keys) are given), C(format), and when verified C(files) (how many
      files the signature covers).
    - With an OpenPGP signature, C(fingerprint) (the primary key), C(signing_key) (the (sub)key that signed),
      C(key_file), C(uid), C(signature_time) (UTC, ISO 8601) and C(signature_timestamp).
    - With a minisign signature, C(minisign) - C(key_id) (16 hex digits, as minisign prints it), C(key_file),
      C(algorithm) (V(prehashed) or V(legacy)), C(trusted_comment), and C(signature_time) and C(signature_timestamp)
      from the trusted comment's C(timestamp:) (null when it has none).
    - Also written to the plan file.
  returned: success
  type: list
  elements: dict
  version_added: 1.1.0
  sample: [{"directory": "/srv/advisories/xsa-999", "status": "verified", "fingerprint": "A1760E8394F3ABCF2AD078ADB2930B1AB11258D3",
            "signature_time": "2026-12-02T13:10:53Z", "files": 3}]
phase:
  description: The phase of the plan returned (O(phase)).
  returned: success
  type: str
  version_added: 1.1.0
  sample: all
plan_fingerprint:
  description: A sha256 of the approved plan (the whole plan, not this run's cut of it), the same in every job of a workflow.
  returned: when O(phase) is not V(all)
  type: str
  version_added: 1.1.0
  sample: 3f2a9c0d...
run_hosts_to_patch:
  description: How many hosts the whole plan's live patch (C(live)) and reboot (C(reboot)) waves have, for the whole run's
    failure budget.
  returned: when O(phase) is not V(all)
  type: dict
  version_added: 1.1.0
  sample: {"live": 1000, "reboot": 0}
slice:
  description: With O(slices), which slice this is (C(number), C(count)) and every slice's hosts to patch in the phase
    (C(hosts_to_patch), a list of C(live)/C(reboot) counts), for the budget shares.
  returned: when O(slices) is above 1
  type: dict
  version_added: 1.1.0
  sample: {"number": 2, "count": 4, "hosts_to_patch": [{"live": 3, "reboot": 0}]}
phase_hosts_left_out:
  description: How many hosts of the plan O(phase) left out (they belong to the other phase's job).
  returned: when O(phase) is not V(all)
  type: int
  version_added: 1.1.0
  sample: 42
reused:
  description: Whether the plan is the one given in O(from_plan) (the fleet still matches it).
  returned: success
  type: bool
  version_added: 1.1.0
  sample: true
differences:
  description: With O(from_plan), when the fleet no longer matches it, each difference in words.
  returned: failure
  type: list
  elements: str
  version_added: 1.1.0
  sample: ["xen03: build-id 39a640e6f141... in the plan, 5b1f0c2d9e7a... now"]
plan_path:
  description: The plan file, when O(plan_path) was given.
  returned: when O(plan_path) is given
  type: str
  sample: /var/tmp/noreboot-xen-plan.json
problems:
  description: When a manifest is refused, every problem found, each with file, path inside it, problem and fix.
  returned: failure
  type: list
  elements: dict
  sample: [{"file": "/srv/advisories/xsa-999/xsa-999.yml", "path": "livepatches[1].sha256", "problem": "missing sha256 of the payload file",
            "fix": "add `sha256:` with the output of `sha256sum FILE`"}]
"""

import datetime
import hashlib
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.noreboot.xen.plugins.module_utils.advisory_manifest import (
    MAX_MANIFEST_SIZE,
    AdvisoryManifestError,
    ManifestProblem,
    public_view,
)
from ansible_collections.noreboot.xen.plugins.module_utils.advisory_signature import (
    check_manifest_digests,
    public_result,
    summary_line,
    verify_advisory_dirs,
)
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_signature_note import (
    SignatureNoteError,
    check_payload_file,
)
from ansible_collections.noreboot.xen.plugins.module_utils.fleet_plan_builder import (
    PlanInputError,
    build_plan,
    load_advisories,
    plan_json,
    render_table,
)
from ansible_collections.noreboot.xen.plugins.module_utils.payload_verification import attach_verification
from ansible_collections.noreboot.xen.plugins.module_utils.plan_reuse import (
    PlanReuseError,
    restrict_to_phase,
    reuse_plan,
    sliced_problem,
)
from ansible_collections.noreboot.xen.plugins.module_utils.wave_plan import PolicyError

YAML_IMPORT_ERROR = None
try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None
    YAML_IMPORT_ERROR = traceback.format_exc()


def get_argument_spec():
    return dict(
        advisories=dict(type='list', elements='path', required=True),
        hosts=dict(type='dict', required=True),
        policy=dict(type='dict', default={}, options=dict(
            wave_sizes=dict(type='list', elements='raw'),
            reboot_wave_sizes=dict(type='list', elements='raw'),
            max_per_domain=dict(type='raw', default='50%'),
            max_canaries_per_wave=dict(type='int', default=5),
        )),
        plan_path=dict(type='path'),
        validate_only=dict(type='bool', default=False),
        retry_failed=dict(type='list', elements='str', default=[]),
        trusted_keys=dict(type='list', elements='path', default=[], no_log=False),
        require_signature=dict(type='bool'),
        payload_signature_keys=dict(type='list', elements='path', default=[], no_log=False),
        require_payload_signature=dict(type='bool', default=False),
        from_plan=dict(type='raw'),
        phase=dict(type='str', default='all', choices=['all', 'canary', 'after_canary']),
        slices=dict(type='int', default=1),
    )


def _unique_key_loader():
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    class UniqueKeyLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, dummy in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, 'a key must be a single value (a string), not a %s'
                        % ('list' if isinstance(key_node, yaml.SequenceNode) else 'mapping'), key_node.start_mark)
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, 'key %r given twice' % (key,), key_node.start_mark)
                seen.add(key)
            return super(UniqueKeyLoader, self).construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def read_manifests(paths):
    """Return ``[(path, data, sha256)]``; the YAML problems as ManifestProblem in ``problems``."""
    loader = _unique_key_loader()
    documents, problems = [], []
    for path in paths:
        try:
            with open(path, 'rb') as handle:
                raw = handle.read(MAX_MANIFEST_SIZE + 1)
        except (IOError, OSError) as exc:
            problems.append(ManifestProblem(path, '', 'cannot read the manifest (%s)' % (exc.strerror or exc),
                                            'check the path given in advisories'))
            continue
        if len(raw) > MAX_MANIFEST_SIZE:
            problems.append(ManifestProblem(path, '', 'the file is larger than %d bytes; an advisory manifest is a '
                                            'few KiB of YAML, so it was not parsed' % MAX_MANIFEST_SIZE,
                                            'check the path given in advisories'))
            continue
        try:
            data = yaml.load(raw.decode('utf-8'), Loader=loader)  # nosec: SafeLoader subclass
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, 'problem_mark', None)
            where = 'line %d column %d' % (mark.line + 1, mark.column + 1) if mark is not None else ''
            problems.append(ManifestProblem(path, where, 'not valid YAML: %s' % to_native(getattr(exc, 'problem', None) or exc),
                                            'correct the YAML syntax (a linter such as yamllint shows the spot)'))
            continue
        documents.append((path, data, hashlib.sha256(raw).hexdigest()))
    return documents, problems


def _current(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def write_plan(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory)
    tmp = '%s.tmp%d' % (path, os.getpid())
    with open(tmp, 'w') as handle:
        handle.write(text)
    os.rename(tmp, path)


def _gpg_runner(module):
    """``run(argv) -> (rc, stdout, stderr)`` with the gpg found on PATH (argv lists only, no shell).

    gpg is looked up at the first call: only OpenPGP signatures need it, minisign ones do not.
    """

    def run(argv):
        gpg = module.get_bin_path('gpg')
        if gpg is None:
            module.fail_json(msg='an advisory directory has an OpenPGP signature (.ansible-sign/sha256sum.txt.sig) and '
                                 'trusted_keys holds OpenPGP key files, but gpg is not installed on the controller '
                                 '(Debian: apt-get install gpg)')
        return module.run_command([gpg] + list(argv[1:]), environ_update=dict(LC_ALL='C'))
    return run


def check_payload_signatures(advisories, key_paths, require):
    """The ``payload_signatures`` of the plan; raises SignatureNoteError naming each refused payload."""
    results, refused = [], []
    for advisory in advisories:
        for payload in advisory['livepatches']:
            try:
                result = check_payload_file(payload['path'], key_paths, name=payload['file'], require=require)
            except (IOError, OSError) as exc:
                raise SignatureNoteError('cannot read payload %s (%s)' % (payload['path'], to_native(exc)))
            if result['refused']:
                where = (payload['path'], advisory['id'], advisory['manifest'], result['reason'])
                refused.append('%s (advisory %s, manifest %s): %s' % where)
            results.append(dict(advisory=advisory['id'], name=payload['name'], file=payload['file'], status=result['status'],
                                key_id=result['key_id'], key_file=result['key_file'], reason=result['reason']))
    if refused:
        # One bad payload refuses the whole run, whichever hosts it is for: its advisory came through a channel
        # that cannot be trusted, and a run half planned around it would still change hosts.
        raise SignatureNoteError(
            'payload signature note refused, so the whole run is refused: nothing was planned, staged or uploaded and no '
            'host was changed. %s. Fix: fetch the payload again from its publisher and compare it, or have it signed '
            'again (livepatch-sign); if the signer is to be trusted, add its RSA public key (PEM) to '
            'noreboot_xen_payload_signature_keys (configured now: %s)'
            % ('; '.join(refused), ', '.join(key_paths) or 'none'))
    return results


def invocation(params):
    """The result's ``invocation``: the arguments, but the hosts' facts only counted. AnsibleModule would echo every
    argument back, so the fleet's facts would travel back to the controller, be scrubbed for no_log values and be
    kept in the registered plan a second time, which costs as much as the plan (tests/bench/bench_plan_scale.py)."""
    hosts = params.get('hosts')
    count = len(hosts) if isinstance(hosts, dict) else 0
    return dict(module_args=dict(params, hosts='(%d host(s); their facts are not repeated here, see decisions)' % count))


def run_module():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    echo = invocation(module.params)
    if yaml is None:
        module.fail_json(msg=missing_required_lib('PyYAML'), exception=YAML_IMPORT_ERROR, invocation=echo)
    params = module.params
    policy = dict((k, v) for k, v in (params['policy'] or {}).items() if v is not None)
    try:
        # Before any manifest is parsed: a refused signature stops here.
        verified, warnings = verify_advisory_dirs(params['advisories'], params['trusted_keys'], params['require_signature'],
                                                  run=_gpg_runner(module) if params['trusted_keys'] else None)
        for warning in warnings:
            module.warn(warning)
        signatures = [public_result(r) for r in verified]
        documents, problems = read_manifests(params['advisories'])
        problems.extend(check_manifest_digests(verified, documents))
        if problems:
            raise AdvisoryManifestError(problems)
        advisories = load_advisories(documents)
        payload_signatures = check_payload_signatures(advisories, params['payload_signature_keys'],
                                                      params['require_payload_signature'])
        if params['validate_only']:
            module.exit_json(changed=False, advisories=[public_view(a) for a in advisories], signatures=signatures,
                             payload_signatures=payload_signatures, invocation=echo,
                             table=[summary_line(r) for r in signatures])
        plan = build_plan(advisories, params['hosts'], policy, retry_failed=params['retry_failed'],
                          now=datetime.datetime.now(datetime.timezone.utc))
    except AdvisoryManifestError as exc:
        module.fail_json(msg=to_native(exc), problems=[p.as_dict() for p in exc.problems], invocation=echo)
    except (PolicyError, PlanInputError, SignatureNoteError) as exc:
        module.fail_json(msg=to_native(exc), invocation=echo)
    plan['signatures'] = signatures
    plan['payload_signatures'] = payload_signatures
    # Each planned payload carries what was verified, for the ledger entry of every host it is applied to.
    attach_verification(plan['decisions'], advisories, signatures, payload_signatures)
    try:
        if params['from_plan'] is not None:
            plan = reuse_plan(params['from_plan'], plan, params['phase'], slices=params['slices'])
        elif sliced_problem(params['slices'], False, params['phase']):
            raise PlanReuseError(sliced_problem(params['slices'], False, params['phase']))
        else:
            plan = restrict_to_phase(plan, params['phase'])
    except PlanReuseError as exc:
        module.fail_json(msg=to_native(exc), differences=exc.differences, invocation=echo)
    reused = params['from_plan'] is not None
    table = []
    if reused:
        # The signatures as verified by this run, not as the artifact says.
        plan = dict(plan, signatures=signatures, payload_signatures=payload_signatures)
        table.append('Plan: the approved plan%s; the fleet still matches it'
                     % (' of run %s' % plan['run_id'] if plan.get('run_id') else ''))
    if params['phase'] != 'all':
        table.append('Phase %s: %d host(s) of the plan left to the other phase' % (params['phase'], plan['phase_hosts_left_out']))
    if plan.get('slice'):
        number, count = plan['slice']['number'], plan['slice']['count']
        table.append('Slice %d of %d: this job runs its %d host(s) of the remaining waves, in plan order'
                     % (number, count, sum(plan['slice']['hosts_to_patch'][number - 1].values())))
    result = dict(changed=False, table=table + [summary_line(r) for r in signatures] + render_table(plan), invocation=echo,
                  reused=reused)
    keys = ('counts', 'decisions', 'matrix', 'groups', 'waves', 'domains', 'policy', 'advisories', 'signatures',
            'payload_signatures', 'phase')
    result.update((k, plan[k]) for k in keys + (('phase_hosts_left_out', 'plan_fingerprint', 'run_hosts_to_patch')
                                                if params['phase'] != 'all' else ()))
    if plan.get('slice'):
        result['slice'] = plan['slice']
    if params['plan_path']:
        text = plan_json(plan)
        result['plan_path'] = params['plan_path']
        if _current(params['plan_path']) != text:
            result['changed'] = True
            if not module.check_mode:
                try:
                    write_plan(params['plan_path'], text)
                except (IOError, OSError) as exc:
                    module.fail_json(msg='cannot write the plan to %s: %s' % (params['plan_path'], to_native(exc)),
                                     invocation=echo)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
