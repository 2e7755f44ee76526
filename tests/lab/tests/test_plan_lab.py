# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/plan.yml on a lab fleet over SSH: every host's decision, the waves, and proof that
the dry run changed nothing on any host (simulator state, payload table, guests, ledger dir).

Needs root. Fleet: tests/lab/fleets/small.yml (4.17.5, 4.17.7, an invented 4.18.3, and a
hypervisor built without live patching); advisory: the lab's own payloads, none for 4.17.7.
"""

import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(LAB))

import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position
import labctl  # noqa: E402  pylint: disable=wrong-import-position
import bench_rolling_livepatch as lab_rollout  # noqa: E402  pylint: disable=wrong-import-position

SPEC = os.path.join(LAB, 'fleets', 'small.yml')
HOST_VIEW = 'xen-livepatch list; xl list; ls -la /var/lib/noreboot-xen 2>&1; ls -la /var/lib/noreboot-xen/staging 2>&1'

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run `make lab-test` as root')


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('plan-lab'))
    with lab_for_test.lab_up(work, spec_path=SPEC) as up:
        inventory = up['inventory']
        yield dict(work=work, inventory=inventory, key=os.path.join(labctl.LAB_ROOT, 'ssh', 'id_ed25519'),
                   hosts=lab_rollout.lab_hosts())


def host_view(lab, name):
    """What the host shows: the simulator's whole state file and, over SSH, its payloads,
    guests and the collection's state directory."""
    argv = ['ssh', '-i', lab['key'], '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
            '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', 'root@' + lab['hosts'][name]['addr'], HOST_VIEW]
    seen = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, check=False)
    return json.dumps(lab_rollout.sim_state(name), sort_keys=True), seen.stdout.decode()


def test_plan_decides_every_host_and_changes_nothing(lab):
    before = dict((name, host_view(lab, name)) for name in lab['hosts'])
    manifest = lab_rollout.write_advisory(os.path.join(lab['work'], 'advisory'))[0]
    plan_path = os.path.join(lab['work'], 'plan.json')
    argv = [os.path.join(REPO, '.venv', 'bin', 'ansible-playbook'), '-i', lab['inventory'],
            os.path.join(REPO, 'playbooks', 'plan.yml'),
            '-e', json.dumps({'noreboot_xen_advisories': [manifest], 'noreboot_xen_plan_path': plan_path})]
    proc = subprocess.run(argv, cwd=lab['work'], env=lab_rollout.rollout_env(lab['work']),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    log = proc.stdout.decode('utf-8', 'replace')
    assert proc.returncode == 0, log[-5000:]
    with open(plan_path) as handle:
        plan = json.load(handle)
    decisions = dict((name, entry['decision']) for name, entry in plan['decisions'].items())
    # small.yml: groups s5 (4.17.5) and s18 (4.18.3) have a lab payload; s7 (4.17.7) has none and
    # snolp's hypervisor has no live patching: both need a reboot.
    expected = {'s5': 'livepatch', 's18': 'livepatch', 's7': 'reboot', 'snolp': 'reboot'}
    assert set(decisions) == set(lab['hosts'])
    for name, decision in decisions.items():
        assert decision == expected[lab['hosts'][name]['group']], (name, plan['decisions'][name])
    planned = [h for wave in plan['waves'] for h in wave['hosts']]
    assert sorted(planned) == sorted(decisions), 'every host in exactly one wave'
    assert plan['waves'][0]['kind'] == 'canary'
    assert 'livepatch' in log and 'reboot' in log, 'the table names the decisions'
    after = dict((name, host_view(lab, name)) for name in lab['hosts'])
    for name in lab['hosts']:
        assert after[name] == before[name], 'plan.yml changed host %s' % name
