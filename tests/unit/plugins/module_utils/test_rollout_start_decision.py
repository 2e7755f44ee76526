# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_start_decision.start_decision: what a transaction does first, from the table, the ledger and the clock."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import rollout_start_decision as start

NAME = 'xsa999'
SHA = 'a' * 64
OTHER = 'b' * 64


def entry(event, outcome=None, sha256=SHA, name=NAME):
    found = dict(event=event, name=name, sha256=sha256, run_id='run-1')
    if outcome:
        found['outcome'] = outcome
    return found


# (payload state in xen-livepatch list, the ledger's last entry for the name, retry_reverted, expired) -> decision
CASES = [
    ('APPLIED', entry('intent'), False, False, start.FINISH_INTERRUPTED),
    ('APPLIED', entry('intent'), False, True, start.FINISH_INTERRUPTED),
    ('APPLIED', entry('outcome', 'patched'), False, False, start.ALREADY_APPLIED_PROVEN),
    ('APPLIED', entry('outcome', 'already_patched'), False, True, start.ALREADY_APPLIED_PROVEN),
    ('APPLIED', entry('outcome', 'patched', sha256=OTHER), False, False, start.ALREADY_APPLIED_UNPROVEN),
    ('APPLIED', entry('outcome', 'reverted'), False, False, start.ALREADY_APPLIED_UNPROVEN),
    ('APPLIED', None, False, False, start.ALREADY_APPLIED_UNPROVEN),
    (None, entry('outcome', 'reverted'), False, False, start.PREVIOUSLY_REVERTED),
    ('CHECKED', entry('outcome', 'reverted'), False, True, start.PREVIOUSLY_REVERTED),
    (None, entry('outcome', 'reverted'), True, False, start.APPLY),
    (None, entry('outcome', 'reverted', sha256=OTHER), False, False, start.APPLY),
    (None, None, False, True, start.EXPIRED),
    ('CHECKED', entry('intent'), False, True, start.EXPIRED),
    ('CHECKED', entry('intent'), False, False, start.RESUME),
    ('CHECKED', entry('intent', sha256=OTHER), False, False, start.RELOAD),
    ('CHECKED', entry('outcome', 'patched'), False, False, start.RELOAD),
    ('CHECKED', None, False, False, start.RELOAD),
    (None, None, False, False, start.APPLY),
    (None, entry('intent'), False, False, start.APPLY),
    (None, entry('outcome', 'failed'), False, False, start.APPLY),
]


@pytest.mark.parametrize('state, last, retry_reverted, expired, decision', CASES,
                         ids=['%s-%s-%s%s%s' % (c[0], c[1] and (c[1].get('outcome') or c[1]['event']),
                                                c[1] and ('ours' if c[1]['sha256'] == SHA else 'other'),
                                                '-retry' if c[2] else '', '-expired' if c[3] else '')
                              for c in CASES])
def test_start_decision(state, last, retry_reverted, expired, decision):
    assert start.start_decision(state, last, NAME, SHA, retry_reverted=retry_reverted, expired=expired) == decision


def test_every_decision_is_in_the_table():
    assert set(case[-1] for case in CASES) == set(start.DECISIONS)


def test_options_refuse_an_unknown_key():
    from ansible_collections.noreboot.xen.plugins.module_utils.rollout_transaction import RolloutOptions
    with pytest.raises(TypeError, match='soak'):
        RolloutOptions('x', '/s', SHA, 'run-1', soak=3)
    options = RolloutOptions.from_params(dict(name='x', src='/s', checksum=SHA, run_id='run-1', prepare_only=True,
                                              payload_build_id='ABC', soak_seconds=None), check_mode=True)
    assert (options.check_mode, options.payload_build_id, options.soak_seconds, options.retries) == (True, 'abc', 0.0, 5)
