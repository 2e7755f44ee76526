# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the reboot fallback's report: the summary, its table, the hosts not accounted for, and a guest's
whereabouts in words (plugins/plugin_utils/reboot_wave_gate.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.plugin_utils import reboot_wave_gate as gate
from ansible_collections.noreboot.xen.plugins.plugin_utils.run_state import collect_finish, collect_outcomes


def reboot_fallback_summary(plan, hostvars):
    _live, reboot, results, _stranded = collect_outcomes(plan, hostvars)
    finish, finish_results, _finish_stranded = collect_finish(plan, hostvars)
    return gate.summarize(plan, reboot, results, finish_outcomes=finish, finish_results=finish_results)


def reboot_fallback_table(summary):
    return gate.format_summary(summary)


def reboot_fallback_failures(summary, refused=False):
    """The rows of reboot_fallback_summary that make a run fail (see reboot_wave_gate.failures)."""
    if not isinstance(summary, dict) or 'hosts' not in summary:
        raise AnsibleFilterError('expected the output of noreboot.xen.reboot_fallback_summary, got %r'
                                 % type(summary).__name__)
    return gate.failures(summary, refused=bool(refused))


def reboot_fallback_where(guest):
    return gate.where(guest)


class FilterModule(object):
    def filters(self):
        return {
            'reboot_fallback_summary': reboot_fallback_summary,
            'reboot_fallback_table': reboot_fallback_table,
            'reboot_fallback_failures': reboot_fallback_failures,
            'reboot_fallback_where': reboot_fallback_where,
        }
