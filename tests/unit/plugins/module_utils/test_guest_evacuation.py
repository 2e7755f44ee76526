# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""guest_evacuation: cases as data, each with the exact xl argv run, in order.

A fake ``xl`` answers each expected argv with rc/stdout/stderr (xl list rows in the shape
real Xen 4.17 prints them); any other argv, or a command left unrun, fails the case. The file
system is an in-memory fake: free space, which files exist, and the manifest as written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import (
    EvacuationError,
    GuestEvacuation,
    RestoreError,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import XlRunner

XL = '/usr/sbin/xl'
STATE = '/var/lib/noreboot-xen'
MANIFEST = STATE + '/guests.json'
SAVE_DIR = STATE + '/saved-guests'
HEAD = 'Name                                        ID   Mem VCPUs\tState\tTime(s)\n'
DOM0 = 'Domain-0                                     0  1024     2     r-----      31.2\n'
WEB1 = 'web1                                         3   512     1     -b----       4.0\n'
DB1 = 'db1                                          4  2048     2     -b----       9.1\n'
LIST_BOTH = HEAD + DOM0 + WEB1 + DB1
LIST_WEB1 = HEAD + DOM0 + WEB1
LIST_DB1 = HEAD + DOM0 + DB1
LIST_NONE = HEAD + DOM0
MIB = 1024 * 1024


class FakeFiles(object):
    def __init__(self, existing=(), free_mib=100000, contents=None):
        self.existing = set(existing)
        self.free_mib = free_mib
        self.contents = dict(contents or {})
        self.writes = []
        self.removed = []

    def exists(self, path):
        return path in self.existing or path in self.contents

    def free_bytes(self, path):
        return self.free_mib * MIB

    def makedirs(self, path):
        self.existing.add(path)

    def read(self, path):
        return self.contents.get(path)

    def write_atomic(self, path, text):
        self.contents[path] = text
        self.writes.append(json.loads(text))

    def remove(self, path):
        self.removed.append(path)
        self.existing.discard(path)

    def listdir(self, path):
        prefix = path.rstrip('/') + '/'
        return sorted(set(p[len(prefix):] for p in list(self.existing) + list(self.contents)
                          if p.startswith(prefix) and '/' not in p[len(prefix):]))

    def rename(self, src, dst):
        self.renamed = getattr(self, 'renamed', []) + [(src, dst)]
        if src in self.contents:
            self.contents[dst] = self.contents.pop(src)
        self.existing.discard(src)
        self.existing.add(dst)


class Script(object):
    """Expected commands in order: (argv words after xl, rc, stdout, stderr, side effect)."""

    def __init__(self, steps, files):
        self.steps = list(steps)
        self.files = files
        self.ran = []

    def __call__(self, argv):
        assert self.steps, 'unexpected command %r (no more expected)' % (argv,)
        step = self.steps.pop(0)
        expected = [XL] + step[0]
        assert argv == expected, 'ran %r, expected %r' % (argv, expected)
        self.ran.append(argv)
        if len(step) > 4 and step[4]:
            self.files.existing.add(step[4])
        return step[1], step[2], step[3]


def make(steps, files=None, **kwargs):
    files = files or FakeFiles()
    script = Script(steps, files)
    xl = XlRunner(script, XL)
    kwargs.setdefault('run_id', 'run-1')
    kwargs.setdefault('host', 'xen-a')
    clock = iter(range(0, 100000, 5))
    evac = GuestEvacuation(xl, files=files, clock=lambda: next(clock), sleep=lambda s: None, **kwargs)
    return evac, script, files


def manifest_of(files):
    return json.loads(files.contents[MANIFEST])


# --- evacuate: successes ------------------------------------------------------------------

EVACUATE_OK = [
    dict(id='save-two-guests', kwargs=dict(policy='save'),
         steps=[(['list'], 0, LIST_BOTH, ''),
                (['save', 'db1', SAVE_DIR + '/db1.save'], 0, '', 'Saving to %s/db1.save new xl format (info 0x3/0x0/1466)\n'
                 % SAVE_DIR, SAVE_DIR + '/db1.save'),
                (['save', 'web1', SAVE_DIR + '/web1.save'], 0, '', '', SAVE_DIR + '/web1.save'),
                (['list'], 0, LIST_NONE, '')],
         states={'db1': 'saved', 'web1': 'saved'}),
    dict(id='migrate-to-peer-with-room', kwargs=dict(policy='migrate', peer='xen-b', peer_free_memory_mib=4096),
         steps=[(['list'], 0, LIST_BOTH, ''),
                (['migrate', 'db1', 'xen-b'], 0, 'migration target: Ready to receive domain.\n', ''),
                (['migrate', 'web1', 'xen-b'], 0, '', ''),
                (['list'], 0, LIST_NONE, '')],
         states={'db1': 'migrated', 'web1': 'migrated'}),
    dict(id='shutdown-waits-until-gone', kwargs=dict(policy='shutdown'),
         files=dict(existing=['/etc/xen/web1.cfg', '/etc/xen/db1']),
         steps=[(['list'], 0, LIST_BOTH, ''),
                (['shutdown', 'db1'], 0, '', ''),
                (['list'], 0, LIST_BOTH, ''),
                (['list'], 0, LIST_WEB1, ''),
                (['shutdown', 'web1'], 0, '', ''),
                (['list'], 0, LIST_NONE, ''),
                (['list'], 0, LIST_NONE, '')],
         states={'db1': 'shut_down', 'web1': 'shut_down'}, configs={'db1': '/etc/xen/db1', 'web1': '/etc/xen/web1.cfg'}),
    dict(id='override-one-guest', kwargs=dict(policy='save', overrides={'db1': 'shutdown'}),
         files=dict(existing=['/etc/xen/db1.cfg']),
         steps=[(['list'], 0, LIST_BOTH, ''),
                (['shutdown', 'db1'], 0, '', ''),
                (['list'], 0, LIST_WEB1, ''),
                (['save', 'web1', SAVE_DIR + '/web1.save'], 0, '', '', SAVE_DIR + '/web1.save'),
                (['list'], 0, LIST_NONE, '')],
         states={'db1': 'shut_down', 'web1': 'saved'}),
    dict(id='no-guests-no-change', kwargs=dict(policy='refuse'),
         steps=[(['list'], 0, LIST_NONE, ''), (['list'], 0, LIST_NONE, '')], states={}),
]


@pytest.mark.parametrize('case', EVACUATE_OK, ids=[c['id'] for c in EVACUATE_OK])
def test_evacuate_ok(case):
    evac, script, files = make(case['steps'], FakeFiles(**case.get('files', {})), **case['kwargs'])
    result = evac.evacuate()
    assert not script.steps, 'commands not run: %r' % script.steps
    manifest = manifest_of(files)
    assert manifest['status'] == 'evacuated'
    assert dict((g['name'], g['state']) for g in manifest['guests']) == case['states']
    # Written before the first guest was touched: every guest 'planned'.
    assert all(g['state'] == 'planned' for g in files.writes[0]['guests'])
    assert [g['name'] for g in files.writes[0]['guests']] == sorted(case['states'])
    for name, config in case.get('configs', {}).items():
        assert [g for g in manifest['guests'] if g['name'] == name][0]['config'] == config
    assert result['changed'] == bool(case['states']) or result['changed']


def test_evacuate_check_mode_runs_only_list_and_writes_nothing():
    evac, script, files = make([(['list'], 0, LIST_BOTH, '')], policy='save', check_mode=True)
    result = evac.evacuate()
    assert not script.steps
    assert files.writes == []
    assert [g['file'] for g in result['guests']] == [SAVE_DIR + '/db1.save', SAVE_DIR + '/web1.save']
    assert result['changed'] is False


# --- evacuate: refusals before anything is touched -----------------------------------------

REFUSALS = [
    dict(id='refuse-policy', kwargs=dict(policy='refuse'), match='db1, web1 run here and their policy is refuse'),
    dict(id='peer-lacks-memory', kwargs=dict(policy='migrate', peer='xen-b', peer_free_memory_mib=2000),
         match='peer xen-b has 2000 MiB free .* need 2560 MiB'),
    dict(id='migrate-without-peer', kwargs=dict(policy='migrate'), match='no peer is given'),
    dict(id='migrate-to-itself', kwargs=dict(policy='migrate', peer='xen-a', peer_free_memory_mib=99999),
         match='is this host itself'),
    dict(id='peer-memory-unknown', kwargs=dict(policy='migrate', peer='xen-b'), match='free memory of peer xen-b is unknown'),
    dict(id='disk-too-small', kwargs=dict(policy='save'), files=dict(free_mib=2000),
         match='2000 MiB free but saving guest.s. db1, web1 needs about 2752 MiB'),
    dict(id='old-save-file-in-the-way', kwargs=dict(policy='save'), files=dict(existing=[SAVE_DIR + '/web1.save']),
         match='may hold a guest not yet restored'),
    dict(id='shutdown-without-config', kwargs=dict(policy='shutdown'), files=dict(existing=['/etc/xen/web1.cfg']),
         match='db1 are to be shut down but have no config file'),
]


@pytest.mark.parametrize('case', REFUSALS, ids=[c['id'] for c in REFUSALS])
def test_refused_before_any_guest_is_touched(case):
    evac, script, files = make([(['list'], 0, LIST_BOTH, '')], FakeFiles(**case.get('files', {})), **case['kwargs'])
    with pytest.raises(EvacuationError, match=case['match']):
        evac.evacuate()
    assert not script.steps
    assert files.writes == [], 'nothing may be written when evacuation is refused'


# --- evacuate: a failure mid-way ----------------------------------------------------------

WRITE_FAILED = 'libxl: error: libxl_stream_write.c: write failed\n'
# What xl save prints when the guest does not answer the suspend request in time (xl then resumes it).
NO_ACK = ("libxl: error: libxl_dom_suspend.c:340:suspend_common_wait_guest_timeout: Domain 3:guest didn't "
          "acknowledge suspend, cancelling request\nFailed to save domain, resuming domain\n")


def test_save_failure_stops_and_keeps_every_guest_accounted_for():
    steps = [(['list'], 0, LIST_BOTH, ''),
             (['save', 'db1', SAVE_DIR + '/db1.save'], 0, '', '', SAVE_DIR + '/db1.save'),
             (['save', 'web1', SAVE_DIR + '/web1.save'], 1, '', WRITE_FAILED, SAVE_DIR + '/web1.save'),
             (['list'], 0, LIST_WEB1, ''),
             (['save', 'web1', SAVE_DIR + '/web1.save'], 1, '', WRITE_FAILED),
             (['list'], 0, LIST_WEB1, '')]
    evac, script, files = make(steps, policy='save')
    with pytest.raises(EvacuationError) as info:
        evac.evacuate()
    assert not script.steps
    # The partial file of the first attempt was removed before the second.
    assert files.removed == [SAVE_DIR + '/web1.save']
    msg = info.value.msg
    assert 'guest web1 (save) could not be evacuated: xl save failed (rc=1)' in msg
    assert '(2 attempts; the guest still runs here)' in msg
    assert 'db1 (saved to %s/db1.save, state saved)' % SAVE_DIR in msg
    assert 'host is not rebooted' in msg
    manifest = manifest_of(files)
    assert manifest['status'] == 'evacuating'
    assert dict((g['name'], g['state']) for g in manifest['guests']) == {'db1': 'saved', 'web1': 'failed'}


def test_save_not_acknowledged_is_tried_again_while_the_guest_runs():
    steps = [(['list'], 0, LIST_WEB1, ''),
             (['save', 'web1', SAVE_DIR + '/web1.save'], 1, '', NO_ACK),
             (['list'], 0, LIST_WEB1, ''),
             (['save', 'web1', SAVE_DIR + '/web1.save'], 0, '', '', SAVE_DIR + '/web1.save'),
             (['list'], 0, LIST_NONE, '')]
    evac, script, files = make(steps, policy='save')
    result = evac.evacuate()
    assert not script.steps
    assert dict((g['name'], g['state']) for g in result['guests']) == {'web1': 'saved'}
    assert manifest_of(files)['status'] == 'evacuated'
    assert "xl save web1 failed, the guest still runs: trying again (libxl: error: " \
        "libxl_dom_suspend.c:340:suspend_common_wait_guest_timeout: Domain 3:guest didn't acknowledge suspend, " \
        "cancelling request; Failed to save domain, resuming domain)" in evac.actions


def test_failed_save_of_a_guest_that_no_longer_runs_is_not_tried_again():
    steps = [(['list'], 0, LIST_WEB1, ''),
             (['save', 'web1', SAVE_DIR + '/web1.save'], 1, '', WRITE_FAILED, SAVE_DIR + '/web1.save'),
             (['list'], 0, LIST_NONE, '')]
    evac, script, files = make(steps, policy='save')
    with pytest.raises(EvacuationError) as info:
        evac.evacuate()
    assert not script.steps
    assert 'the guest no longer runs here and its save file may be incomplete' in info.value.msg
    assert files.removed == [], 'the only copy of the guest may be that file: it is kept'
    assert dict((g['name'], g['state']) for g in manifest_of(files)['guests']) == {'web1': 'failed'}


def test_shutdown_timeout_leaves_the_guest_running():
    steps = [(['list'], 0, LIST_WEB1, ''), (['shutdown', 'web1'], 0, '', '')] + [(['list'], 0, LIST_WEB1, '')] * 2
    evac, script, files = make(steps, FakeFiles(existing=['/etc/xen/web1.cfg']), policy='shutdown',
                               shutdown_timeout=10)
    with pytest.raises(EvacuationError, match='did not shut down within 10s; it still runs and was not forced off'):
        evac.evacuate()
    assert not script.steps
    assert not any('destroy' in ' '.join(argv) for argv in script.ran)


def test_a_guest_still_running_after_evacuation_blocks_the_reboot():
    steps = [(['list'], 0, LIST_WEB1, ''), (['migrate', 'web1', 'xen-b'], 0, '', ''), (['list'], 0, LIST_WEB1, '')]
    evac, script, files = make(steps, policy='migrate', peer='xen-b', peer_free_memory_mib=4096)
    with pytest.raises(EvacuationError, match='web1 still run here after evacuation'):
        evac.evacuate()


def test_unrestored_manifest_is_kept_by_a_new_evacuation():
    old = dict(schema=1, status='evacuated', run_id='run-0', guests=[
        dict(name='db1', action='save', state='saved', file=SAVE_DIR + '/db1.save', memory_mib=2048, domid=4)])
    files = FakeFiles(contents={MANIFEST: json.dumps(old)})
    steps = [(['list'], 0, LIST_WEB1, ''),
             (['save', 'web1', SAVE_DIR + '/web1.save'], 0, '', '', SAVE_DIR + '/web1.save'),
             (['list'], 0, LIST_NONE, '')]
    evac, script, files = make(steps, files, policy='save')
    evac.evacuate()
    names = [(g['name'], g['state']) for g in manifest_of(files)['guests']]
    assert names == [('db1', 'saved'), ('web1', 'saved')]


# --- restore ------------------------------------------------------------------------------

def _manifest(*guests, **top):
    data = dict(schema=1, host='xen-a', run_id='run-1', status='evacuated', guests=list(guests))
    data.update(top)
    return data


SAVED_WEB1 = dict(name='web1', action='save', state='saved', file=SAVE_DIR + '/web1.save', memory_mib=512, domid=3)
DOWN_DB1 = dict(name='db1', action='shutdown', state='shut_down', config='/etc/xen/db1.cfg', memory_mib=2048, domid=4)
MIGRATED_APP = dict(name='app1', action='migrate', state='migrated', peer='xen-b', memory_mib=256, domid=5)

RESTORE_OK = [
    dict(id='restore-and-create', guests=[SAVED_WEB1, DOWN_DB1],
         files=dict(existing=[SAVE_DIR + '/web1.save', '/etc/xen/db1.cfg']),
         steps=[(['list'], 0, LIST_NONE, ''),
                (['restore', SAVE_DIR + '/web1.save'], 0, '', 'Loading new save file %s/web1.save (new xl fmt info '
                 '0x3/0x0/1466)\n' % SAVE_DIR),
                (['create', '/etc/xen/db1.cfg'], 0, '', 'Parsing config from /etc/xen/db1.cfg\n'),
                (['list'], 0, LIST_BOTH, '')],
         states={'web1': 'restored', 'db1': 'started'}, removed=[SAVE_DIR + '/web1.save']),
    # A guest whose save failed kept running: left alone (a *saved* guest found running is a conflict, below).
    dict(id='already-running-is-left-alone', guests=[dict(SAVED_WEB1, state='failed')],
         files=dict(existing=[SAVE_DIR + '/web1.save']),
         steps=[(['list'], 0, LIST_WEB1, ''), (['list'], 0, LIST_WEB1, '')],
         states={'web1': 'running'}, removed=[]),
    dict(id='migrated-guest-runs-on-the-peer', guests=[MIGRATED_APP],
         steps=[(['list'], 0, LIST_NONE, ''), (['list'], 0, LIST_NONE, '')],
         states={'app1': 'on_peer'}, removed=[]),
]


@pytest.mark.parametrize('case', RESTORE_OK, ids=[c['id'] for c in RESTORE_OK])
def test_restore_ok(case):
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(*case['guests']))}, **case.get('files', {}))
    evac, script, files = make(case['steps'], files)
    result = evac.restore()
    assert not script.steps
    manifest = manifest_of(files)
    assert manifest['status'] == 'restored'
    assert dict((g['name'], g['state']) for g in result['guests']) == case['states']
    assert files.removed == case['removed']


