# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module executions and SSH round trips per live-patched host (issue 15 item 2), counted on the wire.

playbooks/rolling_livepatch.yml runs once with ``-vvv`` on three lab hosts that all get the lab
payload. Ansible's ssh connection logs every command it runs on a host as ``<address> SSH: EXEC ...``
(a file transfer is an ``sftp``/``scp`` EXEC of its own); a module execution is one of them that
starts the host's Python (``/usr/bin/python3 && sleep 0`` with pipelining, ``AnsiballZ_*.py``
without). Counting these lines counts what the hosts ran, whatever action plugin or task asked for
it (the copy action's stat, a module an action plugin runs), not the tasks a callback sees.

The whole run is counted, detection included: at most 3 module executions per live-patched host
(main 5a3ebc8 ran 6: xen_facts, the state-directory check, copy's stat and copy, the transaction,
patch_state_fact; 11 SSH round trips; this test failed there with modules 6). It also counts the
tasks of the role noreboot.xen.livepatch the controller forks a worker for, per host (MAX_ROLE_TASKS). Needs root; lab instance NOREBOOT_XEN_LAB_INSTANCE (7 by
default, tests/lab/tests/conftest.py).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import re
import subprocess

import pytest
import yaml

import bench_rolling_livepatch as rl
import lab_for_test

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')

SPEC = '''name: trips3
inventory_group: xen_hosts
builds:
  deb-4.17.5: {version: 4.17.5}
defaults:
  reboot_delay: 2
groups:
  - {name: rt, count: 3, build: deb-4.17.5, hardware: intel-cascadelake, guests: 1, failure_domains: [rack-a, rack-b, rack-c]}
'''
MAX_MODULE_EXECUTIONS = 3
MAX_ROUND_TRIPS = 3
# Tasks of the role noreboot.xen.livepatch a worker process runs for a live-patched host (a fork each on the
# controller): the argument spec, the preflight (checks and decision: one set_fact), the transaction and the
# report. Counted by the test callback (bench_rolling_livepatch.CALLBACK, task_results.json). Commit d8ef287
# ran 6 (two asserts and a set_fact where the preflight is one task) and this test failed there with 6 <= 4.
MAX_ROLE_TASKS = 4
ROLE = 'noreboot.xen.livepatch'

EXEC = re.compile(r'^<([^>]+)> SSH: EXEC (\S+)(.*)$')
# The host's Python started on a pipelined module (stdin) or on an AnsiballZ file.
MODULE = re.compile(r'/python[0-9.]*(\s+&& sleep 0|\s+\S*AnsiballZ_)')


def count_on_the_wire(log_text, addresses):
    """{host: {'round_trips': n, 'modules': n, 'commands': [...]}} from a -vvv log; ``addresses``: {address: host}."""
    counts = dict((host, dict(round_trips=0, modules=0, commands=[])) for host in addresses.values())
    for line in log_text.splitlines():
        match = EXEC.match(line)
        if not match or match.group(1) not in addresses:
            continue
        entry = counts[addresses[match.group(1)]]
        entry['round_trips'] += 1
        command = match.group(2) + match.group(3)
        if MODULE.search(command):
            entry['modules'] += 1
        entry['commands'].append(command[-100:])
    return counts


def test_count_on_the_wire_reads_ansible_vvv_lines():
    log = '\n'.join([
        '<10.0.0.1> ESTABLISH SSH CONNECTION FOR USER: root',
        '<10.0.0.1> SSH: EXEC ssh -C -o ControlMaster=auto 10.0.0.1 \'/bin/sh -c \'"\'"\'/usr/bin/python3 && sleep 0\'"\'"\'\'',
        '<10.0.0.1> SSH: EXEC ssh -C 10.0.0.1 \'/bin/sh -c \'"\'"\'echo ~root && sleep 0\'"\'"\'\'',
        '<10.0.0.1> PUT /tmp/a TO /root/.ansible/tmp/x/a',
        '<10.0.0.1> SSH: EXEC sftp -b - -C 10.0.0.1',
        '<10.0.0.2> SSH: EXEC ssh 10.0.0.2 \'/bin/sh -c \'"\'"\'/usr/bin/python3 && sleep 0\'"\'"\'\'',
        '<127.0.0.1> EXEC /bin/sh -c \'/usr/bin/python3 && sleep 0\'',
    ])
    counts = count_on_the_wire(log, {'10.0.0.1': 'a', '10.0.0.2': 'b'})
    assert (counts['a']['round_trips'], counts['a']['modules']) == (3, 1)
    assert (counts['b']['round_trips'], counts['b']['modules']) == (1, 1)


def test_live_patched_host_costs_at_most_three_module_executions(tmp_path):
    workdir = str(tmp_path)
    with lab_for_test.lab_up(workdir, spec=SPEC) as up:
        with open(up['inventory']) as handle:
            inventory = yaml.safe_load(handle)
        hosts = inventory['all']['children']['xen_hosts']['hosts'] if 'all' in inventory else inventory['xen_hosts']['hosts']
        addresses = dict((values['ansible_host'], host) for host, values in hosts.items())
        manifest, _expects = rl.write_advisory(os.path.join(workdir, 'advisory'))
        command = rl.rollout_command(up['inventory'], manifest, os.path.join(workdir, 'summary.json'),
                                     {'noreboot_xen_reboot_ok': False}) + ['-vvv']
        log_path = os.path.join(workdir, 'vvv.log')
        with open(log_path, 'w') as log:
            rc = subprocess.call(command, cwd=rl.REPO, env=rl.rollout_env(workdir), stdout=log,
                                 stderr=subprocess.STDOUT)
        with open(log_path) as handle:
            log_text = handle.read()
        assert rc == 0, log_text[-3000:]
        with open(os.path.join(workdir, 'summary.json')) as handle:
            summary = json.load(handle)
        outcomes = dict((host, (summary['hosts'].get(host) or {}).get('outcome')) for host in hosts)
        assert set(outcomes.values()) == {'patched'}, outcomes
        counts = count_on_the_wire(log_text, addresses)
        print(json.dumps(counts, indent=1, sort_keys=True))
        for host, entry in sorted(counts.items()):
            assert entry['modules'] <= MAX_MODULE_EXECUTIONS, (host, entry)
            assert entry['round_trips'] <= MAX_ROUND_TRIPS, (host, entry)
        with open(os.path.join(workdir, 'task_results.json')) as handle:
            task_results = json.load(handle)
        role_tasks = dict((host, [t['task'] for t in task_results.get(host, []) if t['role'] == ROLE])
                          for host in hosts)
        print(json.dumps(role_tasks, indent=1, sort_keys=True))
        for host, tasks in sorted(role_tasks.items()):
            assert 0 < len(tasks) <= MAX_ROLE_TASKS, (host, tasks)
