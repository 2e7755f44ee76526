# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a playbook runs as one slice of a sliced AWX job, from the extra vars AWX gives every job.

A job template with ``job_slice_count`` above 1 does not launch a job: AWX (``JobTemplate.create_unified_job``
in awx/main/models/jobs.py) creates a *workflow job* of the template's own name, with one node per slice;
each node's job gets only its share of the inventory (``Inventory.get_script_data``: the hosts sorted by
name, every ``slice_count``-th from ``slice_number``). AWX gives a playbook no variable naming the slice, but
the extra vars it sets on every job (``UnifiedJob.awx_meta_vars`` and ``Job.awx_meta_vars``) show it: the
job was launched by a workflow (``awx_job_launch_type`` ``workflow``, ``awx_workflow_job_id`` set) whose
name is the job template's own (``awx_workflow_job_name`` equal to ``awx_job_template_name``). A node of a
workflow template has the workflow template's name there instead - unless the two were given the same
name, which the refusal then asks to change.

A slice plans its own canaries and counts its own failure budget over its own hosts only, so the slices
together could spend the whole-run budget several times over: a rollout must not run sliced by accident.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.plan_reuse import sliced_problem
from ansible_collections.noreboot.xen.plugins.module_utils.sliced_rollout import sliced_mode


def _first(meta, name):
    for prefix in ('awx', 'tower'):
        value = meta.get('%s_%s' % (prefix, name))
        if value not in (None, ''):
            return value
    return None


def sliced_job(meta):
    """True when the AWX extra vars in ``meta`` (a mapping) are those of one slice of a sliced job."""
    meta = meta or {}
    template = _first(meta, 'job_template_name')
    return bool(_first(meta, 'job_launch_type') == 'workflow' and _first(meta, 'workflow_job_id') is not None
                and template is not None and _first(meta, 'workflow_job_name') == template)


def sliced_job_problem(meta, playbook, slices=None, has_plan=False, phase=None):
    """The refusal (a sentence naming why and the fix) when ``meta`` shows a slice of a sliced job, else None.

    ``slices`` (noreboot_xen_rollout_slices, 2 or more) is the opt-in of the sliced mode: a slice is then not
    refused here, but the job must run the remaining waves of an approved plan (``has_plan``, ``phase``
    after_canary; plan_reuse.sliced_problem), sliced or not; which slice it is, fleet_plan finds out."""
    if sliced_mode(slices):
        return sliced_problem(slices, has_plan, phase)
    if not sliced_job(meta):
        return None
    return ('%s refuses to run as one slice of a sliced AWX job: this job (id %s) was launched by workflow job %s, '
            'which has the name of its own job template (%r) - that is how AWX runs a job template whose job slicing '
            '(job_slice_count) is above 1, without noreboot_xen_rollout_slices. Each slice gets only its share of the inventory, so it would plan its own '
            'canaries and count its own failure budget, and the slices together could exceed the budget of the whole '
            'run. Fix: set the job template\'s job slicing to 1 (and run it on one execution node), or run the remaining waves of an '
            'approved plan sliced on purpose (noreboot_xen_rollout_slices equal to the job slicing, see docs/awx.md); if this is a '
            'workflow template node instead, give the workflow template a name other than the job template\'s. '
            'Nothing was changed.'
            % (playbook, _first(meta, 'job_id'), _first(meta, 'workflow_job_id'), _first(meta, 'job_template_name')))
