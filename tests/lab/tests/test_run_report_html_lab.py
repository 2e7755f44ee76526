# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML reports of a lab run, opened in headless Chromium (Debian's `chromium`, installed by `make apt`).

A lab run of playbooks/rolling_livepatch.yml on tests/lab/fleets/small.yml (6 hosts: canaries, a live patch
wave whose host's guest crashes after the apply, reboot waves), then playbooks/inventory_report.yml with the
same advisory. Both HTML reports are opened from disk by Chromium in a network namespace with no network
(`unshare -n`), its NetLog recording every request: the page asks for nothing outside the file (and a
planted page with external references is caught by the same checks, so the checks can fail). Screenshots
at desktop width (1280x1600) are kept as test artifacts (tests/output/run_report_html/, paths printed).
The DOM as Chromium built it (--dump-dom) is read back: the charts' numbers are the JSON summary's, the
attention table lists the faulted host. Needs root; lab instance NOREBOOT_XEN_LAB_INSTANCE (7, conftest.py).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import stat
import struct
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(LAB))

import bench_rolling_livepatch as rl  # noqa: E402
import html_report_reader as reader  # noqa: E402
import lab_for_test  # noqa: E402
import labctl  # noqa: E402

SPEC = os.path.join(LAB, 'fleets', 'small.yml')
CRASH = 's5-002'           # its guest crashes after the apply: reverted in the live patch wave
REBOOT = ['s7-001', 's7-002', 'snolp-001']
ARTIFACTS = os.path.join(REPO, 'tests', 'output', 'run_report_html')
WIDTH, HEIGHT = 1280, 1600
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the lab needs root: run it as root')


def chromium(workdir, url, *args):
    """Chromium headless on ``url`` in a network namespace of its own (no network at all), with a fresh
    profile and a NetLog; returns (stdout, the page's requests as ``[url]``)."""
    assert CHROMIUM, 'chromium is not installed: run `make apt` (APT_PACKAGES has chromium)'
    netlog = os.path.join(workdir, 'netlog-%d.json' % len(os.listdir(workdir)))
    profile = os.path.join(workdir, 'profile-%d' % len(os.listdir(workdir)))
    argv = ['unshare', '-n', CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
            '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--disable-extensions', '--user-data-dir=%s' % profile, '--log-net-log=%s' % netlog,
            '--net-log-capture-mode=Everything'] + list(args) + [url]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, page_requests(netlog)


def page_requests(netlog):
    """The URLs the page asked for (NetLog URL_REQUEST_START_JOB whose site is the file:// page; Chromium's own
    background requests have no site and are left out), other than the file itself."""
    with open(netlog) as handle:
        log = json.load(handle)
    names = dict((v, k) for k, v in log['constants']['logEventTypes'].items())
    found = []
    for event in log['events']:
        params = event.get('params') or {}
        if names.get(event['type']) != 'URL_REQUEST_START_JOB' or 'site=file://' not in str(params.get('site_for_cookies')):
            continue
        if not str(params.get('url', '')).startswith('file://'):
            found.append(params.get('url'))
    return found


def png_size(path):
    with open(path, 'rb') as handle:
        head = handle.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', path
    return struct.unpack('>II', head[16:24])


