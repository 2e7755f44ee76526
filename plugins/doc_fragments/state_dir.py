# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option state_dir, shared by the modules that read or write the host's state directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  state_dir:
    description:
      - The host's state directory of this collection, the same for every module that uses it.
      - It holds the rollout lock C(rollout.lock) and the ledger C(ledger.jsonl) of M(noreboot.xen.livepatch_rollout),
        and the guest manifest C(guests.json) of M(noreboot.xen.xen_guests).
      - What a module reads or writes there, and whether it creates the directory, is in the module's description.
    type: path
    default: /var/lib/noreboot-xen
'''
