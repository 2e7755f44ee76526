# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/rolling_livepatch.yml when hosts cannot be examined at detection, over SSH.

Needs root (the lab). Three hosts of Debian's Xen 4.17.5, the lab's own lab_xsa_fix payload. A host that
is unreachable when the run detects is planned ``unreachable`` and is in no wave: nothing is done to it and
whether it is exposed is unknown. Such a run used to end rc 0 ("The rolling run ran every planned wave"),
even with every host unreachable; an unattended run must not report success for hosts it never saw:

1. every host unreachable at detection: the run fails (rc 2), naming each host, and changes nothing;
2. one host unreachable: the others are patched, the run still fails naming that host only;
3. the same with ``noreboot_xen_unreachable_ok=true`` (the operator's written acceptance): rc 0;
4. the host back: the rerun patches it and leaves the others alone, rc 0.

(And a run with nothing to finish from an earlier run prints no "Could not match supplied host pattern"
warning for finish_reboot.yml's group.)
"""

from __future__ import absolute_import, division, print_function

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
if 'labctl' not in sys.modules:
    # A lab instance of its own (nrxl19-*, /run/noreboot-xen-lab-19), beside the other lab tests.
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_UNEXAMINED_LAB_INSTANCE', '19')

import bench_rolling_livepatch as rl  # noqa: E402  pylint: disable=wrong-import-position
import lab_for_test  # noqa: E402  pylint: disable=wrong-import-position
import labctl  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

SPEC = '''name: unexamined
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 1
groups:
  - {name: u5, count: 3, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b]}
'''
HOSTS = ['u5-001', 'u5-002', 'u5-003']
GONE = 'u5-003'
VERDICT = 'Not examined, so not fixed and their state unknown'


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('unexamined'))
    with lab_for_test.lab_up(workdir, SPEC) as up:
        manifest = rl.write_advisory(os.path.join(workdir, 'advisory'))[0]
        yield dict(workdir=workdir, inventory=up['inventory'], manifest=manifest, runs=[])


def run(lab, extra_vars=None):
    extra = {'noreboot_xen_reboot_ok': False, 'noreboot_xen_failure_budget_hosts': 0}
    extra.update(extra_vars or {})
    result = rl.run_rollout(lab['inventory'], lab['manifest'], lab['workdir'], extra_vars=extra,
                            log_name='run%d.log' % (len(lab['runs']) + 1))
    lab['runs'].append(result)
    with open(result['log']) as handle:
        result['output'] = handle.read()
    return result


def outcomes(result):
    return dict((h, e['outcome']) for h, e in result['summary']['hosts'].items())


def test_hosts_present(lab):
    assert sorted(rl.lab_hosts()) == HOSTS


def test_every_host_unreachable_at_detection_fails_the_run(lab):
    for host in HOSTS:
        assert labctl.main(['unreachable', host, '--how', 'link_down']) == 0
    result = run(lab)
    assert result['rc'] == 2, result['log']
    assert outcomes(result) == dict((h, 'unreachable') for h in HOSTS)
    assert '%s (3 host(s) unreachable or undecided at detection): u5-001 - unreachable' % VERDICT in result['output']
    assert 'noreboot_xen_unreachable_ok=true' in result['output']
    assert 'The rolling run ran every planned wave' not in result['output']
    for host in HOSTS:
        assert labctl.main(['power-cycle', host]) == 0
    for host in HOSTS:
        assert rl.sim_state(host)['applied'] == [] and rl.ledger(host) == [], host


def test_one_host_unreachable_fails_the_run_naming_it(lab):
    assert labctl.main(['unreachable', GONE, '--how', 'link_down']) == 0
    result = run(lab)
    assert result['rc'] == 2, result['log']
    out = outcomes(result)
    assert out == {'u5-001': 'patched', 'u5-002': 'patched', GONE: 'unreachable'}
    assert '%s (1 host(s) unreachable or undecided at detection): %s - unreachable' % (VERDICT, GONE) in result['output']
    assert result['summary']['state_unknown'] == [GONE]


def test_the_operator_accepts_them_in_writing(lab):
    result = run(lab, {'noreboot_xen_unreachable_ok': True})
    assert result['rc'] == 0, result['log']
    assert outcomes(result) == {'u5-001': 'already_patched', 'u5-002': 'already_patched', GONE: 'unreachable'}
    assert VERDICT not in result['output'] and 'The rolling run ran every planned wave' in result['output']
    # Nothing for finish_reboot.yml to finish: its play has no hosts, and says nothing about an unknown group.
    assert 'Could not match supplied host pattern' not in result['output']


def test_the_host_back_is_patched_by_the_rerun(lab):
    assert labctl.main(['power-cycle', GONE]) == 0
    result = run(lab)
    assert result['rc'] == 0, result['log']
    assert outcomes(result) == {'u5-001': 'already_patched', 'u5-002': 'already_patched', GONE: 'patched'}
    for host in HOSTS:
        assert rl.sim_state(host)['applied'] == ['lab_xsa_fix_4_17_5'], host
