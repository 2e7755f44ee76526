# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option run_id, shared by the modules that record which rollout run acted."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  run_id:
    description:
      - Id of the rollout run, the same for every module of one run (the playbooks pass C(noreboot_xen_run_id),
        checked by the filter P(noreboot.xen.rollout_run_id#filter) before any host is touched).
      - Where the module records it (lock, ledger, fact, run record) is in the module's description.
    type: str
    required: true
'''
