# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Self-contained HTML reports (pure Python, controller side): the run report of a rolling run
(rolling_livepatch.yml, reboot_fallback.yml) and the fleet's patch state (inventory_report.yml).

One file each, nothing outside it: no script, no external URL, font or style sheet; the charts are
inline SVG drawn from the summary. Every value that comes from a host, a manifest or an operator is
escaped (``esc``), in text and in attributes. The charts carry their numbers as data attributes
(``data-chart``, ``data-wave``, ``data-outcome``, ``data-count``...) so that a test or a tool can read
them back and compare them with the JSON summary.

* ``run_report(summary, plan, wave_times, started, ran_by, title, generated)``: outcomes per wave
  (stacked bars), the run's timeline (waves on a time axis, the failure budget used after each wave),
  the fleet by hypervisor build and hardware class before and after, the hosts that need attention
  (reason and next step), advisories, payload sha256s, the plan, the run id and who ran it.
* ``fleet_report(fleet, plan, ran_by, title, generated)``: per host the running build, the effective
  version and the state per advisory (patched live, pending reboot, needs attention, not affected,
  unknown, and patch available when a payload fits but is not applied), with counts and charts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.advisory_signature import summary_line
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb

# Outcomes of the run summary, in the order they are stacked, with their colour.
OUTCOME_COLOURS = (
    (rb.PATCHED, '#2e7d32'),
    (rb.REBOOTED, '#00838f'),
    (rb.ALREADY_PATCHED, '#81c784'),
    (rb.REVERTED, '#ef6c00'),
    (rb.FAILED, '#c62828'),
    (rb.FAILED_APPLIED, '#7b1fa2'),
    (rb.HELD, '#6d4c41'),
    (rb.NEEDS_ATTENTION, '#ad1457'),
    (rb.PENDING_REBOOT, '#5e35b1'),
    (rb.UNREACHABLE, '#616161'),
    (rb.NOT_STARTED, '#bdbdbd'),
    (rb.NOT_AFFECTED, '#90a4ae'),
    (rb.NOT_XEN, '#cfd8dc'),
    # Another run's transaction held the host's lock: left to that run (not a failure).
    ('held_by_other_run', '#8d6e63'),
)
# Outcomes that count in the failure budget once their wave ran (rollout_budget.FAILURE_OUTCOMES as
# the summary names them: a previously reverted host is reported ``held``).
BUDGET_OUTCOMES = (rb.FAILED, rb.FAILED_APPLIED, rb.REVERTED, rb.UNREACHABLE, rb.HELD)
# Outcomes that need nobody.
SETTLED = (rb.PATCHED, rb.REBOOTED, rb.ALREADY_PATCHED, rb.NOT_AFFECTED, rb.NOT_XEN)

NEXT_STEPS = {
    rb.REVERTED: 'The payload failed its health checks and was reverted: read the failed checks, fix the cause, '
                 'then release it with noreboot_xen_retry_failed=[payload] or reboot the host into the fixed build',
    rb.FAILED: 'Look at the reason on the host (xl dmesg, the rollout ledger); run again once fixed, or reboot it '
               'into the fixed build',
    rb.FAILED_APPLIED: 'The payload is still APPLIED after failed checks: revert it (xen-livepatch revert/unload) '
                       'or reboot the host, then detect again',
    rb.NEEDS_ATTENTION: 'A payload was left APPLIED after failed checks: revert it (xen-livepatch revert/unload) '
                        'or reboot the host, then detect again',
    rb.HELD: 'Held: the payload failed here or on its group before; fix the cause, then release it with '
             'noreboot_xen_retry_failed=[payload], or reboot the host into the fixed build',
    rb.UNREACHABLE: 'Check that the host is up and reachable over SSH, then run the same command again',
    rb.NOT_STARTED: 'Its wave did not run (the run stopped first): fix what stopped the run, then run again',
    rb.PENDING_REBOOT: 'Only a reboot fixes it: run with noreboot_xen_reboot_ok=true (or reboot_fallback.yml)',
    'held_by_other_run': 'Another run held the host: once that run has ended, run again (or check its summary)',
}


def outcome_names():
    """Every summary outcome, in stacking order: the coloured ones, then any other summary column."""
    names = [name for name, _colour in OUTCOME_COLOURS]
    return names + [c for c in rb.SUMMARY_COLUMNS if c not in names]


