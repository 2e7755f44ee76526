# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Contract: the simulated xl / xen-livepatch answer exactly as the real tools did.

Every step of every real transcript is replayed against a fresh simulator state set up with
the same build (version, build-id) and payload files of the same names, and compared byte for
byte: stdout, stderr and exit status.

Two sources of real transcripts:

* tests/fixtures/transcripts/xen-<version>/<scenario>.yml (captured on the real testbed,
  ``build: {version, build_id}``, ``steps: [{argv, rc, stdout, stderr}]``): stdout, stderr and
  rc must be equal. The capture host's identity (hostname, kernel, CPU speed, memory, Xen
  command line, dom0's CPU time, boot messages) is taken from the same directory's
  xl-info.yml, xl-list.yml and xl-dmesg-boot.yml; everything live patching does must come
  from the simulator. Two things the real machine did on its own are reproduced, not
  ignored: a CPU rendezvous timeout (rc 2, ``Error 16`` on an apply or replace) or an
  operation still running (``Operation didn't complete.``) in a real step switches the
  simulator's matching fault on for that step only; and ``xl dmesg`` after live patching (the
  capture host was not rebooted between scenarios, and its log holds hook messages and
  ``alt table`` addresses) is checked for the simulator's ``livepatch:`` lines, in order,
  inside the real log (test id ``[dmesg-lines]``), while ``xl dmesg`` right after boot must be
  equal.
* tests/fixtures/xen-<version>/xl_dmesg.txt (the boot log, ``xl dmesg`` and ``xl dmesg | head -20``:
  captured output has its one home there), replayed as the merged captures below are.
* tests/lab/tests/data/reference/ (copies of the project's first real captures, ``$ cmd``,
  merged output, ``[rc=N]``): the streams were merged by ssh, which carries stdout and stderr
  on two channels, so the order *between* the streams is not preserved (the same tool code gave
  ``failed\\nError 22...\\nUnloading ...`` once and ``failed\\nUnloading ... Error 22...`` once).
  There each stream must match exactly and in order, rc must be equal, and the merged text must
  be an interleaving of the simulator's stdout and stderr writes.

Payload files: forged ones (shared forge) with the same names and build-id relations, or, in
``make testbed-test`` (NOREBOOT_XEN_CONTRACT_PAYLOADS=real), the real ones the testbed built;
the test id says which.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

import lab_model  # noqa: E402
import lab_payloads  # noqa: E402

REFERENCE_DIR = os.path.join(HERE, 'data', 'reference')
FIXTURE_DIR = os.path.join(lab_model.FIXTURES_DIR, 'transcripts')
RUNNER = os.path.join(HERE, 'replay_runner.py')

# Files that hold the output of one command (no "$ cmd" lines): the command, and its rc.
BARE_OUTPUT = {
    'xl_info.txt': (['xl', 'info'], 0),
    'xl_info_n.txt': (['xl', 'info', '-n'], 0),
    'xl_list.txt': (['xl', 'list'], 0),
    'xen-livepatch_help.txt': (['xen-livepatch', 'help'], 0),
}
# Reference files that are not a replayable transcript of xl / xen-livepatch, and why.
NOT_REPLAYED = {
    'xen-4.17.5/livepatch_hello_cycle.txt': 'a `set -x` log: echo lines and tool output interleave, no rc per command '
                                            '(the same steps are replayed from livepatch_cycle.txt and livepatch_scenarios.txt)',
    'xen-4.17.5/after_reboot.txt': 'uptime plus grep fragments after a real reboot (reboot is covered by test_lab_faults.py)',
}
# What the real host had done before the transcript starts (not compared).
SETUP = {
    'xen-4.17.5/livepatch_scenarios.txt': [['xen-livepatch', 'load', 'xen_hello_world.livepatch']],
    'xen-4.17.5/livepatch_ebusy_retry.txt': [['xen-livepatch', 'load', 'xen_hello_world.livepatch']],
    'xen-4.17.5/xen-livepatch_list.txt': [],
}
VERSION_OF = {'grub_upgrade_reboot.txt': '4.17.7'}
# Transcript directories of a Xen generation the simulator does not model yet, and why. Each
# must exist (test_unsimulated_generations_are_named), so the list cannot hide a lost capture.
NOT_YET_SIMULATED = {}
# Payload directories the transcripts name: /root/p<version without dots>/ holds that build's
# payloads; /root/p420s/ the payloads of the hypervisor built from upstream's RELEASE-4.20.4 (the
# "other build" a 4.20.4 host is offered, tests/testbed/xen-4.20-differences.md).
PAYLOAD_BUILDS = {'4175': '4.17.5', '4177': '4.17.7', '4204': '4.20.4',
                  '420s': {'version': '4.20.4', 'build_id': '54899eef59df26aed4541ce12fc0bbb364711b14'}}
