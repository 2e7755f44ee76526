"""docs/examples/awx/ is what tests/tools/awx_configuration.py generates from the playbooks' argument specs, and a
wrong value is refused with the same message whether it comes from the command line or as an AWX job's extra var."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from core_messages import plain_types

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
TOOL = os.path.join(REPO, 'tests', 'tools', 'awx_configuration.py')
SPEC = importlib.util.spec_from_file_location('awx_configuration', TOOL)
awx_configuration = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(awx_configuration)
BIN = os.path.dirname(sys.executable)


def test_the_checked_in_configuration_is_the_generators_output(capsys):
    assert awx_configuration.main(['--check']) == 0, capsys.readouterr().out


def test_a_stale_file_is_named(tmp_path, capsys):
    shutil.copytree(awx_configuration.OUT, str(tmp_path / 'awx'))
    templates = tmp_path / 'awx' / 'controller_templates.yml'
    templates.write_text(templates.read_text().replace('Failure budget in hosts', 'Budget'))
    assert awx_configuration.main(['--check', '--out', str(tmp_path / 'awx')]) == 1
    assert 'differs from what tests/tools/awx_configuration.py generates: controller_templates.yml;' in capsys.readouterr().out


# (option of an argument spec, the survey question made of it)
QUESTIONS = [
    ('bool-with-default', {'type': 'bool', 'default': False, 'description': ['Q', 'More.']},
     {'type': 'multiplechoice', 'choices': ['true', 'false'], 'default': 'false', 'question_name': 'Q',
      'question_description': 'More.', 'required': False}),
    ('bool-unset-means-refuse', {'type': 'bool', 'description': ['Q']},
     {'type': 'multiplechoice', 'choices': ['true', 'false'], 'default': '', 'question_description': ''}),
    ('choices', {'type': 'str', 'choices': ['all', 'canary'], 'default': 'all', 'description': 'Q'},
     {'type': 'multiplechoice', 'choices': ['all', 'canary'], 'default': 'all'}),
    ('int', {'type': 'int', 'default': 0, 'description': ['Q']}, {'type': 'integer', 'min': 0, 'default': 0}),
    ('raw-is-text', {'type': 'raw', 'required': True, 'description': ['Q']},
     {'type': 'text', 'default': '', 'required': True}),
]


@pytest.mark.parametrize('option, expected', [c[1:] for c in QUESTIONS], ids=[c[0] for c in QUESTIONS])
def test_a_survey_question_is_made_from_its_option(option, expected):
    question = awx_configuration.survey_question('noreboot_xen_x', option)
    assert question['variable'] == 'noreboot_xen_x'
    assert dict((k, question[k]) for k in expected) == expected


@pytest.mark.parametrize('kind', ['list', 'dict'])
def test_lists_and_mappings_are_not_asked(kind):
    with pytest.raises(awx_configuration.ConfigurationError, match='a survey cannot ask it, give it as an extra var'):
        awx_configuration.survey_question('noreboot_xen_x', {'type': kind})


def test_every_surveyed_variable_is_in_its_playbooks_argument_spec():
    specs = awx_configuration.load_specs()
    with pytest.raises(awx_configuration.ConfigurationError, match='does not have'):
        awx_configuration.survey(specs, 'plan', ['noreboot_xen_reboot_ok'], 'x')
    for dummy, entry, dummy2, variables in awx_configuration.TEMPLATES:
        assert set(variables) <= set(specs[entry]['options']), entry
        assert os.path.exists(os.path.join(REPO, 'playbooks', entry + '.yml')), entry


def test_the_workflow_is_plan_approval_canaries_approval_rest_report_with_failure_paths():
    with open(os.path.join(awx_configuration.OUT, 'controller_workflows.yml')) as handle:
        flow = yaml.safe_load(handle)['controller_workflows'][0]
    assert flow['name'] == awx_configuration.WORKFLOW
    nodes = dict((n['identifier'], n) for n in flow['simplified_workflow_nodes'])
    order, node = [], 'plan'
    while node:
        order.append(node)
        node = (nodes[node]['success_nodes'] or [None])[0]
    assert order == ['plan', 'approve_plan', 'canaries', 'approve_canaries', 'remaining_waves', 'report']
    assert [n for n in order if 'approval_node' in nodes[n]] == ['approve_plan', 'approve_canaries']
    assert nodes['canaries']['extra_data'] == {'noreboot_xen_rollout_phase': 'canary'}
    assert nodes['remaining_waves']['extra_data'] == {'noreboot_xen_rollout_phase': 'after_canary'}
    for name in order[:-1]:
        assert nodes[name]['failure_nodes'] == ['report_after_failure'], name
    with open(os.path.join(awx_configuration.OUT, 'controller_templates.yml')) as handle:
        templates = yaml.safe_load(handle)['controller_templates']
    assert all(t['job_slice_count'] == 1 and t['ask_variables_on_launch'] for t in templates
               if t['name'] != 'noreboot.xen rolling live patch (sliced)')


def test_the_sliced_workflow_slices_only_the_remaining_waves_and_always_merges():
    with open(os.path.join(awx_configuration.OUT, 'controller_workflows.yml')) as handle:
        flow = yaml.safe_load(handle)['controller_workflows'][1]
    assert flow['name'] == awx_configuration.WORKFLOW_SLICED
    nodes = dict((n['identifier'], n) for n in flow['simplified_workflow_nodes'])
    order, node = [], 'plan'
    while node:
        order.append(node)
        node = (nodes[node].get('success_nodes') or nodes[node].get('always_nodes') or [None])[0]
    assert order == ['plan', 'approve_plan', 'canaries', 'approve_canaries', 'remaining_waves_sliced', 'merge_report',
                     'report']
    # A stopped slice fails the sliced job: its slices' reports are merged whatever happened.
    assert nodes['remaining_waves_sliced']['always_nodes'] == ['merge_report']
    assert nodes['remaining_waves_sliced']['extra_data'] == {'noreboot_xen_rollout_phase': 'after_canary'}
    with open(os.path.join(awx_configuration.OUT, 'controller_templates.yml')) as handle:
        templates = dict((t['name'], t) for t in yaml.safe_load(handle)['controller_templates'])
    sliced = templates['noreboot.xen rolling live patch (sliced)']
    merge = templates['noreboot.xen merge slice reports']
    # The job slicing and the opt-in the playbook checks it against are the same number, stated once.
    assert sliced['job_slice_count'] == sliced['extra_vars']['noreboot_xen_rollout_slices'] == awx_configuration.SLICES
    assert merge['extra_vars']['noreboot_xen_rollout_slices'] == awx_configuration.SLICES
    assert nodes['canaries']['unified_job_template'] == 'noreboot.xen rolling live patch'


INVENTORY = "[xen]\nxen01 ansible_host=192.0.2.1 ansible_ssh_common_args='-o ConnectTimeout=1 -o BatchMode=yes'\n"
BAD = {'noreboot_xen_advisories': ['/srv/advisories/xsa-999/xsa-999.yml'], 'noreboot_xen_reboot_ok': 'maybe',
       'noreboot_xen_soak_seconds': 'ten'}


ARGUMENT_ERROR = re.compile(r"argument '(\w+)' is of type (\w+) and we were unable to convert to (\w+)")


def _message(out):
    """The argument errors of a run's output, in order, each once: (argument, type given, type wanted).
    Read with a pattern, not by line: ansible-core 2.19 prints the message over lines of its own, older cores
    inside the task result's JSON, and name the types differently (core_messages.plain_types)."""
    found = []
    for error in ARGUMENT_ERROR.findall(plain_types(out)):
        if error not in found:
            found.append(error)
    assert found, out
    return found