def test_restore_without_manifest_does_nothing():
    evac, script, files = make([])
    assert evac.restore()['manifest'] is None
    assert script.ran == []


def test_restore_of_a_restored_manifest_runs_nothing():
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(dict(SAVED_WEB1, state='restored'), status='restored'))})
    evac, script, files = make([], files)
    evac.restore()
    assert script.ran == []


def test_failed_restore_names_the_guest_and_where_it_is():
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(SAVED_WEB1, DOWN_DB1))},
                      existing=[SAVE_DIR + '/web1.save', '/etc/xen/db1.cfg'])
    steps = [(['list'], 0, LIST_NONE, ''),
             (['restore', SAVE_DIR + '/web1.save'], 1, '', 'libxl: error: libxl_create.c: cannot restore domain\n'),
             (['create', '/etc/xen/db1.cfg'], 0, '', ''),
             (['list'], 0, LIST_DB1, '')]
    evac, script, files = make(steps, files)
    with pytest.raises(RestoreError) as info:
        evac.restore()
    assert not script.steps
    msg = info.value.msg
    assert 'guest(s) not running again on xen-a: web1 (saved to %s/web1.save, state saved: xl restore failed (rc=1)' \
        % SAVE_DIR in msg
    assert 'db1' not in msg
    assert info.value.fields['missing'][0].startswith('web1 (saved to')
    manifest = manifest_of(files)
    assert manifest['status'] == 'incomplete'
    assert files.removed == [], 'a save file whose restore failed is kept'


