# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the AWX / Automation Platform configuration as code of the collection (docs/examples/awx/).

The format is infra.aap_configuration's (controller_projects, controller_templates, controller_workflows with
simplified_workflow_nodes); the surveys are generated from the playbooks' argument specs
(playbooks/vars/argument_specs.yml), the one source of the variables' types, choices, defaults and wording,
which each playbook also checks at its top (ansible.builtin.validate_argument_spec). The job templates, the
workflow and which variables each survey asks are stated here, once.

    python tests/tools/awx_configuration.py            # write docs/examples/awx/
    python tests/tools/awx_configuration.py --check    # exit 1, naming the files, when they differ from the output

(`make awx-config` runs the first; tests/unit/tools/test_awx_configuration.py the second.)
"""

import argparse
import os
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = os.path.join(REPO, 'playbooks', 'vars', 'argument_specs.yml')
OUT = os.path.join(REPO, 'docs', 'examples', 'awx')

ORGANIZATION = 'Default'
PROJECT = 'noreboot.xen rollout'
INVENTORY = 'Xen dom0s'
CREDENTIAL = 'Xen dom0 SSH'
EXECUTION_ENVIRONMENT = 'noreboot.xen EE'
PREFIX = 'noreboot.xen '

# Job templates: name (after PREFIX), the playbook (its argument spec entry and the project's wrapper of the same
# name), what the template is for, and the variables its survey asks, in order. Lists and mappings (the advisory
# paths, the wave policy, the approved plan) cannot be survey answers: they come as extra vars (the template's,
# the launch's, or an earlier workflow node's artifacts).
TEMPLATES = [
    ('inventory report', 'inventory_report', 'Detect: each host\'s Xen, build-id, live patches and guests; the fleet report. '
     'Changes nothing.', ['noreboot_xen_report_dir']),
    ('plan', 'plan', 'Plan the advisories\' rollout: a decision per host, canary and live patch waves. Changes nothing; '
     'publishes the plan as the artifact noreboot_xen_rollout_plan.', ['noreboot_xen_target', 'noreboot_xen_plan_path']),
    ('rolling live patch', 'rolling_livepatch', 'Canaries, live patch waves and (with noreboot_xen_reboot_ok) the reboot '
     'fallback, within one failure budget. With noreboot_xen_rollout_plan (a workflow artifact) it runs that approved '
     'plan, or refuses when the fleet no longer matches it.',
     ['noreboot_xen_target', 'noreboot_xen_failure_budget_hosts', 'noreboot_xen_failure_budget_percent',
      'noreboot_xen_reboot_ok', 'noreboot_xen_soak_seconds', 'noreboot_xen_canary_soak_seconds',
      'noreboot_xen_skip_held_hosts']),
    ('reboot fallback', 'reboot_fallback', 'Fixed hypervisor and a reboot, in waves, for the hosts no live patch fits.',
     ['noreboot_xen_target', 'noreboot_xen_failure_budget_hosts', 'noreboot_xen_failure_budget_percent',
      'noreboot_xen_reboot_ok']),
    ('rolling live patch (sliced)', 'rolling_livepatch', 'The remaining waves of an approved plan, sliced over execution '
     'nodes on purpose (docs/awx.md, sliced mode): each slice finds its hosts in the plan artifact and takes its share of '
     'the remaining failure budget. Live patch waves only: its reboot hosts are reported (pending_reboot), for an '
     'unsliced reboot fallback job afterwards. Only in the sliced workflow, after the canaries.',
     ['noreboot_xen_failure_budget_hosts', 'noreboot_xen_failure_budget_percent', 'noreboot_xen_soak_seconds']),
    ('merge slice reports', 'merge_slice_reports', 'The sliced rollout\'s report node: merges the slices\' summary '
     'artifacts and the canary job\'s into one summary and one HTML report. Contacts no host.',
     ['noreboot_xen_summary_path']),
]
# Job slicing of the sliced rollout template: its job_slice_count, and the opt-in the playbook checks it against.
SLICES = 4
# Per template: what differs from the defaults of job_templates (every other template is never sliced).
TEMPLATE_SETTINGS = {
    # A slice does not reboot (a failure domain's cap would hold per slice only): its reboot hosts are reported.
    'rolling live patch (sliced)': dict(job_slice_count=SLICES,
                                        extra_vars={'noreboot_xen_rollout_slices': SLICES, 'noreboot_xen_reboot_ok': False}),
    'merge slice reports': dict(extra_vars={'noreboot_xen_rollout_slices': SLICES}),
}
# What the operator gives at launch as extra vars (the template asks for them): lists and mappings.
LAUNCH_EXTRA_VARS = {'noreboot_xen_advisories': ['/runner/project/advisories/xsa-999/xsa-999.yml']}

WORKFLOW = PREFIX + 'advisory rollout (approved)'
# The workflow: plan -> approval -> canary waves -> approval -> remaining waves -> report; a failed or refused
# node, or a denied or timed out approval, ends in the report of the fleet as it is (failure paths).
# (identifier, job template or None for an approval, extra data, success, failure)
WORKFLOW_NODES = [
    ('plan', 'plan', {}, ['approve_plan'], ['report_after_failure']),
    ('approve_plan', None, {'name': 'Approve the plan', 'description': 'Read the plan in the plan job\'s output and '
                            'artifacts (noreboot_xen_rollout_plan); approve to patch the canaries.', 'timeout': 86400},
     ['canaries'], ['report_after_failure']),
    ('canaries', 'rolling live patch', {'noreboot_xen_rollout_phase': 'canary'}, ['approve_canaries'],
     ['report_after_failure']),
    ('approve_canaries', None, {'name': 'Approve the rest after the canaries', 'description': 'The canaries are patched '
                                'and checked (the canaries job\'s summary artifact). Approve to run the remaining '
                                'waves of the same plan.', 'timeout': 86400}, ['remaining_waves'],
     ['report_after_failure']),
    ('remaining_waves', 'rolling live patch', {'noreboot_xen_rollout_phase': 'after_canary'}, ['report'],
     ['report_after_failure']),
    ('report', 'inventory report', {}, [], []),
    ('report_after_failure', 'inventory report', {}, [], []),
]
WORKFLOW_SLICED = PREFIX + 'advisory rollout (approved, sliced)'
# The same with the remaining waves as a sliced job (one job per slice, on several execution nodes), whose slices'
# artifacts the merge node always merges (a stopped slice fails the sliced job: its report is wanted most then).
# (identifier, job template or None for an approval, extra data, success, failure[, always])
WORKFLOW_SLICED_NODES = WORKFLOW_NODES[:3] + [
    ('approve_canaries', None, WORKFLOW_NODES[3][2], ['remaining_waves_sliced'], ['report_after_failure']),
    ('remaining_waves_sliced', 'rolling live patch (sliced)', {'noreboot_xen_rollout_phase': 'after_canary'}, [], [],
     ['merge_report']),
    ('merge_report', 'merge slice reports', {}, ['report'], ['report_after_failure']),
] + WORKFLOW_NODES[-2:]
NOT_ASKABLE = ('list', 'dict')


class ConfigurationError(Exception):
    pass


class IndentedDumper(yaml.SafeDumper):  # pylint: disable=too-many-ancestors
    """Lists indented under their key, as yamllint (ansible-lint) wants them."""

    def increase_indent(self, flow=False, indentless=False):
        return super(IndentedDumper, self).increase_indent(flow, False)


def load_specs(path=SPECS):
    with open(path) as handle:
        return yaml.safe_load(handle)['argument_specs']


def _lines(description):
    return [description] if isinstance(description, str) else list(description or [])


def survey_question(name, option):
    """One survey question from one option of an argument spec."""
    kind = option.get('type', 'str')
    if kind in NOT_ASKABLE:
        raise ConfigurationError('%s is a %s: a survey cannot ask it, give it as an extra var' % (name, kind))
    lines = _lines(option.get('description'))
    question = dict(variable=name, question_name=lines[0] if lines else name,
                    question_description=' '.join(lines[1:]), required=bool(option.get('required')))
    default = option.get('default')
    if kind == 'bool':
        question.update(type='multiplechoice', choices=['true', 'false'],
                        default='' if default is None else str(bool(default)).lower())
    elif option.get('choices'):
        question.update(type='multiplechoice', choices=[str(c) for c in option['choices']],
                        default='' if default is None else str(default))
    elif kind == 'int':
        question.update(type='integer', min=0, max=None, default='' if default is None else int(default))
    else:  # str, path, raw: text, checked by the playbook
        question.update(type='text', min=0, max=1024, default='' if default is None else str(default))
    return question


def survey(specs, entry, variables, name):
    options = specs[entry]['options']
    unknown = [v for v in variables if v not in options]
    if unknown:
        raise ConfigurationError('survey of %s asks %s, which the argument spec of %s does not have'
                                 % (name, ', '.join(unknown), entry))
    return dict(name=name, description='Generated from playbooks/vars/argument_specs.yml (%s)' % entry,
                spec=[survey_question(v, options[v]) for v in variables])


def job_templates(specs):
    templates = []
    for name, entry, description, variables in TEMPLATES:
        full = PREFIX + name
        templates.append(dict(
            name=full, description=description, organization=ORGANIZATION, project=PROJECT, playbook=entry + '.yml',
            inventory=INVENTORY, credentials=[CREDENTIAL], execution_environment=EXECUTION_ENVIRONMENT,
            # Never sliced, but the sliced rollout: a slice would have its own failure budget (the playbooks refuse to
            # run as one unless noreboot_xen_rollout_slices says so).
            job_slice_count=1, allow_simultaneous=False, ask_variables_on_launch=True,
            extra_vars=dict((k, v) for k, v in LAUNCH_EXTRA_VARS.items() if k in specs[entry]['options']),
            survey_enabled=True, survey_spec=survey(specs, entry, variables, full)))
        settings = TEMPLATE_SETTINGS.get(name, {})
        templates[-1].update((k, v) for k, v in settings.items() if k != 'extra_vars')
        templates[-1]['extra_vars'].update(settings.get('extra_vars', {}))
    return templates


def _nodes(spec):
    names = dict((name, PREFIX + name) for name, dummy, dummy2, dummy3 in TEMPLATES)
    nodes = []
    for identifier, template, extra, success, failure, *always in spec:
        node = dict(identifier=identifier, success_nodes=success, failure_nodes=failure)
        if always:
            node['always_nodes'] = always[0]
        if template is None:
            node['approval_node'] = extra
        else:
            node.update(unified_job_template=names[template], lookup_organization=ORGANIZATION, extra_data=extra)
        nodes.append(node)
    return nodes


def workflow(specs):
    rolling = [t for t in TEMPLATES if t[1] == 'rolling_livepatch'][0]
    return [dict(
        name=WORKFLOW, organization=ORGANIZATION, inventory=INVENTORY,
        description='plan -> approval -> canary waves -> approval -> remaining waves -> report. The rollout nodes run '
                    'the approved plan (the plan node\'s artifact noreboot_xen_rollout_plan) and refuse when the fleet '
                    'no longer matches it. Any failure, refusal or denied approval ends in the report.',
        allow_simultaneous=False, ask_variables_on_launch=True, extra_vars=dict(LAUNCH_EXTRA_VARS),
        survey_enabled=True, survey_spec=survey(specs, 'rolling_livepatch', rolling[3], WORKFLOW),
        simplified_workflow_nodes=_nodes(WORKFLOW_NODES)), dict(
        name=WORKFLOW_SLICED, organization=ORGANIZATION, inventory=INVENTORY,
        description='plan -> approval -> canary waves -> approval -> remaining waves as a sliced job (%d slices, each its '
                    'share of the remaining failure budget) -> merge of the slices\' reports -> report. For a fleet '
                    'that outgrows one execution node; see docs/awx.md, sliced mode.' % SLICES,
        allow_simultaneous=False, ask_variables_on_launch=True, extra_vars=dict(LAUNCH_EXTRA_VARS),
        survey_enabled=True, survey_spec=survey(specs, 'rolling_livepatch', rolling[3], WORKFLOW_SLICED),
        simplified_workflow_nodes=_nodes(WORKFLOW_SLICED_NODES))]


def wrapper(entry):
    return ("---\n# The project's playbook for the job template: the collection's playbook, by its FQCN (the collection "
            "comes from\n# the execution environment). Generated by tests/tools/awx_configuration.py.\n"
            "- name: Run noreboot.xen.%s\n  ansible.builtin.import_playbook: noreboot.xen.%s\n" % (entry, entry))


def _yaml(header, data):
    return '---\n# %s\n# Generated by tests/tools/awx_configuration.py from playbooks/vars/argument_specs.yml: do not edit.\n%s' % (
        header, yaml.dump(data, Dumper=IndentedDumper, sort_keys=False, width=120, default_flow_style=False))


def render(specs):
    """{relative path: text} of every file of docs/examples/awx/."""
    files = {
        'controller_projects.yml': _yaml('The project: an SCM repository with the wrappers below and the advisories.', dict(
            controller_projects=[dict(name=PROJECT, organization=ORGANIZATION, scm_type='git',
                                      scm_url='https://git.example.com/ops/xen-advisories.git', scm_branch='main',
                                      scm_update_on_launch=True, default_environment=EXECUTION_ENVIRONMENT)])),
        'controller_templates.yml': _yaml('Job templates: detect, plan, rolling live patch, reboot fallback, and the '
                                          'sliced rollout with its merge.',
                                          dict(controller_templates=job_templates(specs))),
        'controller_workflows.yml': _yaml('The approval workflow, and its variant with the remaining waves sliced.',
                                          dict(controller_workflows=workflow(specs))),
    }
    for dummy, entry, dummy2, dummy3 in TEMPLATES:
        files[os.path.join('project', entry + '.yml')] = wrapper(entry)
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--check', action='store_true', help='compare instead of writing; exit 1 when they differ')
    parser.add_argument('--out', default=OUT)
    args = parser.parse_args(argv)
    files = render(load_specs())
    stale = []
    for rel, text in sorted(files.items()):
        path = os.path.join(args.out, rel)
        current = open(path).read() if os.path.exists(path) else None
        if current == text:
            continue
        stale.append(rel)
        if not args.check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as handle:
                handle.write(text)
    if args.check and stale:
        print('docs/examples/awx differs from what tests/tools/awx_configuration.py generates: %s; run `make awx-config`'
              % ', '.join(stale))
        return 1
    print('%s: %s' % ('checked' if args.check else 'written', ', '.join(sorted(files))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
