# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/reboot_fallback.yml on lab hosts under faults, over SSH (issue 14, "must show" (c), (d), (e)).

Each check reads the simulator's state of the host (its domains, their ids and states, counters.guest_ops:
every xl save/restore/create/shutdown/migrate asked of it) and the host's files, not only what the run says.

(c) A guest autostarted at boot (the simulator runs xendomains at boot: XENDOMAINS_AUTO configs are
started cold). The host's xendomains settings name /etc/xen/auto, which holds an entry
for guest web: the role holds it over the reboot (a dot file beside it), but a configuration management
agent that runs early at boot (the simulator's fault files_at_boot) puts the managed entry back, and
xendomains starts web cold. The run must report the conflict (naming the host's autostart entry), keep
web's save image, restore db, and stop (rc non-zero). Once the operator shuts the cold web down (xl
shutdown, over SSH), the same command run again restores the saved web from its image. And with two
entries naming a guest (web.cfg and an editor's backup web.cfg~), both are held: xendomains starts nothing.

(d) The save directory on a file system too small for the guests' memory (the spec's filesystems: a
128 MiB tmpfs): refused before any guest is paused: no xl command that moves a guest ran, the guests run
under the same domain ids, no manifest, no save file, no reboot.

(e) Guest names ``db;reboot``, ``../evil``, ``tmp/evil`` and a migration peer ``a;b``: refused, nothing
moved (no guest command ran, no file was written from those names, nothing arrived on the peer).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import pytest

if 'labctl' not in sys.modules:
    # A lab instance of its own (NOREBOOT_XEN_FAULTS_LAB_INSTANCE to choose another).
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_FAULTS_LAB_INSTANCE', '29')

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import labctl  # noqa: E402
import reboot_fallback_lab_support as support  # noqa: E402
from reboot_fallback_lab_support import FIXED, OLD, install_fixed, sim_state  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

STATE_DIR = '/var/lib/noreboot-xen'
SAVE_DIR = STATE_DIR + '/saved-guests'
MANIFEST = STATE_DIR + '/guests.json'
WEB_CFG = 'name = "web"\nmemory = 256\nvcpus = 1\n'
AUTO_WEB = '/etc/xen/auto/web.cfg'
HELD_WEB = '/etc/xen/auto/.web.cfg.noreboot-xen-held'

SPEC = '''name: rbff
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - name: auto
    count: 1
    build: deb-4.17.5
    hardware: intel-cascadelake
    failure_domains: [rack-a]
    guests: [{name: web, mem: 256, vcpus: 1}, {name: db, mem: 512, vcpus: 2}]
    files:
      /etc/default/xendomains: "XENDOMAINS_SAVE=/var/lib/xen/save\\nXENDOMAINS_RESTORE=true\\nXENDOMAINS_AUTO=/etc/xen/auto\\n"
      /etc/xen/web.cfg: %(cfg)s
      %(auto)s: %(cfg)s
    faults: {files_at_boot: {files: {%(auto)s: %(cfg)s}}}
  - name: bak
    count: 1
    build: deb-4.17.5
    hardware: intel-icelake
    failure_domains: [rack-f]
    guests: [{name: web, mem: 256, vcpus: 1}]
    files:
      /etc/xen/web.cfg: %(cfg)s
      %(auto)s: %(cfg)s
      %(auto)s~: %(cfg)s
  - {name: small, count: 1, build: deb-4.17.5, hardware: amd-milan, failure_domains: [rack-b],
     guests: [{name: web, mem: 256, vcpus: 1}, {name: db, mem: 512, vcpus: 2}],
     filesystems: {%(save_dir)s: 128m}}
  - {name: names, count: 1, build: deb-4.17.5, hardware: amd-rome, failure_domains: [rack-c],
     guests: [{name: web, mem: 256, vcpus: 1}, {name: "db;reboot", mem: 256, vcpus: 1},
              {name: ../evil, mem: 256, vcpus: 1}, {name: tmp/evil, mem: 256, vcpus: 1}]}
  - {name: mig, count: 1, build: deb-4.17.5, hardware: qemu, failure_domains: [rack-d],
     guests: [{name: app, mem: 256, vcpus: 1}]}
  - {name: peer, count: 1, build: deb-4.17.5, hardware: qemu, failure_domains: [rack-e], guests: []}
''' % dict(cfg=json.dumps(WEB_CFG), auto=AUTO_WEB, save_dir=SAVE_DIR)

host_path = labctl.host_path


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    yield from support.lab_up(str(tmp_path_factory.mktemp('reboot_fallback_faults')), SPEC, 'LAB-XSA-5')


def run(lab, target, extra=None):
    extra_vars = {'noreboot_xen_wave_policy': {'reboot_wave_sizes': [1], 'max_per_domain': 1},
                  'noreboot_xen_reboot_ok': True}
    extra_vars.update(extra or {})
    return support.run_reboot_fallback(lab, target, extra_vars)


def row(result, host):
    rows = [r for r in (result['summary'] or {}).get('hosts', []) if r['host'] == host]
    assert len(rows) == 1, result['log']
    return rows[0]


def domains(host):
    """{name: (id, xl list state)} of the host's guests."""
    return dict((d['name'], (d['id'], d['state'])) for d in sim_state(host)['domains'] if d['id'] != 0)


def guest_ops(host):
    return sim_state(host)['counters'].get('guest_ops', {})


def on_host(lab, host, *command):
    """A command run on the host over SSH, as the operator would (ansible ad-hoc)."""
    proc = subprocess.run([os.path.join(support.REPO, '.venv', 'bin', 'ansible'), '-i', lab['inventory'], host, '-m',
                           'ansible.builtin.command', '-a', json.dumps({'argv': list(command)})],
                          cwd=support.REPO, env=support.ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def assert_untouched(host, before):
    """Nothing moved: same guests under the same domain ids, none paused, no guest command, no reboot, no manifest."""
    state = sim_state(host)
    assert domains(host) == before
    assert all('p' not in st for dummy, st in before.values())
    assert guest_ops(host) == {}, 'no xl save/restore/create/shutdown/migrate may run'
    assert state['boots'] == 1 and state['build']['build_id'] == OLD
    assert not os.path.exists(host_path(host, MANIFEST))


def test_c_a_guest_autostarted_at_boot_is_a_conflict_with_its_image_kept_and_a_rerun_restores_it(lab):
    host = 'auto-001'
    install_fixed(host)
    first = run(lab, 'lab_group_auto')
    assert first['rc'] != 0, first['log']
    result = row(first, host)
    assert result['outcome'] == 'guests_not_restored', result
    image = SAVE_DIR + '/web.save'
    assert len(result['stranded']) == 1 and result['stranded'][0].startswith(
        'web (saved to %s, state conflict: web was started cold after the boot (domain ' % image), result
    assert 'by xendomains from its autostart entry %s) and its memory image %s was not used: image kept' % (
        AUTO_WEB, image) in result['stranded'][0]
    assert 'remove or rename %s if web must not start at boot' % AUTO_WEB in result['stranded'][0]
    assert first['summary']['gate']['proceed'] is False
    # On the host: the fixed build runs; web runs cold (xendomains, from the entry put back at boot), its image
    # unused and kept; db came back from its image, which is gone.
    state = sim_state(host)
    assert state['build']['build_id'] == FIXED and state['boots'] == 2
    running = dict((d['name'], d) for d in state['domains'] if d['id'] != 0)
    assert sorted(running) == ['db', 'web']
    assert running['web']['autostarted'] == {'by': 'xendomains', 'config': AUTO_WEB, 'boot_id': state['boot_id']}
    assert 'restored_from' not in running['web']
    assert running['db']['restored_from'] == SAVE_DIR + '/db.save'
    assert guest_ops(host) == {'save': {'db': 1, 'web': 1}, 'restore': {SAVE_DIR + '/db.save': 1}}
    with open(host_path(host, image)) as handle:
        assert handle.readline() == 'Xen saved domain, xl format\n'
        assert json.loads(handle.read()) == {'name': 'web', 'mem': 256, 'vcpus': 1}
    assert not os.path.exists(host_path(host, SAVE_DIR + '/db.save'))
    # The role held web's entry over the reboot (the agent wrote it back beside the held one).
    assert os.path.exists(host_path(host, HELD_WEB)) and os.path.exists(host_path(host, AUTO_WEB))
    with open(host_path(host, MANIFEST)) as handle:
        manifest = json.load(handle)
    assert manifest['status'] == 'incomplete'
    assert sorted((g['name'], g['state']) for g in manifest['guests']) == [('db', 'restored'), ('web', 'conflict')]

    # The operator keeps the saved state: shuts the cold guest down, runs the same command again.
    on_host(lab, host, 'xl', 'shutdown', 'web')
    assert sorted(domains(host)) == ['db']
    rerun = run(lab, 'lab_group_auto')
    assert rerun['rc'] == 0, rerun['log']
    result = row(rerun, host)
    assert (result['wave'], result['outcome']) == ('finish', 'rebooted'), result
    assert 'guest(s) running again: db, web' in result['msg']
    state = sim_state(host)
    assert state['boots'] == 2, 'the rerun does not reboot'
    running = dict((d['name'], d) for d in state['domains'] if d['id'] != 0)
    assert sorted(running) == ['db', 'web']
    assert running['web']['restored_from'] == image and 'autostarted' not in running['web'], 'the saved web, not a cold one'
    assert guest_ops(host) == {'save': {'db': 1, 'web': 1}, 'shutdown': {'web': 1},
                               'restore': {SAVE_DIR + '/db.save': 1, image: 1}}
    assert not os.path.exists(host_path(host, image)), 'the image goes once the guest was seen running'
    assert not os.path.exists(host_path(host, HELD_WEB)) and os.path.exists(host_path(host, AUTO_WEB))
    with open(host_path(host, MANIFEST)) as handle:
        manifest = json.load(handle)
    assert manifest['status'] == 'restored'
    assert sorted((g['name'], g['state']) for g in manifest['guests']) == [('db', 'restored'), ('web', 'restored')]


def test_c_every_autostart_entry_of_a_saved_guest_is_held_so_xendomains_starts_nothing(lab):
    """The default xendomains settings (no /etc/default/xendomains: /etc/xen/auto) and two entries naming web
    (an editor's backup web.cfg~ beside web.cfg): both held over the reboot, so xendomains starts nothing and
    web is restored from its image; both put back afterwards."""
    host = 'bak-001'
    install_fixed(host)
    result = run(lab, 'lab_group_bak')
    assert result['rc'] == 0, result['log']
    assert row(result, host)['outcome'] == 'rebooted'
    state = sim_state(host)
    assert state['build']['build_id'] == FIXED and state['boots'] == 2
    running = dict((d['name'], d) for d in state['domains'] if d['id'] != 0)
    assert sorted(running) == ['web']
    assert running['web']['restored_from'] == SAVE_DIR + '/web.save' and 'autostarted' not in running['web']
    assert guest_ops(host) == {'save': {'web': 1}, 'restore': {SAVE_DIR + '/web.save': 1}}
    for entry in (AUTO_WEB, AUTO_WEB + '~'):
        assert os.path.exists(host_path(host, entry)), entry
    assert [e for e in os.listdir(host_path(host, '/etc/xen/auto')) if e.startswith('.')] == []
    with open(host_path(host, MANIFEST)) as handle:
        web = json.load(handle)['guests'][0]
    assert (web['state'], web['autostart'], web['autostart_held']) == ('restored', [AUTO_WEB, AUTO_WEB + '~'], [])


def test_d_a_save_directory_too_small_is_refused_before_any_guest_is_paused(lab):
    host = 'small-001'
    install_fixed(host)
    before = domains(host)
    assert sorted(before) == ['db', 'web']
    result = run(lab, 'lab_group_small')
    assert result['rc'] != 0, result['log']
    outcome = row(result, host)
    assert outcome['outcome'] == 'failed', outcome
    assert ('%s has 128 MiB free but saving guest(s) db, web needs about 870 MiB: nothing was saved' % SAVE_DIR
            in outcome['msg']), outcome
    assert outcome['stranded'] == []
    assert_untouched(host, before)
    # The ledger has this run's outcome, no reboot intent (the reboot phase was never reached).
    with open(host_path(host, STATE_DIR + '/ledger.jsonl')) as handle:
        ledger = [json.loads(line) for line in handle if line.strip()]
    assert [(e['event'], e['outcome'], e['rebooted']) for e in ledger] == [('outcome', 'failed', False)]
    # The save directory is a small file system of its own (seen from inside the host), and holds nothing.
    assert 'tmpfs 131072' in ' '.join(on_host(lab, host, 'df', '-k', '--output=fstype,size', SAVE_DIR).split())
    assert on_host(lab, host, 'ls', '-A', SAVE_DIR).strip().endswith('rc=0 >>')


def test_e_guest_names_that_are_not_plain_are_refused_and_nothing_moves(lab):
    host = 'names-001'
    install_fixed(host)
    before = domains(host)
    assert sorted(before) == ['../evil', 'db;reboot', 'tmp/evil', 'web']
    result = run(lab, 'lab_group_names', {'reboot_fallback_guest_policy': 'save'})
    assert result['rc'] != 0, result['log']
    outcome = row(result, host)
    assert outcome['outcome'] == 'failed', outcome
    assert ("guest name(s) '../evil', 'db;reboot', 'tmp/evil': not a plain Xen domain name" in outcome['msg']
            and 'nothing was moved' in outcome['msg']), outcome
    assert_untouched(host, before)
    # No file from those names: not in the save directory, not beside it (../evil), not under it (tmp/evil).
    for path in (SAVE_DIR, STATE_DIR + '/evil.save', '/var/lib/evil.save'):
        assert not os.path.exists(host_path(host, path)), path
    listing = on_host(lab, host, 'sh', '-c', 'ls -a /tmp /var/lib/noreboot-xen; echo done')
    assert 'evil' not in listing and 'reboot' not in listing.replace('noreboot', ''), listing


def test_e_a_migration_peer_with_a_semicolon_is_refused_and_nothing_moves(lab):
    host = 'mig-001'
    install_fixed(host)
    before = domains(host)
    result = run(lab, 'lab_group_mig', {'reboot_fallback_guest_policy': 'migrate', 'reboot_fallback_migrate_peer': 'a;b'})
    assert result['rc'] != 0, result['log']
    outcome = row(result, host)
    assert outcome['outcome'] == 'failed', outcome
    assert 'the peer "a;b"' in outcome['msg'] and 'No guest was touched' in outcome['msg'], outcome
    assert_untouched(host, before)
    assert domains('peer-001') == {} and guest_ops('peer-001') == {}
