# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one harness of the module tests: run a module's ``main()`` with its arguments and the command
seam answered by the test (``run_module``: the result it passed to exit_json / fail_json;
``run_module_printed``: the JSON it printed through its own exit path, with its warnings, and its exit
status), load the cases of a module test written as data, and compare a result with the subset a case
expects. Works on every ansible-core of the tested matrix (tests/unit/conftest.py supplies
``patch_module_args`` on the cores before 2.19).

One harness call per module case::

    result = run_module(livepatch_module.main, args, answer=answer, binaries=BINARIES, sleeps=sleeps)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os
from unittest import mock

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ExitJson(Exception):
    """exit_json was called; args[0] is the result."""


class FailJson(Exception):
    """fail_json was called; args[0] is the result (with msg and failed: true)."""


def exit_json(self, **kwargs):  # pylint: disable=unused-argument
    raise ExitJson(kwargs)


def fail_json(self, msg, **kwargs):  # pylint: disable=unused-argument
    kwargs['msg'] = msg
    kwargs['failed'] = True
    raise FailJson(kwargs)


# ``answer=REAL_COMMANDS``: the module runs the controller's real tools (gpg, minisign).
REAL_COMMANDS = 'real commands'


@contextlib.contextmanager
def _module_seams(args, answer=None, binaries=None, sleeps=None):
    """The module's arguments; ``run_command`` answered by ``answer(argv, environ_update)`` -> (rc, stdout, stderr)
    (None: any command fails the test; REAL_COMMANDS: not replaced); ``get_bin_path`` from ``binaries`` (a mapping, or a function called like
    get_bin_path; None: not replaced); ``time.sleep`` appending to ``sleeps`` (no real sleep)."""
    def run_command(self, argv, check_rc=False, environ_update=None, **kwargs):  # pylint: disable=unused-argument
        if answer is None:
            raise AssertionError('the module must run no command, it ran %r' % (argv,))
        assert not check_rc, 'the command seam decides on the exit status itself (check_rc=False)'
        return answer(argv, environ_update)

    def get_bin_path(self, arg, required=False, opt_dirs=None):  # pylint: disable=unused-argument
        if callable(binaries):
            return binaries(arg, required=required, opt_dirs=opt_dirs)
        return dict(binaries).get(arg)

    slept = sleeps if sleeps is not None else []
    with contextlib.ExitStack() as stack:
        stack.enter_context(patch_module_args(args))
        if answer is not REAL_COMMANDS:
            stack.enter_context(mock.patch.object(basic.AnsibleModule, 'run_command', run_command))
        if binaries is not None:
            stack.enter_context(mock.patch.object(basic.AnsibleModule, 'get_bin_path', get_bin_path))
        stack.enter_context(mock.patch('time.sleep', slept.append))
        yield


def run_module(main, args, answer=None, binaries=None, sleeps=None):
    """Run ``main`` with ``args`` (see _module_seams); return what it passed to exit_json, or to fail_json
    (then with ``msg`` and ``failed: True``)."""
    with _module_seams(args, answer, binaries, sleeps), \
            mock.patch.object(basic.AnsibleModule, 'exit_json', exit_json), \
            mock.patch.object(basic.AnsibleModule, 'fail_json', fail_json):
        with pytest.raises((ExitJson, FailJson)) as outcome:
            main()
    return outcome.value.args[0]


def run_module_printed(main, args, capsys, answer=None, binaries=None, sleeps=None):
    """Run ``main`` with ``args`` through the module's own exit_json / fail_json; return ``(exit status, result)``,
    the result as the JSON it printed (warnings and all, as Ansible reads it)."""
    capsys.readouterr()
    with _module_seams(args, answer, binaries, sleeps):
        with pytest.raises(SystemExit) as exited:
            main()
    return exited.value.code, json.loads(capsys.readouterr().out)


def load_cases(directory, filename):
    """The cases of a YAML file: every mapping in the top-level list that has an ``id``."""
    with open(os.path.join(directory, filename)) as handle:
        return [c for c in yaml.safe_load(handle) if isinstance(c, dict) and 'id' in c]


def assert_subset(expected, actual, where='result', lists_equal=False):
    """Every key of ``expected`` is in ``actual`` with the same value, recursively.

    Lists are compared element by element (same length, each element a subset), or, with
    ``lists_equal``, as wholes.
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict), '%s: expected a dict, got %r' % (where, actual)
        for key, value in expected.items():
            assert key in actual, '%s: no key %r in %r' % (where, key, sorted(actual))
            assert_subset(value, actual[key], '%s.%s' % (where, key), lists_equal)
    elif isinstance(expected, list) and not lists_equal:
        assert isinstance(actual, list) and len(actual) == len(expected), '%s: expected %r, got %r' % (
            where, expected, actual)
        for index, (want, got) in enumerate(zip(expected, actual)):
            assert_subset(want, got, '%s[%d]' % (where, index), lists_equal)
    else:
        assert actual == expected, '%s: expected %r, got %r' % (where, expected, actual)


class ExpectedCommands(object):
    """The commands a case expects, in order; ``take`` checks the next one against what ran.

    Every command must run with LC_ALL=C, as an argv list, and be exactly the next expected one
    (the step's first word mapped to its binary through ``binaries``); ``assert_all_ran`` fails
    on a command left unrun. ``ran`` lists every argv that ran.
    """

    def __init__(self, steps, binaries):
        self.pending = list(steps)
        self.binaries = binaries
        self.ran = []

    def take(self, argv, environ_update):
        assert environ_update and environ_update.get('LC_ALL') == 'C', 'commands must run with LC_ALL=C'
        assert isinstance(argv, list), 'argv must be a list, never a shell string'
        self.ran.append(list(argv))
        assert self.pending, 'unexpected extra command %r' % (argv,)
        step = self.pending.pop(0)
        want = [self.binaries(step['argv'][0])] + step['argv'][1:]
        assert argv == want, 'command %d: expected %r, ran %r' % (len(self.ran), want, argv)
        return step

    def assert_all_ran(self):
        assert not self.pending, 'commands never run: %r' % ([c['argv'] for c in self.pending],)
