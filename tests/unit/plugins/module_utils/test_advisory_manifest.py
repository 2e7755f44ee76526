# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""advisory_manifest: validation errors name file, path, problem and fix; matching helpers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import os

import livepatch_payload_forge as forge
import pytest
from manifest_problems import manifest_problems
from xen_builds import XEN_4175, XEN_4176, XEN_4177

from ansible_collections.noreboot.xen.plugins.module_utils import advisory_manifest as am
from ansible_collections.noreboot.xen.plugins.module_utils import advisory_match as amatch
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import sha256_file


@pytest.fixture
def advisory_dir(tmp_path):
    """A directory with two forged payloads and a valid manifest dict pointing at them."""
    payloads = tmp_path / 'payloads'
    payloads.mkdir()
    a = forge.forge_payload(str(payloads / 'xsa999-4.17.5.livepatch'), XEN_4175, metadata='XSA999_V1')
    b = forge.forge_payload(str(payloads / 'xsa999-4.17.6.livepatch'), XEN_4176)
    manifest = {
        'schema': 1,
        'id': 'XSA-999',
        'title': 'x86: example flaw',
        'affected': {
            'hypervisors': {'versions': ['>=4.17.0,<4.17.7'], 'build_ids': []},
            'hardware': [{'vendor': 'intel', 'family': 6, 'models': [85, '0x6a-0x6c']}],
        },
        'livepatches': [
            {'xen_build_id': XEN_4175, 'file': 'payloads/xsa999-4.17.5.livepatch', 'sha256': a['sha256'],
             'name': 'xsa999_4175', 'metadata': 'XSA999_V1', 'expect': {'xl_info': {'xen_extra': '.5'}}},
            {'xen_build_id': XEN_4176, 'file': 'payloads/xsa999-4.17.6.livepatch', 'sha256': b['sha256'],
             'name': 'xsa999_4176', 'payload_build_id': b['build_id']},
        ],
        'fallback': {
            'reboot': True,
            'fixed_build_ids': [XEN_4177],
            'packages': {'debian': {'package': 'xen-hypervisor-4.17-amd64', 'version': '4.17.7+13-g2445b30a44-0+deb12u1'}},
        },
    }
    return tmp_path, manifest, (a, b)


def problems_of(manifest, directory, **kwargs):
    return manifest_problems(manifest, str(directory / 'xsa-999.yml'), **kwargs)


def paths_of(problems):
    return [p.path for p in problems]


def test_valid_manifest_normalizes(advisory_dir):
    directory, manifest, (a, b) = advisory_dir
    advisory = am.validate_manifest(manifest, str(directory / 'xsa-999.yml'))
    assert advisory['id'] == 'XSA-999'
    assert advisory['version_ranges'] == [[('>=', (4, 17, 0)), ('<', (4, 17, 7))]]
    assert advisory['hardware'] == [{'vendor': ['intel'], 'family': [(6, 6)], 'models': [(85, 85), (0x6a, 0x6c)]}]
    first = advisory['livepatches'][0]
    assert first['path'] == str(directory / 'payloads' / 'xsa999-4.17.5.livepatch')
    assert first['sha256'] == a['sha256']
    assert advisory['livepatches'][1]['payload_build_id'] == b['build_id']
    # What the files say travels with the advisory: own build-id and what each payload stacks on.
    assert advisory['livepatches'][0]['payload_build_id'] == a['build_id']
    assert [lp['depends'] for lp in advisory['livepatches']] == [XEN_4175, XEN_4176]
    assert advisory['fallback']['fixed_build_ids'] == [XEN_4177]
    assert advisory['fallback']['packages']['debian']['version'] == '4.17.7+13-g2445b30a44-0+deb12u1'


def test_error_message_names_file_path_problem_and_fix(advisory_dir):
    directory, manifest, dummy = advisory_dir
    del manifest['livepatches'][1]['sha256']
    with pytest.raises(am.AdvisoryManifestError) as info:
        am.validate_manifest(manifest, str(directory / 'xsa-999.yml'))
    text = str(info.value)
    assert str(directory / 'xsa-999.yml') in text
    assert 'livepatches[1].sha256: missing sha256' in text
    assert 'fix: add `sha256:`' in text
    assert info.value.problems[0].as_dict()['path'] == 'livepatches[1].sha256'


