# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's payload directories and the console lines a fault writes (no lab, no root needed).

Each build's payload directory holds Xen's test payloads (tests/lab/README.md), real ones from
the testbed cache when it has the whole set for the build, forged otherwise; a forged
``xen_nop`` crashes the simulated hypervisor whatever its file is called. The fault
``console_after_apply`` writes guest (``(dN)``) or hypervisor (``(XEN)``) lines to ``xl dmesg``
after an apply, and the product's dmesg check counts only the hypervisor's.
"""

import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import lab_elf_notes  # noqa: E402
import lab_model  # noqa: E402
import lab_payloads  # noqa: E402
import labctl  # noqa: E402

from ansible_collections.noreboot.xen.plugins.module_utils import host_health  # noqa: E402

B4175 = lab_model.KNOWN_BUILDS['4.17.5']['build_id']
INVENTED = {'version': '4.18.3', 'build_id': '4183aa01c0ffee00000000000000000000004183', 'debian_version': '4.18.3-1~lab1'}
EXPECTED_FILES = sorted([name + '.livepatch' for name in lab_payloads.XEN_TEST_PAYLOADS] + ['lab_xsa_fix.livepatch', 'BUILD'])
GUEST_LINES = ['livepatch: lab_xsa_fix: apply failed with rc=-22',
               'Panic on CPU 0: livepatch expectation of do_hello not met',
               'livepatch: Timed out on semaphore in CPU quiesce phase 1/2']


def make_payloads(tmp_path, monkeypatch, cache):
    monkeypatch.setattr(labctl, 'LAB_ROOT', str(tmp_path / 'lab'))
    monkeypatch.setattr(lab_payloads, 'REAL_PAYLOAD_CACHE', str(cache))
    builds = [lab_model.resolve_build('4.17.5'), lab_model.resolve_build(INVENTED)]
    labctl.make_lab_payloads([{'build': build} for build in builds] + [{'build': builds[0]}])
    return dict((build['build_id'], str(tmp_path / 'lab' / 'payloads' / build['build_id'])) for build in builds)


def notes(path):
    payload = lab_elf_notes.read_payload(path)
    return dict((section, payload.build_id_note(section))
                for section in ('.note.gnu.build-id', '.livepatch.xen_depends', '.livepatch.depends'))


def test_each_build_directory_holds_xen_test_payloads_forged_without_the_testbed_cache(tmp_path, monkeypatch):
    directories = make_payloads(tmp_path, monkeypatch, tmp_path / 'no-cache')
    for build_id, directory in directories.items():
        assert sorted(os.listdir(directory)) == EXPECTED_FILES, directory
        ids = dict((name, notes(os.path.join(directory, name + '.livepatch'))) for name in lab_payloads.XEN_TEST_PAYLOADS)
        for name, (depends, dummy) in lab_payloads.XEN_TEST_PAYLOADS.items():
            if name == 'xen_no_xen_buildid':
                assert ids[name]['.livepatch.xen_depends'] is None
            else:
                assert ids[name]['.livepatch.xen_depends'] == build_id, name
            below = build_id if depends == 'hypervisor' else ids[depends]['.note.gnu.build-id']
            assert ids[name]['.livepatch.depends'] == below, name
        assert len(set(i['.note.gnu.build-id'] for i in ids.values())) == len(ids)


def test_real_payloads_are_copied_only_when_the_cache_has_the_whole_set(tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    (cache / '4.17.5').mkdir(parents=True)
    real = {}
    for name in sorted(lab_payloads.XEN_TEST_PAYLOADS):
        path = str(cache / '4.17.5' / (name + '.livepatch'))
        lab_payloads.forge_xen_test_payload(path, 'real-testbed-build', B4175, name)
        with open(path, 'rb') as handle:
            real[name] = handle.read()
    directory = make_payloads(tmp_path, monkeypatch, cache)[B4175]
    for name in lab_payloads.XEN_TEST_PAYLOADS:
        with open(os.path.join(directory, name + '.livepatch'), 'rb') as handle:
            assert handle.read() == real[name], name
    # One missing: the whole set is forged (a real bye_world needs the real hello_world's build-id).
    os.unlink(str(cache / '4.17.5' / 'xen_bye_world.livepatch'))
    directory = make_payloads(tmp_path, monkeypatch, cache)[B4175]
    with open(os.path.join(directory, 'xen_hello_world.livepatch'), 'rb') as handle:
        assert handle.read() != real['xen_hello_world']
    assert sorted(os.listdir(directory)) == EXPECTED_FILES


class Host(object):
    """The simulated tools run as programs against a state file of their own."""

    def __init__(self, tmp_path, faults=None):
        self.build = lab_model.resolve_build('4.17.5')
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path
        state = lab_model.new_state('labhost', self.build, 'amd-rome', guests=['vm1', 'vm2'], faults=faults or {})
        self.state_path = str(tmp_path / 'state.json')
        with open(self.state_path, 'w') as handle:
            json.dump(state, handle)
        self.bin = tmp_path / 'bin'
        self.bin.mkdir()
        launcher = lab_model.write_launcher(str(tmp_path / 'xensim'))
        for tool in ('xl', 'xen-livepatch'):
            os.symlink(launcher, str(self.bin / tool))

    def run(self, *argv):
        env = dict(os.environ, NOREBOOT_XEN_LAB_STATE=self.state_path, LC_ALL='C')
        proc = subprocess.run([str(self.bin / argv[0])] + list(argv[1:]), env=env, cwd=str(self.tmp),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=20,
                              check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def state(self):
        with open(self.state_path) as handle:
            return json.load(handle)


def test_forged_xen_nop_crashes_whatever_its_file_is_called(tmp_path):
    host = Host(tmp_path)
    staged = str(tmp_path / 'staged-0123abcd.livepatch')  # as a rollout stages it, not xen_nop.livepatch
    lab_payloads.forge_xen_test_payload(staged, host.build['version'], host.build['build_id'], 'xen_nop')
    assert host.run('xen-livepatch', 'upload', 'xsa_fix', staged) == (0, 'Uploading %s... completed\n' % staged, '')
    (payload,) = host.state()['payloads']
    assert payload['effect'] == {'crash': 'DOUBLE FAULT', 'source': 'xen-test:xen_nop'}


def take_baseline(host):
    """The product's health baseline from the simulated tools' output."""
    commands = (('xl', 'info'), ('xl', 'list'), ('xl', 'dmesg'), ('xen-livepatch', 'list'))
    return host_health.take_baseline(*[host.run(*argv)[1] for argv in commands])


def apply_lab_fix(host):
    path = str(host.tmp / 'lab_xsa_fix.livepatch')
    lab_payloads.forge_lab_payload(path, host.build['build_id'], {'xen_extra': '-lp1'})
    return host.run('xen-livepatch', 'load', path)


def test_console_after_apply_writes_guest_lines_that_the_dmesg_check_ignores(tmp_path):
    quiet = Host(tmp_path / 'quiet')
    noisy = Host(tmp_path / 'noisy', faults={'console_after_apply': {'lines': GUEST_LINES, 'domain': 'vm2'}})
    baseline = dict((h, take_baseline(h)) for h in (quiet, noisy))
    applied = [apply_lab_fix(h) for h in (quiet, noisy)]
    assert applied[0][0] == 0 and applied[0] == (0, applied[1][1].replace('/noisy/', '/quiet/'), applied[1][2])
    vm2 = [d['id'] for d in noisy.state()['domains'] if d['name'] == 'vm2'][0]
    rc, text, dummy = noisy.run('xl', 'dmesg')
    assert rc == 0
    assert text == quiet.run('xl', 'dmesg')[1] + ''.join('(d%d) %s\n' % (vm2, line) for line in GUEST_LINES)
    check = host_health.check_dmesg(baseline[noisy], rc, text)
    assert check['ok'] is True, check['detail']


def test_console_after_apply_from_xen_fails_the_dmesg_check(tmp_path):
    host = Host(tmp_path, faults={'console_after_apply': {'lines': GUEST_LINES[:1], 'from': 'xen'}})
    baseline = take_baseline(host)
    assert apply_lab_fix(host)[0] == 0
    rc, text, dummy = host.run('xl', 'dmesg')
    assert text.endswith('(XEN) %s\n' % GUEST_LINES[0])
    check = host_health.check_dmesg(baseline, rc, text)
    assert check['ok'] is False and GUEST_LINES[0] in check['detail']
