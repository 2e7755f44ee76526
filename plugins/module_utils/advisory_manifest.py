# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate advisory manifests (schema 1) and normalize them: one entry point, ``validate_manifest``.

The caller parses the YAML (module_utils must not import yaml) and hands over the resulting
dict together with the manifest's file name, so every problem can name the file, the path
inside it (``livepatches[1].sha256``), what is wrong and how to fix it. The questions the plan
then asks of a valid advisory (is this host affected, which payload, until when) are in
advisory_match.py; times are read by utc_timestamp.py.

The format is documented in docs/advisory_manifest.md. In short::

    schema: 1
    id: XSA-999
    title: ...
    affected:
      hypervisors: {versions: [">=4.17.0,<4.17.8"], build_ids: [...]}
      hardware: [{vendor: intel, family: 6, models: [85, "0x6a-0x6c"], hw_caps: ["0:28"], virt_caps: ["hap"]}]
    livepatches:
      - {xen_build_id: ..., file: payloads/x.livepatch, sha256: ..., name: xsa999, expect: {xl_info: {...}}}
    fallback:
      reboot: true
      fixed_build_ids: [...]
      packages: {debian: {package: xen-hypervisor-4.17-amd64, version: 4.17.7+13-g2445b30a44-0+deb12u1}}

The checks themselves touch no file: the payload files on the controller are reached only
through a PayloadFiles reader (injectable; each payload is read once and hashed once, and its
ELF sections are read only when the sha256 is the declared one).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.noreboot.xen.plugins.module_utils.advisory_match import (
    CAP_RE,
    parse_int_set,
    parse_version_range,
)
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import (
    MAX_PAYLOAD_SIZE,
    PayloadError,
    parse_payload_bytes,
    read_payload,
    sha256_bytes,
)
from ansible_collections.noreboot.xen.plugins.module_utils.utc_timestamp import (
    format_utc_timestamp,
    parse_utc_timestamp,
)

SCHEMA_VERSION = 1
# A manifest is a few KiB of YAML; the reader (fleet_plan) refuses a larger file before parsing it.
MAX_MANIFEST_SIZE = 1024 * 1024

_HEX_ID_RE = re.compile(r'^[0-9a-f]{8,128}$')
_SHA256_RE = re.compile(r'^[0-9a-f]{64}$')
_VIRT_CAP_RE = re.compile(r'^(!?)([A-Za-z0-9_.-]+)$')
# Payload names: xen-livepatch allows 127 bytes; keep to characters safe in file names and logs.
_NAME_RE = re.compile(r'^[A-Za-z0-9_.-]{1,127}$')

TOP_KEYS = ('schema', 'id', 'title', 'description', 'references', 'affected', 'livepatches', 'livepatch_end_of_life',
            'fallback')
AFFECTED_KEYS = ('hypervisors', 'hardware')
HYPERVISOR_KEYS = ('versions', 'build_ids')
HARDWARE_KEYS = ('vendor', 'family', 'models', 'hw_caps', 'virt_caps')
LIVEPATCH_KEYS = ('xen_build_id', 'file', 'sha256', 'name', 'payload_build_id', 'metadata', 'expect', 'apply_until')
END_OF_LIFE_KEYS = ('xen_build_id', 'from')
EXPECT_KEYS = ('xl_info',)
FALLBACK_KEYS = ('reboot', 'fixed_build_ids', 'packages')
PACKAGE_KEYS = ('package', 'version')


class ManifestProblem(object):
    """One thing wrong with a manifest: where, what, and how to fix it."""

    def __init__(self, file, path, problem, fix):
        self.file = file
        self.path = path
        self.problem = problem
        self.fix = fix

    def __str__(self):
        where = '%s: %s' % (self.file, self.path) if self.path else str(self.file)
        return '%s: %s (fix: %s)' % (where, self.problem, self.fix)

    def as_dict(self):
        return dict(file=self.file, path=self.path, problem=self.problem, fix=self.fix)


