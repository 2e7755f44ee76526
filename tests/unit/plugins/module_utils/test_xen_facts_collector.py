# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xen_facts_collector with injected runners and files (the module cases are in
tests/unit/plugins/modules/xen_facts_cases.yml; these are the corners a module test cannot reach)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest
from xen_builds import XEN_4175

from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import LivepatchRunner, XlRunner
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import (
    collect_xen_facts,
    ledger_facts,
    read_ledger_text,
    read_text_file,
    runner_or_none,
)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'fixtures')


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


class Host(object):
    """Answers argv -> (rc, stdout, stderr); an Exception instance as answer is raised."""

    def __init__(self, answers):
        self.answers = answers
        self.ran = []

    def __call__(self, argv):
        self.ran.append(list(argv))
        answer = self.answers[tuple(argv)]
        if isinstance(answer, Exception):
            raise answer
        return answer


def runners(host, xl='xl', livepatch='xen-livepatch'):
    return runner_or_none(XlRunner, host, xl), runner_or_none(LivepatchRunner, host, livepatch)


def no_files(path):
    return None


def test_runner_or_none_without_binary():
    assert runner_or_none(XlRunner, Host({}), None) is None
    assert isinstance(runner_or_none(XlRunner, Host({}), '/usr/sbin/xl'), XlRunner)


