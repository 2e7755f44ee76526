# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the rollout ledger and lock of a host (pure functions over text, no AnsibleModule).

``/var/lib/noreboot-xen/ledger.jsonl`` is written by noreboot.xen.livepatch_rollout: one JSON
object a line, ``event`` ``intent`` (before a payload is applied) or ``outcome`` (after), with
``name``, ``sha256``, ``run_id``, ``time``, for intents ``boot_id`` (the host's boot when it was
written) and, for outcomes, ``outcome`` and ``failed_checks``. Entries of a planned rollout also
carry ``verification``: what the plan verified before the payload was applied (the advisory
directory's signature - key fingerprint and signature time, or ``unsigned`` - and the payload's
``.note.Xen.signature``; see payload_verification).
``/var/lib/noreboot-xen/rollout.lock`` holds the running transaction's run id, pid and time.

Detection may use these to tell a payload a rollout finished from one whose run died after
the apply (an *open intent*): such a payload is APPLIED but its health was never checked.
The reboot fallback writes entries of ``kind`` ``reboot_fallback`` (``name`` null) to the same
ledger; open_reboot_intent tells a reboot whose run died before its outcome.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

LEDGER_PATH = '/var/lib/noreboot-xen/ledger.jsonl'
LOCK_PATH = '/var/lib/noreboot-xen/rollout.lock'


def scan_ledger(text):
    """``(entries, skipped)``: the ledger's entries in order, and the numbers (1-based) of the
    non-blank lines that are not a JSON object (torn by a crash), which are skipped."""
    entries = []
    skipped = []
    for number, line in enumerate((text or '').splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            entries.append(entry)
        else:
            skipped.append(number)
    return entries, skipped


def parse_ledger(text):
    """The ledger's entries in order; lines that are not a JSON object (torn by a crash) are skipped."""
    return scan_ledger(text)[0]


def last_by_name(entries):
    """Map payload name to its last ledger entry."""
    last = {}
    for entry in entries:
        if entry.get('name'):
            last[entry['name']] = entry
    return last


def open_intents(entries):
    """Intents no outcome followed (the run died between its intent and its outcome), by name order."""
    return [entry for name, entry in sorted(last_by_name(entries).items()) if entry.get('event') == 'intent']


def last_outcomes(entries):
    """Map payload name to its last ``outcome`` entry (an intent after it does not hide it), by name order."""
    last = {}
    for entry in entries:
        if entry.get('name') and entry.get('event') == 'outcome':
            last[entry['name']] = entry
    return [last[name] for name in sorted(last)]


# The ``kind`` of the entries the reboot fallback (role noreboot.xen.reboot_fallback) writes: an
# intent before the reboot, an outcome after. They carry ``name: null`` (no payload), so
# last_by_name / open_intents leave them out; open_reboot_intent reads them.
REBOOT_KIND = 'reboot_fallback'


def open_reboot_intent(entries):
    """The last reboot fallback intent when no reboot fallback outcome followed it (a run died
    between recording its intent to reboot the host and recording the outcome), else None."""
    last = None
    for entry in entries:
        if entry.get('kind') == REBOOT_KIND and entry.get('event') in ('intent', 'outcome'):
            last = entry
    return last if last is not None and last.get('event') == 'intent' else None


def parse_lock(text):
    """The lock holder as a dict (run_id, pid, time, ...), None when there is no lock text,
    ``{'unreadable': True}`` when the text is not a JSON object."""
    if text is None or not text.strip():
        return None
    try:
        holder = json.loads(text)
    except ValueError:
        return dict(unreadable=True)
    return holder if isinstance(holder, dict) else dict(unreadable=True)
