# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulator's faults and behaviours beyond the recorded transcripts (no lab, no root needed).

Each test runs the simulated tools as programs (the launcher a lab host runs) against a state
file of its own, and checks stdout, stderr and rc the way the real tool writes them.
"""

import concurrent.futures
import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import lab_model  # noqa: E402
import lab_payloads  # noqa: E402

B4175 = lab_model.KNOWN_BUILDS['4.17.5']['build_id']
INVENTED = {'version': '4.18.3', 'build_id': '4183aa01c0ffee00000000000000000000004183', 'debian_version': '4.18.3-1~lab1'}


class Host(object):
    def __init__(self, tmp_path, build='4.17.5', faults=None, guests=('vm1', 'vm2'), livepatch=True, hardware='amd-rome'):
        b = lab_model.resolve_build(build)
        if not livepatch:
            b['livepatch'] = False
        self.build = b
        self.tmp = tmp_path
        state = lab_model.new_state('labhost', b, hardware, guests=list(guests), faults=faults or {})
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
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=20, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def state(self):
        with open(self.state_path) as handle:
            return json.load(handle)

    def payload(self, name, **kwargs):
        path = str(self.tmp / (name + '.livepatch'))
        if kwargs.pop('test_payload', False):
            lab_payloads.forge_xen_test_payload(path, self.build['version'], self.build['build_id'], name)
        else:
            kwargs.setdefault('xen_build_id', self.build['build_id'])
            effect = kwargs.pop('effect', {'xen_extra': '-' + name})
            lab_payloads.forge_lab_payload(path, kwargs.pop('xen_build_id'), effect, **kwargs)
        return path

    def info(self, key):
        rc, out, dummy = self.run('xl', 'info')
        assert rc == 0
        return dict(line.split(': ', 1) for line in out.splitlines() if ': ' in line)[key.ljust(23)]


def test_ebusy_for_the_first_two_attempts_then_success(tmp_path):
    host = Host(tmp_path, faults={'ebusy': {'first': 2}})
    path = host.payload('fix1')
    assert host.run('xen-livepatch', 'upload', 'fix1', path) == (0, 'Uploading %s... completed\n' % path, '')
    for dummy in range(2):
        assert host.run('xen-livepatch', 'apply', 'fix1') == (
            2, 'Applying fix1... failed\n', 'Error 16: Device or resource busy\n')
    rc, out, dummy = host.run('xen-livepatch', 'list')
    assert 'fix1                                    | CHECKED (16, Device or resource busy)    | \n' in out
    assert host.run('xen-livepatch', 'apply', 'fix1') == (0, 'Applying fix1... completed\n', '')
    assert host.info('xen_extra') == '-fix1'
    rc, out, dummy = host.run('xl', 'dmesg')
    assert '(XEN) livepatch: fix1: Timed out on semaphore in IRQ quiesce phase' in out


def test_ebusy_always_never_applies(tmp_path):
    host = Host(tmp_path, faults={'ebusy': {'always': True}})
    path = host.payload('fix1')
    host.run('xen-livepatch', 'upload', 'fix1', path)
    for dummy in range(4):
        assert host.run('xen-livepatch', 'apply', 'fix1')[0] == 2
    assert host.info('xen_extra') == '.5'


def test_operation_didnt_complete_and_completes_later(tmp_path):
    host = Host(tmp_path, faults={'didnt_complete': {'first': 1}})
    path = host.payload('fix1')
    host.run('xen-livepatch', 'upload', 'fix1', path)
    assert host.run('xen-livepatch', 'apply', 'fix1') == (2, 'Applying fix1... failed\n', "Operation didn't complete.\n")
    rc, out, dummy = host.run('xen-livepatch', 'list')
    assert 'fix1                                    | APPLIED    | \n' in out
    assert host.run('xen-livepatch', 'apply', 'fix1') == (0, 'No action needed.\n', '')


def test_control_interface_unavailable_exits_zero(tmp_path):
    host = Host(tmp_path, faults={'no_handler': True})
    for argv in (['list'], ['apply', 'x'], ['upload', 'x', 'y'], ['help']):
        assert host.run('xen-livepatch', *argv) == (0, '', 'failed to get the handler\n')
    assert host.run('xen-livepatch', 'frobnicate') == (1, '', "Unrecognised command 'frobnicate' -- try 'xen-livepatch help'\n")


def test_no_live_patching_in_the_build(tmp_path):
    host = Host(tmp_path, livepatch=False)
    assert host.run('xen-livepatch', 'list') == (1, '', 'Failed to get list sizes.\nError 38: Function not implemented\n')
    path = host.payload('fix1')
    assert host.run('xen-livepatch', 'upload', 'fix1', path) == (
        1, 'Uploading %s... failed\n' % path, 'Error 38: Function not implemented\n')
    assert host.run('xen-livepatch', 'revert', 'fix1') == (
        1, '', 'Failed to get status of fix1.\nError 38: Function not implemented\n')


def test_wrong_hypervisor_build_is_refused_with_dmesg_line(tmp_path):
    host = Host(tmp_path, build='4.17.7')
    path = host.payload('old', xen_build_id=B4175)
    assert host.run('xen-livepatch', 'upload', 'old', path) == (
        1, 'Uploading %s... failed\n' % path, 'Error 22: Invalid argument\n')
    rc, out, dummy = host.run('xl', 'dmesg')
    assert out.endswith('(XEN) livepatch: old: check against hypervisor build-id failed\n')


def test_stacking_revert_ebusy_and_effects_of_an_invented_build(tmp_path):
    host = Host(tmp_path, build=INVENTED)
    assert host.info('xen_version') == '4.18.3'
    base = host.payload('base', effect={'xen_extra': '.3-lp1'})
    top = str(tmp_path / 'top.livepatch')
    # 'top' stacks on 'base': its .livepatch.depends is base's build-id.
    from livepatch_payload_forge import forge_payload  # noqa: the shared forge (tests/support)
    import lab_elf_notes
    base_id = lab_elf_notes.read_payload(base).build_id_note('.note.gnu.build-id')
    forge_payload(top, xen_build_id=INVENTED['build_id'], depends=base_id,
                  extra_sections={'.noreboot.lab_effect': {'xen_extra': '.3-lp2'}})
    assert host.run('xen-livepatch', 'load', top)[0] == 1  # depends on base, which is not applied
    assert host.run('xen-livepatch', 'load', base)[0] == 0
    assert host.run('xen-livepatch', 'load', top) == (0, 'Uploading %s... completed\nApplying top... completed\n' % top, '')
    assert host.info('xen_version') == '4.18.3-lp2'
    assert host.run('xen-livepatch', 'revert', 'base') == (2, 'Reverting base... failed\n', 'Error 16: Device or resource busy\n')
    assert host.run('xen-livepatch', 'unload', 'top') == (
        1, '', 'top is in the wrong state.\nCurrent state: APPLIED\nExpected state: CHECKED\n')
    assert host.run('xen-livepatch', 'revert', 'top') == (0, 'Reverting top... completed\n', '')
    assert host.info('xen_extra') == '.3-lp1'
    rc, out, dummy = host.run('xl', 'dmesg')
    assert '(XEN) build-id: %s\n' % INVENTED['build_id'] in out
    assert "(XEN) livepatch: base: can't unload. Top is top\n" in out


@pytest.mark.parametrize('mode,expected', [('crashed', '----c-'), ('vanish', None)])
def test_guest_crashes_after_apply(tmp_path, mode, expected):
    host = Host(tmp_path, faults={'guest_crash_after_apply': {'after_applies': 1, 'domain': 'vm2', 'mode': mode}})
    rc, before, dummy = host.run('xl', 'list')
    assert 'vm2' in before and '----c-' not in before
    host.run('xen-livepatch', 'load', host.payload('fix1'))
    rc, after, dummy = host.run('xl', 'list')
    rows = {line.split()[0]: line for line in after.splitlines()[1:]}
    if expected:
        assert rows['vm2'].split()[4] == expected
    else:
        assert 'vm2' not in rows
    assert rows['vm1'].split()[4] == '-b----'


def test_xen_test_payload_effects_and_truncation(tmp_path):
    host = Host(tmp_path)
    for name in ('xen_hello_world', 'xen_replace_world'):
        host.payload(name, test_payload=True)
    host.run('xen-livepatch', 'upload', 'rep', 'xen_replace_world.livepatch')
    host.run('xen-livepatch', 'load', 'xen_hello_world.livepatch')
    assert host.info('xen_version') == '4.17Hello World'
    assert host.run('xen-livepatch', 'replace', 'rep') == (0, 'Replacing all live patches with rep... completed\n', '')
    # Xen's extraversion buffer holds 15 characters: "Hello Again World!" shows truncated.
    assert host.info('xen_extra') == 'Hello Again Wor'


def test_concurrent_calls_keep_a_consistent_state(tmp_path):
    host = Host(tmp_path)
    paths = [host.payload('p%02d' % i, effect={}, build_id='%040x' % (i + 1)) for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda p: host.run('xen-livepatch', 'upload', os.path.basename(p)[:-10], p), paths))
    assert all(r[0] == 0 for r in results), results
    assert sorted(p['name'] for p in host.state()['payloads']) == ['p%02d' % i for i in range(12)]


def test_help_and_usage_go_to_stderr(tmp_path):
    host = Host(tmp_path)
    rc, out, err = host.run('xen-livepatch')
    assert (rc, out) == (0, '') and err.startswith('xen-livepatch: live patching tool\n')
    rc, out, err = host.run('xen-livepatch', 'upload', 'onlyname')
    assert (rc, out) == (1, '') and 'Usage: xen-livepatch' in err
    assert host.run('xen-livepatch', 'apply', 'x' * 129) == (1, '', 'ID must be no more than 128 characters.\n')
    assert host.run('xen-livepatch', 'apply', 'nothere', '--bogus')[2] == 'Unsupported flag: --bogus.\n'


def test_attempt_counters_count_each_operation(tmp_path):
    """counters.attempts counts every upload/apply/revert/unload asked of the hypervisor (issue 13), failed ones too."""
    host = Host(tmp_path, faults={'ebusy': {'first': 2}})
    path = host.payload('fix1')
    host.run('xen-livepatch', 'upload', 'fix1', path)
    for dummy in range(3):
        host.run('xen-livepatch', 'apply', 'fix1')
    host.run('xen-livepatch', 'list')
    host.run('xen-livepatch', 'revert', 'fix1')
    host.run('xen-livepatch', 'unload', 'fix1')
    expected = {'upload': {'fix1': 1}, 'apply': {'fix1': 3}, 'revert': {'fix1': 1}, 'unload': {'fix1': 1}}
    assert host.state()['counters']['attempts'] == expected


def test_guest_op_counters_count_every_guest_command_and_a_restored_domain_says_from_where(tmp_path):
    """counters.guest_ops counts every xl save/restore/create/shutdown/migrate asked (issue 14), failed ones too."""
    host = Host(tmp_path)
    image = str(tmp_path / 'vm1.save')
    assert host.run('xl', 'save', 'vm1', image)[0] == 0
    assert host.run('xl', 'save', 'nosuch', image)[0] == 1
    assert host.run('xl', 'restore', image)[0] == 0
    assert host.run('xl', 'shutdown', 'vm2')[0] == 0
    state = host.state()
    assert state['counters']['guest_ops'] == {'save': {'vm1': 1, 'nosuch': 1}, 'restore': {image: 1}, 'shutdown': {'vm2': 1}}
    vm1 = [d for d in state['domains'] if d['name'] == 'vm1'][0]
    assert vm1['restored_from'] == image and 'autostarted' not in vm1


def test_xendomains_at_boot_starts_the_autostart_configs_cold(tmp_path):
    """xendomains_boot: $XENDOMAINS_AUTO/* (not dot files) whose domain does not run is started cold; the
    directory comes from /etc/default/xendomains; files_at_boot are written first."""
    import lab_guest_ops
    import xensim
    root = tmp_path / 'root'
    (root / 'etc' / 'default').mkdir(parents=True)
    (root / 'etc' / 'default' / 'xendomains').write_text('XENDOMAINS_AUTO="/srv/auto"  # site layout\n')
    (root / 'srv' / 'auto').mkdir(parents=True)
    (root / 'srv' / 'auto' / 'vm1.cfg').write_text('name = "vm1"\nmemory = 256\n')
    (root / 'srv' / 'auto' / '.held.cfg.noreboot-xen-held').write_text('name = "held"\n')
    (root / 'etc' / 'xen' / 'auto').mkdir(parents=True)
    (root / 'etc' / 'xen' / 'auto' / 'other.cfg').write_text('name = "other"\n')
    state = lab_model.new_state('labhost', '4.17.5', 'amd-rome', guests=['vm1'],
                                faults={'files_at_boot': {'files': {'/srv/auto/web': 'name = "web"\nmemory = 512\nvcpus = 2\n'}}})
    xensim.boot(state, root=str(root))
    doms = dict((d['name'], d) for d in state['domains'] if d['id'] != 0)
    assert sorted(doms) == ['vm1', 'web'], 'vm1 runs already (not started twice); dot files and other dirs are not read'
    assert doms['web']['autostarted'] == {'by': 'xendomains', 'config': '/srv/auto/web', 'boot_id': state['boot_id']}
    assert (doms['web']['mem'], doms['web']['vcpus']) == (512, 2) and 'autostarted' not in doms['vm1']
    assert (root / 'srv' / 'auto' / 'web').read_text().startswith('name = "web"')
    assert lab_guest_ops.xendomains_boot(state, str(root)) == [], 'what runs is not started again'
    xensim.boot(state, root=None)
    assert sorted(d['name'] for d in state['domains'] if d['id'] != 0) == ['vm1'], 'root None: no xendomains'


def test_attempt_counters_count_a_crashing_apply(tmp_path):
    """An apply that kills the hypervisor (xen_nop) was asked of it: counters.attempts counts it (issue 13, lab test (e))."""
    host = Host(tmp_path)
    path = host.payload('xen_nop', test_payload=True)
    assert host.run('xen-livepatch', 'upload', 'xen_nop', path)[0] == 0
    rc, out, dummy = host.run('xen-livepatch', 'apply', 'xen_nop')
    assert (rc, out) == (255, 'Applying xen_nop... ')
    state = host.state()
    assert state['crashed'] is True
    assert state['counters']['attempts'] == {'upload': {'xen_nop': 1}, 'apply': {'xen_nop': 1}}
