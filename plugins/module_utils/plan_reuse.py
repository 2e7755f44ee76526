# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking a plan made earlier (an AWX workflow's artifact) instead of planning again.

An AWX workflow plans in one node (the plan job publishes it with ``set_stats``), waits for an
approval, then rolls out in later nodes, which get the plan as the extra var
``noreboot_xen_rollout_plan``. Between the two the fleet may have changed: a host booted
another hypervisor build, someone applied a payload by hand, a host joined or left the
inventory, an advisory manifest was edited. The rollout must then refuse, naming each
difference, before any host is changed: what was approved is not what would run.

So the rollout plans again from its fresh facts and compares (``plan_differences``): the hosts,
each host's decision, hypervisor build-id, hardware class, failure domain and payloads (name and
sha256), the advisories (id and manifest sha256) and the wave policy. Reasons are not compared
(they carry times). When nothing differs, the given plan is the one run, cut to the workflow's
phase (``restrict_to_phase``): ``canary`` keeps the canary waves only, ``after_canary`` the
waves after them (the canary hosts are then expected to be ``already_patched``: the canary node
patched them), ``all`` every wave.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

PHASES = ('all', 'canary', 'after_canary')

# What a plan artifact must hold to be taken (what noreboot.xen.fleet_plan returns).
REQUIRED_KEYS = ('decisions', 'waves', 'policy', 'advisories', 'counts', 'matrix', 'groups', 'domains')

# Per host, what must not have changed since the plan.
HOST_FIELDS = ('decision', 'build_id', 'hardware_class', 'failure_domain')

_FIX = ('plan again (run the plan node / the plan job again and approve the new plan), or run the rollout without '
        'noreboot_xen_rollout_plan to plan in the same job')


class PlanReuseError(Exception):
    """The given plan cannot be used (not a plan, or the fleet no longer matches it)."""

    def __init__(self, message, differences=None):
        super(PlanReuseError, self).__init__(message)
        self.differences = list(differences or [])


def check_plan_artifact(plan):
    """Raise PlanReuseError when ``plan`` is not a plan of noreboot.xen.fleet_plan."""
    if not isinstance(plan, dict):
        raise PlanReuseError('noreboot_xen_rollout_plan must be the plan artifact of an earlier plan job (a mapping '
                             'with %s), got %s; pass the artifact as AWX passes it, or leave the variable out to plan '
                             'in this job' % (', '.join(REQUIRED_KEYS), type(plan).__name__))
    missing = [key for key in REQUIRED_KEYS if not isinstance(plan.get(key), (dict, list))]
    if missing:
        raise PlanReuseError('noreboot_xen_rollout_plan is not a plan of noreboot.xen.fleet_plan: %s missing or not '
                             'a list/mapping; pass the artifact of the plan job unchanged, or leave the variable out '
                             'to plan in this job' % ', '.join(missing))


def _payloads(decision):
    return [(p.get('name'), p.get('sha256')) for p in decision.get('payloads') or []]


def _payload_text(payloads):
    return ', '.join('%s (sha256 %s)' % (name, (sha or '?')[:12]) for name, sha in payloads) or 'none'


def _show(value):
    return 'none' if value is None else str(value)


def canary_hosts(plan):
    """The hosts of the plan's canary waves."""
    return sorted(h for w in plan.get('waves') or [] if w.get('kind') == 'canary' for h in w.get('hosts') or [])