class AdvisoryManifestError(ValueError):
    """One or more manifests are invalid; ``problems`` lists every ManifestProblem found."""

    def __init__(self, problems):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        super(AdvisoryManifestError, self).__init__(
            '%d problem(s) in advisory manifest(s):\n  %s' % (len(lines), '\n  '.join(lines)))


class PayloadInspectionError(Exception):
    """Raised by an ``inspect_payload`` callable when a payload cannot be read."""


# ---------------------------------------------------------------------------------------------
# Validation

class _Checker(object):
    def __init__(self, file):
        self.file = file
        self.problems = []

    def add(self, path, problem, fix):
        self.problems.append(ManifestProblem(self.file, path, problem, fix))

    def keys(self, data, allowed, path):
        if not isinstance(data, dict):
            self.add(path, 'expected a mapping, got %s' % type(data).__name__,
                     'write it as a mapping with keys %s' % ', '.join(allowed))
            return False
        for key in sorted(data, key=str):
            if key not in allowed:
                self.add(_join(path, key), 'unknown key %r' % (key,),
                         'remove it or correct the spelling; allowed here: %s' % ', '.join(allowed))
        return True

    def string_list(self, value, path, what):
        """Check a list of non-empty strings (a lone string counts as a list of one);
        return ``[(index, string)]`` of the good items."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.add(path, '%s must be a list of non-empty strings' % what, 'write e.g. [%s]' % _EXAMPLES.get(what, '"..."'))
            return []
        good = []
        for index, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                good.append((index, item))
            elif _is_number(item):
                self.add('%s[%d]' % (path, index), '%r was read as a number (YAML turns unquoted digits into numbers)' % (item,),
                         'quote it')
            else:
                self.add('%s[%d]' % (path, index), '%r is not a non-empty string' % (item,),
                         'write e.g. [%s]' % _EXAMPLES.get(what, '"..."'))
        return good

    def build_id(self, value, path):
        if _is_number(value):
            self.add(path, 'the build-id was read as the number %r (YAML turns unquoted digits into numbers)' % (value,),
                     'quote the build-id')
            return None
        if not isinstance(value, str) or not _HEX_ID_RE.match(value.strip().lower()):
            self.add(path, '%r is not a build-id (lower-case hex, as `xl info build_id` prints it)' % (value,),
                     'copy the build_id line of `xl info` from a host running that build')
            return None
        return value.strip().lower()

    def timestamp(self, value, path):
        try:
            return parse_utc_timestamp(value)
        except ValueError as exc:
            self.add(path, str(exc), 'write an ISO 8601 UTC time such as "2027-01-31T12:00:00Z" or a date such as '
                     '2027-01-31 (00:00 UTC that day); a time without Z or an offset is refused')
            return None


_EXAMPLES = {
    'versions': '">=4.17.0,<4.17.8"',
    'build_ids': '"39a640e6f1412319235087391df9f1c5e13ae920"',
    'fixed_build_ids': '"39a640e6f1412319235087391df9f1c5e13ae920"',
    'vendor': '"intel", "amd"',
    'hw_caps': '"0:28", "!7:2" (WORD:BIT of `xl info hw_caps`, ! = bit clear)',
    'virt_caps': '"hap", "!shadow"',
}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _join(path, key):
    if isinstance(key, int):
        return '%s[%d]' % (path, key)
    return '%s.%s' % (path, key) if path else str(key)


def default_inspect_payload(path):
    """Read a payload file with the collection's ELF reader; return its identifying fields."""
    try:
        return read_payload(path)
    except PayloadError as exc:
        raise PayloadInspectionError(str(exc))


