# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rollout_transaction over a stateful fake dom0: exact commands, ledger, lock, resume, revert."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import host_lock
from ansible_collections.noreboot.xen.plugins.module_utils import rollout_ledger
from ansible_collections.noreboot.xen.plugins.module_utils import rollout_transaction as rt
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import LivepatchRunner, XlRunner

import livepatch_payload_forge as forge  # noqa: E402  pylint: disable=wrong-import-position
from rollout_fake_host import FakeHost, XEN_4175, XL, LP  # noqa: E402  pylint: disable=wrong-import-position
from xen_builds import XEN_4177  # noqa: E402  pylint: disable=wrong-import-position

NAME = 'xsa999'
RUN = 'run-2'


class Identity(object):
    """Process identity with a fixed pid; ``live`` holds the pids that count as running."""

    def __init__(self, pid=4242, live=()):
        self.pid = pid
        self.live = set(live)

    def me(self):
        return dict(pid=self.pid, pid_start=1000 + self.pid, boot_id='boot-a')

    def alive(self, holder):
        return holder.get('pid') in self.live


@pytest.fixture
def staged(tmp_path):
    data, meta = forge.forge_payload_bytes(xen_build_id=XEN_4175)
    staging = tmp_path / 'state' / 'staging' / RUN
    staging.mkdir(parents=True)
    src = staging / (NAME + '.livepatch')
    src.write_bytes(data)
    return dict(src=str(src), sha256=meta['sha256'], build_id=meta['build_id'], state_dir=str(tmp_path / 'state'))


def transaction(host, staged, identity=None, **kwargs):
    history = []
    xl = XlRunner(host.run, XL, sleep=lambda s: None, history=history)
    lp = LivepatchRunner(host.run, LP, sleep=lambda s: None, history=history)
    args = dict(name=NAME, src=staged['src'], checksum=staged['sha256'], run_id=RUN, state_dir=staged['state_dir'],
                hypervisor_build_id=XEN_4175, payload_build_id=staged['build_id'], remove_src=True,
                identity=identity or Identity(), clock=lambda: 1800000000.0, sleep=lambda s: None)
    args.update(kwargs)
    seams = dict((key, args.pop(key)) for key in ('identity', 'clock', 'sleep', 'lifecycle') if key in args)
    return rt.RolloutTransaction(xl, lp, rt.RolloutOptions(**args), **seams)


def ledger(staged):
    path = os.path.join(staged['state_dir'], 'ledger.jsonl')
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle]


BASELINE = ['xl info', 'xl list', 'xl dmesg', 'xen-livepatch list']
HEALTH = ['xl info', 'xl list', 'xl dmesg', 'xen-livepatch list']


def test_fresh_host_is_patched_with_the_exact_commands(staged):
    host = FakeHost()
    host.staged_effect[NAME] = 'Hello World'
    result = transaction(host, staged, expect={'xen_extra': 'Hello World'}).run()
    assert result['outcome'] == 'patched', result['msg']
    assert result['failed_checks'] == []
    names = [c['name'] for c in result['checks']]
    assert names == ['hypervisor_answers', 'guests_running', 'dmesg_clean', 'payload_applied', 'expected_effect']
    assert host.verbs() == (
        ['xl info', 'xen-livepatch list']                       # read
        + BASELINE
        + ['xl info', 'xen-livepatch list', 'xen-livepatch upload ' + NAME, 'xen-livepatch apply ' + NAME,
           'xen-livepatch list']                                # lifecycle
        + HEALTH)
    assert [LP, 'upload', NAME, os.path.join(staged['state_dir'], 'upload', NAME + '.livepatch')] in host.ran
    assert result['uploaded'] is True and result['resumed'] is False and result['changed'] is True
    entries = ledger(staged)
    assert [(e['event'], e.get('outcome')) for e in entries] == [('intent', None), ('outcome', 'patched')]
    assert entries[1]['sha256'] == staged['sha256']
    assert entries[1]['payload_build_id'] == staged['build_id']
    assert entries[1]['hypervisor_build_id'] == XEN_4175
    assert entries[1]['run_id'] == RUN
    assert not os.path.exists(staged['src']), 'the staged file must be removed'
    assert not os.path.exists(os.path.dirname(staged['src'])), 'the empty staging directory must be removed'
    assert not os.path.exists(os.path.join(staged['state_dir'], 'rollout.lock')), 'the lock must be released'


