# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lab of a test's own spec, brought up for a module fixture and always taken down.

Import it after choosing the lab instance (NOREBOOT_XEN_LAB_INSTANCE): it imports labctl.
"""

from __future__ import absolute_import, division, print_function

import contextlib
import os

import labctl


@contextlib.contextmanager
def lab_up(workdir, spec=None, spec_path=None):
    """Brings up the lab of ``spec`` (the fleet spec's YAML text, written to ``workdir``/spec.yml) or of
    the spec file ``spec_path`` (e.g. tests/lab/fleets/small.yml) with its inventory in ``workdir``, yields
    ``{workdir, inventory}``, and takes the lab down whatever happened, a lab that came up only in part
    included. Refuses, touching nothing, while a lab of this instance is up."""
    if (spec is None) == (spec_path is None):
        raise ValueError('lab_up: give the spec text or spec_path, not both or neither')
    if labctl.leftovers_exist():
        raise RuntimeError('a lab is already up as %s: run `NOREBOOT_XEN_LAB_INSTANCE=%d python3 tests/lab/labctl.py '
                           'down` first (or wait for whoever is using it)' % (labctl.LAB_ROOT, labctl.INSTANCE))
    if spec_path is None:
        spec_path = os.path.join(workdir, 'spec.yml')
        with open(spec_path, 'w') as handle:
            handle.write(spec)
    inventory = os.path.join(workdir, 'inventory.yml')
    try:
        if labctl.main(['up', '--spec', spec_path, '--inventory', inventory]) != 0:
            raise RuntimeError('the lab did not come up (spec %s)' % spec_path)
        yield dict(workdir=workdir, inventory=inventory)
    finally:
        labctl.main(['down'])
