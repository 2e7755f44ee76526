# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option name, shared by the modules that act on one live patch payload."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  name:
    description:
      - Name of the payload in the hypervisor, as C(xen-livepatch list) shows it (its ID column).
      - At most 127 bytes (C(xen-livepatch) names are 128 bytes including the terminating NUL); no C(|), no control
        characters, no leading or trailing blanks.
    type: str
    required: true
'''