# Domain-0's CPU time when the reference `xl list` was captured (xl list prints it).
DOM0_TIME = {'4.17.5': 68.9, '4.17.7': 56.8}


def parse_dollar_transcript(text):
    steps = []
    current = None
    for line in text.splitlines(True):
        if current is None:
            if line.startswith('$ '):
                current = {'cmd': line[2:].rstrip('\n'), 'merged': ''}
            continue
        match = re.match(r'^\[rc=(\d+)\]$', line.rstrip('\n'))
        if match:
            current['rc'] = int(match.group(1))
            steps.append(current)
            current = None
        else:
            current['merged'] += line
    if current is not None:
        # A command whose connection died (the host crashed): what the tool wrote before it.
        cut = current['merged'].find('Connection to ')
        assert cut >= 0, 'unterminated step %r' % current['cmd']
        current['merged'] = current['merged'][:cut]
        current['rc'] = 255
        current['crash'] = True
        steps.append(current)
    for step in steps:
        step['argv'] = (['sh', '-c', step['cmd'][len('sh -c '):]] if step['cmd'].startswith('sh -c ')
                        else shlex.split(step['cmd']))
    return steps


def reference_cases():
    cases = []
    for root, _dirs, files in os.walk(REFERENCE_DIR):
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), REFERENCE_DIR)
            if rel in NOT_REPLAYED:
                continue
            with open(os.path.join(root, name)) as handle:
                text = handle.read()
            version = VERSION_OF.get(rel) or rel.split('/')[0][len('xen-'):]
            if name in BARE_OUTPUT:
                argv, rc = BARE_OUTPUT[name]
                steps = [{'argv': argv, 'rc': rc, 'merged': text}]
            elif name == 'xen-livepatch_list.txt':
                assert text.endswith('rc=0\n')
                steps = [{'argv': ['xen-livepatch', 'list'], 'rc': 0, 'merged': text[:-len('rc=0\n')]}]
            else:
                steps = parse_dollar_transcript(text)
            build = lab_model.resolve_build(version)
            cases.append({'id': 'reference/' + rel, 'build': build, 'steps': steps, 'merged': True,
                          'setup': SETUP.get(rel, [])})
    return sorted(cases, key=lambda c: c['id'])


def boot_log_cases():
    """``xl dmesg`` right after boot, whole and its first 20 lines, from the captured boot log of each build."""
    cases = []
    for version in sorted(lab_model.KNOWN_BUILDS):
        rel = 'xen-%s/xl_dmesg.txt' % version
        text = lab_model.captured(rel)
        build = lab_model.resolve_build(version)
        for suffix, argv, merged in (('', ['xl', 'dmesg'], text),
                                     (' | head -20', ['sh', '-c', 'xl dmesg | head -20'],
                                      ''.join(text.splitlines(True)[:20]))):
            # The capture host's Xen command line, as its boot log printed it (4.17's ends in a blank).
            commandline = next(line[len('(XEN) Command line: '):] for line in text.splitlines()
                               if line.startswith('(XEN) Command line: '))
            cases.append({'id': 'fixtures/' + rel + suffix, 'build': build, 'merged': True, 'setup': [],
                          'commandline': commandline,
                          'steps': [{'argv': argv, 'rc': 0, 'merged': merged}]})
    return cases


