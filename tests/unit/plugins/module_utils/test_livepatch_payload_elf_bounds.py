# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile payloads (0.5-2 MiB) are refused with bounded memory (issue 13 item 6).

The files come from tests/support/hostile_payloads.py. Each reading runs in a child Python
whose address space is capped (RLIMIT_AS), so a reader that does not bound what it decodes
fails with a MemoryError in the child instead of eating the machine; the child measures the
peak of Python allocations with tracemalloc and reports it. Time is printed by the benchmark
(tests/tools/bench_payload_elf_hostile.py), not asserted here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import subprocess
import sys

import hostile_payloads
import pytest
from xen_builds import XEN_4175

PEAK_LIMIT = 100 * 1024 * 1024
ADDRESS_SPACE_LIMIT = 1024 * 1024 * 1024

# Runs in the child: read the file the way the controller or the host does, print JSON.
CHILD = r'''
import json, resource, sys, tracemalloc
limit, where, path, sha, xen_build_id = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from ansible_collections.noreboot.xen.plugins.module_utils import advisory_manifest as am
from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_lifecycle as lc
from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_payload_elf as elf
tracemalloc.start()
outcome = dict(refused=False, problem=None)
try:
    if where == 'reader':
        try:
            elf.read_payload(path)
        except elf.PayloadError as exc:
            outcome = dict(refused=True, problem=str(exc))
    elif where == 'host':
        try:
            lc.inspect_payload(path, sha)
        except lc.LivepatchFailure as exc:
            outcome = dict(refused=True, problem=str(exc))
    else:
        import os
        manifest = dict(schema=1, id='XSA-999', title='t', affected=dict(hypervisors=dict(versions=['>=4.17.0'])),
                        livepatches=[dict(xen_build_id=xen_build_id,
                                          file=os.path.basename(path), sha256=sha, name='hostile')],
                        fallback=dict(reboot=True, packages=dict(debian=dict(package='p', version='1'))))
        try:
            am.validate_manifest(manifest, os.path.join(os.path.dirname(path), 'xsa-999.yml'))
            problems = []
        except am.AdvisoryManifestError as exc:
            problems = exc.problems
        outcome = dict(refused=bool(problems), problem='; '.join(str(p) for p in problems))
except MemoryError:
    outcome = dict(refused=False, problem='MemoryError under a %d MiB address space limit' % (limit >> 20))
outcome['peak'] = tracemalloc.get_traced_memory()[1]
print(json.dumps(outcome))
'''


def read_in_child(path, where):
    with open(path, 'rb') as handle:
        sha = hashlib.sha256(handle.read()).hexdigest()
    proc = subprocess.run([sys.executable, '-c', CHILD, str(ADDRESS_SPACE_LIMIT), where, path, sha, XEN_4175],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, 'child failed (rc %s): %s' % (proc.returncode, proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('where', ['reader', 'host', 'controller'])
@pytest.mark.parametrize('shape', sorted(hostile_payloads.SHAPES))
def test_hostile_payload_is_refused_in_bounded_memory(tmp_path, shape, where):
    path = str(tmp_path / ('%s.livepatch' % shape))
    data = hostile_payloads.SHAPES[shape]()
    assert 256 * 1024 <= len(data) <= 2 * 1024 * 1024
    with open(path, 'wb') as handle:
        handle.write(data)
    outcome = read_in_child(path, where)
    assert 'MemoryError' not in (outcome['problem'] or ''), outcome
    if where != 'reader' or shape in hostile_payloads.READER_REFUSES:
        assert outcome['refused'], outcome
    assert outcome['peak'] < PEAK_LIMIT, '%s (%s): peak %.1f MiB' % (shape, where, outcome['peak'] / 1048576.0)