class PayloadFiles(object):
    """The only way validation reaches the file system: the payload files on the controller.

    Validation asks, in this order: where a payload really is (``locate``, symbolic links
    resolved), its size (``size``), its sha256 (``sha256``: the bytes are read once and hashed
    once) and, only for a file whose sha256 is the declared one, what its ELF sections say
    (``inspect``: the bytes already read, parsed by livepatch_payload_elf, or the caller's
    ``inspect_payload(path)``, which returns a dict with ``xen_depends``, ``depends``,
    ``build_id`` and may raise PayloadInspectionError). Tests may pass a reader of their own.
    """

    def __init__(self, inspect_payload=None, max_size=MAX_PAYLOAD_SIZE):
        self.inspect_payload = inspect_payload
        self.max_size = max_size
        self._bytes = {}

    def locate(self, base, rel):
        return payload_path(base, rel, resolve=True)

    def size(self, path):
        """The size of the regular file ``path`` in bytes, or None when there is no such file."""
        if not os.path.isfile(path):
            return None
        return os.path.getsize(path)

    def sha256(self, path):
        """The sha256 of the file's bytes (kept for ``inspect``); None when it grew past ``max_size``."""
        with open(path, 'rb') as handle:
            data = handle.read(self.max_size + 1)
        if len(data) > self.max_size:
            return None
        digest = sha256_bytes(data)
        self._bytes[path] = (data, digest)
        return digest

    def inspect(self, path):
        if self.inspect_payload is not None:
            return self.inspect_payload(path)
        data, digest = self._bytes.pop(path)
        try:
            info = parse_payload_bytes(data, source=path, sha256=digest)
        except PayloadError as exc:
            raise PayloadInspectionError(str(exc))
        info['path'] = path
        return info


def payload_path(base, rel, resolve=True):
    """The path of payload ``rel`` (relative to the advisory directory ``base``), or None when it leaves ``base``.

    With ``resolve`` symbolic links are followed (in ``base`` too) and the real paths compared,
    so neither ``../x`` nor a link to elsewhere gets a file outside the directory read; the
    real path is returned. Without it only the written path is checked (no file system access).
    """
    full = os.path.normpath(os.path.join(base, rel))
    if resolve:
        base, full = os.path.realpath(base), os.path.realpath(full)
    else:
        base = os.path.normpath(base)
    if os.path.commonpath([base, full]) != base:
        return None
    return full


def validate_manifest(data, file, inspect_payload=None, check_payload_files=True, payload_files=None):
    """Validate one parsed manifest; return the normalized advisory dict, or raise AdvisoryManifestError
    listing every problem (``.problems``: ManifestProblem, each naming file, path, problem and fix).

    ``file`` is the manifest's path on the controller (used for messages and to resolve the
    payload paths, which are relative to the manifest's directory). The payload files are read
    through ``payload_files`` (a PayloadFiles; by default one that parses them with the ELF reader,
    or with ``inspect_payload(path)`` when given). With ``check_payload_files=False`` no file is
    opened (documentation examples, unit tests of the pure parts).
    """
    if check_payload_files:
        files = payload_files or PayloadFiles(inspect_payload)
    else:
        files = None
    payload_info = {}
    problems = _collect_problems(data, file, files, payload_info)
    if problems:
        raise AdvisoryManifestError(problems)
    return _normalize(data, file, payload_info)


def _collect_problems(data, file, files, payload_info):
    """The list of ManifestProblem for one parsed manifest (empty when it is valid); ``payload_info``
    receives what was read from each payload file, keyed by the index in ``livepatches``."""
    check = _Checker(file)
    if not isinstance(data, dict):
        check.add('', 'the manifest is not a YAML mapping (got %s)' % type(data).__name__,
                  'start from the example in docs/advisory_manifest.md')
        return check.problems
    schema = data.get('schema')
    if schema != SCHEMA_VERSION:
        if 'schema' not in data:
            check.add('schema', 'missing schema version', 'add `schema: %d` at the top' % SCHEMA_VERSION)
        else:
            check.add('schema', 'schema %r is not supported (this collection reads schema %d)' % (schema, SCHEMA_VERSION),
                      'write the manifest in schema %d (docs/advisory_manifest.md) or upgrade the collection' % SCHEMA_VERSION)
        return check.problems
    check.keys(data, TOP_KEYS, '')
    for key in ('id', 'title'):
        if not isinstance(data.get(key), str) or not data.get(key).strip():
            check.add(key, 'missing or empty %s' % key, 'add `%s:` with a non-empty string, e.g. %s' % (
                key, 'XSA-999' if key == 'id' else '"x86: ... (XSA-999)"'))
    _check_affected(check, data.get('affected'))
    _check_fallback(check, data.get('fallback'))
    fixed = set()
    fallback = data.get('fallback')
    if isinstance(fallback, dict) and isinstance(fallback.get('fixed_build_ids'), list):
        fixed = set(str(b).strip().lower() for b in fallback['fixed_build_ids'])
    check.payload_info = payload_info
    _check_end_of_life(check, data.get('livepatch_end_of_life'))
    _check_livepatches(check, data.get('livepatches'), file, files, fixed)
    return check.problems


