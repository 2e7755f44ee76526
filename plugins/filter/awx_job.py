# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters on what a playbook learns from the extra vars AWX sets on every job (logic in module_utils/awx_job_slice.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.awx_job_slice import sliced_job_problem


def awx_sliced_job_problem(playbook, job_id=None, launch_type=None, workflow_job_id=None, workflow_job_name=None,
                           job_template_name=None, slices=None, has_plan=False, phase=None):
    """The refusal when this job is one slice of a sliced AWX job (unless sliced on purpose), else None."""
    return sliced_job_problem(dict(awx_job_id=job_id, awx_job_launch_type=launch_type, awx_workflow_job_id=workflow_job_id,
                                   awx_workflow_job_name=workflow_job_name, awx_job_template_name=job_template_name),
                              playbook, slices=slices, has_plan=bool(has_plan), phase=phase)


class FilterModule(object):
    def filters(self):
        return {'awx_sliced_job_problem': awx_sliced_job_problem}
