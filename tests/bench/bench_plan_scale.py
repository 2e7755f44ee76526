# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: how the plan and the gates cost grows with the fleet (no SSH, no lab); prints figures.

    .venv/bin/python tests/bench/bench_plan_scale.py [--sizes 1000,5000,20000] [--no-module] [--profile N]

(``make bench-plan``.) Synthetic fleets of N hosts: every host's ``ansible_facts.xen`` is what
noreboot.xen.xen_facts' collector (module_utils/xen_facts_collector.py) returns when fed the
recorded command output of tests/fixtures (``xl info``, ``xen-livepatch list``, ``xl dmesg``,
``xl list``, ``/proc/cpuinfo``) through fake runners, with ledgers, locks and guest manifests for
the hosts that have them. The mix: 4 hypervisor builds (4.17.5 and 4.17.7 as recorded, 4.17.3-pre
from the hand-made variant, 4.18.3 derived from 4.17.7 like the lab's ``inv-4.18.3``) on 4 hardware
classes (the Cascade Lake, Rome and QEMU cpuinfo fixtures, and Ice Lake derived from Cascade Lake),
racks of 40 hosts as failure domains; about 14 % need a reboot (4.18.3 has no payload, some
hypervisors cannot live patch, some are forced), 5 % are already patched, and a few have faults:
payloads reverted before (held, one whole group of them), left applied after failed checks,
interrupted runs (open intents), another run's lock, an unfinished reboot, unreachable, no Xen.

Each step is called in-process as the module or the playbook calls it (plugins/module_utils and
plugins/filter functions, hostvars as plain dicts), over the whole run: the plan play (filters
rollout_host_locks and rollout_plan_hosts, run_lock's claim, fleet_plan's build_plan, table and
JSON), then every wave in plan order with its gate (rollout_gate before each live patch wave,
reboot_wave_hosts and reboot_wave_gate before each reboot wave, with the outcomes of the waves
before it in hostvars), the progress callback fed one outcome per host, and the report play
(rollout_summary, reboot_fallback_summary, the tables, run_report_html). With the module step
(default) fleet_plan also runs once as a real module process (``python fleet_plan.py args.json``,
the hosts as JSON), as Ansible would run it on localhost minus the AnsiballZ wrapper.

Each size runs in its own process (peak RSS is that process's). Prints, per step: seconds at each
size, peak traced memory (tracemalloc, a second pass) and the growth ratio
``t(largest)/t(smallest)/(largest/smallest)``: about 1 is linear, much above 1 superlinear.
Not a test: nothing is asserted (the project measures speed with benchmarks that print figures).
"""

from __future__ import absolute_import, division, print_function

import argparse
import cProfile
import datetime
import io
import json
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(REPO, 'tests', 'fixtures')
sys.path.insert(0, os.path.join(REPO, 'tests', 'support'))

import yaml  # noqa: E402

from ansible_collections.noreboot.xen.plugins.filter import reboot_fallback_report as rfr  # noqa: E402
from ansible_collections.noreboot.xen.plugins.filter import reboot_waves as rw  # noqa: E402
from ansible_collections.noreboot.xen.plugins.filter import rollout_gate_summary as rgs  # noqa: E402
from ansible_collections.noreboot.xen.plugins.filter import rollout_run as rr  # noqa: E402
from ansible_collections.noreboot.xen.plugins.filter.run_report import run_report_html  # noqa: E402
from ansible_collections.noreboot.xen.plugins.module_utils import fleet_plan_builder as fpb  # noqa: E402
from ansible_collections.noreboot.xen.plugins.module_utils.controller_run_lock import RunLocks  # noqa: E402
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import LivepatchRunner, XlRunner  # noqa: E402
from ansible_collections.noreboot.xen.plugins.module_utils.xen_facts_collector import (  # noqa: E402
    collect_xen_facts,
    runner_or_none,
)
from ansible_collections.noreboot.xen.plugins.modules import fleet_plan as fleet_plan_module  # noqa: E402
from ansible_collections.noreboot.xen.plugins.plugin_utils.wave_progress import WaveProgress  # noqa: E402

import livepatch_payload_forge as forge  # noqa: E402
from xen_builds import XEN_4175, XEN_4177  # noqa: E402

SIZES = (1000, 5000, 20000)
RUN_ID = '20261202T180000Z-bench'
OTHER_RUN = '20261202T170000Z-other'
NOW = datetime.datetime(2026, 12, 2, 18, 0, tzinfo=datetime.timezone.utc)
BUDGET_PERCENT = 5
TARGET_S = 10.0


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read()


# --- The builds and hardware classes, from the recorded output ----------------------------------

B4175 = XEN_4175
B4177 = XEN_4177
B4173 = '5d3a3c0b1c6f5b0e9a1b2c3d4e5f60718293a4b5'
B4183 = '4183aa01c0ffee00000000000000000000004183'
FIXED = '4178fe0000000000000000000000000000004178'


def _retarget(info, dmesg, minor, extra, build_id, old_version, old_build):
    """``xl info`` and ``xl dmesg`` of a derived build: version and build-id substituted."""
    version = '4.%d%s' % (minor, extra)
    info = (info.replace('xen_minor              : 17', 'xen_minor              : %d' % minor)
            .replace('xen_extra              : %s' % old_version[4:], 'xen_extra              : %s' % extra)
            .replace('xen_version            : %s' % old_version, 'xen_version            : %s' % version)
            .replace(old_build, build_id))
    dmesg = dmesg.replace('Xen version %s' % old_version, 'Xen version %s' % version).replace(old_build, build_id)
    return info, dmesg


def builds():
    """build name -> dict(info, dmesg, build_id, payload name)."""
    b5 = dict(info=fixture('xen-4.17.5/xl_info.txt'), dmesg=fixture('xen-4.17.5/xl_dmesg.txt'), build_id=B4175)
    b7 = dict(info=fixture('xen-4.17.7/xl_info.txt'), dmesg=fixture('xen-4.17.7/xl_dmesg.txt'), build_id=B4177)
    info3 = fixture('variants/xl_info_colon_values.txt')
    _i, dmesg3 = _retarget(b5['info'], b5['dmesg'], 17, '.3-pre', B4173, '4.17.5', B4175)
    info18, dmesg18 = _retarget(b7['info'], b7['dmesg'], 18, '.3', B4183, '4.17.7', B4177)
    return {
        '4.17.5': b5,
        '4.17.7': b7,
        '4.17.3-pre': dict(info=info3, dmesg=dmesg3, build_id=B4173),
        '4.18.3': dict(info=info18, dmesg=dmesg18, build_id=B4183),
    }


def hardware():
    cascade = fixture('variants/cpuinfo_intel_cascade_lake.txt')
    icelake = cascade.replace('model\t\t: 85', 'model\t\t: 106').replace('Gold 6230', 'Gold 6338')
    return {
        'intel-cascadelake': cascade,
        'intel-icelake': icelake,
        'amd-rome': fixture('variants/cpuinfo_amd_rome.txt'),
        'qemu': fixture('variants/cpuinfo_qemu.txt'),
    }


PAYLOAD_BUILDS = ('4.17.5', '4.17.7', '4.17.3-pre')


def payload_name(build):
    return 'xsa950_%s' % build.replace('.', '').replace('-', '')


def write_advisory(directory):
    """The advisory of the bench: payloads for three builds, none for 4.18.3 (reboot), fixed build FIXED."""
    os.makedirs(os.path.join(directory, 'payloads'))
    livepatches = []
    shas = {}
    for build, build_id in (('4.17.5', B4175), ('4.17.7', B4177), ('4.17.3-pre', B4173)):
        rel = 'payloads/%s.livepatch' % payload_name(build)
        meta = forge.forge_payload(os.path.join(directory, rel), build_id)
        shas[build] = meta['sha256']
        livepatches.append(dict(xen_build_id=build_id, file=rel, sha256=meta['sha256'], name=payload_name(build)))
    manifest = {
        'schema': 1, 'id': 'XSA-950', 'title': 'x86: bench flaw',
        'affected': {'hypervisors': {'versions': ['>=4.17.0,<4.17.8', '>=4.18.0,<4.18.4']},
                     'hardware': [{'vendor': ['intel', 'amd']}]},
        'livepatches': livepatches,
        'fallback': {'reboot': True, 'fixed_build_ids': [FIXED],
                     'packages': {'debian': {'package': 'xen-hypervisor-4.17-amd64', 'version': '4.17.8-1'}}},
    }
    path = os.path.join(directory, 'xsa-950.yml')
    with open(path, 'w') as handle:
        handle.write(yaml.safe_dump(manifest))
    return path, shas


# --- Per-host facts ---------------------------------------------------------------------------

class FakeHost(object):
    """argv -> (rc, stdout, stderr), as the collector's runners call it."""

    def __init__(self, answers):
        self.answers = answers

    def __call__(self, argv):
        return self.answers[tuple(argv)]


def _applied_list(name):
    return fixture('xen-4.17.5/livepatch_list_applied.txt').replace(
        'xen_hello_world                         | APPLIED    | LIVEPATCH_RULEZ',
        '%-40s| APPLIED    | ' % name)


def _ledger(entries):
    return ''.join(json.dumps(e, sort_keys=True) + '\n' for e in entries)


def collect(build, hw_text, state, shas, host_index):
    """``ansible_facts.xen`` of one host, as xen_facts' collector builds it from the recorded output."""
    name = payload_name(build['name'])
    sha = shas.get(build['name'], '0' * 64)
    livepatch_list = (0, fixture('xen-4.17.5/livepatch_list_empty.txt'), '')
    ledger = []
    lock = None
    manifest = None
    if state in ('already_patched', 'open_intent', 'needs_attention'):
        livepatch_list = (0, _applied_list(name), '')
    if state == 'no_livepatch':
        livepatch_list = (1, '', fixture('variants/livepatch_list_unsupported.stderr.txt'))
    if state in ('held', 'held_group'):
        ledger = [dict(event='intent', name=name, sha256=sha, run_id='20261101T100000Z-0001', time='2026-11-01T10:00:00Z',
                       boot_id='b-%d' % host_index),
                  dict(event='outcome', name=name, sha256=sha, run_id='20261101T100000Z-0001',
                       time='2026-11-01T10:01:00Z', outcome='reverted', failed_checks=['guest_console'])]
    if state == 'needs_attention':
        ledger = [dict(event='outcome', name=name, sha256=sha, run_id='20261101T100000Z-0001',
                       time='2026-11-01T10:01:00Z', outcome='failed_applied', failed_checks=['xl_dmesg_errors'])]
    if state == 'open_intent':
        ledger = [dict(event='intent', name=name, sha256=sha, run_id='20261101T100000Z-0002', time='2026-11-01T10:00:00Z',
                       boot_id='boot-%d' % host_index)]
    if state == 'locked':
        lock = dict(path='/var/lib/noreboot-xen/rollout.lock', held=True, run_id=OTHER_RUN, pid=4242,
                    time='2026-12-02T17:59:00Z')
    if state == 'unfinished_reboot':
        ledger = [dict(event='intent', kind='reboot_fallback', name=None, run_id='20261101T100000Z-0003',
                       time='2026-11-01T10:00:00Z', advisory='XSA-950', hypervisor_build_id=build['build_id'],
                       fixed_build_ids=[FIXED], guests=['guest-1'])]
        manifest = json.dumps(dict(schema=1, run_id='20261101T100000Z-0003', status='evacuated',
                                   updated='2026-11-01T10:00:30Z',
                                   guests=[dict(name='guest-1', action='save', state='saved',
                                                file='/var/lib/noreboot-xen/save/guest-1.save')]))
    answers = {
        ('xl', 'info'): (0, build['info'], ''),
        ('xen-livepatch', 'list'): livepatch_list,
        ('xl', 'dmesg'): (0, build['dmesg'], ''),
        ('xl', 'list'): (0, fixture('xen-4.17.5/xl_list.txt'), ''),
    }
    files = {'/proc/cpuinfo': hw_text, '/proc/xen/capabilities': 'control_d\n',
             '/proc/sys/kernel/random/boot_id': 'boot-%d\n' % host_index}
    if state == 'not_xen':
        answers[('xl', 'info')] = (1, '', 'xencall: error: Could not obtain handle on privileged command interface: '
                                          'No such file or directory\n')
        files['/proc/xen/capabilities'] = ''
    host = FakeHost(answers)
    xl = runner_or_none(XlRunner, host, 'xl')
    livepatch = runner_or_none(LivepatchRunner, host, 'xen-livepatch')
    return collect_xen_facts(xl, livepatch, files.get, state_dir='/var/lib/noreboot-xen',
                             read_ledger=lambda path: _ledger(ledger) if ledger else None,
                             read_manifest=lambda path: manifest, read_lock=lambda state_dir: lock)


def host_state(index, n):
    """What is special about host ``index`` of ``n`` (deterministic; rates per 1000 hosts)."""
    slot = index % 1000
    if slot < 3:
        return 'unreachable'
    if slot < 5:
        return 'not_xen'
    if slot < 7:
        return 'locked'
    if slot < 8:
        return 'unfinished_reboot'
    if slot < 10:
        return 'open_intent'
    if slot < 11:
        return 'needs_attention'
    if slot < 13:
        return 'held'
    if slot < 33:
        return 'no_livepatch'
    if slot < 43:
        return 'forced'
    if slot < 93:
        return 'already_patched'
    return 'clean'


def fleet(n, shas):
    """``(hostvars, inventory)``: what the detect play leaves in hostvars for ``n`` hosts."""
    build_list = builds()
    for name, build in build_list.items():
        build['name'] = name
    hw_list = hardware()
    hw_names = sorted(hw_list)
    # Build shares: 4.17.7 40 %, 4.17.5 30 %, 4.17.3-pre 20 %, 4.18.3 10 % (no payload: reboot).
    cut = (('4.17.7', 40), ('4.17.5', 70), ('4.17.3-pre', 90), ('4.18.3', 100))
    templates = {}
    hostvars = {}
    inventory = []
    for index in range(n):
        host = 'xen%05d' % index
        inventory.append(host)
        percent = (index * 7) % 100
        build = next(name for name, upto in cut if percent < upto)
        hw = hw_names[(index // 3) % len(hw_names)]
        state = host_state(index, n)
        # One group's canary failed (4.17.3-pre on QEMU): its hosts are held, none is already patched there.
        if build == '4.17.3-pre' and hw == 'qemu' and state in ('clean', 'already_patched'):
            state = 'held_group' if index % 250 == 3 else 'clean'
        values = dict(noreboot_xen_failure_domain='rack-%03d' % (index // 40))
        if state == 'unreachable':
            values['noreboot_xen_detected'] = dict(unreachable=True, error='Failed to connect to the host via ssh')
            hostvars[host] = values
            continue
        key = (build, hw, state if state not in ('forced',) else 'clean')
        if key not in templates:
            templates[key] = json.dumps(collect(build_list[build], hw_list[hw], key[2], shas, 0))
        xen = json.loads(templates[key])
        if xen.get('livepatch'):
            xen['livepatch']['boot_id'] = 'boot-%d' % index
        values['ansible_facts'] = dict(xen=xen)
        values['noreboot_xen_detected'] = dict(unreachable=False, error=None)
        if state == 'forced':
            values['noreboot_xen_force_reboot'] = True
        hostvars[host] = values
    return hostvars, inventory


# --- Simulated outcomes ---------------------------------------------------------------------------

def live_outcome(host_index):
    slot = host_index % 1000
    if slot == 517:
        return 'reverted', dict(failed_checks=['guest_console'], msg='health checks failed')
    if slot == 733:
        return 'unreachable', dict(msg='Failed to connect to the host via ssh')
    return 'patched', dict(msg='applied', failed_checks=[])


def reboot_outcome(host_index):
    if host_index % 1000 == 611:
        return 'failed', dict(outcome='failed', msg='grub default entry not written', stranded=[])
    return 'rebooted', dict(outcome='rebooted', msg='fixed build running, every guest back', stranded=[],
                            build_id_after=FIXED)


# --- The run ----------------------------------------------------------------------------------

class Timer(object):
    """Seconds per step: CPU time of this process (``seconds``; what the step costs, whatever else runs on the
    machine) and wall-clock time (``wall``)."""

    def __init__(self):
        self.seconds = {}
        self.wall = {}
        self.calls = {}

    def __call__(self, step, function, *args, **kwargs):
        cpu, wall = time.process_time(), time.perf_counter()
        value = function(*args, **kwargs)
        self.seconds[step] = self.seconds.get(step, 0.0) + time.process_time() - cpu
        self.wall[step] = self.wall.get(step, 0.0) + time.perf_counter() - wall
        self.calls[step] = self.calls.get(step, 0) + 1
        return value


def run(n, workdir, timer):
    """One synthetic rolling run over ``n`` hosts; every controller-side step timed by ``timer``."""
    manifest_path, _shas = ADVISORY
    hostvars, inventory = FLEETS[n]
    hostvars = dict((h, dict(v)) for h, v in hostvars.items())
    hostvars['localhost'] = {}
    locks = timer('rollout_host_locks', rr.rollout_host_locks, inventory, hostvars, run_id=RUN_ID)
    claimed = timer('run_lock claim', RunLocks(os.path.join(workdir, 'runs')).claim, RUN_ID, inventory,
                    dict(pid=None, pid_start=None, boot_id=None), skip_held=True, host_locks=locks)
    plan_hosts = timer('rollout_plan_hosts', rr.rollout_plan_hosts, claimed['hosts'], hostvars)
    documents, problems = fleet_plan_module.read_manifests([manifest_path])
    assert not problems, problems
    advisories = timer('fleet_plan: manifests', fpb.load_advisories, documents)
    plan = timer('fleet_plan: build_plan', fpb.build_plan, advisories, plan_hosts, {}, now=NOW)
    plan['signatures'] = []
    timer('fleet_plan: table', fpb.render_table, plan)
    timer('fleet_plan: plan JSON', fpb.plan_json, plan)
    hostvars['localhost']['noreboot_xen_plan'] = plan
    progress = WaveProgress()
    progress.on_plan(plan)
    progress.on_facts('localhost', dict(noreboot_xen_with_reboots=True))
    index_of = dict((h, i) for i, h in enumerate(inventory))
    gate = {}
    wave_times = {}
    clock = [1000.0]

    def tick():
        clock[0] += 10.0
        return clock[0]

    finish = timer('finish_reboot_hosts', rw.finish_reboot_hosts, plan)
    for host in finish:
        hostvars[host].update(reboot_fallback_outcome='rebooted',
                              reboot_fallback_result=dict(outcome='rebooted', msg='finished', stranded=[]))
    gate = timer('finish_reboot_gate', rw.finish_reboot_gate, plan, hostvars, previous=gate)
    reboot_index = 0
    for wave in plan['waves']:
        label = 'wave_%d' % wave['number']
        if wave['kind'] == 'reboot':
            reboot_index += 1
            timer('reboot_wave_hosts', rw.reboot_wave_hosts, plan, reboot_index)
            gate = timer('reboot_wave_gate', rw.reboot_wave_gate, plan, hostvars, wave_index=reboot_index,
                         budget_percent=BUDGET_PERCENT, previous=gate)
        else:
            gate = timer('rollout_gate', rgs.rollout_gate, plan, hostvars, budget_percent=BUDGET_PERCENT,
                         previous=gate, with_reboots=True)
        wave_times = dict(wave_times, **{label: dict(start=tick())})
        timer('rollout_progress callback', progress.on_facts, 'localhost',
              dict(noreboot_xen_gate=gate, noreboot_xen_wave_times=wave_times))
        if not gate['proceed']:
            continue
        for host in wave['hosts']:
            if wave['kind'] == 'reboot':
                outcome, result = reboot_outcome(index_of[host])
                facts = dict(reboot_fallback_outcome=outcome, reboot_fallback_result=result)
            else:
                outcome, result = live_outcome(index_of[host])
                facts = dict(livepatch_outcome=outcome, livepatch_result=result)
            hostvars[host].update(facts)
            timer('rollout_progress callback', progress.on_facts, host, facts)
        wave_times[label] = dict(wave_times[label], end=tick())
        timer('rollout_progress callback', progress.on_facts, 'localhost', dict(noreboot_xen_wave_times=wave_times))
    gate = timer('rollout_gate', rgs.rollout_gate, plan, hostvars, budget_percent=BUDGET_PERCENT, previous=gate,
                 with_reboots=True)
    summary = timer('rollout_summary', rgs.rollout_summary, plan, hostvars, gate=gate, wave_times=wave_times,
                    run_id=RUN_ID, with_reboots=True, left_to_other_runs=claimed['held'])
    summary['reboot_fallback'] = timer('reboot_fallback_summary', rfr.reboot_fallback_summary, plan, hostvars)
    timer('summary tables', rgs.rollout_summary_table, summary)
    timer('summary tables', rfr.reboot_fallback_table, summary['reboot_fallback'])
    timer('summary tables', rfr.reboot_fallback_failures, summary['reboot_fallback'])
    timer('run_report_html', run_report_html, summary, plan=plan, wave_times=wave_times, started=1000.0,
          ran_by={'playbook': 'noreboot.xen.rolling_livepatch'}, generated=NOW.timestamp())
    return plan, summary, gate


def run_module_process(n, workdir):
    """fleet_plan as a module process with the hosts as JSON; seconds, or None when it failed."""
    manifest_path, _shas = ADVISORY
    hostvars, inventory = FLEETS[n]
    hosts = rr.rollout_plan_hosts(inventory, hostvars)
    args = os.path.join(workdir, 'args-%d.json' % n)
    with open(args, 'w') as handle:
        json.dump(dict(ANSIBLE_MODULE_ARGS=dict(advisories=[manifest_path], hosts=hosts,
                                                plan_path=os.path.join(workdir, 'plan-%d.json' % n))), handle)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, fleet_plan_module.__file__, args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = dict(failed=True, msg=done.stderr.decode('utf-8', 'replace')[-500:])
    if result.get('failed'):
        print('fleet_plan module failed: %s' % result.get('msg'), file=sys.stderr)
        return None, None, len(done.stdout), after.ru_maxrss
    return elapsed, wall, len(done.stdout), after.ru_maxrss


ADVISORY = None
FLEETS = {}


def measure(n, with_module, profile_top, repeats):
    """Figures of one size (run in a child process): dict of step -> seconds, peak memory, plan shape."""
    global ADVISORY
    workdir = tempfile.mkdtemp(prefix='bench-plan-')
    try:
        ADVISORY = write_advisory(os.path.join(workdir, 'advisory'))
        started = time.perf_counter()
        FLEETS[n] = fleet(n, ADVISORY[1])
        generate_s = time.perf_counter() - started
        best = None
        for attempt in range(repeats):
            timer = Timer()
            plan, summary, gate = run(n, os.path.join(workdir, 'run%d' % attempt), timer)
            if best is None or sum(timer.seconds.values()) < sum(best.seconds.values()):  # fastest run
                best = timer
        rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        run(n, os.path.join(workdir, 'traced'), Timer())
        _current, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        profile = None
        if profile_top:
            profiler = cProfile.Profile()
            profiler.enable()
            run(n, os.path.join(workdir, 'profiled'), Timer())
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats('cumulative').print_stats(profile_top)
            profile = out.getvalue()
        module_s = module_wall = module_bytes = module_rss = None
        if with_module:
            module_s, module_wall, module_bytes, module_rss = run_module_process(n, workdir)
        return dict(n=n, seconds=best.seconds, wall=best.wall, calls=best.calls, module_wall=module_wall,
                    module_rss_mib=(module_rss or 0) / 1024.0, generate_s=generate_s, rss_mib=rss_kib / 1024.0,
                    traced_peak_mib=traced_peak / 1048576.0, module_s=module_s, module_mib=(module_bytes or 0) / 1048576.0,
                    waves=len(plan['waves']), counts=plan['counts'], stopped=summary['stopped'],
                    failures=gate.get('failures'), profile=profile)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def child(args):
    figures = measure(args.child, not args.no_module, args.profile, args.repeats)
    sys.stdout.write(json.dumps(figures))


PLAN_STEPS = ('rollout_host_locks', 'run_lock claim', 'rollout_plan_hosts', 'fleet_plan: manifests',
              'fleet_plan: build_plan', 'fleet_plan: table', 'fleet_plan: plan JSON')


def report(results):
    sizes = [r['n'] for r in results]
    small, large = results[0], results[-1]
    scale = float(large['n']) / small['n']
    steps = [s for s in PLAN_STEPS if s in small['seconds']] + sorted(s for s in small['seconds'] if s not in PLAN_STEPS)
    width = max(len(s) for s in steps) + 10
    print('bench_plan_scale: %s UTC, %s, %d CPU(s), Python %s, load average %s' % (
        datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'), platform.machine(),
        os.cpu_count() or 0, platform.python_version(), ' '.join('%.1f' % v for v in os.getloadavg())))
    print('hosts: %s; waves: %s; decisions at %d: %s' % (
        ', '.join(str(n) for n in sizes), ', '.join(str(r['waves']) for r in results), large['n'],
        ', '.join('%s %d' % kv for kv in sorted(large['counts'].items()) if kv[1])))
    print('CPU seconds per step (calls at %d hosts); growth = t(%d)/t(%d)/%.0f: 1 is linear' % (
        large['n'], large['n'], small['n'], scale))
    head = '%-*s' % (width, 'step') + ''.join('%10s' % n for n in sizes) + '%8s' % 'growth'
    print(head)
    print('-' * len(head))

    def row(name, values, calls=None, fmt='%10.3f'):
        label = name if calls is None else '%s (%d)' % (name, calls)
        cells = ''.join('%10s' % '-' if v is None else fmt % v for v in values)
        first, last = values[0], values[-1]
        growth = '%8.2f' % (last / first / scale) if first and last else '%8s' % '-'
        print('%-*s%s%s' % (width, label, cells, growth))

    for step in steps:
        row(step, [r['seconds'].get(step) for r in results], large['calls'].get(step))
    print('-' * len(head))

    def total(result, key, plan):
        return sum(v for s, v in result[key].items() if (s in PLAN_STEPS) == plan)
    row('plan play, CPU', [total(r, 'seconds', True) for r in results])
    row('plan play, wall', [total(r, 'wall', True) for r in results])
    row('waves+report, CPU', [total(r, 'seconds', False) for r in results])
    row('waves+report, wall', [total(r, 'wall', False) for r in results])
    if any(r['module_s'] is not None for r in results):
        row('fleet_plan module, CPU', [r['module_s'] for r in results])
        row('fleet_plan module, wall', [r['module_wall'] for r in results])
        row('module peak RSS (MiB)', [r['module_rss_mib'] for r in results], fmt='%10.0f')
        row('module result (MiB)', [r['module_mib'] for r in results], fmt='%10.1f')
    row('bench peak RSS (MiB)', [r['rss_mib'] for r in results], fmt='%10.0f')
    row('run peak traced (MiB)', [r['traced_peak_mib'] for r in results], fmt='%10.0f')
    row('facts generated (s)', [r['generate_s'] for r in results], fmt='%10.1f')
    print('target %d hosts planned in under %.0f s: build_plan %.2f s CPU, plan play %.2f s CPU%s' % (
        large['n'], TARGET_S, large['seconds'].get('fleet_plan: build_plan', 0.0), total(large, 'seconds', True),
        ', fleet_plan module process %.2f s CPU (%.2f s wall)' % (large['module_s'], large['module_wall'])
        if large['module_s'] is not None else ''))
    for result in results:
        if result.get('profile'):
            print('\ncProfile of the run at %d hosts (cumulative):' % result['n'])
            print(result['profile'])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--sizes', default=','.join(str(n) for n in SIZES), help='host counts, comma separated')
    parser.add_argument('--no-module', action='store_true', help='skip the fleet_plan module process')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='also profile the run at the largest size and print the top N entries')
    parser.add_argument('--repeats', type=int, default=1, help='runs per size; the fastest is reported')
    parser.add_argument('--child', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    sizes = [int(s) for s in args.sizes.split(',') if s.strip()]
    results = []
    for n in sizes:
        argv = [sys.executable, os.path.abspath(__file__), '--child', str(n), '--repeats', str(args.repeats)]
        if args.no_module:
            argv.append('--no-module')
        if args.profile and n == sizes[-1]:
            argv += ['--profile', str(args.profile)]
        done = subprocess.run(argv, stdout=subprocess.PIPE, check=True)
        results.append(json.loads(done.stdout))
        seconds = results[-1]['seconds']
        print('  %d hosts measured: build_plan %.2f s CPU, all in-process steps %.2f s CPU, module process %s s CPU'
              % (n, seconds.get('fleet_plan: build_plan', 0.0), sum(seconds.values()), results[-1]['module_s']),
              file=sys.stderr, flush=True)
    report(results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
