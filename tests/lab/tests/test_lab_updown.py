# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`labctl.py down` leaves nothing behind: after a complete up, and after an interrupted one."""

import os
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import labctl  # noqa: E402

LABCTL = os.path.join(LAB, 'labctl.py')
SMALL = os.path.join(LAB, 'fleets', 'small.yml')
DEFAULT = os.path.join(LAB, 'fleets', 'default.yml')

root_only = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run `make lab-test` as root')


def nothing_left():
    """Every kind of thing a lab creates, looked up on the machine itself (not in labctl's state)."""
    found = []
    netns = subprocess.run(['ip', 'netns', 'list'], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
    found += [line for line in netns.splitlines() if line.startswith(labctl.NS_PREFIX)]
    links = subprocess.run(['ip', '-o', 'link', 'show'], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
    names = [line.split(':')[1].strip().split('@')[0] for line in links.splitlines()]
    found += [n for n in names if n == labctl.BRIDGE or n.startswith(labctl.VETH_PREFIX)]
    addrs = subprocess.run(['ip', '-o', 'addr', 'show'], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
    found += [line for line in addrs.splitlines() if ' 10.%d.' % labctl.SUBNET_OCTET in line]
    found += labctl.lab_mounts()
    if os.path.exists(labctl.LAB_ROOT):
        found.append(labctl.LAB_ROOT)
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                cmd = handle.read().replace(b'\0', b' ').decode('utf-8', 'replace')
        except OSError:
            continue
        if labctl.LAB_ROOT + '/' in cmd and 'pytest' not in cmd:
            found.append('process %s: %s' % (pid, cmd[:120]))
    return found


@root_only
def test_up_then_down_leaves_nothing(tmp_path):
    assert not labctl.leftovers_exist(), 'a lab is already up here: run `labctl.py down` first'
    inventory = tmp_path / 'inv.yml'
    subprocess.check_call([sys.executable, LABCTL, 'up', '--spec', SMALL, '--inventory', str(inventory)])
    assert inventory.exists() and len(labctl.lab_namespaces()) == 6 and labctl.lab_processes()
    subprocess.check_call([sys.executable, LABCTL, 'down'])
    assert not inventory.exists(), 'down removes the inventory it wrote'
    assert nothing_left() == []


@root_only
@pytest.mark.parametrize('stage', ['lab-directory', 'namespaces', 'hosts-booting'])
def test_down_cleans_up_after_an_interrupted_up(stage):
    assert not labctl.leftovers_exist()
    proc = subprocess.Popen([sys.executable, LABCTL, 'up', '--spec', DEFAULT], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # The lab directory is the lab's once its tmpfs is mounted: an empty directory that up made and
    # did not mount yet is a stray one, which up clears (a kill in that window, seen under load,
    # leaves nothing that a new up could pile on).
    reached = {'lab-directory': lambda: os.path.ismount(labctl.LAB_ROOT),
               'namespaces': lambda: bool(labctl.lab_namespaces()),
               'hosts-booting': lambda: bool(labctl.lab_processes())}[stage]
    deadline = time.time() + 60
    while not reached() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reached(), 'up never reached the stage %s' % stage
    # A fresh up must refuse rather than pile a second lab on the leftovers.
    refused = subprocess.run([sys.executable, LABCTL, 'up', '--spec', SMALL], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert refused.returncode == 1 and 'labctl.py down' in refused.stderr
    subprocess.check_call([sys.executable, LABCTL, 'down'])
    assert nothing_left() == []


def test_needs_root_and_says_so():
    argv = [sys.executable, LABCTL, 'up', '--spec', SMALL]
    if os.geteuid() == 0:
        argv = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'] + argv
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 1
    assert 'needs root' in proc.stderr and 'run it as root' in proc.stderr


def test_spec_errors_name_the_problem(tmp_path):
    with pytest.raises(labctl.LabError, match='not a known real build.*invented build_id'):
        labctl.expand_spec({'groups': [{'name': 'x', 'build': {'version': '4.19.1'}}]})
    with pytest.raises(labctl.LabError, match='unknown hardware class'):
        labctl.expand_spec({'groups': [{'name': 'x', 'build': '4.17.5', 'hardware': 'pentium'}]})
    hosts = labctl.expand_spec(labctl.load_yaml(DEFAULT))
    assert len(hosts) == 50 and len({h['name'] for h in hosts}) == 50
    assert {h['build']['version'] for h in hosts} == {'4.16.6', '4.17.5', '4.17.7', '4.18.3'}
    assert {h['hardware']['name'] for h in hosts} >= {'intel-cascadelake', 'intel-icelake', 'amd-rome', 'amd-milan'}
    assert sum(1 for h in hosts if h['build'].get('livepatch') is False) == 2
    assert len(labctl.expand_spec(labctl.load_yaml(os.path.join(LAB, 'fleets', 'scale200.yml')))) == 200
