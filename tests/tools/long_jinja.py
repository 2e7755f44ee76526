"""Count the Jinja expressions longer than a limit in the playbooks and roles.

An expression is a ``{{ ... }}`` span, from its opening braces to the matching closing
ones (a span may run over several lines, as in a folded YAML scalar). Its length is
measured with the braces and with each run of white space folded to one space, so the
indentation of a multi-line span does not count. Issue 16 asks for this figure before and
after logic moves out of Jinja into tested Python.

Usage: python tests/tools/long_jinja.py [--limit N] [--list] [PATH...]
(default paths: playbooks roles; default limit 80)
"""
import argparse
import os
import re
import sys

WHITESPACE = re.compile(r'\s+')


def span_end(text, start):
    """Return the index just past the ``}}`` closing the span opened at start, or -1.

    Like Jinja's lexer, braces inside the expression (dict literals) must balance before
    ``}}`` closes it, and braces inside quoted strings do not count.
    """
    pos = start + 2
    inner = 0
    quote = None
    while pos < len(text):
        char = text[pos]
        if quote:
            if char == '\\':
                pos += 1
            elif char == quote:
                quote = None
        elif char in '\'"':
            quote = char
        elif char == '{':
            inner += 1
        elif char == '}':
            if inner:
                inner -= 1
            elif text.startswith('}}', pos):
                return pos + 2
        pos += 1
    return -1


def expressions(text):
    """Yield (line number, folded expression) for each ``{{ ... }}`` span of text."""
    start = text.find('{{')
    while start != -1:
        end = span_end(text, start)
        if end == -1:
            return
        yield text.count('\n', 0, start) + 1, WHITESPACE.sub(' ', text[start:end])
        start = text.find('{{', end)


def yaml_files(paths):
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(('.yml', '.yaml', '.j2')):
                    yield os.path.join(root, name)


def long_expressions(paths, limit):
    """Return (file, line, length) for each expression longer than limit."""
    found = []
    for path in yaml_files(paths):
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
        for line, expression in expressions(text):
            if len(expression) > limit:
                found.append((path, line, len(expression)))
    return found


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--limit', type=int, default=80)
    parser.add_argument('--list', action='store_true', help='name each long expression')
    parser.add_argument('paths', nargs='*', default=['playbooks', 'roles'])
    args = parser.parse_args(argv)
    found = long_expressions(args.paths, args.limit)
    if args.list:
        for path, line, length in found:
            print('%s:%d %d' % (path, line, length))
    print('%d Jinja expressions over %d characters in %s' % (len(found), args.limit, ' '.join(args.paths)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
