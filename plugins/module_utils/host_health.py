# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health of a Xen host before and after a live patch (pure functions, no AnsibleModule).

A *baseline* is taken before the payload is applied; *checks* compare the host after the
apply (and the optional soak) with it. Every check is a dict ``{'name', 'ok', 'detail'}``;
``failed_checks`` returns the failing ones, so a result names exactly what went wrong.

Checks (names are part of the module's interface):

* ``hypervisor_answers``: ``xl info`` ran, printed its table and still reports the baseline's
  hypervisor build-id;
* ``guests_running``: every guest that was present before is still present with the same
  domain id and is not shut down, crashed or dying (a new domain id means the guest crashed
  and was restarted);
* ``dmesg_clean``: ``xl dmesg`` holds no new error line of the hypervisor (``(XEN) ...``)
  since the baseline (live patch failures, build-id or expectation mismatches, crashes,
  ``Timed out on semaphore``); guests' console lines (``(dN) ...``) neither fail it nor
  mark where the baseline ends;
* ``payload_applied``: the payload is listed as APPLIED, without an error;
* ``expected_effect``: every ``xl info`` key the advisory declares has the declared value
  (only when the advisory declares one).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.noreboot.xen.plugins.module_utils.xl_output_parsers import (
    XlOutputError,
    find_error_lines,
    hypervisor_lines,
    parse_xl_dmesg,
    parse_xl_info,
    parse_xl_list,
)
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_list_parser import (
    LivepatchListError,
    parse_livepatch_list,
)

CHECK_NAMES = ('hypervisor_answers', 'guests_running', 'dmesg_clean', 'payload_applied', 'expected_effect')

# ``xl list`` state column: six positions r b p s c d (running, blocked, paused, shutdown,
# crashed, dying). A guest is "still running" unless one of the last three is set.
_BAD_STATE_FLAGS = {3: 'shutdown', 4: 'crashed', 5: 'dying'}

# How many of the baseline's last dmesg lines are used to find where it ends in a later read.
_ANCHOR_LINES = 8


class HealthError(ValueError):
    """The baseline could not be taken (the host is not healthy enough to touch)."""


def _check(name, ok, detail):
    return dict(name=name, ok=bool(ok), detail=detail)


def guest_states(domains):
    """Map guest name to ``{'id', 'state'}`` for every domain but Domain-0."""
    return dict((d['name'], dict(id=d['id'], state=d['state'])) for d in domains if d['id'] != 0)


def bad_state(state):
    """Return the name of the first bad flag in an ``xl list`` state (``----c-`` -> crashed), or None."""
    for position, label in sorted(_BAD_STATE_FLAGS.items()):
        if len(state) > position and state[position] != '-':
            return label
    return None


def take_baseline(xl_info_text, xl_list_text, xl_dmesg_text, livepatch_list_text):
    """Build the baseline from the four commands' stdout.

    Returns ``{'build_id', 'xen_version', 'guests': {name: {id, state}}, 'dmesg_lines': int,
    'dmesg_tail': [str], 'dmesg_seen': set, 'payloads': [...]}``. Guests already crashed or shutting down are
    kept but flagged by ``guests_running`` only when their id changes. ``dmesg_tail`` and
    ``dmesg_seen`` hold the hypervisor's lines only: a guest can print any text, so it could
    repeat its own last lines after a hypervisor error and move the anchor past it.
    Raises HealthError when an output cannot be read.
    """
    try:
        info = parse_xl_info(xl_info_text)
        domains = parse_xl_list(xl_list_text)
        dmesg = parse_xl_dmesg(xl_dmesg_text)
    except XlOutputError as exc:
        raise HealthError('cannot take the health baseline: %s' % exc)
    try:
        payloads = parse_livepatch_list(livepatch_list_text)
    except LivepatchListError as exc:
        raise HealthError('cannot take the health baseline: %s' % exc.reason)
    lines = [entry['line'] for entry in hypervisor_lines(dmesg)]
    return dict(
        build_id=(info.get('build_id') or '').lower() or None,
        xen_version=info.get('xen_version'),
        guests=guest_states(domains),
        dmesg_lines=len(dmesg),
        dmesg_tail=lines[-_ANCHOR_LINES:],
        dmesg_seen=set(lines),
        payloads=payloads,
    )


def public_baseline(baseline):
    """The baseline without its in-memory parts, fit to return from a module."""
    return dict((k, v) for k, v in baseline.items() if k != 'dmesg_seen')


def new_dmesg_lines(baseline, current_lines):
    """Return the lines of ``current_lines`` printed after the baseline was taken.

    The hypervisor's console ring is small and wraps, so the line count alone is not enough:
    the baseline's last lines (``dmesg_tail``) are searched for in the current output and
    everything after their last occurrence is new. When they are gone (the ring wrapped past
    them), every current line the baseline did not hold (``dmesg_seen``, kept only in memory)
    is new: a health check then errs on the side of looking at too much.
    """
    tail = list(baseline.get('dmesg_tail') or [])
    current_lines = list(current_lines)
    if not tail:
        return current_lines
    width = len(tail)
    for start in range(len(current_lines) - width, -1, -1):
        if current_lines[start:start + width] == tail:
            return current_lines[start + width:]
    seen = baseline.get('dmesg_seen') or set()
    return [line for line in current_lines if line not in seen]


def check_hypervisor(baseline, xl_info_rc, xl_info_text):
    """``hypervisor_answers`` and the parsed ``xl info`` (None when it could not be read)."""
    if xl_info_rc != 0:
        return _check('hypervisor_answers', False, 'xl info exited with %s' % xl_info_rc), None
    try:
        info = parse_xl_info(xl_info_text)
    except XlOutputError as exc:
        return _check('hypervisor_answers', False, 'xl info output unreadable: %s' % exc), None
    build_id = (info.get('build_id') or '').lower() or None
    if baseline.get('build_id') and build_id != baseline['build_id']:
        return _check('hypervisor_answers', False, 'xl info reports build-id %s, the baseline had %s'
                      % (build_id, baseline['build_id'])), info
    return _check('hypervisor_answers', True, 'xl info answers (build-id %s)' % build_id), info


def check_guests(baseline, xl_list_rc, xl_list_text):
    """``guests_running``: every baseline guest is present, same domain id, not shutdown/crashed/dying."""
    if xl_list_rc != 0:
        return _check('guests_running', False, 'xl list exited with %s' % xl_list_rc)
    try:
        now = guest_states(parse_xl_list(xl_list_text))
    except XlOutputError as exc:
        return _check('guests_running', False, 'xl list output unreadable: %s' % exc)
    problems = []
    for name in sorted(baseline.get('guests') or {}):
        before = baseline['guests'][name]
        after = now.get(name)
        if after is None:
            problems.append('%s (domid %d) is gone' % (name, before['id']))
            continue
        if after['id'] != before['id']:
            problems.append('%s changed domain id %d -> %d (it was restarted)' % (name, before['id'], after['id']))
            continue
        flag = bad_state(after['state'])
        if flag and flag != bad_state(before['state']):
            problems.append('%s (domid %d) is %s (state %s)' % (name, after['id'], flag, after['state']))
    if problems:
        return _check('guests_running', False, '; '.join(problems))
    return _check('guests_running', True, '%d guest(s) still running with the same domain ids'
                  % len(baseline.get('guests') or {}))


def _retry_noise(name, retried):
    """Patterns of the lines a retried operation on ``name`` leaves behind, each allowed ``retried`` times."""
    if not name or not retried:
        return []
    quoted = re.escape(name)
    return [
        [re.compile(r'livepatch: %s: Timed out on semaphore' % quoted), retried],
        [re.compile(r'livepatch: %s finished (APPLY|REPLACE) with rc=-(11|16)\b' % quoted), retried],
    ]


def check_dmesg(baseline, xl_dmesg_rc, xl_dmesg_text, name=None, retried=0):
    """``dmesg_clean``: no new error line in ``xl dmesg`` since the baseline.

    When the apply of ``name`` needed retries (``retried`` extra attempts after exit status 2),
    the lines each failed attempt leaves (``livepatch: NAME: Timed out on semaphore ...`` and
    ``livepatch: NAME finished APPLY with rc=-16``) are expected, up to ``retried`` of each:
    the operation was retried and succeeded. Any other error line, or more of those, fails.
    """
    if xl_dmesg_rc != 0:
        return _check('dmesg_clean', False, 'xl dmesg exited with %s' % xl_dmesg_rc)
    lines = hypervisor_lines(parse_xl_dmesg(xl_dmesg_text))
    fresh = new_dmesg_lines(baseline, [entry['line'] for entry in lines])
    noise = _retry_noise(name, retried)
    hits = []
    excused = 0
    for hit in find_error_lines(parse_xl_dmesg('\n'.join(fresh))):
        for allowance in noise:
            if allowance[1] > 0 and allowance[0].search(hit['line']):
                allowance[1] -= 1
                excused += 1
                break
        else:
            hits.append(hit)
    if hits:
        return _check('dmesg_clean', False, 'new error line(s) in xl dmesg: %s'
                      % '; '.join('[%s] %s' % (hit['category'], hit['line']) for hit in hits[:5]))
    detail = '%d new hypervisor line(s) in xl dmesg, none an error' % len(fresh)
    if excused:
        detail += ' (%d line(s) from the %d retried attempt(s) of the apply excused)' % (excused, retried)
    return _check('dmesg_clean', True, detail)


def check_payload(name, livepatch_list_rc, livepatch_list_text):
    """``payload_applied``: ``name`` is APPLIED and its row carries no error."""
    try:
        payloads = parse_livepatch_list(livepatch_list_text, rc=livepatch_list_rc)
    except LivepatchListError as exc:
        return _check('payload_applied', False, 'xen-livepatch list failed: %s' % exc.reason)
    for row in payloads:
        if row['name'] == name:
            if row['state'] != 'APPLIED':
                return _check('payload_applied', False, '%s is %s, not APPLIED' % (name, row['state']))
            if row.get('error'):
                return _check('payload_applied', False, '%s is APPLIED but carries error %d (%s)'
                              % (name, row['error']['errno'], row['error']['text']))
            return _check('payload_applied', True, '%s is APPLIED' % name)
    return _check('payload_applied', False, '%s is not listed by xen-livepatch list' % name)


def check_expected_effect(expect, info):
    """``expected_effect``: each ``xl info`` key of ``expect`` has its value; None when nothing is declared."""
    if not expect:
        return None
    if info is None:
        return _check('expected_effect', False, 'xl info could not be read, so the effect cannot be verified')
    wrong = []
    for key in sorted(expect):
        want = '' if expect[key] is None else str(expect[key])
        got = info.get(key)
        if got != want:
            wrong.append('xl info %s is %r, the advisory expects %r' % (key, got, want))
    if wrong:
        return _check('expected_effect', False, '; '.join(wrong))
    return _check('expected_effect', True, 'xl info shows the expected %s'
                  % ', '.join('%s=%r' % (k, expect[k]) for k in sorted(expect)))


def run_checks(baseline, name, expect, outputs, retried=0):
    """Run every check. ``outputs`` maps ``xl_info``, ``xl_list``, ``xl_dmesg``, ``livepatch_list``
    to ``(rc, stdout)``; ``retried`` is how many extra attempts the apply took. Returns the list
    of checks (``expected_effect`` only when declared)."""
    hyp, info = check_hypervisor(baseline, *outputs['xl_info'])
    checks = [
        hyp,
        check_guests(baseline, *outputs['xl_list']),
        check_dmesg(baseline, outputs['xl_dmesg'][0], outputs['xl_dmesg'][1], name=name, retried=retried),
        check_payload(name, *outputs['livepatch_list']),
    ]
    effect = check_expected_effect(expect, info)
    if effect is not None:
        checks.append(effect)
    return checks


def run_checks_without_baseline(name, expect, outputs):
    """The checks that need no baseline, for a payload an interrupted run applied (its baseline is lost):
    ``hypervisor_answers``, ``payload_applied`` and ``expected_effect`` (when declared)."""
    hyp, info = check_hypervisor({}, *outputs['xl_info'])
    checks = [hyp, check_payload(name, *outputs['livepatch_list'])]
    effect = check_expected_effect(expect, info)
    if effect is not None:
        checks.append(effect)
    return checks


def failed_checks(checks):
    """The checks that failed, as given."""
    return [c for c in checks if not c['ok']]
