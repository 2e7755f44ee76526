# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assemble the ``ansible_facts.xen`` dictionary of the ``noreboot.xen.xen_facts`` module.

Everything the collector touches is injected: the ``xl`` and ``xen-livepatch`` runners
(None when the tool is missing), a ``read_file(path) -> str or None`` function, and a
``warn(msg)`` function. So it runs in unit tests without a host. It never raises for a
missing or failing ``xl``: the host is then reported with ``present: false`` and a reason.

How the hypervisor version is told (an operator's view):

* ``xl info`` reports ``xen_extra`` through a hypervisor function that a live patch may
  replace: with ``xen_hello_world`` applied it says ``xen_version : 4.17Hello World``.
  ``xen_major``/``xen_minor`` and ``build_id`` are not touched by payloads.
* So ``hypervisor.version`` is the version the hypervisor booted with:
  from ``xl info`` when no payload is applied (``version_source: xl_info``); otherwise from
  the ``Xen version ...`` banner at the head of ``xl dmesg``, when the console ring still
  holds it and its build-id is the running one (``version_source: xl_dmesg``); otherwise
  the value ``xl info`` reports now, which a payload may have altered
  (``version_source: xl_info_live``). ``reported_version``/``reported_extra`` always carry
  what ``xl info`` says now.
* ``effective_version`` is ``version`` followed by ``+<name>`` for each APPLIED payload in
  ``xen-livepatch list`` order, or ``version`` alone when none is applied. It is None when
  the applied payloads cannot be known (tool missing, list failed, livepatch not gathered).

The rollout ledger (``<state_dir>/ledger.jsonl``, written by noreboot.xen.livepatch_rollout) is
read on a dom0 when ``livepatch`` is gathered: ``livepatch.open_intents`` lists the payloads
whose last ledger entry is an ``intent`` (a run died between its intent and its outcome, so
such a payload may be APPLIED with its health never checked). A missing ledger gives an empty
list; an unreadable one, or lines that are not JSON objects, give ``livepatch.ledger_error``
and a warning, never a failed detection. ``livepatch.last_outcomes`` lists, per payload name,
the ledger's last outcome entry (a payload ``reverted``, ``failed`` or ``failed_applied`` there
keeps counting: the plan holds the host or reports it ``needs_attention``), and
``livepatch.boot_id`` is the host's boot id now (an open intent written in another boot, whose
payload is no longer loaded, may have killed the host). ``livepatch.rollout_lock`` is what the host's
lock ``<state_dir>/rollout.lock`` says (host_lock.inspect_lock: ``held`` when a rollout
transaction runs there now, with the run id and pid its file records; None without a lock file):
a run refuses, or skips, hosts another run's transaction holds.

An unfinished reboot fallback is reported as ``evacuation`` (section ``evacuation``): the
guest manifest ``<state_dir>/guests.json`` (read with guest_evacuation.parse_manifest, the
reader xen_guests uses) lists guests saved, shut down or migrated that no restore brought
back yet, and the ledger's last reboot fallback entry may be an intent without an outcome
(written with ``name: null``; rollout_ledger.open_reboot_intent). Either makes
``evacuation.unfinished`` true, whatever the hypervisor build: a run died between moving the
guests and bringing them back, and the next run must finish it first. A manifest that cannot
be read counts as unfinished too (it may be the only record of where guests are).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re

