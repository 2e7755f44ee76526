# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sliced rollout as AWX runs it, for the lab test and the bench: the plan and canary jobs unsliced, then
one job per slice (each with AWX's cut of the inventory: sorted by name, every n-th from k-1), all at once, each
streamed through its own ``ansible-runner transmit | worker | process`` (separate processes, standing in for
execution nodes), then the merge job; the artifacts of the earlier jobs handed down as extra vars, as AWX does
(a sliced job's artifacts are the union of its slices')."""

from __future__ import absolute_import, division, print_function

import os
import threading
import time

import yaml

import awx_runner_job as awx

SLICED_TEMPLATE = 'noreboot.xen rolling live patch (sliced)'


def awx_slice(hosts, number, count):
    """AWX's slice ``number`` of ``count``: hosts sorted by name, every count-th from index number-1."""
    return sorted(hosts)[number - 1::count]


def _keep_hosts(node, keep):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == 'hosts' and isinstance(value, dict):
                out[key] = dict((h, v) for h, v in value.items() if h in keep)
            else:
                out[key] = _keep_hosts(value, keep)
        return out
    return node


def slice_inventory(inventory, hosts, path):
    """The inventory file cut to ``hosts`` (what AWX gives one slice), written to ``path``."""
    with open(inventory) as handle:
        data = yaml.safe_load(handle)
    with open(path, 'w') as handle:
        yaml.safe_dump(_keep_hosts(data, set(hosts)), handle)
    return path


def run_job(workdir, collections, inventory, name, job_id, playbook, extravars):
    """One job through ansible-runner; ``{status, rc, events, artifacts, output, elapsed_s}``."""
    root = os.path.join(workdir, name)
    ident = 'awx-job-%d' % job_id
    awx.private_data_dir(root, inventory, playbook, dict(extravars, awx_job_id=job_id, tower_job_id=job_id))
    streamed = awx.stream(root, collections, ident)
    assert streamed['rcs'][0] == 0, streamed['output'][-3000:]
    result = awx.job_result(root, ident)
    result.update(output=streamed['output'], elapsed_s=streamed['elapsed_s'], name=name, job_id=job_id)
    return result


def run_slices(workdir, collections, inventory, hosts, count, first_job_id, extravars):
    """The sliced job: ``count`` slice jobs at once, each on its cut of the inventory; results in slice order,
    with the whole sliced job's wall time."""
    results = [None] * count
    errors = []

    def one(number):
        try:
            own = awx_slice(hosts, number, count)
            cut = slice_inventory(inventory, own, os.path.join(workdir, 'inventory-slice-%d.yml' % number))
            meta = dict(awx_job_launch_type='workflow', awx_workflow_job_id=first_job_id - 1,
                        awx_workflow_job_name=SLICED_TEMPLATE, awx_job_template_name=SLICED_TEMPLATE,
                        noreboot_xen_rollout_slices=count)
            extra = dict(extravars, **meta)
            # The one answer a test makes per slice: where its summary goes ({slice} in the path).
            if 'noreboot_xen_summary_path' in extra:
                extra['noreboot_xen_summary_path'] = extra['noreboot_xen_summary_path'].format(slice=number)
            results[number - 1] = run_job(workdir, collections, cut, 'slice-%d' % number, first_job_id + number - 1,
                                          'noreboot.xen.rolling_livepatch', extra)
        except Exception as exc:  # pylint: disable=broad-except
            errors.append('slice %d: %r' % (number, exc))

    started = time.time()
    threads = [threading.Thread(target=one, args=(n,)) for n in range(1, count + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results, round(time.time() - started, 1)


def sliced_artifacts(results):
    """What AWX hands the next node from a sliced job: the union of its slices' artifacts."""
    merged = {}
    for result in results:
        merged.update(result['artifacts'])
    return merged


def times_table(rows):
    """Lines of a side-by-side table: ``rows`` of (what, seconds, note)."""
    lines = ['%-34s %10s  %s' % ('job', 'wall s', '')]
    lines += ['%-34s %10.1f  %s' % (what, seconds, note) for what, seconds, note in rows]
    return lines