def plan_differences(given, fresh, patched_since=()):
    """What differs between the approved plan ``given`` and ``fresh``, planned now: a list of sentences.

    ``patched_since``: hosts an earlier node of the same workflow patched (the canaries, for the
    ``after_canary`` phase): for them ``livepatch`` then ``already_patched`` is expected, not drift.
    """
    differences = []
    old_adv = dict((a.get('id'), a.get('manifest_sha256')) for a in given.get('advisories') or [])
    new_adv = dict((a.get('id'), a.get('manifest_sha256')) for a in fresh.get('advisories') or [])
    for advisory in sorted(set(old_adv) | set(new_adv), key=str):
        if advisory not in new_adv:
            differences.append('advisory %s was in the plan but is not given now' % advisory)
        elif advisory not in old_adv:
            differences.append('advisory %s is given now but was not in the plan' % advisory)
        elif old_adv[advisory] != new_adv[advisory]:
            differences.append('advisory %s: its manifest changed since the plan (sha256 %s, now %s)'
                               % (advisory, _show(old_adv[advisory])[:12], _show(new_adv[advisory])[:12]))
    if (given.get('policy') or {}) != (fresh.get('policy') or {}):
        differences.append('wave policy: %s in the plan, %s now' % (given.get('policy'), fresh.get('policy')))
    old, new = given.get('decisions') or {}, fresh.get('decisions') or {}
    for host in sorted(set(old) - set(new)):
        differences.append('%s: in the plan, but not in this run\'s hosts now (removed from the inventory or the '
                           'target, or held by another run)' % host)
    for host in sorted(set(new) - set(old)):
        differences.append('%s: not in the plan, but in this run\'s hosts now (added since), decided %s'
                           % (host, new[host].get('decision')))
    patched_since = set(patched_since)
    for host in sorted(set(old) & set(new)):
        before, now = old[host], new[host]
        changed, decision_changed = [], False
        for field in HOST_FIELDS:
            if before.get(field) == now.get(field):
                continue
            if (field == 'decision' and host in patched_since and before.get(field) == 'livepatch'
                    and now.get(field) == 'already_patched'):
                continue
            decision_changed = decision_changed or field == 'decision'
            changed.append('%s %s in the plan, %s now' % (field.replace('_', '-'), _show(before.get(field)),
                                                          _show(now.get(field))))
        if decision_changed and now.get('reason'):
            changed.append('now: %s' % now['reason'])
        if not changed and now.get('decision') == before.get('decision') and _payloads(before) != _payloads(now):
            changed.append('payloads %s in the plan, %s now'
                           % (_payload_text(_payloads(before)), _payload_text(_payloads(now))))
        if changed:
            differences.append('%s: %s' % (host, '; '.join(changed)))
    return differences


def restrict_to_phase(plan, phase):
    """The plan cut to the hosts and waves of ``phase`` (see PHASES); a new dict, ``plan`` is left as is.

    Hosts of the waves left out are left out of ``decisions`` too: this run does not touch them and its
    summary does not count them (the other phase's job does). ``phase_hosts_left_out`` says how many.
    """
    if phase not in PHASES:
        raise PlanReuseError('phase must be one of %s, got %r' % (', '.join(PHASES), phase))
    if phase == 'all':
        return dict(plan, phase='all')
    canaries = set(canary_hosts(plan))
    if phase == 'canary':
        waves = [w for w in plan['waves'] if w.get('kind') == 'canary']
        keep = canaries
    else:
        waves = [w for w in plan['waves'] if w.get('kind') != 'canary']
        keep = set(h for w in waves for h in w.get('hosts') or [])
        # Hosts in no wave (already patched, not affected, unreachable...) belong to the later phase's summary.
        keep |= set(h for h, d in plan['decisions'].items() if d.get('wave') is None and h not in canaries)
    decisions = dict((h, d) for h, d in plan['decisions'].items() if h in keep)
    counts = dict((name, 0) for name in plan.get('counts') or {})
    for decision in decisions.values():
        counts[decision.get('decision')] = counts.get(decision.get('decision'), 0) + 1
    restricted = dict(plan, waves=waves, decisions=decisions, counts=counts, phase=phase,
                      phase_hosts_left_out=len(plan['decisions']) - len(decisions))
    return restricted


def reuse_plan(given, fresh, phase='all'):
    """The given plan cut to ``phase`` when the fleet still matches it; else PlanReuseError naming every difference."""
    check_plan_artifact(given)
    if phase not in PHASES:
        raise PlanReuseError('phase must be one of %s, got %r' % (', '.join(PHASES), phase))
    patched_since = canary_hosts(given) if phase == 'after_canary' else ()
    differences = plan_differences(given, fresh, patched_since)
    if differences:
        raise PlanReuseError(
            'the fleet no longer matches the approved plan (noreboot_xen_rollout_plan%s), so this run is refused '
            'before any host is changed: %d difference(s): %s. Fix: %s.'
            % (', run %s' % given['run_id'] if given.get('run_id') else '', len(differences), ' | '.join(differences),
               _FIX), differences)
    return restrict_to_phase(given, phase)