@pytest.mark.parametrize('mutate, path, words', [
    (lambda m: m.update(severity='high'), 'severity', 'unknown key'),
    (lambda m: m['affected'].update(hosts=[]), 'affected.hosts', 'unknown key'),
    (lambda m: m['affected']['hardware'][0].update(model=85), 'affected.hardware[0].model', 'unknown key'),
    (lambda m: m['livepatches'][0].update(sha='x'), 'livepatches[0].sha', 'unknown key'),
    (lambda m: m['fallback']['packages']['debian'].update(release='12'), 'fallback.packages.debian.release', 'unknown key'),
], ids=['top', 'affected', 'hardware', 'livepatch', 'package'])
def test_unknown_keys_are_refused_with_their_path(advisory_dir, mutate, path, words):
    directory, manifest, dummy = advisory_dir
    mutate(manifest)
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == [path]
    assert words in problems[0].problem
    assert 'allowed here' in problems[0].fix


@pytest.mark.parametrize('schema, words', [(2, 'schema 2 is not supported'), ('1', "schema '1' is not supported"),
                                           (None, 'missing schema version')], ids=['2', 'string', 'missing'])
def test_wrong_schema_version(advisory_dir, schema, words):
    directory, manifest, dummy = advisory_dir
    if schema is None:
        del manifest['schema']
    else:
        manifest['schema'] = schema
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['schema']
    assert words in problems[0].problem


def test_sha256_that_does_not_match_the_file(advisory_dir):
    directory, manifest, (a, dummy) = advisory_dir
    manifest['livepatches'][0]['sha256'] = 'f' * 64
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['livepatches[0].sha256']
    assert a['sha256'] in problems[0].problem
    assert 'payloads/xsa999-4.17.5.livepatch' in problems[0].problem


def test_payload_whose_sha256_does_not_match_is_not_parsed(advisory_dir):
    """Issue 13 item 6: bytes that are not the declared ones never reach the ELF reader."""
    directory, manifest, dummy = advisory_dir
    manifest['livepatches'][0]['sha256'] = 'f' * 64
    manifest['livepatches'][1]['sha256'] = 'abc'
    calls = []

    def inspect(path):
        calls.append(os.path.basename(path))
        raise am.PayloadInspectionError('the reader was called')
    problems = problems_of(manifest, directory, inspect_payload=inspect)
    assert calls == []
    assert paths_of(problems) == ['livepatches[0].sha256', 'livepatches[1].sha256']


def test_sha256_that_is_not_hex(advisory_dir):
    directory, manifest, dummy = advisory_dir
    manifest['livepatches'][0]['sha256'] = 'abc'
    assert paths_of(problems_of(manifest, directory)) == ['livepatches[0].sha256']


def test_digits_read_as_numbers_are_explained(advisory_dir):
    directory, manifest, dummy = advisory_dir
    manifest['livepatches'][0]['sha256'] = 0          # sha256: 000...0 unquoted
    manifest['fallback']['fixed_build_ids'] = [1234567890123]
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['fallback.fixed_build_ids[0]', 'livepatches[0].sha256']
    assert all('read as' in p.problem and 'number' in p.problem and p.fix.startswith('quote') for p in problems)


def test_two_payloads_for_one_build_id(advisory_dir):
    directory, manifest, dummy = advisory_dir
    forge.forge_payload(str(directory / 'payloads' / 'other.livepatch'), XEN_4175)
    other = copy.deepcopy(manifest['livepatches'][0])
    other.update(file='payloads/other.livepatch', name='other',
                 sha256=sha256_file(str(directory / 'payloads' / 'other.livepatch')))
    del other['metadata']
    manifest['livepatches'].append(other)
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['livepatches[2].xen_build_id']
    assert 'two payloads for build-id %s (also livepatches[0])' % XEN_4175 in problems[0].problem


def test_payload_built_for_another_hypervisor(advisory_dir):
    directory, manifest, dummy = advisory_dir
    # Declared for 4.17.6 but the file's .livepatch.xen_depends names 4.17.5.
    manifest['livepatches'][0]['xen_build_id'] = 'ab' * 20
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['livepatches[0].xen_build_id']
    assert 'built for hypervisor build-id %s' % XEN_4175 in problems[0].problem
    assert 'declare it under xen_build_id %s' % XEN_4175 in problems[0].fix


