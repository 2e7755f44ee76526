# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide, per host, what a set of advisories asks for (pure Python, no AnsibleModule).

Input per host (``hosts`` option of noreboot.xen.fleet_plan)::

    {'xen': <ansible_facts.xen from noreboot.xen.xen_facts>,   # may be partial or absent
     'unreachable': bool, 'error': str or None,                # detection outcome
     'failure_domain': str or None, 'force_reboot': bool}      # host vars

Decisions (one per host, with a reason in words, plus one per host and advisory):

* ``unreachable``: detection could not reach the host;
* ``not_xen``: the host runs no Xen hypervisor (``xen.present`` false);
* ``not_affected``: the version/build-id or the hardware is outside the advisory, or the host
  runs a fixed build;
* ``already_patched``: the advisory's payload for this build is applied (see below);
* ``livepatch``: apply the named payload(s);
* ``reboot``: install the fixed package and reboot: no payload for this build-id, the
  hypervisor cannot live patch (``livepatch.reason_kind`` is
  ``hypervisor_without_livepatch``), or the operator forced it (host var
  ``noreboot_xen_force_reboot``; it turns ``livepatch`` into ``reboot`` and leaves
  ``already_patched`` alone), or the payload expired: the manifest's ``apply_until`` for it,
  or its ``livepatch_end_of_life`` ``from`` for the host's build, is at or before ``now``
  (the reason says which and when; ``expired`` carries kind and time). Expiry stops applying,
  not what is applied: a host where the payload is already applied stays ``already_patched``,
  and a payload an interrupted run applied is still finished;
* ``finish_reboot``: an earlier run of the reboot fallback did not finish on this host
  (``xen.evacuation.unfinished``: guests of its guest manifest not back, or a reboot intent
  without an outcome in its ledger), whatever its build: the run finishes it before anything
  else (see finish_reboot_decision);
* ``undecided``: the facts lack what the decision needs (detection failed, partial facts, a
  version a payload may have altered, live patch state unknown because ``xen-livepatch`` is
  missing or failed); the host is in no wave, and the reason says what is missing.

How ``already_patched`` is matched. ``xen-livepatch list`` shows names, states and metadata,
not build-ids, so the payload's own build-id cannot be read back from the host. A payload
counts as applied when (1) a payload of the manifest's ``name`` is ``APPLIED``, (2) the host's
hypervisor build-id is the payload's ``.livepatch.xen_depends`` (checked on the controller
when the manifest was validated; Xen refuses to load a payload whose xen_depends differs, so
an applied payload of that name on this build was built for this build), and (3) when the
manifest declares ``metadata``, the payload's metadata column contains it. Limit: two
different payloads with the same name for the same build (say a first and a corrected
revision) cannot be told apart unless their metadata differs; give revisions different
names or metadata. A payload of that name that is only ``CHECKED`` (uploaded, not applied)
is not a match: the host is planned for ``livepatch``.

