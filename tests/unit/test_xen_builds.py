# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build constants the tests share (tests/support/xen_builds.py) are the captured builds'."""

import os
import re

import lab_model
import pytest
import xen_builds

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures')


ALL_BUILD_IDS = dict(xen_builds.BUILD_IDS, **xen_builds.DEBIAN13_BUILD_IDS)


@pytest.mark.parametrize('version', sorted(ALL_BUILD_IDS))
def test_each_build_id_is_the_one_xl_info_printed_on_the_real_build(version):
    with open(os.path.join(FIXTURES, 'xen-' + version, 'xl_info.txt')) as handle:
        info = dict(re.match(r'(\S+)\s*: ?(.*)$', line).groups() for line in handle.read().splitlines())
    assert info['xen_version'] == xen_builds.REPORTED_VERSION.get(version, version)
    assert info['build_id'] == ALL_BUILD_IDS[version]


def test_the_lab_simulator_knows_the_same_builds():
    assert dict((v, b['build_id']) for v, b in lab_model.KNOWN_BUILDS.items()) == ALL_BUILD_IDS


def test_the_lab_simulator_reports_what_the_real_build_reported():
    for version, reported in xen_builds.REPORTED_VERSION.items():
        build = lab_model.resolve_build(version)
        assert '%d.%d%s' % (build['major'], build['minor'], build['extra']) == reported
        assert build['generation'] == '4.20'
    assert {lab_model.resolve_build(v)['generation'] for v in xen_builds.BUILD_IDS} == {'4.17'}


def test_the_named_constants_are_the_table_entries():
    assert (xen_builds.XEN_4175, xen_builds.XEN_4177) == (xen_builds.BUILD_IDS['4.17.5'], xen_builds.BUILD_IDS['4.17.7'])
