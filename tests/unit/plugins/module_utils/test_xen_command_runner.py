# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""xen_command_runner: the argv each runner method runs, history, retries, the module adapter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import (
    LOCALE_ENV,
    LivepatchRunner,
    ToolNotFound,
    XenToolError,
    XlRunner,
    module_command_function,
)


class FakeRun(object):
    def __init__(self, replies):
        self.replies = list(replies)
        self.argvs = []

    def __call__(self, argv):
        self.argvs.append(list(argv))
        return self.replies.pop(0)


@pytest.mark.parametrize('method, argv', [
    ('info', ['/usr/sbin/xl', 'info']),
    ('list_domains', ['/usr/sbin/xl', 'list']),
    ('dmesg', ['/usr/sbin/xl', 'dmesg']),
])
def test_xl_argv(method, argv):
    run = FakeRun([(0, 'out', 'err')])
    runner = XlRunner(run, '/usr/sbin/xl')
    result = getattr(runner, method)()
    assert run.argvs == [argv]
    assert (result.rc, result.stdout, result.stderr, result.argv) == (0, 'out', 'err', argv)
    assert runner.history == [result]


def test_livepatch_list_argv_and_none_outputs_become_empty_strings():
    run = FakeRun([(1, None, None)])
    result = LivepatchRunner(run, '/usr/sbin/xen-livepatch').list()
    assert run.argvs == [['/usr/sbin/xen-livepatch', 'list']]
    assert (result.stdout, result.stderr) == ('', '')
    assert result.as_dict() == dict(argv=['/usr/sbin/xen-livepatch', 'list'], rc=1, stdout='', stderr='', attempts=1)


def test_arguments_are_strings_in_an_argv_list():
    run = FakeRun([(0, '', '')])
    LivepatchRunner(run, 'xen-livepatch').run('upload', 'name with space', 7)
    assert run.argvs == [['xen-livepatch', 'upload', 'name with space', '7']]


@pytest.mark.parametrize('binary', [None, ''])
def test_missing_binary_is_tool_not_found(binary):
    with pytest.raises(ToolNotFound) as caught:
        XlRunner(FakeRun([]), binary)
    assert 'xl is not installed' in caught.value.msg
    assert isinstance(caught.value, XenToolError)


def test_retries_with_backoff_keep_only_last_run_in_history():
    sleeps = []
    run = FakeRun([(2, '', 'busy'), (2, '', 'busy'), (0, 'ok', '')])
    runner = LivepatchRunner(run, 'xen-livepatch', sleep=sleeps.append)
    result = runner.run_with_retries(['apply', 'p'], lambda r: r.rc == 2, retries=5, delay=0.5)
    assert result.rc == 0 and result.attempts == 3
    assert sleeps == [0.5, 1.0]
    assert runner.history == [result]
    assert run.argvs == [['xen-livepatch', 'apply', 'p']] * 3


def test_retries_give_up_after_the_limit():
    sleeps = []
    run = FakeRun([(2, '', 'busy')] * 3)
    runner = LivepatchRunner(run, 'xen-livepatch', sleep=sleeps.append)
    result = runner.run_with_retries(['revert', 'p'], lambda r: r.rc == 2, retries=2, delay=1)
    assert (result.rc, result.attempts) == (2, 3)
    assert sleeps == [1.0, 2.0]
    assert len(runner.history) == 1


def test_tool_error_as_result():
    error = XenToolError('boom', argv=['xl', 'info'], rc=1, stdout='o', stderr='e')
    assert error.as_result() == dict(msg='boom', cmd=['xl', 'info'], rc=1, stdout='o', stderr='e')


def test_module_command_function_pins_locale_and_never_checks_rc():
    calls = []

    class Module(object):
        def run_command(self, argv, check_rc, environ_update):
            calls.append((argv, check_rc, environ_update))
            return 3, 'o', 'e'

    run = module_command_function(Module())
    assert run(('xl', 'info')) == (3, 'o', 'e')
    assert calls == [(['xl', 'info'], False, LOCALE_ENV)]
    assert LOCALE_ENV['LC_ALL'] == 'C'


@pytest.mark.parametrize('method, args, kwargs, argv', [
    ('upload', ('p1', '/tmp/p1.livepatch'), {}, ['upload', 'p1', '/tmp/p1.livepatch']),
    ('apply', ('p1',), {}, ['apply', 'p1']),
    ('apply', ('p1',), {'nodeps': True}, ['apply', 'p1', '--nodeps']),
    ('revert', ('p1',), {}, ['revert', 'p1']),
    ('replace', ('p1',), {}, ['replace', 'p1']),
    ('unload', ('p1',), {}, ['unload', 'p1']),
])
def test_livepatch_mutating_argv(method, args, kwargs, argv):
    run = FakeRun([(0, 'completed', '')])
    getattr(LivepatchRunner(run, '/usr/sbin/xen-livepatch'), method)(*args, **kwargs)
    assert run.argvs == [['/usr/sbin/xen-livepatch'] + argv]


def test_shared_history_keeps_order_across_tools():
    history = []
    run = FakeRun([(0, '', '')] * 3)
    xl = XlRunner(run, 'xl', history=history)
    lp = LivepatchRunner(run, 'xen-livepatch', history=history)
    xl.info()
    lp.list()
    xl.list_domains()
    assert [r.argv for r in history] == [['xl', 'info'], ['xen-livepatch', 'list'], ['xl', 'list']]


def test_no_handler_exit_2_is_not_retried():
    run = FakeRun([(2, '', 'failed to get the handler\n')])
    result = LivepatchRunner(run, 'xen-livepatch', sleep=lambda s: None).apply('p1', retries=3)
    assert result.attempts == 1
