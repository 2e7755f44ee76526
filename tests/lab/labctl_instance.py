# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names, addresses and paths of one lab instance, and the error labctl reports.

Several labs can live side by side (e.g. the lab's own tests while a user's lab is up):
instance 0 (the default) is nrxl-* / 10.213.0.0/16 / /run/noreboot-xen-lab, instance N is
nrxlN-* / 10.(213+N).0.0/16 / /run/noreboot-xen-lab-N. Set NOREBOOT_XEN_LAB_INSTANCE.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))

INSTANCE = int(os.environ.get('NOREBOOT_XEN_LAB_INSTANCE', '0') or 0)
if not 0 <= INSTANCE <= 40:
    raise SystemExit('labctl: NOREBOOT_XEN_LAB_INSTANCE must be 0..40')
PREFIX = 'nrxl%s' % (INSTANCE or '')
NS_PREFIX = PREFIX + '-'
VETH_PREFIX = PREFIX + 'v'
BRIDGE = PREFIX + '-br0'
LAB_ROOT = '/run/noreboot-xen-lab' + ('-%d' % INSTANCE if INSTANCE else '')
SUBNET_OCTET = 213 + INSTANCE
BRIDGE_ADDR = '10.%d.0.1' % SUBNET_OCTET
PREFIXLEN = 16
HOST_DIR_IN_NS = '/var/lib/noreboot-xen-lab'
# The checkout's tests/ directory, bind-mounted here in every host: the checkout itself may sit
# under /tmp or /root, which each host covers with a tmpfs of its own. The simulator runs from
# it and reads the captured output from tests/fixtures/ (their one home) beside it.
TESTS_DIR = os.path.dirname(HERE)
TESTS_DIR_IN_NS = '/var/lib/noreboot-xen-lab-tests'
SIM_DIR = os.path.join(HERE, 'simulator')
SIM_DIR_IN_NS = os.path.join(TESTS_DIR_IN_NS, os.path.relpath(SIM_DIR, TESTS_DIR))
INVENTORY_MARKER = '# Written by noreboot.xen tests/lab/labctl.py'
OVERLAYS = ('/etc', '/var', '/usr', '/opt', '/srv', '/boot')
TMPFS = (('/tmp', 'mode=1777'), ('/root', 'mode=0700'))
POWER_TOOLS = ('/usr/bin/systemctl', '/usr/sbin/reboot', '/usr/sbin/shutdown', '/usr/sbin/halt', '/usr/sbin/poweroff')
XEN_TOOLS = ('/usr/sbin/xl', '/usr/sbin/xen-livepatch')


class LabError(Exception):
    """Something the operator must fix; the message names the problem and the fix."""