def test_saved_guest_whose_file_vanished_is_reported_not_forgotten():
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(SAVED_WEB1))})
    steps = [(['list'], 0, LIST_NONE, ''), (['list'], 0, LIST_NONE, '')]
    evac, script, files = make(steps, files)
    with pytest.raises(RestoreError, match='web1 .*cannot be brought back automatically'):
        evac.restore()


def test_corrupt_manifest_is_an_error_not_an_empty_host():
    files = FakeFiles(contents={MANIFEST: '{"guests": [ torn'})
    evac, script, files = make([(['list'], 0, LIST_NONE, '')], files)
    with pytest.raises(EvacuationError, match='cannot be read'):
        evac.evacuate()


def test_unknown_policy():
    evac, script, files = make([(['list'], 0, LIST_WEB1, '')], policy='pause')
    with pytest.raises(EvacuationError, match="guest policy 'pause' is not one of migrate, save, shutdown, refuse"):
        evac.evacuate()


# --- names and peers that are not plain (issue 14 item 7) ---------------------------------

def _row(name, domid=7):
    return '%-40s %5d   256     1     -b----       1.0\n' % (name, domid)


BAD_NAMES = ['/tmp/evil', '../../etc/evil', 'web1;reboot', 'a..b', '.hidden', '-x']


