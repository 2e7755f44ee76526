# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of noreboot.xen.livepatch_rollout: sends the verified controller copy of the payload
(``payload_src``) in the module's arguments, so staging, the transaction and the local fact are one
module execution on the host (one SSH round trip with pipelining).

The bytes are read once on the controller (plugins/plugin_utils/controller_payload.py: no symlink, a
regular file nobody else can write, SHA-256 equal to ``checksum``) and those bytes, base64, are the
module's ``content`` (no_log); the module hashes them again on the host under the lock before Xen gets
them. Without ``payload_src`` the module runs as it is (``src``: a file already on the host).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

from ansible.plugins.action import ActionBase

from ansible_collections.noreboot.xen.plugins.plugin_utils.controller_payload import (
    PayloadRefused,
    read_verified_payload,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        payload_src = args.pop('payload_src', None)
        if payload_src is not None:
            if args.get('src') is not None or args.get('content') is not None:
                result.update(failed=True, outcome='failed', failed_checks=['preconditions'], checks=[],
                              msg='give payload_src (a file on the controller) or src (a file on the host), not both')
                return result
            try:
                data = read_verified_payload(payload_src, args.get('checksum'))
            except PayloadRefused as exc:
                result.update(failed=True, outcome='failed', failed_checks=['preconditions'], checks=[], msg=exc.msg)
                return result
            args['content'] = base64.b64encode(data).decode('ascii')
        result.update(self._execute_module(module_name='noreboot.xen.livepatch_rollout', module_args=args,
                                           task_vars=task_vars))
        return result