def fixture_cases():
    cases = []
    if not os.path.isdir(FIXTURE_DIR):
        return cases
    import yaml
    for root, _dirs, files in os.walk(FIXTURE_DIR):
        if os.path.relpath(root, FIXTURE_DIR).split(os.sep)[0] in NOT_YET_SIMULATED:
            continue
        for name in sorted(files):
            if not name.endswith(('.yml', '.yaml')):
                continue
            path = os.path.join(root, name)
            with open(path) as handle:
                doc = yaml.safe_load(handle)
            build = dict(doc['build'])
            build = lab_model.resolve_build({'version': str(build['version']), 'build_id': build['build_id'],
                                             'debian_version': build.get('debian_version')}
                                            if build.get('debian_version') else
                                            {'version': str(build['version']), 'build_id': build['build_id']})
            steps = [{'argv': [str(a) for a in s['argv']], 'rc': s['rc'], 'stdout': s.get('stdout') or '',
                      'stderr': s.get('stderr') or ''} for s in doc['steps']]
            pre = {}
            for index, step in enumerate(steps):
                op = step['argv'][1] if len(step['argv']) > 1 and step['argv'][0] == 'xen-livepatch' else None
                op = 'apply' if op == 'load' else op
                # A rendezvous timeout on the real machine. Armed for this step only; on a revert
                # refused because another payload is stacked on top, the simulator's own stacking
                # check answers first and the armed fault never fires.
                if op in ('apply', 'replace', 'revert') and step['rc'] == 2 and \
                        'Error 16: Device or resource busy' in step['stderr']:
                    pre[str(index)] = {'ebusy': {'first': 1, 'ops': [op]}}
                if op in ('apply', 'replace', 'revert') and "Operation didn't complete." in step['stderr']:
                    pre[str(index)] = {'didnt_complete': {'first': 1, 'ops': [op]}}
                if step['argv'] == ['xl', 'dmesg'] and doc.get('scenario') != 'xl-dmesg-boot':
                    step['dmesg_lines'] = True
                if step['rc'] is None:
                    # No answer: the hypervisor crashed and took the SSH session with it.
                    step['crash'] = True
            cases.append({'id': 'fixture/' + os.path.relpath(path, FIXTURE_DIR), 'build': build, 'steps': steps,
                          'merged': False, 'setup': doc.get('setup', []), 'pre_step_faults': pre,
                          'context': capture_context(root)})
    return cases


def payload_sources():
    """Forged payloads, or with NOREBOOT_XEN_CONTRACT_PAYLOADS=real the testbed's real ones.

    The choice is the caller's, never the machine's: ``make lab-test`` replays with forged
    payloads on any machine; ``make testbed-test`` replays again with the real payloads right
    after ``testbed-build`` made them, and a missing one fails the collection instead of
    quietly shrinking the test set.
    """
    if os.environ.get('NOREBOOT_XEN_CONTRACT_PAYLOADS', 'forged') != 'real':
        return ['forged-payloads']
    versions = ('4.17.5', '4.17.7')
    missing = [(v, n) for v in versions for n in lab_payloads.XEN_TEST_PAYLOADS if not lab_payloads.real_payload(v, n)]
    if missing:
        raise RuntimeError('NOREBOOT_XEN_CONTRACT_PAYLOADS=real but the testbed cache lacks %d real payload(s), e.g. %s %s: '
                           'run make testbed-build first' % (len(missing), missing[0][0], missing[0][1]))
    return ['real-payloads']


def _first_step(directory, scenario, argv):
    import yaml
    path = os.path.join(directory, scenario + '.yml')
    if not os.path.isfile(path):
        return None
    with open(path) as handle:
        doc = yaml.safe_load(handle)
    for step in doc['steps']:
        if [str(a) for a in step['argv']] == argv:
            return step['stdout']
    return None


def capture_context(directory):
    """The capture host's identity, from the same capture's xl info / xl list / boot xl dmesg."""
    context = {}
    info = _first_step(directory, 'xl-info', ['xl', 'info'])
    if info:
        context['info'] = {line[:23].rstrip(): line[25:] for line in info.splitlines() if line[23:25] == ': '}
    listing = _first_step(directory, 'xl-list', ['xl', 'list'])
    if listing:
        row = listing.splitlines()[1].split()
        context['dom0'] = {'mem': int(row[2]), 'vcpus': int(row[3]), 'time': float(row[5])}
    boot = _first_step(directory, 'xl-dmesg-boot', ['xl', 'dmesg'])
    if boot:
        context['boot_dmesg'] = boot.splitlines()
    return context


