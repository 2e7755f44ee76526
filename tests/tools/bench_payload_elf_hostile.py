# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: time and peak memory of refusing hostile 1-2 MiB payloads (issue 13 item 6).

    make setup && PYTHONPATH=.cache/collections .venv/bin/python tests/tools/bench_payload_elf_hostile.py [--size BYTES]

For each shape of tests/support/hostile_payloads.py and each reader (the ELF reader alone, the
host's pre-upload inspection livepatch_lifecycle.inspect_payload, the controller's manifest
check advisory_manifest.validate_manifest), prints the wall time of one refusal (without
tracing), the peak of Python allocations during it (tracemalloc, a second run) and whether it
was refused. The targets (< 1 s, < 100 MiB) are printed next to the figures, not asserted.
The process runs under a 2 GiB address space limit so a reader without bounds fails with a
MemoryError instead of exhausting the machine.
"""

import argparse
import hashlib
import os
import resource
import sys
import tempfile
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'support'))

import hostile_payloads  # noqa: E402
from xen_builds import XEN_4175  # noqa: E402
from manifest_problems import manifest_problems  # noqa: E402

from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_lifecycle as lc  # noqa: E402
from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_payload_elf as elf  # noqa: E402

MIB = 1024.0 * 1024.0
XEN_BUILD_ID = XEN_4175


def reader(path, sha):
    try:
        elf.read_payload(path)
    except elf.PayloadError as exc:
        return str(exc)
    return None


def host(path, sha):
    try:
        lc.inspect_payload(path, sha)
    except lc.LivepatchFailure as exc:
        return str(exc)
    return None


def controller(path, sha):
    manifest = dict(schema=1, id='XSA-999', title='hostile payload', affected=dict(hypervisors=dict(versions=['>=4.17.0'])),
                    livepatches=[dict(xen_build_id=XEN_BUILD_ID, file=os.path.basename(path), sha256=sha, name='hostile')],
                    fallback=dict(reboot=True, packages=dict(debian=dict(package='xen-hypervisor-4.17-amd64', version='1'))))
    problems = manifest_problems(manifest, os.path.join(os.path.dirname(path), 'xsa-999.yml'))
    return '; '.join(str(p) for p in problems) or None


READERS = (('reader', reader), ('host', host), ('controller', controller))


def measure(function, path, sha):
    started = time.perf_counter()
    try:
        refusal = function(path, sha)
    except MemoryError:
        return None, time.perf_counter() - started, None
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        function(path, sha)
        peak = tracemalloc.get_traced_memory()[1]
    except MemoryError:
        peak = None
    finally:
        tracemalloc.stop()
    return refusal, elapsed, peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--size', type=int, default=int(1.5 * MIB), help='file size to aim at (default 1.5 MiB)')
    args = parser.parse_args(argv)
    limit = 2 * 1024 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    directory = tempfile.mkdtemp(prefix='bench-payload-elf-')
    print('targets: refused, < 1 s, < 100 MiB peak (Python allocations, tracemalloc)')
    print('%-18s %-11s %10s %10s %10s  %s' % ('shape', 'where', 'file MiB', 'time s', 'peak MiB', 'refusal'))
    worst_time = worst_peak = 0.0
    try:
        for shape in sorted(hostile_payloads.SHAPES):
            data = hostile_payloads.SHAPES[shape](args.size)
            path = os.path.join(directory, shape + '.livepatch')
            with open(path, 'wb') as handle:
                handle.write(data)
            sha = hashlib.sha256(data).hexdigest()
            for where, function in READERS:
                refusal, elapsed, peak = measure(function, path, sha)
                worst_time = max(worst_time, elapsed)
                worst_peak = max(worst_peak, peak if peak is not None else float('inf'))
                text = (refusal or 'NOT REFUSED').replace(directory + os.sep, '')
                print('%-18s %-11s %10.2f %10.3f %10s  %s' % (
                    shape, where, len(data) / MIB, elapsed, '%.1f' % (peak / MIB) if peak is not None else 'MemoryError',
                    text[:110]))
            os.unlink(path)
    finally:
        os.rmdir(directory)
    print('worst: %.3f s, %s MiB peak; max RSS of this process %.1f MiB' % (
        worst_time, '%.1f' % (worst_peak / MIB) if worst_peak != float('inf') else 'MemoryError',
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))
    return 0


if __name__ == '__main__':
    sys.exit(main())
