# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A slice of a sliced AWX job is seen in the extra vars AWX sets (awx/main/models/jobs.py, workflow.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.noreboot.xen.plugins.filter.awx_job import awx_sliced_job_problem
from ansible_collections.noreboot.xen.plugins.module_utils.awx_job_slice import sliced_job

TEMPLATE = 'noreboot.xen rolling live patch'
# What AWX 24 sets on a job: UnifiedJob.awx_meta_vars (job id, launch type, the workflow job when launched by one)
# and Job.awx_meta_vars (the job template).
PLAIN_JOB = {'awx_job_id': 41, 'awx_job_launch_type': 'manual', 'awx_job_template_name': TEMPLATE}
SLICE = {'awx_job_id': 43, 'awx_job_launch_type': 'workflow', 'awx_workflow_job_id': 42,
         'awx_workflow_job_name': TEMPLATE, 'awx_job_template_name': TEMPLATE}
WORKFLOW_NODE = dict(SLICE, awx_workflow_job_name='noreboot.xen XSA rollout (approval)')
TOWER_SLICE = dict((k.replace('awx_', 'tower_'), v) for k, v in SLICE.items())

CASES = [
    ('outside-awx', {}, False),
    ('plain-job', PLAIN_JOB, False),
    ('scheduled-job', dict(PLAIN_JOB, awx_job_launch_type='scheduled'), False),
    ('workflow-template-node', WORKFLOW_NODE, False),
    ('slice-of-a-sliced-job', SLICE, True),
    ('slice-with-tower-names', TOWER_SLICE, True),
    ('relaunched-slice-is-not-seen', dict(SLICE, awx_job_launch_type='relaunch'), False),
    ('workflow-without-template-name', dict(SLICE, awx_job_template_name=None), False),
]


@pytest.mark.parametrize('meta, expected', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_slice_is_told_from_other_jobs(meta, expected):
    assert sliced_job(meta) is expected


def test_the_refusal_names_why_and_the_fix():
    problem = awx_sliced_job_problem('noreboot.xen', job_id=43, launch_type='workflow', workflow_job_id=42,
                                     workflow_job_name=TEMPLATE, job_template_name=TEMPLATE)
    assert problem.startswith("noreboot.xen refuses to run as one slice of a sliced AWX job: this job (id 43) was launched "
                              "by workflow job 42, which has the name of its own job template ('%s')" % TEMPLATE)
    assert "Fix: set the job template's job slicing to 1" in problem and problem.endswith('Nothing was changed.')
    assert awx_sliced_job_problem('noreboot.xen', job_id=41, launch_type='manual', job_template_name=TEMPLATE) is None


def test_the_sliced_mode_is_an_opt_in_for_the_remaining_waves_of_an_approved_plan():
    args = dict(job_id=43, launch_type='workflow', workflow_job_id=42, workflow_job_name=TEMPLATE,
                job_template_name=TEMPLATE)
    # Opted in, with the plan and the phase after_canary: a slice runs.
    assert awx_sliced_job_problem('noreboot.xen', slices=4, has_plan=True, phase='after_canary', **args) is None
    # Opted in without the plan, or for another phase: refused, sliced or not, naming what is missing.
    no_plan = awx_sliced_job_problem('noreboot.xen', slices=4, has_plan=False, phase='after_canary', **args)
    assert 'noreboot_xen_rollout_plan (not given)' in no_plan and no_plan.endswith('Nothing was changed.')
    canary = awx_sliced_job_problem('noreboot.xen', job_id=41, launch_type='manual', slices=4, has_plan=True,
                                    phase='canary')
    assert 'noreboot_xen_rollout_phase after_canary (canary given)' in canary
    assert 'noreboot_xen_rollout_slices' in awx_sliced_job_problem('noreboot.xen', slices='x', has_plan=True,
                                                                   phase='after_canary')
    # Slices 1 (or unset) is not the opt-in: the refusal of a slice stays.
    assert awx_sliced_job_problem('noreboot.xen', slices=1, has_plan=True, phase='after_canary', **args)
