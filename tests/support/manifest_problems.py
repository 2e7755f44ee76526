# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The problems advisory_manifest.validate_manifest (its one entry point) finds in a manifest, as a list."""

from ansible_collections.noreboot.xen.plugins.module_utils import advisory_manifest as am


def manifest_problems(data, file, **kwargs):
    """The ManifestProblem list of ``validate_manifest(data, file, **kwargs)``; [] when it is valid."""
    try:
        am.validate_manifest(data, file, **kwargs)
    except am.AdvisoryManifestError as exc:
        return exc.problems
    return []