@pytest.mark.parametrize('policy', ['save', 'shutdown'])
@pytest.mark.parametrize('name', BAD_NAMES)
def test_guest_name_that_is_not_plain_is_refused_before_anything_moves(name, policy):
    files = FakeFiles(existing=['/tmp/evil.cfg', '/tmp/evil', '/etc/xen/web1.cfg', '/etc/evil.cfg'])
    evac, script, files = make([(['list'], 0, HEAD + DOM0 + WEB1 + _row(name), '')], files, policy=policy)
    with pytest.raises(EvacuationError) as info:
        evac.evacuate()
    assert not script.steps
    assert len(script.ran) == 1, 'only xl list may run: %r' % script.ran
    assert files.writes == []
    assert repr(name) in info.value.msg and 'not a plain Xen domain name' in info.value.msg


BAD_PEERS = ['xen-b;reboot', 'xen-b reboot', '../xen-b', 'xen-b/x', '-oProxyCommand=reboot', 'root@xen-b',
             '$(reboot)', 'xen-b..example']


@pytest.mark.parametrize('peer', BAD_PEERS)
def test_peer_that_is_not_a_host_name_or_address_is_refused_before_anything_moves(peer):
    evac, script, files = make([(['list'], 0, LIST_WEB1, '')], policy='migrate', peer=peer,
                               peer_free_memory_mib=99999)
    with pytest.raises(EvacuationError) as info:
        evac.evacuate()
    assert not script.steps
    assert len(script.ran) == 1
    assert files.writes == []
    assert 'is not a host name or address' in info.value.msg


