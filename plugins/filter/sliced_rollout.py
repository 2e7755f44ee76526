# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of a rollout run in jobs (a phase of an approved plan, or one slice of a sliced AWX job): the job's
failure budget out of the whole run's, and the merge of the slices' summaries. The logic is in
plugins/plugin_utils/rollout_budget.py (run_budget) and plugins/module_utils/sliced_rollout.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.module_utils import sliced_rollout as sr
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb


def rollout_run_budget(plan, budget=None, with_reboots=False):
    """This job's budget out of the whole run's (see rollout_budget.run_budget); None for a whole run in one job.
    ``budget``: the run's budget fact, ``{'hosts', 'percent', 'earlier'}`` (``earlier``: the canaries job's summary)."""
    budget = budget or {}
    if not hasattr(budget, 'get'):
        raise AnsibleFilterError('expected the budget as a mapping with hosts, percent and earlier, got %r'
                                 % type(budget).__name__)
    try:
        return rb.run_budget(plan, budget_hosts=budget.get('hosts'), budget_percent=budget.get('percent'),
                             with_reboots=str(with_reboots).lower() in ('true', '1', 'yes'),
                             earlier=budget.get('earlier') or None)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def rollout_sliced_reboot_problem(reboot_hosts, slices=1, reboot_ok=False):
    """The refusal when this slice of a sliced rollout would reboot hosts (see sliced_rollout.sliced_reboot_problem),
    else ''."""
    return sr.sliced_reboot_problem(reboot_hosts, slices, str(reboot_ok).lower() in ('true', '1', 'yes')) or ''


def rollout_summary_artifact(summary):
    """The summary as the job's artifact, ``{key: summary}``: under a key of its own for one slice of a sliced job
    (``summary['slice']``), else noreboot_xen_rollout_summary."""
    split = (summary or {}).get('slice')
    if split:
        return {sr.slice_summary_key(split['number'], split['count']): summary}
    return {'noreboot_xen_rollout_summary': summary}


def rollout_merge_slices(artifacts, count, earlier=None, plan=None):
    """One summary of the slices' summary artifacts (see sliced_rollout.merge_slice_summaries); ``plan``: the
    approved plan artifact, whose every host must be in one summary."""
    plan_hosts = list((plan or {}).get('decisions') or {}) if plan else None
    try:
        return sr.merge_slice_summaries(artifacts, count, earlier=earlier or None, plan_hosts=plan_hosts)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            'rollout_run_budget': rollout_run_budget,
            'rollout_summary_artifact': rollout_summary_artifact,
            'rollout_merge_slices': rollout_merge_slices,
            'rollout_sliced_reboot_problem': rollout_sliced_reboot_problem,
        }
