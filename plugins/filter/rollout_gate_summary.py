# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the rolling live patch's outcomes against its plan: the wave gate and the run summary (controller side).

The logic is in plugins/plugin_utils/rollout_budget.py (and reboot_wave_gate.py for the reboot
waves); these filters only read the plan of noreboot.xen.fleet_plan and the hosts' outcome facts
out of ``hostvars`` (plugins/plugin_utils/run_state.py). With ``with_reboots=true`` (the run also
reboots the plan's reboot hosts, noreboot_xen_reboot_ok true) the hosts of the reboot waves count in the same failure budget as
the live patch hosts, from the first wave on, and appear in the summary as reboot waves.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.plugin_utils import reboot_wave_gate as rg
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb
from ansible_collections.noreboot.xen.plugins.plugin_utils.run_state import (
    LIVE_OUTCOME_FACT,
    LIVE_RESULT_FACT,
    collect_finish,
    collect_outcomes,
    host_var,
)

PATCH_KINDS = ('canary', 'livepatch')


def _waves(plan):
    try:
        waves = plan['waves']
    except (KeyError, TypeError):
        raise AnsibleFilterError('expected the plan of noreboot.xen.fleet_plan (a mapping with "waves" and '
                                 '"decisions"), got %r' % type(plan).__name__)
    return [w for w in waves if w.get('kind') in PATCH_KINDS]


def _collect(plan, hostvars):
    waves = _waves(plan)
    to_patch = []
    canaries = []
    wave_of = {}
    for wave in waves:
        for host in wave['hosts']:
            to_patch.append(host)
            wave_of[host] = 'wave_%d' % wave['number']
            if wave['kind'] == 'canary':
                canaries.append(host)
    outcomes = {}
    details = {}
    for host in plan.get('decisions') or {}:
        outcomes[host] = host_var(hostvars, host, LIVE_OUTCOME_FACT)
        result = host_var(hostvars, host, LIVE_RESULT_FACT) or {}
        checks = result.get('failed_checks') if hasattr(result, 'get') else None
        if outcomes[host] == rb.HELD_BY_OTHER_RUN:
            details[host] = 'run %s' % ((result.get('held_by_run') if hasattr(result, 'get') else None) or 'unknown')
        elif checks:
            details[host] = ', '.join(checks)
        elif hasattr(result, 'get') and result.get('msg') and (
                outcomes[host] in rb.FAILURE_OUTCOMES or outcomes[host] == rb.PREVIOUSLY_REVERTED):
            details[host] = result.get('msg')
    return waves, to_patch, canaries, wave_of, outcomes, details


def rollout_gate(plan, hostvars, budget_hosts=None, budget_percent=None, previous=None, with_reboots=False,
                 fixed_budget=None):
    """Whether the next wave may start; see rollout_budget.evaluate_gate (and, with
    ``with_reboots``, reboot_wave_gate.evaluate: the reboot hosts share the budget)."""
    _waves_, to_patch, canaries, _wave_of, outcomes, details = _collect(plan, hostvars)
    try:
        if with_reboots:
            live, reboots, _results, stranded = collect_outcomes(plan, hostvars)
            return rg.evaluate(plan, live, reboots, stranded=stranded, budget_hosts=budget_hosts,
                               budget_percent=budget_percent, previous=previous or None, details=details,
                               fixed_budget=fixed_budget)
        return rb.evaluate_gate(to_patch, outcomes, canaries=canaries, budget_hosts=budget_hosts,
                                budget_percent=budget_percent, previous=previous or None, details=details,
                                fixed_budget=fixed_budget)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def _holders(plan, hostvars, left_to_other_runs):
    """host -> run id of the other run holding it: hosts the run lock left to other runs (noreboot.xen.run_lock's
    ``held``) and hosts whose transaction met another run's host lock (``livepatch_result.held_by_run``)."""
    holders = dict(left_to_other_runs or {})
    for host in plan.get('decisions') or {}:
        if host_var(hostvars, host, LIVE_OUTCOME_FACT) == rb.HELD_BY_OTHER_RUN:
            result = host_var(hostvars, host, LIVE_RESULT_FACT) or {}
            holders[host] = result.get('held_by_run') if hasattr(result, 'get') else None
    return holders


def rollout_summary(plan, hostvars, gate=None, wave_times=None, run_id=None, with_reboots=False, left_to_other_runs=None,
                    fixed_budget=None):
    """The run summary; see rollout_budget.summarize. With ``with_reboots``, the plan's reboot
    waves are rows of their own (``wave_N`` of kind ``reboot``) and their hosts' outcomes come from the
    reboot fallback (rollout_budget.reboot_summary_outcome). ``left_to_other_runs``: host -> run id of the
    hosts noreboot.xen.run_lock left to other runs (its ``held``); with the hosts whose transaction met
    another run's lock they are the summary's ``held_by_other_run``. The summary also says which part of an
    approved plan the job ran (``phase``, ``plan_fingerprint``, ``slice``) and, for a phase or slice, its budget
    out of the whole run's (``budget_split``: ``fixed_budget``, filter rollout_run_budget)."""
    waves, _to_patch, _canaries, wave_of, outcomes, details = _collect(plan, hostvars)
    plan_hosts = {}
    for host, decision in (plan.get('decisions') or {}).items():
        plan_hosts[host] = dict(decision=decision.get('decision'), wave=wave_of.get(host), reason=decision.get('reason'))
    labels = [dict(label='wave_%d' % w['number'], kind=w['kind']) for w in waves]
    if with_reboots:
        _live, reboots, results, stranded = collect_outcomes(plan, hostvars)
        for wave in rg.reboot_waves(plan):
            labels.append(dict(label='wave_%d' % wave['number'], kind='reboot'))
            for host in wave['hosts']:
                if host in plan_hosts:
                    plan_hosts[host]['wave'] = 'wave_%d' % wave['number']
                outcome = reboots[host]
                outcomes[host] = rb.reboot_summary_outcome(outcome)
                if outcome in rg.REBOOT_FAILURES or outcome == 'refused':
                    details[host] = '; '.join([results[host].get('msg') or outcome] + stranded.get(host, []))
    finish, finish_results, finish_stranded = collect_finish(plan, hostvars)
    if finish:
        labels.insert(0, dict(label=rg.FINISH_WAVE, kind=rg.FINISH_WAVE))
    for host, outcome in finish.items():
        # Hosts an earlier run left unfinished, finished before any wave (plan decision finish_reboot).
        if host in plan_hosts:
            plan_hosts[host]['wave'] = rg.FINISH_WAVE
        outcomes[host] = rb.reboot_summary_outcome(outcome) if outcome else rb.NOT_STARTED
        details[host] = '; '.join([finish_results[host].get('msg') or outcome or 'not reached']
                                  + finish_stranded.get(host, []))
    summary = rb.summarize(plan_hosts, outcomes, waves=labels, wave_times=wave_times or {}, gate=gate or {},
                           details=details, run_id=run_id, holders=_holders(plan, hostvars, left_to_other_runs))
    # How the advisory directories were verified (fleet_plan's signatures), shown by rollout_summary_table.
    summary['signatures'] = list(plan.get('signatures') or [])
    summary.update(phase=plan.get('phase') or 'all', plan_fingerprint=plan.get('plan_fingerprint'),
                   slice=(fixed_budget or {}).get('slice'), budget_split=fixed_budget or None)
    return summary


def rollout_summary_table(summary):
    """The summary as a fixed-width table (a string)."""
    return rb.format_summary(summary)


class FilterModule(object):
    def filters(self):
        return {
            'rollout_gate': rollout_gate,
            'rollout_summary': rollout_summary,
            'rollout_summary_table': rollout_summary_table,
        }