def _check_affected(check, affected):
    if affected is None:
        check.add('affected', 'missing affected section',
                  'add `affected: {hypervisors: {versions: [">=4.17.0,<4.17.8"]}}`')
        return
    if not check.keys(affected, AFFECTED_KEYS, 'affected'):
        return
    hyp = affected.get('hypervisors')
    if not isinstance(hyp, dict) or not (hyp.get('versions') or hyp.get('build_ids')):
        check.add('affected.hypervisors', 'no affected hypervisors given',
                  'add `versions:` (ranges like ">=4.17.0,<4.17.8") and/or `build_ids:`')
    if isinstance(hyp, dict):
        check.keys(hyp, HYPERVISOR_KEYS, 'affected.hypervisors')
        if 'versions' in hyp:
            for i, text in (check.string_list(hyp['versions'], 'affected.hypervisors.versions', 'versions')):
                try:
                    parse_version_range(text)
                except ValueError as exc:
                    check.add('affected.hypervisors.versions[%d]' % i, 'version range %r does not parse: %s' % (text, exc),
                              'write comma-separated clauses like ">=4.17.0,<4.17.8"')
        if 'build_ids' in hyp:
            for i, value in (check.string_list(hyp['build_ids'], 'affected.hypervisors.build_ids', 'build_ids')):
                check.build_id(value, 'affected.hypervisors.build_ids[%d]' % i)
    hardware = affected.get('hardware')
    if hardware is None:
        return
    if not isinstance(hardware, list) or not hardware:
        check.add('affected.hardware', 'hardware must be a non-empty list of predicates',
                  'write e.g. `hardware: [{vendor: intel, family: 6, models: [85]}]`, or leave it out for all hardware')
        return
    for i, predicate in enumerate(hardware):
        path = 'affected.hardware[%d]' % i
        if not check.keys(predicate, HARDWARE_KEYS, path):
            continue
        if not predicate:
            check.add(path, 'empty predicate (it would match every host)', 'name at least a vendor, or leave out hardware')
        if 'vendor' in predicate:
            check.string_list(predicate['vendor'], path + '.vendor', 'vendor')
        for key in ('family', 'models'):
            if key in predicate:
                try:
                    parse_int_set(predicate[key])
                except ValueError as exc:
                    check.add(path + '.' + key, str(exc), 'write a number, or a list of numbers and ranges like "0x55-0x6a"')
        if 'hw_caps' in predicate:
            for j, flag in (check.string_list(predicate['hw_caps'], path + '.hw_caps', 'hw_caps')):
                match = CAP_RE.match(flag.strip())
                if not match or int(match.group(3)) > 31:
                    check.add('%s.hw_caps[%d]' % (path, j), '%r is not WORD:BIT' % flag,
                              'write the word index of `xl info hw_caps` and a bit 0-31, e.g. "0:28" or "!7:2"')
        if 'virt_caps' in predicate:
            for j, flag in (check.string_list(predicate['virt_caps'], path + '.virt_caps', 'virt_caps')):
                if not _VIRT_CAP_RE.match(flag.strip()):
                    check.add('%s.virt_caps[%d]' % (path, j), '%r is not a virt_caps flag' % flag,
                              'write a word of `xl info virt_caps`, e.g. "hap", or "!hap" for absent')


