#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xen_facts
short_description: Detect the Xen hypervisor, its live patches, the hardware and the guests of a host
version_added: 1.0.0
description:
  - Reads what a Xen live patch rollout needs to know about a host, as the fact C(ansible_facts.xen),
    that is the running hypervisor build (version, build-id, command line, capabilities), the live patch
    payloads loaded (C(xen-livepatch list)), the effective version (base version plus applied payloads),
    the hardware class (CPU vendor, family, model, DMI) and the domains running (C(xl list)).
  - Changes nothing on the host. The commands run are C(xl info), C(xen-livepatch list),
    C(xl dmesg) (only when a payload is applied or the payloads cannot be listed, to read the boot
    version) and C(xl list), with C(LC_ALL=C). Files read are C(/proc/cpuinfo), C(/proc/xen/capabilities),
    C(/sys/class/dmi/id/*) and, on a dom0 when O(gather) has V(livepatch) and on any host when it has
    V(evacuation), the rollout ledger C(<state_dir>/ledger.jsonl) that M(noreboot.xen.livepatch_rollout) writes;
    with V(evacuation) also the guest manifest C(<state_dir>/guests.json); with V(livepatch) the rollout lock
    C(<state_dir>/rollout.lock) (a shared C(flock) is tried on it and dropped at once to tell whether a transaction
    holds it; RV(ansible_facts.xen.livepatch.rollout_lock)).
  - O(state_dir) is only read, never created. A missing directory or ledger means no open intents.
  - From the ledger it reports the payloads whose last entry is an intent without an outcome
    (RV(ansible_facts.xen.livepatch.open_intents)), that is payloads a rollout run was interrupted on,
    possibly after applying them and before their health checks ran. M(noreboot.xen.fleet_plan) sends such
    a host to a wave so that the rollout finishes the transaction.
  - With O(gather) V(evacuation) it reports an unfinished reboot fallback (RV(ansible_facts.xen.evacuation)),
    on any host, dom0 or not, whatever its build, from the guest manifest C(<state_dir>/guests.json) that
    M(noreboot.xen.xen_guests) writes (guests saved, shut down or migrated and not brought back yet, read
    with the same reader) and from the ledger (a reboot intent of the role noreboot.xen.reboot_fallback that no
    outcome followed). M(noreboot.xen.fleet_plan) then decides V(finish_reboot) for the host.
  - Never fails because a host is not a Xen dom0; such a host gets RV(ansible_facts.xen.present=false)
    and a RV(ansible_facts.xen.reason), and still its hardware facts (useful for inventory).
  - "C(xl) and C(xen-livepatch) need root on a dom0; use C(become: true) when connecting as another user."
options:
  gather:
    description:
      - The parts of the facts to gather. A part left out is V(null) in the result and its command is
        not run.
      - C(xl info) always runs (on a dom0) because RV(ansible_facts.xen.present) depends on it.
      - V(hypervisor) is C(xl info) (and the boot banner of C(xl dmesg) when a payload is applied),
        V(livepatch) is C(xen-livepatch list), V(hardware) is C(/proc/cpuinfo) and DMI, V(domains)
        is C(xl list), V(evacuation) is the guest manifest and the ledger's reboot intent (and C(xl list) when
        V(domains) is left out and guests are not back).
      - Without V(livepatch), RV(ansible_facts.xen.effective_version) is V(null) since the applied
        payloads are unknown.
    type: list
    elements: str
    choices: [hypervisor, livepatch, hardware, domains, evacuation]
    default: [hypervisor, livepatch, hardware, domains, evacuation]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - noreboot.xen.state_dir
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
  facts:
    support: full
  idempotent:
    description: Running the module twice gives the same result and changes nothing.
    support: full
  platform:
    platforms: posix
requirements:
  - Xen tools (C(xl), and C(xen-livepatch) for live patch facts) on the hypervisor's control domain (dom0).
notes:
  - Hosts that are not a Xen dom0 (no C(xl), C(/proc/xen/capabilities) without C(control_d), C(xl info)
    failing) are reported with RV(ansible_facts.xen.present=false), never as a failed task.
  - A live patch may change the version C(xl info) reports (C(xen_version) turns into C(4.17Hello World)
    with the C(xen_hello_world) test payload). See RV(ansible_facts.xen.hypervisor.version_source) for how
    the module tells the version the hypervisor booted with.
seealso:
  - name: Xen live patching design
    description: Payload format and the hypercalls C(xen-livepatch) uses.
    link: https://xenbits.xen.org/docs/unstable/misc/livepatch.html
author:
  - noreboot.xen contributors (@noreboot)
"""

EXAMPLES = r"""
- name: Gather Xen facts
  noreboot.xen.xen_facts:
  become: true

- name: Show the effective hypervisor version
  ansible.builtin.debug:
    msg: "{{ ansible_facts.xen.effective_version | default(ansible_facts.xen.hypervisor.version, true) }}"
  when: ansible_facts.xen.present

- name: Only the hypervisor and live patch facts (skip xl list, cpuinfo, DMI)
  noreboot.xen.xen_facts:
    gather:
      - hypervisor
      - livepatch
  become: true

- name: Group hosts by hypervisor build and hardware class
  ansible.builtin.group_by:
    key: "xen_{{ ansible_facts.xen.hypervisor.build_id }}_{{ ansible_facts.xen.hardware['class'] | replace('-', '_') }}"
  when: ansible_facts.xen.present
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    xen:
      description: What the module found about Xen on the host.
      returned: always
      type: dict
      contains:
        present:
          description: Whether the host is a Xen control domain (dom0) whose C(xl info) answered.
          returned: always
          type: bool
          sample: true
        reason:
          description: Why RV(ansible_facts.xen.present) is V(false); V(null) when it is V(true).
          returned: always
          type: str
          sample: "xl not found on PATH: the Xen tools are not installed, this is not a Xen dom0"
        hypervisor:
          description:
            - The running hypervisor, from C(xl info).
            - V(null) when the host is not a dom0 or O(gather) leaves out V(hypervisor).
          returned: always
          type: dict
          contains:
            version:
              description:
                - The hypervisor version as it booted, C(<major>.<minor><extra>).
                - A live patch may replace the function behind C(xl info)'s C(xen_extra), so once a payload is
                  applied C(xl info) cannot tell the booted version. See RV(ansible_facts.xen.hypervisor.version_source).
              type: str
              returned: success
              sample: "4.17.5"
            major:
              description: C(xen_major) of C(xl info).
              type: int
              returned: success
              sample: 4
            minor:
              description: C(xen_minor) of C(xl info).
              type: int
              returned: success
              sample: 17
            extra:
              description: The extra version part of RV(ansible_facts.xen.hypervisor.version).
              type: str
              returned: success
              sample: ".5"
            version_source:
              description:
                - Where RV(ansible_facts.xen.hypervisor.version) comes from.
                - V(xl_info) when no payload is applied (C(xl info) then reports the booted version).
                - V(xl_dmesg) when payloads are applied or unknown and the C(Xen version ...) banner of C(xl dmesg)
                  is still in the console ring, with the build-id of the running hypervisor.
                - V(xl_info_live) when payloads are applied or unknown and the banner is gone; the version is then
                  what C(xl info) reports now and may carry a payload's text.
              type: str
              returned: success
              choices: [xl_info, xl_dmesg, xl_info_live]
              sample: xl_info
            reported_version:
              description: C(xen_version) as C(xl info) reports it now (a payload may have changed it).
              type: str
              returned: success
              sample: "4.17Hello World"
            reported_extra:
              description: C(xen_extra) as C(xl info) reports it now.
              type: str
              returned: success
              sample: "Hello World"
            changeset:
              description: C(xen_changeset), V(null) when empty.
              type: str
              returned: success
              sample: "Tue Dec 12 10:08:40 2023 +0100 git:38eebc6e5c-dirty"
            build_id:
              description: The GNU build-id of the running hypervisor; payloads are built against it.
              type: str
              returned: success
              sample: 39a640e6f1412319235087391df9f1c5e13ae920
            compiler:
              description: C(cc_compiler) of C(xl info).
              type: str
              returned: success
              sample: "x86_64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
            compile_date:
              description: C(cc_compile_date) of C(xl info).
              type: str
              returned: success
              sample: "Sat Nov 29 13:52:25 UTC 2025"
            commandline:
              description: The hypervisor command line.
              type: dict
              returned: success
              contains:
                raw:
                  description: The command line as reported.
                  type: str
                  returned: success
                  sample: "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M noreboot"
                options:
                  description: Each option; C(name=value) maps to the value (kept whole), a bare flag to V(true).
                  type: dict
                  returned: success
                  sample: {"console": "com1", "com1": "115200,8n1", "dom0_mem": "1024M,max:1024M", "noreboot": true}
            scheduler:
              description: C(xen_scheduler).
              type: str
              returned: success
              sample: credit2
            nr_cpus:
              description: C(nr_cpus).
              type: int
              returned: success
              sample: 2
            hw_caps:
              description: C(hw_caps), as reported.
              type: str
              returned: success
              sample: "1fcbf3fd:f6d8320b:ec500800:00000077:00000005:01884329:0000020c:00000000"
            virt_caps:
              description: The words of C(virt_caps).
              type: list
              elements: str
              returned: success
              sample: [pv, hvm, hap, shadow, gnttab-v1, gnttab-v2]
            xen_caps:
              description: The words of C(xen_caps).
              type: list
              elements: str
              returned: success
              sample: [xen-3.0-x86_64, hvm-3.0-x86_32, hvm-3.0-x86_32p, hvm-3.0-x86_64]
            total_memory_mib:
              description: C(total_memory) in MiB.
              type: int
              returned: success
              sample: 2047
            free_memory_mib:
              description: C(free_memory) in MiB.
              type: int
              returned: success
              sample: 1000
        livepatch:
          description:
            - Live patching on this host. V(null) when O(gather) leaves out V(livepatch).
          returned: always
          type: dict
          contains:
            supported:
              description: Whether C(xen-livepatch list) gave a payload table (possibly empty).
              type: bool
              returned: success
              sample: true
            reason:
              description: Why RV(ansible_facts.xen.livepatch.supported) is V(false); V(null) otherwise.
              type: str
              returned: success
              sample: "the running hypervisor was built without live patching (Error 38: Function not implemented)"
            reason_kind:
              description:
                - A stable code for RV(ansible_facts.xen.livepatch.reason), V(null) when supported.
                - V(hypervisor_without_livepatch) (C(Error 38)), V(no_control_interface) (C(failed to get the handler)),
                  V(list_failed), V(unparsed_output), V(tool_missing) (no C(xen-livepatch) on PATH),
                  V(not_xen_dom0).
              type: str
              returned: success
              sample: hypervisor_without_livepatch
            payloads:
              description: The rows of C(xen-livepatch list), in its order.
              type: list
              elements: dict
              returned: success
              contains:
                name:
                  description: The payload name.
                  type: str
                  returned: success
                  sample: xen_hello_world
                state:
                  description: C(CHECKED), C(APPLIED) or C(unknown).
                  type: str
                  returned: success
                  sample: APPLIED
                error:
                  description: The error the payload carries (C(CHECKED (16, Device or resource busy))), or V(null).
                  type: dict
                  returned: success
                  sample: {"errno": 16, "text": "Device or resource busy"}
                metadata:
                  description: The metadata column; V(null) with tools older than Xen 4.14 (no such column).
                  type: str
                  returned: success
                  sample: LIVEPATCH_RULEZ
            open_intents:
              description:
                - The payloads whose last entry in the rollout ledger C(<state_dir>/ledger.jsonl) is an C(intent) that no
                  C(outcome) followed - a run of M(noreboot.xen.livepatch_rollout) was interrupted between recording its
                  intent and its outcome, for example after the apply and before the health checks. By name.
                - Empty when there is no ledger, when it cannot be read (see RV(ansible_facts.xen.livepatch.ledger_error))
                  or when the host is not a dom0.
              type: list
              elements: dict
              returned: success
              contains:
                name:
                  description: The payload name.
                  type: str
                  returned: success
                  sample: xsa999_4175
                sha256:
                  description: The SHA-256 of the payload file the interrupted run applied.
                  type: str
                  returned: success
                  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
                run_id:
                  description: The run id of the interrupted run.
                  type: str
                  returned: success
                  sample: 20260101T120000Z-1a2b
                time:
                  description: When the intent was recorded, UTC, as the ledger has it.
                  type: str
                  returned: success
                  sample: "2026-01-01T12:00:00Z"
                boot_id:
                  description:
                    - The host's boot id when the intent was written. An intent written in another boot than
                      RV(ansible_facts.xen.livepatch.boot_id) whose payload is not loaded may have killed the host.
                  type: str
                  returned: when the intent recorded it
                  sample: 0b6f3c52-1c8e-4a4e-9d36-2f1e0c4b7a11
            last_outcomes:
              description:
                - Per payload name, the last C(outcome) entry of the rollout ledger (an intent after it does not hide it).
                  A payload that ended V(reverted), V(failed) or V(failed_applied) keeps counting - M(noreboot.xen.fleet_plan)
                  holds the host, or reports it V(needs_attention) when the payload is still APPLIED. By name.
              type: list
              elements: dict
              returned: success
              sample: [{name: xsa999_4175, sha256: 9f86d0..., run_id: 20260101T120000Z-1a2b, time: "2026-01-01T12:00:09Z",
                        outcome: reverted, failed_checks: [expected_effect]}]
            boot_id:
              description: The host's boot id now (C(/proc/sys/kernel/random/boot_id)); V(null) when it cannot be read.
              type: str
              returned: success
              sample: 0b6f3c52-1c8e-4a4e-9d36-2f1e0c4b7a11
            rollout_lock:
              description:
                - What the host's rollout lock C(<state_dir>/rollout.lock) of M(noreboot.xen.livepatch_rollout) says;
                  V(null) when there is no lock file (no transaction runs there).
                - The rolling playbook refuses to start while another run's transaction holds a host of its
                  inventory (or leaves such hosts to it, with C(noreboot_xen_skip_held_hosts)).
              type: dict
              returned: success
              contains:
                held:
                  description:
                    - True when a process holds the lock now (a transaction runs on the host). Tried with a shared
                      C(flock) taken and dropped at once. False for a lock file left by a process that died.
                  type: bool
                  returned: success
                run_id:
                  description: The run id the lock file records (V(null) when it has none yet).
                  type: str
                  returned: success
                  sample: 20261127T2250Z-0f0f
                pid:
                  description: The pid of the transaction's process on the host, as the lock file records it.
                  type: int
                  returned: success
                time:
                  description: When the lock was taken, UTC, as the lock file records it.
                  type: str
                  returned: success
                path:
                  description: The lock file.
                  type: str
                  returned: success
                  sample: /var/lib/noreboot-xen/rollout.lock
            ledger_error:
              description:
                - Why the ledger could not be read, whole (permissions, not a file; RV(ansible_facts.xen.livepatch.open_intents)
                  is then empty) or in part (lines that are not JSON objects are skipped, the open intents come from the
                  other lines). The module warns with the same text; detection does not fail.
                - V(null) when the ledger was read or does not exist.
              type: str
              returned: success
              sample: "the ledger /var/lib/noreboot-xen/ledger.jsonl cannot be read (Permission denied): open intents are unknown"
        effective_version:
          description:
            - RV(ansible_facts.xen.hypervisor.version), then C(+<name>) for each APPLIED payload in list order.
            - V(null) when the host is not a dom0 or the applied payloads cannot be known (C(xen-livepatch)
              missing, its list failed, or O(gather) leaves out V(livepatch)). A hypervisor built without
              live patching has no payloads, so its effective version is its version.
          returned: always
          type: str
          sample: "4.17.5+xen_hello_world"
        hardware:
          description:
            - The hardware, from the first processor of C(/proc/cpuinfo) and C(/sys/class/dmi/id).
            - Any value that cannot be read is V(null). V(null) as a whole when O(gather) leaves out V(hardware).
          returned: always
          type: dict
          contains:
            vendor:
              description: C(vendor_id) normalized (V(intel), V(amd), V(hygon), other vendors lowercased).
              type: str
              returned: success
              sample: intel
            family:
              description: C(cpu family), decimal.
              type: int
              returned: success
              sample: 6
            model:
              description: C(model), decimal.
              type: int
              returned: success
              sample: 85
            stepping:
              description: C(stepping).
              type: int
              returned: success
              sample: 7
            model_name:
              description: C(model name).
              type: str
              returned: success
              sample: "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz"
            microcode:
              description: C(microcode), as reported.
              type: str
              returned: success
              sample: "0x5003604"
            class:
              description: A stable hardware class id, C(<vendor>-<family>-<model>) in decimal.
              type: str
              returned: success
              sample: intel-6-85
            generation:
              description: The CPU generation from the collection's table, V(null) when unknown.
              type: str
              returned: success
              sample: Skylake-SP/Cascade Lake
            dmi:
              description: DMI strings; each V(null) when missing or unreadable.
              type: dict
              returned: success
              sample: {"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R640", "bios_vendor": "Dell Inc.",
                       "bios_version": "2.19.1", "bios_date": "06/13/2023"}
        domains:
          description:
            - The domains of C(xl list), Domain-0 included. Empty when the host is not a dom0 or C(xl list)
              failed (with a warning). V(null) when O(gather) leaves out V(domains).
          returned: always
          type: list
          elements: dict
          contains:
            name:
              description: Domain name.
              type: str
              returned: success
              sample: Domain-0
            id:
              description: Domain id.
              type: int
              returned: success
              sample: 0
            memory_mib:
              description: Memory in MiB.
              type: int
              returned: success
              sample: 1024
            vcpus:
              description: Number of virtual CPUs.
              type: int
              returned: success
              sample: 2
            state:
              description: The six state flags of C(xl list).
              type: str
              returned: success
              sample: r-----
            time_s:
              description: CPU time used, in seconds.
              type: float
              returned: success
              sample: 68.9
        evacuation:
          description:
            - An unfinished reboot fallback on this host, whatever its build. V(null) when O(gather) leaves out V(evacuation).
          returned: always
          type: dict
          contains:
            unfinished:
              description:
                - Whether an earlier reboot fallback run did not finish here - guests of the manifest are not back, the
                  ledger's last reboot fallback entry is an intent, or the manifest cannot be read.
              type: bool
              returned: success
              sample: true
            manifest_path:
              description: The guest manifest read.
              type: str
              returned: success
              sample: /var/lib/noreboot-xen/guests.json
            status:
              description: The manifest's status (V(evacuating), V(evacuated), V(incomplete), V(restored)); V(null) without one.
              type: str
              returned: success
              sample: evacuated
            run_id:
              description: The run id the manifest was written by.
              type: str
              returned: success
              sample: 20260101T120000Z-1a2b
            updated:
              description: When the manifest was last written, UTC.
              type: str
              returned: success
              sample: "2026-01-01T12:00:00Z"
            guests:
              description: The guests of the manifest not brought back yet (saved, shut down, migrated, planned, failed).
              type: list
              elements: dict
              returned: success
              contains:
                name:
                  description: The guest's name.
                  type: str
                  returned: success
                  sample: web1
                action:
                  description: V(save), V(migrate) or V(shutdown).
                  type: str
                  returned: success
                  sample: save
                state:
                  description: Its state in the manifest.
                  type: str
                  returned: success
                  sample: saved
                file:
                  description: Its save image (V(save)).
                  type: str
                  returned: success
                  sample: /var/lib/noreboot-xen/saved-guests/web1.save
                peer:
                  description: The dom0 it migrated to (V(migrate)).
                  type: str
                  returned: success
                  sample: dom0-b
                config:
                  description: The config it starts from (V(shutdown)).
                  type: str
                  returned: success
                  sample: /etc/xen/web1.cfg
                error:
                  description: The error the manifest records for it.
                  type: str
                  returned: success
                  sample: null
                running:
                  description: Whether a domain of that name runs here now (V(null) when C(xl list) could not tell).
                  type: bool
                  returned: success
                  sample: false
            reboot_intent:
              description: The ledger's reboot fallback intent that no outcome followed, or V(null).
              type: dict
              returned: success
              sample: {"run_id": "r1", "time": "2026-01-01T12:00:00Z", "advisory": "XSA-999", "hypervisor_build_id": "39a6...",
                       "fixed_build_ids": ["151b..."], "guests": ["web1"]}
            error:
              description: Why the manifest could not be read (it then counts as unfinished); V(null) otherwise.
              type: str
              returned: success
              sample: null
            ledger_error:
              description: Why the ledger could not be read (a reboot intent may then go unseen); V(null) otherwise.
              type: str
              returned: success
              sample: null
commands:
  description: The commands run, in order, with their exit status.
  returned: always
  type: list
  elements: dict
  sample: [{"argv": ["/usr/sbin/xl", "info"], "rc": 0}, {"argv": ["/usr/sbin/xen-livepatch", "list"], "rc": 0}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.noreboot.xen.plugins.module_utils.host_lock import inspect_lock
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import (
    LivepatchRunner,
    XlRunner,
    module_command_function,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import (
    SECTIONS,
    STATE_DIR,
    collect_xen_facts,
    read_ledger_text,
    read_text_file,
    runner_or_none,
)


def get_argument_spec():
    return dict(
        gather=dict(type='list', elements='str', choices=list(SECTIONS), default=list(SECTIONS)),
        state_dir=dict(type='path', default=STATE_DIR),
    )


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    run = module_command_function(module)
    history = []
    xl = runner_or_none(XlRunner, run, module.get_bin_path('xl'), history)
    livepatch = runner_or_none(LivepatchRunner, run, module.get_bin_path('xen-livepatch'), history)
    facts = collect_xen_facts(xl, livepatch, read_text_file, gather=module.params['gather'], warn=module.warn,
                              state_dir=module.params['state_dir'], read_ledger=read_ledger_text, read_lock=inspect_lock)
    commands = [dict(argv=result.argv, rc=result.rc) for result in history]
    module.exit_json(changed=False, ansible_facts=dict(xen=facts), commands=commands)


if __name__ == '__main__':
    main()
