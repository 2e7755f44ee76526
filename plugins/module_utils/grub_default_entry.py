# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which entry GRUB boots by default, and which Xen hypervisor that entry loads (pure Python).

Input is text: ``/boot/grub/grub.cfg``, optionally ``/boot/grub/grubenv`` (``saved_entry``,
``next_entry``) and ``/etc/default/grub`` (``GRUB_DEFAULT``, only reported: grub.cfg is what
GRUB reads at boot). Nothing here touches the file system.

How GRUB picks the entry (grub-core/normal/menu.c), as far as grub.cfg files written by
grub-mkconfig go:

* the ``default`` variable, set at the top level of grub.cfg (``set default="0"``,
  ``set default="${saved_entry}"``, or inside ``if [ "${next_entry}" ] ; then ... else ... fi``);
  ``${VAR}`` takes its value from grubenv (``load_env``);
* its value is a path of components joined by ``>``; each component is a number (position
  among the menu entries and submenus of that level, from 0), a title, or an id
  (``--id`` / ``$menuentry_id_option``);
* an unset or empty default is entry 0; a default naming no entry also boots entry 0 (GRUB
  falls back to the first entry); both are reported in ``notes``.

Conditions other than the ones grub-mkconfig writes around ``default`` (a variable set or
empty, ``-s $prefix/grubenv``) are not evaluated: a ``set default`` under such a condition
makes the result ambiguous and raises GrubConfigError rather than guessing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex

MULTIBOOT_COMMANDS = ('multiboot2', 'multiboot')
MODULE_COMMANDS = ('module2', 'module')

_VAR_RE = re.compile(r'\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)')
_SET_RE = re.compile(r'^set\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$')
_COND_VAR_RE = re.compile(r'^if\s+\[\s+(-n\s+)?"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"?\s+\]\s*;?\s*(then)?\s*$')
_COND_Z_RE = re.compile(r'^if\s+\[\s+-z\s+"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"?\s+\]\s*;?\s*(then)?\s*$')
_COND_GRUBENV_RE = re.compile(r'^if\s+\[\s+-s\s+\$\{?prefix\}?/grubenv\s+\]\s*;?\s*(then)?\s*$')


class GrubConfigError(ValueError):
    """grub.cfg cannot be read as GRUB would; the message says what and where."""


# ------------------------------------------------------------------------------------------
# grubenv and /etc/default/grub
# ------------------------------------------------------------------------------------------

def parse_grubenv(text):
    """``{name: value}`` of a grubenv block (``# GRUB Environment Block``, ``name=value``, ``#`` padding)."""
    env = {}
    for line in (text or '').splitlines():
        if not line or line.startswith('#') or '=' not in line:
            continue
        name, value = line.split('=', 1)
        env[name.strip()] = value
    return env


def parse_default_grub(text):
    """The value of ``GRUB_DEFAULT`` in /etc/default/grub (shell syntax, last assignment wins), or None."""
    value = None
    for line in (text or '').splitlines():
        stripped = line.strip()
        if not stripped.startswith('GRUB_DEFAULT='):
            continue
        raw = stripped[len('GRUB_DEFAULT='):]
        try:
            words = shlex.split(raw, comments=True)
        except ValueError:
            continue
        value = words[0] if words else ''
    return value


# ------------------------------------------------------------------------------------------
# grub.cfg structure
# ------------------------------------------------------------------------------------------

def _logical_lines(text):
    """Lines with their 1-based numbers; a trailing backslash joins the next line."""
    result = []
    pending = None
    start = 0
    for number, line in enumerate((text or '').splitlines(), 1):
        if pending is not None:
            line = pending + line
        else:
            start = number
        if line.endswith('\\'):
            pending = line[:-1]
            continue
        pending = None
        result.append((start, line.strip()))
    if pending is not None:
        result.append((start, pending.strip()))
    return result


def _split_words(line, lineno):
    try:
        return shlex.split(line, comments=True, posix=True)
    except ValueError as exc:
        raise GrubConfigError('grub.cfg line %d: cannot split %r into words (%s)' % (lineno, line, exc))


def _entry_header(line, lineno):
    """Title and id of a ``menuentry``/``submenu`` line (text before the opening brace)."""
    head = line.rstrip()
    if not head.endswith('{'):
        raise GrubConfigError('grub.cfg line %d: %s without an opening brace on the same line: %r'
                              % (lineno, head.split()[0], line))
    words = _split_words(head[:-1], lineno)
    if len(words) < 2:
        raise GrubConfigError('grub.cfg line %d: %s without a title' % (lineno, words[0] if words else 'entry'))
    title = words[1]
    entry_id = None
    for index, word in enumerate(words[2:], 2):
        if word in ('--id', '$menuentry_id_option') and index + 1 < len(words):
            entry_id = words[index + 1]
        elif word.startswith('--id='):
            entry_id = word[len('--id='):]
    return title, entry_id