def test_ebusy_on_apply_is_retried(staged):
    host = FakeHost()
    host.ebusy['apply'] = 2
    result = transaction(host, staged, retries=3).run()
    assert result['outcome'] == 'patched'
    assert host.verbs().count('xen-livepatch apply ' + NAME) == 3


def test_persistent_ebusy_fails_and_unloads_what_it_uploaded(staged):
    host = FakeHost()
    host.ebusy['apply'] = 99
    result = transaction(host, staged, retries=2).run()
    assert result['outcome'] == 'failed'
    assert result['failed_checks'] == ['apply']
    assert host.payloads == [], 'the uploaded payload must be unloaded again'
    assert 'xen-livepatch unload ' + NAME in host.verbs()
    assert ledger(staged)[-1]['outcome'] == 'failed'


def test_guest_crash_after_apply_is_reverted(staged):
    host = FakeHost()

    def crash(h):
        h.guests[0]['id'] = 7  # web1 crashed and was restarted
    host.on_apply.append(crash)
    result = transaction(host, staged).run()
    assert result['outcome'] == 'reverted'
    assert result['failed_checks'] == ['guests_running']
    assert 'web1 changed domain id 1 -> 7' in result['msg']
    assert host.payloads == []
    assert host.verbs()[-4:] == ['xen-livepatch list', 'xen-livepatch revert ' + NAME,
                                 'xen-livepatch unload ' + NAME, 'xen-livepatch list']
    assert ledger(staged)[-1]['failed_checks'] == ['guests_running']


def test_wrong_effect_is_caught_and_reverted(staged):
    host = FakeHost()
    host.staged_effect[NAME] = 'Hello Again Wor'
    result = transaction(host, staged, expect={'xen_extra': 'Hello World'}).run()
    assert result['outcome'] == 'reverted'
    assert result['failed_checks'] == ['expected_effect']
    assert "'Hello Again Wor'" in result['msg']
    assert host.extra == '.5'


def test_new_dmesg_error_fails_the_check(staged):
    host = FakeHost()
    host.on_apply.append(lambda h: h.log('Timed out on semaphore in IRQ quiesce phase'))
    result = transaction(host, staged).run()
    assert result['outcome'] == 'reverted'
    assert result['failed_checks'] == ['dmesg_clean']


def test_old_dmesg_errors_do_not_count(staged):
    host = FakeHost()
    host.log('livepatch: other: Timed out on semaphore in IRQ quiesce phase')
    result = transaction(host, staged).run()
    assert result['outcome'] == 'patched', result['msg']


def test_revert_that_fails_leaves_outcome_failed_applied(staged):
    host = FakeHost()
    host.on_apply.append(lambda h: h.guests.pop())
    host.ebusy['revert'] = 99
    result = transaction(host, staged, retries=1).run()
    assert result['outcome'] == 'failed_applied'
    assert result['cleanup']['done'] is False
    assert host.row(NAME)['state'] == 'APPLIED'


def test_resume_applies_checked_payload_without_second_upload(staged):
    host = FakeHost(payloads=[dict(name=NAME, state='CHECKED')])
    os.makedirs(staged['state_dir'], exist_ok=True)
    with open(os.path.join(staged['state_dir'], 'ledger.jsonl'), 'w') as handle:
        handle.write(json.dumps(dict(event='intent', run_id='run-1', name=NAME, sha256=staged['sha256'])) + '\n')
    result = transaction(host, staged).run()
    assert result['outcome'] == 'patched'
    assert result['resumed'] is True and result['uploaded'] is False
    assert not [v for v in host.verbs() if v.startswith('xen-livepatch upload')]
    assert [(e['event'], e['run_id']) for e in ledger(staged)] == [('intent', 'run-1'), ('outcome', RUN)]


def test_unproven_checked_payload_is_unloaded_and_uploaded_fresh(staged):
    host = FakeHost(payloads=[dict(name=NAME, state='CHECKED')])
    result = transaction(host, staged).run()
    assert result['outcome'] == 'patched'
    assert result['resumed'] is False and result['uploaded'] is True
    verbs = host.verbs()
    assert verbs.index('xen-livepatch unload ' + NAME) < verbs.index('xen-livepatch upload ' + NAME)


