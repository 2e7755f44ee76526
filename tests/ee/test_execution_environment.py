"""The execution environment (execution-environment.yml) and what the collection declares for it.

Run by `make ee-check` (part of `make test`), offline and in seconds: the collection tarball is
built, `ansible-builder create` writes the build context, and `ansible-builder introspect
--sanitize` reads the dependencies the installed tarball declares (meta/execution-environment.yml).
Not under tests/unit: the core matrix runs tests/unit in venvs without ansible-builder.
"""
import ast
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)
# What the Containerfile of ansible-builder 3.2.0 installs for its own machinery, whatever the
# definition says: its introspection tools in the builder stage and the container's init.
BUILDER_OWN_PIP = {'bindep', 'pyyaml', 'packaging', 'dumb-init==1.2.5'}
# Modules that run on the controller (in the EE) in the playbooks: `hosts: localhost` plays.
CONTROLLER_MODULES = ('fleet_plan', 'run_lock')
# The binary a controller-side module looks up (get_bin_path) -> its package in meta/ee-bindep.txt.
BINARY_PACKAGES = {'gpg': {'gnupg2', 'gnupg'}}
# Imported by the plugins and installed with ansible-core itself (its own dependencies).
CORE_PROVIDES = {'ansible', 'ansible_collections', 'yaml', 'jinja2'}


def _load(path):
    with open(os.path.join(REPO, path), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def _req_lines(path):
    """The requirement lines of a pip or bindep file, comments dropped."""
    lines = []
    with open(os.path.join(REPO, path), encoding='utf-8') as handle:
        for line in handle:
            line = re.sub(r'(?:^|\s+)#.*$', '', line).strip()
            if line:
                lines.append(line)
    return lines


def _run(argv, cwd=None):
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, '%s failed (rc %d):\n%s\n%s' % (argv, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def _tarball_name():
    galaxy = _load('galaxy.yml')
    return '%s-%s-%s.tar.gz' % (galaxy['namespace'], galaxy['name'], galaxy['version'])


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """The collection tarball in <tmp>/dist, next to a copy of the EE definition (its paths are relative to it)."""
    work = tmp_path_factory.mktemp('ee')
    shutil.copy(os.path.join(REPO, 'execution-environment.yml'), work / 'execution-environment.yml')
    galaxy_reqs = _load('execution-environment.yml')['dependencies']['galaxy']
    (work / os.path.dirname(galaxy_reqs)).mkdir(parents=True, exist_ok=True)
    shutil.copy(os.path.join(REPO, galaxy_reqs), work / galaxy_reqs)
    _run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', REPO, '--output-path', str(work / 'dist')])
    tarball = work / 'dist' / _tarball_name()
    assert tarball.is_file(), sorted(os.listdir(work / 'dist'))
    return work, tarball


@pytest.fixture(scope='module')
def context(built):
    work = built[0]
    _run([os.path.join(BIN, 'ansible-builder'), 'create', '-f', str(work / 'execution-environment.yml'),
          '-c', str(work / 'context'), '--output-filename', 'Containerfile'])
    return work / 'context'


def test_definition_names_the_tarball_of_this_version():
    ee = _load('execution-environment.yml')
    assert ee['version'] == 3
    name = _tarball_name()
    srcs = [os.path.basename(item['src']) for item in ee['additional_build_files']]
    assert srcs == [name], (srcs, name)
    collections = _load(ee['dependencies']['galaxy'])['collections']
    assert [(os.path.basename(c['name']), c['type']) for c in collections] == [(name, 'file')], collections


def test_create_puts_the_tarball_in_the_context_and_installs_it_offline(built, context):
    tarball = built[1]
    containerfile = (context / 'Containerfile').read_text()
    copied = context / '_build' / 'collections' / tarball.name
    assert copied.read_bytes() == tarball.read_bytes()
    # The galaxy stage copies that tarball to the path the requirements file names, and installs offline.
    (collection,) = yaml.safe_load((context / '_build' / 'requirements.yml').read_text())['collections']
    dest = re.search(r'^COPY _build/collections/ (\S+)$', containerfile, re.M).group(1)
    assert os.path.join(dest, tarball.name) == collection['name'], (dest, collection)
    assert re.search(r'^ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--offline"$', containerfile, re.M), containerfile
    assert 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml' in containerfile


def test_containerfile_installs_nothing_undeclared(context):
    containerfile = (context / 'Containerfile').read_text()
    ee = _load('execution-environment.yml')
    declared = {ee['dependencies']['ansible_core']['package_pip'], ee['dependencies']['ansible_runner']['package_pip']}
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"$', containerfile, re.M).group(1).split()
    assert set(refs) == declared, refs
    pip_installed = set()
    for line in containerfile.splitlines():
        assert not re.search(r'https?://|\bcurl\b|\bwget\b|^ADD ', line), 'downloads at build time: %s' % line
        found = re.search(r'-m pip install --no-cache-dir (.*)$', line)
        if found:
            pip_installed.update(w.strip("'") for w in found.group(1).split())
    assert pip_installed == BUILDER_OWN_PIP | {'$ANSIBLE_INSTALL_REFS'}, pip_installed
    # System packages: only the Python interpreter the definition names (the rest comes from bindep).
    assert re.search(r'^ARG PYPKG="%s"$' % re.escape(ee['dependencies']['python_interpreter']['package_system']),
                     containerfile, re.M)
    assert re.findall(r'\$PKGMGR install (\S+)', containerfile) == ['$PYPKG'], containerfile
    assert ee['images']['base_image']['name'] in containerfile


def test_introspect_of_the_installed_tarball_agrees_with_the_declared_deps(built):
    work, tarball = built
    collections = work / 'collections'
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
    proc = subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '--force',
                           '-p', str(collections), str(tarball)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = _run([os.path.join(BIN, 'ansible-builder'), 'introspect', '--sanitize', str(collections)])
    found = yaml.safe_load(out)
    meta = _load('meta/execution-environment.yml')['dependencies']
    annotation = '  # from collection noreboot.xen'
    assert found['python'] == [line + annotation for line in _req_lines(meta['python'])], found
    assert found['system'] == [line + annotation for line in _req_lines(meta['system'])], found
    with tarfile.open(tarball) as archive:
        members = set(archive.getnames())
    assert {'meta/execution-environment.yml', meta['python'], meta['system']} <= members


def _third_party_imports(path):
    with open(path, encoding='utf-8') as handle:
        tree = ast.parse(handle.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split('.')[0])
    return names - set(sys.stdlib_module_names) - CORE_PROVIDES - {'__future__'}


def test_declared_python_deps_are_what_the_controller_side_imports():
    imported = set()
    for top, _dirs, files in os.walk(os.path.join(REPO, 'plugins')):
        for name in files:
            if name.endswith('.py'):
                imported |= _third_party_imports(os.path.join(top, name))
    declared = {re.split(r'[<>=!~\[; ]', line, maxsplit=1)[0].lower() for line in _req_lines('meta/ee-requirements.txt')}
    assert imported == declared, (imported, declared)


def test_declared_system_deps_cover_the_binaries_of_the_controller_side_modules():
    packages = {line.split()[0] for line in _req_lines('meta/ee-bindep.txt')}
    binaries = set()
    for module in CONTROLLER_MODULES:
        with open(os.path.join(REPO, 'plugins', 'modules', module + '.py'), encoding='utf-8') as handle:
            binaries.update(re.findall(r"get_bin_path\('([^']+)'", handle.read()))
    assert binaries == set(BINARY_PACKAGES), binaries
    for binary in binaries:
        assert BINARY_PACKAGES[binary] <= packages, (binary, packages)
