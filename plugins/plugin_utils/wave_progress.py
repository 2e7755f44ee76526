# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live progress of a rolling run, read from task results (pure Python, controller side).

The callback plugin noreboot.xen.rollout_progress feeds a ``WaveProgress`` what the playbooks'
tasks return; each call returns the lines to print. It recognizes, by their content:

* the plan: a result with ``waves`` (a list) and ``decisions`` (a mapping), as the module
  noreboot.xen.fleet_plan returns it;
* ``noreboot_xen_with_reboots`` (fact of rolling_livepatch.yml's plan play): whether the
  plan's reboot waves run after its live patch waves. Without it (reboot_fallback.yml) only
  the reboot waves run;
* ``noreboot_xen_wave_times`` and ``noreboot_xen_gate`` (facts the wave plays set on
  localhost): a wave label that gains ``start`` is a wave starting (or, when the gate in the
  same result says no, a wave the gate stopped); one that gains ``end`` is a wave ending;
* per host ``livepatch_outcome`` / ``livepatch_result`` (role noreboot.xen.livepatch) and
  ``reboot_fallback_result`` (role noreboot.xen.reboot_fallback): the host's outcome;
* an unreachable host of the running wave.

Outcomes are counted as the run summary counts them (rollout_budget, reboot_wave_gate): a
host of a wave with no final outcome when its wave ends was lost (``unreachable``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.plugin_utils import reboot_wave_gate as rg
from ansible_collections.noreboot.xen.plugins.plugin_utils import rollout_budget as rb
from ansible_collections.noreboot.xen.plugins.plugin_utils.run_state import LIVE_OUTCOME_FACT, LIVE_RESULT_FACT, REBOOT_RESULT_FACT

PREFIX = '[rollout]'
LIVE_KINDS = ('canary', 'livepatch')
# Columns of a wave's end line, in the run summary's outcome names.
END_COLUMNS = (rb.PATCHED, rb.ALREADY_PATCHED, rb.REVERTED, rb.FAILED, rb.UNREACHABLE, rb.REBOOTED)
# Outcomes of a host that someone must look at (live patch and reboot fallback outcomes).
ATTENTION = ('failed', 'reverted', 'unreachable', 'previously_reverted', 'guests_not_restored', 'refused',
             'in_progress')
HOSTS_SHOWN = 6


def _names(hosts, shown=HOSTS_SHOWN):
    hosts = list(hosts)
    text = ', '.join(hosts[:shown])
    if len(hosts) > shown:
        text += ' +%d more' % (len(hosts) - shown)
    return text


def _seconds(value):
    if value is None:
        return '?'
    value = float(value)
    if value >= 120:
        return '%dm%02ds' % (int(value) // 60, int(value) % 60)
    return '%.1fs' % value


def is_plan(result):
    """Whether a task result is the plan of noreboot.xen.fleet_plan."""
    return (isinstance(result, dict) and isinstance(result.get('waves'), list)
            and isinstance(result.get('decisions'), dict))


def estimate_left(done, remaining_kinds):
    """Seconds the waves still to run should take: each the mean elapsed time of the waves already
    done of its class (reboot, or live patch), else of all waves done; None before any is done.

    ``done``: ``[(kind, elapsed_s)]``; ``remaining_kinds``: the kinds of the waves to come.
    """
    def klass(kind):
        return 'reboot' if kind == 'reboot' else 'live'

    timed = [(klass(k), float(e)) for k, e in done if e is not None]
    if not remaining_kinds:
        return 0.0
    if not timed:
        return None
    every = sum(e for _k, e in timed) / len(timed)
    total = 0.0
    for kind in remaining_kinds:
        same = [e for k, e in timed if k == klass(kind)]
        total += sum(same) / len(same) if same else every
    return total


class WaveProgress(object):
    """State of one run; every ``on_*`` method returns a list of lines (possibly empty)."""

    def __init__(self):
        self.plan = None
        self.with_reboots = None
        self.times = {}
        self.gate = {}
        self.current = None
        # The running wave's hosts as a set: every outcome event asks whether its host is in it.
        self.current_hosts = frozenset()
        self.done = []
        self.outcomes = {}
        self.details = {}
        self.noticed = set()
        self.stopped = None

    # What the run is made of.
    def waves(self):
        """The waves this run runs, in order."""
        if not self.plan:
            return []
        waves = self.plan['waves']
        if self.with_reboots is None:
            return [w for w in waves if w.get('kind') == 'reboot']
        return [w for w in waves if w.get('kind') in LIVE_KINDS or (self.with_reboots and w.get('kind') == 'reboot')]

    def _wave(self, label):
        for position, wave in enumerate(self.waves(), 1):
            if 'wave_%s' % wave['number'] == label:
                return position, wave
        return None, None

    def _domains(self, hosts):
        decisions = self.plan.get('decisions') or {}
        counts = {}
        for host in hosts:
            name = (decisions.get(host) or {}).get('failure_domain') or 'unassigned'
            counts[name] = counts.get(name, 0) + 1
        return ', '.join('%s %d' % item for item in sorted(counts.items()))

    def summary_outcome(self, host, kind):
        """The host's outcome as the run summary counts it."""
        outcome = self.outcomes.get(host)
        if kind == 'reboot':
            return rb.reboot_summary_outcome(outcome if outcome is not None else rb.IN_PROGRESS)
        return rb.host_outcome('livepatch', outcome if outcome is not None else rb.IN_PROGRESS, True)

    def failures(self):
        """Failed hosts so far, counted as the gate counts them (both kinds of wave)."""
        count = 0
        for wave in self.waves():
            for host in wave['hosts']:
                outcome = self.outcomes.get(host)
                if wave.get('kind') == 'reboot':
                    outcome = rg.BUDGET_OUTCOME.get(outcome)
                if rb.effective_outcome(outcome) in rb.FAILURE_OUTCOMES:
                    count += 1
        return count

    # Events.
    def on_plan(self, plan):
        if not is_plan(plan):
            return []
        self.plan = plan
        return []

    def on_facts(self, host, facts):
        """A result's ``ansible_facts`` (set_fact) for ``host``."""
        lines = []
        if not isinstance(facts, dict):
            return lines
        if 'noreboot_xen_with_reboots' in facts:
            self.with_reboots = str(facts['noreboot_xen_with_reboots']).lower() in ('true', '1', 'yes')
        if isinstance(facts.get('noreboot_xen_gate'), dict) and facts['noreboot_xen_gate']:
            self.gate = facts['noreboot_xen_gate']
        if LIVE_OUTCOME_FACT in facts:
            result = facts.get(LIVE_RESULT_FACT) or {}
            lines += self._outcome(host, facts[LIVE_OUTCOME_FACT], result, 'livepatch')
        if isinstance(facts.get(REBOOT_RESULT_FACT), dict):
            result = facts[REBOOT_RESULT_FACT]
            lines += self._outcome(host, result.get('outcome'), result, 'reboot')
        if isinstance(facts.get('noreboot_xen_wave_times'), dict):
            lines += self._times(facts['noreboot_xen_wave_times'])
        return lines

    def on_unreachable(self, host):
        """``host`` was unreachable on a task."""
        if self.current is None or host not in self.current_hosts or host in self.noticed:
            return []
        self.noticed.add(host)
        return ['%s ATTENTION %s unreachable during wave %d' % (PREFIX, host, self.current[0])]

    def on_end(self):
        """The playbook ended: a wave still open (every host of it lost) ends now."""
        return self._close(None)

    # Internals.
    def _outcome(self, host, outcome, result, kind):
        if self.plan is None or outcome is None:
            return []
        if self.current is None or host not in self.current_hosts:
            return []
        self.outcomes[host] = outcome
        if kind == 'reboot' and outcome in ('rebooted', 'not_needed', 'would_reboot', 'reboot_required'):
            return []
        if outcome in ATTENTION and outcome != 'in_progress':
            if host in self.noticed and outcome == 'unreachable':
                return []
            self.noticed.add(host)
            detail = ''
            if isinstance(result, dict):
                checks = result.get('failed_checks') or []
                detail = ', '.join(checks) if checks else (result.get('msg') or '')
            suffix = (': %s' % detail) if detail else ''
            return ['%s ATTENTION %s %s in wave %d%s' % (PREFIX, host, outcome, self.current[0], suffix)]
        return []

    def _times(self, times):
        lines = []
        for label in sorted(times, key=lambda k: (len(k), k)):
            entry = times.get(label) or {}
            seen = self.times.get(label) or {}
            if entry.get('start') is not None and seen.get('start') is None:
                lines += self._close(None)
                lines += self._start(label)
            if entry.get('end') is not None and seen.get('end') is None and self.current \
                    and self.current[2] == label:
                lines += self._close(float(entry['end']) - float(entry.get('start') or seen.get('start') or 0))
            self.times[label] = dict(entry)
        return lines

    def _start(self, label):
        position, wave = self._wave(label)
        if wave is None:
            return []
        total = len(self.waves())
        head = '%s wave %d of %d' % (PREFIX, position, total)
        if self.gate and not self.gate.get('proceed', True):
            if self.stopped is not None:
                return []
            self.stopped = self.gate.get('reason')
            return ['%s (%s, %d hosts) not started: %s' % (head, wave['kind'], len(wave['hosts']), self.stopped)]
        self.current = (position, wave, label)
        self.current_hosts = frozenset(wave['hosts'])
        return ['%s start: %s, %d hosts (%s); failure domains: %s' % (
            head, wave['kind'], len(wave['hosts']), _names(wave['hosts']), self._domains(wave['hosts']))]

    def _close(self, elapsed):
        if self.current is None:
            return []
        position, wave, _label = self.current
        self.current = None
        self.current_hosts = frozenset()
        counts = dict((c, 0) for c in END_COLUMNS)
        for host in wave['hosts']:
            outcome = self.summary_outcome(host, wave.get('kind'))
            counts[outcome] = counts.get(outcome, 0) + 1
        self.done.append((wave.get('kind'), elapsed))
        lines = []
        for host in wave['hosts']:
            if self.outcomes.get(host) is None:
                # Lost mid-wave: its outcome stays in_progress, which the gate counts as unreachable.
                self.outcomes[host] = rb.IN_PROGRESS
                if host in self.noticed:
                    continue
                self.noticed.add(host)
                lines.append('%s ATTENTION %s lost during wave %d (no outcome): unreachable' % (
                    PREFIX, host, position))
        limit = self.gate.get('limit') if self.gate else None
        waves = self.waves()
        left = estimate_left(self.done, [w.get('kind') for w in waves[position:]])
        others = ', '.join('%s %d' % (k, v) for k, v in sorted(counts.items()) if k not in END_COLUMNS and v)
        lines.append('%s wave %d of %d end: %s, %d hosts: %s%s; elapsed %s; failure budget %d of %s used; '
                     'estimated time left %s' % (
                         PREFIX, position, len(waves), wave.get('kind'), len(wave['hosts']),
                         ', '.join('%s %d' % (c, counts[c]) for c in END_COLUMNS),
                         (', ' + others) if others else '', _seconds(elapsed), self.failures(),
                         'unlimited' if limit is None else limit, _seconds(left)))
        return lines


def parse_end_line(line):
    """The counts of a wave end line as a dict (``wave``, ``of``, ``kind``, ``hosts``, each outcome,
    ``budget_used``, ``budget_limit``), or None when ``line`` is not one. For tests and tools."""
    marker = '%s wave ' % PREFIX
    if not line.startswith(marker) or ' end: ' not in line:
        return None
    head, rest = line[len(marker):].split(' end: ', 1)
    number, _of, total = head.split(' ')
    kind, rest = rest.split(', ', 1)
    hosts, rest = rest.split(' hosts: ', 1)
    counts, rest = rest.split('; elapsed ', 1)
    parsed = dict(wave=int(number), of=int(total), kind=kind, hosts=int(hosts))
    for item in counts.split(', '):
        name, value = item.rsplit(' ', 1)
        parsed[name] = int(value)
    budget = rest.split('; failure budget ', 1)[1].split(' used', 1)[0]
    used, limit = budget.split(' of ')
    parsed['budget_used'] = int(used)
    parsed['budget_limit'] = None if limit == 'unlimited' else int(limit)
    return parsed