def test_checked_payload_with_other_sha_in_ledger_is_not_trusted(staged):
    host = FakeHost(payloads=[dict(name=NAME, state='CHECKED')])
    os.makedirs(staged['state_dir'], exist_ok=True)
    with open(os.path.join(staged['state_dir'], 'ledger.jsonl'), 'w') as handle:
        handle.write(json.dumps(dict(event='intent', run_id='run-1', name=NAME, sha256='0' * 64)) + '\n')
    result = transaction(host, staged).run()
    assert result['resumed'] is False
    assert 'xen-livepatch unload ' + NAME in host.verbs()


def test_applied_and_in_ledger_is_already_patched_without_touching_xen(staged):
    host = FakeHost(payloads=[dict(name=NAME, state='APPLIED')])
    os.makedirs(staged['state_dir'], exist_ok=True)
    with open(os.path.join(staged['state_dir'], 'ledger.jsonl'), 'w') as handle:
        handle.write(json.dumps(dict(event='outcome', outcome='patched', run_id='run-1', name=NAME,
                                     sha256=staged['sha256'])) + '\n')
    result = transaction(host, staged).run()
    assert result['outcome'] == 'already_patched'
    assert result['proven'] is True
    assert host.verbs() == ['xl info', 'xen-livepatch list']
    assert len(ledger(staged)) == 1, 'already_patched writes nothing to the ledger'


def test_lock_held_by_live_run_fails_fast_naming_the_holder(staged):
    host = FakeHost()
    os.makedirs(staged['state_dir'], exist_ok=True)
    lock = os.path.join(staged['state_dir'], 'rollout.lock')
    with open(lock, 'w') as handle:
        json.dump(dict(run_id='run-1', pid=99, time='2026-11-27T23:00:00Z'), handle)
    with pytest.raises(host_lock.LockHeld) as info:
        transaction(host, staged, identity=Identity(live={99})).run()
    assert 'run run-1 (pid 99, since 2026-11-27T23:00:00Z)' in info.value.msg
    assert host.ran == [], 'nothing may run while another run holds the lock'
    assert os.path.exists(lock), 'the other run keeps its lock'


def test_stale_lock_of_dead_run_is_taken_over(staged):
    host = FakeHost()
    os.makedirs(staged['state_dir'], exist_ok=True)
    lock = os.path.join(staged['state_dir'], 'rollout.lock')
    with open(lock, 'w') as handle:
        json.dump(dict(run_id='run-1', pid=99, time='2026-11-27T23:00:00Z'), handle)
    result = transaction(host, staged, identity=Identity(live=())).run()
    assert result['outcome'] == 'patched'
    assert result['lock']['took_over_from']['run_id'] == 'run-1'
    assert not os.path.exists(lock)


def test_process_identity_reads_proc_stat_and_detects_pid_reuse():
    files = {'/proc/sys/kernel/random/boot_id': 'boot-a\n',
             '/proc/99/stat': '99 (python3 x) S 1 99 99 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 5555 0 0'}
    ident = host_lock.ProcessIdentity(pid=1, read=files.get)
    assert host_lock.process_start_time(99, files.get) == 5555
    assert ident.alive(dict(pid=99, pid_start=5555, boot_id='boot-a')) is True
    assert ident.alive(dict(pid=99, pid_start=1234, boot_id='boot-a')) is False, 'pid reused'
    assert ident.alive(dict(pid=99, pid_start=5555, boot_id='boot-b')) is False, 'host rebooted'
    assert ident.alive(dict(pid=100, pid_start=5555, boot_id='boot-a')) is False, 'no such pid'


def test_checksum_mismatch_changes_nothing(staged):
    host = FakeHost()
    with pytest.raises(rt.TransactionError) as info:
        transaction(host, staged, checksum='1' * 64).run()
    assert 'checksum mismatch' in info.value.msg
    assert not [v for v in host.verbs() if v.split()[1] in ('upload', 'apply')]
    assert ledger(staged) == []


def test_stale_plan_hypervisor_build_id_changes_nothing(staged):
    host = FakeHost(build_id=XEN_4177)
    with pytest.raises(rt.TransactionError) as info:
        transaction(host, staged).run()
    assert 'the plan is stale' in info.value.msg
    assert host.verbs() == ['xl info']


def test_payload_build_id_mismatch_changes_nothing(staged):
    host = FakeHost()
    with pytest.raises(rt.TransactionError) as info:
        transaction(host, staged, payload_build_id='ab' * 20).run()
    assert 'not the payload the advisory names' in info.value.msg