def test_payload_without_xen_depends(advisory_dir):
    directory, manifest, dummy = advisory_dir
    meta = forge.forge_payload(str(directory / 'payloads' / 'xsa999-4.17.5.livepatch'), None, depends=False)
    manifest['livepatches'][0].update(sha256=meta['sha256'])
    del manifest['livepatches'][0]['metadata']
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['livepatches[0].file']
    assert 'no .livepatch.xen_depends' in problems[0].problem


def test_file_that_is_not_a_payload_uses_the_elf_reader(advisory_dir):
    directory, manifest, dummy = advisory_dir
    path = directory / 'payloads' / 'xsa999-4.17.5.livepatch'
    path.write_bytes(b'#!/bin/sh\necho not a payload\n')
    manifest['livepatches'][0]['sha256'] = sha256_file(str(path))
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['livepatches[0].file']
    assert 'not a usable livepatch payload' in problems[0].problem


def test_missing_payload_file_and_absolute_path(advisory_dir):
    directory, manifest, dummy = advisory_dir
    manifest['livepatches'][0]['file'] = 'payloads/gone.livepatch'
    manifest['livepatches'][1]['file'] = '/srv/xsa999.livepatch'
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['livepatches[0].file', 'livepatches[1].file']
    assert 'does not exist on the controller' in problems[0].problem
    assert 'is absolute' in problems[1].problem


def _outside_payload(directory):
    """A valid payload outside the advisory directory, with its sha256 (what a leak would print)."""
    outside = directory.parent / ('%s-outside' % directory.name)
    outside.mkdir()
    meta = forge.forge_payload(str(outside / 'secret.livepatch'), XEN_4175)
    return outside, meta['sha256']


@pytest.mark.parametrize('how', ['dotdot', 'dotdot_inside', 'symlink_file', 'symlink_dir'])
def test_payload_path_that_leaves_the_advisory_directory_is_refused(advisory_dir, how):
    """Issue 13 item 9: ``file: ../x`` or a symlink to elsewhere is refused before the file is read."""
    directory, manifest, dummy = advisory_dir
    outside, sha = _outside_payload(directory)
    rel = {'dotdot': '../%s/secret.livepatch' % outside.name,
           'dotdot_inside': 'payloads/../../%s/secret.livepatch' % outside.name,
           'symlink_file': 'payloads/link.livepatch',
           'symlink_dir': 'linked/secret.livepatch'}[how]
    if how == 'symlink_file':
        os.symlink(str(outside / 'secret.livepatch'), str(directory / 'payloads' / 'link.livepatch'))
    if how == 'symlink_dir':
        os.symlink(str(outside), str(directory / 'linked'))
    manifest['livepatches'][0].update(file=rel, sha256='0' * 64)
    del manifest['livepatches'][0]['metadata']
    calls = []

    def inspect(path):
        calls.append(path)
        return am.default_inspect_payload(path)
    problems = problems_of(manifest, directory, inspect_payload=inspect)
    assert paths_of(problems) == ['livepatches[0].file']
    assert 'outside the advisory directory' in problems[0].problem
    assert str(directory) in problems[0].problem
    assert 'copy the payload into' in problems[0].fix
    assert [os.path.basename(c) for c in calls] == ['xsa999-4.17.6.livepatch']  # the other entry only
    assert sha not in str(problems[0])  # nothing about the outside file is told


def test_symlink_that_stays_inside_the_advisory_directory_is_accepted(advisory_dir):
    directory, manifest, (a, dummy) = advisory_dir
    os.symlink('xsa999-4.17.5.livepatch', str(directory / 'payloads' / 'current.livepatch'))
    manifest['livepatches'][0]['file'] = 'payloads/current.livepatch'
    assert problems_of(manifest, directory) == []


