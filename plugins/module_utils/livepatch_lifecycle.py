# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring one Xen livepatch payload to a wanted state (pure: runners injected, no AnsibleModule).

States: ``checked`` (uploaded, not applied), ``applied``, ``absent`` (reverted if needed, then
unloaded). ``replace`` makes the payload the only applied one in one hypervisor operation
(``xen-livepatch replace NAME``).

Before anything reaches the hypervisor, on the host, in Python: the file's SHA-256 must equal
``checksum``; the file must be an ELF64 x86-64 relocatable object with the build-id notes Xen
requires; its ``.livepatch.xen_depends`` must equal the running hypervisor's ``build_id``
(``xl info``). ``changed`` comes from the parsed ``xen-livepatch list`` before and after, never
from the tool's wording. After a failure the host is left as found: a payload this run
uploaded and could not apply is unloaded again (``cleanup`` in the result says how that went).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_list_parser import (
    LivepatchListError,
    find_tool_error,
    format_livepatch_table,
    mentions_no_handler,
    parse_livepatch_list,
    payload_index,
)
from ansible_collections.noreboot.xen.plugins.module_utils.livepatch_payload_elf import (
    PayloadError,
    parse_payload_bytes,
    read_payload,
    sha256_bytes,
    sha256_file,
)
from ansible_collections.noreboot.xen.plugins.module_utils.xen_command_runner import LIVEPATCH_RC_RETRY

ACTION_FAILED = re.compile(r'^\S.*\.\.\. ?failed$', re.M)
from ansible_collections.noreboot.xen.plugins.module_utils.xl_output_parsers import (
    XlOutputError,
    info_text,
    parse_xl_info,
)

STATES = ('checked', 'applied', 'absent')
# XEN_LIVEPATCH_NAME_SIZE is 128 bytes including the terminating NUL.
NAME_MAX_BYTES = 127
EINVAL = 22
EEXIST = 17
EBUSY = 16
EAGAIN = 11
ENOENT = 2

_HEX_RE = re.compile(r'^[0-9a-f]+$')
_CHECKSUM_RE = re.compile(r'^(?:sha256:)?([0-9a-fA-F]{64})$')

TARGET_STATE = {'upload': 'CHECKED', 'apply': 'APPLIED', 'replace': 'APPLIED', 'revert': 'CHECKED', 'unload': None}


class LivepatchFailure(Exception):
    """The run failed; ``as_result()`` gives msg plus the failing command's cmd/rc/stdout/stderr."""

    def __init__(self, msg, command=None, **fields):
        super(LivepatchFailure, self).__init__(msg)
        self.msg = msg
        self.command = command
        self.fields = fields

    def as_result(self):
        result = dict(self.fields)
        result['msg'] = self.msg
        if self.command is not None:
            result.update(cmd=list(self.command.argv), rc=self.command.rc, stdout=self.command.stdout,
                          stderr=self.command.stderr, attempts=self.command.attempts)
        return result


def parse_xl_info_build_id(stdout):
    """Return the ``build_id`` of ``xl info`` output (lower-case hex), or None when missing or not hex."""
    try:
        info = parse_xl_info(stdout)
    except XlOutputError:
        return None
    value = (info_text(info, 'build_id') or '').strip().lower()
    return value if value and _HEX_RE.match(value) else None


def validate_name(name):
    """Refuse names xen-livepatch cannot take or its list output cannot show back unambiguously."""
    if not name:
        raise LivepatchFailure('name must not be empty')
    size = len(name.encode('utf-8'))
    if size > NAME_MAX_BYTES:
        raise LivepatchFailure('name is %d bytes; xen-livepatch names are at most %d bytes (128 including the '
                               'terminating NUL)' % (size, NAME_MAX_BYTES))
    if name != name.strip() or '|' in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise LivepatchFailure('name %r cannot be used: no leading or trailing blanks, no "|" and no control '
                               'characters (xen-livepatch list could not show it back)' % name)


def normalize_checksum(checksum):
    match = _CHECKSUM_RE.match((checksum or '').strip())
    if not match:
        raise LivepatchFailure('checksum must be the SHA-256 of the payload: 64 hex digits, optionally prefixed '
                               'with "sha256:" (got %r)' % checksum)
    return match.group(1).lower()


