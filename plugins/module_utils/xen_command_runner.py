# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One small runner per Xen tool (``xl``, ``xen-livepatch``).

Commands are argv lists only (never shell strings), always run with ``LC_ALL=C`` so the
output the parsers read does not depend on the host's locale. The runner does not decide
what an exit status means; callers do, from the parsed output. Every call is recorded in
``history`` so modules can return each command they ran.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

LOCALE_ENV = {'LC_ALL': 'C', 'LANG': 'C', 'LANGUAGE': 'C'}


class XenToolError(Exception):
    """A Xen tool failed in a way the caller must report.

    Carries what an operator needs to see: the message, the argv, rc, stdout and stderr.
    """

    def __init__(self, msg, argv=None, rc=None, stdout='', stderr=''):
        super(XenToolError, self).__init__(msg)
        self.msg = msg
        self.argv = list(argv or [])
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def as_result(self):
        return dict(msg=self.msg, cmd=self.argv, rc=self.rc, stdout=self.stdout, stderr=self.stderr)


class ToolNotFound(XenToolError):
    """The tool's binary is not installed on the host."""


class CommandResult(object):
    __slots__ = ('argv', 'rc', 'stdout', 'stderr', 'attempts')

    def __init__(self, argv, rc, stdout, stderr, attempts=1):
        self.argv = list(argv)
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.attempts = attempts

    def as_dict(self):
        return dict(argv=self.argv, rc=self.rc, stdout=self.stdout, stderr=self.stderr, attempts=self.attempts)


def module_command_function(module):
    """Adapt ``AnsibleModule.run_command`` to the runners' ``run(argv) -> (rc, out, err)``."""

    def run(argv):
        return module.run_command(list(argv), check_rc=False, environ_update=dict(LOCALE_ENV))

    return run


class ToolRunner(object):
    """Runs one tool. ``run_function(argv) -> (rc, stdout, stderr)``; ``binary`` is its path."""

    tool = None

    def __init__(self, run_function, binary, sleep=None, history=None):
        if not binary:
            raise ToolNotFound('%s is not installed (not found on PATH)' % self.tool)
        self._run_function = run_function
        self.binary = binary
        self._sleep = sleep if sleep is not None else time.sleep
        # Runners of one module may share a history list, so it keeps the order of all commands.
        self.history = history if history is not None else []

    def run(self, *args):
        argv = [self.binary] + [str(a) for a in args]
        rc, out, err = self._run_function(argv)
        result = CommandResult(argv, rc, out or '', err or '')
        self.history.append(result)
        return result

    def run_with_retries(self, args, retry_if, retries, delay, backoff=2.0):
        """Run ``args``; while ``retry_if(result)`` is true, retry up to ``retries`` times.

        The wait doubles after each attempt (``delay``, ``2*delay``, ...). The returned
        result's ``attempts`` says how many runs it took; only the last run stays in
        ``history``, carrying that count.
        """
        attempts = 0
        wait = float(delay)
        while True:
            result = self.run(*args)
            attempts += 1
            if attempts > 1:
                self.history.pop(-2)
            result.attempts = attempts
            if not retry_if(result) or attempts > retries:
                return result
            self._sleep(wait)
            wait *= backoff


class XlRunner(ToolRunner):
    tool = 'xl'

    def info(self):
        return self.run('info')

    def list_domains(self):
        return self.run('list')

    def dmesg(self):
        return self.run('dmesg')


# xen-livepatch exit status: 0 success, 1 error, 2 retry (EAGAIN/EBUSY: another operation in
# progress, "Operation already in progress.", "Operation didn't complete.", or the CPUs could
# not be quiesced in time).
LIVEPATCH_RC_RETRY = 2


def livepatch_should_retry(result):
    """Retry a xen-livepatch command that exited 2 (never one that could not reach Xen)."""
    return result.rc == LIVEPATCH_RC_RETRY and 'failed to get the handler' not in result.stdout + result.stderr


class LivepatchRunner(ToolRunner):
    """``xen-livepatch``. Mutating commands retry exit status 2 ``retries`` times."""

    tool = 'xen-livepatch'

    def list(self):
        return self.run('list')

    def _mutate(self, args, retries, delay):
        return self.run_with_retries(args, livepatch_should_retry, retries, delay)

    def upload(self, name, path, retries=0, delay=1.0):
        return self._mutate(['upload', name, path], retries, delay)

    def apply(self, name, nodeps=False, retries=0, delay=1.0):
        return self._mutate(['apply', name] + (['--nodeps'] if nodeps else []), retries, delay)

    def revert(self, name, retries=0, delay=1.0):
        return self._mutate(['revert', name], retries, delay)

    def replace(self, name, retries=0, delay=1.0):
        return self._mutate(['replace', name], retries, delay)

    def unload(self, name, retries=0, delay=1.0):
        return self._mutate(['unload', name], retries, delay)