def apply_context(state, context):
    info = context.get('info')
    if info:
        hw, build = state['hardware'], state['build']
        state['hostname'] = info['host']
        state['kernel'] = {'release': info['release'], 'version': info['version']}
        hw.update({'sockets': int(info['nr_nodes']), 'cores_per_socket': int(info['cores_per_socket']),
                   'threads_per_core': int(info['threads_per_core']),
                   'cpu_khz': int(info['cpu_mhz'].replace('.', '')), 'hw_caps': info['hw_caps'],
                   'total_memory': int(info['total_memory']), 'free_memory': int(info['free_memory'])})
        build.update({'virt_caps': info['virt_caps'], 'xen_caps': info['xen_caps'], 'scheduler': info['xen_scheduler'],
                      'compiler': info['cc_compiler'], 'compile_by': info['cc_compile_by'],
                      'compile_domain': info['cc_compile_domain'], 'compile_date': info['cc_compile_date']})
        state['commandline'] = info['xen_commandline']
    if context.get('dom0'):
        state['domains'][0].update(context['dom0'])
    if context.get('boot_dmesg'):
        state['boot_dmesg'] = context['boot_dmesg']


def dmesg_lines_inside(sim, real):
    """The simulator's livepatch log lines appear, in order, in the real log."""
    # The livepatch lines, and the lines 4.20's "build-id mismatch:" continues on (indented with U+00A0).
    wanted = [line for line in sim.splitlines() if line.startswith(('(XEN) livepatch: ', '(XEN) \u00a0'))]
    lines = iter(real.splitlines())
    missing = [w for w in wanted if not any(line == w for line in lines)]
    return wanted, missing


# The order tests/testbed/capture_transcripts.py captures scenarios in, on one host, unrebooted.
CAPTURE_ORDER = ('xl-info xl-info-n xl-list xl-dmesg-boot xen-livepatch-help list-empty hello-cycle load '
                 'already-in-state unload-applied stacked-revert-ebusy bye-without-hello replace wrong-build-id '
                 'no-xen-buildid expectations expectations-fail prepost-hooks prepost-hooks-fail action-hooks '
                 'action-hooks-nofunc action-hooks-marker action-hooks-noapply errors-misc action-hooks-norevert '
                 'abbreviated-commands force force-no-xen-buildid xl-dmesg-after').split()
# Where the session xl-dmesg-after logged begins, when it is not the first scenario, and why.
SESSION_START = {
    'xen-4.20.4/': ('prepost-hooks-fail', 'captured in two runs on a host rebooted between them: its log '
                    'begins after the boot messages with prepost-hooks-fail'),
}


def add_capture_sessions(cases):
    """xl-dmesg-after is the log of the whole capture session: replay the session before it."""
    for case in cases:
        if not case['id'].endswith('/xl-dmesg-after.yml'):
            continue
        prefix = case['id'][:-len('xl-dmesg-after.yml')]
        by_name = {c['id'][len(prefix):-len('.yml')]: c for c in cases if c['id'].startswith(prefix)}
        real_log = case['steps'][-1]['stdout']
        session = []
        start = CAPTURE_ORDER.index(SESSION_START[prefix[len('fixture/'):]][0]) \
            if prefix[len('fixture/'):] in SESSION_START else 0
        for name in CAPTURE_ORDER[start:]:
            if name not in by_name or name == 'xl-dmesg-after':
                continue
            # A scenario may have been re-captured in a later session than this log's: replay the
            # rendezvous timeouts its own transcript recorded only when this log shows them too.
            faults = {}
            for index, armed in by_name[name].get('pre_step_faults', {}).items():
                argv = by_name[name]['steps'][int(index)]['argv']
                target = argv[2] if argv[1] != 'load' else os.path.splitext(os.path.basename(argv[2]))[0]
                seen = re.search(r'\(XEN\) livepatch: %s: Timed out on semaphore in (\w+) quiesce' % re.escape(target),
                                 real_log)
                if seen:
                    faults[index] = {key: dict(value, phase=seen.group(1)) for key, value in armed.items()}
            session.append({'steps': [s['argv'] for s in by_name[name]['steps']], 'pre_step_faults': faults})
        case['session'] = session
    return cases


