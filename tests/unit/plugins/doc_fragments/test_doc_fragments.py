# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options several modules share are documented once, in a doc fragment, and each module that
extends it takes the option as the fragment documents it (type, default, required)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os

import pytest
import yaml

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'plugins')
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(PLUGINS, 'modules')) if name.endswith('.py'))
FRAGMENTS = sorted(name[:-3] for name in os.listdir(os.path.join(PLUGINS, 'doc_fragments')) if name.endswith('.py'))


def module(name):
    return importlib.import_module('ansible_collections.noreboot.xen.plugins.modules.%s' % name)


def fragment_options(name):
    fragment = importlib.import_module('ansible_collections.noreboot.xen.plugins.doc_fragments.%s' % name)
    return yaml.safe_load(fragment.ModuleDocFragment.DOCUMENTATION)['options']


def own_fragments(doc):
    prefix = 'noreboot.xen.'
    return [f[len(prefix):] for f in doc.get('extends_documentation_fragment') or [] if f.startswith(prefix)]


def test_each_fragment_is_used_by_more_than_one_module():
    users = dict((name, []) for name in FRAGMENTS)
    for name in MODULES:
        for fragment in own_fragments(yaml.safe_load(module(name).DOCUMENTATION)):
            users[fragment].append(name)
    assert {'state_dir', 'command_retries', 'run_id', 'payload_name'} <= set(users)
    for fragment, modules in users.items():
        assert len(modules) > 1, 'fragment %s is used by %s only' % (fragment, modules)


@pytest.mark.parametrize('name', MODULES)
def test_shared_options_are_not_documented_again_and_match_the_argument_spec(name):
    plugin = module(name)
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    shared = {}
    for fragment in own_fragments(doc):
        shared.update(fragment_options(fragment))
    spec = plugin.get_argument_spec() if hasattr(plugin, 'get_argument_spec') else {}
    for option, documented in shared.items():
        assert option not in (doc.get('options') or {}), '%s documents %s again' % (name, option)
        assert option in spec, '%s: no get_argument_spec() entry for %s' % (name, option)
        assert spec[option].get('type') == documented['type']
        assert spec[option].get('default') == documented.get('default')
        assert bool(spec[option].get('required')) == bool(documented.get('required')), '%s: %s required?' % (name, option)
    # No module takes a shared option without the fragment that documents it.
    for fragment in FRAGMENTS:
        for option in fragment_options(fragment):
            if option in spec and option not in (doc.get('options') or {}):
                assert fragment in own_fragments(doc), '%s takes %s without noreboot.xen.%s' % (name, option, fragment)
