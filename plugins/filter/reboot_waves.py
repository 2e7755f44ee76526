# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the reboot waves: the hosts an earlier run left unfinished and their gate, each reboot wave's
hosts and the gate before it. The logic is in plugins/plugin_utils/reboot_wave_gate.py; the hosts' facts are read
out of ``hostvars`` (plugins/plugin_utils/run_state.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.plugin_utils import reboot_wave_gate as gate
from ansible_collections.noreboot.xen.plugins.plugin_utils.run_state import collect_finish, collect_outcomes


def finish_reboot_hosts(plan):
    """The hosts an earlier run left unfinished (plan decision finish_reboot), by name."""
    if not isinstance(plan, dict):
        raise AnsibleFilterError('expected the plan of noreboot.xen.fleet_plan, got %r' % type(plan).__name__)
    return gate.finish_hosts(plan)


def finish_reboot_gate(plan, hostvars, previous=None):
    """The gate after the finish play: stop when a host an earlier run left unfinished does not
    have every guest running again."""
    outcomes, _results, stranded = collect_finish(plan, hostvars)
    return gate.evaluate_finish(outcomes, stranded=stranded, previous=previous or None)


def finish_reboot_lines(plan, hostvars):
    """One line per host an earlier run left unfinished (outcome and message), then its stranded guests."""
    outcomes, results, stranded = collect_finish(plan, hostvars)
    lines = []
    for host in sorted(outcomes):
        lines.append(('%s: %s %s' % (host, outcomes[host] or 'not_reached', results[host].get('msg') or '')).rstrip())
        lines.extend('  guest %s' % guest for guest in stranded.get(host, []))
    return lines


def reboot_wave_gate(plan, hostvars, wave_index=None, budget_hosts=None, budget_percent=None, previous=None,
                     fixed_budget=None):
    """Whether reboot wave ``wave_index`` (1 = the first reboot wave) may start."""
    live, reboot, _results, stranded = collect_outcomes(plan, hostvars)
    waves = gate.reboot_waves(plan)
    next_hosts = []
    if wave_index is not None and 0 < int(wave_index) <= len(waves):
        next_hosts = waves[int(wave_index) - 1]['hosts']
    try:
        return gate.evaluate(plan, live, reboot, stranded=stranded, next_hosts=next_hosts, budget_hosts=budget_hosts,
                             budget_percent=budget_percent, previous=previous or None, fixed_budget=fixed_budget)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def reboot_wave_hosts(plan, wave_index):
    """The hosts of reboot wave ``wave_index`` (1 = the first reboot wave); [] past the last."""
    waves = gate.reboot_waves(plan)
    index = int(wave_index)
    return list(waves[index - 1]['hosts']) if 0 < index <= len(waves) else []


class FilterModule(object):
    def filters(self):
        return {
            'finish_reboot_hosts': finish_reboot_hosts,
            'finish_reboot_gate': finish_reboot_gate,
            'finish_reboot_lines': finish_reboot_lines,
            'reboot_wave_gate': reboot_wave_gate,
            'reboot_wave_hosts': reboot_wave_hosts,
        }
