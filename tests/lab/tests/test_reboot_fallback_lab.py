# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/reboot_fallback.yml on lab hosts, over SSH: guests saved, reboot, fixed build, guests back.

Needs root (the lab). Six hosts of Debian's Xen 4.17.5 (build 39a640e6...), each with two
guests; the advisory has no payload for that build, so the plan sends every host to a reboot,
whose fix is 4.17.7 (build 151b373f...). What the lab cannot do is run apt: the tests set
reboot_fallback_install_packages false (the fix installed by other means) and install the fixed
build the way a package would (labctl.stage_installed_build): the simulator's next boot runs
4.17.7, and the host's /boot holds a xen-4.17-amd64.gz with the 4.17.7 build-id note and a grub.cfg whose
default entry boots it, which the role's boot target check reads.

1. the switch: unset fails naming the hosts, false reports reboot_required, nothing changes;
2. the boot target check: a host whose GRUB default boots plain Linux is not rebooted;
3. happy path (group ok): both hosts rebooted in two waves (one per failure domain share),
   on build 151b373f..., every guest runs again, ledger intent + outcome, no save file left;
4. a reboot that never comes back (group down): the run stops before the next wave, the
   summary names the host and its guests' save files; the second host is untouched;
5. a guest that fails to restore (group rfail): outcome guests_not_restored, the run stops,
   the summary names the host, the guest and its save file (kept);
(check mode on group down first: nothing changes, the outcome says what would happen);
6. policy shutdown (group shut): a guest without a config file refuses the whole host before any
   guest stops; with config files, clean shutdown, reboot, ``xl create`` from the config.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import pytest

if 'labctl' not in sys.modules:
    # A lab instance of its own, so it runs beside a user's lab (0) and the other lab tests (7)
    # (NOREBOOT_XEN_REBOOT_LAB_INSTANCE to choose another).
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_REBOOT_LAB_INSTANCE', '9')

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(LAB))

import labctl  # noqa: E402
import reboot_fallback_lab_support as support  # noqa: E402
from reboot_fallback_lab_support import FIXED, OLD, install_fixed, sim_state  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

SAVE_DIR = '/var/lib/noreboot-xen/saved-guests'

SPEC = '''name: rbf
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: ok, count: 2, build: deb-4.17.5, hardware: intel-cascadelake, failure_domains: [rack-a],
     guests: [{name: web, mem: 256, vcpus: 1}, {name: db, mem: 512, vcpus: 2}]}
  - {name: down, count: 2, build: deb-4.17.5, hardware: amd-milan, failure_domains: [rack-b],
     guests: [{name: app, mem: 256, vcpus: 1}]}
  - {name: rfail, count: 2, build: deb-4.17.5, hardware: amd-rome, failure_domains: [rack-c],
     guests: [{name: cache, mem: 256, vcpus: 1}, {name: queue, mem: 256, vcpus: 1}]}
  - {name: shut, count: 1, build: deb-4.17.5, hardware: qemu, failure_domains: [rack-d],
     guests: [{name: mail, mem: 256, vcpus: 1}, {name: dns, mem: 128, vcpus: 1}]}
'''

host_path = labctl.host_path


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def guests(host):
    return sorted(d['name'] for d in sim_state(host)['domains'] if d['id'] != 0)


def fault(host, name, value):
    labctl.edit_host_state(host, lambda state: state['faults'].__setitem__(name, value))


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    yield from support.lab_up(str(tmp_path_factory.mktemp('reboot_fallback')), SPEC, 'LAB-XSA-2')


def run(lab, target, extra=None, more_args=()):
    extra_vars = {'noreboot_xen_wave_policy': {'reboot_wave_sizes': [1], 'max_per_domain': '50%'}}
    extra_vars.update(extra or {})
    return support.run_reboot_fallback(lab, target, extra_vars, more_args)


def rows(summary):
    return dict((r['host'], r) for r in summary['hosts'])


def test_unset_switch_fails_naming_the_hosts_and_false_only_reports(lab):
    before = dict((h, sim_state(h)['boots']) for h in ('ok-001', 'ok-002'))
    result = run(lab, 'lab_group_ok')
    assert result['rc'] != 0
    assert '2 host(s) need a reboot to get the fix' in result['output']
    assert 'ok-001, ok-002' in result['output'] and 'noreboot_xen_reboot_ok is not set' in result['output']
    result = run(lab, 'lab_group_ok', {'noreboot_xen_reboot_ok': False})
    assert result['rc'] == 0, result['log']
    assert [(r['host'], r['outcome']) for r in result['summary']['hosts']] == [
        ('ok-001', 'reboot_required'), ('ok-002', 'reboot_required')]
    for host in ('ok-001', 'ok-002'):
        assert sim_state(host)['boots'] == before[host]
        assert guests(host) == ['db', 'web']
        assert not os.path.exists(host_path(host, '/var/lib/noreboot-xen/guests.json'))


