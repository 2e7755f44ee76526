# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An AWX job, as AWX runs it on an execution node, for the lab tests: ansible-runner with a private data
dir, streamed ``ansible-runner transmit DIR | ansible-runner worker | ansible-runner process DIR`` (three
processes, as AWX and Receptor run them), with the collection installed from its own tarball where the
worker finds it (as an execution environment has it)."""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import subprocess
import time

import yaml

import labctl

LAB = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(LAB))
BIN = os.path.join(REPO, '.venv', 'bin')


def run_checked(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, **kwargs)
    assert proc.returncode == 0, '%s: rc %d\n%s\n%s' % (argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def install_collection(workdir):
    """The collection as an execution environment has it: built with galaxy and installed from the tarball."""
    dist = os.path.join(workdir, 'dist')
    collections = os.path.join(workdir, 'ee-collections')
    run_checked([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', REPO, '--output-path', dist])
    (tarball,) = [os.path.join(dist, n) for n in os.listdir(dist) if n.endswith('.tar.gz')]
    run_checked([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '-p', collections, tarball],
                env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections))
    return collections


def private_data_dir(root, inventory, playbook_fqcn, extravars):
    """A job's private data dir: inventory/, env/extravars, project/ with a wrapper playbook importing the FQCN one."""
    for name in ('inventory', 'env', 'project'):
        os.makedirs(os.path.join(root, name))
    shutil.copy(inventory, os.path.join(root, 'inventory', 'hosts.yml'))
    with open(os.path.join(root, 'project', 'wrapper.yml'), 'w') as handle:
        handle.write("---\n# What an AWX project holds: a playbook of its own that runs the collection's playbook by FQCN.\n"
                     "- name: %s (AWX job template)\n  ansible.builtin.import_playbook: %s\n" % (playbook_fqcn, playbook_fqcn))
    shutil.copy(os.path.join(LAB, 'ansible.cfg'), os.path.join(root, 'project', 'ansible.cfg'))
    with open(os.path.join(root, 'env', 'extravars'), 'w') as handle:
        yaml.safe_dump(extravars, handle)


# How long a job may take before the stream is given up (lab tests: minutes; the 1000-host bench sets more).
JOB_TIMEOUT_S = 600


def stream(private_dir, collections, ident):
    """transmit | worker | process; returns their rcs, the seconds taken and the output of process."""
    env = {'PATH': '%s:/usr/sbin:/usr/bin:/sbin:/bin' % BIN, 'HOME': os.environ.get('HOME', '/root'),
           'LANG': 'C.UTF-8', 'ANSIBLE_COLLECTIONS_PATH': collections, 'ANSIBLE_COLLECTIONS_SCAN_SYS_PATH': 'false',
           'ANSIBLE_SSH_CONTROL_PATH_DIR': os.path.join(labctl.LAB_ROOT, 'cp'), 'ANSIBLE_FORCE_COLOR': '0'}
    runner = os.path.join(BIN, 'ansible-runner')
    started = time.time()
    transmit = subprocess.Popen([runner, 'transmit', private_dir, '-p', 'wrapper.yml', '--ident', ident],
                                stdout=subprocess.PIPE, env=env)
    worker = subprocess.Popen([runner, 'worker'], stdin=transmit.stdout, stdout=subprocess.PIPE, env=env)
    transmit.stdout.close()
    process = subprocess.Popen([runner, 'process', private_dir, '--ident', ident], stdin=worker.stdout,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    worker.stdout.close()
    output = process.communicate(timeout=JOB_TIMEOUT_S)[0].decode('utf-8', 'replace')
    rcs = (transmit.wait(timeout=60), worker.wait(timeout=60), process.returncode)
    return dict(rcs=rcs, elapsed_s=round(time.time() - started, 1), output=output)


def job_result(private_dir, ident):
    """``{status, rc, events, artifacts}`` of a finished job (artifacts: the stats event's artifact_data)."""
    folder = os.path.join(private_dir, 'artifacts', ident)
    with open(os.path.join(folder, 'status')) as handle:
        status = handle.read().strip()
    with open(os.path.join(folder, 'rc')) as handle:
        rc = int(handle.read().strip())
    events = []
    for name in os.listdir(os.path.join(folder, 'job_events')):
        with open(os.path.join(folder, 'job_events', name)) as handle:
            events.append(json.load(handle))
    events.sort(key=lambda e: e['counter'])
    stats = [e for e in events if e['event'] == 'playbook_on_stats']
    artifacts = stats[0]['event_data'].get('artifact_data') or {} if stats else {}
    return dict(status=status, rc=rc, events=events, artifacts=artifacts)


def task_messages(events, task):
    """The ``msg`` of every host result of the task named ``task`` (ok or failed)."""
    return [e['event_data']['res'].get('msg') for e in events
            if e['event'] in ('runner_on_ok', 'runner_on_failed') and e['event_data'].get('task') == task]
