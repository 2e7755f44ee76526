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

import hashlib
import json

from ansible_collections.noreboot.xen.plugins.module_utils.sliced_rollout import (
    SliceError,
    check_slice_count,
    identify_slice,
    slice_hosts,
    sliced_mode,
)

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


def plan_fingerprint(plan):
    """A sha256 of what the approval approved (hosts' decisions, builds, classes, domains, payloads; waves;
    advisories; policy): equal for the same plan in every job of a workflow, whatever each job cut of it."""
    decisions = dict((h, [d.get(f) for f in HOST_FIELDS] + [_payloads(d)])
                     for h, d in (plan.get('decisions') or {}).items())
    waves = [[w.get('number'), w.get('kind'), list(w.get('hosts') or [])] for w in plan.get('waves') or []]
    advisories = sorted([a.get('id'), a.get('manifest_sha256')] for a in plan.get('advisories') or [])
    text = json.dumps([decisions, waves, advisories, plan.get('policy') or {}], sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def hosts_to_patch(plan):
    """``{'live': n, 'reboot': m}``: how many hosts the plan's live patch (canary, livepatch) and reboot waves have."""
    counts = dict(live=0, reboot=0)
    for wave in plan.get('waves') or []:
        counts['reboot' if wave.get('kind') == 'reboot' else 'live'] += len(wave.get('hosts') or [])
    return counts


def restrict_to_hosts(plan, hosts):
    """The plan cut to ``hosts`` (decisions and waves, plan order kept, waves left empty dropped); a new dict."""
    keep = set(hosts)
    waves = [dict(w, hosts=[h for h in w.get('hosts') or [] if h in keep]) for w in plan.get('waves') or []]
    return dict(plan, waves=[w for w in waves if w['hosts']],
                decisions=dict((h, d) for h, d in (plan.get('decisions') or {}).items() if h in keep))


def restrict_to_slice(plan, own_hosts, count, phase='after_canary'):
    """The approved plan cut to the slice of ``count`` that ``own_hosts`` is, and to ``phase``; ``slice`` says
    which slice it is and every slice's hosts to patch in the phase (for the budget shares)."""
    count = check_slice_count(count)
    number = identify_slice(plan.get('decisions') or {}, own_hosts, count)
    per_slice = [hosts_to_patch(restrict_to_phase(restrict_to_hosts(plan, slice_hosts(plan['decisions'], n, count)),
                                                  phase))
                 for n in range(1, count + 1)]
    restricted = restrict_to_phase(restrict_to_hosts(plan, own_hosts), phase)
    return dict(restricted, slice=dict(number=number, count=count, hosts_to_patch=per_slice),
                run_hosts_to_patch=hosts_to_patch(plan), plan_fingerprint=plan_fingerprint(plan))


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
                      phase_hosts_left_out=len(plan['decisions']) - len(decisions),
                      run_hosts_to_patch=plan.get('run_hosts_to_patch') or hosts_to_patch(plan),
                      plan_fingerprint=plan.get('plan_fingerprint') or plan_fingerprint(plan))
    return restricted


def sliced_problem(slices, has_plan, phase):
    """Why a sliced rollout (``slices`` > 1) cannot run with this plan and phase, else None (also None unsliced)."""
    if not sliced_mode(slices):
        return None
    try:
        check_slice_count(slices)
    except SliceError as exc:
        return '%s. Nothing was changed.' % exc
    if not has_plan or phase != 'after_canary':
        return ('a sliced rollout (noreboot_xen_rollout_slices=%s) runs the remaining waves of an approved plan: it needs '
                'the plan artifact noreboot_xen_rollout_plan%s and noreboot_xen_rollout_phase after_canary%s. Fix: plan '
                'and run the canaries unsliced (a job template with job slicing 1), then launch the sliced job template '
                'with both; or leave noreboot_xen_rollout_slices out. Nothing was changed.'
                % (slices, '' if has_plan else ' (not given)', '' if phase == 'after_canary' else ' (%s given)' % phase))
    return None


def reuse_plan(given, fresh, phase='all', slices=None):
    """The given plan cut to ``phase`` when the fleet still matches it; else PlanReuseError naming every difference.

    With ``slices`` (2 or more: this job is one slice of a sliced job), ``fresh`` is planned on this slice's
    hosts only: the slice is identified from them, compared on them, and the plan cut to them."""
    check_plan_artifact(given)
    if phase not in PHASES:
        raise PlanReuseError('phase must be one of %s, got %r' % (', '.join(PHASES), phase))
    problem = sliced_problem(slices, True, phase)
    if problem:
        raise PlanReuseError(problem)
    patched_since = canary_hosts(given) if phase == 'after_canary' else ()
    compared = given
    if sliced_mode(slices):
        try:
            sliced = restrict_to_slice(given, fresh.get('decisions') or {}, slices, phase)
        except SliceError as exc:
            raise PlanReuseError(str(exc))
        compared = restrict_to_hosts(given, fresh.get('decisions') or {})
    differences = plan_differences(compared, fresh, patched_since)
    if differences:
        raise PlanReuseError(
            'the fleet no longer matches the approved plan (noreboot_xen_rollout_plan%s), so this run is refused '
            'before any host is changed: %d difference(s): %s. Fix: %s.'
            % (', run %s' % given['run_id'] if given.get('run_id') else '', len(differences), ' | '.join(differences),
               _FIX), differences)
    if compared is not given:
        return sliced
    return restrict_to_phase(given, phase)
