# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_livepatch.yml with a signed advisory directory, over SSH (issue 19).

Needs root (the lab). Two lab hosts (a canary and one wave, to keep it short) of Debian's Xen 4.17.5 and the lab's own lab_xsa_fix payload
(tests/lab/bench_rolling_livepatch.py write_advisory). The payload carries XenServer's signature note
(``.note.Xen.signature``, RSA made by openssl, tests/support/payload_note_signing.py) and the directory
is signed with a real GnuPG key the way docs/advisory_manifest.md tells operators to
(tests/support/gpg_signing.py: sha256sum into .ansible-sign/sha256sum.txt, gpg --detach-sign).

1. A copy of the signed directory with one byte of the payload, or of the manifest, changed after
   signing: the run exits non-zero, the message names the changed file and the signing key, and no
   host is contacted at all (the advisories are checked before detection): no module call on any host,
   the simulator's whole state (its hypercall counters included) unchanged, no staged file, no ledger
   entry, no host lock, no controller run record.
2. The untampered directory: accepted, every host patched, and every host's ledger entries (intent and
   outcome) carry the verification result: the directory's key fingerprint and signature time, and the
   payload note's key id.
"""

from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import shutil

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

import bench_rolling_livepatch as rl  # noqa: E402  pylint: disable=wrong-import-position
import gpg_signing  # noqa: E402  pylint: disable=wrong-import-position
import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position
import payload_note_signing  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

SPEC = '''name: signed-advisory
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: sa, count: 2, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b]}
'''
PAYLOAD = 'lab_xsa_fix_4_17_5'
STATE_DIR = '/var/lib/noreboot-xen'


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = os.path.realpath(str(tmp_path_factory.mktemp('signed_advisory')))
    home = os.path.join(workdir, 'gnupg')
    os.mkdir(home, 0o700)
    with lab_for_test.lab_up(workdir, SPEC) as up:
        try:
            keys = gpg_signing.Keys(home, workdir)
            keys.make('signer')
            rsa_private, rsa_public = payload_note_signing.make_rsa_key(workdir, 'payload-signer')
            directory = os.path.join(workdir, 'advisory')
            manifest = rl.write_advisory(directory)[0]
            sign_payload_notes(manifest, rsa_private, workdir)
            keys.sign(directory, 'signer')
            yield dict(up, manifest=manifest, directory=directory, keys=keys, payload_key=rsa_public,
                       hosts=sorted(rl.lab_hosts()), runs=0)
        finally:
            gpg_signing.stop_agent(home)


def sign_payload_notes(manifest, private_key, workdir):
    """Give every payload of the manifest a .note.Xen.signature and write the signed files' sha256 into it."""
    with open(manifest) as handle:
        doc = yaml.safe_load(handle)
    for entry in doc['livepatches']:
        path = os.path.join(os.path.dirname(manifest), entry['file'])
        payload_note_signing.sign_payload(path, private_key, workdir)
        with open(path, 'rb') as handle:
            entry['sha256'] = hashlib.sha256(handle.read()).hexdigest()
    with open(manifest, 'w') as handle:
        yaml.safe_dump(doc, handle, sort_keys=False)


def run(lab, manifest):
    lab['runs'] += 1
    workdir = os.path.join(lab['workdir'], 'run%d' % lab['runs'])
    os.makedirs(workdir)
    extra = {'noreboot_xen_reboot_ok': False,
             'noreboot_xen_advisory_trusted_keys': [lab['keys'].files['signer']],
             'noreboot_xen_payload_signature_keys': [lab['payload_key']],
             'noreboot_xen_plan_path': os.path.join(workdir, 'plan.json'),
             # The canary, then the other host: two waves.
             'noreboot_xen_wave_policy': {'wave_sizes': [1, '100%'], 'max_per_domain': '100%'}}
    result = rl.run_rollout(lab['inventory'], manifest, workdir, extra_vars=extra)
    with open(result['log']) as handle:
        result['output'] = handle.read()
    result['run_records'] = os.path.join(workdir, 'runs')  # rollout_command's noreboot_xen_run_lock_dir
    print('run %d: rc %s, %.1f s, log %s' % (lab['runs'], result['rc'], result['elapsed_s'], result['log']))
    return result