An applied payload is not taken as done when the host's rollout ledger has an *open intent*
for it (``xen.livepatch.open_intents``: the ledger's last entry for that name is an intent of
the manifest's sha256, no outcome followed): a run was interrupted after the apply and before
it recorded an outcome, so the payload's health checks never ran. Such a host is planned for
``livepatch`` ("applied by interrupted run R; its health checks and outcome are pending"):
noreboot.xen.livepatch_rollout then finds it APPLIED with that intent, runs the checks that need
no baseline, reverts on failure and records the outcome, without a second upload or apply. An
open intent for another sha256 (another file of that name) is not ours to finish: the host
stays ``already_patched`` and the reason says so. A ledger the facts could not read
(``xen.livepatch.ledger_error``) is named in an ``already_patched`` reason.

A payload that failed on a host keeps counting (``xen.livepatch.last_outcomes``: the ledger's last
outcome per payload name; ``xen.livepatch.open_intents`` with the boot id each intent was
written in; ``xen.livepatch.boot_id``: the host's boot now):

* ``held``: the payload (same sha256) was ``reverted``, ``failed`` or ``failed_applied`` on this
  host by run R, or an intent of run R for it is open, the payload is not loaded and the host
  has booted since the intent was written ("this payload may have killed the host"). The
  reason names the cause and the run. The other ``livepatch`` hosts of the same build-id and
  hardware class planned for that payload are ``held`` too (hold_groups), unless the payload is
  ``already_patched`` on some host of that group (its canary passed: the failure is the host's).
  Only the operator releases it: ``retry_failed`` (playbook ``noreboot_xen_retry_failed``)
  lists payload names; a released host is ``livepatch`` with ``retry_failed: true`` and goes
  first, as its group's canary (wave_plan);
* ``needs_attention``: the payload is APPLIED but the ledger's last outcome for that name is a
  failure (``failed_applied``, ``failed``, ``reverted``): it was left applied after failed
  checks (the revert failed, or revert_on_failure was false). Never ``already_patched``; no
  release applies: someone reverts it or reboots the host.

If the host's facts ever carry a payload's own ``build_id`` (``xen-livepatch list`` does
not; ``xl debug-keys x`` + ``xl dmesg`` would), that alone decides the match.

With several advisories, the host's decision is the most demanding of its per-advisory
decisions in this order: undecided, needs_attention, held, reboot, livepatch, already_patched,
not_affected. The
payloads of a ``livepatch`` host are listed in advisory order, and ``stacking`` says for each
whether its ``.livepatch.depends`` fits what it goes on top of (see stacking_check); the
misfits are repeated in ``notes``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.advisory_match import (
    apply_deadline,
    expiry_for,
    livepatch_for,
    match_hardware,
    match_hypervisor,
)
from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import where

UNREACHABLE = 'unreachable'
NOT_XEN = 'not_xen'
NOT_AFFECTED = 'not_affected'
ALREADY_PATCHED = 'already_patched'
LIVEPATCH = 'livepatch'
REBOOT = 'reboot'
UNDECIDED = 'undecided'
HELD = 'held'
NEEDS_ATTENTION = 'needs_attention'
FINISH_REBOOT = 'finish_reboot'

DECISIONS = (UNREACHABLE, NOT_XEN, FINISH_REBOOT, UNDECIDED, NEEDS_ATTENTION, HELD, REBOOT, LIVEPATCH, ALREADY_PATCHED,
             NOT_AFFECTED)
# Most demanding first: how per-advisory decisions combine into the host's decision.
_PRIORITY = (UNDECIDED, NEEDS_ATTENTION, HELD, REBOOT, LIVEPATCH, ALREADY_PATCHED, NOT_AFFECTED)

# Ledger outcomes after which a payload keeps counting as failed on that host.
FAILED_OUTCOMES = ('reverted', 'failed', 'failed_applied')
RELEASE_VARIABLE = 'noreboot_xen_retry_failed'

UNKNOWN_CLASS = 'unknown'

# xen.livepatch.reason_kind of a hypervisor built without live patching (livepatch_list_parser).
HYPERVISOR_WITHOUT_LIVEPATCH = 'hypervisor_without_livepatch'


def _build_id(hypervisor):
    value = hypervisor.get('build_id') if isinstance(hypervisor, dict) else None
    if isinstance(value, str) and value.strip():
        return value.strip().lower()
    return None


def hardware_class(xen):
    """The host's hardware class (``intel-6-85``), or ``unknown``."""
    hardware = xen.get('hardware') if isinstance(xen, dict) else None
    if isinstance(hardware, dict):
        value = hardware.get('class')
        if isinstance(value, str) and value.strip():
            return value.strip()
        if all(hardware.get(k) is not None for k in ('vendor', 'family', 'model')):
            return '%s-%s-%s' % (hardware['vendor'], hardware['family'], hardware['model'])
    return UNKNOWN_CLASS


def find_applied(payloads, livepatch):
    """``(applied, detail)``: is the manifest's payload applied among the host's payloads?"""
    for payload in payloads:
        if not isinstance(payload, dict) or payload.get('name') != livepatch['name']:
            continue
        state = payload.get('state')
        if state != 'APPLIED':
            return False, 'payload %s is loaded but %s, not APPLIED' % (livepatch['name'], state)
        reported = payload.get('build_id')
        own = livepatch.get('payload_build_id')
        if isinstance(reported, str) and reported and own:
            # Facts that do carry the payload's own build-id (not xen-livepatch list) decide alone.
            if reported.lower() != own:
                return False, ('payload %s is APPLIED but its build-id is %s, not %s: another payload of that name'
                               % (livepatch['name'], reported.lower(), own))
            return True, 'payload %s is APPLIED with build-id %s' % (livepatch['name'], own)
        marker = livepatch.get('metadata')
        if marker and marker not in (payload.get('metadata') or ''):
            return False, ('payload %s is APPLIED but its metadata %r lacks %r: another revision of that name'
                           % (livepatch['name'], payload.get('metadata'), marker))
        return True, 'payload %s is APPLIED on its build-id %s%s' % (
            livepatch['name'], livepatch['xen_build_id'], ' with metadata %r' % marker if marker else '')
    return False, 'payload %s is not loaded' % livepatch['name']


def last_outcome_for(lp_facts, name):
    """The ledger's last outcome entry for payload ``name`` (``xen.livepatch.last_outcomes``), or None."""
    outcomes = lp_facts.get('last_outcomes') if isinstance(lp_facts, dict) else None
    for entry in outcomes if isinstance(outcomes, list) else []:
        if isinstance(entry, dict) and entry.get('name') == name:
            return entry
    return None


def failure_on_host(lp_facts, livepatch, loaded):
    """``(cause, detail)`` when this payload (same sha256) failed on this host, else ``(None, None)``.

    ``cause`` is ``failed`` (the ledger's last outcome is a failure) or ``crashed`` (an intent is
    open, the payload is not loaded and the host booted since the intent was written).
    """
    sha256 = livepatch['sha256']
    intents = lp_facts.get('open_intents') if isinstance(lp_facts, dict) else None
    boot_now = lp_facts.get('boot_id') if isinstance(lp_facts, dict) else None
    for intent in intents if isinstance(intents, list) else []:
        if not isinstance(intent, dict) or intent.get('name') != livepatch['name']:
            continue
        if str(intent.get('sha256') or '').lower() != sha256 or loaded:
            continue
        written_in = intent.get('boot_id')
        if written_in and written_in != boot_now:
            return 'crashed', ('run %s wrote its intent to apply %s at %s (boot %s) and never recorded an outcome; '
                               'the payload is not loaded and the host has booted since (boot %s): this payload may '
                               'have killed the host' % (intent.get('run_id'), livepatch['name'], intent.get('time'),
                                                         written_in, boot_now or 'unknown'))
    last = last_outcome_for(lp_facts, livepatch['name'])
    if last and last.get('outcome') in FAILED_OUTCOMES and str(last.get('sha256') or '').lower() == sha256:
        checks = ', '.join(last.get('failed_checks') or []) or 'none recorded'
        return 'failed', ('payload %s ended %s on this host in run %s at %s (failed checks: %s)'
                          % (livepatch['name'], last.get('outcome'), last.get('run_id'), last.get('time'), checks))
    return None, None


def decide_advisory(advisory, xen, force_reboot=False, retry_failed=(), now=None):
    """Decision of one advisory for one present Xen host: dict(advisory, decision, reason, ...).

    ``retry_failed``: payload names the operator released (see the module docstring, ``held``).
    ``now``: the current time (aware datetime), needed when the advisory has expiry times
    (see the module docstring, ``reboot``); the caller reads the clock, not this function."""
    result = dict(advisory=advisory['id'])
    hypervisor = xen.get('hypervisor')
    if not isinstance(hypervisor, dict) or not hypervisor:
        return dict(result, decision=UNDECIDED, reason='facts lack xen.hypervisor')
    affected, why = match_hypervisor(advisory, hypervisor)
    if affected is None:
        return dict(result, decision=UNDECIDED, reason=why)
    if not affected:
        return dict(result, decision=NOT_AFFECTED, reason=why)
    hw_affected, hw_why = match_hardware(advisory['hardware'], hypervisor, xen.get('hardware'))
    if hw_affected is None:
        return dict(result, decision=UNDECIDED, reason='%s; %s' % (why, hw_why))
    if not hw_affected:
        return dict(result, decision=NOT_AFFECTED, reason='%s but %s' % (why, hw_why))
    why = '%s, %s' % (why, hw_why)
    build_id = _build_id(hypervisor)
    if build_id is None:
        return dict(result, decision=UNDECIDED, reason='%s; build-id unknown, so no payload can be chosen' % why)
    livepatch = livepatch_for(advisory, build_id)
    if livepatch is None:
        return dict(result, decision=REBOOT, reason='%s; no payload for build-id %s' % (why, build_id),
                    fallback=advisory['fallback'])
    lp_facts = xen.get('livepatch')
    payloads = lp_facts.get('payloads') if isinstance(lp_facts, dict) else None
    applied, applied_why = find_applied(payloads if isinstance(payloads, list) else [], livepatch)
    intent = None
    if applied:
        intent, intent_why = open_intent_for(lp_facts, livepatch)
        last = last_outcome_for(lp_facts, livepatch['name'])
        if intent is None and last and last.get('outcome') in FAILED_OUTCOMES:
            return dict(result, decision=NEEDS_ATTENTION, payload=_payload_view(livepatch), reason=(
                '%s; %s, but the ledger says run %s ended it %s at %s (failed checks: %s): it was left applied after '
                'failed checks; revert it (xen-livepatch revert/unload) or reboot the host, then detect again'
                % (why, applied_why, last.get('run_id'), last.get('outcome'), last.get('time'),
                   ', '.join(last.get('failed_checks') or []) or 'none recorded')))
        if intent is None:
            return dict(result, decision=ALREADY_PATCHED, reason='%s; %s%s' % (why, applied_why, intent_why),
                        payload=_payload_view(livepatch))
    if intent is None:
        expired = expiry_for(advisory, build_id, livepatch, now)
        if expired is not None:
            return dict(result, decision=REBOOT, reason='%s; %s: the reboot fallback instead' % (why, expired['reason']),
                        fallback=advisory['fallback'], expired=expired)
    if force_reboot:
        return dict(result, decision=REBOOT, reason='%s; operator forced a reboot (noreboot_xen_force_reboot)' % why,
                    fallback=advisory['fallback'])
    if not isinstance(lp_facts, dict) or not isinstance(lp_facts.get('supported'), bool):
        return dict(result, decision=UNDECIDED, reason='%s; facts lack xen.livepatch.supported' % why)
    if not lp_facts['supported']:
        detail = lp_facts.get('reason') or 'no reason given'
        if lp_facts.get('reason_kind') == HYPERVISOR_WITHOUT_LIVEPATCH:
            return dict(result, decision=REBOOT, reason='%s; hypervisor cannot live patch (%s)' % (why, detail),
                        fallback=advisory['fallback'])
        # Tool missing, control interface unreachable, list failed: the payload state is unknown
        # and the hypervisor may well live patch once the tooling works.
        return dict(result, decision=UNDECIDED, reason='%s; live patch state unknown (%s: %s): fix the tooling and detect again' % (
            why, lp_facts.get('reason_kind') or 'no reason_kind', detail))
    if payloads is None:
        return dict(result, decision=UNDECIDED, reason='%s; facts lack xen.livepatch.payloads' % why)
    released = False
    if intent is None:
        loaded = any(isinstance(p, dict) and p.get('name') == livepatch['name'] for p in payloads)
        cause, detail = failure_on_host(lp_facts, livepatch, loaded)
        if cause and livepatch['name'] not in (retry_failed or ()):
            return dict(result, decision=HELD, payload=_payload_view(livepatch), held=dict(cause=cause, detail=detail), reason=(
                '%s; held: %s; it is not applied again until the operator releases it (%s=[%s]), and then this host '
                'goes first, as a canary' % (why, detail, RELEASE_VARIABLE, livepatch['name'])))
        released = cause is not None
    if intent is not None:
        return dict(result, decision=LIVEPATCH, reason='%s; %s, applied by interrupted run %s; its health checks and '
                    'outcome are pending: the rollout finishes it' % (why, applied_why, intent.get('run_id')),
                    payload=_planned_payload(advisory, build_id, livepatch), open_intent=dict(intent))
    if released:
        return dict(result, decision=LIVEPATCH, retry_failed=True, payload=_planned_payload(advisory, build_id, livepatch),
                    reason=('%s; %s: apply payload %s again, released by the operator (%s), first as a canary; it failed '
                            'before: %s' % (why, applied_why, livepatch['name'], RELEASE_VARIABLE, detail)))
    return dict(result, decision=LIVEPATCH, reason='%s; %s: apply payload %s' % (why, applied_why, livepatch['name']),
                payload=_planned_payload(advisory, build_id, livepatch))


def open_intent_for(lp_facts, livepatch):
    """``(intent, note)``: the host's open intent for the manifest's payload, or None and a note
    to add to an ``already_patched`` reason (empty when there is nothing to say)."""
    intents = lp_facts.get('open_intents') if isinstance(lp_facts, dict) else None
    ledger_error = lp_facts.get('ledger_error') if isinstance(lp_facts, dict) else None
    notes = []
    for intent in intents if isinstance(intents, list) else []:
        if not isinstance(intent, dict) or intent.get('name') != livepatch['name']:
            continue
        sha256 = intent.get('sha256')
        if isinstance(sha256, str) and sha256.lower() == livepatch['sha256']:
            return intent, ''
        notes.append('the ledger has an open intent of interrupted run %s for another file of that name (sha256 %s), '
                     'not this payload' % (intent.get('run_id'), sha256))
    if ledger_error:
        notes.append('the rollout ledger could not be read (%s), so an interrupted run would go unseen' % ledger_error)
    return None, ''.join('; ' + note for note in notes)


def _payload_view(livepatch):
    return dict((k, livepatch.get(k)) for k in ('name', 'xen_build_id', 'file', 'path', 'sha256', 'payload_build_id',
                                                'depends', 'metadata', 'expect'))


def _planned_payload(advisory, build_id, livepatch):
    """The payload of a ``livepatch`` decision: its view and ``apply_until``, the time from which it must not
    be applied on this build any more (None: no limit), which noreboot.xen.livepatch_rollout checks again."""
    return dict(_payload_view(livepatch), apply_until=apply_deadline(advisory, build_id, livepatch))


def _base(host, entry):
    xen = entry.get('xen') if isinstance(entry, dict) else None
    xen = xen if isinstance(xen, dict) else {}
    hypervisor = xen.get('hypervisor') if isinstance(xen.get('hypervisor'), dict) else {}
    return dict(
        host=host,
        build_id=_build_id(hypervisor),
        version=hypervisor.get('version'),
        effective_version=xen.get('effective_version'),
        hardware_class=hardware_class(xen),
        failure_domain=failure_domain(entry),
        force_reboot=bool(entry.get('force_reboot')) if isinstance(entry, dict) else False,
        payloads=[],
        stacking=[],
        notes=[],
        advisories=[],
        retry_failed=False,
    )


def failure_domain(entry):
    value = entry.get('failure_domain') if isinstance(entry, dict) else None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


def decide_host(host, entry, advisories, retry_failed=(), now=None):
    """The decision for one host over all advisories (a dict; see the module docstring)."""
    result = _decide_host(host, entry, advisories, retry_failed, now)
    evacuation = (entry.get('xen') or {}).get('evacuation') if isinstance(entry, dict) else None
    if result['decision'] != UNREACHABLE and isinstance(evacuation, dict) and evacuation.get('unfinished'):
        return finish_reboot_decision(result, evacuation, advisories)
    return result


def finish_reboot_decision(result, evacuation, advisories):
    """``finish_reboot`` for a host an earlier reboot fallback run left unfinished (its facts'
    ``evacuation``), whatever its build. ``resumes`` keeps the decision the host would get
    otherwise; ``finish`` says what finishing needs: the guests not yet back, the resumed run,
    and ``good_build_ids``, the builds that count as fixed (every advisory's and the intent's
    fixed build-ids, plus the running build when the advisories leave it alone)."""
    intent = evacuation.get('reboot_intent') or {}
    guests = [g for g in evacuation.get('guests') or [] if isinstance(g, dict)]
    good = set()
    for advisory in advisories:
        good.update((advisory.get('fallback') or {}).get('fixed_build_ids') or [])
    good.update(b.lower() for b in intent.get('fixed_build_ids') or [] if isinstance(b, str))
    if result['decision'] in (NOT_AFFECTED, ALREADY_PATCHED) and result.get('build_id'):
        good.add(result['build_id'])
    what = []
    if guests:
        what.append('guest(s) %s are not back' % ', '.join(where(g, with_error=False) for g in guests))
    if intent:
        what.append('the reboot intent of run %s has no outcome in the ledger' % intent.get('run_id'))
    if evacuation.get('error'):
        what.append(evacuation['error'])
    reason = ('an earlier reboot fallback run (%s) did not finish here: %s; this run finishes it before anything '
              'else (verify the build, bring the guests back, record the outcome), whatever the build; otherwise: %s'
              % (intent.get('run_id') or evacuation.get('run_id') or 'run id unknown', '; '.join(what),
                 result['reason']))
    finish = dict(guests=guests, resumed_run_id=intent.get('run_id') or evacuation.get('run_id'),
                  manifest_path=evacuation.get('manifest_path'), reboot_intent=intent or None,
                  good_build_ids=sorted(good))
    return dict(result, decision=FINISH_REBOOT, reason=reason, resumes=dict(decision=result['decision'],
                                                                            reason=result['reason']),
                finish=finish, payloads=[], stacking=[])


def _decide_host(host, entry, advisories, retry_failed=(), now=None):
    result = _base(host, entry)
    if not isinstance(entry, dict):
        return dict(result, decision=UNDECIDED, reason='no input for this host (expected a mapping with xen facts)')
    if entry.get('unreachable'):
        detail = entry.get('error')
        return dict(result, decision=UNREACHABLE, reason='detection could not reach the host%s' % (
            ': %s' % detail if detail else ''))
    if entry.get('error'):
        return dict(result, decision=UNDECIDED, reason='detection failed: %s' % entry['error'])
    xen = entry.get('xen')
    if not isinstance(xen, dict) or not xen:
        return dict(result, decision=UNDECIDED, reason='no xen facts for this host (did noreboot.xen.xen_facts run?)')
    present = xen.get('present')
    if present is False:
        return dict(result, decision=NOT_XEN, reason='no Xen hypervisor: %s' % (xen.get('reason') or 'xen.present is false'))
    if present is not True:
        return dict(result, decision=UNDECIDED, reason='facts lack xen.present')
    force = bool(entry.get('force_reboot'))
    per_advisory = [decide_advisory(advisory, xen, force, retry_failed, now) for advisory in advisories]
    result['advisories'] = per_advisory
    if not per_advisory:
        return dict(result, decision=NOT_AFFECTED, reason='no advisories given')
    decision = min((a['decision'] for a in per_advisory), key=_PRIORITY.index)
    relevant = [a for a in per_advisory if a['decision'] == decision]
    reason = '; '.join('%s: %s' % (a['advisory'], a['reason']) for a in relevant)
    result.update(decision=decision, reason=reason)
    if decision == LIVEPATCH:
        # In the order the advisories were given: that is the order they are applied and stacked.
        result['payloads'] = [dict(a['payload'], advisory=a['advisory']) for a in per_advisory if a['decision'] == LIVEPATCH]
        result['stacking'] = _stacking(result['build_id'], xen, per_advisory, _known_ids(advisories))
        result['notes'] = [s['note'] for s in result['stacking'] if s['status'] != STACK_OK]
        result['retry_failed'] = any(a.get('retry_failed') for a in per_advisory if a['decision'] == LIVEPATCH)
    if decision == REBOOT:
        result['fallback'] = _merge_fallback([a for a in per_advisory if a['decision'] == REBOOT])
    return result


def _merge_fallback(decisions):
    packages = {}
    fixed = set()
    for decision in decisions:
        fallback = decision.get('fallback') or {}
        fixed.update(fallback.get('fixed_build_ids') or [])
        for dist, spec in (fallback.get('packages') or {}).items():
            packages.setdefault(dist, []).append(dict(spec, advisory=decision['advisory']))
    return dict(reboot=True, fixed_build_ids=sorted(fixed), packages=dict(sorted(packages.items())))


STACK_OK = 'ok'
STACK_UNKNOWN = 'unknown'
STACK_REPLACE_ONLY = 'replace_only'
STACK_MISMATCH = 'mismatch'


def _applied_names(xen):
    livepatch = xen.get('livepatch') if isinstance(xen, dict) else None
    payloads = livepatch.get('payloads') if isinstance(livepatch, dict) else None
    return [p.get('name') for p in payloads or [] if isinstance(p, dict) and p.get('state') == 'APPLIED']


def _known_ids(advisories):
    known = {}
    for advisory in advisories:
        for livepatch in advisory['livepatches']:
            if livepatch.get('payload_build_id'):
                known[livepatch['name']] = livepatch['payload_build_id']
    return known


def _stacking(host_build_id, xen, per_advisory, known_ids):
    """stacking_check over the payloads to apply, in advisory order; a payload an interrupted run
    already applied (``open_intent``) is not stacked again: it is ``ok`` where it is."""
    fresh = [dict(a['payload'], advisory=a['advisory']) for a in per_advisory
             if a['decision'] == LIVEPATCH and not a.get('open_intent')]
    checked = iter(stacking_check(host_build_id, _applied_names(xen), fresh, known_ids))
    stacking = []
    for decision in per_advisory:
        if decision['decision'] != LIVEPATCH:
            continue
        name = decision['payload']['name']
        if decision.get('open_intent'):
            stacking.append(dict(name=name, depends=decision['payload'].get('depends'), on_top_of=None, status=STACK_OK,
                                 note='payload %s is already applied (interrupted run %s): nothing to stack'
                                 % (name, decision['open_intent'].get('run_id'))))
        else:
            stacking.append(next(checked))
    return stacking


def stacking_check(host_build_id, applied, payloads, known_ids):
    """Will each payload's ``.livepatch.depends`` fit when applied in order on this host?

    Xen checks it at apply (xen/common/livepatch.c, ``build_id_dep``): with nothing applied it
    must be the hypervisor's build-id, otherwise the build-id of the last applied payload;
    ``replace`` instead always checks it against the hypervisor (and reverts all others).
    ``applied``: names of the payloads APPLIED now, in ``xen-livepatch list`` order (the last
    is taken as the top of the stack); ``known_ids``: payload name -> own build-id for the
    payloads of the manifests. Returns one dict per payload: name, depends, on_top_of, status
    (ok, unknown, replace_only, mismatch) and a note.
    """
    known = dict(known_ids)
    top = applied[-1] if applied else None
    result = []
    for payload in payloads:
        depends = payload.get('depends')
        expected = host_build_id if top is None else known.get(top)
        where = 'the hypervisor' if top is None else 'payload %s' % top
        if depends is None:
            status, note = STACK_UNKNOWN, 'payload %s: its .livepatch.depends is unknown' % payload['name']
        elif expected is None:
            status = STACK_UNKNOWN
            note = 'payload %s goes on top of %s, whose build-id is unknown: apply may be refused' % (payload['name'], where)
        elif depends == expected:
            status, note = STACK_OK, 'payload %s stacks on %s' % (payload['name'], where)
        elif depends == host_build_id:
            status = STACK_REPLACE_ONLY
            note = ('payload %s depends on the hypervisor but goes on top of %s: apply would be refused, '
                    'replace (which reverts the other payloads) would not' % (payload['name'], where))
        else:
            status = STACK_MISMATCH
            note = 'payload %s depends on %s, which is neither the hypervisor nor %s: Xen would refuse it' % (
                payload['name'], depends, where)
        result.append(dict(name=payload['name'], depends=depends, on_top_of=top, status=status, note=note))
        top = payload['name']
        if payload.get('payload_build_id'):
            known[top] = payload['payload_build_id']
    return result


def decide_fleet(hosts, advisories, retry_failed=(), now=None):
    """Decisions for every host, sorted by host name; a payload held on a host holds its group (hold_groups).
    ``now``: the current time, an aware datetime (see decide_advisory)."""
    return hold_groups([decide_host(host, hosts[host], advisories, retry_failed, now) for host in sorted(hosts)])


def _group(decision):
    return (decision.get('build_id') or '', decision.get('hardware_class') or UNKNOWN_CLASS)


def hold_groups(decisions):
    """A payload held on a host (it failed there, or may have killed it) is held on every other
    ``livepatch`` host of the same build-id and hardware class planned for it, unless the payload
    is applied and fine (``already_patched``) on some host of that group: then only the failed
    host is held (in place; returns ``decisions``). The reason names the host and the run that
    saw it fail."""
    held = {}
    working = set()
    for decision in decisions:
        for advisory in decision.get('advisories') or []:
            if advisory.get('decision') == HELD:
                key = _group(decision) + (advisory['payload']['name'],)
                held.setdefault(key, []).append('%s (%s)' % (decision['host'], advisory['held']['detail']))
            elif advisory.get('decision') == ALREADY_PATCHED and advisory.get('payload'):
                working.add(_group(decision) + (advisory['payload']['name'],))
    # A group where the payload is applied and fine on some host (its canary passed) lost only the
    # failed host: the failure is that host's. A group where it works nowhere (a failed canary) is held.
    held = dict((key, hosts) for key, hosts in held.items() if key not in working)
    if not held:
        return decisions
    for decision in decisions:
        if decision['decision'] != LIVEPATCH:
            continue
        causes = []
        for payload in decision.get('payloads') or []:
            key = _group(decision) + (payload['name'],)
            if key in held:
                causes.append('payload %s is held on its build-id/hardware group (%s, %s): it failed on %s; released '
                              'with %s=[%s]' % (payload['name'], key[0][:12] or 'unknown build', key[1],
                                                '; '.join(held[key]), RELEASE_VARIABLE, payload['name']))
        if causes:
            decision.update(decision=HELD, reason='; '.join(causes), payloads=[], stacking=[], notes=[])
    return decisions


def count_decisions(decisions):
    counts = dict((name, 0) for name in DECISIONS)
    for decision in decisions:
        counts[decision['decision']] += 1
    return counts