CASES = reference_cases() + boot_log_cases() + add_capture_sessions(fixture_cases())
PARAMS = [(case, source) for case in CASES for source in payload_sources()]


def prepare_payloads(tmp, case, source):
    """{path in the replay namespace: file on disk} for every payload a transcript can name."""
    files = {}
    for tag, spec in sorted(PAYLOAD_BUILDS.items()):
        build = lab_model.resolve_build(spec)
        version = build['version']
        for name in lab_payloads.XEN_TEST_PAYLOADS:
            src = lab_payloads.real_payload(version, name) if source == 'real-payloads' and isinstance(spec, str) else None
            if src is None:
                src = os.path.join(tmp, 'payloads', tag, name + '.livepatch')
                if not os.path.exists(src):
                    os.makedirs(os.path.dirname(src), exist_ok=True)
                    lab_payloads.forge_xen_test_payload(src, version if isinstance(spec, str) else tag, build['build_id'], name)
            files['/root/p%s/%s.livepatch' % (tag, name)] = src
            if isinstance(spec, str) and version == case['build']['version']:
                files['/root/%s.livepatch' % name] = src
    # Paths named in the steps (fixtures may keep payloads elsewhere under /root).
    for step in case['steps']:
        for arg in step['argv']:
            stem = os.path.basename(arg)[:-len('.livepatch')] if arg.endswith('.livepatch') else None
            if stem in lab_payloads.XEN_TEST_PAYLOADS and arg.startswith('/root/') and arg not in files:
                files[arg] = files.get('/root/%s.livepatch' % stem) or files['/root/p%s/%s.livepatch' % (
                    case['build']['version'].replace('.', ''), stem)]
    return files


def chunks(text):
    """The writes a tool makes: lines, and 'Verb NAME... ' prefixes written before the outcome."""
    return re.findall(r'[^\n]*?\.\.\. (?=[^\n])|[^\n]*\n|[^\n]+$', text)


def is_interleaving(merged, out, err):
    a, b = chunks(out), chunks(err)
    memo = {}

    def walk(i, j, pos):
        if i == len(a) and j == len(b):
            return pos == len(merged)
        key = (i, j)
        if key in memo:
            return memo[key]
        ok = ((i < len(a) and merged.startswith(a[i], pos) and walk(i + 1, j, pos + len(a[i]))) or
              (j < len(b) and merged.startswith(b[j], pos) and walk(i, j + 1, pos + len(b[j]))))
        memo[key] = ok
        return ok

    return walk(0, 0, 0)


def need_root():
    if os.geteuid() != 0 or not shutil.which('unshare'):
        pytest.skip('replaying real payload paths (/root/...) needs root and unshare(1): run `make lab-test` as root')


