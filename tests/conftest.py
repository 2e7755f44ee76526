# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every test under tests/ imports by name, without a ``sys.path`` line of its own: the
shared test code (tests/support: payload forge, build constants, signing, report reader), the
lab's code (tests/lab: labctl, lab_payloads, ...) and its simulator (tests/lab/simulator).

Only paths: nothing is imported here (lab tests choose their lab instance before importing labctl).
A test's own directory is on the path already (pytest's default import mode).
"""

import os
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.join(TESTS, 'support'), os.path.join(TESTS, 'lab'), os.path.join(TESTS, 'lab', 'simulator')):
    if _path not in sys.path:
        sys.path.insert(0, _path)
