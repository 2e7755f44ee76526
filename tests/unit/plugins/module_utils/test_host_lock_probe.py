# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the hosts' locks say, before a run starts (issue 13 item 11): detection reads <state_dir>/rollout.lock
(host_lock.inspect_lock, ansible_facts.xen.livepatch.rollout_lock), the controller turns the facts into
the hosts other runs hold (filter rollout_host_locks), and the run lock refuses them naming the run, or skips them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os

import pytest

from ansible_collections.noreboot.xen.plugins.filter.rollout_run import rollout_host_locks
from ansible_collections.noreboot.xen.plugins.module_utils import controller_run_lock as crl
from ansible_collections.noreboot.xen.plugins.module_utils import host_lock
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import collect_xen_facts


def write_lock(state_dir, **record):
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, 'rollout.lock')
    with open(path, 'w') as handle:
        json.dump(record, handle)
    return path


def test_no_lock_file_is_nothing(tmp_path):
    assert host_lock.inspect_lock(str(tmp_path)) is None


def test_a_lock_whose_flock_is_held_is_a_transaction_in_progress(tmp_path):
    path = write_lock(str(tmp_path), run_id='run-a', pid=999999999, time='2026-12-01T00:00:00Z')
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert host_lock.inspect_lock(str(tmp_path)) == dict(path=path, held=True, run_id='run-a', pid=999999999,
                                                             time='2026-12-01T00:00:00Z')
    finally:
        os.close(fd)
    # The process that held it is gone (its pid does not exist): a lock file left behind, not held.
    assert host_lock.inspect_lock(str(tmp_path))['held'] is False


def test_looking_at_the_lock_never_makes_a_transaction_think_the_host_is_held(tmp_path):
    """The probe takes a shared flock for an instant: a transaction starting then tries again."""
    path = write_lock(str(tmp_path), run_id='run-old', pid=999999999)
    probe = os.open(path, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)

    def probe_ends(_seconds):
        fcntl.flock(probe, fcntl.LOCK_UN)

    class Identity(object):
        def me(self):
            return dict(pid=4242, pid_start=1, boot_id='b')

        def alive(self, holder):
            return False

    lock = host_lock.HostLock(str(tmp_path), 'run-b', Identity(), sleep=probe_ends)
    try:
        assert lock.acquire()['run_id'] == 'run-b'
    finally:
        lock.release()
        os.close(probe)


def test_detection_reports_the_hosts_lock(tmp_path):
    seen = []

    def read_lock(state_dir):
        seen.append(state_dir)
        return dict(path=state_dir + '/rollout.lock', held=True, run_id='run-a', pid=77, time='t')

    facts = collect_xen_facts(None, None, lambda path: None, gather=['livepatch'], state_dir='/st', read_lock=read_lock)
    # Not a dom0 (no xl): the lock is still read, as the ledger would be.
    assert facts['livepatch']['rollout_lock']['run_id'] == 'run-a' and seen == ['/st']


def test_the_controller_lists_hosts_other_runs_hold():
    def facts(lock):
        return {'ansible_facts': {'xen': {'livepatch': {'rollout_lock': lock}}}}
    hostvars = {
        'xen01': facts(dict(held=True, run_id='run-a', pid=77, time='t', path='/x')),
        'xen02': facts(dict(held=False, run_id='run-old', pid=5, time='t', path='/x')),
        'xen03': facts(None),
        'xen04': {},
        'xen05': facts(dict(held=True, run_id='run-me', pid=8, time='t', path='/x')),
    }
    found = rollout_host_locks(['xen01', 'xen02', 'xen03', 'xen04', 'xen05'], hostvars, run_id='run-me')
    assert found == {'xen01': dict(run_id='run-a', pid=77, time='t')}


def locks(tmp_path):
    class Identity(object):
        def alive(self, holder):
            return True
    return crl.RunLocks(str(tmp_path / 'runs'), identity=Identity(), clock=lambda: 1800000000.0)


def test_a_run_refuses_hosts_whose_lock_another_run_holds_naming_it(tmp_path):
    with pytest.raises(crl.RunHeld) as info:
        locks(tmp_path).claim('run-b', ['xen01', 'xen02'], owner=dict(pid=200),
                              host_locks={'xen01': dict(run_id='run-a', pid=77, time='2026-12-01T00:00:00Z')})
    assert info.value.held == {'xen01': 'run-a'}
    assert 'run run-a' in info.value.msg and 'xen01' in info.value.msg and 'noreboot_xen_skip_held_hosts' in info.value.msg
    assert 'pid 77 on the host' in info.value.msg
    assert not os.path.exists(str(tmp_path / 'runs' / 'run-b.json')), 'a refused run claims nothing'


def test_a_run_asked_to_skip_leaves_hosts_locked_by_another_run(tmp_path):
    claimed = locks(tmp_path).claim('run-b', ['xen01', 'xen02'], owner=dict(pid=200), skip_held=True,
                                    host_locks={'xen01': dict(run_id='run-a', pid=77, time='t')})
    assert claimed['hosts'] == ['xen02'] and claimed['held'] == {'xen01': 'run-a'}
