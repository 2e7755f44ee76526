# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reboot fallback's entries of the rollout ledger (pure functions, no AnsibleModule).

The role noreboot.xen.reboot_fallback records in ``<state_dir>/ledger.jsonl`` an ``intent``
before it reboots a host and an ``outcome`` after (or when it stops), both of ``kind``
``reboot_fallback`` and with ``name`` and ``sha256`` null (no payload), so the readers of
rollout_ledger keep them apart from the live patch entries (open_reboot_intent reads them).
Module noreboot.xen.reboot_ledger_entry builds them here and appends them with the one ledger
writer, ``Ledger.append`` (the one livepatch_rollout uses).

* intent: ``event``, ``kind``, ``run_id``, ``time``, ``name``, ``sha256``, ``advisory``,
  ``hypervisor_build_id`` (the build running before the reboot), ``fixed_build_ids``, ``guests``;
* outcome: ``event``, ``kind``, ``run_id``, ``time``, ``name``, ``sha256``, ``outcome``,
  ``advisory``, ``hypervisor_build_id`` (the build running after), ``previous_build_id``,
  ``rebooted``, ``guests``, ``msg``, and ``resumed_run_id`` when it closes an earlier run's
  intent (the role's finish entry point).

``advisory`` is the advisories' names joined with commas (null when none), as the live patch
entries hold it; ``guests`` the guests' names.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.rollout_ledger import REBOOT_KIND

INTENT = 'intent'
OUTCOME = 'outcome'
EVENTS = (INTENT, OUTCOME)
# What may differ between two records of the same event: an entry equal to the ledger's last
# reboot fallback entry but for these keys is already recorded.
VOLATILE_KEYS = ('time',)


def reboot_entry(event, run_id, time, outcome=None, advisories=None, hypervisor_build_id=None,
                 previous_build_id=None, fixed_build_ids=None, rebooted=False, resumed_run_id=None, guests=None,
                 msg=''):
    """The ledger entry (a dict) of a reboot fallback ``intent`` or ``outcome``.

    Raises ValueError naming the problem when ``event`` is unknown, an outcome has no ``outcome``
    or an intent has one.
    """
    if event not in EVENTS:
        raise ValueError('event must be one of %s, got %r' % (', '.join(EVENTS), event))
    if event == OUTCOME and not outcome:
        raise ValueError('an outcome entry needs the outcome (rebooted, failed, ...)')
    if event == INTENT and outcome:
        raise ValueError('an intent entry has no outcome (got %r): record the outcome with event=outcome' % outcome)
    entry = dict(event=event, kind=REBOOT_KIND, run_id=run_id, time=time, name=None, sha256=None,
                 advisory=','.join(advisories or []) or None,
                 hypervisor_build_id=hypervisor_build_id or None, guests=list(guests or []))
    if event == INTENT:
        entry['fixed_build_ids'] = list(fixed_build_ids or [])
        return entry
    entry.update(outcome=outcome, previous_build_id=previous_build_id or None, rebooted=bool(rebooted),
                 msg=msg or '')
    if resumed_run_id:
        entry['resumed_run_id'] = resumed_run_id
    return entry


def last_reboot_entry(entries):
    """The ledger's last reboot fallback intent or outcome, None when it has none."""
    last = None
    for entry in entries:
        if entry.get('kind') == REBOOT_KIND and entry.get('event') in EVENTS:
            last = entry
    return last


def already_recorded(entries, entry):
    """Is ``entry`` already the ledger's last reboot fallback entry (equal but for its time)?

    Appending it again would change nothing a reader of the ledger derives, so it is not
    appended: a repeated call is not a change."""
    last = last_reboot_entry(entries)
    if last is None:
        return False
    return _lasting(last) == _lasting(entry)


def _lasting(entry):
    return dict((key, value) for key, value in entry.items() if key not in VOLATILE_KEYS)
