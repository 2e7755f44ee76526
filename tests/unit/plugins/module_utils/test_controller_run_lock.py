# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""controller_run_lock: a second run refuses hosts another live run holds (issue 13 item 11)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import controller_run_lock as crl


class Identity(object):
    """``live`` holds the pids that count as running."""

    def __init__(self, live=()):
        self.live = set(live)

    def alive(self, holder):
        return holder.get('pid') in self.live


def locks(tmp_path, live=(100, 200)):
    return crl.RunLocks(str(tmp_path / 'runs'), identity=Identity(live), clock=lambda: 1800000000.0)


def test_second_run_on_held_hosts_refuses_naming_the_first(tmp_path):
    first = locks(tmp_path).claim('run-a', ['xen01', 'xen02', 'xen03'], owner=dict(pid=100))
    assert first['hosts'] == ['xen01', 'xen02', 'xen03'] and first['held'] == {}
    with pytest.raises(crl.RunHeld) as info:
        locks(tmp_path).claim('run-b', ['xen03', 'xen04'], owner=dict(pid=200))
    assert 'run-a' in info.value.msg and 'xen03' in info.value.msg and 'noreboot_xen_skip_held_hosts' in info.value.msg
    assert not os.path.exists(str(tmp_path / 'runs' / 'run-b.json')), 'a refused run claims nothing'


def test_skip_held_leaves_the_other_runs_hosts_to_it(tmp_path):
    locks(tmp_path).claim('run-a', ['xen01', 'xen02'], owner=dict(pid=100))
    second = locks(tmp_path).claim('run-b', ['xen02', 'xen03'], owner=dict(pid=200), skip_held=True)
    assert second['hosts'] == ['xen03']
    assert second['held'] == {'xen02': 'run-a'}
    with open(str(tmp_path / 'runs' / 'run-b.json')) as handle:
        assert json.load(handle)['hosts'] == ['xen03']


def test_a_run_whose_controller_died_holds_nothing(tmp_path):
    locks(tmp_path, live=(200,)).claim('run-a', ['xen01'], owner=dict(pid=100))
    second = locks(tmp_path, live=(200,)).claim('run-b', ['xen01'], owner=dict(pid=200))
    assert second['hosts'] == ['xen01'] and second['stale_removed'] == ['run-a']
    assert not os.path.exists(str(tmp_path / 'runs' / 'run-a.json'))


def test_release_frees_the_hosts(tmp_path):
    locks(tmp_path).claim('run-a', ['xen01'], owner=dict(pid=100))
    assert locks(tmp_path).release('run-a') is True
    assert locks(tmp_path).claim('run-b', ['xen01'], owner=dict(pid=200))['hosts'] == ['xen01']


def test_an_owner_that_cannot_be_identified_counts_as_live(tmp_path):
    locks(tmp_path).claim('run-a', ['xen01'], owner=dict(pid=None))
    with pytest.raises(crl.RunHeld) as info:
        locks(tmp_path).claim('run-b', ['xen01'], owner=dict(pid=200))
    assert 'run-a.json' in info.value.msg, 'the message says which file to remove'


def test_controller_process_is_found_up_the_parent_chain():
    files = {'/proc/30/stat': '30 (python3) S 20 0', '/proc/20/stat': '20 (sh) S 10 0',
             '/proc/10/stat': '10 (ansible-playboo) S 1 0',
             '/proc/30/cmdline': 'python3\0/tmp/AnsiballZ_run_lock.py\0', '/proc/20/cmdline': '/bin/sh\0-c\0x\0',
             '/proc/10/cmdline': '/usr/bin/python3\0/usr/bin/ansible-playbook\0site.yml\0'}
    assert crl.controller_pid(30, read=files.get) == 10
    assert crl.controller_pid(20, read=lambda path: None) is None


def test_controller_process_is_ansible_playbook_not_its_worker_fork():
    """A module runs under a worker that ansible-playbook forked (same command line) and that ends with the
    task: the record must name ansible-playbook itself, or a live run looks dead to the next one."""
    playbook = '/usr/bin/python3\0/usr/bin/ansible-playbook\0site.yml\0'
    files = {'/proc/40/stat': '40 (python3) S 30 0', '/proc/40/cmdline': 'python3\0/tmp/AnsiballZ_run_lock.py\0',
             '/proc/30/stat': '30 (sh) S 20 0', '/proc/30/cmdline': '/bin/sh\0-c\0x\0',
             '/proc/20/stat': '20 (ansible-playboo) S 10 0', '/proc/20/cmdline': playbook,
             '/proc/10/stat': '10 (ansible-playboo) S 5 0', '/proc/10/cmdline': playbook,
             '/proc/5/stat': '5 (bash) S 1 0', '/proc/5/cmdline': '-bash\0'}
    assert crl.controller_pid(40, read=files.get) == 10
