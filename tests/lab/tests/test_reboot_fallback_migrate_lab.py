# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/reboot_fallback.yml with reboot_fallback_guest_policy migrate on lab hosts, over SSH.

Needs root (the lab). Two hosts of Debian's Xen 4.17.5 (mig-001, mig-002) with two guests each
(web 256 MiB / 1 vCPU, db 512 MiB / 2 vCPUs), whose fix is a reboot into 4.17.7 (staged with
labctl.stage_installed_build, as in test_reboot_fallback_lab.py); two peers that are not
rebooted: peer-001 (plenty of free memory, one guest of its own) and small-001 (489 MiB free).

1. the simulated ``xl migrate`` itself, run over SSH in mig-002: an unknown domain, an unknown
   peer and a peer without the free memory fail as xl does (rc 1, an error line, nothing moves);
   a migration to peer-001 (by address) and back (by name) moves the guest with its memory and
   vCPUs, and the peer's free memory drops by the guest's memory; a guest whose name already
   runs on the peer stays where it is;
2. the playbook on mig-001 with policy migrate, peer peer-001: the guests leave mig-001 before its
   reboot (the domains on the peer came from mig-001's boot before the reboot), mig-001 reboots
   into the fixed build, the outcome is ``rebooted``, the guests still run on the peer (the role
   does not migrate them back: a known issue) and the manifest lists them as migrated to the peer;
3. the playbook on mig-002 with peer small-001: nothing is migrated, mig-002 is not rebooted, the
   message names the peer and the memory.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import pytest

if 'labctl' not in sys.modules:
    # A lab instance of its own (nrxl13-*, /run/noreboot-xen-lab-13), beside a user's lab (0) and
    # the other lab tests (7, 9, 11).
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = '13'

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import labctl  # noqa: E402
import reboot_fallback_lab_support as support  # noqa: E402
from reboot_fallback_lab_support import FIXED, OLD, install_fixed, sim_state  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

MANIFEST = '/var/lib/noreboot-xen/guests.json'

# small-001: 8704 MiB of memory, dom0 8192 MiB: xl info free_memory 8704 - 8192 - 23 = 489.
SPEC = '''name: rbfmig
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
  deb-4.17.7: {version: 4.17.7}
defaults:
  reboot_delay: 1
groups:
  - {name: mig, count: 2, build: deb-4.17.5, hardware: intel-cascadelake, failure_domains: [rack-a, rack-b],
     guests: [{name: web, mem: 256, vcpus: 1}, {name: db, mem: 512, vcpus: 2}]}
  - {name: peer, count: 1, build: deb-4.17.7, hardware: intel-cascadelake, failure_domains: [rack-c],
     guests: [{name: other, mem: 1024, vcpus: 2}]}
  - {name: small, count: 1, build: deb-4.17.7, hardware: {class: intel-cascadelake, total_memory: 8704},
     failure_domains: [rack-d], guests: []}
'''
SMALL_FREE = 489


def domains(host):
    """{name: (mem, vcpus, state)} of the host's guests."""
    return dict((d['name'], (d['mem'], d['vcpus'], d['state'])) for d in sim_state(host)['domains'] if d['id'] != 0)


def addr(host):
    return dict((h['name'], h['addr']) for h in labctl.load_lab_state()['hosts'])[host]


def on_host(host, *argv):
    """Run argv (fixed words, no shell syntax) in a lab host over SSH: (rc, stdout, stderr)."""
    proc = subprocess.run(['ssh', '-i', os.path.join(labctl.LAB_ROOT, 'ssh', 'id_ed25519'), '-o', 'BatchMode=yes',
                           '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
                           '-o', 'ConnectTimeout=10', 'root@' + addr(host), '--'] + list(argv),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def xl_free_memory(host):
    rc, out, err = on_host(host, 'xl', 'info')
    assert rc == 0, err
    return int([line.split(':', 1)[1] for line in out.splitlines() if line.startswith('free_memory ')][0])


def xl_list_rows(host):
    """xl list in the host, over SSH: {name: (mem, vcpus)}."""
    rc, out, err = on_host(host, 'xl', 'list')
    assert rc == 0, err
    rows = {}
    for line in out.splitlines()[1:]:
        fields = line.split()
        rows[fields[0]] = (int(fields[2]), int(fields[3]))
    return rows


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    yield from support.lab_up(str(tmp_path_factory.mktemp('reboot_fallback_migrate')), SPEC, 'LAB-XSA-3')


def run(lab, target, extra=None):
    extra_vars = {'noreboot_xen_wave_policy': {'reboot_wave_sizes': [1], 'max_per_domain': 1},
                  'noreboot_xen_reboot_ok': True, 'reboot_fallback_guest_policy': 'migrate'}
    extra_vars.update(extra or {})
    return support.run_reboot_fallback(lab, target, extra_vars)


def rows(summary):
    return dict((r['host'], r) for r in summary['hosts'])


def test_xl_migrate_failures_change_nothing(lab):
    before = dict((h, sim_state(h)['domains']) for h in ('mig-002', 'peer-001', 'small-001'))
    rc, out, err = on_host('mig-002', 'xl', 'migrate', 'nosuch', 'peer-001')
    assert (rc, out, err) == (1, '', 'nosuch is an invalid domain identifier (rc=-6)\n')
    rc, out, err = on_host('mig-002', 'xl', 'migrate', 'web', 'no-such-host')
    assert rc == 1 and out == ''
    lines = err.splitlines()
    assert lines[0] == 'ssh: Could not resolve hostname no-such-host: Name or service not known'  # ssh ends it with \r\n
    assert lines[1] == ('libxl: error: libxl_utils.c:505:libxl_read_exactly: file/stream truncated reading banner '
                        'from migration receiver stream')
    assert lines[2].startswith('libxl: info: libxl_exec.c:117:libxl_report_child_exitstatus: migration transport '
                               'process [') and lines[2].endswith('] exited with error status 255')
    assert len(lines) == 3
    # db needs 512 MiB, small-001 has 489 free: the target cannot create it, the sender resumes it.
    rc, out, err = on_host('mig-002', 'xl', 'migrate', 'db', 'small-001')
    assert rc == 1 and out == ''
    assert 'failed to free memory for the domain\nmigration target: Domain creation failed (code -3).\n' in err
    assert err.endswith('Migration failed, resuming at sender.\n')
    assert 'Migration successful.' not in err
    rc, out, err = on_host('mig-002', 'xl', 'migrate', 'web')
    assert (rc, out) == (2, '') and err.startswith("'xl migrate' requires at least 2 arguments.")
    for host, doms in before.items():
        assert sim_state(host)['domains'] == doms, host
    assert xl_free_memory('small-001') == SMALL_FREE


def test_xl_migrate_moves_the_guest_and_its_memory(lab):
    free_before = xl_free_memory('peer-001')
    rc, out, err = on_host('mig-002', 'xl', 'migrate', 'web', addr('peer-001'))
    assert (rc, out) == (0, ''), err
    assert err.splitlines() == [
        'migration target: Ready to receive domain.',
        'Saving to migration stream new xl format (info 0x3/0x0/1466)',
        'Loading new save file <incoming migration stream> (new xl fmt info 0x3/0x0/1466)',
        ' Savefile contains xl domain config in JSON format',
        'Parsing config from <saved>',
        'xc: info: Saving domain 1, type x86 PV',
        'migration target: Transfer complete, requesting permission to start domain.',
        'migration sender: Target has acknowledged transfer.',
        'migration sender: Giving target permission to start.',
        'migration target: Got permission, starting domain.',
        'migration target: Domain started successsfully.',
        'migration sender: Target reports successful startup.',
        'Migration successful.']
    assert sorted(xl_list_rows('mig-002')) == ['Domain-0', 'db']
    peer_rows = xl_list_rows('peer-001')
    assert peer_rows['web'] == (256, 1) and peer_rows['other'] == (1024, 2)
    assert domains('peer-001')['web'] == (256, 1, '-b----')
    assert xl_free_memory('peer-001') == free_before - 256
    # mig-001's own web cannot follow: the target cannot rename its copy to a name that runs there.
    peer_before, mig_before = sim_state('peer-001')['domains'], sim_state('mig-001')['domains']
    rc, out, err = on_host('mig-001', 'xl', 'migrate', 'web', 'peer-001')
    assert (rc, out) == (1, '')
    assert ('migration target: Got permission, starting domain.\n'
            'libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain 3:Domain with name "web" already exists.\n'
            'migration target: Failure, destroying our copy.\n') in err
    assert err.endswith('migration sender: Resumed OK.\nMigration failed due to problems at target.\n')
    assert sim_state('peer-001')['domains'] == peer_before and sim_state('mig-001')['domains'] == mig_before
    # And back, by name, from the peer.
    rc, out, err = on_host('peer-001', 'xl', 'migrate', 'web', 'mig-002')
    assert (rc, out) == (0, ''), err
    assert err.endswith('Migration successful.\n')
    assert sorted(domains('mig-002')) == ['db', 'web'] and sorted(domains('peer-001')) == ['other']
    assert xl_free_memory('peer-001') == free_before


def test_migrate_policy_moves_the_guests_to_the_peer_then_reboots(lab):
    install_fixed('mig-001')
    boot_id_before = sim_state('mig-001')['boot_id']
    free_before = xl_free_memory('peer-001')
    result = run(lab, 'mig-001', {'reboot_fallback_migrate_peer': 'peer-001'})
    assert result['rc'] == 0, result['log']
    assert [(r['host'], r['outcome']) for r in result['summary']['hosts']] == [('mig-001', 'rebooted')]
    assert result['summary']['hosts'][0]['msg'].endswith('every guest runs again (on the migration peer: db, web)')
    state = sim_state('mig-001')
    assert state['build']['build_id'] == FIXED and state['boots'] == 2
    assert state['boot_id'] != boot_id_before
    # Gone from mig-001 (not started again by its reboot), running on the peer with their memory
    # and vCPUs: migrated from mig-001 while it still ran its old boot.
    assert sorted(domains('mig-001')) == []
    peer = dict((d['name'], d) for d in sim_state('peer-001')['domains'])
    assert sorted(peer) == ['Domain-0', 'db', 'other', 'web']
    for name, mem, vcpus in (('web', 256, 1), ('db', 512, 2)):
        assert (peer[name]['mem'], peer[name]['vcpus'], peer[name]['state']) == (mem, vcpus, '-b----')
        assert peer[name]['migrated_from']['host'] == 'mig-001'
        assert peer[name]['migrated_from']['boot_id'] == boot_id_before
    reboot_times = [e['time'] for e in state['events'] if e['action'] == 'reboot']
    assert len(reboot_times) == 1
    assert max(peer[n]['migrated_from']['time'] for n in ('web', 'db')) < reboot_times[0]
    assert xl_list_rows('peer-001') == {'Domain-0': (8192, 8), 'other': (1024, 2), 'web': (256, 1), 'db': (512, 2)}
    assert xl_free_memory('peer-001') == free_before - 768
    manifest = json.load(open(labctl.host_path('mig-001', MANIFEST)))
    assert manifest['peer'] == 'peer-001'
    assert sorted((g['name'], g['action'], g['peer'], g['state']) for g in manifest['guests']) == [
        ('db', 'migrate', 'peer-001', 'on_peer'), ('web', 'migrate', 'peer-001', 'on_peer')]
    # The peer itself was neither rebooted nor changed otherwise.
    assert sim_state('peer-001')['boots'] == 1


def test_peer_without_the_free_memory_migrates_nothing_and_does_not_reboot(lab):
    install_fixed('mig-002')
    before = sim_state('mig-002')
    result = run(lab, 'mig-002', {'reboot_fallback_migrate_peer': 'small-001'})
    assert result['rc'] != 0
    row = rows(result['summary'])['mig-002']
    assert row['outcome'] == 'failed'
    assert 'peer small-001 has %d MiB free (xl info free_memory) but guest(s) db, web need 768 MiB: ' \
           'nothing was migrated' % SMALL_FREE in row['msg'], row['msg']
    state = sim_state('mig-002')
    assert state['boots'] == 1 and state['boot_id'] == before['boot_id']
    assert state['build']['build_id'] == OLD
    assert sorted(domains('mig-002')) == ['db', 'web']
    assert sorted(domains('small-001')) == []
    assert xl_free_memory('small-001') == SMALL_FREE
