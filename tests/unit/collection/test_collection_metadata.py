"""The collection's metadata as a packager reads it: galaxy.yml, the license text, meta/runtime.yml."""
import os
import urllib.parse

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
URL_FIELDS = ('repository', 'documentation', 'homepage', 'issues')
# Hosts that name nothing (RFC 2606 / RFC 6761): an address there is a placeholder.
RESERVED_SUFFIXES = ('.invalid', '.example', '.test', '.localhost', 'example.com', 'example.org', 'example.net')


def _load(path):
    with open(os.path.join(REPO, path), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def test_galaxy_urls_are_real_or_absent():
    galaxy = _load('galaxy.yml')
    for field in URL_FIELDS:
        if field not in galaxy:
            continue
        url = urllib.parse.urlsplit(galaxy[field])
        assert url.scheme == 'https', (field, galaxy[field])
        host = url.hostname or ''
        assert host and not any(host == s.lstrip('.') or host.endswith(s) for s in RESERVED_SUFFIXES), (
            '%s: %r is a placeholder address; leave the field out until there is a real one'
            % (field, galaxy[field]))


def test_license_is_declared_once_and_its_text_ships():
    galaxy = _load('galaxy.yml')
    # ansible-galaxy refuses galaxy.yml with both keys; the Galaxy importer needs one of them.
    assert ('license' in galaxy) != ('license_file' in galaxy), galaxy
    assert galaxy.get('license') == ['GPL-3.0-or-later']
    with open(os.path.join(REPO, 'COPYING'), encoding='utf-8') as handle:
        text = handle.read()
    assert text.lstrip().startswith('GNU GENERAL PUBLIC LICENSE')
    assert 'Version 3, 29 June 2007' in text
    assert 'END OF TERMS AND CONDITIONS' in text
    ignored = galaxy.get('build_ignore', [])
    assert 'COPYING' not in ignored, ignored


def _core_matrix():
    """{ansible-core pin: python} of requirements/core-*.txt (make core-matrix)."""
    matrix = {}
    folder = os.path.join(REPO, 'requirements')
    for name in sorted(os.listdir(folder)):
        if not (name.startswith('core-') and name.endswith('.txt')):
            continue
        with open(os.path.join(folder, name), encoding='utf-8') as handle:
            lines = handle.read().splitlines()
        pins = [line.split('==', 1)[1] for line in lines if line.startswith('ansible-core==')]
        pythons = [line.split(':', 1)[1].strip() for line in lines if line.startswith('# python:')]
        assert len(pins) == 1 and len(pythons) == 1, (name, lines)
        matrix[pins[0]] = pythons[0]
    return matrix


def _version(text):
    return tuple(int(part) for part in text.split('.'))


def test_requires_ansible_lower_bound_is_the_oldest_core_tested():
    claim = _load('meta/runtime.yml')['requires_ansible']
    assert claim.startswith('>=') and ',' not in claim, claim
    matrix = _core_matrix()
    assert len(matrix) >= 2, matrix
    assert min(matrix, key=_version) == claim[2:], (claim, sorted(matrix))


def test_readme_and_versioning_state_the_tested_matrix():
    with open(os.path.join(REPO, 'requirements', 'test.txt'), encoding='utf-8') as handle:
        main_core = [line.split('==', 1)[1].strip() for line in handle if line.startswith('ansible-core==')][0]
    rows = dict(_core_matrix(), **{main_core: '3.11'})
    for doc in ('README.md', 'docs/versioning.md'):
        with open(os.path.join(REPO, doc), encoding='utf-8') as handle:
            text = handle.read()
        for core, python in rows.items():
            assert any(line.startswith('| %s ' % core) and '| %s ' % python in line for line in text.splitlines()), (doc, core)