def test_check_mode_takes_no_lock_and_writes_nothing(staged):
    host = FakeHost()
    result = transaction(host, staged, check_mode=True).run()
    assert result['outcome'] == 'patched' and result['changed'] is True
    assert result['msg'].startswith('would apply')
    assert host.verbs() == ['xl info', 'xen-livepatch list']
    assert ledger(staged) == []
    assert os.path.exists(staged['src'])


def _write_ledger(staged, *entries):
    os.makedirs(staged['state_dir'], exist_ok=True)
    with open(os.path.join(staged['state_dir'], 'ledger.jsonl'), 'a') as handle:
        for entry in entries:
            handle.write(json.dumps(entry) + '\n')


def test_applied_by_an_interrupted_run_is_verified_without_baseline(staged):
    host = FakeHost(payloads=[dict(name=NAME, state='APPLIED')])
    host.extra = 'Hello World'
    _write_ledger(staged, dict(event='intent', run_id='run-1', name=NAME, sha256=staged['sha256']))
    result = transaction(host, staged, expect={'xen_extra': 'Hello World'}).run()
    assert result['outcome'] == 'patched' and result['resumed'] is True
    assert [c['name'] for c in result['checks']] == ['hypervisor_answers', 'payload_applied', 'expected_effect']
    assert 'interrupted run run-1' in result['msg']
    assert not [v for v in host.verbs() if v.split()[1] in ('upload', 'apply')]
    assert ledger(staged)[-1]['outcome'] == 'patched'


def test_applied_by_an_interrupted_run_with_wrong_effect_is_reverted(staged):
    host = FakeHost(payloads=[dict(name=NAME, state='APPLIED')])
    host.extra = 'Hello Again Wor'
    _write_ledger(staged, dict(event='intent', run_id='run-1', name=NAME, sha256=staged['sha256']))
    result = transaction(host, staged, expect={'xen_extra': 'Hello World'}).run()
    assert result['outcome'] == 'reverted'
    assert result['failed_checks'] == ['expected_effect']
    assert host.payloads == []


def test_staging_left_by_other_runs_is_removed(staged):
    other = os.path.join(staged['state_dir'], 'staging', 'run-0')
    os.makedirs(other)
    with open(os.path.join(other, 'old.livepatch'), 'w') as handle:
        handle.write('x')
    _write_ledger(staged, dict(event='intent', run_id='run-0', name='xsa1', sha256='0' * 64))
    result = transaction(FakeHost(), staged).run()
    assert result['outcome'] == 'patched'
    assert result['stale_staging_removed'] == ['run-0']
    assert not os.path.exists(other)


def test_payload_reverted_before_is_not_applied_again(staged):
    host = FakeHost()
    _write_ledger(staged, dict(event='outcome', outcome='reverted', run_id='run-1', name=NAME, sha256=staged['sha256'],
                               time='2026-11-27T23:00:00Z', failed_checks=['guests_running']))
    result = transaction(host, staged).run()
    assert result['outcome'] == 'previously_reverted'
    assert result['failed_checks'] == []
    assert 'reverted on this host by run run-1 at 2026-11-27T23:00:00Z (failed checks: guests_running)' in result['msg']
    assert host.verbs() == ['xl info', 'xen-livepatch list']
    assert len(ledger(staged)) == 1
    assert not os.path.exists(staged['src']), 'the staged file is removed all the same'
    os.makedirs(os.path.dirname(staged['src']))
    with open(staged['src'], 'wb') as handle:
        handle.write(forge.forge_payload_bytes(xen_build_id=XEN_4175)[0])
    again = transaction(FakeHost(), staged, retry_reverted=True)
    assert again.run()['outcome'] == 'patched'


def test_check_mode_without_the_staged_file_says_what_it_would_do(staged):
    os.unlink(staged['src'])
    host = FakeHost()
    result = transaction(host, staged, check_mode=True).run()
    assert result['outcome'] == 'patched' and result['msg'].startswith('would apply')
    assert 'were not verified' in result['warnings'][0]
    assert host.verbs() == ['xl info', 'xen-livepatch list']


# --- issue 13 item 4: one holder per host lock; staging cleanup stays in the state directory --------------

