# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assemble the fleet plan (decisions + waves) and render it as a table (pure Python).

Used by the noreboot.xen.fleet_plan module; takes already parsed manifests (dicts) so that
nothing here needs YAML, files or AnsibleModule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.noreboot.xen.plugins.module_utils import advisory_manifest as am
from ansible_collections.noreboot.xen.plugins.module_utils import plan_decision as pd
from ansible_collections.noreboot.xen.plugins.module_utils import wave_plan as wp

PLAN_SCHEMA = 1
HOST_KEYS = ('xen', 'unreachable', 'error', 'failure_domain', 'force_reboot')


class PlanInputError(ValueError):
    """The hosts or the policy given to the planner are malformed."""


def load_advisories(documents, inspect_payload=None):
    """Validate parsed manifests ``[(file, data, manifest_sha256)]``; return normalized advisories.

    Raises AdvisoryManifestError listing every problem of every manifest at once.
    """
    problems = []
    advisories = []
    for file, data, digest in documents:
        try:
            advisory = am.validate_manifest(data, file, inspect_payload=inspect_payload)
        except am.AdvisoryManifestError as exc:
            problems.extend(exc.problems)
            continue
        advisory['manifest_sha256'] = digest
        advisories.append(advisory)
    if not problems:
        problems = am.check_advisory_set(advisories)
    if problems:
        raise am.AdvisoryManifestError(problems)
    return advisories


def check_hosts(hosts):
    """Refuse malformed host entries; turn their boolean strings into booleans (in place)."""
    if not isinstance(hosts, dict):
        raise PlanInputError('hosts must be a mapping of inventory host name to its detection result')
    for name in sorted(hosts, key=str):
        entry = hosts[name]
        if not isinstance(entry, dict):
            raise PlanInputError('hosts.%s must be a mapping with keys %s, got %s' % (name, ', '.join(HOST_KEYS), type(entry).__name__))
        unknown = sorted(set(entry) - set(HOST_KEYS), key=str)
        if unknown:
            raise PlanInputError('hosts.%s: unknown key(s) %s; allowed: %s' % (name, ', '.join(map(str, unknown)), ', '.join(HOST_KEYS)))
        for key in ('unreachable', 'force_reboot'):
            if key in entry:
                entry[key] = _boolean(entry[key], 'hosts.%s.%s' % (name, key))


_TRUE = ('true', 'yes', 'on', '1')
_FALSE = ('false', 'no', 'off', '0', '')


def _boolean(value, where):
    """Strict boolean: host vars from INI inventories arrive as strings (``"false"`` is not true)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise PlanInputError('%s: %r is not a boolean; use true or false' % (where, value))


def check_retry_failed(retry_failed):
    """The payload names the operator released (noreboot_xen_retry_failed), as a list of strings."""
    if retry_failed is None:
        return []
    if isinstance(retry_failed, str) or not isinstance(retry_failed, (list, tuple)):
        raise PlanInputError('retry_failed (noreboot_xen_retry_failed) must be a list of payload names, got %r'
                             % (retry_failed,))
    bad = [name for name in retry_failed if not isinstance(name, str) or not name.strip()]
    if bad:
        raise PlanInputError('retry_failed (noreboot_xen_retry_failed) must list payload names, got %r' % (bad,))
    return [name.strip() for name in retry_failed]


def build_plan(advisories, hosts, policy=None, retry_failed=None, now=None):
    """Return the plan dict (what the module returns and writes as JSON). ``retry_failed``: the
    payload names the operator releases from ``held`` (plan_decision); ``now``: the current time
    (aware datetime) the manifests' expiry times are compared with."""
    check_hosts(hosts)
    released = check_retry_failed(retry_failed)
    decisions = pd.decide_fleet(hosts, advisories, released, now)
    waves = wp.plan_waves(decisions, policy)
    for decision in decisions:
        decision['wave'] = waves['wave_of'].get(decision['host'])
    return dict(
        schema=PLAN_SCHEMA,
        advisories=[_advisory_view(a) for a in advisories],
        policy=waves['policy'],
        retry_failed=released,
        counts=pd.count_decisions(decisions),
        matrix=decision_matrix(decisions),
        groups=waves['groups'],
        domains=waves['domains'],
        waves=waves['waves'],
        decisions=dict((d['host'], d) for d in decisions),
    )