def _count_braces(line):
    """Net ``{`` minus ``}`` outside quotes and comments."""
    depth = 0
    quote = None
    escaped = False
    for char in line:
        if escaped:
            escaped = False
            continue
        if char == '\\' and quote != "'":
            escaped = True
            continue
        if quote:
            if char == quote:
                quote = None
            continue
        if char in ('"', "'"):
            quote = char
        elif char == '#':
            break
        elif char == '{':
            depth += 1
        elif char == '}':
            depth -= 1
    return depth


def parse_grub_cfg(text):
    """Read grub.cfg into ``{'menu': [...], 'statements': [...]}``.

    ``menu``: the top level's items in order; each ``{'kind': 'menuentry'|'submenu', 'title',
    'id', 'line', 'body': [(lineno, text), ...]}`` with submenus carrying ``children``.
    ``statements``: top-level lines outside any entry, as ``(lineno, text)``.
    """
    lines = _logical_lines(text)
    root = dict(kind='root', children=[])
    stack = [root]
    statements = []
    for lineno, line in lines:
        if not line or line.startswith('#'):
            continue
        first = line.split(None, 1)[0]
        current = stack[-1]
        if first in ('menuentry', 'submenu') and current['kind'] != 'menuentry':
            title, entry_id = _entry_header(line, lineno)
            item = dict(kind=first, title=title, id=entry_id, line=lineno, body=[], depth=0)
            if first == 'submenu':
                item['children'] = []
            current['children'].append(item)
            item['depth'] = 1
            stack.append(item)
            continue
        if current['kind'] == 'root':
            statements.append((lineno, line))
            continue
        current['depth'] += _count_braces(line)
        if current['depth'] <= 0:
            stack.pop()
            continue
        if current['kind'] == 'menuentry':
            current['body'].append((lineno, line))
    if len(stack) > 1:
        raise GrubConfigError('grub.cfg ends inside %s %r (line %d): the closing brace is missing'
                              % (stack[-1]['kind'], stack[-1]['title'], stack[-1]['line']))
    return dict(menu=root['children'], statements=statements)


# ------------------------------------------------------------------------------------------
# The default variable
# ------------------------------------------------------------------------------------------

def _expand(value, env):
    return _VAR_RE.sub(lambda m: env.get(m.group(1) or m.group(2), ''), value)


def _condition(line, env, have_grubenv):
    """True/False for the conditions grub-mkconfig writes around ``default``; None otherwise."""
    match = _COND_VAR_RE.match(line)
    if match:
        return bool(env.get(match.group(2)))
    match = _COND_Z_RE.match(line)
    if match:
        return not env.get(match.group(1))
    if _COND_GRUBENV_RE.match(line):
        return have_grubenv
    return None


def default_value(statements, env, have_grubenv=True):
    """The value GRUB's ``default`` has after the top-level statements run, and how it got it.

    Returns ``(value, source)``; value None when no statement sets it. ``env`` holds grubenv's
    variables; ``set NAME=VALUE`` statements update it as GRUB would.
    """
    env = dict(env or {})
    value = None
    source = None
    # Each frame: [condition of the branch being read (True/False/None), condition of the if]
    frames = []
    for lineno, line in statements:
        words = line.split()
        if not words:
            continue
        if words[0] == 'if':
            frames.append([_condition(line, env, have_grubenv)] * 2)
            continue
        if words[0] == 'elif':
            if frames:
                frames[-1][0] = None
            continue
        if words[0] == 'else' and frames:
            cond = frames[-1][1]
            frames[-1][0] = None if cond is None else not cond
            continue
        if words[0] == 'fi' and frames:
            frames.pop()
            continue
        active = [f[0] for f in frames]
        if False in active:
            continue
        match = _SET_RE.match(line)
        if not match:
            continue
        name, raw = match.group(1), match.group(2)
        try:
            parts = shlex.split(raw, posix=True)
        except ValueError:
            parts = [raw]
        text = parts[0] if parts else ''
        expanded = _expand(text, env)
        if None in active:
            if name == 'default':
                raise GrubConfigError('grub.cfg line %d sets default under a condition this reader cannot evaluate '
                                      '(%r): which entry boots is ambiguous; simplify GRUB_DEFAULT or check the boot '
                                      'entry by hand' % (lineno, line))
            continue
        env[name] = expanded
        if name == 'default':
            value = expanded
            source = 'grub.cfg line %d: %s' % (lineno, line)
            if text != expanded:
                source += ' (= %r)' % expanded
    return value, source


