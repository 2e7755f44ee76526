# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local fact document (effective version, payloads by advisory, last run) and its atomic write."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import local_patch_fact as lpf
from xen_builds import XEN_4175

XEN = {
    'present': True,
    'effective_version': '4.17.5+lab_xsa_fix_4_17_5',
    'hypervisor': {'version': '4.17.5', 'build_id': XEN_4175},
    'livepatch': {'payloads': [{'name': 'lab_xsa_fix_4_17_5', 'state': 'APPLIED'},
                               {'name': 'xen_hello_world', 'state': 'APPLIED'},
                               {'name': 'staged_only', 'state': 'CHECKED'}]},
}
LEDGER = [
    {'event': 'intent', 'name': 'lab_xsa_fix_4_17_5', 'sha256': 'a' * 64, 'advisory': 'LAB-XSA-1', 'run_id': 'r1'},
    {'event': 'outcome', 'name': 'lab_xsa_fix_4_17_5', 'sha256': 'a' * 64, 'advisory': 'LAB-XSA-1', 'run_id': 'r1',
     'outcome': 'patched'},
]


def test_payloads_by_advisory_and_the_run():
    document = lpf.build_fact(XEN, LEDGER, 'r1', 'patched', 'livepatch')
    assert document == {
        'schema': 1, 'present': True, 'hypervisor_version': '4.17.5',
        'build_id': XEN_4175, 'effective_version': '4.17.5+lab_xsa_fix_4_17_5',
        'applied_payloads': {'LAB-XSA-1': [{'name': 'lab_xsa_fix_4_17_5', 'sha256': 'a' * 64}],
                             'unknown': [{'name': 'xen_hello_world', 'sha256': None}]},
        'last_run': {'id': 'r1', 'outcome': 'patched', 'kind': 'livepatch'},
    }


def test_a_run_that_changed_nothing_keeps_the_last_run_so_reruns_are_idempotent():
    first = lpf.build_fact(XEN, LEDGER, 'r1', 'patched', 'livepatch')
    again = lpf.build_fact(XEN, LEDGER, 'r2', 'already_patched', 'livepatch', previous=lpf.parse(lpf.render(first)))
    assert lpf.render(again) == lpf.render(first)
    fresh = lpf.build_fact(XEN, LEDGER, 'r2', 'already_patched', 'livepatch', previous=None)
    assert fresh['last_run'] == {'id': 'r2', 'outcome': 'already_patched', 'kind': 'livepatch'}
    rebooted = lpf.build_fact({'present': True, 'hypervisor': {'version': '4.17.8'}, 'effective_version': '4.17.8',
                               'livepatch': {'payloads': []}}, LEDGER, 'r3', 'rebooted', 'reboot_fallback', previous=first)
    assert rebooted['last_run'] == {'id': 'r3', 'outcome': 'rebooted', 'kind': 'reboot_fallback'}
    assert rebooted['applied_payloads'] == {} and rebooted['effective_version'] == '4.17.8'


@pytest.mark.parametrize('text', [None, '', 'not json', '[1, 2]'])
def test_parse_ignores_what_is_not_a_document(text):
    assert lpf.parse(text) is None


def test_write_atomic_creates_the_directory_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / 'facts.d' / 'noreboot_xen.fact')
    text = lpf.render(lpf.build_fact(XEN, LEDGER, 'r1', 'patched', 'livepatch'))
    lpf.write_atomic(path, text)
    lpf.write_atomic(path, text.replace('r1', 'r9'))
    with open(path) as handle:
        assert json.load(handle)['last_run']['id'] == 'r9'
    assert os.listdir(str(tmp_path / 'facts.d')) == ['noreboot_xen.fact']
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = str(tmp_path / 'noreboot_xen.fact')
    lpf.write_atomic(path, 'old\n')

    def broken(src, dst):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(lpf.os, 'rename', broken)
    with pytest.raises(OSError):
        lpf.write_atomic(path, 'new\n')
    with open(path) as handle:
        assert handle.read() == 'old\n'
    assert os.listdir(str(tmp_path)) == ['noreboot_xen.fact']