def inspect_payload(src, checksum, data=None):
    """Check ``src`` on the host before anything reaches the hypervisor; return its metadata.

    ``data``: the payload's bytes already in memory (check mode of a payload the controller sent in the
    module's arguments: nothing is written), checked instead of reading ``src`` (then only a label)."""
    expected = normalize_checksum(checksum)
    try:
        actual = sha256_file(src) if data is None else sha256_bytes(data)
    except (IOError, OSError) as exc:
        raise LivepatchFailure('cannot read src %s: %s' % (src, exc.strerror or exc))
    if actual != expected:
        raise LivepatchFailure('checksum mismatch for %s: the file has sha256 %s, checksum says %s; the payload '
                               'was not uploaded' % (src, actual, expected), payload=dict(path=src, sha256=actual))
    try:
        info = read_payload(src) if data is None else parse_payload_bytes(data, source=src, sha256=actual)
    except PayloadError as exc:
        raise LivepatchFailure('src is not a usable Xen livepatch payload, so it was not uploaded: %s' % exc.msg,
                               payload=dict(path=src, sha256=actual))
    if data is None and info['sha256'] != actual:
        raise LivepatchFailure('%s changed while it was being checked (sha256 %s, then %s); not uploaded'
                               % (src, actual, info['sha256']))
    payload = dict(path=src, sha256=info['sha256'], size=info['size'], build_id=info['build_id'],
                   xen_depends=info['xen_depends'], depends=info['depends'], metadata=info['metadata'],
                   sections=info['sections'], writable_sections=info['writable_sections'])
    missing = [section for section, key in (('.livepatch.xen_depends', 'xen_depends'),
                                            ('.livepatch.depends', 'depends'),
                                            ('.note.gnu.build-id', 'build_id')) if not info[key]]
    if missing:
        raise LivepatchFailure('%s has no %s section; Xen refuses such payloads (Error 22) and we cannot prove '
                               'which hypervisor it was built for, so it was not uploaded'
                               % (src, ' or '.join(missing)), payload=payload)
    return payload


def _metadata_parts(text):
    return [part for part in (text or '').split(';') if part.strip()]


def _row_summary(row):
    return dict(name=row['name'], state=row['state'], error=row.get('error'), metadata=row.get('metadata'))


# After '(XEN) ', more blank: a space, or the no-break space Xen 4.20's source has there.
_LOG_CONTINUATION = re.compile(u'^\\(XEN\\)(?: \\[[^\\]]*\\])? [ \u00a0]')


def payload_log_lines(dmesg, name):
    """The ``xl dmesg`` lines about payload ``name``, stripped, oldest first.

    A message that goes on over indented lines belongs to the payload too: Xen 4.20 says
    ``livepatch: NAME: build-id mismatch:`` and puts the two build-ids on the next lines
    (``(XEN) \u00a0 livepatch: <id>`` / ``(XEN) \u00a0...\u00a0 xen: <id>``: the source indents them
    with a no-break space, U+00A0, and a space), where Xen 4.17 said
    ``livepatch: NAME: check against hypervisor build-id failed`` on one line.
    """
    marker = re.compile(r'livepatch: %s[: ]' % re.escape(name))
    lines, continuing = [], False
    for line in dmesg.splitlines():
        if marker.search(line):
            lines.append(line.strip())
            continuing = line.rstrip().endswith(':')
        elif continuing and _LOG_CONTINUATION.match(line):
            lines.append(line.strip())
        else:
            continuing = False
    return lines