def test_two_takeovers_racing_never_both_hold_the_lock(staged, monkeypatch):
    """Run A reads a stale holder; before A replaces it, run B takes the lock over: A must not take it too."""
    os.makedirs(staged['state_dir'], exist_ok=True)
    lock = os.path.join(staged['state_dir'], 'rollout.lock')
    with open(lock, 'w') as handle:
        json.dump(dict(run_id='run-1', pid=99, time='2026-11-27T23:00:00Z'), handle)
    run_a = host_lock.HostLock(staged['state_dir'], 'run-a', Identity(pid=1001), clock=lambda: 1800000000.0)
    run_b = host_lock.HostLock(staged['state_dir'], 'run-b', Identity(pid=1002), clock=lambda: 1800000000.0)
    held = []
    real_read = host_lock.HostLock._read_holder

    def read_then_let_b_in(self):
        holder = real_read(self)
        if self is run_a and not held:
            try:
                run_b.acquire()
                held.append('run-b')
            except host_lock.LockHeld:
                held.append('b refused')
        return holder

    monkeypatch.setattr(host_lock.HostLock, '_read_holder', read_then_let_b_in)
    try:
        run_a.acquire()
        held.append('run-a')
    except host_lock.LockHeld:
        pass
    assert held.count('run-a') + held.count('run-b') == 1, 'both runs hold the host lock: %r' % held


def test_stale_staging_outside_the_state_dir_is_never_touched(tmp_path):
    data, meta = forge.forge_payload_bytes(xen_build_id=XEN_4175)
    elsewhere = tmp_path / 'srv' / 'staging'
    (elsewhere / RUN).mkdir(parents=True)
    sibling = elsewhere / 'photos'
    sibling.mkdir()
    (sibling / 'keep.jpg').write_bytes(b'x')
    src = elsewhere / RUN / (NAME + '.livepatch')
    src.write_bytes(data)
    staged = dict(src=str(src), sha256=meta['sha256'], build_id=meta['build_id'], state_dir=str(tmp_path / 'state'))
    result = transaction(FakeHost(), staged).run()
    assert result['outcome'] == 'patched', result['msg']
    assert (sibling / 'keep.jpg').exists(), 'a directory outside the state directory was removed'


def test_staging_of_a_concurrent_run_is_kept(staged):
    """run-3 staged its payload and waits for the lock: its file is not a leftover."""
    other = os.path.join(staged['state_dir'], 'staging', 'run-3')
    os.makedirs(other)
    with open(os.path.join(other, NAME + '.livepatch'), 'w') as handle:
        handle.write('x')
    result = transaction(FakeHost(), staged).run()
    assert result['outcome'] == 'patched', result['msg']
    assert os.path.exists(os.path.join(other, NAME + '.livepatch')), 'a concurrent run lost its staged payload'


# --- issue 13 item 5: Xen gets a private copy of the verified bytes ---------------------------------------

def _record_uploads(host):
    """Wrap host.run: remember each upload's path, its bytes and its directory's mode at upload time."""
    uploads = []
    real_run = host.run

    def run(argv):
        if argv[0] == LP and argv[1] == 'upload':
            with open(argv[3], 'rb') as handle:
                data = handle.read()
            uploads.append(dict(path=argv[3], data=data, dir_mode=os.stat(os.path.dirname(argv[3])).st_mode & 0o777,
                                mode=os.stat(argv[3]).st_mode & 0o777))
        return real_run(argv)

    host.run = run
    return uploads


def test_upload_names_a_private_copy_of_the_verified_bytes(staged):
    host = FakeHost()
    uploads = _record_uploads(host)
    with open(staged['src'], 'rb') as handle:
        verified = handle.read()
    result = transaction(host, staged).run()
    assert result['outcome'] == 'patched', result['msg']
    assert len(uploads) == 1
    assert uploads[0]['path'] != staged['src']
    assert uploads[0]['path'].startswith(os.path.join(staged['state_dir'], '')), uploads[0]['path']
    assert uploads[0]['data'] == verified
    assert uploads[0]['dir_mode'] == 0o700 and uploads[0]['mode'] == 0o600
    assert not os.path.exists(uploads[0]['path']), 'the private copy must be removed'


def test_payload_swapped_after_the_check_never_reaches_xen(staged):
    """The staged file is replaced after every check, just before xen-livepatch opens its path."""
    host = FakeHost()
    with open(staged['src'], 'rb') as handle:
        verified = handle.read()
    other, _meta = forge.forge_payload_bytes(xen_build_id=XEN_4175, build_id='0123456789abcdef0123456789abcdef01234567')
    uploads = _record_uploads(host)
    real_run = host.run

    def swap_then_run(argv):
        if argv[0] == LP and argv[1] == 'upload':
            with open(staged['src'], 'wb') as handle:
                handle.write(other)
        return real_run(argv)

    host.run = swap_then_run
    result = transaction(host, staged).run()
    assert result['outcome'] == 'patched', result['msg']
    assert [u['data'] for u in uploads] == [verified], 'Xen got bytes that were not verified'


