# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The playbooks that take advisories refuse a bad manifest before any host is contacted (issue 13 item 12).

ansible-playbook runs each playbook against an inventory of hosts that cannot be reached (TEST-NET-1
addresses, one second connect timeout); the manifest's problem must end the run before a task runs on them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest
from xen_builds import XEN_4175

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')

INVENTORY = """[xen]
xen01 ansible_host=192.0.2.1
xen02 ansible_host=192.0.2.2

[xen:vars]
ansible_connection=ssh
ansible_ssh_common_args=-o ConnectTimeout=1 -o BatchMode=yes
"""

MANIFEST = """schema: 1
id: XSA-999
title: bad example
affected: {hypervisors: {versions: ['>=4.17.0']}}
livepatches:
  - {xen_build_id: %s, file: missing.livepatch, name: xsa999}
fallback: {reboot: true}
""" % XEN_4175


@pytest.mark.parametrize('playbook', ['plan.yml', 'rolling_livepatch.yml', 'reboot_fallback.yml'])
def test_bad_manifest_stops_the_run_before_any_host_is_contacted(playbook, tmp_path):
    (tmp_path / 'hosts.ini').write_text(INVENTORY)
    manifest = tmp_path / 'xsa-999.yml'
    manifest.write_text(MANIFEST)
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_RETRY_FILES_ENABLED='False', ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'))
    done = subprocess.run(
        [PLAYBOOK_BIN, '-i', str(tmp_path / 'hosts.ini'), os.path.join(REPO, 'playbooks', playbook),
         '-e', '{"noreboot_xen_advisories": ["%s"], "noreboot_xen_reboot_ok": false}' % manifest],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    out = done.stdout.decode('utf-8', 'replace')
    assert done.returncode != 0, out
    assert 'livepatches[0].sha256' in out, out
    assert 'UNREACHABLE' not in out and '192.0.2.' not in out, 'a host was contacted before the manifest check:\n' + out


# The extra vars AWX sets on the job of one slice of the job template 'xsa rollout' sliced in 4 (workflow job 42).
SLICE_VARS = ('{"awx_job_id": 43, "awx_job_launch_type": "workflow", "awx_workflow_job_id": 42, '
              '"awx_workflow_job_name": "xsa rollout", "awx_job_template_name": "xsa rollout"}')


@pytest.mark.parametrize('playbook', ['plan.yml', 'rolling_livepatch.yml', 'reboot_fallback.yml'])
def test_one_slice_of_a_sliced_awx_job_is_refused_before_any_host_is_contacted(playbook, tmp_path):
    (tmp_path / 'hosts.ini').write_text(INVENTORY)
    manifest = tmp_path / 'xsa-999.yml'
    manifest.write_text(MANIFEST)
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_RETRY_FILES_ENABLED='False', ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'))
    done = subprocess.run(
        [PLAYBOOK_BIN, '-i', str(tmp_path / 'hosts.ini'), os.path.join(REPO, 'playbooks', playbook),
         '-e', '{"noreboot_xen_advisories": ["%s"], "noreboot_xen_reboot_ok": false}' % manifest, '-e', SLICE_VARS],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    out = done.stdout.decode('utf-8', 'replace')
    assert done.returncode != 0, out
    assert ('noreboot.xen refuses to run as one slice of a sliced AWX job: this job (id 43) was launched by workflow '
            "job 42, which has the name of its own job template ('xsa rollout')") in out, out
    assert 'livepatches[0].sha256' not in out, 'the slice check comes first'
    assert 'UNREACHABLE' not in out and '192.0.2.' not in out, 'a host was contacted before the slice check:\n' + out
