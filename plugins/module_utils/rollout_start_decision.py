# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a rollout transaction starts on a host, decided from what it found (a pure function).

``start_decision`` takes the payload's state in ``xen-livepatch list`` (APPLIED, CHECKED or None),
the ledger's last entry for the payload's name, the payload's sha256, ``retry_reverted`` and
whether the payload's ``apply_until`` has passed; it returns one of the constants below, which
rollout_transaction.RolloutTransaction carries out. The order of the questions is the order of
the rows in the table of tests/unit/plugins/module_utils/test_rollout_start_decision.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.rollout_ledger import ledger_proves

# APPLIED, and the ledger's last entry is our intent: an earlier run applied it and died before its outcome.
FINISH_INTERRUPTED = 'finish_interrupted'
# APPLIED, and the ledger records our patched / already_patched outcome.
ALREADY_APPLIED_PROVEN = 'already_applied_proven'
# APPLIED, not recorded by us: the payload code checks its identity (metadata), read-only.
ALREADY_APPLIED_UNPROVEN = 'already_applied_unproven'
# The ledger says this host reverted this very payload and retry_reverted is false: not applied again.
PREVIOUSLY_REVERTED = 'previously_reverted'
# apply_until has passed: nothing is done, the host needs the reboot fallback.
EXPIRED = 'expired'
# CHECKED, and the ledger's last entry is our intent: apply it without a second upload.
RESUME = 'resume'
# CHECKED, not provably ours: unload it, then upload the staged file.
RELOAD = 'reload'
# Not loaded: upload and apply.
APPLY = 'apply'

DECISIONS = (FINISH_INTERRUPTED, ALREADY_APPLIED_PROVEN, ALREADY_APPLIED_UNPROVEN, PREVIOUSLY_REVERTED, EXPIRED,
             RESUME, RELOAD, APPLY)


def start_decision(state, last, name, sha256, retry_reverted=False, expired=False):
    """One of DECISIONS for the payload ``name`` with ``sha256`` (see the constants)."""
    if state == 'APPLIED':
        if ledger_proves(last, name, sha256, ('intent',)):
            return FINISH_INTERRUPTED
        if ledger_proves(last, name, sha256, ('patched', 'already_patched')):
            return ALREADY_APPLIED_PROVEN
        return ALREADY_APPLIED_UNPROVEN
    if (not retry_reverted and last and last.get('event') == 'outcome' and last.get('sha256') == sha256
            and last.get('outcome') == 'reverted'):
        return PREVIOUSLY_REVERTED
    if expired:
        return EXPIRED
    if state == 'CHECKED':
        return RESUME if ledger_proves(last, name, sha256, ('intent',)) else RELOAD
    return APPLY