def _check_end_of_life(check, end_of_life):
    if end_of_life is None:
        return
    if not isinstance(end_of_life, list):
        check.add('livepatch_end_of_life', 'livepatch_end_of_life must be a list',
                  'write `livepatch_end_of_life: [{xen_build_id: "...", from: 2027-01-31}]`')
        return
    seen = {}
    for i, entry in enumerate(end_of_life):
        path = 'livepatch_end_of_life[%d]' % i
        if not check.keys(entry, END_OF_LIFE_KEYS, path):
            continue
        if 'xen_build_id' not in entry:
            check.add(path + '.xen_build_id', 'missing xen_build_id (the hypervisor build no longer live patched)',
                      'add `xen_build_id:` with the `xl info build_id` of that build')
        else:
            build_id = check.build_id(entry['xen_build_id'], path + '.xen_build_id')
            if build_id is not None and build_id in seen:
                check.add(path + '.xen_build_id', 'build-id %s is also given by livepatch_end_of_life[%d]' % (build_id, seen[build_id]),
                          'give each build once, with the earliest time')
            elif build_id is not None:
                seen[build_id] = i
        if 'from' not in entry:
            check.add(path + '.from', 'missing from (the time from which the build is no longer live patched)',
                      'add `from:` with an ISO 8601 UTC time such as "2027-01-31T00:00:00Z" or a date such as 2027-01-31')
        else:
            check.timestamp(entry['from'], path + '.from')


def _check_fallback(check, fallback):
    if fallback is None:
        check.add('fallback', 'missing fallback section',
                  'add `fallback: {reboot: true, fixed_build_ids: [...], packages: {debian: {package: ..., version: ...}}}`')
        return
    if not check.keys(fallback, FALLBACK_KEYS, 'fallback'):
        return
    if fallback.get('reboot') is not True:
        check.add('fallback.reboot', 'reboot must be true (installing a fixed hypervisor takes effect only after a reboot)',
                  'write `reboot: true`')
    if 'fixed_build_ids' in fallback:
        for i, value in (check.string_list(fallback['fixed_build_ids'], 'fallback.fixed_build_ids', 'fixed_build_ids')):
            check.build_id(value, 'fallback.fixed_build_ids[%d]' % i)
    packages = fallback.get('packages')
    if packages is None:
        check.add('fallback.packages', 'no fixed package given',
                  'add `packages: {debian: {package: xen-hypervisor-4.17-amd64, version: ...}}`')
        return
    if not isinstance(packages, dict) or not packages:
        check.add('fallback.packages', 'packages must be a mapping of distribution to {package, version}',
                  'write e.g. `packages: {debian: {package: xen-hypervisor-4.17-amd64, version: 4.17.7+13-g2445b30a44-0+deb12u1}}`')
        return
    for dist in sorted(packages, key=str):
        path = 'fallback.packages.%s' % dist
        entry = packages[dist]
        if not check.keys(entry, PACKAGE_KEYS, path):
            continue
        for key in PACKAGE_KEYS:
            if not isinstance(entry.get(key), str) or not entry.get(key).strip():
                check.add(path + '.' + key, 'missing %s' % key, 'add `%s:` (a string; quote versions)' % key)


