# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan shape: canary waves are capped; the run id is checked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.noreboot.xen.plugins.filter.rollout_run import rollout_run_id
from ansible_collections.noreboot.xen.plugins.module_utils import wave_plan as wp
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_run_id import run_id_problem
from ansible.errors import AnsibleFilterError


def _twenty_groups():
    return [dict(host='g%02d-%d' % (g, i), decision='livepatch', build_id='%040x' % g, hardware_class='intel-6-85',
                 failure_domain=None) for g in range(20) for i in range(2)]


def test_twenty_groups_give_canary_waves_of_at_most_five_by_default():
    plan = wp.plan_waves(_twenty_groups(), {'max_per_domain': None})
    canary_waves = [w for w in plan['waves'] if w['kind'] == 'canary']
    assert [w['size'] for w in canary_waves] == [5, 5, 5, 5]
    assert sorted(h for w in canary_waves for h in w['hosts']) == ['g%02d-0' % g for g in range(20)]


def test_the_canary_cap_is_a_policy_key_and_0_lifts_it():
    plan = wp.plan_waves(_twenty_groups(), {'max_per_domain': None, 'max_canaries_per_wave': 8})
    assert [w['size'] for w in plan['waves'] if w['kind'] == 'canary'] == [8, 8, 4]
    plan = wp.plan_waves(_twenty_groups(), {'max_per_domain': None, 'max_canaries_per_wave': 0})
    assert [w['size'] for w in plan['waves'] if w['kind'] == 'canary'] == [20]
    with pytest.raises(wp.PolicyError, match='max_canaries_per_wave'):
        wp.normalize_policy({'max_canaries_per_wave': '10%'})


@pytest.mark.parametrize('run_id', ['../../etc', 'a/b', 'x y', '', '-rf', 'a' * 65, 'r;id', None, 5])
def test_a_bad_run_id_is_refused_with_the_fix(run_id):
    assert 'noreboot_xen_run_id' in run_id_problem(run_id)
    with pytest.raises(AnsibleFilterError, match='noreboot_xen_run_id'):
        rollout_run_id(run_id)


@pytest.mark.parametrize('run_id', ['20260101T000000Z-beef', 'run-2', 'a', 'A.b_c-d'])
def test_good_run_ids_pass(run_id):
    assert run_id_problem(run_id) is None and rollout_run_id(run_id) == run_id


def _tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ('tasks', 'block', 'rescue', 'always', 'pre_tasks', 'post_tasks'):
            yield from _tasks(node.get(key) or [])


def test_every_detect_play_reads_the_ledger_from_livepatch_state_dir():
    import glob
    import os
    import yaml
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'playbooks')
    found = []
    imports = {}
    for path in sorted(glob.glob(os.path.join(root, '*.yml'))):
        with open(path) as handle:
            plays = yaml.safe_load(handle)
        name = os.path.basename(path)
        imports[name] = [p.get('ansible.builtin.import_playbook') for p in plays if p.get('ansible.builtin.import_playbook')]
        for task in _tasks(plays):
            if 'noreboot.xen.xen_facts' in task:
                found.append(name)
                args = task['noreboot.xen.xen_facts'] or {}
                assert args.get('state_dir') == '{{ livepatch_state_dir | default(omit) }}', path
    # Detection is said once for the three playbooks that plan (detect_and_plan.yml), and once for the report.
    assert found == ['detect_and_plan.yml', 'inventory_report.yml'], found
    for name in ('plan.yml', 'rolling_livepatch.yml', 'reboot_fallback.yml'):
        assert imports[name][:2] == ['check_advisories.yml', 'detect_and_plan.yml'], (name, imports[name])