def test_boot_target_not_the_fixed_build_reboots_nothing(lab):
    # The package "installed", but GRUB's default is plain Linux: the role must stop before any guest moves.
    for host in ('ok-001', 'ok-002'):
        install_fixed(host, default='0')
    result = run(lab, 'lab_group_ok', {'noreboot_xen_reboot_ok': True})
    assert result['rc'] != 0
    summary = result['summary']
    # ok-001 is the reboot canary: its failure stops the run before ok-002 is touched.
    assert summary['gate']['proceed'] is False
    assert summary['gate']['reason'].startswith('canary failed: ok-001 (failed'), summary['gate']['reason']
    assert rows(summary)['ok-001']['outcome'] == 'failed'
    assert "loads no multiboot kernel: the next boot does not start Xen" in rows(summary)['ok-001']['msg']
    assert rows(summary)['ok-002']['outcome'] == 'not_started'
    for host in ('ok-001', 'ok-002'):
        assert sim_state(host)['boots'] == 1
        assert guests(host) == ['db', 'web']
        assert not os.path.exists(host_path(host, '/var/lib/noreboot-xen/guests.json'))


def test_reboot_with_saved_guests(lab):
    for host in ('ok-001', 'ok-002'):
        install_fixed(host)
    result = run(lab, 'lab_group_ok', {'noreboot_xen_reboot_ok': True})
    assert result['rc'] == 0, result['log']
    summary = result['summary']
    assert [(r['host'], r['wave'], r['outcome']) for r in summary['hosts']] == [
        ('ok-001', 1, 'rebooted'), ('ok-002', 2, 'rebooted')]
    for host in ('ok-001', 'ok-002'):
        state = sim_state(host)
        assert state['build']['build_id'] == FIXED
        assert state['boots'] == 2
        assert guests(host) == ['db', 'web']
        manifest = json.load(open(host_path(host, '/var/lib/noreboot-xen/guests.json')))
        assert manifest['status'] == 'restored'
        assert sorted((g['name'], g['action'], g['state']) for g in manifest['guests']) == [
            ('db', 'save', 'restored'), ('web', 'save', 'restored')]
        assert os.listdir(host_path(host, SAVE_DIR)) == []
        ledger = read_jsonl(host_path(host, '/var/lib/noreboot-xen/ledger.jsonl'))
        # The boot target run before left its outcome on the canary ok-001 (failed, not rebooted) and
        # stopped before ok-002; this run an intent and an outcome on each.
        earlier = ledger[:1] if host == 'ok-001' else []
        assert [(e['event'], e['kind'], e.get('outcome')) for e in earlier] == (
            [('outcome', 'reboot_fallback', 'failed')] if host == 'ok-001' else [])
        assert all(e['rebooted'] is False for e in earlier)
        intent, outcome = ledger[len(earlier):]
        assert (intent['event'], intent['kind'], outcome['event'], outcome['outcome']) == (
            'intent', 'reboot_fallback', 'outcome', 'rebooted')
        assert intent['hypervisor_build_id'] == OLD and intent['guests'] == ['db', 'web']
        assert outcome['hypervisor_build_id'] == FIXED and outcome['previous_build_id'] == OLD
        assert intent['run_id'] == outcome['run_id'] and outcome['run_id'] not in [e['run_id'] for e in earlier]
    # Run again: nothing to do (the hosts run the fixed build: not affected), nothing changes.
    again = run(lab, 'lab_group_ok', {'noreboot_xen_reboot_ok': True})
    assert again['rc'] == 0, again['log']
    assert again['summary']['hosts'] == []
    assert [sim_state(h)['boots'] for h in ('ok-001', 'ok-002')] == [2, 2]


def test_check_mode_changes_nothing(lab):
    for host in ('down-001', 'down-002'):
        install_fixed(host)
    result = run(lab, 'lab_group_down', {'noreboot_xen_reboot_ok': True}, more_args=['--check'])
    assert result['rc'] == 0, result['log']
    assert [(r['host'], r['outcome']) for r in result['summary']['hosts']] == [
        ('down-001', 'would_reboot'), ('down-002', 'would_reboot')]
    assert 'check mode: the fixed hypervisor would be installed, the guests moved (app)' in \
        result['summary']['hosts'][0]['msg']
    for host in ('down-001', 'down-002'):
        assert sim_state(host)['boots'] == 1 and guests(host) == ['app']
        assert sim_state(host)['build']['build_id'] == OLD
        assert not os.path.exists(host_path(host, '/var/lib/noreboot-xen/guests.json'))
        assert not os.path.exists(host_path(host, '/var/lib/noreboot-xen/ledger.jsonl'))