def _check_livepatches(check, livepatches, file, files, fixed_build_ids):
    if livepatches is None:
        return
    if not isinstance(livepatches, list):
        check.add('livepatches', 'livepatches must be a list', 'write `livepatches: [{xen_build_id: ..., file: ..., sha256: ..., name: ...}]`')
        return
    seen_build = {}
    seen_name = {}
    base = os.path.dirname(os.path.abspath(file)) if file else os.getcwd()
    for i, entry in enumerate(livepatches):
        path = 'livepatches[%d]' % i
        if not check.keys(entry, LIVEPATCH_KEYS, path):
            continue
        build_id = None
        if 'xen_build_id' not in entry:
            check.add(path + '.xen_build_id', 'missing xen_build_id (the hypervisor build the payload is for)',
                      'add `xen_build_id:` with the `xl info build_id` of that build')
        else:
            build_id = check.build_id(entry['xen_build_id'], path + '.xen_build_id')
        if build_id is not None:
            if build_id in seen_build:
                check.add(path + '.xen_build_id',
                          'two payloads for build-id %s (also livepatches[%d])' % (build_id, seen_build[build_id]),
                          'keep one payload per hypervisor build: merge the fixes into one payload or remove one entry')
            else:
                seen_build[build_id] = i
            if build_id in fixed_build_ids:
                check.add(path + '.xen_build_id', 'build-id %s is listed as fixed in fallback.fixed_build_ids' % build_id,
                          'a fixed build needs no payload: remove the entry or correct the build-id')
        name = entry.get('name')
        if not isinstance(name, str) or not _NAME_RE.match(name):
            check.add(path + '.name', 'missing or bad payload name %r' % (name,),
                      'give the name `xen-livepatch list` will show: 1-127 characters of A-Z a-z 0-9 _ . -')
        else:
            if name in seen_name:
                check.add(path + '.name', 'payload name %r also used by livepatches[%d]' % (name, seen_name[name]),
                          'give each payload its own name (Xen refuses a second payload of the same name)')
            seen_name.setdefault(name, i)
        if 'metadata' in entry and (not isinstance(entry['metadata'], str) or not entry['metadata']):
            check.add(path + '.metadata', 'metadata must be a non-empty string',
                      'write the text `xen-livepatch list` shows in the metadata column, or leave it out')
        declared_own = None
        if 'payload_build_id' in entry:
            declared_own = check.build_id(entry['payload_build_id'], path + '.payload_build_id')
        _check_expect(check, entry.get('expect'), path + '.expect')
        if 'apply_until' in entry:
            check.timestamp(entry['apply_until'], path + '.apply_until')
        sha = entry.get('sha256')
        if sha is None:
            check.add(path + '.sha256', 'missing sha256 of the payload file', 'add `sha256:` with the output of `sha256sum FILE`')
        elif _is_number(sha):
            check.add(path + '.sha256', 'the sha256 was read as the number %r (YAML turns unquoted digits into numbers)' % (sha,),
                      'quote the sha256')
            sha = None
        elif not isinstance(sha, str) or not _SHA256_RE.match(sha.strip().lower()):
            check.add(path + '.sha256', '%r is not a sha256 (64 hex digits)' % (sha,), 'paste the first field of `sha256sum FILE`')
            sha = None
        rel = entry.get('file')
        if not isinstance(rel, str) or not rel.strip():
            check.add(path + '.file', 'missing payload file', 'add `file:` with the payload path relative to the manifest')
            continue
        if os.path.isabs(rel):
            check.add(path + '.file', 'payload path %r is absolute' % rel,
                      'write it relative to the manifest so the advisory directory can be moved as a whole')
            continue
        full = files.locate(base, rel) if files else payload_path(base, rel, resolve=False)
        if full is None:
            check.add(path + '.file', 'payload path %r leads outside the advisory directory %s (through .. or a '
                      'symbolic link); nothing outside it is read' % (rel, base),
                      'copy the payload into %s and give its path relative to the manifest' % base)
            continue
        if files is None:
            continue
        size = files.size(full)
        if size is None:
            check.add(path + '.file', 'payload file %s does not exist on the controller' % full,
                      'put the payload next to the manifest or correct the relative path')
            continue
        actual = files.sha256(full) if size <= files.max_size and sha is not None else None
        if size > files.max_size or (sha is not None and actual is None):
            size = max(size, files.max_size + 1)  # None from sha256: the file grew past the limit meanwhile
            check.add(path + '.file', 'payload file %s is %d bytes, larger than %d bytes, the most the payload '
                      'reader accepts (Xen refuses uploads over 2 MiB)' % (rel, size, files.max_size),
                      'check that file names the payload livepatch-build-tools built')
            continue
        if sha is None:
            continue  # the sha256 problem is reported; bytes nobody vouched for are not parsed
        if actual != sha.strip().lower():
            check.add(path + '.sha256', 'sha256 %s does not match %s (sha256 %s)' % (sha, rel, actual),
                      'check that the right payload was copied; if it was, put the actual sha256 in the manifest')
            continue  # not the declared payload: its ELF contents are not read
        declared_metadata = entry.get('metadata') if isinstance(entry.get('metadata'), str) and entry.get('metadata') else None
        _check_payload_elf(check, i, full, rel, build_id, declared_own, declared_metadata, files.inspect)