def test_payload_file_larger_than_the_limit_is_neither_hashed_nor_parsed(advisory_dir):
    directory, manifest, dummy = advisory_dir
    big = directory / 'payloads' / 'big.livepatch'
    size = 9 * 1024 * 1024
    with open(str(big), 'wb') as handle:
        handle.truncate(size)  # sparse: cheap to make
    manifest['livepatches'] = manifest['livepatches'][:1]
    manifest['livepatches'][0].update(file='payloads/big.livepatch', sha256=hashlib.sha256(b'\0' * size).hexdigest())
    calls = []

    def inspect(path):
        calls.append(path)
        raise am.PayloadInspectionError('the reader was called')
    problems = problems_of(manifest, directory, inspect_payload=inspect)
    assert paths_of(problems) == ['livepatches[0].file']
    assert '9437184 bytes' in problems[0].problem and '8388608' in problems[0].problem
    assert calls == []


def test_declared_payload_build_id_and_metadata_are_checked_against_the_file(advisory_dir):
    directory, manifest, dummy = advisory_dir
    manifest['livepatches'][1]['payload_build_id'] = 'cd' * 20
    manifest['livepatches'][0]['metadata'] = 'XSA999_V2'
    problems = problems_of(manifest, directory)
    assert paths_of(problems) == ['livepatches[0].metadata', 'livepatches[1].payload_build_id']


def test_inspector_is_injectable_and_files_can_be_skipped(advisory_dir):
    directory, manifest, dummy = advisory_dir
    calls = []

    def inspect(path):
        calls.append(os.path.basename(path))
        raise am.PayloadInspectionError('truncated')
    problems = problems_of(manifest, directory, inspect_payload=inspect)
    assert calls == ['xsa999-4.17.5.livepatch', 'xsa999-4.17.6.livepatch']
    assert all('truncated' in p.problem for p in problems)
    manifest['livepatches'][0]['file'] = 'payloads/gone.livepatch'
    assert problems_of(manifest, directory, check_payload_files=False) == []


@pytest.mark.parametrize('text', ['>=4.17.x', '~4.17', '', '>=4.17.0,', '>= 4.17.0 <4.18', '4', 'latest'])
def test_version_ranges_that_do_not_parse(advisory_dir, text):
    directory, manifest, dummy = advisory_dir
    manifest['affected']['hypervisors']['versions'] = ['>=4.16.0,<4.16.9', text]
    problems = problems_of(manifest, directory)
    assert [p.path for p in problems] == ['affected.hypervisors.versions[1]']


@pytest.mark.parametrize('mutate, path', [
    (lambda m: m.pop('id'), 'id'),
    (lambda m: m.update(title=''), 'title'),
    (lambda m: m.pop('affected'), 'affected'),
    (lambda m: m['affected'].update(hypervisors={}), 'affected.hypervisors'),
    (lambda m: m['affected']['hypervisors'].update(build_ids=['not-hex']), 'affected.hypervisors.build_ids[0]'),
    (lambda m: m['affected'].update(hardware=[]), 'affected.hardware'),
    (lambda m: m['affected']['hardware'][0].update(models=['0x6c-0x6a']), 'affected.hardware[0].models'),
    (lambda m: m['affected']['hardware'][0].update(hw_caps=['0:32']), 'affected.hardware[0].hw_caps[0]'),
    (lambda m: m['affected']['hardware'][0].update(virt_caps=['h a p']), 'affected.hardware[0].virt_caps[0]'),
    (lambda m: m['affected']['hardware'].append({}), 'affected.hardware[1]'),
    (lambda m: m['livepatches'][1].update(name='xsa999_4175'), 'livepatches[1].name'),
    (lambda m: m['livepatches'][1].update(name='bad name'), 'livepatches[1].name'),
    (lambda m: m['livepatches'][1].update(xen_build_id=XEN_4177), 'livepatches[1].xen_build_id'),
    (lambda m: m['livepatches'][0].update(expect={'xl_info': {'xen_extra': ['.5']}}), 'livepatches[0].expect.xl_info.xen_extra'),
    (lambda m: m['livepatches'][0].update(expect={'dmesg': 'x'}), 'livepatches[0].expect.dmesg'),
    (lambda m: m['fallback'].update(reboot=False), 'fallback.reboot'),
    (lambda m: m['fallback'].pop('packages'), 'fallback.packages'),
    (lambda m: m['fallback']['packages']['debian'].pop('version'), 'fallback.packages.debian.version'),
    (lambda m: m.pop('fallback'), 'fallback'),
], ids=lambda v: v if isinstance(v, str) else '')
def test_each_structural_problem_has_its_path(advisory_dir, mutate, path):
    directory, manifest, dummy = advisory_dir
    mutate(manifest)
    problems = problems_of(manifest, directory, check_payload_files=path.startswith('livepatches[1].xen'))
    assert path in paths_of(problems)
    assert all(p.fix for p in problems)


