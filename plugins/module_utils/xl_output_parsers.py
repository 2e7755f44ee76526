# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse the output of ``xl info``, ``xl list`` and ``xl dmesg`` (pure functions, no AnsibleModule).

Every function takes text and returns data; malformed input raises ``XlOutputError``
(a ``ValueError``) with a message naming the line that could not be read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


class XlOutputError(ValueError):
    """``xl`` printed something these parsers cannot read."""


# ---------------------------------------------------------------------------------------
# xl info
# ---------------------------------------------------------------------------------------

# ``xl info`` prints ``<key padded with spaces to 23 columns>: <value>``. The value may hold
# colons (``xen_changeset : Tue Dec 12 10:08:40 2023 +0100 git:38eebc6e5c-dirty``) or be
# empty, and may end in spaces (``xen_caps``). ``xl info -n`` adds free-form blocks
# (``cpu_topology``, ``numa_info``) whose lines (``cpu:    core    socket     node``) carry
# no padding before their colon: they are continuation lines of the key above them. One key
# of ``xl info -n`` has a blank in it (``device topology``).
_INFO_KEY_RE = re.compile(r'^(?P<key>[A-Za-z_][A-Za-z0-9_ ]*?)[ \t]+:(?: (?P<value>.*))?$')


def parse_xl_info(text):
    """Return ``xl info`` as a dict of key -> value string.

    Values keep inner colons, lose trailing blanks; an empty value is ``''``. Continuation
    lines (from ``xl info -n``) are appended to the value of the key above them, one per
    line. Lines before the first key are ignored (some builds print warnings there).
    """
    info = {}
    key = None
    for line in (text or '').splitlines():
        line = line.rstrip()
        match = _INFO_KEY_RE.match(line)
        if match:
            key = match.group('key')
            info[key] = (match.group('value') or '').strip()
        elif key is not None and line.strip():
            info[key] = (info[key] + '\n' + line) if info[key] else line
    if not info:
        raise XlOutputError('xl info printed no "key : value" line')
    return info


def info_int(info, key):
    """Return ``info[key]`` as int, or None when missing or not a whole number."""
    value = info.get(key)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def info_words(info, key):
    """Return ``info[key]`` split on blanks (``virt_caps``, ``xen_caps``); [] when missing."""
    return (info.get(key) or '').split()


def info_text(info, key):
    """Return ``info[key]``, with an empty or missing value as None."""
    value = info.get(key)
    return value if value else None


# ---------------------------------------------------------------------------------------
# Xen command line
# ---------------------------------------------------------------------------------------

def parse_xen_commandline(raw):
    """Split a Xen command line into ``{'raw': str, 'options': {name: value or True}}``.

    Options are separated by blanks. ``name=value`` keeps everything after the first ``=``
    (``dom0_mem=1024M,max:1024M``, ``com1=115200,8n1``); a bare word is a flag and maps
    to True. When an option is given twice the last one wins, as in Xen.
    """
    raw = (raw or '').strip()
    options = {}
    for word in raw.split():
        if '=' in word:
            name, value = word.split('=', 1)
            options[name] = value
        else:
            options[word] = True
    return dict(raw=raw, options=options)


# ---------------------------------------------------------------------------------------
# xl list
# ---------------------------------------------------------------------------------------

# Read from the right: the last five columns have fixed shapes, the name is the rest (so a
# name with blanks in it survives). The state has six positions, each a letter or '-'.
_LIST_ROW_RE = re.compile(
    r'^(?P<name>\S.*?)\s+(?P<id>\d+)\s+(?P<mem>\d+)\s+(?P<vcpus>\d+)\s+'
    r'(?P<state>[a-z-]{6})\s+(?P<time>\d+(?:\.\d+)?)\s*$')


def parse_xl_list(text):
    """Return the domains of ``xl list`` as dicts: name, id, memory_mib, vcpus, state, time_s."""
    domains = []
    lines = [line for line in (text or '').splitlines() if line.strip()]
    if not lines:
        raise XlOutputError('xl list printed nothing (not even its header)')
    if not lines[0].startswith('Name'):
        raise XlOutputError('unexpected xl list header: %r' % lines[0])
    for line in lines[1:]:
        match = _LIST_ROW_RE.match(line)
        if not match:
            raise XlOutputError('cannot read this xl list row: %r' % line)
        domains.append(dict(
            name=match.group('name'),
            id=int(match.group('id')),
            memory_mib=int(match.group('mem')),
            vcpus=int(match.group('vcpus')),
            state=match.group('state'),
            time_s=float(match.group('time')),
        ))
    return domains


# ---------------------------------------------------------------------------------------
# xl dmesg
# ---------------------------------------------------------------------------------------

