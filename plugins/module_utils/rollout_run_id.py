# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run id of a rollout: checked before any host is touched (pure Python).

The run id names the run in the ledger and the lock, and the run's staging directory on each
host (``<state_dir>/staging/<run id>``), so it must be a plain file name: 1-64 characters,
letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit (no ``/``, no ``..``,
no spaces or shell characters).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

RUN_ID_MAX = 64
_RUN_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,%d}$' % (RUN_ID_MAX - 1))


def run_id_problem(run_id):
    """None when ``run_id`` is a valid run id, else a sentence naming the problem and the fix."""
    if not isinstance(run_id, str) or not run_id:
        return ('the run id (noreboot_xen_run_id) must be a non-empty string, got %r; leave it unset to get '
                '<UTC time>-<4 hex>' % (run_id,))
    if _RUN_ID_RE.match(run_id) is None:
        return ('the run id (noreboot_xen_run_id) %r is not allowed: use 1-%d characters, letters, digits, ".", "_" '
                'and "-", starting with a letter or digit (it names a directory on every host); leave it unset to '
                'get <UTC time>-<4 hex>' % (run_id, RUN_ID_MAX))
    return None
