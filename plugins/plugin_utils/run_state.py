# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run's state as the controller reads it out of ``hostvars`` (controller side).

The one reader of the facts the roles leave on each host (the fact names are defined here once),
shared by the filters of the rolling live patch (filter/rollout_gate_summary.py) and of the reboot
fallback (filter/reboot_waves.py, reboot_fallback_report.py): the live patch outcome and result of each host, and the
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


# Facts the playbooks keep on localhost: the run's state between its plays.
CONTROLLER = 'localhost'
PLAN_FACT = 'noreboot_xen_plan'
GATE_FACT = 'noreboot_xen_gate'
WITH_REBOOTS_FACT = 'noreboot_xen_with_reboots'
WAVE_TIMES_FACT = 'noreboot_xen_wave_times'
BUDGET_FACT = 'noreboot_xen_failure_budget'


def controller_state(hostvars):
    """The run's state the plan play left on localhost: ``{'plan', 'gate', 'with_reboots', 'wave_times',
    'budget_hosts', 'budget_percent', 'fixed_budget'}`` (``fixed_budget``: a phase's or slice's budget of
    rollout_budget.run_budget, or None) (``gate`` None before the first gate, ``with_reboots`` None when the
    run has no live patch waves, as in reboot_fallback.yml). Refuses a run without a plan."""
    plan = host_var(hostvars, CONTROLLER, PLAN_FACT)
    if not isinstance(plan, dict) or 'waves' not in plan:
        raise AnsibleFilterError('no plan on localhost (fact %s): the plan play of the playbook must run first'
                                 % PLAN_FACT)
    budget = host_var(hostvars, CONTROLLER, BUDGET_FACT) or {}
    budget = budget if hasattr(budget, 'get') else {}
    with_reboots = host_var(hostvars, CONTROLLER, WITH_REBOOTS_FACT)
    return dict(plan=plan, gate=host_var(hostvars, CONTROLLER, GATE_FACT) or None,
                with_reboots=None if with_reboots is None else str(with_reboots).lower() in ('true', '1', 'yes'),
                wave_times=host_var(hostvars, CONTROLLER, WAVE_TIMES_FACT) or {},
                budget_hosts=budget.get('hosts'), budget_percent=budget.get('percent'),
                fixed_budget=budget.get('fixed') or None)