from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import (
    MANIFEST_NAME,
    EvacuationError,
    parse_manifest,
    unfinished_guests,
)
from ansible_collections.noreboot.xen.plugins.module_utils.hardware_class import (
    CPUINFO_PATH,
    describe_hardware,
    read_dmi,
)
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_list_parser import (
    NO_CONTROL_INTERFACE,
    UNSUPPORTED_HYPERVISOR,
    LivepatchListError,
    parse_livepatch_list,
)
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_ledger import (
    last_outcomes,
    open_intents,
    open_reboot_intent,
    scan_ledger,
)
from ansible_collections.noreboot.xen.plugins.module_utils.host_lock import inspect_lock
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import (
    ToolNotFound,
    XenToolError,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xl_output_parsers import (
    XlOutputError,
    boot_banner,
    info_int,
    info_text,
    info_words,
    parse_xen_commandline,
    parse_xl_dmesg,
    parse_xl_info,
    parse_xl_list,
)

SECTIONS = ('hypervisor', 'livepatch', 'hardware', 'domains', 'evacuation')
CAPABILITIES_PATH = '/proc/xen/capabilities'
STATE_DIR = '/var/lib/noreboot-xen'
LEDGER_NAME = 'ledger.jsonl'
# What an open intent reports of its ledger entry.
OPEN_INTENT_KEYS = ('name', 'sha256', 'run_id', 'time')
# Reported only when the intent recorded it (intents written before boot ids were recorded lack it).
OPEN_INTENT_OPTIONAL_KEYS = ('boot_id',)
# What a last outcome reports of its ledger entry.
LAST_OUTCOME_KEYS = ('name', 'sha256', 'run_id', 'time', 'outcome', 'failed_checks')
BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id'
# What an open reboot fallback intent reports of its ledger entry.
REBOOT_INTENT_KEYS = ('run_id', 'time', 'advisory', 'hypervisor_build_id', 'fixed_build_ids', 'guests')
# What evacuation.guests reports of each guest of the manifest not yet back.
GUEST_KEYS = ('name', 'action', 'state', 'file', 'peer', 'config', 'error')

# livepatch.reason_kind values added to those of livepatch_list_parser.
TOOL_MISSING = 'tool_missing'
NOT_XEN_DOM0 = 'not_xen_dom0'

VERSION_FROM_XL_INFO = 'xl_info'
VERSION_FROM_DMESG = 'xl_dmesg'
VERSION_FROM_XL_INFO_LIVE = 'xl_info_live'


def read_text_file(path):
    """Read a text file; None when it is missing or unreadable. Bytes that are not UTF-8
    are replaced, never fatal."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError):
        return None


def read_ledger_text(path):
    """Read the ledger; None when it does not exist. Any other error (permissions, a
    directory in its place, an I/O error) is raised as IOError/OSError for the caller to
    report. Bytes that are not UTF-8 are replaced."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def read_ledger_entries(state_dir, read_ledger):
    """``(entries, ledger_error)`` of ``<state_dir>/ledger.jsonl``; never raises.

    ``entries``: the ledger's entries in order, empty when the ledger is missing or cannot be
    read. ``ledger_error``: None, or why the ledger could not be read (whole or in part).
    """
    path = os.path.join(state_dir, LEDGER_NAME)
    try:
        text = read_ledger(path)
    except (IOError, OSError) as exc:
        return [], 'the ledger %s cannot be read (%s): open intents are unknown' % (
            path, exc.strerror or exc)
    if text is None:
        return [], None
    entries, bad = scan_ledger(text)
    if not bad:
        return entries, None
    shown = ', '.join(str(number) for number in bad[:10]) + (' ...' if len(bad) > 10 else '')
    return entries, ('the ledger %s has %d line(s) that are not JSON objects (line %s), skipped: open intents '
                     'are read from the other lines' % (path, len(bad), shown))


def ledger_facts(state_dir, read_ledger):
    """``(open_intents, ledger_error)`` from ``<state_dir>/ledger.jsonl``; never raises.

    ``open_intents``: one dict per payload name whose last ledger entry is an intent
    (OPEN_INTENT_KEYS), by name; empty when the ledger is missing or cannot be read.
    ``ledger_error``: None, or why the ledger could not be read (whole or in part).
    """
    entries, ledger_error = read_ledger_entries(state_dir, read_ledger)
    return _intent_views(entries), ledger_error


def _intent_views(entries):
    return [dict([(key, entry.get(key)) for key in OPEN_INTENT_KEYS]
                 + [(key, entry[key]) for key in OPEN_INTENT_OPTIONAL_KEYS if entry.get(key)])
            for entry in open_intents(entries)]


def _last_outcome_views(entries):
    return [dict((key, entry.get(key)) for key in LAST_OUTCOME_KEYS) for entry in last_outcomes(entries)]


def ledger_history(state_dir, read_ledger):
    """``(open_intents, last_outcomes, ledger_error)``; see ledger_facts (never raises)."""
    entries, ledger_error = read_ledger_entries(state_dir, read_ledger)
    return _intent_views(entries), _last_outcome_views(entries), ledger_error


def evacuation_facts(state_dir, read_manifest, ledger, running_names=None):
    """The ``evacuation`` facts: an unfinished reboot fallback on this host; never raises.

    ``read_manifest``: ``path -> str or None`` like read_ledger_text; ``ledger``: what
    read_ledger_entries gave (``ledger_error`` says when the reboot intent may be unseen); ``running_names``: the names of the domains
    running now (None: unknown), to say of each guest not yet back whether it runs anyway.
    """
    path = os.path.join(state_dir, MANIFEST_NAME)
    facts = dict(unfinished=False, manifest_path=path, status=None, run_id=None, updated=None, guests=[],
                 reboot_intent=None, error=None, ledger_error=ledger[1])
    intent = open_reboot_intent(ledger[0])
    if intent is not None:
        facts['reboot_intent'] = dict((key, intent.get(key)) for key in REBOOT_INTENT_KEYS)
    try:
        manifest = parse_manifest(read_manifest(path), path)
    except (IOError, OSError) as exc:
        manifest = None
        facts['error'] = ('the guest manifest %s cannot be read (%s): where guests are is unknown; look at it before '
                          'anything else' % (path, exc.strerror or exc))
    except EvacuationError as exc:
        manifest = None
        facts['error'] = exc.msg
    if manifest is not None:
        facts.update(status=manifest.get('status'), run_id=manifest.get('run_id'), updated=manifest.get('updated'))
        for guest in unfinished_guests(manifest):
            view = dict((key, guest.get(key)) for key in GUEST_KEYS)
            view['running'] = None if running_names is None else guest.get('name') in running_names
            facts['guests'].append(view)
    facts['unfinished'] = bool(facts['guests'] or facts['reboot_intent'] or facts['error'])
    return facts


def runner_or_none(runner_class, run_function, binary, history=None):
    """Build a runner for ``binary``; None when the tool is not installed. Runners given the
    same ``history`` list record their commands there in the order they ran."""
    try:
        return runner_class(run_function, binary, history=history)
    except ToolNotFound:
        return None


def _first_line(*texts):
    for text in texts:
        for line in (text or '').splitlines():
            if line.strip():
                return line.strip()
    return 'no output'


def _run(method):
    """Run one runner method; a tool that cannot even start counts as a failed run."""
    try:
        return method(), None
    except (OSError, XenToolError) as exc:
        return None, str(exc)


def _absence_reason(xl, read_file):
    if xl is None:
        return 'xl not found on PATH: the Xen tools are not installed, this is not a Xen dom0'
    capabilities = read_file(CAPABILITIES_PATH)
    if capabilities is not None and 'control_d' not in capabilities:
        return 'not the Xen control domain (dom0): %s does not list control_d' % CAPABILITIES_PATH
    return None


def _read_xl_info(xl):
    """Return ``(info dict, None)`` or ``(None, reason)``."""
    result, error = _run(xl.info)
    if error:
        return None, 'xl info could not run: %s' % error
    if result.rc != 0:
        return None, 'xl info failed (rc=%s): %s' % (result.rc, _first_line(result.stderr, result.stdout))
    try:
        info = parse_xl_info(result.stdout)
    except XlOutputError as exc:
        return None, 'xl info output could not be read: %s' % exc
    if info_int(info, 'xen_major') is None or info_int(info, 'xen_minor') is None:
        return None, 'xl info did not report xen_major and xen_minor'
    return info, None


def _livepatch_facts(livepatch, warn):
    """Return the ``livepatch`` facts and the applied payload names (None when unknown)."""
    if livepatch is None:
        return dict(supported=False, reason='xen-livepatch not found on PATH', reason_kind=TOOL_MISSING,
                    payloads=[]), None
    result, error = _run(livepatch.list)
    if error:
        return dict(supported=False, reason='xen-livepatch list could not run: %s' % error,
                    reason_kind=TOOL_MISSING, payloads=[]), None
    try:
        payloads = parse_livepatch_list(result.stdout, result.stderr, result.rc)
    except LivepatchListError as exc:
        if exc.kind == UNSUPPORTED_HYPERVISOR:
            # Nothing can be applied on such a hypervisor: the applied set is known, empty.
            return dict(supported=False, reason=exc.reason, reason_kind=exc.kind, payloads=[]), []
        if exc.kind != NO_CONTROL_INTERFACE:
            warn('xen-livepatch list: %s' % exc.reason)
        return dict(supported=False, reason=exc.reason, reason_kind=exc.kind, payloads=[]), None
    applied = [p['name'] for p in payloads if p['state'] == 'APPLIED']
    return dict(supported=True, reason=None, reason_kind=None, payloads=payloads), applied


def _boot_version(xl, major_minor, build_id, warn):
    """The version from the boot banner of ``xl dmesg``, or None when it cannot be trusted."""
    result, error = _run(xl.dmesg)
    if error or result.rc != 0:
        warn('xl dmesg failed, the boot version cannot be read from it: %s'
             % (error or _first_line(result.stderr, result.stdout)))
        return None
    banner = boot_banner(parse_xl_dmesg(result.stdout))
    version = banner['version']
    if not version or not re.match(re.escape(major_minor) + r'(?!\d)', version):
        return None
    if banner['build_id'] is not None and build_id is not None and banner['build_id'] != build_id.lower():
        return None
    return version


def _hypervisor_facts(info, version, extra, source):
    return dict(
        version=version,
        major=info_int(info, 'xen_major'),
        minor=info_int(info, 'xen_minor'),
        extra=extra,
        version_source=source,
        reported_version=info.get('xen_version'),
        reported_extra=info.get('xen_extra'),
        changeset=info_text(info, 'xen_changeset'),
        build_id=info_text(info, 'build_id'),
        compiler=info_text(info, 'cc_compiler'),
        compile_date=info_text(info, 'cc_compile_date'),
        commandline=parse_xen_commandline(info.get('xen_commandline')),
        scheduler=info_text(info, 'xen_scheduler'),
        nr_cpus=info_int(info, 'nr_cpus'),
        hw_caps=info_text(info, 'hw_caps'),
        virt_caps=info_words(info, 'virt_caps'),
        xen_caps=info_words(info, 'xen_caps'),
        total_memory_mib=info_int(info, 'total_memory'),
        free_memory_mib=info_int(info, 'free_memory'),
    )


def _domains(xl, warn):
    result, error = _run(xl.list_domains)
    if error or result.rc != 0:
        warn('xl list failed: %s' % (error or _first_line(result.stderr, result.stdout)))
        return []
    try:
        return parse_xl_list(result.stdout)
    except XlOutputError as exc:
        warn('xl list output could not be read: %s' % exc)
        return []


def _ignore(msg):
    return None


def collect_xen_facts(xl, livepatch, read_file, gather=SECTIONS, warn=None, state_dir=STATE_DIR,
                      read_ledger=read_ledger_text, read_manifest=None, read_lock=inspect_lock):
    """Return the ``ansible_facts.xen`` dictionary.

    ``xl``: an XlRunner or None; ``livepatch``: a LivepatchRunner or None; ``read_file``:
    ``path -> str or None``; ``gather``: the sections to gather (see SECTIONS); a section
    not gathered is None. Commands run in this order: ``xl info``, ``xen-livepatch list``,
    ``xl dmesg`` (only when payloads are applied or unknown), ``xl list``. ``state_dir``:
    where the rollout ledger and the guest manifest are; ``read_ledger``: ``path -> str or
    None`` (None: no such file), raising IOError/OSError when the file exists but cannot be
    read; ``read_manifest``: the same for the guest manifest (default: ``read_ledger``); ``read_lock``:
    ``state_dir -> dict or None``, what the host's rollout lock says (host_lock.inspect_lock).
    With ``evacuation`` gathered, ``xl list`` runs (after the others) only when ``domains`` is
    not gathered and the manifest has guests not yet back.
    """
    warn = warn or _ignore
    gather = set(gather)
    facts = dict(present=False, reason=None, hypervisor=None, livepatch=None, effective_version=None,
                 hardware=None, domains=None, evacuation=None)
    read_once = []

    def ledger():
        if not read_once:
            read_once.append(read_ledger_entries(state_dir, read_ledger))
        return read_once[0]
    if 'hardware' in gather:
        facts['hardware'] = describe_hardware(read_file(CPUINFO_PATH), read_dmi(read_file))

    reason = _absence_reason(xl, read_file)
    info = None
    if reason is None:
        info, reason = _read_xl_info(xl)
    if info is None:
        facts['reason'] = reason
        if 'livepatch' in gather:
            facts['livepatch'] = dict(supported=False, reason='not a Xen dom0: %s' % reason,
                                      reason_kind=NOT_XEN_DOM0, payloads=[], open_intents=[], ledger_error=None,
                                      last_outcomes=[], boot_id=None, rollout_lock=read_lock(state_dir))
        if 'domains' in gather:
            facts['domains'] = []
        if 'evacuation' in gather:
            facts['evacuation'] = evacuation_facts(state_dir, read_manifest or read_ledger, ledger())
        return facts

    facts['present'] = True
    applied = None
    if 'livepatch' in gather:
        facts['livepatch'], applied = _livepatch_facts(livepatch, warn)
        entries, ledger_error = ledger()
        if ledger_error:
            warn(ledger_error)
        boot_id = (read_file(BOOT_ID_PATH) or '').strip() or None
        facts['livepatch'].update(open_intents=_intent_views(entries), ledger_error=ledger_error,
                                  last_outcomes=_last_outcome_views(entries), boot_id=boot_id,
                                  rollout_lock=read_lock(state_dir))

    major_minor = '%d.%d' % (info_int(info, 'xen_major'), info_int(info, 'xen_minor'))
    reported_extra = info.get('xen_extra', '')
    version, source = major_minor + reported_extra, VERSION_FROM_XL_INFO
    needs_version = 'hypervisor' in gather or applied is not None
    if needs_version and (applied is None or applied):
        booted = _boot_version(xl, major_minor, info_text(info, 'build_id'), warn)
        if booted:
            version, source = booted, VERSION_FROM_DMESG
        else:
            source = VERSION_FROM_XL_INFO_LIVE
    if applied is not None:
        facts['effective_version'] = '+'.join([version] + applied)
    if 'hypervisor' in gather:
        facts['hypervisor'] = _hypervisor_facts(info, version, version[len(major_minor):], source)
    if 'domains' in gather:
        facts['domains'] = _domains(xl, warn)
    if 'evacuation' in gather:
        facts['evacuation'] = _evacuation(xl, facts['domains'], state_dir, read_manifest or read_ledger, ledger(), warn)
    return facts


def _evacuation(xl, domains, state_dir, read_manifest, ledger, warn):
    evacuation = evacuation_facts(state_dir, read_manifest, ledger)
    if evacuation['guests']:
        if domains is None:
            domains = _domains(xl, warn)
        names = set(d['name'] for d in domains)
        for guest in evacuation['guests']:
            guest['running'] = guest['name'] in names
    if evacuation['error']:
        warn(evacuation['error'])
    return evacuation