def _check_payload_elf(check, index, full, rel, build_id, declared_own, declared_metadata, inspect_payload):
    path = 'livepatches[%d]' % index
    try:
        info = inspect_payload(full)
    except PayloadInspectionError as exc:
        check.add(path + '.file', '%s is not a usable livepatch payload: %s' % (rel, exc),
                  'rebuild the payload with livepatch-build-tools for this hypervisor build')
        return
    check.payload_info[index] = dict(info, path=full)  # the real path, the file that was checked
    xen_depends = (info.get('xen_depends') or '').lower() or None
    if xen_depends is None:
        check.add(path + '.file', '%s has no .livepatch.xen_depends section' % rel,
                  'rebuild the payload with livepatch-build-tools (Xen 4.14 and later require the section)')
    elif build_id is not None and xen_depends != build_id:
        check.add(path + '.xen_build_id',
                  'payload %s is built for hypervisor build-id %s (.livepatch.xen_depends), not %s' % (rel, xen_depends, build_id),
                  'declare it under xen_build_id %s, or use the payload built for %s' % (xen_depends, build_id))
    if declared_metadata is not None:
        modinfo = info.get('metadata') or []
        if isinstance(modinfo, str):
            modinfo = [modinfo]
        if not any(declared_metadata in text for text in modinfo):
            check.add(path + '.metadata', 'payload %s has no .modinfo text containing %r (it has %r)' % (rel, declared_metadata, modinfo),
                      'correct metadata to what the payload carries, or leave it out')
    own = (info.get('build_id') or '').lower() or None
    if declared_own is not None and own != declared_own:
        check.add(path + '.payload_build_id',
                  'payload %s has build-id %s (.note.gnu.build-id), not %s' % (rel, own, declared_own),
                  'correct payload_build_id or use the payload it names')


def _check_expect(check, expect, path):
    if expect is None:
        return
    if not check.keys(expect, EXPECT_KEYS, path):
        return
    xl_info = expect.get('xl_info')
    if xl_info is not None:
        if not isinstance(xl_info, dict) or not xl_info:
            check.add(path + '.xl_info', 'xl_info must map `xl info` field names to expected values',
                      'write e.g. `xl_info: {xen_extra: "Hello World"}`')
            return
        for key in sorted(xl_info, key=str):
            if not isinstance(xl_info[key], (str, int)) or isinstance(xl_info[key], bool):
                check.add('%s.xl_info.%s' % (path, key), 'expected value must be a string or number',
                          'quote the value as `xl info` prints it')


# ---------------------------------------------------------------------------------------------
# Normalized form

