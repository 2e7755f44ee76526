# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/reboot_fallback.yml on lab hosts, over SSH: input that must not reach a path or a shell
(issue 14 item 7, "must show" (e)).

A migration peer with ``;``, ``/`` or ``..`` is refused before anything moves: the run fails with
the host named and the peer's problem, the guests still run where they were, no manifest, no
reboot, and the peer string never reached xl migrate (the simulator's guests are all still here).
"""

from __future__ import absolute_import, division, print_function

import os
import sys

import pytest

if 'labctl' not in sys.modules:
    # A lab instance of its own (NOREBOOT_XEN_INPUTS_LAB_INSTANCE to choose another).
    os.environ['NOREBOOT_XEN_LAB_INSTANCE'] = os.environ.get('NOREBOOT_XEN_INPUTS_LAB_INSTANCE', '17')

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)

import labctl  # noqa: E402
import reboot_fallback_lab_support as support  # noqa: E402
from reboot_fallback_lab_support import OLD, install_fixed, sim_state  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

SPEC = '''name: rbfin
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
  deb-4.17.7: {version: 4.17.7}
defaults:
  reboot_delay: 1
groups:
  - {name: inp, count: 1, build: deb-4.17.5, hardware: intel-cascadelake, failure_domains: [rack-a],
     guests: [{name: web, mem: 256, vcpus: 1}]}
  - {name: peer, count: 1, build: deb-4.17.7, hardware: intel-cascadelake, failure_domains: [rack-b], guests: []}
'''


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    yield from support.lab_up(str(tmp_path_factory.mktemp('reboot_fallback_inputs')), SPEC, 'LAB-XSA-4')


@pytest.mark.parametrize('peer', ['peer-001;reboot', '../peer-001', 'peer-001/x'])
def test_a_peer_that_is_not_a_host_name_is_refused_and_nothing_moves(lab, peer):
    install_fixed('inp-001')
    result = support.run_reboot_fallback(lab, 'lab_group_inp', {
        'noreboot_xen_wave_policy': {'reboot_wave_sizes': [1], 'max_per_domain': 1},
        'noreboot_xen_reboot_ok': True, 'reboot_fallback_guest_policy': 'migrate',
        'reboot_fallback_migrate_peer': peer})
    assert result['rc'] != 0
    assert "migration peer '%s' is not a host name or address" % peer in result['output'], result['log']
    row = [r for r in result['summary']['hosts'] if r['host'] == 'inp-001'][0]
    assert row['outcome'] != 'rebooted'
    state = sim_state('inp-001')
    assert state['boots'] == 1 and state['build']['build_id'] == OLD
    assert sorted(d['name'] for d in state['domains'] if d['id'] != 0) == ['web']
    assert sorted(d['name'] for d in sim_state('peer-001')['domains'] if d['id'] != 0) == []
    assert not os.path.exists(labctl.host_path('inp-001', '/var/lib/noreboot-xen/guests.json'))