def test_a_wrong_answer_is_refused_as_on_the_command_line(tmp_path):
    """The same value as a survey answer of an AWX job (env/extravars of ansible-runner, as AWX writes them) and as
    ansible-playbook -e: the same refusal, before any host is contacted."""
    # ansible-runner runs the ansible-playbook it finds on PATH: this Python's, as in an execution environment.
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_HOST_KEY_CHECKING='False',
               ANSIBLE_RETRY_FILES_ENABLED='False', ANSIBLE_LOCAL_TEMP=str(tmp_path / 'tmp'),
               PATH=os.pathsep.join([BIN, os.environ.get('PATH', '')]))
    (tmp_path / 'hosts.ini').write_text(INVENTORY)
    command_line = subprocess.run(
        [os.path.join(BIN, 'ansible-playbook'), '-i', str(tmp_path / 'hosts.ini'), 'noreboot.xen.rolling_livepatch',
         '-e', yaml.safe_dump(BAD, default_flow_style=True)],
        cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    cli_out = command_line.stdout.decode('utf-8', 'replace')
    assert command_line.returncode != 0, cli_out
    job = tmp_path / 'job'
    for name in ('inventory', 'env', 'project'):
        (job / name).mkdir(parents=True)
    (job / 'inventory' / 'hosts.ini').write_text(INVENTORY)
    (job / 'env' / 'extravars').write_text(yaml.safe_dump(BAD))
    shutil.copy(os.path.join(awx_configuration.OUT, 'project', 'rolling_livepatch.yml'), str(job / 'project'))
    runner = subprocess.run(
        [os.path.join(BIN, 'ansible-runner'), 'run', str(job), '-p', 'rolling_livepatch.yml', '--ident', 'job'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
    runner_out = runner.stdout.decode('utf-8', 'replace')
    assert runner.returncode != 0, runner_out
    expected = [('noreboot_xen_reboot_ok', 'str', 'bool'), ('noreboot_xen_soak_seconds', 'str', 'int')]
    for out in (cli_out, runner_out):
        assert _message(out) == expected, out
        assert "The value 'maybe' is not a valid boolean." in out, out
        assert 'UNREACHABLE' not in out and '192.0.2.' not in out, 'a host was contacted:\n' + out
    assert _message(cli_out) == _message(runner_out)
