# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Questions the plan asks of a validated advisory (pure functions, no file access).

Version numbers and ranges (``>=4.17.0,<4.17.8``), CPU family/model sets, whether a host's
hypervisor and hardware are affected, which payload fits a build and until when it may be
applied. The advisories are the normalized dicts advisory_manifest.validate_manifest returns.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.noreboot.xen.plugins.module_utils.utc_timestamp import (
    format_utc_timestamp,
    parse_utc_timestamp,
)

_VERSION_RE = re.compile(r'^(\d+)\.(\d+)(?:\.(\d+))?$')
_CLAUSE_RE = re.compile(r'^(>=|<=|==|!=|>|<|=)?\s*(\S+)$')
# hw_caps flags of a hardware predicate: [!]WORD:BIT
CAP_RE = re.compile(r'^(!?)(\d+):(\d+)$')
_INT_RANGE_RE = re.compile(r'^\s*(0x[0-9a-fA-F]+|\d+)\s*(?:-\s*(0x[0-9a-fA-F]+|\d+)\s*)?$')


# ---------------------------------------------------------------------------------------------
# Versions and ranges

def parse_version(text):
    """Return ``(major, minor, micro)`` for ``4.17`` / ``4.17.5``; ValueError otherwise.

    Only the numeric dotted prefix Xen reports in ``xl info`` (xen_major.xen_minor plus the
    number at the start of xen_extra) is understood; missing parts count as 0.
    """
    match = _VERSION_RE.match(str(text).strip())
    if not match:
        raise ValueError('%r is not a version like 4.17 or 4.17.5' % (text,))
    return tuple(int(part or 0) for part in match.groups())


