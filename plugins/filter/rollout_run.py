# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of a run's inputs on the controller: its run id (checked, or chosen with the AWX job id), the
hosts another run's transaction holds (for noreboot.xen.run_lock) and the hosts input of noreboot.xen.fleet_plan,
read from what detection left in ``hostvars`` (plugins/plugin_utils/run_state.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.module_utils.rollout_run_id import choose_run_id, job_id_of, run_id_problem
from ansible_collections.noreboot.xen.plugins.plugin_utils.run_state import host_var


def rollout_plan_hosts(hosts, hostvars):
    """The ``hosts`` input of noreboot.xen.fleet_plan, from what the detect play left in ``hostvars``.

    Per host: ``xen`` (``ansible_facts.xen``), ``unreachable`` and ``error`` (the fact
    ``noreboot_xen_detected``; a host without it was never reached), ``failure_domain``
    (``noreboot_xen_failure_domain``) and ``force_reboot`` (``noreboot_xen_force_reboot``).
    """
    fleet = {}
    for host in hosts:
        facts = host_var(hostvars, host, 'ansible_facts') or {}
        detected = host_var(hostvars, host, 'noreboot_xen_detected')
        if not detected:
            detected = dict(unreachable=True, error='detection did not run on this host')
        fleet[host] = dict(
            xen=facts.get('xen') if hasattr(facts, 'get') else None,
            unreachable=bool(detected.get('unreachable')),
            error=detected.get('error') or None,
            failure_domain=host_var(hostvars, host, 'noreboot_xen_failure_domain'),
            force_reboot=bool(host_var(hostvars, host, 'noreboot_xen_force_reboot')),
        )
    return fleet


def rollout_host_locks(hosts, hostvars, run_id=None):
    """Hosts whose rollout lock another run's transaction holds now, from detection
    (``ansible_facts.xen.livepatch.rollout_lock`` with ``held`` true and a run id other than
    ``run_id``): host -> ``{run_id, pid, time}`` as the host's lock file records them. The input of
    noreboot.xen.run_lock's ``host_locks``."""
    found = {}
    for host in hosts or []:
        facts = host_var(hostvars, host, 'ansible_facts') or {}
        xen = facts.get('xen') if hasattr(facts, 'get') else None
        livepatch = xen.get('livepatch') if hasattr(xen, 'get') else None
        lock = livepatch.get('rollout_lock') if hasattr(livepatch, 'get') else None
        if not hasattr(lock, 'get') or not lock.get('held'):
            continue
        if run_id is not None and lock.get('run_id') == run_id:
            continue
        found[host] = dict(run_id=lock.get('run_id'), pid=lock.get('pid'), time=lock.get('time'))
    return found


def rollout_run_id(run_id):
    """The run id, checked (rollout_run_id.run_id_problem); a bad one raises a clear error."""
    problem = run_id_problem(run_id)
    if problem:
        raise AnsibleFilterError(problem)
    return run_id


def rollout_choose_run_id(given=None, awx_job_id=None, tower_job_id=None):
    """The run id of this run (rollout_run_id.choose_run_id), with the AWX job id in it when AWX runs the job."""
    try:
        return choose_run_id(given, job_id_of(awx_job_id, tower_job_id))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            'rollout_plan_hosts': rollout_plan_hosts,
            'rollout_host_locks': rollout_host_locks,
            'rollout_run_id': rollout_run_id,
            'rollout_choose_run_id': rollout_choose_run_id,
        }