@pytest.mark.parametrize('peer', ['xen-b', 'xen-b.example.org', '192.0.2.7', '2001:db8::7'])
def test_peer_host_names_and_addresses_are_accepted(peer):
    steps = [(['list'], 0, LIST_WEB1, ''), (['migrate', 'web1', peer], 0, '', ''), (['list'], 0, LIST_NONE, '')]
    evac, script, files = make(steps, policy='migrate', peer=peer, peer_free_memory_mib=4096)
    evac.evacuate()
    assert not script.steps


@pytest.mark.parametrize('path', ['/etc/shadow', SAVE_DIR + '/../guests.json', SAVE_DIR + '/sub/web1.save',
                                  SAVE_DIR + '/db1.save'])
def test_restore_never_reads_or_removes_a_file_outside_the_save_directory(path):
    entry = dict(SAVED_WEB1, file=path)
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(entry))}, existing=[path])
    evac, script, files = make([(['list'], 0, LIST_NONE, ''), (['list'], 0, LIST_NONE, '')], files)
    with pytest.raises(RestoreError, match='not the save file of guest web1 in %s' % SAVE_DIR):
        evac.restore()
    assert not script.steps
    assert files.removed == []


def test_restore_refuses_a_manifest_guest_whose_name_is_not_plain():
    entry = dict(DOWN_DB1, name='/tmp/evil', config='/tmp/evil.cfg')
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(entry))}, existing=['/tmp/evil.cfg'])
    evac, script, files = make([(['list'], 0, LIST_NONE, ''), (['list'], 0, LIST_NONE, '')], files)
    with pytest.raises(RestoreError, match='not a plain Xen domain name'):
        evac.restore()
    assert not script.steps


def test_restore_uses_the_save_directory_recorded_in_the_manifest():
    entry = dict(SAVED_WEB1, file='/srv/saves/web1.save')
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(entry, save_dir='/srv/saves'))},
                      existing=['/srv/saves/web1.save'])
    steps = [(['list'], 0, LIST_NONE, ''), (['restore', '/srv/saves/web1.save'], 0, '', ''),
             (['list'], 0, LIST_WEB1, '')]
    evac, script, files = make(steps, files)
    evac.restore()
    assert not script.steps


# --- restore keeps the image until the guest is seen running (issue 14 item 2) -------------

WEB1_CRASHED = 'web1                                         9   512     1     ----c-       0.1\n'


@pytest.mark.parametrize('after', [LIST_NONE, HEAD + DOM0 + WEB1_CRASHED], ids=['gone', 'crashed'])
def test_a_guest_that_dies_on_resume_keeps_its_image_and_the_error_names_it(after):
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(SAVED_WEB1))}, existing=[SAVE_DIR + '/web1.save'])
    steps = [(['list'], 0, LIST_NONE, ''), (['restore', SAVE_DIR + '/web1.save'], 0, '', ''), (['list'], 0, after, '')]
    slept = []
    evac, script, files = make(steps, files)
    evac.sleep = slept.append
    with pytest.raises(RestoreError) as info:
        evac.restore()
    assert not script.steps
    assert files.removed == [], 'the memory image is the only copy of the guest: kept'
    assert SAVE_DIR + '/web1.save' in info.value.msg and 'image kept' in info.value.msg
    assert slept and slept[0] >= 1, 'the guest is looked at after a settle, not right after xl restore'
    entry = manifest_of(files)['guests'][0]
    assert entry.get('file_removed') is not True
    assert manifest_of(files)['status'] == 'incomplete'


def test_image_is_removed_only_after_the_guest_was_seen_running():
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(SAVED_WEB1))}, existing=[SAVE_DIR + '/web1.save'])
    order = []
    steps = [(['list'], 0, LIST_NONE, ''), (['restore', SAVE_DIR + '/web1.save'], 0, '', ''),
             (['list'], 0, LIST_WEB1, '')]
    evac, script, files = make(steps, files)
    real_remove = files.remove

    def remove(path):
        order.append(('remove', len(script.ran)))
        real_remove(path)
    files.remove = remove
    evac.restore()
    assert order == [('remove', 3)], 'removed after the last xl list: %r' % order
    assert manifest_of(files)['guests'][0]['file_removed'] is True


# --- right before the reboot: no guest may run here (issue 14 item 3) ----------------------

