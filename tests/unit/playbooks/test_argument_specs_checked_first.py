# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each playbook checks its variables against its entry of playbooks/vars/argument_specs.yml first, before any host is
contacted (the hosts of the inventory cannot be reached: TEST-NET-1 addresses, one second connect timeout)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

from core_messages import plain_types

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
INVENTORY = "[xen]\nxen01 ansible_host=192.0.2.1 ansible_ssh_common_args='-o ConnectTimeout=1 -o BatchMode=yes'\n"


@pytest.mark.parametrize('playbook', ['inventory_report', 'plan', 'rolling_livepatch', 'reboot_fallback'])
def test_a_mapping_where_a_list_of_manifests_belongs_is_refused_first(playbook, tmp_path):
    (tmp_path / 'hosts.ini').write_text(INVENTORY)
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_RETRY_FILES_ENABLED='False', ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'))
    done = subprocess.run(
        [PLAYBOOK_BIN, '-i', str(tmp_path / 'hosts.ini'), os.path.join(REPO, 'playbooks', playbook + '.yml'),
         '-e', '{"noreboot_xen_advisories": {"xsa-999": "/srv/advisories/xsa-999/xsa-999.yml"}}'],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    out = done.stdout.decode('utf-8', 'replace')
    assert done.returncode != 0, out
    assert 'Validation of arguments failed:' in out, out
    assert "argument 'noreboot_xen_advisories' is of type dict and we were unable to convert to list" in plain_types(out), out
    assert '"validate_args_context": {"playbook": "noreboot.xen.%s"}' % playbook in out, out
    assert 'UNREACHABLE' not in out and '192.0.2.' not in out, 'a host was contacted before the check:\n' + out