def _advisory_view(advisory):
    view = am.public_view(advisory)
    keys = ('id', 'title', 'manifest', 'manifest_sha256', 'versions', 'build_ids', 'hardware', 'livepatches',
            'livepatch_end_of_life', 'fallback')
    return dict((k, view[k]) for k in keys if k in view)


def decision_matrix(decisions):
    """Counts per (build-id, hardware class) and decision, as a sorted list of rows."""
    rows = {}
    for decision in decisions:
        key = (decision.get('build_id') or '', decision.get('hardware_class') or pd.UNKNOWN_CLASS)
        row = rows.setdefault(key, dict((name, 0) for name in pd.DECISIONS))
        row[decision['decision']] += 1
    return [dict(build_id=key[0] or None, hardware_class=key[1], counts=rows[key]) for key in sorted(rows)]


def plan_json(plan):
    """The plan as the JSON text written to disk (sorted keys: same plan, same bytes)."""
    return json.dumps(plan, indent=2, sort_keys=True, default=_tuple_to_list) + '\n'


def _tuple_to_list(value):
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError('not JSON serializable: %r' % (value,))


def _short(build_id):
    return (build_id or '(unknown)')[:12]


def _names(hosts, limit=8):
    shown = ', '.join(hosts[:limit])
    return shown + (' ... (+%d more)' % (len(hosts) - limit) if len(hosts) > limit else '')


def render_table(plan):
    """Human-readable lines: counts per decision, per build-id x hardware class, the waves."""
    counts = plan['counts']
    total = sum(counts.values())
    lines = ['Advisories: %s' % ', '.join('%s (%s)' % (a['id'], a['title']) for a in plan['advisories']),
             'Hosts: %d' % total]
    lines.append('Decisions: ' + ', '.join('%s %d' % (name, counts[name]) for name in pd.DECISIONS if counts[name]))
    columns = [name for name in pd.DECISIONS if counts[name]]
    if plan['matrix']:
        lines.append('')
        header = '%-14s %-20s ' % ('build-id', 'hardware class') + ' '.join('%15s' % c for c in columns)
        lines.append(header)
        for row in plan['matrix']:
            lines.append('%-14s %-20s ' % (_short(row['build_id']), row['hardware_class'])
                         + ' '.join('%15d' % row['counts'][c] for c in columns))
    lines.append('')
    if not plan['waves']:
        lines.append('Waves: none (no host to live patch or reboot)')
    for wave in plan['waves']:
        domains = ' '.join('%s:%d' % item for item in sorted(wave['per_domain'].items()))
        lines.append('wave %2d %-9s %4d host(s) [%s] %s'
                     % (wave['number'], wave['kind'], wave['size'], domains, _names(wave['hosts'])))
    noted = [d for d in plan['decisions'].values() if d.get('notes')]
    if noted:
        lines.append('')
        lines.append('Notes (%d host(s)):' % len(noted))
        for decision in sorted(noted, key=lambda d: d['host'])[:20]:
            lines.append('  %s: %s' % (decision['host'], '; '.join(decision['notes'])))
        if len(noted) > 20:
            lines.append('  ... (+%d more hosts, see the plan file)' % (len(noted) - 20))
    undecided = [d for d in plan['decisions'].values()
                 if d['decision'] in (pd.UNDECIDED, pd.UNREACHABLE, pd.HELD, pd.NEEDS_ATTENTION)]
    if undecided:
        lines.append('')
        lines.append('Not planned (fix and run the plan again):')
        for decision in sorted(undecided, key=lambda d: d['host']):
            lines.append('  %s: %s: %s' % (decision['host'], decision['decision'], decision['reason']))
    return lines
