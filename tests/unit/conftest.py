"""Unit tests on every ansible-core of the tested matrix (README, `make core-matrix`).

The module tests pass their arguments with ``ansible.module_utils.testing.patch_module_args``,
which ansible-core has from 2.19 on. On an older core this supplies the same context manager
(the arguments as the JSON ``AnsibleModule`` reads from ``basic._ANSIBLE_ARGS``), so the same
test files run unchanged on every core.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import importlib.util
import json
import sys
import types
from unittest import mock

if importlib.util.find_spec('ansible.module_utils.testing') is None:
    from ansible.module_utils import basic as _basic

    @contextlib.contextmanager
    def patch_module_args(args=None):
        """Expose ``args`` to AnsibleModule instances created within this context."""
        if not isinstance(args, (dict, type(None))):
            raise TypeError('The `args` arg must be a dict or None.')
        payload = json.dumps({'ANSIBLE_MODULE_ARGS': args or {}}).encode()
        with mock.patch.object(_basic, '_ANSIBLE_ARGS', payload):
            yield

    _testing = types.ModuleType('ansible.module_utils.testing')
    _testing.patch_module_args = patch_module_args
    sys.modules['ansible.module_utils.testing'] = _testing