def test_xl_that_cannot_start_is_not_present_and_not_raised():
    host = Host({('xl', 'info'): OSError(8, 'Exec format error')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files)
    assert facts['present'] is False
    assert facts['reason'].startswith('xl info could not run: ')
    assert host.ran == [['xl', 'info']]


@pytest.mark.parametrize('stdout, reason', [
    ('', 'xl info output could not be read'),
    ('host                   : dom0\nxen_minor              : 17\n', 'xl info did not report xen_major and xen_minor'),
], ids=['empty-output', 'no-xen-major'])
def test_xl_info_without_version_is_not_present(stdout, reason):
    xl, livepatch = runners(Host({('xl', 'info'): (0, stdout, '')}))
    facts = collect_xen_facts(xl, livepatch, no_files)
    assert facts['present'] is False
    assert facts['reason'].startswith(reason)


def test_capabilities_with_control_d_lets_xl_run():
    host = Host({('xl', 'info'): (0, fixture('xen-4.17.5/xl_info.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_empty.txt'), ''),
                 ('xl', 'list'): (0, fixture('xen-4.17.5/xl_list.txt'), '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, {'/proc/xen/capabilities': 'control_d\n'}.get)
    assert facts['present'] is True
    assert host.ran == [['xl', 'info'], ['xen-livepatch', 'list'], ['xl', 'list']]


def test_applied_but_hypervisor_not_gathered_still_reads_boot_version_for_effective_version():
    host = Host({('xl', 'info'): (0, fixture('variants/xl_info_4.17.5_hello_world_applied.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_applied.txt'), ''),
                 ('xl', 'dmesg'): (0, fixture('xen-4.17.5/xl_dmesg.txt'), '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['livepatch'])
    assert facts['hypervisor'] is None
    assert facts['effective_version'] == '4.17.5+xen_hello_world'


def test_nothing_needs_the_version_then_dmesg_is_not_run():
    host = Host({('xl', 'info'): (0, fixture('variants/xl_info_4.17.5_hello_world_applied.txt'), ''),
                 ('xl', 'list'): (0, fixture('xen-4.17.5/xl_list.txt'), '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['domains'])
    assert host.ran == [['xl', 'info'], ['xl', 'list']]
    assert facts['effective_version'] is None
    assert facts['livepatch'] is None


def test_banner_of_other_minor_version_is_not_taken():
    dmesg = fixture('xen-4.17.5/xl_dmesg.txt').replace('Xen version 4.17.5', 'Xen version 4.170.5').replace(
        'build-id: %s\n' % XEN_4175, '')
    host = Host({('xl', 'info'): (0, fixture('variants/xl_info_4.17.5_hello_world_applied.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_applied.txt'), ''),
                 ('xl', 'dmesg'): (0, dmesg, '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['hypervisor', 'livepatch'])
    assert facts['hypervisor']['version_source'] == 'xl_info_live'


def test_warnings_go_to_the_injected_function():
    warnings = []
    host = Host({('xl', 'info'): (0, fixture('xen-4.17.5/xl_info.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_empty.txt'), ''),
                 ('xl', 'list'): (0, 'Name  ID\ngarbage\n', '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, warn=warnings.append)
    assert facts['domains'] == []
    assert len(warnings) == 1 and warnings[0].startswith('xl list output could not be read')


def test_read_text_file(tmp_path):
    good = tmp_path / 'cpuinfo'
    good.write_bytes(b'vendor_id\t: GenuineIntel\n')
    odd = tmp_path / 'product_name'
    odd.write_bytes(b'Box \xff\n')
    assert read_text_file(str(good)) == 'vendor_id\t: GenuineIntel\n'
    assert read_text_file(str(odd)) == u'Box \ufffd\n'
    assert read_text_file(str(tmp_path / 'missing')) is None
    assert read_text_file(str(tmp_path)) is None  # a directory: unreadable as a file


# --- The rollout ledger ------------------------------------------------------------------------

def test_read_ledger_text_missing_is_none_other_errors_raise(tmp_path):
    assert read_ledger_text(str(tmp_path / 'nothing' / 'ledger.jsonl')) is None
    (tmp_path / 'ledger.jsonl').mkdir()
    with pytest.raises((IOError, OSError)):
        read_ledger_text(str(tmp_path / 'ledger.jsonl'))


def test_ledger_facts_from_real_files(tmp_path):
    assert ledger_facts(str(tmp_path), read_ledger_text) == ([], None)
    (tmp_path / 'ledger.jsonl').write_bytes(
        b'{"event": "intent", "name": "b", "sha256": "2", "run_id": "r2", "time": "t2", "advisory": "X"}\n'
        b'{"event": "intent", "name": "a", "sha256": "1", "run_id": "r1", "time": "t1"}\n'
        b'{"event": "outcome", "name": "a", "sha256": "1", "run_id": "r1", "outcome": "patched"}\n'
        b'{"event": "intent", "name": "c", "sha256": "3", "run_id": "r3", "time": "t3"}\n')
    intents, error = ledger_facts(str(tmp_path), read_ledger_text)
    assert error is None
    assert intents == [dict(name='b', sha256='2', run_id='r2', time='t2'), dict(name='c', sha256='3', run_id='r3', time='t3')]


def test_ledger_facts_in_a_directory_that_is_not_readable_as_a_file(tmp_path):
    (tmp_path / 'ledger.jsonl').mkdir()
    intents, error = ledger_facts(str(tmp_path), read_ledger_text)
    assert intents == []
    assert error.startswith('the ledger %s cannot be read (' % (tmp_path / 'ledger.jsonl'))
    assert error.endswith('): open intents are unknown')


def test_ledger_facts_names_at_most_ten_bad_lines(tmp_path):
    (tmp_path / 'ledger.jsonl').write_bytes(b'\xff\xfe not json\n' * 12)
    intents, error = ledger_facts(str(tmp_path), read_ledger_text)
    assert intents == []
    assert '12 line(s) that are not JSON objects (line 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ...)' in error


def test_ledger_is_read_only_on_a_dom0_with_livepatch_gathered():
    reads = []

    def read_ledger(path):
        reads.append(path)
        return '{"event": "intent", "name": "p", "sha256": "1", "run_id": "r", "time": "t"}\n'

    host = Host({('xl', 'info'): (0, fixture('xen-4.17.5/xl_info.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_empty.txt'), '')})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['livepatch'], state_dir='/st', read_ledger=read_ledger)
    assert reads == ['/st/ledger.jsonl']
    assert facts['livepatch']['open_intents'] == [dict(name='p', sha256='1', run_id='r', time='t')]
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['hardware'], state_dir='/st', read_ledger=read_ledger)
    assert reads == ['/st/ledger.jsonl'] and facts['livepatch'] is None
    facts = collect_xen_facts(None, None, no_files, gather=['livepatch'], state_dir='/st', read_ledger=read_ledger)
    assert reads == ['/st/ledger.jsonl']
    assert facts['livepatch']['open_intents'] == [] and facts['livepatch']['ledger_error'] is None


# --- An unfinished reboot fallback (guest manifest and reboot intent) ----------------------------

SAVED_MANIFEST = {
    'schema': 1, 'host': 'h1', 'run_id': 'r1', 'policy': 'save', 'peer': None, 'status': 'evacuated',
    'created': 't0', 'updated': 't1',
    'guests': [
        {'name': 'web1', 'domid': 3, 'memory_mib': 512, 'vcpus': 1, 'action': 'save', 'state': 'saved',
         'file': '/st/saved-guests/web1.save', 'peer': None, 'config': None, 'error': None},
        {'name': 'db1', 'domid': 4, 'memory_mib': 512, 'vcpus': 1, 'action': 'migrate', 'state': 'migrated',
         'file': None, 'peer': 'dom0-b', 'config': None, 'error': None},
        {'name': 'old', 'domid': 5, 'memory_mib': 256, 'vcpus': 1, 'action': 'save', 'state': 'restored',
         'file': '/st/saved-guests/old.save', 'peer': None, 'config': None, 'error': None},
    ],
}
REBOOT_INTENT = ('{"event": "intent", "kind": "reboot_fallback", "run_id": "r1", "time": "t2", "name": null, '
                 '"sha256": null, "advisory": "XSA-999", "hypervisor_build_id": "aa", "fixed_build_ids": ["bb"], '
                 '"guests": ["web1", "db1"]}\n')


def dom0_host():
    return Host({('xl', 'info'): (0, fixture('xen-4.17.5/xl_info.txt'), ''),
                 ('xen-livepatch', 'list'): (0, fixture('xen-4.17.5/livepatch_list_empty.txt'), ''),
                 ('xl', 'list'): (0, fixture('xen-4.17.5/xl_list.txt'), '')})


def test_guest_manifest_with_a_saved_guest_is_an_unfinished_evacuation(tmp_path):
    (tmp_path / 'guests.json').write_text(json.dumps(SAVED_MANIFEST))
    (tmp_path / 'ledger.jsonl').write_text(REBOOT_INTENT)
    host = dom0_host()
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, state_dir=str(tmp_path), read_ledger=read_ledger_text)
    evacuation = facts['evacuation']
    assert evacuation['unfinished'] is True
    assert evacuation['manifest_path'] == str(tmp_path / 'guests.json')
    assert (evacuation['status'], evacuation['run_id']) == ('evacuated', 'r1')
    assert [(g['name'], g['action'], g['state'], g['file'], g['peer'], g['running']) for g in evacuation['guests']] == [
        ('web1', 'save', 'saved', '/st/saved-guests/web1.save', None, False),
        ('db1', 'migrate', 'migrated', None, 'dom0-b', False)]
    # The reboot intent is written with name null: the ledger reader must still see it.
    assert evacuation['reboot_intent'] == dict(run_id='r1', time='t2', advisory='XSA-999', hypervisor_build_id='aa',
                                               fixed_build_ids=['bb'], guests=['web1', 'db1'])
    assert facts['livepatch']['open_intents'] == []
    assert host.ran.count(['xl', 'list']) == 1


def test_restored_manifest_and_closed_reboot_intent_are_finished(tmp_path):
    manifest = dict(SAVED_MANIFEST, status='restored')
    (tmp_path / 'guests.json').write_text(json.dumps(manifest))
    (tmp_path / 'ledger.jsonl').write_text(
        REBOOT_INTENT + '{"event": "outcome", "kind": "reboot_fallback", "run_id": "r1", "name": null, '
        '"outcome": "rebooted"}\n')
    xl, livepatch = runners(dom0_host())
    evacuation = collect_xen_facts(xl, livepatch, no_files, state_dir=str(tmp_path),
                                   read_ledger=read_ledger_text)['evacuation']
    assert evacuation['unfinished'] is False
    assert evacuation['guests'] == [] and evacuation['reboot_intent'] is None


def test_open_reboot_intent_alone_is_unfinished_and_unreadable_manifest_too(tmp_path):
    (tmp_path / 'ledger.jsonl').write_text(REBOOT_INTENT)
    host = Host({('xl', 'info'): (0, fixture('xen-4.17.5/xl_info.txt'), '')})
    xl, livepatch = runners(host)
    evacuation = collect_xen_facts(xl, None, no_files, gather=['evacuation'], state_dir=str(tmp_path),
                                   read_ledger=read_ledger_text)['evacuation']
    assert evacuation['unfinished'] is True and evacuation['guests'] == []
    assert evacuation['reboot_intent']['run_id'] == 'r1'
    assert host.ran == [['xl', 'info']]  # no guest to look for: xl list is not run
    (tmp_path / 'ledger.jsonl').unlink()
    (tmp_path / 'guests.json').write_text('{"guests": [tr')
    warnings = []
    evacuation = collect_xen_facts(xl, None, no_files, gather=['evacuation'], state_dir=str(tmp_path),
                                   read_ledger=read_ledger_text, warn=warnings.append)['evacuation']
    assert evacuation['unfinished'] is True
    assert evacuation['error'].startswith('the guest manifest %s cannot be read' % (tmp_path / 'guests.json'))
    assert warnings == [evacuation['error']]


def test_unfinished_evacuation_is_reported_on_a_host_where_xl_fails(tmp_path):
    (tmp_path / 'guests.json').write_text(json.dumps(SAVED_MANIFEST))
    xl, livepatch = runners(Host({('xl', 'info'): (1, '', 'xc: error: cannot open hypervisor')}))
    facts = collect_xen_facts(xl, livepatch, no_files, state_dir=str(tmp_path), read_ledger=read_ledger_text)
    assert facts['present'] is False
    assert facts['evacuation']['unfinished'] is True
    assert [g['name'] for g in facts['evacuation']['guests']] == ['web1', 'db1']
    assert facts['evacuation']['guests'][0]['running'] is None


def real_420_step(scenario, argv, nth=0):
    """(rc, stdout, stderr) of a step captured on the real Xen 4.20.4 testbed host."""
    import yaml
    with open(os.path.join(FIXTURES, 'transcripts', 'xen-4.20.4', scenario + '.yml')) as handle:
        steps = [s for s in yaml.safe_load(handle)['steps'] if s['argv'] == list(argv)]
    step = steps[nth]
    return step['rc'], step['stdout'], step['stderr']


def test_real_xen_420_with_hello_world_applied_takes_its_version_from_the_boot_banner():
    # Debian 13's 4.20.4+63 calls itself 4.20.5-pre; xen_hello_world makes xl info say 4.20Hello World.
    host = Host({('xl', 'info'): real_420_step('hello-cycle', ['xl', 'info']),
                 ('xen-livepatch', 'list'): real_420_step('hello-cycle', ['xen-livepatch', 'list'], nth=1),
                 ('xl', 'dmesg'): real_420_step('xl-dmesg-boot', ['xl', 'dmesg']),
                 ('xl', 'list'): real_420_step('xl-list', ['xl', 'list'])})
    xl, livepatch = runners(host)
    facts = collect_xen_facts(xl, livepatch, no_files, gather=['hypervisor', 'livepatch', 'domains'])
    hypervisor = facts['hypervisor']
    assert hypervisor['reported_version'] == '4.20Hello World'
    assert (hypervisor['version'], hypervisor['extra'], hypervisor['version_source']) == \
        ('4.20.5-pre', '.5-pre', 'xl_dmesg')
    assert hypervisor['build_id'] == '576c0736b3e38388c5afe9aaccc43a18d514e88e'
    assert 'shadow' not in hypervisor['virt_caps']
    assert facts['effective_version'] == '4.20.5-pre+xen_hello_world'
    assert [p['metadata'] for p in facts['livepatch']['payloads']] == ['LIVEPATCH_RULEZ']
    assert [d['name'] for d in facts['domains']] == ['Domain-0']
