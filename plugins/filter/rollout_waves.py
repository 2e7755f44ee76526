# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the playbooks' waves: a phase's hosts and serial batch sizes, the gate and the times of the
wave a batch is, the hosts that need a reboot and the refusal when noreboot_xen_reboot_ok is unset, and how
detection went on a host. The logic is in plugins/plugin_utils/rollout_phases.py; the run's state is read
from localhost's facts (plugins/plugin_utils/run_state.py: controller_state).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.filter.reboot_waves import reboot_wave_gate
from ansible_collections.noreboot.xen.plugins.filter.rollout_gate_summary import rollout_gate
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_phases as rp
from ansible_collections.noreboot.xen.plugins.plugin_utils.run_state import controller_state


def _pure(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


def rollout_phase(plan, phase):
    """The hosts (plan order), wave sizes (for serial), canaries and wave count of a phase of the plan."""
    return _pure(rp.phase, plan, phase)


def rollout_wave_gate(hostvars, phase, batch=None):
    """The gate before the wave the batch is (or, without a batch, after the phase's last wave), with the
    run's plan, last gate, budget and reboot switch as the plan play left them on localhost."""
    state = controller_state(hostvars)
    budget = dict(budget_hosts=state['budget_hosts'], budget_percent=state['budget_percent'], previous=state['gate'],
                  fixed_budget=state['fixed_budget'])
    if phase == rp.LIVE:
        return rollout_gate(state['plan'], hostvars, with_reboots=bool(state['with_reboots']), **budget)
    if phase == rp.REBOOT:
        index = _pure(rp.batch_wave, state['plan'], phase, batch)['index'] if batch else None
        return reboot_wave_gate(state['plan'], hostvars, wave_index=index, **budget)
    raise AnsibleFilterError('unknown phase %r: expected live or reboot' % (phase,))


def rollout_batch_wave(hostvars, phase, batch):
    """The plan's wave that a serial batch of the phase's play is (``number``, ``label``, ``kind``, ``index``,
    ``of``, ``hosts``), from the plan on localhost."""
    return _pure(rp.batch_wave, controller_state(hostvars)['plan'], phase, batch)


def rollout_wave_times(hostvars, phase, batch, event):
    """localhost's wave times with the start or end of the wave the batch is set to now (epoch seconds)."""
    state = controller_state(hostvars)
    wave = _pure(rp.batch_wave, state['plan'], phase, batch)
    return _pure(rp.mark_wave_time, state['wave_times'], wave['label'], event, time.time())


def rollout_reboot_hosts(plan):
    """Every host of the plan's reboot waves, sorted."""
    return _pure(rp.reboot_hosts, plan)


def rollout_detection(result):
    """How detection went on a host, from the registered result of noreboot.xen.xen_facts."""
    return rp.detection_record(result)


def reboot_ok_unset_message(hosts, live_patch_others=False, reasons=None):
    """The refusal when hosts need a reboot and noreboot_xen_reboot_ok is unset."""
    return rp.reboot_ok_unset_message(hosts, live_patch_others=live_patch_others, reasons=reasons)


class FilterModule(object):
    def filters(self):
        return {
            'rollout_phase': rollout_phase,
            'rollout_wave_gate': rollout_wave_gate,
            'rollout_wave_times': rollout_wave_times,
            'rollout_batch_wave': rollout_batch_wave,
            'rollout_reboot_hosts': rollout_reboot_hosts,
            'rollout_detection': rollout_detection,
            'reboot_ok_unset_message': reboot_ok_unset_message,
        }
