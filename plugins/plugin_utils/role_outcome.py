# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's outcome and message at the end of the roles noreboot.xen.reboot_fallback and
noreboot.xen.livepatch (pure Python; the filters reboot_fallback_outcome, finish_reboot_outcome
and livepatch_outcome of plugins/filter/role_outcome.py).

The role reboot_fallback hands over what its run left, ``end``, a dict:

* both entry points: ``check_mode``, ``phase`` (the phase the run reached or failed in:
  preflight, install, evacuate, reboot, verify, restore; finish for the finish entry point
  until it has read the build), ``failure`` (the failed task's result, ``{}`` when nothing
  failed), ``build_id_after`` (the build running at the end), ``guests`` (the guest entries as
  xen_guests reports them: ``name``, ``state``, ...);
* ``reboot`` (main entry point): ``needed`` (the plan sends the host to a reboot), ``go``
  (reboots are allowed), ``outcome`` (what preflight recorded: not_needed, reboot_required,
  in_progress), ``reason`` (the plan's), ``host``, ``recovery`` (the result of bringing the
  guests back after a failure; ``{}`` when it did not run), ``fixed_build_ids``;
* ``finish`` (finish entry point): ``resumed_run_id`` (the run it finishes), ``good_build_ids``.

Each returns ``{'outcome', 'guests', 'stranded', 'msg'}``: ``guests`` the guest entries as last
known, ``stranded`` those not running again, in words (guest_evacuation.where).

The role's ``reboot_fallback_result`` (filters reboot_fallback_result and finish_reboot_result) is
that record with what the run left around it: ``end`` also has ``decision``, ``run_id``,
``build_id_before`` and ``reboot`` (the result of the reboot task, ``{}`` when it did not run) for
the main entry point, ``run_id`` for the finish entry point.

