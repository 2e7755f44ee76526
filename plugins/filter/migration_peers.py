# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that assign the migration peers of one reboot wave on the controller, reserving the
peers' memory for the whole wave. The logic is in plugins/module_utils/guest_evacuation.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import (
    EvacuationError,
    check_peer,
    migration_need_mib,
    reserve_peer_memory,
)
from ansible_collections.noreboot.xen.plugins.plugin_utils.run_state import host_var

REQUEST_FACT = '__reboot_fallback_migration_request'


def migration_peer_plan(batch, hostvars, fact=REQUEST_FACT):
    """Per host of ``batch`` (the wave), its peer, need, the peer memory reserved for it and why it is
    refused (or None), from each host's ``fact`` (``host``, ``peer``, ``need_mib``, ``peer_free_mib``)."""
    if not isinstance(batch, (list, tuple)):
        raise AnsibleFilterError('migration_peer_plan expects the list of the wave\'s hosts, got %r'
                                 % type(batch).__name__)
    requests = []
    for host in batch:
        request = host_var(hostvars, host, fact)
        if isinstance(request, dict):
            requests.append(dict(request, host=host))
        else:
            requests.append(dict(host=host, peer=None, need_mib=0, peer_free_mib=None))
    return reserve_peer_memory(requests)


def migration_peer_problem(peer):
    """Why ``peer`` cannot be a migration peer (not a host name or address), or '' when it can: checked
    before the peer is contacted at all."""
    try:
        check_peer(peer)
    except EvacuationError as exc:
        return exc.msg
    return ''


class FilterModule(object):
    def filters(self):
        return dict(migration_peer_plan=migration_peer_plan, migration_need_mib=migration_need_mib,
                    migration_peer_problem=migration_peer_problem)