def parse_version_range(text):
    """Parse ``>=4.17.0,<4.17.8`` into a list of ``(operator, version_tuple)`` clauses (AND)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError('a version range must be a non-empty string such as ">=4.17.0,<4.17.8"')
    clauses = []
    for raw in text.split(','):
        raw = raw.strip()
        match = _CLAUSE_RE.match(raw)
        if not match:
            raise ValueError('clause %r is not OPERATOR VERSION (operators: >= > <= < == !=)' % raw)
        operator = match.group(1) or '=='
        if operator == '=':
            operator = '=='
        clauses.append((operator, parse_version(match.group(2))))
    return clauses


_OPS = {
    '>=': lambda a, b: a >= b,
    '>': lambda a, b: a > b,
    '<=': lambda a, b: a <= b,
    '<': lambda a, b: a < b,
    '==': lambda a, b: a == b,
    '!=': lambda a, b: a != b,
}


def version_in_range(version, clauses):
    """True when the version tuple satisfies every clause of a parsed range."""
    return all(_OPS[op](version, bound) for op, bound in clauses)


def parse_int_set(value):
    """``85`` / ``[85, "0x6a-0x6c"]`` -> list of inclusive ``(low, high)`` pairs."""
    items = value if isinstance(value, list) else [value]
    result = []
    for item in items:
        if isinstance(item, bool):
            raise ValueError('%r is not a number' % (item,))
        if isinstance(item, int):
            result.append((item, item))
            continue
        match = _INT_RANGE_RE.match(str(item))
        if not match:
            raise ValueError('%r is neither a number nor a range like "0x55-0x6a"' % (item,))
        low = int(match.group(1), 0)
        high = int(match.group(2), 0) if match.group(2) else low
        if high < low:
            raise ValueError('range %r goes backwards' % (item,))
        result.append((low, high))
    return result


# ---------------------------------------------------------------------------------------------
# Questions the plan asks

def hw_cap_bit_set(hw_caps, word, bit):
    """True/False for bit ``bit`` of word ``word`` of an ``xl info hw_caps`` string; None if absent."""
    if not isinstance(hw_caps, str):
        return None
    words = [w for w in re.split(r'[\s:]+', hw_caps.strip()) if w]
    if word >= len(words):
        return None
    try:
        value = int(words[word], 16)
    except ValueError:
        return None
    return bool(value >> bit & 1)


def match_hardware(predicates, hypervisor, hardware):
    """Decide whether a host's hardware is affected.

    Returns ``(True|False, reason)``, or ``(None, reason)`` when the facts lack what a
    predicate needs. No predicates means every host is affected.
    """
    if not predicates:
        return True, 'advisory covers all hardware'
    hardware = hardware if isinstance(hardware, dict) else {}
    hypervisor = hypervisor if isinstance(hypervisor, dict) else {}
    unknown = []
    for index, predicate in enumerate(predicates):
        result, detail = _match_predicate(predicate, hypervisor, hardware)
        if result:
            return True, 'hardware matches affected.hardware[%d]' % index
        if result is None:
            unknown.append(detail)
    if unknown:
        return None, 'hardware facts incomplete: ' + '; '.join(sorted(set(unknown)))
    return False, 'hardware %s matches no affected.hardware predicate' % (
        hardware.get('class') or _describe_cpu(hardware))


def _describe_cpu(hardware):
    return '%s-%s-%s' % (hardware.get('vendor', '?'), hardware.get('family', '?'), hardware.get('model', '?'))


def _match_predicate(predicate, hypervisor, hardware):
    if 'vendor' in predicate:
        vendor = hardware.get('vendor')
        if not isinstance(vendor, str):
            return None, 'no hardware.vendor'
        if vendor.strip().lower() not in predicate['vendor']:
            return False, None
    for key, fact in (('family', 'family'), ('models', 'model')):
        if key in predicate:
            value = hardware.get(fact)
            if isinstance(value, bool) or not isinstance(value, int):
                return None, 'no hardware.%s' % fact
            if not any(low <= value <= high for low, high in predicate[key]):
                return False, None
    if 'hw_caps' in predicate:
        for flag in predicate['hw_caps']:
            match = CAP_RE.match(flag)
            state = hw_cap_bit_set(hypervisor.get('hw_caps'), int(match.group(2)), int(match.group(3)))
            if state is None:
                return None, 'no hypervisor.hw_caps word %s' % match.group(2)
            if state == bool(match.group(1)):
                return False, None
    if 'virt_caps' in predicate:
        caps = hypervisor.get('virt_caps')
        if isinstance(caps, str):
            caps = caps.split()
        if not isinstance(caps, list):
            return None, 'no hypervisor.virt_caps'
        for flag in predicate['virt_caps']:
            negate = flag.startswith('!')
            if (flag.lstrip('!') in caps) == negate:
                return False, None
    return True, None


def match_hypervisor(advisory, hypervisor):
    """Is this hypervisor build affected? ``(True|False|None, reason)``; None = cannot tell."""
    hypervisor = hypervisor if isinstance(hypervisor, dict) else {}
    build_id = hypervisor.get('build_id')
    build_id = build_id.strip().lower() if isinstance(build_id, str) and build_id.strip() else None
    if build_id is not None and build_id in advisory['fallback']['fixed_build_ids']:
        return False, 'build-id %s is a fixed build' % build_id
    if build_id is not None and build_id in advisory['build_ids']:
        return True, 'build-id %s is listed as affected' % build_id
    if not advisory['version_ranges']:
        if build_id is None:
            return None, 'hypervisor build-id unknown and the advisory lists affected build-ids only'
        return False, 'build-id %s is not listed as affected' % build_id
    version = host_version(hypervisor)
    if version is None:
        return None, ('hypervisor version unknown or altered: %r (version_source %s); listing the build-id %s '
                      'under affected.hypervisors.build_ids decides it'
                      % (hypervisor.get('version'), hypervisor.get('version_source', '?'), build_id or '(unknown)'))
    text = '.'.join(str(v) for v in version)
    for raw, clauses in zip(advisory['versions'], advisory['version_ranges']):
        if version_in_range(version, clauses):
            return True, 'version %s is in %s' % (text, raw)
    return False, 'version %s is outside %s' % (text, ' or '.join(advisory['versions']))


_HOST_VERSION_RE = re.compile(r'^\s*(\d+)\.(\d+)(?:\.(\d+))?(?=$|[-+~_\s])')


def host_version(hypervisor):
    """``(major, minor, micro)`` from the facts, or None when it cannot be trusted.

    ``version`` is ``major.minor`` plus ``xen_extra`` (``4.17.5``, ``4.17.5-pre``). A payload
    may replace what ``xl info`` reports as xen_extra (``4.17Hello World``), so a version that
    is not a plain dotted number followed by nothing or by ``-``, ``+``, ``~``, ``_`` counts
    as unknown, and so does one whose major.minor disagree with ``major``/``minor``.
    """
    version = hypervisor.get('version')
    if not isinstance(version, str):
        return None
    match = _HOST_VERSION_RE.match(version)
    if not match:
        return None
    parsed = tuple(int(part or 0) for part in match.groups())
    for index, key in ((0, 'major'), (1, 'minor')):
        value = hypervisor.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value != parsed[index]:
            return None
    return parsed


def expiry_for(advisory, build_id, livepatch, now):
    """Why this advisory's payload is not to be applied on this build at ``now``, or None.

    ``now`` is an aware datetime (the caller's clock; nothing here reads one). Returns
    ``dict(kind, at, reason)``: ``kind`` is ``end_of_life`` (livepatch_end_of_life names the
    build with a ``from`` at or before ``now``) or ``apply_until`` (the payload's apply_until is
    at or before ``now``: "until" excludes the instant itself).
    """
    end_of_life = (advisory.get('livepatch_end_of_life') or {}).get(build_id)
    apply_until = livepatch.get('apply_until') if livepatch else None
    if (end_of_life or apply_until) and (not isinstance(now, datetime.datetime) or now.utcoffset() is None):
        raise ValueError('the current time is needed as an aware datetime (UTC) to check expiry, got %r' % (now,))
    if end_of_life and parse_utc_timestamp(end_of_life) <= now:
        return dict(kind='end_of_life', at=end_of_life, reason='build %s is no longer live patched since %s '
                    '(livepatch_end_of_life of %s)' % (build_id, end_of_life, advisory['manifest']))
    if apply_until and parse_utc_timestamp(apply_until) <= now:
        return dict(kind='apply_until', at=apply_until, reason='payload %s expired at %s (apply_until)' % (
            livepatch['name'], apply_until))
    return None


def apply_deadline(advisory, build_id, livepatch):
    """Until when this advisory's payload may be applied on this build (the earlier of the payload's
    ``apply_until`` and the build's ``livepatch_end_of_life`` ``from``), as a UTC time string, or None.

    The plan hands it to noreboot.xen.livepatch_rollout, which checks it again at apply time: a plan
    made before the deadline and applied after it must not apply (see expiry_for for the plan's side).
    """
    times = [t for t in ((advisory.get('livepatch_end_of_life') or {}).get(build_id),
                         livepatch.get('apply_until') if livepatch else None) if t]
    if not times:
        return None
    return format_utc_timestamp(min(parse_utc_timestamp(t) for t in times))


def livepatch_for(advisory, build_id):
    """The advisory's payload for this hypervisor build-id, or None."""
    for entry in advisory['livepatches']:
        if entry['xen_build_id'] == build_id:
            return entry
    return None
