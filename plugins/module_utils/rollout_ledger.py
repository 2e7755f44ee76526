# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout ledger of a host: its readers (pure functions over text, no AnsibleModule) and its
one writer (``Ledger``, at the end of this file: every entry is appended there); and the reader of
the lock record (the lock itself is host_lock.py).

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
import os

from ansible_collections.noreboot.xen.plugins.module_utils.host_state_files import (
    O_CLOEXEC,
    O_NOFOLLOW,
    TransactionError,
    fsync_directory,
    read_text,
    write_fully,
)

LEDGER_NAME = 'ledger.jsonl'
LEDGER_PATH = '/var/lib/noreboot-xen/' + LEDGER_NAME
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


def ledger_proves(entry, name, sha256, states):
    """Does the ledger's last entry for ``name`` prove the loaded payload is ours?

    ``states`` is the set of (event, outcome) shapes that count: an ``intent`` proves a CHECKED
    payload left by an interrupted run; an intent or a ``patched`` / ``already_patched`` outcome
    proves an APPLIED one.
    """
    if not entry or entry.get('name') != name or entry.get('sha256') != sha256:
        return False
    if entry.get('event') == 'intent':
        return 'intent' in states
    return entry.get('event') == 'outcome' and entry.get('outcome') in states


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


# ------------------------------------------------------------------------------------------
# The writer: every ledger entry is appended here
# ------------------------------------------------------------------------------------------

class Ledger(object):
    """``<state_dir>/ledger.jsonl``: append-only record of what rollouts did on this host."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, LEDGER_NAME)

    def entries(self):
        return parse_ledger(read_text(self.path))

    def append(self, entry):
        """Append one whole line and make it durable; a line torn by a crash is closed first, so this entry
        is read back on its own. Raises TransactionError when it cannot be written (full or read-only disk)."""
        line = (json.dumps(entry, sort_keys=True) + '\n').encode('utf-8')
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b'\n':
                    line = b'\n' + line
                write_fully(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(os.path.dirname(self.path))
        except OSError as exc:
            raise TransactionError('cannot write the ledger %s: %s. Free space in (or fix the permissions of) the '
                                   'state directory, then run again' % (self.path, exc.strerror or exc))

    def last_for(self, name):
        return last_by_name(self.entries()).get(name)
