# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real lab fleet (tests/lab/tests/fleet_lab_test.yml), reached over SSH as production is.

Needs root (network namespaces, mounts, sshd). The fleet comes up once for this module and
goes down at its end; the last test checks that nothing is left.
"""

import json
import os
import socket
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(LAB))

import lab_for_test  # noqa: E402
import labctl  # noqa: E402
import lab_model  # noqa: E402

SPEC = os.path.join(HERE, 'fleet_lab_test.yml')
VENV_BIN = os.path.join(REPO, '.venv', 'bin')
PAYLOADS = os.path.join(labctl.LAB_ROOT, 'payloads')

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run `make lab-test` as root')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('lab'))
    with lab_for_test.lab_up(workdir, spec_path=SPEC) as up:
        inventory = up['inventory']
        state = labctl.load_lab_state()
        yield {'inventory': inventory, 'hosts': {h['name']: h for h in state['hosts']},
               'key': os.path.join(labctl.LAB_ROOT, 'ssh', 'id_ed25519')}


def ssh(lab, host, command, timeout=20, stdin=None):
    argv = ['ssh', '-i', lab['key'], '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
            '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10', '-o', 'BatchMode=yes',
            'root@' + lab['hosts'][host]['addr'], command]
    proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def send_payload(lab, host, build_id, name):
    with open(os.path.join(PAYLOADS, build_id, name + '.livepatch'), 'rb') as handle:
        data = handle.read()
    rc, dummy, err = ssh(lab, host, 'cat > /root/%s.livepatch' % name, stdin=data)
    assert rc == 0, err
    return '/root/%s.livepatch' % name


def ssh_port_open(addr, wait):
    deadline = time.time() + wait
    while True:
        sock = socket.socket()
        sock.settimeout(0.3)
        try:
            sock.connect((addr, 22))
            return True
        except OSError:
            if time.time() > deadline:
                return False
            time.sleep(0.2)
        finally:
            sock.close()


def wait_port_closed(addr, wait):
    deadline = time.time() + wait
    while time.time() < deadline:
        if not ssh_port_open(addr, 0):
            return True
        time.sleep(0.2)
    return False


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(LAB, 'ansible.cfg'),
                ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(labctl.LAB_ROOT, 'cp'),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, '.cache', 'collections'))


B5 = lab_model.KNOWN_BUILDS['4.17.5']['build_id']
B7 = lab_model.KNOWN_BUILDS['4.17.7']['build_id']


def test_inventory_gives_ansible_what_it_needs(lab):
    import yaml
    with open(lab['inventory']) as handle:
        text = handle.read()
    inv = yaml.safe_load(text)
    allvars = inv['all']['vars']
    assert allvars['ansible_user'] == 'root'
    assert os.path.isfile(allvars['ansible_ssh_private_key_file'])
    assert 'StrictHostKeyChecking=no' in allvars['ansible_ssh_common_args']
    hosts = inv['all']['children']['xen_hosts']['hosts']
    assert sorted(hosts) == sorted(lab['hosts'])
    assert hosts['ok-001'] == {'ansible_host': lab['hosts']['ok-001']['addr'], 'noreboot_xen_failure_domain': 'rack-a'}
    assert hosts['ok-002']['noreboot_xen_failure_domain'] == 'rack-b'
    assert all(h['ansible_host'].startswith('10.%d.' % labctl.SUBNET_OCTET) for h in hosts.values())
    assert 'nolp-001' in inv['all']['children']['lab_build_4_17_7']['hosts']


def test_each_host_is_its_own_dom0(lab):
    rc, out, err = ssh(lab, 'ok-001', 'hostname; xl info | grep -E "^(host|build_id|xen_version) "; '
                       'grep -m1 "model name" /proc/cpuinfo; cat /sys/class/dmi/id/product_name '
                       '/sys/devices/virtual/dmi/id/sys_vendor; command -v xl xen-livepatch')
    assert rc == 0, err
    assert out.splitlines() == [
        'ok-001', 'host                   : ok-001', 'xen_version            : 4.17.5', 'build_id               : ' + B5,
        'model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz', 'PowerEdge R640', 'Dell Inc.',
        '/usr/sbin/xl', '/usr/sbin/xen-livepatch']
    rc, out, dummy = ssh(lab, 'lp7-001', 'hostname; xl info | grep -E "^build_id"; cat /sys/class/dmi/id/sys_vendor')
    assert out.splitlines() == ['lp7-001', 'build_id               : ' + B7, 'Lenovo']
    rc, out, err = ssh(lab, 'nolp-001', 'xen-livepatch list')
    assert (rc, out, err) == (1, '', 'Failed to get list sizes.\nError 38: Function not implemented\n')


def test_hosts_have_private_files_and_only_lab_routes(lab):
    rc, dummy, err = ssh(lab, 'ok-001', 'echo a > /tmp/lab-mark && echo a > /root/lab-mark && echo a > /etc/lab-mark '
                         '&& mkdir -p /var/lib/noreboot-xen && echo a > /var/lib/noreboot-xen/lab-mark')
    assert rc == 0, err
    rc, out, dummy = ssh(lab, 'ok-002', 'ls /tmp/lab-mark /root/lab-mark /etc/lab-mark /var/lib/noreboot-xen/lab-mark 2>&1 | wc -l;'
                         ' cat /tmp/lab-mark 2>/dev/null || echo none')
    assert out.splitlines()[-1] == 'none'
    for path in ('/tmp/lab-mark', '/root/lab-mark', '/etc/lab-mark', '/var/lib/noreboot-xen/lab-mark'):
        assert not os.path.exists(path), '%s leaked onto the machine' % path
    rc, out, dummy = ssh(lab, 'ok-002', 'ip -4 route show')
    assert out.split() == ['10.%d.0.0/16' % labctl.SUBNET_OCTET, 'dev', 'eth0', 'proto', 'kernel', 'scope', 'link', 'src',
                           lab['hosts']['ok-002']['addr']]
    rc, out, err = ssh(lab, 'ok-002', 'systemctl status ssh; echo rc=$?')
    assert 'System has not been booted with systemd' in err and out.strip() == 'rc=1'


def test_collection_module_runs_unchanged_over_ssh(lab):
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible'), '-i', lab['inventory'], 'ok-001,lp7-001,nolp-001',
                           '-m', 'noreboot.xen.xen_facts', '-o'], env=ansible_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout
    results = {}
    for line in proc.stdout.splitlines():
        if ' | ' not in line or ' => ' not in line:
            continue  # warnings
        name, rest = line.split(' | ', 1)
        results[name] = json.loads(rest.split(' => ', 1)[1])
    assert results['ok-001']['ansible_facts']['xen']['hypervisor']['build_id'] == B5
    assert results['lp7-001']['ansible_facts']['xen']['hypervisor']['build_id'] == B7


def test_reboot_clears_payloads_and_comes_back(lab):
    path = send_payload(lab, 'ok-002', B5, 'xen_hello_world')
    rc, out, err = ssh(lab, 'ok-002', 'xen-livepatch load %s && xl info | grep xen_extra; cat /proc/sys/kernel/random/boot_id' % path)
    assert rc == 0, err
    assert 'xen_extra              : Hello World' in out
    boot_id = out.splitlines()[-1]
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible'), '-i', lab['inventory'], 'ok-002', '-m',
                           'ansible.builtin.reboot', '-a', 'reboot_timeout=60', '-o'], env=ansible_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=180, check=False)
    assert proc.returncode == 0 and '"rebooted": true' in proc.stdout, proc.stdout
    rc, out, dummy = ssh(lab, 'ok-002', 'xen-livepatch list; xl info | grep xen_extra; cat /proc/sys/kernel/random/boot_id')
    lines = out.splitlines()
    assert lines[:2] == ['Nothing to list', 'xen_extra              : .5']
    assert lines[2] != boot_id
    assert labctl.host_state('ok-002')['boots'] == 2


def test_reboot_that_never_comes_back_then_power_cycle(lab):
    addr = lab['hosts']['brick-001']['addr']
    rc, dummy, dummy2 = ssh(lab, 'brick-001', 'shutdown -r now')
    assert rc == 0
    assert wait_port_closed(addr, 10), 'sshd still answers after a reboot that should never come back'
    time.sleep(2)
    assert not ssh_port_open(addr, 0)
    assert labctl.main(['power-cycle', 'brick-001']) == 0
    assert ssh_port_open(addr, 15)
    rc, out, dummy = ssh(lab, 'brick-001', 'xen-livepatch list')
    assert out == 'Nothing to list\n'


@pytest.mark.parametrize('host', ['gone-001', 'killd-001'])
def test_host_becomes_unreachable_after_its_first_apply(lab, host):
    path = send_payload(lab, host, B5, 'xen_hello_world')
    rc, out, err = ssh(lab, host, 'xen-livepatch load %s' % path)
    assert (rc, err) == (0, '')
    assert out == 'Uploading %s... completed\nApplying xen_hello_world... completed\n' % path
    time.sleep(1.5)
    rc, out, err = ssh(lab, host, 'true', timeout=30)
    assert rc == 255, (rc, out, err)
    assert labctl.main(['power-cycle', host]) == 0
    assert ssh_port_open(lab['hosts'][host]['addr'], 15)


def test_payload_that_crashes_the_hypervisor(lab):
    import lab_payloads
    real = os.path.join(lab_payloads.REAL_PAYLOAD_CACHE, '4.17.5', 'xen_nop.livepatch')
    tmp = os.path.join(labctl.LAB_ROOT, 'xen_nop.livepatch')
    if os.path.isfile(real):
        import shutil
        shutil.copyfile(real, tmp)
    else:
        lab_payloads.forge_xen_test_payload(tmp, '4.17.5', B5, 'xen_nop')
    with open(tmp, 'rb') as handle:
        ssh(lab, 'ok-001', 'cat > /root/xen_nop.livepatch', stdin=handle.read())
    rc, out, err = ssh(lab, 'ok-001', 'xen-livepatch load /root/xen_nop.livepatch', timeout=30)
    assert rc == 255
    assert out == 'Uploading /root/xen_nop.livepatch... completed\nApplying xen_nop... '
    # The session's sshd and the listener die in one sweep of the host's processes; the client can see
    # its connection drop before the listener is gone, so wait for the port to close.
    assert wait_port_closed(lab['hosts']['ok-001']['addr'], 10), 'sshd still answers after the hypervisor crashed'
    assert labctl.host_state('ok-001')['crashed'] is True
    assert labctl.main(['power-cycle', 'ok-001']) == 0
    assert ssh_port_open(lab['hosts']['ok-001']['addr'], 15)
    assert ssh(lab, 'ok-001', 'xen-livepatch list')[1] == 'Nothing to list\n'


def test_runtime_fault_switch(lab):
    path = send_payload(lab, 'lp7-001', B7, 'xen_hello_world')
    assert labctl.main(['fault', 'lp7-001', 'ebusy', '{"first": 1}']) == 0
    rc, out, err = ssh(lab, 'lp7-001', 'xen-livepatch load %s' % path)
    assert rc == 2 and err == 'Error 16: Device or resource busy\n'
    assert out == ('Uploading %s... completed\nApplying xen_hello_world... failed\n'
                   'Unloading xen_hello_world... completed\n' % path)
    assert ssh(lab, 'lp7-001', 'xen-livepatch load %s' % path)[0] == 0
    assert labctl.main(['fault', 'lp7-001', 'ebusy', 'null']) == 0


@pytest.mark.parametrize('how', ['link_down', 'sshd_killed'])
def test_unreachable_on_trigger(lab, how):
    assert ssh(lab, 'ok-002', 'true')[0] == 0
    assert labctl.main(['unreachable', 'ok-002', '--how', how]) == 0
    assert ssh(lab, 'ok-002', 'true', timeout=30)[0] == 255
    assert labctl.main(['power-cycle', 'ok-002']) == 0
    assert ssh_port_open(lab['hosts']['ok-002']['addr'], 15)
    assert ssh(lab, 'ok-002', 'true')[0] == 0
