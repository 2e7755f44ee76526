# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""livepatch_lifecycle and the xen-livepatch runner actions, with fake runners (no AnsibleModule)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import livepatch_lifecycle as lc
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_lifecycle import LivepatchFailure
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import LivepatchRunner, XlRunner

import livepatch_payload_forge as forge
from xen_builds import XEN_4175

# Real `xl info` lines of the Debian Xen 4.17.5 dom0 (shared/reference/xen-4.17.5/xl_info.txt).
XL_INFO_4175 = """host                   : dom0
release                : 6.1.0-50-amd64
xen_version            : 4.17.5
xen_commandline        : console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all noreboot
cc_compile_date        : Sat Nov 29 13:52:25 UTC 2025
build_id               : %s
xend_config_format     : 4
""" % XEN_4175
HEADER = (' ID                                     | status     | metadata\n'
          '----------------------------------------+------------+---------------\n')


def row(name, state, metadata=''):
    return dict(name=name, state=state, error=None, metadata=metadata)


class Script(object):
    """A fake ``run(argv)``: returns the scripted (rc, out, err) per call and records argv."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.ran = []

    def __call__(self, argv):
        self.ran.append(list(argv))
        assert self.steps, 'unexpected command %r' % (argv,)
        return self.steps.pop(0)


def runners(script, sleeps=None):
    history = []
    sleep = (sleeps.append if sleeps is not None else (lambda s: None))
    return (LivepatchRunner(script, '/usr/sbin/xen-livepatch', sleep=sleep, history=history),
            XlRunner(script, '/usr/sbin/xl', sleep=sleep, history=history))


# --------------------------------------------------------------------------- small helpers
def test_parse_xl_info_build_id_real_output():
    assert lc.parse_xl_info_build_id(XL_INFO_4175) == XEN_4175
    assert lc.parse_xl_info_build_id('build_id               : \n') is None
    assert lc.parse_xl_info_build_id('build_id : not-hex\n') is None
    assert lc.parse_xl_info_build_id('xen_version : 4.17.5\n') is None


@pytest.mark.parametrize('name', ['p' * 127, 'xsa-999_v2.1', u'\u00e9' * 63])
def test_valid_names(name):
    lc.validate_name(name)


@pytest.mark.parametrize('name, problem', [
    ('', 'must not be empty'),
    ('p' * 128, 'name is 128 bytes'),
    (u'\u00e9' * 64, 'name is 128 bytes'),
    ('a|b', 'no "|"'),
    (' lead', 'no leading or trailing blanks'),
    ('tab\there', 'control characters'),
])
def test_invalid_names(name, problem):
    with pytest.raises(LivepatchFailure) as err:
        lc.validate_name(name)
    assert problem in err.value.msg


def test_normalize_checksum_forms():
    digest = 'ab' * 32
    assert lc.normalize_checksum(digest) == digest
    assert lc.normalize_checksum('sha256:' + digest.upper()) == digest
    for bad in ('', 'sha1:' + 'ab' * 20, 'ab' * 31, None):
        with pytest.raises(LivepatchFailure):
            lc.normalize_checksum(bad)


def test_inspect_payload_returns_ids(tmp_path):
    path = tmp_path / 'p.livepatch'
    meta = forge.forge_payload(str(path), XEN_4175, build_id='ee' * 20, metadata='M')
    payload = lc.inspect_payload(str(path), 'sha256:' + meta['sha256'])
    assert (payload['build_id'], payload['xen_depends'], payload['depends']) == ('ee' * 20, XEN_4175, XEN_4175)
    assert payload['metadata'] == ['M'] and payload['sha256'] == meta['sha256']


# --------------------------------------------------------------------------- runner actions
def test_runner_actions_build_argv_lists():
    script = Script(*[(0, '', '')] * 6)
    lp = runners(script)[0]
    lp.upload('hello', '/p/x.livepatch')
    lp.apply('hello')
    lp.apply('hello', nodeps=True)
    lp.revert('hello')
    lp.replace('hello')
    lp.unload('hello')
    assert script.ran == [
        ['/usr/sbin/xen-livepatch', 'upload', 'hello', '/p/x.livepatch'],
        ['/usr/sbin/xen-livepatch', 'apply', 'hello'],
        ['/usr/sbin/xen-livepatch', 'apply', 'hello', '--nodeps'],
        ['/usr/sbin/xen-livepatch', 'revert', 'hello'],
        ['/usr/sbin/xen-livepatch', 'replace', 'hello'],
        ['/usr/sbin/xen-livepatch', 'unload', 'hello'],
    ]


def test_runner_retries_exit_2_with_doubling_waits_and_keeps_one_history_entry():
    busy = (2, 'Reverting hello... failed\n', 'Error 16: Device or resource busy\n')
    sleeps = []
    lp = runners(Script(busy, busy, busy, busy), sleeps)[0]
    result = lp.revert('hello', retries=3, delay=0.25)
    assert (result.rc, result.attempts) == (2, 4)
    assert sleeps == [0.25, 0.5, 1.0]
    assert len(lp.history) == 1 and lp.history[0].attempts == 4


def test_runner_does_not_retry_exit_1_or_no_handler():
    sleeps = []
    lp = runners(Script((1, '', 'Error 22: Invalid argument\n'), (2, '', 'failed to get the handler\n')), sleeps)[0]
    assert lp.apply('x', retries=5, delay=1).attempts == 1
    assert lp.apply('x', retries=5, delay=1).attempts == 1
    assert sleeps == []


# --------------------------------------------------------------------------- plan and predict
def lifecycle(state='applied', replace=False, payload_metadata=('LIVEPATCH_RULEZ',), name='hello'):
    lp, xl = runners(Script())
    life = lc.LivepatchLifecycle(lp, xl, name=name, state=state, replace=replace)
    life.payload = None if state == 'absent' else dict(metadata=list(payload_metadata), build_id='aa' * 20)
    return life


@pytest.mark.parametrize('state, replace, rows, actions', [
    ('applied', False, [], ['upload', 'apply']),
    ('applied', True, [], ['upload', 'replace']),
    ('applied', False, [row('hello', 'CHECKED', 'LIVEPATCH_RULEZ')], ['apply']),
    ('applied', True, [row('hello', 'CHECKED', 'LIVEPATCH_RULEZ'), row('old', 'APPLIED')], ['replace']),
    ('applied', False, [row('hello', 'APPLIED', 'LIVEPATCH_RULEZ'), row('other', 'APPLIED')], []),
    ('applied', True, [row('hello', 'APPLIED', 'LIVEPATCH_RULEZ'), row('old', 'CHECKED')], []),
    ('checked', False, [], ['upload']),
    ('checked', False, [row('hello', 'APPLIED', 'LIVEPATCH_RULEZ')], ['revert']),
    ('checked', False, [row('hello', 'CHECKED', 'LIVEPATCH_RULEZ')], []),
    ('absent', False, [row('hello', 'APPLIED')], ['revert', 'unload']),
    ('absent', False, [row('hello', 'CHECKED')], ['unload']),
    ('absent', False, [row('other', 'APPLIED')], []),
])
def test_plan(state, replace, rows, actions):
    assert lifecycle(state, replace).plan(rows) == actions


def test_plan_refuses_unknown_state_and_replace_when_others_applied():
    with pytest.raises(LivepatchFailure, match="in state 'unknown'"):
        lifecycle('absent').plan([row('hello', 'unknown')])
    with pytest.raises(LivepatchFailure, match='already applied together with b, c'):
        lifecycle('applied', True).plan([row('b', 'APPLIED'), row('hello', 'APPLIED', 'LIVEPATCH_RULEZ'),
                                         row('c', 'APPLIED')])


def test_identity_from_metadata_and_without_metadata_column():
    life = lifecycle()
    life.plan([row('hello', 'CHECKED', 'LIVEPATCH_RULEZ')])
    assert life.identity == 'metadata'
    life = lifecycle()
    life.plan([dict(name='hello', state='CHECKED', error=None, metadata=None)])  # Xen before 4.14
    assert life.identity == 'name'
    life = lifecycle(payload_metadata=())
    life.plan([row('hello', 'CHECKED', '')])
    assert life.identity == 'name'
    with pytest.raises(LivepatchFailure, match='a different payload is loaded as hello'):
        lifecycle(payload_metadata=()).plan([row('hello', 'CHECKED', 'LIVEPATCH_RULEZ')])


def test_predict_replace_demotes_other_applied_payloads():
    life = lifecycle(replace=True, name='cumulative')
    after = life.predict([row('a', 'APPLIED'), row('b', 'CHECKED')], ['upload', 'replace'])
    assert [(r['name'], r['state']) for r in after] == [('a', 'CHECKED'), ('b', 'CHECKED'), ('cumulative', 'APPLIED')]
    assert after[2]['metadata'] == 'LIVEPATCH_RULEZ'


def test_predict_absent_removes_and_leaves_input_alone():
    rows = [row('hello', 'APPLIED'), row('x', 'CHECKED')]
    after = lifecycle('absent').predict(rows, ['revert', 'unload'])
    assert [r['name'] for r in after] == ['x']
    assert rows[0]['state'] == 'APPLIED'


# --------------------------------------------------------------------------- whole runs
def forged_src(tmp_path, **kwargs):
    path = tmp_path / 'hello.livepatch'
    meta = forge.forge_payload(str(path), kwargs.pop('xen_build_id', XEN_4175), metadata='LIVEPATCH_RULEZ', **kwargs)
    return str(path), meta['sha256']


def test_check_mode_runs_only_reads(tmp_path):
    src, sha = forged_src(tmp_path)
    script = Script((0, XL_INFO_4175, ''), (0, 'Nothing to list\n', ''))
    lp, xl = runners(script)
    result = lc.LivepatchLifecycle(lp, xl, name='hello', src=src, checksum=sha, check_mode=True).run()
    assert [argv[1] for argv in script.ran] == ['info', 'list']
    assert result['changed'] is True and result['actions'] == ['upload', 'apply']
    assert 'hello                                   | APPLIED' in result['diff']['after']
    assert result['diff']['before'] == 'Nothing to list\n'


def test_hypervisor_log_keeps_only_lines_about_this_payload(tmp_path):
    src, sha = forged_src(tmp_path)
    dmesg = ('(XEN) livepatch: hello2: check against hypervisor build-id failed\n'
             '(XEN) livepatch: hello: check against hypervisor build-id failed\n'
             '(XEN) livepatch: hello finished APPLY with rc=0\n')
    script = Script((0, XL_INFO_4175, ''), (0, 'Nothing to list\n', ''),
                    (1, 'Uploading %s... failed\n' % src, 'Error 22: Invalid argument\n'),
                    (0, 'Nothing to list\n', ''), (0, dmesg, ''))
    lp, xl = runners(script)
    with pytest.raises(LivepatchFailure) as err:
        lc.LivepatchLifecycle(lp, xl, name='hello', src=src, checksum=sha).run()
    result = err.value.as_result()
    assert result['hypervisor_log'] == ['(XEN) livepatch: hello: check against hypervisor build-id failed',
                                        '(XEN) livepatch: hello finished APPLY with rc=0']
    assert result['cmd'] == ['/usr/sbin/xen-livepatch', 'upload', 'hello', src]
    assert result['changed'] is False and result['cleanup'] is None


def test_revert_ok_then_unload_fails_reports_partial_change(tmp_path):
    script = Script((0, HEADER + 'hello                                   | APPLIED    | \n', ''),
                    (0, 'Reverting hello... completed\n', ''),
                    (1, 'Unloading hello... failed\n', 'Error 1: Operation not permitted\n'),
                    (0, HEADER + 'hello                                   | CHECKED    | \n', ''))
    lp = runners(script)[0]
    with pytest.raises(LivepatchFailure) as err:
        lc.LivepatchLifecycle(lp, None, name='hello', state='absent').run()
    result = err.value.as_result()
    assert result['changed'] is True
    assert 'Error 1: Operation not permitted' in result['msg'] and 'hello is now CHECKED' in result['msg']
    assert result['payloads_after'] == [row('hello', 'CHECKED')]


def test_sha256_of_forged_payload_is_what_inspect_reports(tmp_path):
    src, sha = forged_src(tmp_path)
    with open(src, 'rb') as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == sha == lc.inspect_payload(src, sha)['sha256']


def test_changed_when_the_final_list_fails_after_a_successful_command():
    script = Script((0, HEADER + 'hello                                   | CHECKED    | \n', ''),
                    (0, 'Unloading hello... completed\n', ''),
                    (0, '', 'failed to get the handler\n'))
    lp = runners(script)[0]
    with pytest.raises(LivepatchFailure) as err:
        lc.LivepatchLifecycle(lp, None, name='hello', state='absent').run()
    result = err.value.as_result()
    assert result['changed'] is True and result['payloads_after'] is None
    assert 'failed to get the handler' in result['msg']


# --------------------------------------------------------------------------- real hypervisor logs
def real_dmesg(version, scenario):
    """The last ``xl dmesg`` output of a transcript captured on the real testbed."""
    import os

    import yaml
    path = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures', 'transcripts',
                        'xen-%s' % version, '%s.yml' % scenario)
    with open(path) as handle:
        steps = yaml.safe_load(handle)['steps']
    return [s for s in steps if s['argv'] == ['xl', 'dmesg']][-1]['stdout']


def test_payload_log_keeps_the_build_ids_xen_420_prints_on_the_next_lines():
    # Xen 4.20.4 (Debian 13): the mismatch message goes on over two indented lines.
    # The indentation is a no-break space (U+00A0) and spaces, as in Xen's source.
    assert lc.payload_log_lines(real_dmesg('4.20.4', 'wrong-build-id'), 'wrongbid') == [
        '(XEN) livepatch: wrongbid: build-id mismatch:',
        u'(XEN) \u00a0 livepatch: 54899eef59df26aed4541ce12fc0bbb364711b14',
        u'(XEN) ' + u'\u00a0' * 7 + u' xen: 576c0736b3e38388c5afe9aaccc43a18d514e88e']


def test_payload_log_of_xen_417_is_one_line_per_message():
    assert lc.payload_log_lines(real_dmesg('4.17.5', 'wrong-build-id'), 'wrongbid') == [
        '(XEN) livepatch: wrongbid: check against hypervisor build-id failed']


def test_payload_log_continuation_stops_at_the_next_message():
    dmesg = ('(XEN) livepatch: other: build-id mismatch:\n'
             '(XEN)   livepatch: 11\n'
             '(XEN) livepatch: hello: build-id mismatch:\n'
             '(XEN)   livepatch: 22\n'
             '(XEN)         xen: 33\n'
             '(XEN) Brought up 2 CPUs\n'
             '(XEN)   indented, but after another message\n'
             '(XEN) livepatch: hello: Applying 1 functions\n'
             '(XEN)   not a continuation: the line above does not end with a colon\n')
    assert lc.payload_log_lines(dmesg, 'hello') == [
        '(XEN) livepatch: hello: build-id mismatch:', '(XEN)   livepatch: 22', '(XEN)         xen: 33',
        '(XEN) livepatch: hello: Applying 1 functions']


def real_steps(version, scenario):
    import os

    import yaml
    path = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'fixtures', 'transcripts',
                        'xen-%s' % version, '%s.yml' % scenario)
    with open(path) as handle:
        return yaml.safe_load(handle)['steps']


def test_revert_that_fails_with_exit_status_0_on_xen_420_is_not_taken_for_success():
    # Real Xen 4.20.4: `Reverting xen_prepost_hooks... failed` / `Error 0: Success`, exit status 0,
    # and the payload stays APPLIED (list row `APPLIED (-1, Unknown error -1)`).
    steps = real_steps('4.20.4', 'prepost-hooks')
    failed_revert = [s for s in steps if s['argv'][1] == 'revert' and s['rc'] == 0][0]
    assert 'failed' in failed_revert['stdout'] and failed_revert['stderr'] == 'Error 0: Success\n'
    stuck_list = [s for s in steps if s['argv'][1] == 'list'][-1]
    script = Script((0, stuck_list['stdout'], ''),
                    (failed_revert['rc'], failed_revert['stdout'], failed_revert['stderr']),
                    (0, stuck_list['stdout'], ''))
    lp, xl = runners(script)
    with pytest.raises(LivepatchFailure) as err:
        lc.LivepatchLifecycle(lp, xl, name='xen_prepost_hooks', state='absent').run()
    result = err.value.as_result()
    # The revert's own "failed" is the failure: no unload is tried, and the message names the revert.
    assert [argv[1] for argv in script.ran] == ['list', 'revert', 'list']
    assert result['payloads_after'] == [dict(name='xen_prepost_hooks', state='APPLIED', metadata='',
                                             error=dict(errno=-1, text='Unknown error -1'))]
    assert result['msg'].startswith('/usr/sbin/xen-livepatch revert xen_prepost_hooks printed "failed" and exited 0 '
                                    '(Error 0: '
                                    'Success)'), result['msg']
    assert result['msg'].endswith('xen_prepost_hooks is now APPLIED. `xl dmesg` on the host may say more')
