# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that render the HTML reports (controller side): the run report of rolling_livepatch.yml and
reboot_fallback.yml, and the fleet's patch state of inventory_report.yml. The logic is in
plugins/plugin_utils/run_report_html.py; these filters fill in who ran it and when.

Documentation: run_report_html.yml, fleet_report_html.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import getpass
import os
import socket

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.release import __version__ as ANSIBLE_VERSION

from ansible_collections.noreboot.xen.plugins.plugin_utils import run_report_html as rh


def _plain(value):
    """Ansible's lazy containers and unsafe strings as plain dicts, lists and str."""
    if isinstance(value, dict) or hasattr(value, 'items'):
        return dict((to_text(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return to_text(value)
    if isinstance(value, str):
        return to_text(value)
    return value


def _ran_by(ran_by):
    """Who and what ran it: the operator's values first, then the controller's user, host and ansible-core."""
    try:
        user = getpass.getuser()
    except Exception:  # pylint: disable=broad-except
        user = str(os.getuid()) if hasattr(os, 'getuid') else 'unknown'
    found = {'controller user': user, 'controller host': socket.gethostname(), 'ansible-core': ANSIBLE_VERSION}
    for key, value in (_plain(ran_by) or {}).items():
        if value not in (None, ''):
            found[key] = value
    return found


def _now(generated):
    if generated:
        return to_text(generated)
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')


def run_report_html(summary, plan=None, wave_times=None, started=None, ran_by=None, title=None, generated=None):
    """The run report as one self-contained HTML document; see run_report_html.run_report."""
    try:
        return rh.run_report(_plain(summary), plan=_plain(plan), wave_times=_plain(wave_times),
                             started=None if started in (None, '') else float(started), ran_by=_ran_by(ran_by),
                             title=title, generated=_now(generated))
    except (ValueError, TypeError, KeyError) as exc:
        raise AnsibleFilterError('run_report_html: %s' % exc)


def fleet_report_html(fleet, plan=None, ran_by=None, title=None, generated=None):
    """The fleet's patch state as one self-contained HTML document; see run_report_html.fleet_report."""
    try:
        return rh.fleet_report(_plain(fleet), plan=_plain(plan) or None, ran_by=_ran_by(ran_by), title=title,
                               generated=_now(generated))
    except (ValueError, TypeError, KeyError) as exc:
        raise AnsibleFilterError('fleet_report_html: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {
            'run_report_html': run_report_html,
            'fleet_report_html': fleet_report_html,
        }
