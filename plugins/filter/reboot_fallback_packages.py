# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter of the reboot fallback's install step: which fixed packages a host gets
(plugins/plugin_utils/fixed_packages.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.noreboot.xen.plugins.plugin_utils import fixed_packages as packages


def fixed_packages(fallback, facts):
    """The fixed packages the reboot fallback installs on a host with these facts (see fixed_packages.choose)."""
    if not isinstance(fallback, dict):
        raise AnsibleFilterError('expected the fallback mapping of the plan decision (with "packages": distribution '
                                 '-> list of package and version), got %r' % type(fallback).__name__)
    facts = facts if isinstance(facts, dict) else {}
    return packages.choose(fallback.get('packages'), facts.get('distribution'), facts.get('os_family'))


class FilterModule(object):
    def filters(self):
        return {
            'fixed_packages': fixed_packages,
        }
