# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rollout_progress
type: notification
version_added: 1.1.0
short_description: Live wave progress of the rolling live patch and the reboot fallback
description:
  - Prints, beside the output of whatever stdout callback is in use, one line when each wave of
    C(playbooks/rolling_livepatch.yml) or C(playbooks/reboot_fallback.yml) starts (wave n of m,
    kind, hosts, failure domains), one line when it ends (patched, already patched, reverted, failed,
    unreachable and rebooted hosts, elapsed time, failure budget used of allowed, estimated time left for the
    run), and one line, the moment it is known, for each host outcome that needs attention (reverted, failed,
    unreachable, guests not restored, refused).
  - A wave the failure budget gate stops gets one line with the gate's reason.
  - It reads the results of the playbooks' own tasks (the plan of M(noreboot.xen.fleet_plan), the facts
    C(noreboot_xen_wave_times), C(noreboot_xen_gate), C(noreboot_xen_with_reboots), C(livepatch_outcome),
    C(reboot_fallback_result)); it changes nothing and prints nothing for other playbooks.
  - Enable it with C(callbacks_enabled = noreboot.xen.rollout_progress) in the C([defaults]) section of
    C(ansible.cfg), or with the environment variable C(ANSIBLE_CALLBACKS_ENABLED=noreboot.xen.rollout_progress).
    It is not a stdout callback, so it works with the default one, with any other set by
    C(ANSIBLE_STDOUT_CALLBACK), and in AWX job output.
requirements:
  - Enabled in the callbacks_enabled setting.
author:
  - noreboot.xen developers (@noreboot)
"""

from ansible.plugins.callback import CallbackBase

from ansible_collections.noreboot.xen.plugins.plugin_utils.wave_progress import WaveProgress, is_plan


class CallbackModule(CallbackBase):
    """Wave start, wave end and attention lines of a rolling run (see DOCUMENTATION)."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'noreboot.xen.rollout_progress'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        self.progress = WaveProgress()

    def _show(self, lines):
        for line in lines:
            self._display.display(line)

    def _ok(self, result):
        data = getattr(result, '_result', None)
        if not isinstance(data, dict):
            return
        host = result._host.get_name()
        if is_plan(data):
            self._show(self.progress.on_plan(data))
        if isinstance(data.get('ansible_facts'), dict):
            self._show(self.progress.on_facts(host, data['ansible_facts']))

    def v2_runner_on_ok(self, result):
        self._ok(result)

    def v2_runner_on_unreachable(self, result):
        self._show(self.progress.on_unreachable(result._host.get_name()))

    def v2_playbook_on_stats(self, stats):
        self._show(self.progress.on_end())