def test_staged_symlink_is_refused(staged, tmp_path):
    host = FakeHost()
    real = tmp_path / 'real.livepatch'
    os.rename(staged['src'], str(real))
    os.symlink(str(real), staged['src'])
    with pytest.raises(rt.TransactionError) as info:
        transaction(host, staged).run()
    assert 'symlink' in info.value.msg
    assert not [argv for argv in host.ran if argv[0] == LP and argv[1] in ('upload', 'apply')]


@pytest.mark.parametrize('mode', [0o660, 0o606])
def test_staged_file_others_could_write_is_refused(staged, mode):
    host = FakeHost()
    os.chmod(staged['src'], mode)
    with pytest.raises(rt.TransactionError) as info:
        transaction(host, staged).run()
    assert 'writable by its group or others (mode %04o)' % mode in info.value.msg
    assert 'nothing was changed' in info.value.msg
    assert not [argv for argv in host.ran if argv[0] == LP and argv[1] in ('upload', 'apply')]


def test_staged_file_over_8_mib_is_refused_as_documented(staged):
    # The module's documentation and the controller say 8 MiB (the payload reader's cap); the host side
    # had its own 64 MiB cap and hashed such a file.
    cap = 8 * 1024 * 1024
    host = FakeHost()
    with open(staged['src'], 'ab') as handle:
        handle.truncate(cap + 1)
    with pytest.raises(rt.TransactionError) as info:
        transaction(host, staged).run()
    assert 'has %d bytes, more than %d' % (cap + 1, cap) in info.value.msg
    assert not [argv for argv in host.ran if argv[0] == LP and argv[1] in ('upload', 'apply')]


def test_state_dir_others_can_write_is_refused(staged):
    host = FakeHost()
    os.chmod(staged['state_dir'], 0o777)
    try:
        with pytest.raises(rt.TransactionError) as info:
            transaction(host, staged).run()
    finally:
        os.chmod(staged['state_dir'], 0o700)
    assert staged['state_dir'] in info.value.msg and 'writable' in info.value.msg
    assert host.ran == [], 'nothing may run with a state directory others can write'


# --- issue 13 item 7: ledger writes are complete, durable and fail before the apply -------------------------

def test_short_writes_still_give_whole_ledger_lines(staged, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, 'write', lambda fd, data: real_write(fd, bytes(data[:7])))
    result = transaction(FakeHost(), staged).run()
    assert result['outcome'] == 'patched', result['msg']
    assert [(e['event'], e.get('outcome')) for e in ledger(staged)] == [('intent', None), ('outcome', 'patched')]


def test_entry_after_a_torn_line_is_readable(staged):
    os.makedirs(staged['state_dir'], exist_ok=True)
    with open(os.path.join(staged['state_dir'], 'ledger.jsonl'), 'w') as handle:
        handle.write('{"event": "outcome", "name": "xsa1", "outc')
    rollout_ledger.Ledger(staged['state_dir']).append(dict(event='outcome', name=NAME, outcome='reverted'))
    assert rollout_ledger.Ledger(staged['state_dir']).last_for(NAME) == dict(event='outcome', name=NAME, outcome='reverted')


