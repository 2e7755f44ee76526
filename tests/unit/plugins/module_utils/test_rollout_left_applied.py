# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A payload left APPLIED after failed checks is ``failed_applied``: it stops the run whatever the
budget, the run exits non-zero, and every later plan reports the host ``needs_attention``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.noreboot.xen.plugins.module_utils import plan_decision as pd
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb

from rollout_fake_host import FakeHost  # noqa: E402  pylint: disable=wrong-import-position
from test_rollout_transaction import NAME, ledger, staged, transaction  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from test_plan_decision import advisory, facts  # noqa: E402  pylint: disable=wrong-import-position


def test_a_revert_that_hits_ebusy_forever_is_failed_applied_in_the_result_and_the_ledger(staged):  # noqa: F811
    host = FakeHost()
    host.on_apply.append(lambda h: h.guests.pop())
    host.ebusy['revert'] = 99
    result = transaction(host, staged, retries=1).run()
    assert result['outcome'] == 'failed_applied'
    assert host.row(NAME)['state'] == 'APPLIED'
    assert ledger(staged)[-1]['outcome'] == 'failed_applied'


def test_revert_on_failure_false_is_failed_applied(staged):  # noqa: F811
    host = FakeHost()
    host.on_apply.append(lambda h: h.guests.pop())
    result = transaction(host, staged, revert_on_failure=False).run()
    assert result['outcome'] == 'failed_applied'
    assert ledger(staged)[-1]['outcome'] == 'failed_applied'


def test_a_clean_revert_is_still_reverted(staged):  # noqa: F811
    host = FakeHost()
    host.on_apply.append(lambda h: h.guests.pop())
    assert transaction(host, staged).run()['outcome'] == 'reverted'


def test_failed_applied_stops_the_run_whatever_the_budget():
    gate = rb.evaluate_gate(['c1', 'h1', 'h2'], {'c1': 'patched', 'h1': 'failed_applied'}, canaries=['c1'],
                            budget_hosts='unlimited')
    assert gate['proceed'] is False
    assert gate['reason'].startswith('payload left APPLIED after failed checks: h1 (failed_applied)')
    summary = rb.summarize({'c1': dict(decision='livepatch', wave='wave_1'), 'h1': dict(decision='livepatch', wave='wave_2')},
                           {'c1': 'patched', 'h1': 'failed_applied'}, gate=gate)
    assert summary['needs_attention'] == ['h1'] and summary['attention'] is True


def _applied_after(outcome):
    xen = facts(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}])
    xen['livepatch'].update(open_intents=[], ledger_error=None, last_outcomes=[
        dict(name='xsa999_4175', sha256='a' * 64, outcome=outcome, run_id='R9', time='t9', failed_checks=['guests_running'])])
    return xen


def test_an_applied_payload_whose_last_outcome_is_a_failure_needs_attention_never_already_patched():
    for outcome in ('failed_applied', 'failed'):
        result = pd.decide_host('h1', dict(xen=_applied_after(outcome)), [advisory()])
        assert result['decision'] == 'needs_attention', result['reason']
        assert 'run R9' in result['reason'] and 'left applied after failed checks' in result['reason']
    assert pd.decide_host('h1', dict(xen=_applied_after('patched')), [advisory()])['decision'] == 'already_patched'