The role livepatch hands over ``go`` (the plan gives the host a payload), ``outcome`` (what
preflight recorded), ``reason`` (the plan's), ``stage`` and ``apply`` (the results of staging
the payload and of noreboot.xen.livepatch_rollout, ``{}`` when they did not run) and
``failure`` (the failed task's result, ``{}`` when nothing failed), and for the fact ``livepatch_result``
``decision``, ``payload`` (its name) and ``run_id``; livepatch_record returns ``{'outcome', 'msg',
'failed_checks', 'resumed', 'uploaded', 'held_by_run', 'result'}``. The role's preflight (livepatch_start)
checks its inputs and gives a host without a payload its final outcome.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.noreboot.xen.plugins.module_utils.guest_evacuation import where

WOULD_REBOOT = 'would_reboot'
REBOOTED = 'rebooted'
REFUSED = 'refused'
UNREACHABLE = 'unreachable'
GUESTS_NOT_RESTORED = 'guests_not_restored'
WRONG_BUILD = 'wrong_build'
FAILED = 'failed'
# The finish entry point's own outcomes.
WOULD_FINISH = 'would_finish'
NOT_REBOOTED = 'not_rebooted'

# Guest states that are not stranded: back, running, on the migration peer, or (check mode) only planned.
PLACED_STATES = ('restored', 'started', 'running', 'on_peer', 'planned')
FINISH_PLACED_STATES = ('restored', 'started', 'running', 'on_peer')


def _mapping(value):
    return value if isinstance(value, dict) else {}


def _names(guests):
    return ', '.join(guest.get('name') or '?' for guest in guests)


def _lower_list(values):
    return [str(value).lower() for value in values or []]


def recovery_ok(recovery):
    """Did bringing the guests back after a failure work (or not need to run)? A recovery that was
    skipped, failed or could not reach the host did not."""
    if not isinstance(recovery, dict):
        return False
    return not (recovery.get('skipped') or recovery.get('failed') or recovery.get('unreachable'))


def reboot_outcome(end):
    """The outcome of a host the role was allowed to reboot (the 7-way ladder), in this order:

    would_reboot (check mode, nothing failed), rebooted (nothing failed), refused (a step refused
    before touching the host), unreachable (failed in the reboot phase and its guests could not be
    brought back: the host did not come back), guests_not_restored (failed bringing the guests back,
    or failed evacuating / verifying and bringing them back failed too), wrong_build (the host came
    back on a build that is not a fixed one), failed (anything else)."""
    failure = _mapping(end.get('failure'))
    phase = end.get('phase')
    recovery = end.get('recovery') if end.get('recovery') is not None else {}
    build = end.get('build_id_after')
    if not failure:
        return WOULD_REBOOT if end.get('check_mode') else REBOOTED
    if failure.get('outcome') == REFUSED:
        return REFUSED
    if phase == 'reboot' and not recovery_ok(recovery):
        return UNREACHABLE
    if phase == 'restore' or (phase in ('evacuate', 'verify') and _mapping(recovery).get('failed')):
        return GUESTS_NOT_RESTORED
    if phase == 'verify' and build and str(build).lower() not in _lower_list(end.get('fixed_build_ids')):
        return WRONG_BUILD
    return FAILED


def known_guests(end):
    """The guest entries as last known: what bringing them back reported, else the failed step's
    manifest, else the guests as the run recorded them."""
    recovered = _mapping(end.get('recovery')).get('guests')
    manifest = _mapping(_mapping(end.get('failure')).get('manifest')).get('guests')
    return list(recovered or manifest or end.get('guests') or [])


def stranded(guests, placed=PLACED_STATES):
    """The guests not back where they run, in words."""
    return [where(guest) for guest in guests if guest.get('state') not in placed]


def reboot_message(end, outcome, guests):
    """The host's message in reboot_fallback_result."""
    failure = _mapping(end.get('failure'))
    recovery = _mapping(end.get('recovery'))
    if not end.get('needed'):
        return end.get('reason') or ''
    if not end.get('go'):
        return 'reboot required; noreboot_xen_reboot_ok is false, nothing was changed'
    if outcome == REBOOTED:
        on_peer = [guest for guest in guests if guest.get('state') == 'on_peer']
        return 'rebooted into build-id %s; every guest runs again%s' % (
            end.get('build_id_after'), ' (on the migration peer: %s)' % _names(on_peer) if on_peer else '')
    if outcome == WOULD_REBOOT:
        return ('check mode: the fixed hypervisor would be installed, the guests moved (%s) and the host rebooted'
                % (_names(guests) or 'none'))
    if outcome == UNREACHABLE:
        return '%s did not come back after the reboot (%s)' % (end.get('host'), failure.get('msg') or '')
    also = ('; bringing the guests back also failed: %s' % (recovery.get('msg') or '')) if recovery.get('failed') else ''
    return (failure.get('msg') or '') + also


def reboot_record(end):
    """``{'outcome', 'guests', 'stranded', 'msg'}`` of the main entry point. A host the role was not
    allowed to reboot (or that needs none) keeps the outcome preflight gave it, and no guests."""
    end = _mapping(end)
    if end.get('go'):
        outcome = reboot_outcome(end)
        guests = known_guests(end)
    else:
        outcome = end.get('outcome')
        guests = []
    lost = stranded(guests) if outcome in (UNREACHABLE, GUESTS_NOT_RESTORED) else []
    return dict(outcome=outcome, guests=guests, stranded=lost, msg=reboot_message(end, outcome, guests))


def finish_outcome(end):
    """The outcome of finishing an earlier run's reboot: would_finish (check mode, nothing failed),
    failed (failed before it read the running build), guests_not_restored (failed later), rebooted
    (a good build runs), not_rebooted (the guests are back but the host still runs an old build)."""
    failure = _mapping(end.get('failure'))
    if not failure:
        if end.get('check_mode'):
            return WOULD_FINISH
        build = str(end.get('build_id_after') or '').lower()
        return REBOOTED if build in _lower_list(end.get('good_build_ids')) else NOT_REBOOTED
    return FAILED if end.get('phase') == 'finish' else GUESTS_NOT_RESTORED


def finish_message(end, outcome, guests):
    """The host's message in reboot_fallback_result (finish entry point)."""
    run = end.get('resumed_run_id') or '?'
    build = end.get('build_id_after')
    if outcome == REBOOTED:
        return 'finished the reboot fallback of run %s: build-id %s runs; guest(s) running again: %s' % (
            run, build, _names(guests) or 'none')
    if outcome == NOT_REBOOTED:
        return ('guest(s) running again (%s) but build-id %s is not a fixed one: the host still needs its reboot '
                '(run the same command again)' % (_names(guests) or 'none', build))
    if outcome == WOULD_FINISH:
        return 'check mode: the guests of run %s would be brought back' % run
    return 'finishing the reboot fallback of run %s failed: %s' % (run, _mapping(end.get('failure')).get('msg') or '')


def finish_record(end):
    """``{'outcome', 'guests', 'stranded', 'msg'}`` of the finish entry point; the guests are the failed
    step's manifest's when it has one, else those the run recorded."""
    end = _mapping(end)
    outcome = finish_outcome(end)
    guests = known_guests(end)
    lost = stranded(guests, FINISH_PLACED_STATES) if end.get('failure') else []
    return dict(outcome=outcome, guests=guests, stranded=lost, msg=finish_message(end, outcome, guests))


def reboot_done(reboot):
    """Did the reboot task reboot the host and see it come back (check mode: would it)? Not when it
    did not run, failed (e.g. the host did not come back in time) or could not reach the host."""
    reboot = _mapping(reboot)
    return bool(reboot.get('rebooted')) and not (reboot.get('failed') or reboot.get('unreachable')
                                                 or reboot.get('skipped'))


def reboot_result(end):
    """The role's ``reboot_fallback_result`` (main entry point): reboot_record's outcome, guests,
    stranded guests and message, with the plan's decision, the phase reached, whether the host
    rebooted, the builds before and after, the fixed builds and the run id."""
    end = _mapping(end)
    record = reboot_record(end)
    return dict(decision=end.get('decision'), outcome=record['outcome'], phase=end.get('phase'),
                rebooted=reboot_done(end.get('reboot')), build_id_before=end.get('build_id_before'),
                build_id_after=end.get('build_id_after'), fixed_build_ids=list(end.get('fixed_build_ids') or []),
                guests=record['guests'], stranded=record['stranded'], run_id=end.get('run_id'), msg=record['msg'])


def finish_result(end):
    """The role's ``reboot_fallback_result`` (finish entry point): finish_record's outcome, guests,
    stranded guests and message, with the phase reached, the run it finishes, the build running,
    the good builds and the run id (never rebooted: the finish entry point does not reboot)."""
    end = _mapping(end)
    record = finish_record(end)
    return dict(decision='finish_reboot', outcome=record['outcome'], phase=end.get('phase'), rebooted=False,
                resumed_run_id=end.get('resumed_run_id'), build_id_after=end.get('build_id_after'),
                fixed_build_ids=list(end.get('good_build_ids') or []), guests=record['guests'],
                stranded=record['stranded'], run_id=end.get('run_id'), msg=record['msg'])


def livepatch_record(end):
    """The live patch role's outcome and the parts of its result that come from the transaction, and
    (``result``) the whole result the role sets as the fact ``livepatch_result``.

    A host the plan gives no payload keeps the outcome preflight gave it and the plan's reason; a
    host that could not be reached while staging or applying is ``unreachable``; otherwise the
    outcome is the transaction's (or the failed task's), ``failed`` when it has none. ``end`` may
    also carry ``decision``, ``payload`` (the payload's name) and ``run_id`` for ``result``."""
    end = _mapping(end)
    if not end.get('go'):
        record = dict(outcome=end.get('outcome'), msg=end.get('reason') or '', failed_checks=[], resumed=False,
                      uploaded=False, held_by_run=None)
    else:
        final = _mapping(end.get('failure')) or _mapping(end.get('apply'))
        unreachable = _mapping(end.get('stage')).get('unreachable') or _mapping(end.get('apply')).get('unreachable')
        record = dict(outcome=UNREACHABLE if unreachable else final.get('outcome') or FAILED,
                      msg=final.get('msg') or '', failed_checks=list(final.get('failed_checks') or []),
                      resumed=bool(final.get('resumed')), uploaded=bool(final.get('uploaded')),
                      held_by_run=final.get('held_by_run'))
    # outcome held_by_other_run: held_by_run is the run whose transaction held the host's lock (not a failure).
    record['result'] = dict(decision=end.get('decision'), payload=end.get('payload'), msg=record['msg'],
                            failed_checks=record['failed_checks'], resumed=record['resumed'],
                            uploaded=record['uploaded'], run_id=end.get('run_id'), held_by_run=record['held_by_run'])
    return record


# The live patch role's outcome of a host the plan sends no payload to, by the plan's decision (any other
# decision is its own outcome).
LIVEPATCH_DECISION_OUTCOMES = dict(reboot='pending_reboot', already_patched='already_patched',
                                   not_affected='not_affected', not_xen='not_xen', unreachable='unreachable',
                                   undecided='undecided')
IN_PROGRESS = 'in_progress'


class LivepatchInputError(ValueError):
    """The role's inputs cannot be used: the message names the problem and the fix."""


def _payload_names(payloads):
    return ', '.join(str(_mapping(payload).get('name') or '') for payload in payloads)


def livepatch_payload_problem(decision, host):
    """Why the plan's payloads for a host it gives a payload cannot be applied (None when they can): the
    role applies exactly one payload per host per run, with a name, a controller path and a sha256."""
    payloads = _mapping(decision).get('payloads') or []
    if not isinstance(payloads, list):
        payloads = [payloads]
    payload = _mapping(payloads[0]) if payloads else {}
    if (len(payloads) == 1 and payload.get('name') and payload.get('path')
            and len(str(payload.get('sha256') or '')) == 64):
        return None
    return ('%s: the plan gives %d payload(s) (%s). This role applies exactly one payload per host per run, with a '
            'name, a controller path and a sha256: run the rollout once per advisory, or fix the advisory manifest.'
            % (host, len(payloads), _payload_names(payloads)))


def livepatch_start(decision, run_id, host, to_json):
    """The live patch role's preflight for one host: checks its inputs and decides whether it gets a payload.

    Raises LivepatchInputError without a run id or without a decision (a mapping with a ``decision`` key).
    Returns ``{'go', 'outcome', 'result'}``: ``go`` the host gets the transaction (outcome ``in_progress``);
    a host the plan gives no payload gets its final outcome and result here (pending_reboot, not_affected,
    ...; message: the plan's reason), and so does a host whose plan names payloads the role cannot apply
    (``failed``, message: livepatch_payload_problem). ``to_json`` renders the inputs in the message."""
    if not run_id or not isinstance(decision, dict) or 'decision' not in decision:
        raise LivepatchInputError(
            'noreboot.xen.livepatch needs livepatch_run_id (a non-empty run id) and livepatch_decision (this '
            'host\'s entry of the fleet_plan decisions, with a "decision" key); got run id %s and decision %s.'
            % (to_json(run_id), to_json(decision)))
    payloads = decision.get('payloads') or []
    first = _mapping(payloads[0]) if isinstance(payloads, list) and payloads else {}
    end = dict(decision=decision['decision'], payload=first.get('name'), run_id=run_id,
               reason=decision.get('reason') or '')
    go = decision['decision'] == 'livepatch'
    problem = livepatch_payload_problem(decision, host) if go else None
    if problem:
        end.update(go=True, outcome=IN_PROGRESS, failure=dict(failed=True, msg=problem))
    else:
        end.update(go=False, outcome=IN_PROGRESS if go else LIVEPATCH_DECISION_OUTCOMES.get(
            decision['decision'], decision['decision']))
    record = livepatch_record(end)
    return dict(go=go and not problem, outcome=record['outcome'], result=record['result'])