# States of a host for one advisory in the fleet report (Ubuntu Livepatch-like).
PATCHED_LIVE = 'patched_live'
PATCH_AVAILABLE = 'patch_available'
STATE_PENDING_REBOOT = 'pending_reboot'
STATE_NEEDS_ATTENTION = 'needs_attention'
STATE_NOT_AFFECTED = 'not_affected'
STATE_UNKNOWN = 'unknown'
STATE_COLOURS = (
    (PATCHED_LIVE, '#2e7d32'),
    (PATCH_AVAILABLE, '#f9a825'),
    (STATE_PENDING_REBOOT, '#5e35b1'),
    (STATE_NEEDS_ATTENTION, '#c62828'),
    (STATE_NOT_AFFECTED, '#90a4ae'),
    (STATE_UNKNOWN, '#616161'),
)
STATE_WORDS = {
    PATCHED_LIVE: 'patched live',
    PATCH_AVAILABLE: 'patch available (not applied)',
    STATE_PENDING_REBOOT: 'pending reboot',
    STATE_NEEDS_ATTENTION: 'needs attention',
    STATE_NOT_AFFECTED: 'not affected',
    STATE_UNKNOWN: 'unknown',
}
# Plan decision (per advisory) -> fleet state.
DECISION_STATES = {
    'already_patched': PATCHED_LIVE,
    'livepatch': PATCH_AVAILABLE,
    'reboot': STATE_PENDING_REBOOT,
    'held': STATE_NEEDS_ATTENTION,
    'needs_attention': STATE_NEEDS_ATTENTION,
    'not_affected': STATE_NOT_AFFECTED,
    'not_xen': STATE_NOT_AFFECTED,
    'undecided': STATE_UNKNOWN,
    'unreachable': STATE_UNKNOWN,
}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',Arial,sans-serif;margin:24px;color:#212121;
background:#fafafa;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.status{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.bad{background:#c62828}.warn{background:#ef6c00}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#eee}td.num{text-align:right}code{font-size:12px;word-break:break-all}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px;margin:8px 0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
svg.chart{display:block;background:#fff;border:1px solid #e0e0e0;margin:6px 0}
svg text{font-size:11px;fill:#212121}svg text.in{fill:#fff;font-size:10px}
.cards{display:flex;gap:10px;flex-wrap:wrap}.card{background:#fff;border:1px solid #e0e0e0;padding:8px 12px;min-width:110px}
.card b{display:block;font-size:20px}.card span{font-size:12px;color:#555}
.state{padding:1px 6px;border-radius:3px;color:#fff;font-size:12px;white-space:nowrap}
"""


def esc(value):
    """``value`` as HTML text or attribute value (``&<>"'`` escaped); None is ``''``."""
    if value is None:
        return ''
    text = value if isinstance(value, str) else str(value)
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace('"', '&quot;').replace("'", '&#39;'))


def _num(value):
    """A number as an SVG coordinate (at most 1 decimal)."""
    return ('%.1f' % value).rstrip('0').rstrip('.')


def _colour(colours, name):
    for key, colour in colours:
        if key == name:
            return colour
    return '#9e9e9e'


def _legend(colours, names, words=None):
    words = words or {}
    return '<div class="legend">%s</div>' % ''.join(
        '<span><i style="background:%s"></i>%s</span>' % (_colour(colours, n), esc(words.get(n, n))) for n in names)


def _table(heads, rows, cls=None, num_columns=()):
    out = ['<table%s><tr>%s</tr>' % (' class="%s"' % esc(cls) if cls else '', ''.join('<th>%s</th>' % esc(h) for h in heads))]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cells.append('<td%s>%s</td>' % (' class="num"' if i in num_columns else '', cell))
        out.append('<tr>%s</tr>' % ''.join(cells))
    out.append('</table>')
    return ''.join(out)


def _short(build_id):
    build_id = build_id or 'unknown'
    return build_id[:12] if len(build_id) > 12 else build_id


def stacked_bars(chart, bars, colours, width=1100, words=None):
    """A horizontal stacked bar chart: ``bars`` is ``[(label, {data attrs}, [(segment, count)])]``.

    The svg has ``data-chart=chart``; each bar is ``<g class="bar" data-label=.. data-total=..>`` (plus its
    data attrs), each segment a ``<rect class="seg" data-outcome=.. data-count=..>`` with its count written in it.
    """
    words = words or {}
    label_w = 330
    row_h = 26
    top = 8
    scale_w = width - label_w - 60
    largest = max([sum(c for _s, c in segs) for _l, _a, segs in bars] + [1])
    height = top * 2 + row_h * max(len(bars), 1) + 14
    out = ['<svg class="chart" data-chart="%s" width="%d" height="%d" viewBox="0 0 %d %d" role="img">'
           % (esc(chart), width, height, width, height)]
    for index, (label, attrs, segments) in enumerate(bars):
        y = top + index * row_h
        total = sum(count for _s, count in segments)
        extra = ''.join(' data-%s="%s"' % (esc(k), esc(v)) for k, v in sorted(attrs.items()))
        out.append('<g class="bar" data-label="%s" data-total="%d"%s>' % (esc(label), total, extra))
        out.append('<text x="4" y="%s">%s</text>' % (_num(y + 16), esc(label)))
        x = float(label_w)
        for segment, count in segments:
            if not count:
                continue
            w = scale_w * count / largest
            out.append('<rect class="seg" data-outcome="%s" data-count="%d" x="%s" y="%d" width="%s" height="20" '
                       'fill="%s"><title>%s: %d</title></rect>' % (
                           esc(segment), count, _num(x), y + 2, _num(w), _colour(colours, segment),
                           esc(words.get(segment, segment)), count))
            if w >= 14:
                out.append('<text class="in" x="%s" y="%d" text-anchor="middle">%d</text>' % (_num(x + w / 2), y + 16, count))
            x += w
        out.append('<text x="%s" y="%d">%d</text>' % (_num(x + 6), y + 16, total))
        out.append('</g>')
    out.append('</svg>')
    return ''.join(out)


# ---------------------------------------------------------------------------------------------
# The run report

def normalize(summary):
    """The run summary of rolling_livepatch.yml as is; the summary of reboot_fallback.yml (``hosts`` a
    list of rows, ``counts``, ``gate``) in the same form (waves, hosts, totals, budget, stopped)."""
    if not isinstance(summary, dict):
        raise ValueError('expected the run summary (a mapping), got %s' % type(summary).__name__)
    if 'totals' in summary and isinstance(summary.get('hosts'), dict):
        return summary
    rows = summary.get('hosts')
    if not isinstance(rows, list):
        raise ValueError('expected the summary of rolling_livepatch.yml or reboot_fallback.yml (with "hosts")')
    gate = summary.get('gate') or {}
    waves = []
    by_label = {}
    hosts = {}
    totals = dict((c, 0) for c in rb.SUMMARY_COLUMNS)
    totals['hosts'] = 0
    for row in rows:
        label = row.get('wave')
        label = 'finish' if label == 'finish' else 'wave_%s' % label
        outcome = rb.reboot_summary_outcome(row.get('outcome'))
        if label not in by_label:
            by_label[label] = dict((c, 0) for c in rb.SUMMARY_COLUMNS)
            by_label[label].update(wave=label, kind='finish' if label == 'finish' else 'reboot', hosts=0, elapsed_s=None)
            waves.append(by_label[label])
        by_label[label]['hosts'] += 1
        by_label[label][outcome] = by_label[label].get(outcome, 0) + 1
        totals['hosts'] += 1
        totals[outcome] = totals.get(outcome, 0) + 1
        detail = '; '.join([row.get('msg') or row.get('outcome') or ''] + list(row.get('stranded') or []))
        hosts[row['host']] = dict(wave=label, outcome=outcome, decision='reboot', detail=detail,
                                  reboot_outcome=row.get('outcome'))
    return dict(run_id=summary.get('run_id'), stopped=not gate.get('proceed', True), stop_reason=gate.get('reason'),
                budget=dict(limit=gate.get('limit'), failures=gate.get('failures', 0), to_patch=gate.get('to_patch'),
                            source=gate.get('budget_source')),
                totals=totals, waves=waves, hosts=hosts, reboot_fallback=summary,
                needs_attention=[], held=[], elapsed_s=summary.get('elapsed_s'),
                check_mode=summary.get('check_mode'))


def _wave_budget(waves):
    """``{label: failures counted after that wave}``, cumulative in run order (finish rows excluded)."""
    used = 0
    out = {}
    for row in waves:
        if row.get('kind') in ('none', 'finish'):
            continue
        used += sum(row.get(o, 0) for o in BUDGET_OUTCOMES)
        out[row['wave']] = used
    return out


def timeline(summary, wave_times, started=None, width=1100):
    """The run's waves on a time axis (seconds since the run started) with the failure budget used after each.

    Each wave that reached its gate is ``<g class="span" data-wave data-kind data-state data-start-s data-end-s
    data-elapsed-s data-budget-used>``, ``data-state`` ``ran``, ``not_started`` (its gate stopped the run) or
    ``unfinished`` (no end recorded: the run died in it);
    the svg carries ``data-budget-limit`` (``unlimited`` when none) and ``data-budget-failures``.
    """
    wave_times = wave_times or {}
    rows = [r for r in summary.get('waves') or [] if r.get('kind') not in ('none',)]
    spans = []
    for row in rows:
        times = wave_times.get(row['wave']) or {}
        start, end = times.get('start'), times.get('end')
        if start is None:
            continue
        spans.append((row, float(start), None if end is None else float(end)))
    budget = summary.get('budget') or {}
    limit = budget.get('limit')
    origin = float(started) if started not in (None, '') else (min(s for _r, s, _e in spans) if spans else 0.0)
    last = max([e if e is not None else s for _r, s, e in spans] + [origin + float(summary.get('elapsed_s') or 0), origin + 1])
    total = last - origin
    used = _wave_budget(rows)
    label_w = 140
    axis_w = width - label_w - 190
    row_h = 24
    height = 40 + row_h * max(len(spans), 1)
    out = ['<svg class="chart" data-chart="timeline" data-budget-limit="%s" data-budget-failures="%s" data-duration-s="%s" '
           'width="%d" height="%d" viewBox="0 0 %d %d" role="img">' % (
               'unlimited' if limit is None else esc(limit), esc(budget.get('failures', 0)), _num(total),
               width, height, width, height)]
    for tick in range(0, 6):
        x = label_w + axis_w * tick / 5
        out.append('<line x1="%s" y1="18" x2="%s" y2="%d" stroke="#eee"/>' % (_num(x), _num(x), height - 4))
        out.append('<text x="%s" y="12" text-anchor="middle">%ss</text>' % (_num(x), _num(total * tick / 5)))
    for index, (row, start, end) in enumerate(spans):
        y = 22 + index * row_h
        begin = start - origin
        # A wave whose gate said stop has a start time and no end, and none of its hosts started.
        refused = end is None and row.get(rb.NOT_STARTED, 0) == row.get('hosts')
        state = 'ran' if end is not None else ('not_started' if refused else 'unfinished')
        finish = (end if end is not None else (start if refused else last)) - origin
        x = label_w + axis_w * begin / total
        w = max(axis_w * (finish - begin) / total, 2)
        failures = used.get(row['wave'])
        bad = failures is not None and limit is not None and failures > limit
        colour = '#00838f' if row.get('kind') == 'reboot' else ('#f9a825' if row.get('kind') == 'canary' else '#1565c0')
        out.append('<g class="span" data-wave="%s" data-kind="%s" data-state="%s" data-start-s="%s" data-end-s="%s" '
                   'data-elapsed-s="%s" data-budget-used="%s">' % (
                       esc(row['wave']), esc(row.get('kind')), state, _num(begin), '' if end is None else _num(finish),
                       '' if row.get('elapsed_s') is None else _num(row['elapsed_s']),
                       '' if failures is None else failures))
        out.append('<text x="4" y="%d">%s (%s)</text>' % (y + 15, esc(row['wave']), esc(row.get('kind'))))
        if refused:
            out.append('<rect x="%s" y="%d" width="2" height="18" fill="#9e9e9e"/>' % (_num(x), y + 2))
            note = 'not started: the gate stopped the run'
        else:
            out.append('<rect x="%s" y="%d" width="%s" height="18" fill="%s"%s><title>%s: %s s</title></rect>' % (
                _num(x), y + 2, _num(w), colour, ' fill-opacity="0.45"' if state == 'unfinished' else '',
                esc(row['wave']), _num(finish - begin)))
            note = '%s s%s' % (_num(finish - begin), ', no end recorded' if state == 'unfinished' else '')
        out.append('<text x="%s" y="%d"%s>budget %s of %s used, %s</text>' % (
            _num(min(x + w + 6, label_w + axis_w + 4)), y + 15, ' fill="#c62828"' if bad else '',
            '-' if failures is None else failures, 'unlimited' if limit is None else esc(limit), note))
        out.append('</g>')
    if not spans:
        out.append('<text x="4" y="34">no wave started</text>')
    out.append('</svg>')
    return ''.join(out)


def _payloads_after(decision, outcome):
    """The payload names a host runs after the run (those it was to get when it was patched, those it had)."""
    names = []
    if outcome == rb.PATCHED:
        names = [p.get('name') for p in decision.get('payloads') or [] if p.get('name')]
    for entry in decision.get('advisories') or []:
        if entry.get('decision') == 'already_patched' and (entry.get('payload') or {}).get('name'):
            names.append(entry['payload']['name'])
    return names


def fleet_groups(summary, plan):
    """``(before, after)``: ``{(build, hardware class): {decision or outcome: count}}`` of the plan's hosts
    before the run (plan decision) and after it (summary outcome; a rebooted host on the build it came
    back with, a live patched host on its build plus the payloads it runs)."""
    decisions = (plan or {}).get('decisions') or {}
    reboot_rows = dict((r.get('host'), r) for r in ((summary.get('reboot_fallback') or {}).get('hosts') or [])
                       if isinstance(r, dict))
    before = {}
    after = {}
    for host in sorted(set(decisions) | set(summary.get('hosts') or {})):
        decision = decisions.get(host) or {}
        entry = (summary.get('hosts') or {}).get(host) or {}
        build = _short(decision.get('build_id'))
        klass = decision.get('hardware_class') or 'unknown'
        key = (build, klass)
        group = before.setdefault(key, {})
        name = decision.get('decision') or 'unknown'
        group[name] = group.get(name, 0) + 1
        outcome = entry.get('outcome') or rb.host_outcome(decision.get('decision'), None, False)
        build_after = build
        if outcome == rb.REBOOTED:
            build_after = _short((reboot_rows.get(host) or {}).get('build_id_after') or 'fixed build')
        payloads = _payloads_after(decision, outcome)
        if payloads:
            build_after = '%s + %s' % (build_after, '+'.join(payloads))
        group = after.setdefault((build_after, klass), {})
        group[outcome] = group.get(outcome, 0) + 1
    return before, after


DECISION_COLOURS = (
    ('livepatch', '#1565c0'), ('reboot', '#5e35b1'), ('already_patched', '#81c784'), ('not_affected', '#90a4ae'),
    ('not_xen', '#cfd8dc'), ('held', '#6d4c41'), ('needs_attention', '#ad1457'), ('unreachable', '#616161'),
    ('undecided', '#9e9e9e'), ('finish_reboot', '#00838f'),
)


def _group_bars(groups, order):
    bars = []
    for (build, klass) in sorted(groups):
        counts = groups[(build, klass)]
        names = [n for n in order if counts.get(n)] + sorted(n for n in counts if n not in order and counts[n])
        bars.append(('%s / %s' % (build, klass), dict(build=build, **{'class': klass}), [(n, counts[n]) for n in names]))
    return bars


def attention_rows(summary, plan):
    """``[{host, wave, outcome, reason, next_step}]``: every host whose outcome is not settled, sorted."""
    decisions = (plan or {}).get('decisions') or {}
    rows = []
    for host, entry in sorted((summary.get('hosts') or {}).items()):
        outcome = entry.get('outcome')
        if outcome in SETTLED:
            continue
        reason = entry.get('detail') or (decisions.get(host) or {}).get('reason') or ''
        rows.append(dict(host=host, wave=entry.get('wave'), outcome=outcome, reason=reason,
                         next_step=NEXT_STEPS.get(outcome, 'Look at the host and run again')))
    return rows


def _meta(pairs):
    return '<dl class="meta">%s</dl>' % ''.join('<dt>%s</dt><dd>%s</dd>' % (esc(k), v) for k, v in pairs)


def _ran_by(ran_by):
    ran_by = ran_by or {}
    return [(k, esc(v)) for k, v in sorted(ran_by.items()) if v not in (None, '')]


def _advisories(plan):
    advisories = (plan or {}).get('advisories') or []
    rows = []
    for advisory in advisories:
        for payload in advisory.get('livepatches') or [{}]:
            rows.append([esc(advisory.get('id')), esc(advisory.get('title')), '<code>%s</code>' % esc(advisory.get('manifest_sha256')),
                         esc(payload.get('name')), '<code>%s</code>' % esc(payload.get('xen_build_id') or payload.get('build_id')),
                         '<code>%s</code>' % esc(payload.get('sha256'))])
    if not rows:
        return '<p>No advisory in the plan.</p>'
    return _table(('advisory', 'title', 'manifest sha256', 'payload', 'for build-id', 'payload sha256'), rows, cls='advisories')


def _sizes(sizes):
    if isinstance(sizes, (list, tuple)):
        return ', '.join(str(size) for size in sizes)
    return sizes


def _plan_section(plan, summary):
    plan = plan or {}
    counts = plan.get('counts') or {}
    policy = plan.get('policy') or {}
    pairs = [('decisions', esc(', '.join('%s %s' % (k, v) for k, v in sorted(counts.items()) if v) or '-')),
             ('wave sizes', esc(_sizes(policy.get('wave_sizes')))),
             ('reboot wave sizes', esc(_sizes(policy.get('reboot_wave_sizes')))),
             ('max per failure domain', esc(policy.get('max_per_domain'))),
             ('retry_failed', esc(', '.join(plan.get('retry_failed') or []) or '-'))]
    if plan.get('plan_path'):
        pairs.append(('plan file', '<code>%s</code>' % esc(plan['plan_path'])))
    for signature in plan.get('signatures') or []:
        pairs.append(('advisory signature', esc(summary_line(signature))))
    waves = []
    for wave in plan.get('waves') or []:
        waves.append(['wave_%s' % esc(wave.get('number')), esc(wave.get('kind')), '%d' % len(wave.get('hosts') or []),
                      esc(', '.join('%s %s' % kv for kv in sorted((wave.get('per_domain') or {}).items()))),
                      esc(', '.join(wave.get('hosts') or []))])
    return _meta(pairs) + _table(('wave', 'kind', 'hosts', 'per failure domain', 'host names'), waves, cls='plan',
                                 num_columns=(2,))


def run_report(summary, plan=None, wave_times=None, started=None, ran_by=None, title=None, generated=None):
    """The run report of a rolling run as one HTML document (a string); see the module docstring."""
    summary = normalize(summary)
    rows = list(summary.get('waves') or [])
    budget = summary.get('budget') or {}
    totals = summary.get('totals') or {}
    attention = attention_rows(summary, plan)
    stopped = bool(summary.get('stopped'))
    if stopped:
        status = '<span class="status bad" data-status="stopped">STOPPED</span> %s' % esc(summary.get('stop_reason'))
    elif attention:
        status = '<span class="status warn" data-status="attention">COMPLETED, %d host(s) need attention</span>' % len(attention)
    else:
        status = '<span class="status ok" data-status="completed">COMPLETED</span>'
    title = title or 'noreboot.xen run report'
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<title>%s %s</title><style>%s</style></head><body>' % (esc(title), esc(summary.get('run_id')), CSS),
           '<h1>%s</h1><p>%s</p>' % (esc(title), status)]
    pairs = [('run id', '<code data-run-id="%s">%s</code>' % (esc(summary.get('run_id')), esc(summary.get('run_id')))),
             ('generated', esc(generated)),
             ('elapsed', '%s s' % esc(summary.get('elapsed_s'))),
             ('check mode', esc('yes' if summary.get('check_mode') else 'no')),
             ('failure budget', esc('%s failed of %s allowed (%s host(s) to patch%s)' % (
                 budget.get('failures', 0), 'unlimited' if budget.get('limit') is None else budget.get('limit'),
                 budget.get('to_patch'), '; %s' % budget['source'] if budget.get('source') else '')))]
    out.append(_meta(pairs + _ran_by(ran_by)))
    out.append('<div class="cards">%s</div>' % ''.join(
        '<div class="card" data-total="%s" data-count="%d"><b>%d</b><span>%s</span></div>' % (
            esc(c), totals.get(c, 0), totals.get(c, 0), esc(c.replace('_', ' ')))
        for c in ['hosts'] + [c for c in outcome_names() if totals.get(c)]))
    out.append('<h2>Outcomes per wave</h2>')
    bars = []
    for row in rows:
        bars.append(('%s (%s)' % (row['wave'], row.get('kind') or '-'), dict(wave=row['wave'], kind=row.get('kind') or ''),
                     [(name, row.get(name, 0)) for name in outcome_names()]))
    out.append(stacked_bars('outcomes-per-wave', bars, OUTCOME_COLOURS))
    out.append(_legend(OUTCOME_COLOURS, [n for n in outcome_names() if totals.get(n)]))
    out.append('<h2>Timeline</h2>')
    out.append(timeline(summary, wave_times, started))
    before, after = fleet_groups(summary, plan)
    out.append('<h2>Fleet by hypervisor build and hardware class: before the run (plan decision)</h2>')
    out.append(stacked_bars('fleet-before', _group_bars(before, [n for n, _c in DECISION_COLOURS]), DECISION_COLOURS))
    out.append(_legend(DECISION_COLOURS, sorted(set(n for g in before.values() for n in g if g[n]))))
    out.append('<h2>Fleet by hypervisor build and hardware class: after the run (outcome)</h2>')
    out.append(stacked_bars('fleet-after', _group_bars(after, outcome_names()), OUTCOME_COLOURS))
    out.append(_legend(OUTCOME_COLOURS, sorted(set(n for g in after.values() for n in g if g[n]))))
    out.append('<h2>Hosts that need attention (%d)</h2>' % len(attention))
    if attention:
        out.append(_table(('host', 'wave', 'outcome', 'reason', 'next step'), [
            ['<span data-host="%s">%s</span>' % (esc(r['host']), esc(r['host'])), esc(r['wave']),
             '<span class="state" data-outcome="%s" style="background:%s">%s</span>' % (
                 esc(r['outcome']), _colour(OUTCOME_COLOURS, r['outcome']), esc(r['outcome'])),
             esc(r['reason']), esc(r['next_step'])]
            for r in attention], cls='attention'))
    else:
        out.append('<p>None: every host is patched, rebooted, already patched or not affected.</p>')
    out.append('<h2>Advisories and payloads</h2>')
    out.append(_advisories(plan))
    out.append('<h2>Plan</h2>')
    out.append(_plan_section(plan, summary))
    out.append('<h2>Every host</h2>')
    decisions = (plan or {}).get('decisions') or {}
    out.append(_table(('host', 'build-id', 'hardware class', 'failure domain', 'decision', 'wave', 'outcome', 'detail'), [
        [esc(h), '<code>%s</code>' % esc(_short((decisions.get(h) or {}).get('build_id'))),
         esc((decisions.get(h) or {}).get('hardware_class')), esc((decisions.get(h) or {}).get('failure_domain')),
         esc(e.get('decision')), esc(e.get('wave')), esc(e.get('outcome')), esc(e.get('detail'))]
        for h, e in sorted((summary.get('hosts') or {}).items())], cls='hosts'))
    out.append('<p>Written by noreboot.xen; the same figures are in the JSON summary next to this file.</p></body></html>\n')
    return '\n'.join(out)


# ---------------------------------------------------------------------------------------------
# The fleet's patch state

def host_states(fleet, plan=None):
    """``{host: {advisory id: state}}``: each host's state per advisory of ``plan`` (fleet_plan run on
    the report's facts); a host unreachable or failed is ``unknown``, a host without Xen ``not_affected``."""
    hosts = (fleet or {}).get('hosts') or {}
    decisions = (plan or {}).get('decisions') or {}
    ids = [a.get('id') for a in (plan or {}).get('advisories') or []]
    states = {}
    for host in sorted(hosts):
        entry = hosts[host] or {}
        decision = decisions.get(host) or {}
        per = dict((a.get('advisory'), a.get('decision')) for a in decision.get('advisories') or [])
        row = {}
        for ident in ids:
            if entry.get('status') != 'ok':
                row[ident] = STATE_UNKNOWN
            elif not entry.get('present'):
                row[ident] = STATE_NOT_AFFECTED
            elif decision.get('decision') == 'finish_reboot':
                row[ident] = STATE_NEEDS_ATTENTION
            else:
                row[ident] = DECISION_STATES.get(per.get(ident) or decision.get('decision'), STATE_UNKNOWN)
        states[host] = row
    return states


def state_counts(states, ids):
    """``{advisory id: {state: count}}`` over every state (0 included)."""
    counts = dict((ident, dict((s, 0) for s, _c in STATE_COLOURS)) for ident in ids)
    for row in states.values():
        for ident, state in row.items():
            counts[ident][state] = counts[ident].get(state, 0) + 1
    return counts


def fleet_report(fleet, plan=None, ran_by=None, title=None, generated=None):
    """The fleet's patch state as one HTML document (a string); see the module docstring."""
    if not isinstance(fleet, dict) or not isinstance(fleet.get('hosts'), dict):
        raise ValueError('expected the fleet summary of noreboot.xen.xen_fleet_summary (a mapping with "hosts")')
    hosts = fleet['hosts']
    ids = [a.get('id') for a in (plan or {}).get('advisories') or []]
    states = host_states(fleet, plan)
    counts = state_counts(states, ids)
    title = title or 'noreboot.xen fleet patch state'
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<title>%s</title><style>%s</style></head><body>' % (esc(title), CSS), '<h1>%s</h1>' % esc(title)]
    out.append(_meta([('generated', esc(generated)), ('advisories', esc(', '.join(ids) or 'none given'))] + _ran_by(ran_by)))
    cards = [('hosts', fleet.get('hosts_total', len(hosts))), ('Xen present', fleet.get('hosts_present', 0)),
             ('live patching works', fleet.get('livepatch_supported', 0)), ('not Xen', fleet.get('hosts_not_present', 0)),
             ('unreachable', fleet.get('hosts_unreachable', 0)), ('failed', fleet.get('hosts_failed', 0))]
    out.append('<div class="cards">%s</div>' % ''.join(
        '<div class="card" data-total="%s" data-count="%s"><b>%s</b><span>%s</span></div>' % (esc(k), esc(v), esc(v), esc(k))
        for k, v in cards))
    if ids:
        out.append('<h2>State per advisory</h2>')
        bars = [(ident, dict(advisory=ident), [(s, counts[ident][s]) for s, _c in STATE_COLOURS]) for ident in ids]
        out.append(stacked_bars('state-per-advisory', bars, STATE_COLOURS, words=STATE_WORDS))
        out.append(_legend(STATE_COLOURS, [s for s, _c in STATE_COLOURS], STATE_WORDS))
        out.append(_table(['advisory'] + [STATE_WORDS[s] for s, _c in STATE_COLOURS], [
            [esc(ident)] + ['%d' % counts[ident][s] for s, _c in STATE_COLOURS] for ident in ids],
            cls='state-counts', num_columns=tuple(range(1, len(STATE_COLOURS) + 1))))
    else:
        out.append('<p>No advisory manifest given (noreboot_xen_advisories): the state per advisory is not shown.</p>')
    out.append('<h2>Hosts by hypervisor build and hardware class</h2>')
    groups = {}
    for host in sorted(hosts):
        entry = hosts[host] or {}
        if entry.get('status') != 'ok' or not entry.get('present'):
            continue
        key = (_short(entry.get('build_id')), entry.get('hardware_class') or 'unknown')
        effective = entry.get('effective_version') or entry.get('version') or 'unknown'
        groups.setdefault(key, {})
        groups[key][effective] = groups[key].get(effective, 0) + 1
    palette = ('#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457', '#5d4037', '#455a64')
    versions = sorted(set(v for g in groups.values() for v in g))
    colours = tuple((v, palette[i % len(palette)]) for i, v in enumerate(versions))
    out.append(stacked_bars('fleet-builds', _group_bars(groups, versions), colours))
    out.append(_legend(colours, versions))
    out.append('<h2>Effective versions</h2>')
    by_effective = fleet.get('by_effective_version') or {}
    out.append(stacked_bars('effective-versions', [(v, dict(version=v), [(v, n)]) for v, n in sorted(by_effective.items())],
                            colours))
    out.append('<h2>Every host</h2>')
    rows = []
    for host in sorted(hosts):
        entry = hosts[host] or {}
        status = entry.get('status')
        cells = [esc(host), esc(status if status != 'ok' else ('xen' if entry.get('present') else 'not xen')),
                 esc(entry.get('version')), '<code>%s</code>' % esc(_short(entry.get('build_id'))),
                 esc(entry.get('hardware_class')), esc(entry.get('effective_version')),
                 esc(', '.join(entry.get('applied') or []))]
        for ident in ids:
            state = states[host][ident]
            cells.append('<span class="state" data-advisory="%s" data-state="%s" style="background:%s">%s</span>' % (
                esc(ident), esc(state), _colour(STATE_COLOURS, state), esc(STATE_WORDS[state])))
        notes = entry.get('msg') or ''
        if not notes and set(states[host].values()) - set([PATCHED_LIVE, STATE_NOT_AFFECTED]):
            # Why the plan says so (held, left applied, no payload for the build...).
            notes = ((plan or {}).get('decisions') or {}).get(host, {}).get('reason') or ''
        if entry.get('unfinished_reboot'):
            notes = 'unfinished reboot, guests not back: %s' % ', '.join(entry.get('guests_not_back') or [])
        cells.append(esc(notes))
        rows.append(cells)
    out.append(_table(['host', 'status', 'version', 'build-id', 'hardware class', 'effective version', 'applied payloads']
                      + ids + ['notes'], rows, cls='hosts'))
    out.append('<p>Written by noreboot.xen; the same figures are in fleet_summary.json next to this file.</p></body></html>\n')
    return '\n'.join(out)