def _verify(steps, manifest):
    contents = {MANIFEST: json.dumps(manifest)} if manifest is not None else {}
    evac, script, files = make(steps, FakeFiles(contents=contents))
    return evac, script, files


def test_a_guest_created_after_evacuation_blocks_the_reboot_and_is_named():
    evac, script, files = _verify([(['list'], 0, LIST_WEB1, '')], _manifest(dict(SAVED_WEB1, name='db1')))
    with pytest.raises(EvacuationError) as info:
        evac.verify_evacuated()
    assert not script.steps
    assert "web1 runs here but is not in the guest manifest" in info.value.msg
    assert 'not rebooted' in info.value.msg
    assert info.value.fields['unexpected'] == ['web1']
    assert info.value.fields.get('outcome') != 'refused', 'the evacuated guests must still be brought back'


def test_a_manifest_guest_running_again_blocks_the_reboot():
    evac, script, files = _verify([(['list'], 0, LIST_WEB1, '')], _manifest(SAVED_WEB1))
    with pytest.raises(EvacuationError, match='web1 runs here again although the manifest says saved'):
        evac.verify_evacuated()


def test_an_empty_host_may_reboot():
    evac, script, files = _verify([(['list'], 0, LIST_NONE, '')], _manifest(SAVED_WEB1))
    result = evac.verify_evacuated()
    assert not script.steps
    assert result['changed'] is False
    assert files.writes == []


# --- disk space and short writes (issue 14 item 9) -----------------------------------------

class ProbedFiles(FakeFiles):
    def __init__(self, **kwargs):
        super(ProbedFiles, self).__init__(**kwargs)
        self.probed = []

    def free_bytes(self, path):
        self.probed.append(path)
        return super(ProbedFiles, self).free_bytes(path)


def test_space_is_measured_on_the_save_directory_filesystem_even_before_it_exists():
    files = ProbedFiles(existing=['/srv', STATE], free_mib=2000)
    evac, script, files = make([(['list'], 0, LIST_BOTH, '')], files, policy='save', save_dir='/srv/xen/saves')
    with pytest.raises(EvacuationError, match='/srv has 2000 MiB free but saving guest.s. db1, web1 needs about '
                                              '2752 MiB: nothing was saved'):
        evac.evacuate()
    assert files.probed == ['/srv'], 'the nearest existing directory of the save directory, not the state directory'
    assert len(script.ran) == 1 and files.writes == []


def test_manifest_writer_writes_every_byte_despite_short_writes_and_fsyncs_file_and_directory(tmp_path, monkeypatch):
    from ansible_collections.noreboot.xen.plugins.module_utils import guest_evacuation as mod
    import os
    import stat
    real_write, real_fsync = os.write, os.fsync
    synced = []
    monkeypatch.setattr(mod.os, 'write', lambda fd, data: real_write(fd, data[:7]))
    monkeypatch.setattr(mod.os, 'fsync', lambda fd: (synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)), real_fsync(fd)))
    path = str(tmp_path / 'guests.json')
    text = json.dumps(dict(guests=[dict(name='web%d' % i) for i in range(50)]))
    mod.Files().write_atomic(path, text)
    with open(path) as handle:
        assert handle.read() == text
    assert synced == [False, True], 'the file, then its directory (the rename), are fsynced'


def test_a_full_disk_keeps_the_good_manifest(tmp_path, monkeypatch):
    from ansible_collections.noreboot.xen.plugins.module_utils import guest_evacuation as mod
    import errno
    import os
    path = str(tmp_path / 'guests.json')
    with open(path, 'w') as handle:
        handle.write('{"guests": []}\n')
    real_write = os.write
    calls = []

    def write(fd, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(fd, data[:5])
    monkeypatch.setattr(mod.os, 'write', write)
    with pytest.raises(OSError):
        mod.Files().write_atomic(path, json.dumps(dict(guests=[dict(name='web1')])))
    with open(path) as handle:
        assert handle.read() == '{"guests": []}\n'
    assert os.listdir(str(tmp_path)) == ['guests.json'], 'no torn temporary file is left behind'


# --- autostart at boot: xendomains and /etc/xen/auto (issue 14 item 4) ---------------------

WEB1_COLD = 'web1                                         1   512     1     -b----       2.0\n'
AUTO_WEB1 = '/etc/xen/auto/web1.cfg'
HELD_WEB1 = '/etc/xen/auto/.web1.cfg.noreboot-xen-held'


def test_a_saved_guest_started_cold_after_the_boot_is_a_conflict_with_its_image_kept():
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(SAVED_WEB1))}, existing=[SAVE_DIR + '/web1.save'])
    steps = [(['list'], 0, HEAD + DOM0 + WEB1_COLD, ''), (['list'], 0, HEAD + DOM0 + WEB1_COLD, '')]
    evac, script, files = make(steps, files)
    with pytest.raises(RestoreError) as info:
        evac.restore()
    assert not script.steps
    assert files.removed == []
    msg = info.value.msg
    assert 'web1 was started cold after the boot (domain 1' in msg
    assert 'its memory image %s/web1.save was not used: image kept' % SAVE_DIR in msg
    assert info.value.fields['conflicts'] == ['web1']
    entry = manifest_of(files)['guests'][0]
    assert entry['state'] == 'conflict' and manifest_of(files)['status'] == 'incomplete'


