# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the reboot fallback's lab tests share: the advisory (a flaw of Debian's Xen 4.17.5 that
only 4.17.7 fixes), a lab of their own spec brought up and always taken down, the fixed build
staged as its package would install it, and one run of playbooks/reboot_fallback.yml over SSH.

Import it after choosing the lab instance (NOREBOOT_XEN_LAB_INSTANCE): it imports labctl.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import time

import labctl
import lab_for_test
import lab_model
# OLD: the lab tests import it from here.
from xen_builds import XEN_4175 as OLD, XEN_4177 as FIXED  # noqa: F401  pylint: disable=unused-import

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PLAYBOOK = os.path.join(REPO, 'playbooks', 'reboot_fallback.yml')
ANSIBLE_PLAYBOOK = os.path.join(REPO, '.venv', 'bin', 'ansible-playbook')
COLLECTIONS = os.path.join(REPO, '.cache', 'collections')

ADVISORY = '''schema: 1
id: %s
title: "lab: a flaw fixed only by Xen 4.17.7 (no live patch for 4.17.5)"
affected:
  hypervisors:
    versions: [">=4.17.0,<4.17.7"]
fallback:
  reboot: true
  fixed_build_ids: [%s]
  packages:
    debian: {package: xen-hypervisor-4.17-amd64, version: "4.17.7+13-g2445b30a44-0+deb12u1"}
'''


def sim_state(host):
    """The simulator's state of a lab host."""
    with open(os.path.join(labctl.LAB_ROOT, 'hosts', host, 'state.json')) as handle:
        return json.load(handle)


def install_fixed(host, default='Debian GNU/Linux, with Xen hypervisor'):
    """The fixed package, installed as dpkg would: next boot's build, /boot image and grub.cfg."""
    labctl.stage_installed_build(host, lab_model.resolve_build('4.17.7'), default=default)


def lab_up(workdir, spec, advisory_id):
    """Generator for a module fixture: brings a lab of ``spec`` up with the advisory written to
    ``workdir``, yields ``{workdir, inventory, advisory, runs}``, and always takes the lab down."""
    advisory = os.path.join(workdir, '%s.yml' % advisory_id.lower())
    with open(advisory, 'w') as handle:
        handle.write(ADVISORY % (advisory_id, FIXED))
    with lab_for_test.lab_up(workdir, spec) as lab:
        yield dict(lab, advisory=advisory, runs=0)


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(HERE, 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
                ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
                ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(labctl.LAB_ROOT, 'cp'))


def run_reboot_fallback(lab, target, extra_vars, more_args=()):
    """One run of playbooks/reboot_fallback.yml on ``target`` (the fixed package staged, not
    installed: reboot_fallback_install_packages false). Returns ``{rc, output, summary, log}``."""
    lab['runs'] += 1
    summary_path = os.path.join(lab['workdir'], 'summary-%d.json' % lab['runs'])
    variables = {'noreboot_xen_advisories': [lab['advisory']], 'noreboot_xen_target': target,
                 'noreboot_xen_summary_path': summary_path, 'reboot_fallback_reboot_timeout': 20,
                 'reboot_fallback_install_packages': False}
    variables.update(extra_vars)
    log = os.path.join(lab['workdir'], 'run-%d.log' % lab['runs'])
    started = time.time()
    with open(log, 'w') as handle:
        rc = subprocess.call([ANSIBLE_PLAYBOOK, '-i', lab['inventory'], PLAYBOOK, '-e', json.dumps(variables)]
                             + list(more_args), cwd=REPO, env=ansible_env(), stdout=handle, stderr=subprocess.STDOUT)
    with open(log) as handle:
        output = handle.read()
    summary = None
    if os.path.exists(summary_path):
        with open(summary_path) as handle:
            summary = json.load(handle)
    print('run %d (%s): rc %d, %.1f s, log %s' % (lab['runs'], target, rc, time.time() - started, log))
    return dict(rc=rc, output=output, summary=summary, log=log)