@pytest.fixture(scope='module')
def lab_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('html'))
    report_dir = os.path.join(workdir, 'report')
    with lab_for_test.lab_up(workdir, spec_path=SPEC) as up:
        inventory = up['inventory']
        manifest, _expects = rl.write_advisory(os.path.join(workdir, 'advisory'))
        rl.stage_fixed_build(REBOOT)
        labctl.edit_host_state(CRASH, lambda state: state['faults'].__setitem__('guest_crash_after_apply',
                                                                                {'after_applies': 1}))
        summary_path = os.path.join(report_dir, 'rolling_livepatch-lab.json')
        extra = {'noreboot_xen_reboot_ok': True, 'noreboot_xen_failure_budget_hosts': 2,
                 'reboot_fallback_install_packages': False, 'reboot_fallback_reboot_timeout': 120,
                 'noreboot_xen_run_lock_dir': os.path.join(workdir, 'runs')}
        env = rl.rollout_env(workdir)
        proc = subprocess.run(rl.rollout_command(inventory, manifest, summary_path, extra), cwd=rl.REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        with open(os.path.join(workdir, 'run.log'), 'w') as handle:
            handle.write(proc.stdout)
        assert os.path.exists(summary_path), proc.stdout[-4000:]
        # The fleet as it is after the run, with the same advisory: the state per advisory.
        report = subprocess.run([rl.ANSIBLE_PLAYBOOK, '-i', inventory, os.path.join(REPO, 'playbooks', 'inventory_report.yml'),
                                 '-e', json.dumps({'noreboot_xen_report_dir': report_dir,
                                                   'noreboot_xen_advisories': [manifest]})],
                                cwd=rl.REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, check=False)
        with open(os.path.join(workdir, 'inventory_report.log'), 'w') as handle:
            handle.write(report.stdout)
        assert report.returncode == 0, report.stdout[-4000:]
        yield dict(rc=proc.returncode, output=proc.stdout, workdir=workdir, report_dir=report_dir,
                   summary_path=summary_path, html=summary_path[:-len('.json')] + '.html',
                   fleet_html=os.path.join(report_dir, 'fleet_report.html'),
                   fleet_json=os.path.join(report_dir, 'fleet_summary.json'))


def load(path):
    with open(path) as handle:
        return json.load(handle) if path.endswith('.json') else handle.read()


@pytest.fixture(scope='module')
def browser(lab_run):
    """Both reports opened in Chromium: screenshots (kept under tests/output/run_report_html/) and the DOM."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    scratch = os.path.join(lab_run['workdir'], 'chromium')
    os.makedirs(scratch)
    seen = {}
    for name, path in (('run_report', lab_run['html']), ('fleet_report', lab_run['fleet_html'])):
        shot = os.path.join(ARTIFACTS, '%s.png' % name)
        if os.path.exists(shot):
            os.unlink(shot)
        _out, shot_requests = chromium(scratch, 'file://' + path, '--window-size=%d,%d' % (WIDTH, HEIGHT),
                                       '--screenshot=%s' % shot)
        dom, dom_requests = chromium(scratch, 'file://' + path, '--window-size=%d,%d' % (WIDTH, HEIGHT), '--dump-dom')
        shutil.copyfile(path, os.path.join(ARTIFACTS, os.path.basename(path)))
        print('\n%s: screenshot %s (%s)' % (name, shot, path))
        seen[name] = dict(shot=shot, dom=dom, requests=shot_requests + dom_requests)
    return seen


def test_the_run_report_is_written_next_to_the_json_summary(lab_run):
    summary = load(lab_run['summary_path'])
    # The budget (2) allows the reverted host: the run completes (rc 0) and reports it.
    assert lab_run['rc'] == 0 and summary['hosts'][CRASH]['outcome'] == 'reverted', lab_run['output'][-3000:]
    for path in (lab_run['summary_path'], lab_run['html']):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert stat.S_IMODE(os.stat(lab_run['fleet_html']).st_mode) == 0o644
    html = load(lab_run['html'])
    assert html.startswith('<!DOCTYPE html>') and summary['run_id'] in html


def test_no_request_leaves_the_file(lab_run, browser):
    for path in (lab_run['html'], lab_run['fleet_html']):
        assert reader.external_references(load(path)) == [], path
    for name, seen in browser.items():
        assert seen['requests'] == [], (name, seen['requests'])
        assert reader.external_references(seen['dom']) == [], name


def test_the_checks_catch_a_page_that_fetches(lab_run):
    """The same checks on a copy of the run report with external references planted: they must see them."""
    html = load(lab_run['html'])
    bad = html.replace('</style>', 'h1{background:url(https://192.0.2.7/bg.png)}</style>', 1).replace(
        '<h1>', '<img src="http://192.0.2.8/pixel.png"><h1>', 1)
    path = os.path.join(lab_run['workdir'], 'planted.html')
    with open(path, 'w') as handle:
        handle.write(bad)
    problems = reader.external_references(bad)
    assert any('192.0.2.7' in p for p in problems) and any('<img>' in p for p in problems), problems
    scratch = os.path.join(lab_run['workdir'], 'chromium-planted')
    os.makedirs(scratch)
    _out, requests = chromium(scratch, 'file://' + path, '--dump-dom')
    assert sorted(requests) == ['http://192.0.2.8/pixel.png', 'https://192.0.2.7/bg.png'], requests


def test_screenshots_at_desktop_width(browser):
    for name, seen in browser.items():
        assert png_size(seen['shot']) == (WIDTH, HEIGHT), name
        # A page with charts and tables, not a blank or error page.
        assert os.path.getsize(seen['shot']) > 40000, (name, os.path.getsize(seen['shot']))


def test_run_report_charts_have_the_summary_numbers(lab_run, browser):
    summary = load(lab_run['summary_path'])
    page = reader.read(browser['run_report']['dom'])
    charts = reader.charts(page)
    assert set(charts) == {'outcomes-per-wave', 'timeline', 'fleet-before', 'fleet-after'}
    waves = reader.bars(page, 'outcomes-per-wave')
    assert [b['attrs']['data-wave'] for b in waves.values()] == [row['wave'] for row in summary['waves']]
    for row in summary['waves']:
        one_bar = waves['%s (%s)' % (row['wave'], row['kind'])]
        assert int(one_bar['attrs']['data-total']) == row['hosts']
        expected = dict((k, v) for k, v in row.items() if k not in ('wave', 'kind', 'hosts', 'elapsed_s') and v)
        assert one_bar['segments'] == expected, (row, one_bar)
    assert 'reboot' in [r['kind'] for r in summary['waves']] and 'canary' in [r['kind'] for r in summary['waves']]
    # Timeline: every wave that ran, its elapsed time, and the budget used after it; the last is the summary's.
    spans = reader.spans(page)
    ran = [r for r in summary['waves'] if r['kind'] != 'none' and r['elapsed_s'] is not None]
    assert [s['data-wave'] for s in spans] == [r['wave'] for r in ran]
    assert set(s['data-state'] for s in spans) == {'ran'}
    for span, row in zip(spans, ran):
        assert float(span['data-elapsed-s']) == pytest.approx(row['elapsed_s'], abs=0.05)
        assert float(span['data-end-s']) - float(span['data-start-s']) == pytest.approx(row['elapsed_s'], abs=0.15)
    assert int(spans[-1]['data-budget-used']) == summary['budget']['failures'] == 1
    assert charts['timeline']['data-budget-limit'] == str(summary['budget']['limit']) == '2'
    assert [int(s['data-budget-used']) for s in spans] == sorted(int(s['data-budget-used']) for s in spans)
    # Fleet before (plan decisions) and after (outcomes): every host counted once, by build and hardware class.
    before = reader.bars(page, 'fleet-before')
    after = reader.bars(page, 'fleet-after')
    assert sum(sum(b['segments'].values()) for b in before.values()) == len(summary['hosts'])
    assert sum(sum(b['segments'].values()) for b in after.values()) == len(summary['hosts'])
    outcomes = {}
    for one_bar in after.values():
        for outcome, count in one_bar['segments'].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    assert outcomes == dict((k, v) for k, v in summary['totals'].items() if k != 'hosts' and v)
    # Per hardware class, the hosts before the run are those the fleet report finds afterwards (a class does not change).
    per_class = {}
    for entry in load(lab_run['fleet_json'])['hosts'].values():
        per_class[entry['hardware_class']] = per_class.get(entry['hardware_class'], 0) + 1
    for chart in (before, after):
        found = {}
        for one_bar in chart.values():
            found[one_bar['attrs']['data-class']] = found.get(one_bar['attrs']['data-class'], 0) + int(one_bar['attrs']['data-total'])
        assert found == per_class and len(per_class) == 4, (found, per_class)
    # The rebooted hosts are on the fixed build after the run.
    fixed = rl.FIXED_BUILD['build_id'][:12]
    assert sum(b['segments'].get('rebooted', 0) for b in after.values() if b['attrs']['data-build'] == fixed) == \
        summary['totals']['rebooted'] == len(REBOOT)


def test_run_report_attention_table_lists_the_faulted_host(lab_run, browser):
    summary = load(lab_run['summary_path'])
    page = reader.read(browser['run_report']['dom'])
    rows = page.tables['attention']
    assert rows[0] == ['host', 'wave', 'outcome', 'reason', 'next step']
    hosts = [r[0] for r in rows[1:]]
    unsettled = sorted(h for h, e in summary['hosts'].items()
                       if e['outcome'] not in ('patched', 'rebooted', 'already_patched', 'not_affected', 'not_xen'))
    assert hosts == unsettled == [CRASH], rows
    row = rows[1]
    assert row[2] == 'reverted' and row[1] == summary['hosts'][CRASH]['wave']
    assert row[3] == summary['hosts'][CRASH]['detail'] and row[3], row
    assert 'noreboot_xen_retry_failed' in row[4]
    text = ''.join(page.texts)
    plan_advisory = 'LAB-XSA-1'
    assert plan_advisory in text and summary['run_id'] in text and 'noreboot.xen.rolling_livepatch' in text
    sha = page.tables['advisories'][1:]
    assert sha and all(len(r[5]) == 64 and len(r[4]) == 40 and r[0] == plan_advisory for r in sha), sha


def test_fleet_report_states_per_advisory(lab_run, browser):
    summary = load(lab_run['summary_path'])
    fleet = load(lab_run['fleet_json'])
    page = reader.read(browser['fleet_report']['dom'])
    assert set(reader.charts(page)) == {'state-per-advisory', 'fleet-builds', 'effective-versions'}
    table = page.tables['hosts']
    head = table[0]
    rows = dict((r[0], dict(zip(head, r))) for r in table[1:])
    assert sorted(rows) == sorted(fleet['hosts'])
    expected = {'patched': 'patched live', 'rebooted': 'not affected', 'reverted': 'needs attention',
                'already_patched': 'patched live'}
    for host, entry in summary['hosts'].items():
        assert rows[host]['LAB-XSA-1'] == expected[entry['outcome']], (host, entry, rows[host])
        assert rows[host]['effective version'] == fleet['hosts'][host]['effective_version']
    counts = {}
    for row in rows.values():
        counts[row['LAB-XSA-1']] = counts.get(row['LAB-XSA-1'], 0) + 1
    one_bar = reader.bars(page, 'state-per-advisory')['LAB-XSA-1']
    words = {'patched_live': 'patched live', 'needs_attention': 'needs attention', 'not_affected': 'not affected',
             'pending_reboot': 'pending reboot', 'unknown': 'unknown', 'patch_available': 'patch available (not applied)'}
    assert dict((words[k], v) for k, v in one_bar['segments'].items()) == counts
    assert counts['needs attention'] == 1 and rows[CRASH]['LAB-XSA-1'] == 'needs attention'
    builds = reader.bars(page, 'fleet-builds')
    assert sum(int(b['attrs']['data-total']) for b in builds.values()) == fleet['hosts_present']
    versions = reader.bars(page, 'effective-versions')
    assert dict((label, int(b['attrs']['data-total'])) for label, b in versions.items()) == fleet['by_effective_version']