@pytest.mark.parametrize('xendomains, auto_dir', [
    (None, '/etc/xen/auto'),
    ('XENDOMAINS_AUTO=/srv/xen/auto\nXENDOMAINS_RESTORE=false\n', '/srv/xen/auto'),
])
def test_a_conflict_names_the_autostart_entry_of_the_host_that_started_the_guest(xendomains, auto_dir):
    """The operator must learn where the cold guest came from (or it starts cold at every boot): the
    host's own autostart entry, in the directory its xendomains settings name, not a guess."""
    contents = {MANIFEST: json.dumps(_manifest(SAVED_WEB1)), auto_dir + '/web1': 'memory = 512\nname = "web1"\n',
                auto_dir + '/db1.cfg': 'name = "db1"\n'}
    if xendomains:
        contents['/etc/default/xendomains'] = xendomains
    files = FakeFiles(contents=contents, existing=[SAVE_DIR + '/web1.save', auto_dir])
    steps = [(['list'], 0, HEAD + DOM0 + WEB1_COLD, ''), (['list'], 0, HEAD + DOM0 + WEB1_COLD, '')]
    evac, script, files = make(steps, files)
    with pytest.raises(RestoreError) as info:
        evac.restore()
    msg = info.value.msg
    assert 'web1 was started cold after the boot (domain 1, by xendomains from its autostart entry %s/web1)' % auto_dir \
        in msg, msg
    assert 'image kept' in msg and files.removed == []
    assert 'remove or rename %s/web1 if web1 must not start at boot' % auto_dir in msg, msg


def test_a_conflict_without_an_autostart_entry_says_something_else_started_the_guest():
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(SAVED_WEB1)), '/etc/xen/auto/db1': 'name = "db1"\n'},
                      existing=[SAVE_DIR + '/web1.save', '/etc/xen/auto'])
    steps = [(['list'], 0, HEAD + DOM0 + WEB1_COLD, ''), (['list'], 0, HEAD + DOM0 + WEB1_COLD, '')]
    evac, script, files = make(steps, files)
    with pytest.raises(RestoreError) as info:
        evac.restore()
    assert ('web1 was started cold after the boot (domain 1; no autostart entry in /etc/xen/auto names it: something '
            'else started it)') in info.value.msg, info.value.msg


def test_evacuation_holds_the_autostart_entry_of_a_saved_guest_and_restore_puts_it_back():
    files = FakeFiles(existing=['/etc/xen/auto'], contents={AUTO_WEB1: 'name = "web1"\nmemory = 512\n'})
    steps = [(['list'], 0, LIST_WEB1, ''),
             (['save', 'web1', SAVE_DIR + '/web1.save'], 0, '', '', SAVE_DIR + '/web1.save'),
             (['list'], 0, LIST_NONE, '')]
    evac, script, files = make(steps, files, policy='save')
    evac.evacuate()
    assert files.renamed == [(AUTO_WEB1, HELD_WEB1)]
    assert AUTO_WEB1 not in files.contents, 'xendomains must not start web1 cold at boot'
    entry = manifest_of(files)['guests'][0]
    assert entry['autostart'] == [AUTO_WEB1] and entry['autostart_held'] == [HELD_WEB1]
    # Held only after the manifest says so: the first write lists the entry to put back.
    assert files.writes[0]['guests'][0]['autostart'] == [AUTO_WEB1]

    steps = [(['list'], 0, LIST_NONE, ''), (['restore', SAVE_DIR + '/web1.save'], 0, '', ''),
             (['list'], 0, LIST_WEB1, '')]
    evac, script, files = make(steps, files)
    evac.restore()
    assert not script.steps
    assert files.renamed[-1] == (HELD_WEB1, AUTO_WEB1)
    assert manifest_of(files)['guests'][0]['autostart_held'] == []


def test_the_autostart_entry_of_a_guest_in_conflict_stays_held_until_its_image_is_restored():
    """A cold guest found running is not the saved one: its entry stays held (the manifest keeps saying where),
    and is put back once a rerun restored the image. (The manifest holds one path as a string, as the first
    manifests with autostart entries did.)"""
    held = dict(SAVED_WEB1, autostart=AUTO_WEB1, autostart_held=HELD_WEB1)
    files = FakeFiles(contents={MANIFEST: json.dumps(_manifest(held)), HELD_WEB1: 'name = "web1"\n'},
                      existing=[SAVE_DIR + '/web1.save', '/etc/xen/auto'])
    steps = [(['list'], 0, HEAD + DOM0 + WEB1_COLD, ''), (['list'], 0, HEAD + DOM0 + WEB1_COLD, '')]
    evac, script, files = make(steps, files)
    with pytest.raises(RestoreError):
        evac.restore()
    assert getattr(files, 'renamed', []) == []
    entry = manifest_of(files)['guests'][0]
    assert (entry['state'], entry['autostart_held']) == ('conflict', HELD_WEB1)
    # The operator shut the cold one down; the rerun restores the image, then puts the entry back.
    steps = [(['list'], 0, LIST_NONE, ''), (['restore', SAVE_DIR + '/web1.save'], 0, '', ''),
             (['list'], 0, LIST_WEB1, '')]
    evac, script, files = make(steps, files)
    evac.restore()
    assert not script.steps
    assert files.renamed == [(HELD_WEB1, AUTO_WEB1)]
    entry = manifest_of(files)['guests'][0]
    assert (entry['state'], entry['autostart_held']) == ('restored', [])


