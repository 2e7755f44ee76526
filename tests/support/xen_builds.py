# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real Xen builds the tests speak of, said once: Debian 12's xen-hypervisor-4.17 4.17.5 and
4.17.7, as captured on real hypervisors (tests/fixtures/xen-4.17.5/, tests/fixtures/xen-4.17.7/).

tests/unit/test_xen_builds.py checks these against the captured ``xl info`` and the lab
simulator's own copy (tests/lab/simulator/lab_model.py keeps one: lab hosts see only the
simulator's directory).
"""

XEN_4175 = '39a640e6f1412319235087391df9f1c5e13ae920'
XEN_4177 = '151b373fd64b321593bf987fd923cd10dabadac4'

# version -> build-id
BUILD_IDS = {'4.17.5': XEN_4175, '4.17.7': XEN_4177}

# Debian 13's xen-hypervisor-4.20 4.20.4+63 (tests/fixtures/xen-4.20.4/, captured on the opt-in 4.20
# testbed). Apart from BUILD_IDS: the testbed builds its images and payloads only on request
# (tests/testbed/xen-4.20-differences.md), and the real-image tests read BUILD_IDS. It reports
# itself as 4.20.5-pre (upstream's stable branch after RELEASE-4.20.4).
XEN_4204 = '576c0736b3e38388c5afe9aaccc43a18d514e88e'
DEBIAN13_BUILD_IDS = {'4.20.4': XEN_4204}
REPORTED_VERSION = {'4.20.4': '4.20.5-pre'}

# No real capture: a made-up build-id of a third build (4.17.6) the plan and manifest tests need.
XEN_4176 = '5d4f0e9c03a84c3b4a9c6e2f7a1b8c9d0e1f2a3b'
