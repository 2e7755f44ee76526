# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's patch state as an Ansible local fact (``/etc/ansible/facts.d/noreboot_xen.fact``).

``build_fact`` makes the document from the host's ``ansible_facts.xen`` (hypervisor and
livepatch sections, as noreboot.xen.xen_facts gathers them) and its rollout ledger: effective
version, running build, applied payloads grouped by advisory (advisory and sha256 from the
ledger's last outcome entry for the payload's name; ``unknown`` when the ledger does not say),
and ``last_run``: the run that last changed the host (outcome ``patched`` or ``rebooted``); a run
that found the host already patched keeps the previous ``last_run``, so reruns leave the file
unchanged. ``write_atomic`` writes it through a temporary file in the same directory and a rename.
``record_patch_state`` reads the host and writes the file: the one writer, called by the modules
noreboot.xen.patch_state_fact and noreboot.xen.livepatch_rollout (``local_fact``, in the same
module execution as the transaction).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile

from ansible_collections.noreboot.xen.plugins.module_utils.rollout_ledger import last_by_name, parse_ledger
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import (
    LEDGER_NAME,
    collect_xen_facts,
    read_ledger_text,
    read_text_file,
)

FACT_PATH = '/etc/ansible/facts.d/noreboot_xen.fact'
SCHEMA = 1
CHANGING_OUTCOMES = ('patched', 'rebooted')
UNKNOWN_ADVISORY = 'unknown'


def build_fact(xen, ledger_entries, run_id, outcome, kind, previous=None):
    """The fact document (a dict). ``previous``: the document already on the host, or None."""
    xen = xen or {}
    hypervisor = xen.get('hypervisor') or {}
    livepatch = xen.get('livepatch') or {}
    last = last_by_name(ledger_entries or [])
    applied = {}
    for payload in livepatch.get('payloads') or []:
        if payload.get('state') != 'APPLIED':
            continue
        entry = last.get(payload['name']) or {}
        advisory = entry.get('advisory') or UNKNOWN_ADVISORY
        applied.setdefault(advisory, []).append(dict(name=payload['name'], sha256=entry.get('sha256')))
    last_run = dict(id=run_id, outcome=outcome, kind=kind)
    if outcome not in CHANGING_OUTCOMES and isinstance(previous, dict) and previous.get('last_run'):
        last_run = previous['last_run']
    return dict(
        schema=SCHEMA,
        present=bool(xen.get('present')),
        hypervisor_version=hypervisor.get('version'),
        build_id=hypervisor.get('build_id'),
        effective_version=xen.get('effective_version'),
        applied_payloads=applied,
        last_run=last_run,
    )


def render(document):
    """The file's text: JSON, keys sorted, one trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True) + '\n'


def parse(text):
    """The document in ``text``, or None when there is none or it is not a JSON object."""
    if not text:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def write_atomic(path, text, mode=0o644):
    """Write ``text`` to ``path`` through a temporary file in its directory, fsync, then rename:
    a reader sees the old file or the new one, never a torn one. Creates the directory (0755)."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle, temporary = tempfile.mkstemp(prefix='.noreboot_xen.', dir=directory)
    try:
        with os.fdopen(handle, 'w') as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except Exception:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def record_patch_state(xl, livepatch, state_dir, run_id, outcome, kind, path=FACT_PATH, check_mode=False, warn=None):
    """Read the host (``xl info``, ``xen-livepatch list``, the ledger under ``state_dir``) and write the fact
    file at ``path`` unless ``check_mode``; ``xl``/``livepatch``: runners (None when the tool is missing).

    Returns dict(changed, fact, path, before, after); raises IOError/OSError when the file cannot be written."""
    warn = warn or (lambda msg: None)
    xen = collect_xen_facts(xl, livepatch, read_text_file, gather=['hypervisor', 'livepatch'], warn=warn,
                            state_dir=state_dir, read_ledger=read_ledger_text)
    try:
        ledger = parse_ledger(read_ledger_text(os.path.join(state_dir, LEDGER_NAME)))
    except (IOError, OSError) as exc:
        warn('the rollout ledger could not be read (%s): advisories of the payloads are unknown' % exc)
        ledger = []
    before = read_text_file(path)
    document = build_fact(xen, ledger, run_id, outcome, kind, previous=parse(before))
    text = render(document)
    changed = text != before
    if changed and not check_mode:
        write_atomic(path, text)
    return dict(changed=changed, fact=document, path=path, before=before or '', after=text)
