# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run id of a rollout: checked before any host is touched (pure Python).

The run id names the run in the ledger and the lock, and the run's staging directory on each
host (``<state_dir>/staging/<run id>``), so it must be a plain file name: 1-64 characters,
letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit (no ``/``, no ``..``,
no spaces or shell characters).

A run started by AWX / Ansible Automation Platform (extra vars ``awx_job_id`` / ``tower_job_id``,
which AWX sets on every job) carries the job id in its run id, so a host's ledger names the AWX
job that changed it: ``<UTC time>-awx<job id>`` when no run id is given (a given run id is used as
given).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
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


_JOB_ID_RE = re.compile(r'^[0-9]{1,18}$')
STAMP_FORMAT = '%Y%m%dT%H%M%SZ'


def _job_id(name, value):
    """The job id as a string of digits, None when absent; anything else raises ValueError."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not _JOB_ID_RE.match(str(value).strip()):
        raise ValueError('%s must be the number of the AWX job that runs this playbook (AWX sets it), got %r'
                         % (name, value))
    return str(int(str(value).strip()))


def job_id_of(awx_job_id=None, tower_job_id=None):
    """The AWX job id from the extra vars AWX sets (both, same value), None outside AWX.

    Raises ValueError when one is not a job number or the two disagree.
    """
    awx = _job_id('awx_job_id', awx_job_id)
    tower = _job_id('tower_job_id', tower_job_id)
    if awx is not None and tower is not None and awx != tower:
        raise ValueError('awx_job_id (%s) and tower_job_id (%s) disagree; AWX sets both to the id of the job: '
                         'pass neither on the command line' % (awx, tower))
    return awx if awx is not None else tower


def choose_run_id(given=None, job_id=None, now=None, token=None):
    """The run id of a run: ``given`` when set (checked, used as given), else a new one:
    ``<UTC time>-<4 hex>``, or ``<UTC time>-awx<job id>`` with an AWX ``job_id`` (from ``job_id_of``).

    A given run id is not extended with the job id: it arrives as an extra var, which no playbook
    variable can override, so the run would use it unchanged anyway. ``now`` (a datetime, naive
    means UTC) and ``token`` (4 hex) are for tests; by default the current UTC time and 2 random
    bytes. Raises ValueError naming the problem when the given run id is not valid.
    """
    if isinstance(given, int) and not isinstance(given, bool):
        given = str(given)  # -e '{"noreboot_xen_run_id": 7}'
    if given is not None and not isinstance(given, str):
        raise ValueError(run_id_problem(given))
    if given and given.strip():
        problem = run_id_problem(given.strip())
        if problem:
            raise ValueError(problem)
        return given.strip()
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    elif now.tzinfo is not None:
        now = now.astimezone(datetime.timezone.utc)
    if token is None:
        token = '%04x' % int.from_bytes(os.urandom(2), 'big')
    return '%s-%s' % (now.strftime(STAMP_FORMAT), 'awx%s' % job_id if job_id is not None else token)