def test_every_autostart_entry_naming_a_saved_guest_is_held_not_only_one():
    """xendomains starts every $XENDOMAINS_AUTO/* (an editor's backup web1.cfg~ too): two entries naming web1,
    holding only one of them, start web1 cold at boot from the other."""
    backup = AUTO_WEB1 + '~'
    files = FakeFiles(existing=['/etc/xen/auto'], contents={AUTO_WEB1: 'name = "web1"\nmemory = 512\n',
                                                            backup: 'name = "web1"\nmemory = 256\n',
                                                            '/etc/xen/auto/db1.cfg': 'name = "db1"\n'})
    steps = [(['list'], 0, LIST_WEB1, ''),
             (['save', 'web1', SAVE_DIR + '/web1.save'], 0, '', '', SAVE_DIR + '/web1.save'),
             (['list'], 0, LIST_NONE, '')]
    evac, script, files = make(steps, files, policy='save')
    evac.evacuate()
    held_backup = '/etc/xen/auto/.web1.cfg~.noreboot-xen-held'
    assert sorted(files.renamed) == sorted([(AUTO_WEB1, HELD_WEB1), (backup, held_backup)])
    assert not any(p in files.contents for p in (AUTO_WEB1, backup)), 'xendomains must find no entry for web1'
    assert '/etc/xen/auto/db1.cfg' in files.contents, 'only the saved guest\'s entries are held'
    entry = manifest_of(files)['guests'][0]
    assert entry['autostart'] == [AUTO_WEB1, backup] and entry['autostart_held'] == [HELD_WEB1, held_backup]
    steps = [(['list'], 0, LIST_NONE, ''), (['restore', SAVE_DIR + '/web1.save'], 0, '', ''),
             (['list'], 0, LIST_WEB1, '')]
    evac, script, files = make(steps, files)
    evac.restore()
    assert files.contents[AUTO_WEB1].startswith('name') and files.contents[backup].startswith('name')
    assert manifest_of(files)['guests'][0]['autostart_held'] == []


def test_xendomains_restoring_from_the_save_directory_is_refused():
    files = FakeFiles(contents={'/etc/default/xendomains': 'XENDOMAINS_RESTORE=true\nXENDOMAINS_SAVE="%s"\n' % SAVE_DIR})
    evac, script, files = make([(['list'], 0, LIST_WEB1, '')], files, policy='save')
    with pytest.raises(EvacuationError, match='XENDOMAINS_SAVE .* is the save directory'):
        evac.evacuate()
    assert files.writes == []


# --- one migration peer for a whole wave (issue 14 item 8) ---------------------------------

def test_two_hosts_of_a_wave_cannot_overcommit_one_peer():
    from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import reserve_peer_memory
    plan = reserve_peer_memory([
        dict(host='xen-a', peer='xen-p', need_mib=3000, peer_free_mib=4096),
        dict(host='xen-c', peer='xen-p', need_mib=3000, peer_free_mib=4096),
    ])
    # Each fits alone (the per-host check let both through); together they do not: both refused.
    for host in ('xen-a', 'xen-c'):
        assert plan[host]['refused']
        assert 'xen-p has 4096 MiB free but the wave migrates 6000 MiB to it (xen-a 3000, xen-c 3000)' \
            in plan[host]['refused']
        assert 'nothing was migrated' in plan[host]['refused']


def test_peer_memory_is_reserved_host_by_host_for_the_wave():
    from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import reserve_peer_memory
    plan = reserve_peer_memory([
        dict(host='xen-c', peer='xen-p', need_mib=1000, peer_free_mib=4096),
        dict(host='xen-a', peer='xen-p', need_mib=2000, peer_free_mib=4096),
        dict(host='xen-d', peer='xen-q', need_mib=500, peer_free_mib=600),
        dict(host='xen-e', peer='xen-p', need_mib=0, peer_free_mib=None),
    ])
    assert plan['xen-a'] == dict(peer='xen-p', need_mib=2000, available_mib=4096, refused=None)
    assert plan['xen-c'] == dict(peer='xen-p', need_mib=1000, available_mib=2096, refused=None)
    assert plan['xen-d'] == dict(peer='xen-q', need_mib=500, available_mib=600, refused=None)
    assert plan['xen-e']['refused'] is None


def test_a_peer_that_is_itself_rebooted_in_the_wave_is_refused():
    from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import reserve_peer_memory
    plan = reserve_peer_memory([dict(host='xen-a', peer='xen-c', need_mib=100, peer_free_mib=4096),
                                dict(host='xen-c', peer='xen-d', need_mib=100, peer_free_mib=4096)])
    assert 'xen-c is rebooted in the same wave' in plan['xen-a']['refused']


def test_migration_need_follows_policy_and_overrides():
    from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import migration_need_mib
    guests = [dict(name='web1', memory_mib=512), dict(name='db1', memory_mib=2048)]
    assert migration_need_mib(guests, 'migrate', {}) == 2560
    assert migration_need_mib(guests, 'migrate', {'db1': 'save'}) == 512
    assert migration_need_mib(guests, 'save', {'web1': 'migrate'}) == 512