def test_manifest_that_is_not_a_mapping(tmp_path):
    problems = manifest_problems(['schema', 1], str(tmp_path / 'x.yml'))
    assert [(p.path, p.problem) for p in problems] == [('', 'the manifest is not a YAML mapping (got list)')]


@pytest.mark.parametrize('text, expected', [
    ('>=4.17.0,<4.17.8', [('>=', (4, 17, 0)), ('<', (4, 17, 8))]),
    ('4.18', [('==', (4, 18, 0))]),
    ('=4.18.1', [('==', (4, 18, 1))]),
    ('> 4.16 , != 4.17.2', [('>', (4, 16, 0)), ('!=', (4, 17, 2))]),
])
def test_parse_version_range(text, expected):
    assert amatch.parse_version_range(text) == expected


@pytest.mark.parametrize('version, inside', [((4, 16, 9), False), ((4, 17, 0), True), ((4, 17, 7), True), ((4, 17, 8), False)])
def test_version_in_range_bounds(version, inside):
    assert amatch.version_in_range(version, amatch.parse_version_range('>=4.17.0,<4.17.8')) is inside


@pytest.mark.parametrize('hypervisor, expected', [
    ({'version': '4.17.5', 'major': 4, 'minor': 17}, (4, 17, 5)),
    ({'version': '4.17.5-pre'}, (4, 17, 5)),
    ({'version': '4.18'}, (4, 18, 0)),
    ({'version': '4.17Hello World', 'major': 4, 'minor': 17}, None),
    ({'version': '4.17.5', 'major': 4, 'minor': 18}, None),
    ({'major': 4, 'minor': 17}, None),
    ({}, None),
], ids=['plain', 'pre', 'no-micro', 'altered-by-payload', 'disagrees', 'no-version', 'empty'])
def test_host_version(hypervisor, expected):
    assert amatch.host_version(hypervisor) == expected


def _advisory(advisory_dir):
    directory, manifest, dummy = advisory_dir
    return am.validate_manifest(manifest, str(directory / 'xsa-999.yml'))


@pytest.mark.parametrize('hypervisor, expected, words', [
    ({'version': '4.17.5', 'build_id': XEN_4175}, True, 'version 4.17.5 is in >=4.17.0,<4.17.7'),
    ({'version': '4.17.7', 'build_id': 'ee' * 20}, False, 'outside'),
    ({'version': '4.17.5', 'build_id': XEN_4177}, False, 'is a fixed build'),
    ({'version': '4.17Hello World', 'build_id': XEN_4175}, None, 'unknown or altered'),
], ids=['in-range', 'outside', 'fixed-build', 'altered'])
def test_match_hypervisor(advisory_dir, hypervisor, expected, words):
    result, reason = amatch.match_hypervisor(_advisory(advisory_dir), hypervisor)
    assert result is expected
    assert words in reason


def test_match_hypervisor_by_listed_build_id_without_version(advisory_dir):
    advisory = _advisory(advisory_dir)
    advisory['build_ids'] = ['ee' * 20]
    assert amatch.match_hypervisor(advisory, {'build_id': 'EE' * 20})[0] is True
    advisory['version_ranges'], advisory['versions'] = [], []
    assert amatch.match_hypervisor(advisory, {'build_id': 'ff' * 20})[0] is False
    assert amatch.match_hypervisor(advisory, {})[0] is None


HW_CAPS = 'bfebfbff:77fef3ff:2c100800:00000121:0000000f:009c6fbf:00000000:00000100'