def test_reboot_that_never_comes_back_stops_the_run(lab):
    for host in ('down-001', 'down-002'):
        install_fixed(host)
    fault('down-001', 'reboot_never_returns', True)
    result = run(lab, 'lab_group_down', {'noreboot_xen_reboot_ok': True})
    assert result['rc'] != 0
    summary = result['summary']
    by_host = rows(summary)
    assert by_host['down-001']['outcome'] == 'unreachable'
    assert by_host['down-001']['stranded'] == ['app (saved to %s/app.save, state saved)' % SAVE_DIR]
    assert by_host['down-002']['outcome'] == 'not_started'
    assert summary['gate']['proceed'] is False
    assert summary['gate']['reason'].startswith(
        'guests are not running again: down-001 (unreachable: app (saved to %s/app.save, state saved))' % SAVE_DIR)
    assert 'down-001' in result['output'] and 'app (saved to' in result['output']
    # down-002 was never touched; down-001's guest is accounted for in its manifest and save file.
    assert sim_state('down-002')['boots'] == 1 and guests('down-002') == ['app']
    assert os.path.exists(host_path('down-001', SAVE_DIR + '/app.save'))
    manifest = json.load(open(host_path('down-001', '/var/lib/noreboot-xen/guests.json')))
    assert [(g['name'], g['state']) for g in manifest['guests']] == [('app', 'saved')]


def test_guest_that_fails_to_restore_stops_the_run(lab):
    for host in ('rfail-001', 'rfail-002'):
        install_fixed(host)
    fault('rfail-001', 'guest_restore_fails', {'domains': ['queue']})
    result = run(lab, 'lab_group_rfail', {'noreboot_xen_reboot_ok': True})
    assert result['rc'] != 0
    summary = result['summary']
    by_host = rows(summary)
    assert by_host['rfail-001']['outcome'] == 'guests_not_restored'
    stranded = by_host['rfail-001']['stranded']
    assert len(stranded) == 1
    assert stranded[0].startswith(
        'queue (saved to %s/queue.save, state saved: xl restore failed (rc=1): libxl: error: '
        'libxl_stream_read.c:852:libxl__xc_domain_restore_done: restoring domain: Invalid argument; libxl: error: '
        'libxl_create.c:1919:domcreate_rebuild_done: Domain ' % SAVE_DIR), stranded
    assert by_host['rfail-002']['outcome'] == 'not_started'
    assert summary['gate']['proceed'] is False
    assert 'rfail-001 (guests_not_restored: queue (saved to %s/queue.save' % SAVE_DIR in summary['gate']['reason']
    state = sim_state('rfail-001')
    assert state['build']['build_id'] == FIXED
    assert guests('rfail-001') == ['cache']
    assert os.path.exists(host_path('rfail-001', SAVE_DIR + '/queue.save')), 'the save file of a failed restore is kept'
    assert sim_state('rfail-002')['boots'] == 1 and guests('rfail-002') == ['cache', 'queue']


def test_shutdown_policy_needs_config_files_then_starts_guests_again(lab):
    host = 'shut-001'
    install_fixed(host)
    etc_xen = host_path(host, '/etc/xen')
    os.makedirs(etc_xen, exist_ok=True)
    with open(os.path.join(etc_xen, 'mail.cfg'), 'w') as handle:
        handle.write('name = "mail"\nmemory = 256\nvcpus = 1\n')
    extra = {'noreboot_xen_reboot_ok': True, 'reboot_fallback_guest_policy': 'shutdown'}
    result = run(lab, 'lab_group_shut', extra)
    assert result['rc'] != 0
    row = rows(result['summary'])[host]
    assert row['outcome'] == 'failed'
    assert 'dns are to be shut down but have no config file under /etc/xen' in row['msg']
    assert sim_state(host)['boots'] == 1 and guests(host) == ['dns', 'mail']
    # Written through the host (over SSH): the first run looked the name up, and an overlay keeps
    # that negative lookup cached, so a file put into the upper layer from outside stays unseen.
    copy = subprocess.run([os.path.join(REPO, '.venv', 'bin', 'ansible'), '-i', lab['inventory'], host, '-m',
                           'ansible.builtin.copy', '-a', json.dumps(dict(
                               dest='/etc/xen/dns', mode='0644',
                               content='# xl config without .cfg\nname = "dns"\nmemory = 128\nvcpus = 1\n'))],
                          cwd=REPO, env=support.ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    assert copy.returncode == 0, copy.stdout
    result = run(lab, 'lab_group_shut', extra)
    assert result['rc'] == 0, result['log']
    assert rows(result['summary'])[host]['outcome'] == 'rebooted'
    state = sim_state(host)
    assert state['build']['build_id'] == FIXED and state['boots'] == 2
    assert guests(host) == ['dns', 'mail']
    manifest = json.load(open(host_path(host, '/var/lib/noreboot-xen/guests.json')))
    assert sorted((g['name'], g['action'], g['state'], g['config']) for g in manifest['guests']) == [
        ('dns', 'shutdown', 'started', '/etc/xen/dns'), ('mail', 'shutdown', 'started', '/etc/xen/mail.cfg')]
