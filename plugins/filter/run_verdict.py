# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that say why a run failed (empty when it did not): the last task of rolling_livepatch.yml and of
reboot_fallback.yml. The logic is in plugins/plugin_utils/run_verdict.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.plugin_utils import reboot_wave_gate as gate
from ansible_collections.noreboot.xen.plugins.plugin_utils import run_verdict


def _summary(summary, what):
    if not isinstance(summary, dict) or 'hosts' not in summary:
        raise AnsibleFilterError('expected the output of %s, got %r' % (what, type(summary).__name__))
    return summary


def _plan(plan):
    if plan is not None and not isinstance(plan, dict):
        raise AnsibleFilterError('plan: expected the plan of noreboot.xen.fleet_plan, got %r' % type(plan).__name__)
    return plan


def rollout_verdict(summary, plan=None, unreachable_ok=False):
    """Why the rolling live patch failed, from its summary (and the plan's unexamined hosts), or ''."""
    summary = _summary(summary, 'noreboot.xen.rollout_summary')
    reboot = summary.get('reboot_fallback')
    failures = gate.failures(reboot) if isinstance(reboot, dict) else []
    return run_verdict.rolling_verdict(summary, failures, plan=_plan(plan), unreachable_ok=bool(unreachable_ok))


def reboot_fallback_verdict(summary, gate_result=None, plan=None, unreachable_ok=False):
    """Why the reboot fallback failed, from its summary and last gate decision (and the plan's unexamined
    hosts), or ''."""
    summary = _summary(summary, 'noreboot.xen.reboot_fallback_summary')
    return run_verdict.reboot_fallback_verdict(gate_result, gate.failures(summary, refused=True), plan=_plan(plan),
                                               unreachable_ok=bool(unreachable_ok))


class FilterModule(object):
    def filters(self):
        return {
            'rollout_verdict': rollout_verdict,
            'reboot_fallback_verdict': reboot_fallback_verdict,
        }
