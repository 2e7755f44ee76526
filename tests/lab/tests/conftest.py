# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's tests use a lab instance of their own (nrxl7-*, 10.220.0.0/16,
/run/noreboot-xen-lab-7), so they run while a user's lab (instance 0) is up."""

import os

os.environ.setdefault('NOREBOOT_XEN_LAB_INSTANCE', '7')