def test_ledger_append_syncs_the_file_and_its_directory(staged, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append('dir' if os.path.isdir('/proc/self/fd/%d' % fd) else 'file')
        return real_fsync(fd)

    monkeypatch.setattr(os, 'fsync', fsync)
    rollout_ledger.Ledger(staged['state_dir']).append(dict(event='intent', name=NAME))
    assert 'file' in synced and 'dir' in synced, synced


def test_full_state_dir_fails_cleanly_before_the_apply(staged, monkeypatch):
    host = FakeHost()

    real_write = os.write

    def enospc(fd, data):
        if os.readlink('/proc/self/fd/%d' % fd).endswith('ledger.jsonl'):
            raise OSError(28, 'No space left on device')
        return real_write(fd, data)

    monkeypatch.setattr(os, 'write', enospc)
    with pytest.raises(rt.TransactionError) as info:
        transaction(host, staged).run()
    assert 'No space left on device' in info.value.msg
    assert not [argv for argv in host.ran if argv[0] == LP and argv[1] in ('upload', 'apply')]


VERIFICATION = dict(
    advisory_signature=dict(status='verified', directory='/srv/advisories/xsa-999',
                            fingerprint='A1760E8394F3ABCF2AD078ADB2930B1AB11258D3',
                            signing_key='A1760E8394F3ABCF2AD078ADB2930B1AB11258D3', signature_time='2026-12-02T13:10:53Z'),
    payload_signature=dict(status='verified', key_id='sha256:' + 'ab' * 32, file='payloads/xsa999.livepatch'))


def test_ledger_entries_carry_what_the_plan_verified(staged):
    host = FakeHost()
    result = transaction(host, staged, verification=VERIFICATION).run()
    assert result['outcome'] == 'patched', result['msg']
    entries = ledger(staged)
    assert [e['event'] for e in entries] == ['intent', 'outcome']
    assert all(e['verification'] == VERIFICATION for e in entries)
    assert result['ledger_entry']['verification'] == VERIFICATION


def test_ledger_entries_without_verification_have_no_such_key(staged):
    result = transaction(FakeHost(), staged).run()
    assert result['outcome'] == 'patched', result['msg']
    assert all('verification' not in e for e in ledger(staged))


# The transaction's clock (1800000000.0) is 2027-01-15T08:00:00Z.
@pytest.mark.parametrize('apply_until', ['2027-01-15T07:59:59Z', '2027-01-15T08:00:00Z', '2027-01-15T09:00:00+01:00'],
                         ids=['passed', 'until-excludes-the-instant', 'same-instant-with-offset'])
def test_payload_expired_since_the_plan_is_not_applied_and_goes_to_the_reboot_fallback(staged, apply_until):
    host = FakeHost()
    result = transaction(host, staged, apply_until=apply_until).run()
    assert result['outcome'] == 'pending_reboot', result['msg']
    assert result['failed_checks'] == [] and result['uploaded'] is False
    assert '%s was not applied' % NAME in result['msg'] and apply_until in result['msg']
    assert '2027-01-15T08:00:00Z now' in result['msg'] and 'reboot fallback' in result['msg']
    assert host.verbs() == ['xl info', 'xen-livepatch list'], 'only read: no upload, no apply'
    assert ledger(staged) == [], 'nothing was applied, so nothing is recorded'
    assert not os.path.exists(staged['src']), 'the staged file is removed'
    assert not os.path.exists(os.path.join(staged['state_dir'], 'rollout.lock'))


def test_payload_before_its_apply_until_is_applied(staged):
    result = transaction(FakeHost(), staged, apply_until='2027-01-15T08:00:01Z').run()
    assert result['outcome'] == 'patched', result['msg']


def test_expiry_stops_applying_not_what_is_applied(staged):
    host = FakeHost(payloads=[dict(name=NAME, state='APPLIED')])
    _write_ledger(staged, dict(event='outcome', outcome='patched', run_id='run-1', name=NAME, sha256=staged['sha256']))
    assert transaction(host, staged, apply_until='2027-01-01T00:00:00Z').run()['outcome'] == 'already_patched'


def test_payload_an_interrupted_run_applied_is_still_finished_after_its_apply_until(staged):
    host = FakeHost(payloads=[dict(name=NAME, state='APPLIED')])
    _write_ledger(staged, dict(event='intent', run_id='run-1', name=NAME, sha256=staged['sha256']))
    result = transaction(host, staged, apply_until='2027-01-01T00:00:00Z').run()
    assert result['outcome'] == 'patched' and result['resumed'] is True


def test_expiry_check_mode_says_it_would_not_apply(staged):
    host = FakeHost()
    result = transaction(host, staged, apply_until='2027-01-01T00:00:00Z', check_mode=True).run()
    assert result['outcome'] == 'pending_reboot' and os.path.exists(staged['src'])
    assert not [v for v in host.verbs() if v.split()[1] in ('upload', 'apply')]


def test_unreadable_apply_until_changes_nothing(staged):
    host = FakeHost()
    with pytest.raises(rt.TransactionError, match=r'apply_until 2027-01-31T12:00:00: .*has no time zone.*nothing was changed'):
        transaction(host, staged, apply_until='2027-01-31T12:00:00').run()
    assert host.ran == [] and ledger(staged) == []
