# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""UTC times as advisory manifests and the plan write them (ISO 8601, ``Z``): pure functions.

Used by manifest validation (``apply_until``, ``livepatch_end_of_life[].from``), by the plan's
expiry questions (advisory_match) and by livepatch_rollout, which checks ``apply_until`` again
at apply time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

_DATE_RE = re.compile(r'^(\d{4})-(\d{2})-(\d{2})$')
_TIME_RE = re.compile(r'^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6})\d*)?)?'
                      r'\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$')
UTC = datetime.timezone.utc


def parse_utc_timestamp(value):
    """An ISO 8601 time or date as an aware datetime in UTC; ValueError otherwise.

    ``value`` is a string or what YAML makes of an unquoted one (datetime.date, datetime.datetime).
    A date alone is 00:00:00 UTC of that day. A time must say its zone (``Z`` or an offset such
    as ``+01:00``, converted to UTC): a time without one is refused rather than guessed.
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError('%s has no time zone' % value.isoformat())
        return value.astimezone(UTC)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError('%r is not a time (expected an ISO 8601 string)' % (value,))
    text = value.strip()
    try:
        match = _DATE_RE.match(text)
        if match:
            return datetime.datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
        match = _TIME_RE.match(text)
        if not match:
            raise ValueError('%r is not an ISO 8601 time or date' % (value,))
        year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
        if not zulu and not sign:
            raise ValueError('%r has no time zone' % (value,))
        offset = datetime.timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        zone = datetime.timezone(-offset if sign == '-' else offset)
        parsed = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                                   int((fraction or '0').ljust(6, '0')), tzinfo=zone)
    except ValueError as exc:
        if 'ISO 8601' in str(exc) or 'time zone' in str(exc):
            raise
        raise ValueError('%r is not a valid time: %s' % (value, exc))
    return parsed.astimezone(UTC)


def format_utc_timestamp(moment):
    """``2027-01-31T12:00:00Z`` (microseconds only when there are some) for an aware datetime."""
    moment = moment.astimezone(UTC)
    text = moment.strftime('%Y-%m-%dT%H:%M:%S')
    if moment.microsecond:
        text += '.%06d' % moment.microsecond
    return text + 'Z'
