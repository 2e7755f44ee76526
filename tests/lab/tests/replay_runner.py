# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run transcript steps against the simulator inside a private mount namespace.

Real transcripts name payload files by their real paths (``/root/p4177/xen_hello_world.livepatch``)
and those paths appear in the output, so the replay must use the same paths. The contract test
starts this script under ``unshare --mount --propagation private``; it mounts a tmpfs on /root
(only inside that namespace), puts the payload files where the transcript expects them, runs
every step with the simulated ``xl`` / ``xen-livepatch`` first on PATH, and writes the results.

Usage: unshare --mount --propagation private python3 replay_runner.py JOB.json RESULT.json
"""

import json
import os
import shutil
import subprocess
import sys


def main(job_path, result_path):
    with open(job_path) as handle:
        job = json.load(handle)
    subprocess.check_call(['mount', '-t', 'tmpfs', '-o', 'mode=0700', 'noreboot-lab-replay', '/root'])
    for dest, src in sorted(job['files'].items()):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(src, dest)
    env = dict(os.environ)
    env['PATH'] = job['bin'] + os.pathsep + env.get('PATH', '/usr/bin:/bin')
    env['NOREBOOT_XEN_LAB_STATE'] = job['state']
    env['LC_ALL'] = 'C'
    results = []
    # A capture session: earlier scenarios run on the same host first (outputs not compared),
    # each from a fresh hypervisor state except for the log, which accumulates as on the real host.
    if job.get('session'):
        with open(job['state']) as handle:
            fresh = json.load(handle)
        for scenario in job['session']:
            with open(job['state']) as handle:
                log = json.load(handle)['dmesg']
            state = json.loads(json.dumps(fresh))
            state['dmesg'] = log
            with open(job['state'], 'w') as handle:
                json.dump(state, handle)
            for index, argv in enumerate(scenario['steps']):
                faults = scenario.get('pre_step_faults', {}).get(str(index))
                if faults:
                    with open(job['state']) as handle:
                        state = json.load(handle)
                    state['faults'] = dict(faults)
                    state['counters']['faults'] = {}
                    with open(job['state'], 'w') as handle:
                        json.dump(state, handle)
                subprocess.run(argv, cwd=job.get('cwd', '/root'), env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=job.get('timeout', 20), check=False)
                if faults:
                    with open(job['state']) as handle:
                        state = json.load(handle)
                    state['faults'] = {}
                    with open(job['state'], 'w') as handle:
                        json.dump(state, handle)
    for kind in ('setup', 'steps'):
        for index, argv in enumerate(job[kind]):
            faults = job.get('pre_step_faults', {}).get(str(index)) if kind == 'steps' else None
            if faults:
                # What the real machine did on its own at this step (e.g. a CPU rendezvous timeout).
                with open(job['state']) as handle:
                    state = json.load(handle)
                state['faults'].update(faults)
                for key in faults:
                    state['counters'].setdefault('faults', {}).pop(key, None)
                with open(job['state'], 'w') as handle:
                    json.dump(state, handle)
            try:
                proc = subprocess.run(argv, cwd=job.get('cwd', '/root'), env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=job.get('timeout', 20), check=False)
                item = {'argv': argv, 'rc': proc.returncode,
                        'stdout': proc.stdout.decode('utf-8', 'surrogateescape'),
                        'stderr': proc.stderr.decode('utf-8', 'surrogateescape')}
            except subprocess.TimeoutExpired as exc:
                item = {'argv': argv, 'rc': 'timeout', 'stdout': (exc.stdout or b'').decode('utf-8', 'replace'),
                        'stderr': (exc.stderr or b'').decode('utf-8', 'replace')}
            item['kind'] = kind
            results.append(item)
            if faults:
                # The machine's own hiccup was for that step only.
                with open(job['state']) as handle:
                    state = json.load(handle)
                for key in faults:
                    state['faults'].pop(key, None)
                with open(job['state'], 'w') as handle:
                    json.dump(state, handle)
    with open(result_path, 'w') as handle:
        json.dump(results, handle)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
