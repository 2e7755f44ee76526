# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""migration_peers filters: the wave's peer plan out of hostvars (issue 14 item 8)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.filter.migration_peers import (
    FilterModule, migration_peer_plan, migration_peer_problem)


def test_the_wave_plan_reads_every_host_request_and_refuses_an_overcommitted_peer():
    hostvars = {
        'xen-a': {'__reboot_fallback_migration_request': dict(peer='xen-p', need_mib=3000, peer_free_mib=4096)},
        'xen-c': {'__reboot_fallback_migration_request': dict(peer='xen-p', need_mib=3000, peer_free_mib=4096)},
        'xen-d': {},
    }
    plan = migration_peer_plan(['xen-a', 'xen-c', 'xen-d'], hostvars)
    assert plan['xen-a']['refused'] and plan['xen-c']['refused']
    assert plan['xen-d']['refused'] is None


def test_a_peer_with_room_for_the_wave_gets_its_memory_shared_out():
    hostvars = {
        'xen-a': {'__reboot_fallback_migration_request': dict(peer='xen-p', need_mib=1000, peer_free_mib=4096)},
        'xen-c': {'__reboot_fallback_migration_request': dict(peer='xen-p', need_mib=1000, peer_free_mib=4096)},
    }
    plan = migration_peer_plan(['xen-c', 'xen-a'], hostvars)
    assert (plan['xen-a']['available_mib'], plan['xen-c']['available_mib']) == (4096, 3096)


def test_filters_are_registered():
    assert sorted(FilterModule().filters()) == ['migration_need_mib', 'migration_peer_plan', 'migration_peer_problem']


def test_a_peer_with_a_shell_character_is_named_before_it_is_contacted():
    assert "migration peer 'xen-b;reboot' is not a host name or address" in migration_peer_problem('xen-b;reboot')
    assert migration_peer_problem('xen-b.example.org') == ''
