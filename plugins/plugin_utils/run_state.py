# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run's state as the controller reads it out of ``hostvars`` (controller side).

The one reader of the facts the roles leave on each host (the fact names are defined here once),
shared by the filters of the rolling live patch (filter/rollout_budget.py) and of the reboot
fallback (filter/reboot_fallback.py): the live patch outcome and result of each host, and the
reboot outcome, result and stranded guests of the plan's reboot hosts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.plugin_utils import reboot_wave_gate as gate

# Facts of the role noreboot.xen.livepatch.
LIVE_OUTCOME_FACT = 'livepatch_outcome'
LIVE_RESULT_FACT = 'livepatch_result'
# Facts of the role noreboot.xen.reboot_fallback.
REBOOT_OUTCOME_FACT = 'reboot_fallback_outcome'
REBOOT_RESULT_FACT = 'reboot_fallback_result'
REBOOT_PROGRESS_FACT = 'reboot_fallback_progress'


def host_var(hostvars, host, key):
    """``hostvars[host][key]``, or None when the host or the variable is not there."""
    try:
        values = hostvars[host]
    except KeyError:
        return None
    try:
        return values.get(key)
    except AttributeError:
        return None


def reboot_outcome(hostvars, host):
    """A reboot (or finish) host's outcome and result; one lost mid-role (still ``in_progress``)
    is accounted for as ``lost`` (reboot_wave_gate.account_lost)."""
    return gate.account_lost(host_var(hostvars, host, REBOOT_OUTCOME_FACT),
                             host_var(hostvars, host, REBOOT_RESULT_FACT) or {},
                             host_var(hostvars, host, REBOOT_PROGRESS_FACT))


def collect_outcomes(plan, hostvars):
    """``(live, reboot, results, stranded)`` of the plan's hosts out of ``hostvars``: live patch
    outcomes of the canary/livepatch wave hosts; reboot outcomes, results and stranded guests
    (descriptions) of the reboot wave hosts, a host lost mid-role as ``lost``."""
    if not isinstance(plan, dict) or 'waves' not in plan:
        raise AnsibleFilterError('expected the plan of noreboot.xen.fleet_plan (a mapping with "waves"), got %r'
                                 % type(plan).__name__)
    live = {}
    reboot = {}
    results = {}
    stranded = {}
    for wave in plan['waves']:
        for host in wave['hosts']:
            if wave.get('kind') == 'reboot':
                reboot[host], result = reboot_outcome(hostvars, host)
                results[host] = result
                if result.get('stranded'):
                    stranded[host] = list(result['stranded'])
            else:
                live[host] = host_var(hostvars, host, LIVE_OUTCOME_FACT)
    return live, reboot, results, stranded


def collect_finish(plan, hostvars):
    """``(outcomes, results, stranded)`` of the hosts the plan decides finish_reboot for."""
    outcomes = {}
    results = {}
    stranded = {}
    for host in gate.finish_hosts(plan):
        outcomes[host], result = reboot_outcome(hostvars, host)
        results[host] = result
        if result.get('stranded'):
            stranded[host] = list(result['stranded'])
    return outcomes, results, stranded
