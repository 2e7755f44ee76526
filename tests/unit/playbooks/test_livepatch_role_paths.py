# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role noreboot.xen.livepatch, run by ansible-playbook on hosts that cannot be reached (TEST-NET-1, one second
connect timeout): the paths where no transaction reaches a host, with the facts each ends with and the role's tasks
the controller runs per host (a worker process each, skipped ones too; issue 15 item 2: 6 before the preflight was
one task, 4 now).

* plan decisions without a payload (reboot, not_affected): final outcome at the preflight, nothing else runs;
* a livepatch decision with two payloads: outcome failed with the message of the former stage assert;
* a payload whose controller copy does not match its sha256: the action plugin refuses it, the rescue and the
  report make the outcome failed with the refusal;
* a good payload on an unreachable host: outcome unreachable (ignore_unreachable, the report);
* no run id: the host fails with the message of the former preflight assert.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import subprocess
import sys

import pytest

PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
ROLE = 'noreboot.xen.livepatch'
HOSTS = ['reboot-host', 'unaffected-host', 'two-payloads', 'bad-checksum', 'unreachable-host', 'no-run-id']

PLAYBOOK = '''
- name: Live patch
  hosts: all
  gather_facts: false
  tasks:
    - name: Live patch the host
      ansible.builtin.import_role:
        name: noreboot.xen.livepatch
      vars:
        livepatch_run_id: "{{ host_run_id | default(run_id) }}"
        livepatch_decision: "{{ decisions[inventory_hostname] }}"
        livepatch_retries: 0
    - name: Keep the facts
      ansible.builtin.copy:
        content: "{{ {'outcome': livepatch_outcome, 'result': livepatch_result} | to_json }}"
        dest: "{{ out_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
'''

# Every task result of a worker process per host, with the task's role (meta tasks run without a worker).
CALLBACK = '''
import json
import os
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'role_tasks'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.tasks = {}

    def _record(self, result, status):
        task = result._task
        if task.action.split('.')[-1] != 'meta' and task._role is not None:
            self.tasks.setdefault(result._host.get_name(), []).append([task._role.get_name(), task.get_name(), status])

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_playbook_on_stats(self, stats):
        with open(os.environ['ROLE_TASKS_PATH'], 'w') as handle:
            json.dump(self.tasks, handle)
'''

TWO_PAYLOADS = ('two-payloads: the plan gives 2 payload(s) (fix_a, fix_b). This role applies exactly one payload per '
                'host per run, with a name, a controller path and a sha256: run the rollout once per advisory, or fix '
                'the advisory manifest.')


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('livepatch_role')
    payload = tmp / 'fix_a.livepatch'
    payload.write_bytes(b'not really a payload\n')
    payload.chmod(0o600)
    good = dict(name='fix_a', path=str(payload), sha256=hashlib.sha256(payload.read_bytes()).hexdigest())
    decisions = {
        'reboot-host': dict(decision='reboot', reason='no payload for build 4175', payloads=[]),
        'unaffected-host': dict(decision='not_affected', reason='not affected'),
        'two-payloads': dict(decision='livepatch', reason='two', payloads=[good, dict(good, name='fix_b')]),
        'bad-checksum': dict(decision='livepatch', reason='one', payloads=[dict(good, sha256='0' * 64)]),
        'unreachable-host': dict(decision='livepatch', reason='one', payloads=[good]),
        'no-run-id': dict(decision='reboot', reason='r'),
    }
    lines = ['[xen]']
    for number, host in enumerate(HOSTS, 1):
        lines.append("%s ansible_host=192.0.2.%d ansible_ssh_common_args='-o ConnectTimeout=1 -o BatchMode=yes'%s"
                     % (host, number, ' host_run_id=""' if host == 'no-run-id' else ''))
    (tmp / 'hosts.ini').write_text('\n'.join(lines) + '\n')
    (tmp / 'play.yml').write_text(PLAYBOOK)
    (tmp / 'callbacks').mkdir()
    (tmp / 'callbacks' / 'role_tasks.py').write_text(CALLBACK)
    (tmp / 'out').mkdir()
    extra = dict(run_id='r1', decisions=decisions, out_dir=str(tmp / 'out'))
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_RETRY_FILES_ENABLED='False', ANSIBLE_LOCAL_TEMP=str(tmp / 'tmp'),
               ANSIBLE_CALLBACK_PLUGINS=str(tmp / 'callbacks'), ANSIBLE_CALLBACKS_ENABLED='role_tasks',
               ROLE_TASKS_PATH=str(tmp / 'role_tasks.json'))
    done = subprocess.run([PLAYBOOK_BIN, '-i', str(tmp / 'hosts.ini'), str(tmp / 'play.yml'), '-e', json.dumps(extra)],
                          cwd=str(tmp), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                          check=False)
    out = done.stdout.decode('utf-8', 'replace')
    facts = {}
    for host in HOSTS:
        path = tmp / 'out' / ('%s.json' % host)
        facts[host] = json.loads(path.read_text()) if path.exists() else None
    with open(str(tmp / 'role_tasks.json')) as handle:
        tasks = json.load(handle)
    role_tasks = dict((host, [(name, status) for role, name, status in tasks.get(host, []) if role == ROLE])
                      for host in HOSTS)
    return dict(rc=done.returncode, out=out, facts=facts, role_tasks=role_tasks)


