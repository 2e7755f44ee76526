# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which fixed hypervisor packages the reboot fallback installs on a host (pure Python; the filter
fixed_packages).

An advisory's ``fallback.packages`` maps a distribution (``debian``, ``ubuntu``, ``rhel``, ...) or an
OS family (``debian``, ``redhat``) to a list of ``{package, version}``. A host takes the entry of its
distribution, else that of its OS family (names compared in lower case).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _unique(items):
    found = []
    for item in items:
        if item not in found:
            found.append(item)
    return found


def choose(packages, distribution, os_family):
    """``{'distribution', 'names', 'pairs'}`` for a host: the key of ``packages`` it takes (its OS
    family in lower case when neither it nor its distribution has an entry), the package names,
    and the distinct ``[package, version]`` pairs, in the advisory's order. More pairs than names
    means the advisories disagree on a version; no pair means no fixed package for this host."""
    packages = packages if isinstance(packages, dict) else {}
    distribution = str(distribution or '').lower()
    family = str(os_family or '').lower()
    key = distribution if distribution in packages else family
    specs = [spec for spec in packages.get(key) or [] if isinstance(spec, dict)]
    return dict(distribution=key,
                names=_unique([spec.get('package') for spec in specs]),
                pairs=_unique([[spec.get('package'), str(spec.get('version'))] for spec in specs]))
