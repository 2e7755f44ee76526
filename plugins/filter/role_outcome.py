# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that decide one host's outcome and message at the end of the roles noreboot.xen.livepatch
and noreboot.xen.reboot_fallback, from what the role's run left, and the live patch role's preflight
(logic in plugins/plugin_utils/role_outcome.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.plugins.filter.core import to_json

from ansible_collections.noreboot.xen.plugins.plugin_utils import role_outcome


def _end(end, role_file):
    if not isinstance(end, dict):
        raise AnsibleFilterError('expected what the run of the role left (a dict, as %s builds it), got %r'
                                 % (role_file, type(end).__name__))
    return end


def reboot_fallback_outcome(end):
    """The host's outcome, guests, stranded guests and message at the end of the role (main entry point)."""
    return role_outcome.reboot_record(_end(end, 'roles/reboot_fallback/tasks/report.yml'))


def finish_reboot_outcome(end):
    """The host's outcome, guests, stranded guests and message at the end of the role (finish entry point)."""
    return role_outcome.finish_record(_end(end, 'roles/reboot_fallback/tasks/finish.yml'))


def reboot_fallback_result(end):
    """The role's reboot_fallback_result (main entry point): the outcome record and what the run left around it."""
    return role_outcome.reboot_result(_end(end, 'roles/reboot_fallback/tasks/report.yml'))


def finish_reboot_result(end):
    """The role's reboot_fallback_result (finish entry point): the outcome record and what the run left around it."""
    return role_outcome.finish_result(_end(end, 'roles/reboot_fallback/tasks/finish.yml'))


def livepatch_outcome(end):
    """The host's outcome and message at the end of the live patch role."""
    return role_outcome.livepatch_record(_end(end, 'roles/livepatch/tasks/report.yml'))


def livepatch_preflight(decision, run_id, host):
    """The live patch role's preflight: its inputs checked, whether the host gets a payload, and the final
    outcome and result of a host that does not."""
    try:
        return role_outcome.livepatch_start(decision, run_id, host, to_json)
    except role_outcome.LivepatchInputError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            'reboot_fallback_outcome': reboot_fallback_outcome,
            'finish_reboot_outcome': finish_reboot_outcome,
            'reboot_fallback_result': reboot_fallback_result,
            'finish_reboot_result': finish_reboot_result,
            'livepatch_outcome': livepatch_outcome,
            'livepatch_preflight': livepatch_preflight,
        }
