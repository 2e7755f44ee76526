# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_state: the one reader of the run's state out of hostvars, shared by the filter files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter import reboot_fallback_report, reboot_waves, rollout_gate_summary
from ansible_collections.noreboot.xen.plugins.plugin_utils import run_state

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'roles')

PLAN = dict(
    waves=[dict(number=1, kind='canary', hosts=['c1']),
           dict(number=2, kind='reboot', hosts=['r1', 'r2', 'r3'])],
    decisions=dict(c1=dict(decision='livepatch'), r1=dict(decision='reboot'), r2=dict(decision='reboot'),
                   r3=dict(decision='reboot'), f1=dict(decision='finish_reboot')),
)


def facts_set_by(role):
    """The names of the facts a role's tasks set with set_fact."""
    names = set()
    tasks = os.path.join(ROLES, role, 'tasks')
    for name in os.listdir(tasks):
        with open(os.path.join(tasks, name)) as handle:
            stack = list(yaml.safe_load(handle) or [])
        while stack:
            task = stack.pop()
            for key in ('block', 'rescue', 'always'):
                stack.extend(task.get(key) or [])
            for module in ('set_fact', 'ansible.builtin.set_fact'):
                if isinstance(task.get(module), dict):
                    names.update(task[module])
    return names


def test_the_fact_names_are_those_the_roles_set():
    assert {run_state.LIVE_OUTCOME_FACT, run_state.LIVE_RESULT_FACT} <= facts_set_by('livepatch')
    assert {run_state.REBOOT_OUTCOME_FACT, run_state.REBOOT_RESULT_FACT,
            run_state.REBOOT_PROGRESS_FACT} <= facts_set_by('reboot_fallback')


@pytest.mark.parametrize('hostvars, expected', [
    ({'h': {'k': 'v'}}, 'v'),
    ({'h': {}}, None),
    ({}, None),
    ({'h': 'not a mapping'}, None),
])
def test_host_var_is_none_when_the_host_or_the_variable_is_missing(hostvars, expected):
    assert run_state.host_var(hostvars, 'h', 'k') == expected


def test_collect_outcomes_reads_live_and_reboot_hosts_and_accounts_a_host_lost_mid_role():
    hostvars = {
        'c1': {run_state.LIVE_OUTCOME_FACT: 'patched'},
        'r1': {run_state.REBOOT_OUTCOME_FACT: 'rebooted', run_state.REBOOT_RESULT_FACT: {'msg': 'ok'}},
        'r2': {run_state.REBOOT_OUTCOME_FACT: 'in_progress',
               run_state.REBOOT_PROGRESS_FACT: {'phase': 'reboot', 'guests': [
                   dict(name='w', action='save', file='/s/w.save', state='saved')]}},
        'r3': {run_state.REBOOT_OUTCOME_FACT: 'guests_not_restored',
               run_state.REBOOT_RESULT_FACT: {'stranded': ['g (saved to /s/g.save, state saved)']}},
    }
    live, reboot, results, stranded = run_state.collect_outcomes(PLAN, hostvars)
    assert live == {'c1': 'patched'}
    assert reboot['r1'] == 'rebooted' and results['r1'] == {'msg': 'ok'}
    assert reboot['r2'] == 'lost'
    assert reboot['r3'] == 'guests_not_restored'
    assert stranded == {'r2': ['w (saved to /s/w.save, state saved)'], 'r3': ['g (saved to /s/g.save, state saved)']}


def test_collect_finish_reads_the_finish_reboot_hosts():
    hostvars = {'f1': {run_state.REBOOT_OUTCOME_FACT: 'rebooted', run_state.REBOOT_RESULT_FACT: {'msg': 'done'}}}
    outcomes, results, stranded = run_state.collect_finish(PLAN, hostvars)
    assert outcomes == {'f1': 'rebooted'} and results == {'f1': {'msg': 'done'}} and stranded == {}


def test_collect_outcomes_refuses_what_is_not_a_plan():
    with pytest.raises(AnsibleFilterError, match='expected the plan'):
        run_state.collect_outcomes(['not', 'a', 'plan'], {})


def test_the_filter_files_read_through_run_state():
    for module in (reboot_fallback_report, reboot_waves, rollout_gate_summary):
        assert module.collect_outcomes is run_state.collect_outcomes
        assert module.collect_finish is run_state.collect_finish
        assert not hasattr(module, '_hostvar')