@pytest.mark.parametrize('case,source', PARAMS, ids=['%s[%s]' % (c['id'], s) for c, s in PARAMS])
def test_transcript_replays_byte_for_byte(case, source, tmp_path):
    need_root()
    state = lab_model.new_state('dom0', case['build'], 'qemu',
                                commandline=case.get('commandline', lab_model.REFERENCE_COMMANDLINE))
    state['domains'][0]['time'] = DOM0_TIME.get(case['build']['version'], 68.9)
    apply_context(state, case.get('context') or {})
    state_path = tmp_path / 'state.json'
    state_path.write_text(json.dumps(state))
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    launcher = lab_model.write_launcher(str(tmp_path / 'xensim-launcher'))
    for tool in ('xl', 'xen-livepatch'):
        os.symlink(launcher, str(bindir / tool))
    job = {'state': str(state_path), 'bin': str(bindir), 'files': prepare_payloads(str(tmp_path), case, source),
           'setup': case['setup'], 'steps': [s['argv'] for s in case['steps']],
           'pre_step_faults': case.get('pre_step_faults', {}), 'session': case.get('session', [])}
    (tmp_path / 'job.json').write_text(json.dumps(job))
    subprocess.check_call(['unshare', '--mount', '--propagation', 'private', sys.executable, RUNNER,
                           str(tmp_path / 'job.json'), str(tmp_path / 'result.json')])
    results = [r for r in json.loads((tmp_path / 'result.json').read_text()) if r['kind'] == 'steps']
    for setup in [r for r in json.loads((tmp_path / 'result.json').read_text()) if r['kind'] == 'setup']:
        assert setup['rc'] == 0, 'setup step failed: %r' % setup
    failures = []
    for index, (step, got) in enumerate(zip(case['steps'], results)):
        where = 'step %d: %s' % (index + 1, ' '.join(step['argv']))
        if step.get('crash') and not case['merged']:
            if got['rc'] != 255 or not (got['stdout'].startswith(step['stdout']) and got['stderr'] == step['stderr']):
                failures.append('%s: [crash] the real host died here (no answer); the simulator gave rc %r, stdout %r, '
                                'stderr %r' % (where, got['rc'], got['stdout'], got['stderr']))
            continue
        if got['rc'] != step['rc']:
            failures.append('%s: rc %r, real %r (stdout %r, stderr %r)'
                            % (where, got['rc'], step['rc'], got['stdout'], got['stderr']))
            continue
        if step.get('dmesg_lines'):
            wanted, missing = dmesg_lines_inside(got['stdout'], step['stdout'])
            if not wanted or missing:
                first = wanted.index(missing[0]) if missing else 0
                failures.append('%s: [dmesg-lines] %d of the simulator\'s %d livepatch lines not found in order in '
                                'the real log; the first is line %d: %r (after %r)'
                                % (where, len(missing), len(wanted), first, missing[0] if missing else None,
                                   wanted[max(0, first - 3):first]))
        elif not case['merged']:
            for stream in ('stdout', 'stderr'):
                if got[stream] != step[stream]:
                    failures.append('%s: %s differs\n  sim:  %r\n  real: %r' % (where, stream, got[stream], step[stream]))
        elif step.get('crash'):
            if got['stdout'] + got['stderr'] != step['merged']:
                failures.append('%s: output before the crash differs\n  sim:  %r\n  real: %r'
                                % (where, got['stdout'] + got['stderr'], step['merged']))
        elif not is_interleaving(step['merged'], got['stdout'], got['stderr']):
            failures.append('%s: output differs\n  sim stdout: %r\n  sim stderr: %r\n  real merged: %r'
                            % (where, got['stdout'], got['stderr'], step['merged']))
    assert len(results) == len(case['steps'])
    assert not failures, '\n'.join(failures)


def test_every_reference_file_is_replayed_or_excluded_with_a_reason():
    seen = set()
    for root, _dirs, files in os.walk(REFERENCE_DIR):
        for name in files:
            seen.add(os.path.relpath(os.path.join(root, name), REFERENCE_DIR))
    replayed = {c['id'][len('reference/'):] for c in CASES if c['id'].startswith('reference/')}
    assert seen == replayed | set(NOT_REPLAYED)
    assert not replayed & set(NOT_REPLAYED)
    assert len(replayed) >= 10
    # The boot logs are replayed from their one home, whole and as `xl dmesg | head -20`, for every build.
    assert sorted(c['id'] for c in CASES if c['id'].startswith('fixtures/')) == sorted(
        'fixtures/xen-%s/xl_dmesg.txt%s' % (version, suffix) for version in lab_model.KNOWN_BUILDS
        for suffix in ('', ' | head -20'))


def test_unsimulated_generations_are_named():
    for directory in NOT_YET_SIMULATED:
        assert os.path.isfile(os.path.join(FIXTURE_DIR, directory, 'xl-info.yml')), directory
    assert not [c for c in CASES if c['id'].split('/')[1] in NOT_YET_SIMULATED]
    assert [c for c in CASES if c['id'].startswith('fixture/xen-4.17.5/')]


def test_interleaving_check_is_strict():
    out = 'Applying x... failed\nUnloading x... completed\n'
    err = 'Error 22: Invalid argument\n'
    assert is_interleaving('Applying x... failed\nError 22: Invalid argument\nUnloading x... completed\n', out, err)
    assert is_interleaving('Applying x... failed\nUnloading x... Error 22: Invalid argument\ncompleted\n', out, err)
    assert not is_interleaving('Applying x... failed\nUnloading x... completed\n', out, err)
    assert not is_interleaving('Applying x... failed\nError 16: Device or resource busy\nUnloading x... completed\n',
                               out, 'Error 16: Device or resource busy\n' + 'x')
