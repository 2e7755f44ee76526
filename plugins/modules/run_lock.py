#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: run_lock
short_description: Claim inventory hosts for one rollout run on the controller, refusing hosts another run holds
version_added: 1.1.0
description:
  - Runs on the controller (V(localhost)). Keeps one record per running rollout in O(directory)
    (C(<run_id>.json)) with the hosts it works on and the C(ansible-playbook) process running it.
  - O(state=present) claims O(hosts) for O(run_id). When a live run holds some of them the task fails, naming
    that run, its process and its hosts, unless O(skip_held) is true; then those hosts are left to it and
    RV(hosts) lists the ones this run may roll out.
  - A record whose C(ansible-playbook) process is gone (pid missing, reused by a later process, or another boot)
    is stale and removed. A record whose process could not be identified counts as live until its file is removed.
  - The check and the write happen under C(flock) of C(<directory>/.guard), so two runs started at once cannot
    both claim a host.
  - O(state=absent) removes the run's record (at the end of the run).
options:
  hosts:
    description: Inventory hosts the run wants to roll out (with O(state=present)).
    type: list
    elements: str
    default: []
  state:
    description: V(present) claims the hosts, V(absent) releases the run's record.
    type: str
    choices: [present, absent]
    default: present
  skip_held:
    description: Leave hosts a live run holds to it instead of failing.
    type: bool
    default: false
  host_locks:
    description:
      - Hosts whose own rollout lock (C(<state_dir>/rollout.lock)) another run's transaction holds now, mapped to
        C(run_id), C(pid) and C(time) as the host's lock file records them (detection's
        C(ansible_facts.xen.livepatch.rollout_lock), through the filter P(noreboot.xen.rollout_host_locks#filter)).
      - They are held like the hosts of a live record in O(directory), so that a run driven from another controller
        (or another O(directory)) is seen too; the failure names the run and its process on the host.
    type: dict
    default: {}
    version_added: 1.1.0
  directory:
    description: Where the run records are kept on the controller (created with mode 0700).
    type: path
    default: ~/.cache/noreboot-xen/runs
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - noreboot.xen.run_id
attributes:
  check_mode:
    support: full
    details: Reports and refuses held hosts as usual but writes and removes no record.
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - noreboot.xen developers (@noreboot)
"""

EXAMPLES = r"""
- name: Claim the inventory's hosts for this run
  noreboot.xen.run_lock:
    run_id: 20261127T2300Z-ab12
    hosts: "{{ query('ansible.builtin.inventory_hostnames', 'all') }}"
    skip_held: false
  register: run_lock

- name: Release them at the end
  noreboot.xen.run_lock:
    run_id: 20261127T2300Z-ab12
    state: absent
"""

RETURN = r"""
hosts:
  description: The hosts this run may roll out (O(hosts) without those another run holds).
  returned: with state=present
  type: list
  elements: str
  sample: [xen01, xen03]
held:
  description: Hosts another live run holds, mapped to its run id (left out of RV(hosts) with O(skip_held)).
  returned: always
  type: dict
  sample: {xen02: 20261127T2250Z-0f0f}
stale_removed:
  description: Run ids whose records were removed because their process is gone.
  returned: with state=present
  type: list
  elements: str
msg:
  description: What happened, naming the run that holds hosts when the task fails.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.noreboot.xen.plugins.module_utils.controller_run_lock import (
    RunHeld,
    RunLocks,
    controller_owner,
)


def get_argument_spec():
    return dict(
        run_id=dict(type='str', required=True),
        hosts=dict(type='list', elements='str', default=[]),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        skip_held=dict(type='bool', default=False),
        directory=dict(type='path', default='~/.cache/noreboot-xen/runs'),
        host_locks=dict(type='dict', default={}),
    )


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    params = module.params
    if not params['run_id'] or '/' in params['run_id'] or params['run_id'].startswith('.'):
        module.fail_json(msg='run_id %r is not usable as a record name (empty, has a slash or starts with a dot)'
                         % params['run_id'], held={})
    locks = RunLocks(params['directory'])
    if params['state'] == 'absent':
        removed = False if module.check_mode else locks.release(params['run_id'])
        module.exit_json(changed=removed, held={}, msg='run %s released its hosts' % params['run_id'])
    try:
        claimed = locks.claim(params['run_id'], params['hosts'], controller_owner(), skip_held=params['skip_held'],
                              check_mode=module.check_mode, host_locks=params['host_locks'])
    except RunHeld as exc:
        module.fail_json(msg=exc.msg, held=exc.held)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot use the run records in %s: %s' % (params['directory'], exc), held={})
    msg = 'run %s holds %d host(s)' % (params['run_id'], len(claimed['hosts']))
    if claimed['held']:
        msg += '; left to other runs: %s' % ', '.join('%s (run %s)' % item for item in sorted(claimed['held'].items()))
    module.exit_json(changed=not module.check_mode, msg=msg, **claimed)


if __name__ == '__main__':
    main()
