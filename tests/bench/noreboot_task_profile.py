# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback ``noreboot_task_profile`` (bench only, not shipped): where a run's wall time and controller CPU go.

Enabled by ``tests/bench/bench_rollout_vs_naive.py --profile`` (ANSIBLE_CALLBACK_PLUGINS names this
directory, ANSIBLE_CALLBACKS_ENABLED adds noreboot_task_profile). A task's time runs from its start to the
next task's start (the linear strategy runs a batch's tasks one after the other), summed over the batches it
ran in; a play's time from its start to the next play's. At the end it writes JSON to
NOREBOOT_TASK_PROFILE_PATH (tasks, plays, controller CPU: the ansible-playbook process and its finished
forks, user+system seconds) and prints the tasks that took most, with their share of the run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import resource
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: noreboot_task_profile
type: aggregate
short_description: per-task, per-play wall time and controller CPU of a run (bench only)
description: Writes JSON to NOREBOOT_TASK_PROFILE_PATH and prints the costliest tasks.
'''


def _cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    forks = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, forks.ru_utime + forks.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'noreboot_task_profile'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.started = time.time()
        self.tasks = {}
        self.plays = {}
        self.order = []
        self.current_task = None
        self.current_play = None

    def _close_task(self, now):
        if self.current_task is not None:
            key, since = self.current_task
            self.tasks[key]['seconds'] += now - since
            self.tasks[key]['runs'] += 1
            self.current_task = None

    def _close_play(self, now):
        if self.current_play is not None:
            name, since = self.current_play
            self.plays[name] = self.plays.get(name, 0.0) + now - since
            self.current_play = None

    def v2_playbook_on_play_start(self, play):
        now = time.time()
        self._close_task(now)
        self._close_play(now)
        self.current_play = (play.get_name(), now)

    def v2_playbook_on_task_start(self, task, is_conditional):
        now = time.time()
        self._close_task(now)
        play = self.current_play[0] if self.current_play else ''
        key = '%s | %s' % (play, task.get_name())
        if key not in self.tasks:
            self.tasks[key] = dict(action=task.action, seconds=0.0, runs=0, results=0)
            self.order.append(key)
        self.current_task = (key, now)

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _result(self, result, *args, **kwargs):
        if self.current_task is not None:
            self.tasks[self.current_task[0]]['results'] += 1

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _result

    def v2_playbook_on_stats(self, stats):
        now = time.time()
        self._close_task(now)
        self._close_play(now)
        total = now - self.started
        own, forks = _cpu()
        ranked = sorted(self.tasks.items(), key=lambda kv: -kv[1]['seconds'])
        tasks = []
        for key, entry in ranked:
            row = dict(task=key, share=round(entry['seconds'] / total, 4) if total else 0)
            row.update((k, round(v, 3) if isinstance(v, float) else v) for k, v in entry.items())
            tasks.append(row)
        report = dict(wall_s=round(total, 2), controller_cpu_s=dict(ansible_playbook=round(own, 2), forks=round(forks, 2)),
                      plays=dict((k, round(v, 2)) for k, v in self.plays.items()), tasks=tasks)
        path = os.environ.get('NOREBOOT_TASK_PROFILE_PATH')
        if path:
            with open(path, 'w') as handle:
                json.dump(report, handle, indent=1)
        self._display.display('task profile: wall %.1f s, controller CPU %.1f s (ansible-playbook) + %.1f s (forks)'
                              % (total, own, forks))
        for name, seconds in sorted(self.plays.items(), key=lambda kv: -kv[1]):
            self._display.display('  play %6.1f s %5.1f%%  %s' % (seconds, 100.0 * seconds / total, name))
        for key, entry in ranked[:25]:
            self._display.display('  task %6.1f s %5.1f%%  x%-4d %-5d results  %s (%s)'
                                  % (entry['seconds'], 100.0 * entry['seconds'] / total, entry['runs'],
                                     entry['results'], key, entry['action']))