# ------------------------------------------------------------------------------------------
# Resolving the default to an entry
# ------------------------------------------------------------------------------------------

def _find(items, component):
    component = component.strip()
    if component.isdigit():
        index = int(component)
        return items[index] if index < len(items) else None
    for item in items:
        if item['title'] == component or (item['id'] is not None and item['id'] == component):
            return item
    return None


def resolve_entry(menu, value):
    """The menuentry ``value`` names (``2``, ``Title``, ``id``, ``1>2``, ``Sub>Title``), with its
    title path; None when it names nothing or a submenu."""
    items = menu
    titles = []
    item = None
    for component in value.split('>'):
        item = _find(items, component)
        if item is None:
            return None
        titles.append(item['title'])
        items = item.get('children') or []
    if item is None or item['kind'] != 'menuentry':
        return None
    return item, titles


def first_entry(menu):
    """Entry 0 as GRUB counts it (a submenu first in the menu is not bootable: None)."""
    if not menu or menu[0]['kind'] != 'menuentry':
        return None
    return menu[0], [menu[0]['title']]


def hypervisor_of(entry):
    """The ``multiboot2``/``multiboot`` command of a menuentry: ``{'command', 'path', 'args', 'line'}``
    and the modules (``module2``/``module``) it loads; None when the entry loads no multiboot kernel."""
    found = None
    modules = []
    for lineno, line in entry['body']:
        words = line.split()
        if not words:
            continue
        if words[0] in MULTIBOOT_COMMANDS and found is None:
            args = list(words[1:])
            options = [w for w in args if w.startswith('--')]
            rest = [w for w in args if not w.startswith('--')]
            if not rest:
                raise GrubConfigError('grub.cfg line %d: %s without a file' % (lineno, words[0]))
            found = dict(command=words[0], path=rest[0], args=rest[1:], options=options, line=lineno)
        elif words[0] in MODULE_COMMANDS:
            rest = [w for w in words[1:] if not w.startswith('--')]
            if rest:
                modules.append(dict(path=rest[0], args=rest[1:], line=lineno))
    if found is not None:
        found['modules'] = modules
    return found


def default_boot(grub_cfg, grubenv=None, default_grub=None):
    """What GRUB boots by default: a dict.

    Keys: ``title`` (of the entry), ``id``, ``title_path`` (submenu titles and the title),
    ``default`` (the value of ``default``), ``source`` (where it came from), ``next_entry``
    (a one-time entry grubenv asks for, already taken into account), ``saved_entry``,
    ``grub_default`` (GRUB_DEFAULT of /etc/default/grub, informative), ``hypervisor`` (see
    hypervisor_of; None when the entry does not boot Xen), ``notes`` (list of str).
    Raises GrubConfigError when grub.cfg has no bootable entry or cannot be read.
    """
    parsed = parse_grub_cfg(grub_cfg)
    env = parse_grubenv(grubenv) if grubenv is not None else {}
    value, source = default_value(parsed['statements'], env, have_grubenv=grubenv is not None)
    notes = []
    if not parsed['menu']:
        raise GrubConfigError('grub.cfg has no menuentry: nothing to boot (fix: run update-grub / grub-mkconfig)')
    resolved = None
    if value:
        resolved = resolve_entry(parsed['menu'], value)
        if resolved is None:
            notes.append('default %r names no menu entry: GRUB falls back to entry 0' % value)
    else:
        notes.append('default is %s: GRUB boots entry 0' % ('empty' if value == '' else 'not set'))
    if resolved is None:
        resolved = first_entry(parsed['menu'])
        if resolved is None:
            raise GrubConfigError('grub.cfg: the default falls back to entry 0, which is a submenu, not a bootable '
                                  'entry (fix: set GRUB_DEFAULT to the Xen entry and run update-grub)')
    entry, titles = resolved
    if env.get('next_entry'):
        notes.append('grubenv next_entry=%r: the next boot (only) takes that entry' % env['next_entry'])
    result = dict(
        title=entry['title'],
        id=entry['id'],
        title_path=titles,
        line=entry['line'],
        default=value,
        source=source,
        next_entry=env.get('next_entry') or None,
        saved_entry=env.get('saved_entry') or None,
        grub_default=parse_default_grub(default_grub) if default_grub is not None else None,
        hypervisor=hypervisor_of(entry),
        notes=notes,
    )
    if result['hypervisor'] is None:
        notes.append('the default entry %r loads no multiboot kernel: it does not boot Xen' % entry['title'])
    return result