def host_state(host):
    """What the host holds: the simulator's whole state, and the collection's files in its /var."""
    staging = rl.host_file(host, STATE_DIR + '/staging')
    return dict(sim=rl.sim_state(host), ledger=rl.ledger(host),
                lock=rl.host_file(host, STATE_DIR + '/rollout.lock'),
                staged=sorted(os.path.join(d, f) for d, dummy, fs in os.walk(staging) for f in fs) if staging else [],
                upload=rl.host_file(host, STATE_DIR + '/upload'))


def tampered_copy(lab, what):
    """A copy of the signed directory with one byte of the payload or of the manifest changed; returns
    (manifest path, changed file path)."""
    directory = os.path.join(lab['workdir'], 'tampered-' + what)
    shutil.copytree(lab['directory'], directory)
    manifest = os.path.join(directory, os.path.basename(lab['manifest']))
    if what == 'manifest':
        changed = manifest
        with open(changed, 'rb') as handle:
            data = bytearray(handle.read())
        at = data.index(b'lab: a flaw') + len('lab: ')
        data[at:at + 1] = b'b'  # still valid YAML: only the signature can tell
    else:
        changed = os.path.join(directory, '%s-4.17.5.livepatch' % rl.PAYLOAD)
        with open(changed, 'rb') as handle:
            data = bytearray(handle.read())
        data[len(data) // 2] ^= 0x01
    with open(changed, 'wb') as handle:
        handle.write(bytes(data))
    return manifest, changed


@pytest.mark.parametrize('what', ['payload', 'manifest'])
def test_one_byte_changed_after_signing_is_refused_before_any_host_is_contacted(lab, what):
    before = dict((h, host_state(h)) for h in lab['hosts'])
    manifest, changed = tampered_copy(lab, what)
    result = run(lab, manifest)
    assert result['rc'] != 0, result['log']
    fingerprint = lab['keys'].fingerprints['signer']
    output = result['output']
    assert 'changed after signing' in output, result['log']
    assert changed in output and fingerprint in output, result['log']  # names the file and the key
    assert 'restore the signed file, or sign again' in output, result['log']  # and the fix
    assert 'Detect Xen on every host' not in output, 'detection must not start: %s' % result['log']
    # No host was contacted: no module ran on any host, and nothing on any host changed (the
    # simulator's hypercall counters, payload table and domains; the ledger, staging, upload copy, lock).
    calls = result['calls'] or {}
    assert not set(calls) & set(lab['hosts']), calls
    assert [c['action'] for c in calls.get('localhost', [])] == ['noreboot.xen.fleet_plan'], calls
    after = dict((h, host_state(h)) for h in lab['hosts'])
    for host in lab['hosts']:
        assert after[host] == before[host], host
        assert after[host]['ledger'] == [] and after[host]['lock'] is None and after[host]['staged'] == []
    assert result['summary'] is None
    assert not os.path.exists(result['run_records']) or os.listdir(result['run_records']) == []


def test_the_signed_directory_is_applied_and_each_ledger_entry_records_the_verification(lab):
    result = run(lab, lab['manifest'])
    assert result['rc'] == 0, result['log']
    summary = result['summary']
    assert dict((h, e['outcome']) for h, e in summary['hosts'].items()) == dict((h, 'patched') for h in lab['hosts'])
    [signature] = summary['signatures']
    fingerprint = lab['keys'].fingerprints['signer']
    assert signature['status'] == 'verified' and signature['fingerprint'] == fingerprint
    with open(os.path.join(os.path.dirname(result['log']), 'plan.json')) as handle:
        plan = json.load(handle)
    [note] = plan['payload_signatures']
    assert note['status'] == 'verified' and note['key_file'] == lab['payload_key']
    expected = dict(
        advisory_signature=dict(status='verified', directory=lab['directory'], fingerprint=fingerprint,
                                signing_key=signature['signing_key'], signature_time=signature['signature_time']),
        payload_signature=dict(status='verified', key_id=note['key_id'], file=note['file']))
    for host in lab['hosts']:
        state = rl.sim_state(host)
        assert state['applied'] == [PAYLOAD], (host, state['applied'])
        entries = rl.ledger(host)
        assert [(e['event'], e.get('outcome')) for e in entries] == [('intent', None), ('outcome', 'patched')], entries
        for entry in entries:
            assert entry['verification'] == expected, (host, entry)
        assert rl.host_file(host, STATE_DIR + '/rollout.lock') is None
