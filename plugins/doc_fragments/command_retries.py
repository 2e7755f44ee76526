# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options retries and delay of the modules that run xen-livepatch."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  retries:
    description:
      - How many times to retry a C(xen-livepatch) command that exited with status 2 (busy / retry, EBUSY/EAGAIN).
    type: int
    default: 5
  delay:
    description:
      - Seconds to wait before the first retry; the wait doubles after each attempt.
    type: float
    default: 1.0
'''