# ``(XEN) message``, ``(XEN) [   12.345678] message`` or ``(XEN) [2024-01-01 10:00:00] message``
# (console_timestamps), and guest lines such as ``(d1) message``.
_DMESG_RE = re.compile(r'^\((?P<source>[^)]+)\) ?(?:\[(?P<timestamp>[^\]]*)\] ?)?(?P<message>.*)$')

_BOOT_VERSION_RE = re.compile(r'^Xen version (?P<version>\S+) \((?P<detail>.*)$')
_BOOT_BUILD_ID_RE = re.compile(r'^build-id: (?P<build_id>[0-9a-fA-F]+)\s*$')
_BOOT_CMDLINE_RE = re.compile(r'^Command line: ?(?P<cmdline>.*)$')


def parse_xl_dmesg(text):
    """Return the lines of ``xl dmesg`` as dicts: source, timestamp, message, line.

    ``source`` is ``XEN`` for the hypervisor, ``d<N>`` for a guest, None for a line
    without a prefix (continuations); ``timestamp`` is None unless console_timestamps is on.
    """
    lines = []
    for line in (text or '').splitlines():
        line = line.rstrip('\r\n')
        if not line.strip():
            continue
        match = _DMESG_RE.match(line)
        if match:
            lines.append(dict(source=match.group('source'), timestamp=match.group('timestamp'),
                              message=match.group('message').rstrip(), line=line))
        else:
            lines.append(dict(source=None, timestamp=None, message=line.rstrip(), line=line))
    return lines


def boot_banner(lines):
    """Return what the hypervisor printed at boot, when the ring buffer still holds it.

    ``{'version': '4.17.5', 'version_detail': '(Debian ...) ...', 'build_id': ...,
    'commandline': ...}``, each None when its line is gone (the console ring is small and
    wraps on a busy host).
    """
    banner = dict(version=None, version_detail=None, build_id=None, commandline=None)
    for entry in lines:
        if entry['source'] != 'XEN':
            continue
        message = entry['message']
        if banner['version'] is None:
            match = _BOOT_VERSION_RE.match(message)
            if match:
                banner['version'] = match.group('version')
                banner['version_detail'] = '(' + match.group('detail')
                continue
        if banner['build_id'] is None:
            match = _BOOT_BUILD_ID_RE.match(message)
            if match:
                banner['build_id'] = match.group('build_id').lower()
                continue
        if banner['commandline'] is None:
            match = _BOOT_CMDLINE_RE.match(message)
            if match:
                banner['commandline'] = match.group('cmdline').strip()
    return banner


# What a health check looks for after a live patch operation. Order matters: the first
# category that matches names the line.
_ERROR_PATTERNS = (
    ('quiesce_timeout', re.compile(r'Timed out on semaphore', re.I)),
    ('crash', re.compile(r'\bPanic on CPU\b|\bFATAL (TRAP|PAGE FAULT)\b|Xen BUG at|'
                         r'Assertion .* failed|\*\*\*\* ?Panic|Xen call trace|Reboot in five seconds', re.I)),
    ('build_id', re.compile(r'build-id.*\b(fail|mismatch|not match)', re.I)),
    ('expectations', re.compile(r'expectation.*\b(fail|not met|mismatch)', re.I)),
    ('livepatch', re.compile(r'livepatch.*(\bfail|\berror\b|\binvalid\b|\bunable\b|\bcannot\b|'
                             r'\bwith rc=-\d+)', re.I)),
)


HYPERVISOR_SOURCE = 'XEN'


def hypervisor_lines(lines):
    """The entries of ``parse_xl_dmesg`` the hypervisor printed (``(XEN) ...``).

    Guests write to the same ring: an HVM guest through port 0xE9, a PV guest through
    console_io, each line prefixed ``(dN) `` by Xen, whatever the guest puts after it. A line
    without a prefix is dom0's console_to_ring output or the ring's cut first line. None of
    them is the hypervisor speaking, so none may decide a health check.
    """
    return [entry for entry in lines if entry['source'] == HYPERVISOR_SOURCE]


def find_error_lines(lines):
    """Return the hypervisor's dmesg lines a live patch health check must look at.

    ``lines`` is the output of ``parse_xl_dmesg``. Each hit is ``{'category': ..., 'line': ...}``
    with category one of quiesce_timeout, crash, build_id, expectations, livepatch. Normal
    progress lines (``Verifying enabled expectations``, ``finished APPLY with rc=0``) are
    not errors, and only ``(XEN)`` lines count (see ``hypervisor_lines``): a guest printing
    "livepatch ... failed" on its console cannot fail a check.
    """
    hits = []
    for entry in hypervisor_lines(lines):
        message = entry['message']
        for category, pattern in _ERROR_PATTERNS:
            if pattern.search(message):
                hits.append(dict(category=category, line=entry['line']))
                break
    return hits
