# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every filter of the collection is documented the way ansible-core documents filter plugins written
in Python: a sidecar plugins/filter/<filter name>.yml with DOCUMENTATION, EXAMPLES and RETURN, whose
options are the filter function's keyword parameters (antsibull-docs lint-collection-docs reads them)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import inspect
import os

import pytest
import yaml

FILTER_DIR = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'plugins', 'filter')
MODULES = sorted(name[:-3] for name in os.listdir(FILTER_DIR) if name.endswith('.py') and not name.startswith('_'))


def _filters():
    found = []
    for module_name in MODULES:
        module = importlib.import_module('ansible_collections.noreboot.xen.plugins.filter.%s' % module_name)
        for name, function in sorted(module.FilterModule().filters().items()):
            found.append((name, function))
    return found


FILTERS = _filters()


def test_every_filter_module_is_seen():
    assert {'reboot_wave_gate', 'reboot_fallback_where', 'rollout_gate', 'xen_host_line'} <= set(n for n, _f in FILTERS)


@pytest.mark.parametrize('name,function', FILTERS, ids=[n for n, _f in FILTERS])
def test_filter_has_a_sidecar_documentation(name, function):
    path = os.path.join(FILTER_DIR, '%s.yml' % name)
    assert os.path.isfile(path), 'filter %s has no documentation: write plugins/filter/%s.yml' % (name, name)
    with open(path) as handle:
        doc = yaml.safe_load(handle)
    assert sorted(doc) == ['DOCUMENTATION', 'EXAMPLES', 'RETURN']
    assert doc['DOCUMENTATION']['name'] == name
    assert 'noreboot.xen.%s' % name in doc['EXAMPLES']
    parameters = list(inspect.signature(function).parameters)
    assert sorted(doc['DOCUMENTATION']['options']) == sorted(['_input'] + parameters[1:])