@pytest.mark.parametrize('predicates, hardware, hypervisor, expected', [
    ([], {}, {}, True),
    ([{'vendor': ['intel'], 'family': [(6, 6)], 'models': [(85, 85)]}], {'vendor': 'intel', 'family': 6, 'model': 85}, {}, True),
    ([{'vendor': ['intel'], 'family': [(6, 6)], 'models': [(85, 85)]}], {'vendor': 'Intel', 'family': 6, 'model': 86}, {}, False),
    ([{'vendor': ['amd']}], {'vendor': 'intel', 'family': 6, 'model': 85}, {}, False),
    ([{'vendor': ['intel'], 'models': [(0x6a, 0x6c)]}], {'vendor': 'intel', 'model': 0x6b}, {}, True),
    ([{'vendor': ['intel'], 'models': [(85, 85)]}], {'vendor': 'intel'}, {}, None),
    ([{'vendor': ['amd']}, {'vendor': ['intel'], 'models': [(85, 85)]}], {'vendor': 'amd'}, {}, True),
    ([{'hw_caps': ['0:0']}], {}, {'hw_caps': HW_CAPS}, True),       # 0xbfebfbff bit 0 set
    ([{'hw_caps': ['0:30']}], {}, {'hw_caps': HW_CAPS}, False),     # bit 30 clear
    ([{'hw_caps': ['!0:30']}], {}, {'hw_caps': HW_CAPS}, True),
    ([{'hw_caps': ['9:1']}], {}, {'hw_caps': HW_CAPS}, None),       # no word 9
    ([{'virt_caps': ['hvm', 'hap']}], {}, {'virt_caps': ['pv', 'hvm', 'hap']}, True),
    ([{'virt_caps': ['!hap']}], {}, {'virt_caps': ['pv', 'hvm', 'hap']}, False),
    ([{'virt_caps': ['hap']}], {}, {}, None),
], ids=['all', 'exact', 'other-model', 'other-vendor', 'model-range', 'model-missing', 'second-predicate',
        'hw-bit-set', 'hw-bit-clear', 'hw-negated', 'hw-missing-word', 'virt', 'virt-negated', 'virt-missing'])
def test_match_hardware(predicates, hardware, hypervisor, expected):
    result, reason = amatch.match_hardware(predicates, hypervisor, hardware)
    assert result is expected
    assert reason


def test_advisory_set_refuses_duplicate_ids_and_shared_payload_names(advisory_dir):
    first = _advisory(advisory_dir)
    second = copy.deepcopy(first)
    second['manifest'] = 'other.yml'
    problems = am.check_advisory_set([first, second])
    assert [p.path for p in problems] == ['id']
    second['id'] = 'XSA-1000'
    problems = am.check_advisory_set([first, second])
    assert [p.path for p in problems] == ['livepatches[0].name', 'livepatches[1].name']
    assert problems[0].file == 'other.yml'


def test_each_payload_is_read_and_hashed_once(advisory_dir, monkeypatch):
    directory, manifest, _payloads = advisory_dir
    from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_payload_elf as elf
    hashed = []
    real = hashlib.sha256

    def counting(*args):
        hashed.append(1)
        return real(*args)

    monkeypatch.setattr(elf.hashlib, 'sha256', counting)
    am.validate_manifest(manifest, str(directory / 'xsa-999.yml'))
    assert len(hashed) == len(manifest['livepatches'])


def test_payload_files_are_reached_only_through_the_reader(advisory_dir):
    """A reader of our own answers every question validation asks about the files: none is opened."""
    directory, manifest, (a, _b) = advisory_dir
    asked = []

    class Reader(am.PayloadFiles):
        def locate(self, base, rel):
            asked.append(('locate', rel))
            return os.path.join('/nowhere', rel)

        def size(self, path):
            asked.append(('size', path))
            return 100

        def sha256(self, path):
            asked.append(('sha256', path))
            return a['sha256'] if path.endswith('4.17.5.livepatch') else 'e' * 64

        def inspect(self, path):
            asked.append(('inspect', path))
            return dict(xen_depends=XEN_4175, build_id=a['build_id'], metadata=['XSA999_V1'], depends=XEN_4175)

    problems = manifest_problems(manifest, str(directory / 'xsa-999.yml'), payload_files=Reader())
    assert paths_of(problems) == ['livepatches[1].sha256']
    assert [step for step, _path in asked] == ['locate', 'size', 'sha256', 'inspect', 'locate', 'size', 'sha256']
