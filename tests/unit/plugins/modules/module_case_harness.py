# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the module tests written as data share: loading the cases, catching a module's
exit_json / fail_json, and comparing a result with the subset a case expects."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml


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
