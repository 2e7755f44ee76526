# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simulated ``xl`` and ``xen-livepatch`` (and a reboot stand-in) for lab hosts.

One program, dispatched on the name it runs as (argv[0]): ``xl``, ``xen-livepatch``, or
``systemctl`` / ``reboot`` / ``shutdown`` / ``halt`` / ``poweroff``. Output, stream (stdout or
stderr), write order and exit status follow the real tools of Xen 4.17 and, for a 4.20 build
(``build['generation']``, lab_model.py), of Xen 4.20 (tools/misc/xen-livepatch.c,
tools/xl/xl_info.c) and the hypervisor's checks (xen/common/livepatch.c);
tests/lab/tests/test_simulator_contract.py replays real transcripts of both.

State: one JSON file per host (``NOREBOOT_XEN_LAB_STATE``, default
``/var/lib/noreboot-xen-lab/state.json``, a per-host directory bind-mounted there), guarded
by an exclusive lock so concurrent calls see a consistent hypervisor.

Made of: xensim_state.py (the state file and its shared readers), xensim_faults.py (lab
faults), xensim_hypervisor.py (the hypercalls), xensim_xen_livepatch.py and xensim_xl.py (the
tools' commands), xensim_power.py (reboot and the power commands), xensim_output.py (writes).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# boot: labctl power-cycle and the tests call xensim.boot.
from xensim_power import boot, power_main  # noqa: E402,F401  pylint: disable=unused-import
from xensim_state import DEFAULT_STATE, HostState  # noqa: E402
from xensim_xen_livepatch import xen_livepatch_main  # noqa: E402
from xensim_xl import xl_main  # noqa: E402


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    prog = os.path.basename(argv[0])
    if prog in ('xensim.py', 'xensim') and len(argv) > 1:
        argv = argv[1:]
        prog = os.path.basename(argv[0])
    os.environ['LC_ALL'] = 'C'
    state_path = os.environ.get('NOREBOOT_XEN_LAB_STATE') or DEFAULT_STATE
    if prog == 'xl':
        return xl_main(argv, lambda: HostState(state_path))
    if prog == 'xen-livepatch':
        return xen_livepatch_main(argv, lambda: HostState(state_path))
    if prog in ('systemctl', 'reboot', 'shutdown', 'halt', 'poweroff'):
        return power_main(argv, os.path.dirname(state_path))
    sys.stderr.write('xensim: run as xl, xen-livepatch, systemctl, reboot, shutdown, halt or poweroff, not %r\n' % prog)
    return 64


if __name__ == '__main__':
    sys.exit(main())