class LivepatchLifecycle(object):
    """One run of the module's logic. ``run()`` returns the result or raises LivepatchFailure."""

    def __init__(self, livepatch, xl=None, name=None, state='applied', src=None, checksum=None, replace=False,
                 retries=5, delay=1.0, nodeps=False, check_mode=False, dmesg_lines=10):
        if state not in STATES:
            raise LivepatchFailure('state must be one of %s, got %r' % (', '.join(STATES), state))
        self.lp = livepatch
        self.xl = xl
        if xl is not None:
            # One history for both tools, so ``commands`` keeps the order they ran in.
            xl.history = livepatch.history
        self.name = name
        self.state = state
        self.src = src
        self.checksum = checksum
        self.replace = bool(replace)
        self.retries = int(retries)
        self.delay = float(delay)
        self.nodeps = bool(nodeps)
        self.check_mode = bool(check_mode)
        self.dmesg_lines = dmesg_lines
        self.payload = None
        self.hypervisor_build_id = None
        self.before = None
        self.after = None
        self.actions = []
        self.cleanup = None
        self.identity = None
        self.uploaded = False
        self.depends_verified = False
        self.mutated = False

    # --- results -----------------------------------------------------------------------------
    def _commands(self):
        return [dict(argv=c.argv, rc=c.rc, attempts=c.attempts) for c in self.lp.history]

    def _fields(self):
        return dict(
            changed=self._changed(),
            name=self.name,
            state=self.state,
            payload=self._public_payload(),
            hypervisor_build_id=self.hypervisor_build_id,
            payloads_before=self.before,
            payloads_after=self.after,
            actions=list(self.actions),
            identity=self.identity,
            commands=self._commands(),
            cleanup=self.cleanup,
        )

    def _public_payload(self):
        if self.payload is None:
            return None
        result = dict(self.payload)
        result['name'] = self.name
        return result

    def _changed(self):
        if self.before is None or self.after is None:
            # The table could not be read back: changed if any mutating command succeeded.
            return self.mutated
        return [(r['name'], r['state']) for r in self.before] != [(r['name'], r['state']) for r in self.after]

    def _fail(self, msg, command=None):
        fields = self._fields()
        raise LivepatchFailure(msg, command=command, **fields)

    # --- reads -------------------------------------------------------------------------------
    def _read_hypervisor_build_id(self):
        if self.xl is None:
            self._fail('xl is needed to read the running hypervisor build_id (not found on the host)')
        result = self.xl.info()
        if result.rc != 0:
            self._fail('xl info failed (rc=%s), so the running hypervisor build_id is unknown and the payload was '
                       'not uploaded' % result.rc, result)
        build_id = parse_xl_info_build_id(result.stdout)
        if not build_id:
            self._fail('xl info shows no build_id: cannot prove the payload fits the running hypervisor, so it was '
                       'not uploaded', result)
        return build_id

    def _list(self):
        result = self.lp.list()
        try:
            rows = parse_livepatch_list(result.stdout, result.stderr, result.rc)
        except LivepatchListError as exc:
            self._fail(exc.reason, result)
        return [_row_summary(r) for r in rows]

    def _relist_after_failure(self):
        """Best effort: the table as the failure left it (None when even list fails)."""
        result = self.lp.list()
        try:
            return [_row_summary(r) for r in parse_livepatch_list(result.stdout, result.stderr, result.rc)]
        except LivepatchListError:
            return None

    def _hypervisor_log(self):
        """Last ``xl dmesg`` lines about this payload (why Xen refused it), or []."""
        if self.xl is None:
            return []
        result = self.xl.dmesg()
        if result.rc != 0:
            return []
        return payload_log_lines(result.stdout, self.name)[-self.dmesg_lines:]

    # --- plan --------------------------------------------------------------------------------
    def _check_identity(self, row):
        """The name is loaded: is it the payload of src? ``list`` shows no build-id, only metadata."""
        if self.payload is None:
            return None
        if row.get('metadata') is None:
            return 'name'
        shown = _metadata_parts(row['metadata'])
        ours = list(self.payload.get('metadata') or [])
        if shown != ours:
            self._fail('a different payload is loaded as %s: the hypervisor shows metadata %r, src %s has %r. '
                       'Unload it (state=absent) or choose another name'
                       % (self.name, ';'.join(shown), self.src, ';'.join(ours)))
        return 'metadata' if ours else 'name'

    def plan(self, rows):
        index = payload_index(rows)
        row = index.get(self.name)
        current = row['state'] if row else None
        if row is not None and current not in ('CHECKED', 'APPLIED'):
            self._fail('payload %s is in state %r; refusing to guess what to do with it' % (self.name, current))
        if row is not None:
            self.identity = self._check_identity(row)
        if self.state == 'absent':
            return {None: [], 'CHECKED': ['unload'], 'APPLIED': ['revert', 'unload']}[current]
        if self.state == 'checked':
            return {None: ['upload'], 'CHECKED': [], 'APPLIED': ['revert']}[current]
        activate = 'replace' if self.replace else 'apply'
        if current == 'APPLIED':
            others = [r['name'] for r in rows if r['name'] != self.name and r['state'] == 'APPLIED']
            if self.replace and others:
                self._fail('replace=true: %s is already applied together with %s; xen-livepatch replace only '
                           'takes a payload in CHECKED state, so this cannot be done in one operation. Revert the '
                           'others (state=checked or absent), or revert %s first'
                           % (self.name, ', '.join(others), self.name))
            return []
        self._check_stacking(rows, activate)
        return (['upload'] if current is None else []) + [activate]

    def _check_stacking(self, rows, activate):
        """Refuse an apply/replace the hypervisor is known to refuse (xen/common/livepatch.c build_id_dep).

        ``replace`` checks ``.livepatch.depends`` against the hypervisor build-id; ``apply`` against the
        hypervisor when nothing is applied, else against the payload applied last (whose build-id
        ``xen-livepatch list`` does not show, so only the hypervisor case can be decided here).
        """
        if self.payload is None or not self.hypervisor_build_id or (activate == 'apply' and self.nodeps):
            return
        depends = self.payload.get('depends')
        on_hypervisor = depends == self.hypervisor_build_id
        applied = [r['name'] for r in rows if r['name'] != self.name and r['state'] == 'APPLIED']
        if activate == 'replace' and not on_hypervisor:
            self._fail('replace=true: xen-livepatch replace needs a payload that stacks on the hypervisor, but the '
                       '.livepatch.depends of %s is %s, not the hypervisor build_id %s; the hypervisor would refuse '
                       'it (Error 22), so it was not uploaded' % (self.src, depends, self.hypervisor_build_id))
        if activate == 'apply' and not applied and not on_hypervisor:
            self._fail('%s stacks on another payload (.livepatch.depends %s) but no payload is applied, so the '
                       'hypervisor would refuse to apply it (Error 22); it was not uploaded. Apply the payload it '
                       'depends on first' % (self.src, depends))
        if activate == 'apply' and applied and on_hypervisor:
            self._fail('%s stacks on the hypervisor (.livepatch.depends is the hypervisor build_id), but %s %s '
                       'applied and the hypervisor checks .livepatch.depends against the payload applied last, so it '
                       'would refuse to apply it (Error 22); it was not uploaded. Use replace: true to make it the '
                       'only applied payload, or revert the others first'
                       % (self.src, ', '.join(applied), 'is' if len(applied) == 1 else 'are'))
        # Known to pass Xen's dependency check: it is checked against the hypervisor build-id.
        self.depends_verified = on_hypervisor and (activate == 'replace' or not applied)

    def predict(self, rows, actions):
        """The table ``actions`` would leave (check mode)."""
        rows = [dict(r) for r in rows]
        for action in actions:
            if action == 'upload':
                metadata = None
                if rows and rows[0].get('metadata') is not None or not rows:
                    metadata = ';'.join((self.payload or {}).get('metadata') or [])
                rows.append(dict(name=self.name, state='CHECKED', error=None, metadata=metadata))
                continue
            if action == 'unload':
                rows = [r for r in rows if r['name'] != self.name]
                continue
            for r in rows:
                if r['name'] == self.name:
                    r['state'] = TARGET_STATE[action]
                    r['error'] = None
                elif action == 'replace' and r['state'] == 'APPLIED':
                    r['state'] = 'CHECKED'
        return rows

    # --- actions -----------------------------------------------------------------------------
    def _run_action(self, action):
        kwargs = dict(retries=self.retries, delay=self.delay)
        if action == 'upload':
            result = self.lp.upload(self.name, self.src, **kwargs)
        elif action == 'apply':
            result = self.lp.apply(self.name, nodeps=self.nodeps, **kwargs)
        else:
            result = getattr(self.lp, action)(self.name, **kwargs)
        return result

    def _tool_failed(self, result):
        # xen-livepatch prints "<Action> <name>... failed" for every failure; Xen 4.20.4 was seen to exit 0
        # after it (a payload hook's positive return reaches the tool as no errno: "Error 0: Success").
        return (result.rc != 0 or mentions_no_handler(result.stdout + result.stderr)
                or bool(ACTION_FAILED.search(result.stdout)))

    def _explain(self, action, result, rows):
        """Say why ``action`` failed, from the tool's output and the re-parsed state."""
        text = result.stdout + '\n' + result.stderr
        argv = ' '.join(result.argv)
        if mentions_no_handler(text):
            return ('%s could not open the hypervisor control interface ("failed to get the handler", exit status %s): '
                    'not a Xen dom0, privcmd not available, or not running as root' % (argv, result.rc))
        error = find_tool_error(text)
        row = payload_index(rows or []).get(self.name)
        shown = row['state'] if row else 'not loaded'
        if result.rc == LIVEPATCH_RC_RETRY:
            msg = ('%s still failed with exit status 2 (retry) after %d attempt%s'
                   % (argv, result.attempts, '' if result.attempts == 1 else 's'))
            if error:
                msg += ' (Error %d: %s)' % error
            if "Operation didn't complete." in text:
                msg += ': the hypervisor did not finish the operation in time'
            elif 'Operation already in progress.' in text:
                msg += ': another live patching operation is in progress'
            elif action == 'revert' and error and error[0] == EBUSY:
                above = []
                if rows:
                    names = [r['name'] for r in rows]
                    if self.name in names:
                        above = [r['name'] for r in rows[names.index(self.name) + 1:] if r['state'] == 'APPLIED']
                msg += (': another payload may depend on it (a payload stacked on %s must be reverted first%s), '
                        'or the CPUs could not be quiesced within 30 ms'
                        % (self.name, '; applied after it: %s' % ', '.join(above) if above else ''))
            else:
                msg += (': another live patching operation was in progress or the hypervisor could not quiesce '
                        'the CPUs within 30 ms')
            return msg + '. %s is now %s.' % (self.name, shown)
        if 'is in the wrong state' in text:
            return ('%s: %s is in the wrong state for %s; xen-livepatch list now shows it %s'
                    % (argv, self.name, action, shown))
        if result.rc == 0:
            return ('%s printed "failed" and exited 0 (%s): the hypervisor refused the %s with a value the tool does '
                    'not turn into an exit status, such as a payload hook returning a positive number; %s is now %s. '
                    '`xl dmesg` on the host may say more'
                    % (argv, 'Error %d: %s' % error if error else 'no error line', action, self.name, shown))
        if action == 'upload' and error and error[0] == EINVAL:
            return ('the hypervisor refused the payload at upload (Error 22: Invalid argument). The usual cause is '
                    'a build-id mismatch (.livepatch.xen_depends or .livepatch.depends) or a malformed payload; '
                    '`xl dmesg` on the host says which check failed')
        if action == 'upload' and error and error[0] == EEXIST:
            return ('the hypervisor refused the payload at upload (Error 17: File exists): a payload with the same '
                    'name or the same build-id (%s) is already loaded; loaded now: %s'
                    % ((self.payload or {}).get('build_id'), ', '.join(r['name'] for r in rows or []) or 'none'))
        if action in ('apply', 'replace') and error and error[0] == EINVAL:
            if self.depends_verified:
                msg = ('the hypervisor refused to %s %s (Error 22: Invalid argument): its .livepatch.depends matches '
                       'the hypervisor, so an expectation or a hook of the payload failed; `xl dmesg` says which'
                       % (action, self.name))
            else:
                msg = ('the hypervisor refused to %s %s (Error 22: Invalid argument): its .livepatch.depends (%s) '
                       'does not match the payload it must stack on, or an expectation or hook check failed; '
                       '`xl dmesg` says which' % (action, self.name, (self.payload or {}).get('depends')))
            writable = [s for s in (self.payload or {}).get('writable_sections') or [] if s != '.livepatch.funcs']
            if not self.uploaded and writable:
                msg += ('. It was loaded before this run and has writable sections besides .livepatch.funcs (%s): if '
                        'it was applied and reverted earlier, Xen refuses to apply it again; unload it (state=absent) '
                        'and apply it afresh' % ', '.join(writable))
            return msg
        if error:
            return ('%s failed (rc=%s, Error %d: %s); %s is now %s'
                    % (argv, result.rc, error[0], error[1], self.name, shown))
        return '%s failed (rc=%s); %s is now %s' % (argv, result.rc, self.name, shown)

    def _undo_upload(self, rows):
        """Unload what this run uploaded and could not apply; record how it went; return the new table."""
        row = payload_index(rows or []).get(self.name)
        if row is None or row['state'] != 'CHECKED':
            self.cleanup = dict(action='unload', name=self.name, done=row is None, rc=None,
                                msg='nothing to unload: %s is %s' % (self.name, row['state'] if row else 'not loaded'))
            return rows
        result = self.lp.unload(self.name, retries=self.retries, delay=self.delay)
        rows = self._relist_after_failure()
        gone = rows is not None and self.name not in payload_index(rows)
        self.cleanup = dict(action='unload', name=self.name, done=gone, rc=result.rc,
                            msg=('unloaded %s again: this run uploaded it and could not apply it' % self.name) if gone
                            else ('could not unload %s (rc=%s): it stays loaded in CHECKED state, unload it by hand'
                                  % (self.name, result.rc)))
        return rows

    def _execute(self, actions):
        rows = self.before
        for action in actions:
            result = self._run_action(action)
            if not self._tool_failed(result):
                self.mutated = True
                if action == 'upload':
                    self.uploaded = True
                continue
            rows = self._relist_after_failure()
            if rows is not None and 'is in the wrong state' in result.stdout + result.stderr:
                row = payload_index(rows).get(self.name)
                reached = TARGET_STATE[action]
                if (row['state'] if row else None) == reached:
                    continue  # someone else brought it there meanwhile: the re-parsed state decides
            msg = self._explain(action, result, rows)
            log = []
            error = find_tool_error(result.stdout + result.stderr)
            if action in ('upload', 'apply', 'replace') and error and error[0] == EINVAL:
                log = self._hypervisor_log()
                if log:
                    msg += '. xl dmesg: ' + ' | '.join(log)
            if self.uploaded and action in ('apply', 'replace'):
                rows = self._undo_upload(rows)
                msg += '. Cleanup: ' + self.cleanup['msg']
            self.after = rows
            fields = self._fields()
            fields['hypervisor_log'] = log
            raise LivepatchFailure(msg, command=result, **fields)

    # --- entry point -------------------------------------------------------------------------
    def run(self):
        try:
            validate_name(self.name)
            if self.state != 'absent':
                if not self.src or not self.checksum:
                    raise LivepatchFailure('state=%s needs src and checksum' % self.state)
                self.payload = inspect_payload(self.src, self.checksum)
        except LivepatchFailure as exc:
            self.payload = exc.fields.get('payload')
            self._fail(exc.msg)
        if self.state != 'absent':
            self.hypervisor_build_id = self._read_hypervisor_build_id()
            if self.payload['xen_depends'] != self.hypervisor_build_id:
                self._fail('payload %s was built for another hypervisor build: its .livepatch.xen_depends is %s, the '
                           'running hypervisor build_id is %s. It was not uploaded'
                           % (self.src, self.payload['xen_depends'], self.hypervisor_build_id))
        self.before = self._list()
        self.actions = self.plan(self.before)
        if self.check_mode or not self.actions:
            self.after = self.predict(self.before, self.actions)
        else:
            self._execute(self.actions)
            self.after = self._list()
            wanted = {'absent': None, 'checked': 'CHECKED', 'applied': 'APPLIED'}[self.state]
            row = payload_index(self.after).get(self.name)
            if (row['state'] if row else None) != wanted:
                if self.uploaded and row is not None and row['state'] == 'CHECKED':
                    self.after = self._undo_upload(self.after)
                self._fail('xen-livepatch reported success, but list shows %s %s instead of %s'
                           % (self.name, row['state'] if row else 'not loaded', wanted or 'not loaded'))
        result = self._fields()
        result['diff'] = dict(before=format_livepatch_table(self.before), after=format_livepatch_table(self.after),
                              before_header='xen-livepatch list (before)', after_header='xen-livepatch list (after)')
        return result