def _normalize(data, file, payload_info=None):
    """Return the validated manifest in the form plan_decision and the plan JSON use.

    With ``payload_info`` (see _collect_problems) each payload also carries what its file says:
    ``payload_build_id`` (``.note.gnu.build-id``) and ``depends`` (``.livepatch.depends``,
    what it stacks on: the hypervisor's build-id or the payload below it), and its ``path`` is
    the real path of the file that was checked (symbolic links resolved).
    """
    payload_info = payload_info or {}
    affected = data.get('affected') or {}
    hyp = affected.get('hypervisors') or {}
    versions = hyp.get('versions') or []
    if isinstance(versions, str):
        versions = [versions]
    build_ids = hyp.get('build_ids') or []
    if isinstance(build_ids, str):
        build_ids = [build_ids]
    hardware = []
    for predicate in affected.get('hardware') or []:
        hardware.append(_normalize_predicate(predicate))
    fallback = data.get('fallback') or {}
    base = os.path.dirname(os.path.abspath(file)) if file else os.getcwd()
    livepatches = []
    for index, entry in enumerate(data.get('livepatches') or []):
        info = payload_info.get(index) or {}
        item = dict(
            xen_build_id=entry['xen_build_id'].strip().lower(),
            file=entry['file'],
            path=info.get('path') or os.path.normpath(os.path.join(base, entry['file'])),
            sha256=entry['sha256'].strip().lower(),
            name=entry['name'],
            payload_build_id=(info.get('build_id') or entry.get('payload_build_id') or '').strip().lower() or None,
            depends=(info.get('depends') or '').strip().lower() or None,
            metadata=entry.get('metadata'),
            expect=entry.get('expect') or {},
            apply_until=(format_utc_timestamp(parse_utc_timestamp(entry['apply_until']))
                         if entry.get('apply_until') is not None else None),
        )
        livepatches.append(item)
    fixed = fallback.get('fixed_build_ids') or []
    if isinstance(fixed, str):
        fixed = [fixed]
    return dict(
        schema=SCHEMA_VERSION,
        manifest=file,
        id=data['id'].strip(),
        title=data['title'].strip(),
        versions=[v.strip() for v in versions],
        version_ranges=[parse_version_range(v) for v in versions],
        build_ids=sorted(set(b.strip().lower() for b in build_ids)),
        hardware=hardware,
        livepatches=livepatches,
        livepatch_end_of_life=dict((e['xen_build_id'].strip().lower(), format_utc_timestamp(parse_utc_timestamp(e['from'])))
                                   for e in data.get('livepatch_end_of_life') or []),
        fallback=dict(
            reboot=True,
            fixed_build_ids=sorted(set(b.strip().lower() for b in fixed)),
            packages=dict((str(k), dict(package=v['package'], version=str(v['version'])))
                          for k, v in (fallback.get('packages') or {}).items()),
        ),
    )


def _normalize_predicate(predicate):
    result = {}
    if 'vendor' in predicate:
        vendors = predicate['vendor']
        result['vendor'] = sorted(v.strip().lower() for v in ([vendors] if isinstance(vendors, str) else vendors))
    for key in ('family', 'models'):
        if key in predicate:
            result[key] = parse_int_set(predicate[key])
    for key in ('hw_caps', 'virt_caps'):
        if key in predicate:
            flags = predicate[key]
            result[key] = [f.strip() for f in ([flags] if isinstance(flags, str) else flags)]
    return result


def public_view(advisory):
    """The advisory without parsed tuples, for JSON output."""
    return dict((k, v) for k, v in advisory.items() if k != 'version_ranges')


def check_advisory_set(advisories):
    """Problems across several valid manifests (duplicate ids, payload names reused)."""
    problems = []
    ids = {}
    names = {}
    for advisory in advisories:
        if advisory['id'] in ids:
            problems.append(ManifestProblem(advisory['manifest'], 'id', 'advisory %s is also given by %s' % (
                advisory['id'], ids[advisory['id']]), 'pass each advisory once'))
        ids.setdefault(advisory['id'], advisory['manifest'])
        for i, lp in enumerate(advisory['livepatches']):
            key = lp['name']
            if key in names and names[key][0] != advisory['id']:
                problems.append(ManifestProblem(advisory['manifest'], 'livepatches[%d].name' % i,
                                                'payload name %r is also used by advisory %s' % (key, names[key][0]),
                                                'give payloads of different advisories different names'))
            names.setdefault(key, (advisory['id'], i))
    return problems