def result(decision, msg, payload='fix_a', failed_checks=()):
    return dict(decision=decision, payload=payload, msg=msg, failed_checks=list(failed_checks), resumed=False,
                uploaded=False, run_id='r1', held_by_run=None)


def test_a_host_without_a_payload_gets_its_outcome_at_the_preflight(run):
    assert run['facts']['reboot-host'] == dict(outcome='pending_reboot',
                                               result=result('reboot', 'no payload for build 4175', payload=None))
    assert run['facts']['unaffected-host'] == dict(outcome='not_affected',
                                                   result=result('not_affected', 'not affected', payload=None))


def test_a_host_with_two_payloads_fails_with_the_message_of_the_former_assert(run):
    assert run['facts']['two-payloads'] == dict(outcome='failed', result=result('livepatch', TWO_PAYLOADS))


def test_a_payload_the_action_plugin_refuses_is_rescued_and_reported_failed(run):
    facts = run['facts']['bad-checksum']
    assert facts['outcome'] == 'failed', facts
    assert facts['result']['failed_checks'] == ['preconditions'], facts
    assert 'sha256' in facts['result']['msg'].lower(), facts
    got = (facts['result']['decision'], facts['result']['payload'], facts['result']['run_id'])
    assert got == ('livepatch', 'fix_a', 'r1'), facts


def test_an_unreachable_host_is_reported_unreachable(run):
    facts = run['facts']['unreachable-host']
    assert facts['outcome'] == 'unreachable', facts
    got = (facts['result']['decision'], facts['result']['payload'], facts['result']['run_id'])
    assert got == ('livepatch', 'fix_a', 'r1'), facts


def test_no_run_id_fails_the_host_naming_the_problem_and_the_fix(run):
    assert run['rc'] != 0
    assert run['facts']['no-run-id'] is None
    assert ('noreboot.xen.livepatch needs livepatch_run_id (a non-empty run id) and livepatch_decision (this host\'s '
            'entry of the fleet_plan decisions, with a \\"decision\\" key); got run id \\"\\" and decision '
            '{\\"decision\\": \\"reboot\\", \\"reason\\": \\"r\\"}.') in run['out'], run['out']
    assert [name for name, _status in run['role_tasks']['no-run-id']][-1].endswith(
        'Check the role\'s inputs and decide whether this host gets a payload')


@pytest.mark.parametrize('host,statuses', [
    ('reboot-host', ['ok', 'ok', 'skipped', 'skipped']),
    ('unaffected-host', ['ok', 'ok', 'skipped', 'skipped']),
    ('two-payloads', ['ok', 'ok', 'skipped', 'skipped']),
    # argument spec, preflight, the transaction (failed), the rescue, the report
    ('bad-checksum', ['ok', 'ok', 'failed', 'ok', 'ok']),
    ('unreachable-host', ['ok', 'ok', 'unreachable', 'ok']),
])
def test_the_role_tasks_the_controller_runs_per_host(run, host, statuses):
    assert [status for _name, status in run['role_tasks'][host]] == statuses, run['role_tasks'][host]
