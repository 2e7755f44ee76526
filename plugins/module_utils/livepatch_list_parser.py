# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse the output of ``xen-livepatch list`` (pure functions, no AnsibleModule).

Shapes handled (tools/misc/xen-livepatch.c):

* the table with a metadata column (Xen 4.14 and later)::

     ID                                     | status     | metadata
    ----------------------------------------+------------+---------------
    xen_hello_world                         | APPLIED    | LIVEPATCH_RULEZ
    xen_bye_world                           | CHECKED (16, Device or resource busy)    |

* the same table without the metadata column (Xen before 4.14);
* ``Nothing to list``;
* ``Failed to get list sizes.`` / ``Error 38: Function not implemented`` (or the older
  ``Failed to list 0/0: 38(Function not implemented)!``): the hypervisor has no live patching;
* ``failed to get the handler`` (printed with exit status 0): the control interface is not
  reachable.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

STATES = ('CHECKED', 'APPLIED', 'unknown')

UNSUPPORTED_HYPERVISOR = 'hypervisor_without_livepatch'
NO_CONTROL_INTERFACE = 'no_control_interface'
LIST_FAILED = 'list_failed'
UNPARSED_OUTPUT = 'unparsed_output'

_ERROR_RE = re.compile(r'Error (-?\d+): (.*)')
_OLD_ERROR_RE = re.compile(r'Failed to list \d+/\d+: (-?\d+)\((.*)\)!?')
_STATE_RE = re.compile(r'^(?P<state>\S+)(?: \((?P<errno>-?\d+), (?P<text>[^)]*)\))?$')


class LivepatchListError(Exception):
    """``xen-livepatch list`` did not give a payload table.

    ``kind`` is one of UNSUPPORTED_HYPERVISOR, NO_CONTROL_INTERFACE, LIST_FAILED,
    UNPARSED_OUTPUT; ``errno`` and ``text`` carry the tool's error when it printed one.
    """

    def __init__(self, kind, reason, errno=None, text=None):
        super(LivepatchListError, self).__init__(reason)
        self.kind = kind
        self.reason = reason
        self.errno = errno
        self.text = text


def find_tool_error(text):
    """Return ``(errno, text)`` of the first ``Error N: TEXT`` line in ``text``, or None."""
    for line in (text or '').splitlines():
        match = _ERROR_RE.search(line)
        if match:
            return int(match.group(1)), match.group(2).strip()
        match = _OLD_ERROR_RE.search(line)
        if match:
            return int(match.group(1)), match.group(2).strip()
    return None


def mentions_no_handler(text):
    return 'failed to get the handler' in (text or '')


def _parse_row(line, with_metadata):
    if '|' not in line:
        raise LivepatchListError(UNPARSED_OUTPUT, 'unexpected line in xen-livepatch list output: %r' % line)
    name, rest = line.split('|', 1)
    if with_metadata and '|' in rest:
        status, metadata = rest.split('|', 1)
        metadata = metadata[1:] if metadata.startswith(' ') else metadata
    else:
        status, metadata = rest, None
    match = _STATE_RE.match(status.strip())
    if not match:
        raise LivepatchListError(UNPARSED_OUTPUT, 'cannot read the status of payload %r: %r' % (name.strip(), status))
    error = None
    if match.group('errno') is not None:
        error = dict(errno=int(match.group('errno')), text=match.group('text'))
    return dict(name=name.rstrip(), state=match.group('state'), error=error, metadata=metadata)


def parse_livepatch_list(stdout, stderr='', rc=0):
    """Return the payload table as a list of dicts: name, state, error, metadata.

    ``error`` is ``{'errno': int, 'text': str}`` when the row carries one, else None;
    ``metadata`` is None when the tool has no metadata column (Xen before 4.14).
    Raises LivepatchListError when the output is not a payload table.
    """
    combined = (stdout or '') + '\n' + (stderr or '')
    if mentions_no_handler(combined):
        raise LivepatchListError(
            NO_CONTROL_INTERFACE,
            'xen-livepatch could not open the hypervisor control interface (failed to get the handler): '
            'not a Xen dom0, privcmd not available, or not running as root')
    error = find_tool_error(combined)
    if error and error[0] == 38:
        raise LivepatchListError(
            UNSUPPORTED_HYPERVISOR,
            'the running hypervisor was built without live patching (Error 38: Function not implemented)',
            errno=error[0], text=error[1])
    if error or rc != 0:
        raise LivepatchListError(
            LIST_FAILED,
            'xen-livepatch list failed (rc=%s): %s' % (rc, (combined.strip() or 'no output')),
            errno=error[0] if error else None, text=error[1] if error else None)

    lines = [line for line in (stdout or '').splitlines() if line.strip()]
    if not lines:
        raise LivepatchListError(UNPARSED_OUTPUT, 'xen-livepatch list printed nothing')
    if lines[0].strip() == 'Nothing to list':
        return []
    header = lines[0]
    if not header.strip().startswith('ID') or 'status' not in header:
        raise LivepatchListError(UNPARSED_OUTPUT, 'unexpected xen-livepatch list header: %r' % header)
    with_metadata = 'metadata' in header
    rows = lines[1:]
    if rows and set(rows[0].strip()) <= set('-+'):
        rows = rows[1:]
    return [_parse_row(line, with_metadata) for line in rows]


def payload_index(payloads):
    """Map payload name to its row."""
    return dict((p['name'], p) for p in payloads)


def format_livepatch_table(payloads):
    """Render parsed rows as the tool does (used for diff output and reports)."""
    lines = [' ID                                     | status     | metadata',
             '----------------------------------------+------------+---------------']
    if not payloads:
        return 'Nothing to list\n'
    for p in payloads:
        state = p['state']
        if p.get('error'):
            state += ' (%d, %s)' % (p['error']['errno'], p['error']['text'])
        lines.append('%-40s| %s    | %s' % (p['name'], state, p.get('metadata') or ''))
    return '\n'.join(lines) + '\n'
