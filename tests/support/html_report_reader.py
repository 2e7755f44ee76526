# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reads the HTML reports of noreboot.xen back (unit and lab tests): the charts' data attributes, the
tables' cells, and every reference that could make a browser fetch something outside the file."""

from __future__ import absolute_import, division, print_function

import re
from html.parser import HTMLParser

# Attributes through which a page fetches or links something.
URL_ATTRIBUTES = ('src', 'href', 'srcset', 'action', 'formaction', 'data', 'poster', 'background', 'xlink:href',
                  'manifest', 'ping', 'codebase', 'cite', 'longdesc', 'lowsrc', 'dynsrc', 'usemap', 'profile')


class ReportReader(HTMLParser):
    """Collects: ``elements`` (tag, attrs dict, path of enclosing data-chart / bar), ``tables`` (class ->
    rows of cell texts), ``texts`` (all text), ``styles`` (style element texts and style attributes),
    ``scripts`` (script elements)."""

    def __init__(self):
        HTMLParser.__init__(self, convert_charrefs=True)
        self.elements = []
        self.tables = {}
        self.texts = []
        self.styles = []
        self.scripts = 0
        self._stack = []
        self._table = None
        self._row = None
        self._cell = None
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append(dict(tag=tag, attrs=attrs, chart=self._chart(), bar=self._bar()))
        if tag not in ('meta', 'br', 'rect', 'line', 'input', 'img', 'link'):
            self._stack.append((tag, attrs))
        if 'style' in attrs:
            self.styles.append(attrs['style'] or '')
        if tag == 'script':
            self.scripts += 1
        if tag == 'style':
            self._in_style = True
        if tag == 'table':
            self._table = self.tables.setdefault(attrs.get('class') or '', [])
        elif tag == 'tr' and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ('td', 'th') and self._row is not None:
            self._cell = []

    def handle_startendtag(self, tag, attrs):
        self.elements.append(dict(tag=tag, attrs=dict(attrs), chart=self._chart(), bar=self._bar()))

    def handle_endtag(self, tag):
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                break
        if tag == 'style':
            self._in_style = False
        if tag in ('td', 'th') and self._cell is not None and self._row is not None:
            self._row.append(''.join(self._cell).strip())
            self._cell = None
        elif tag == 'table':
            self._table = None
            self._row = None

    def handle_data(self, data):
        self.texts.append(data)
        if self._in_style:
            self.styles.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def _chart(self):
        for tag, attrs in reversed(self._stack):
            if tag == 'svg' and 'data-chart' in attrs:
                return attrs['data-chart']
        return None

    def _bar(self):
        for tag, attrs in reversed(self._stack):
            if tag == 'g' and 'data-label' in attrs:
                return attrs
        return None


def read(html):
    reader = ReportReader()
    reader.feed(html)
    reader.close()
    return reader


def charts(reader):
    """``{chart: svg attrs}`` of every chart."""
    return dict((e['attrs']['data-chart'], e['attrs']) for e in reader.elements
                if e['tag'] == 'svg' and 'data-chart' in e['attrs'])


def bars(reader, chart):
    """``{bar label: {'attrs': ..., 'segments': {outcome: count}}}`` of a stacked bar chart."""
    found = {}
    for element in reader.elements:
        if element['chart'] != chart:
            continue
        if element['tag'] == 'g' and 'data-label' in element['attrs']:
            found[element['attrs']['data-label']] = dict(attrs=element['attrs'], segments={})
        elif element['tag'] == 'rect' and 'data-outcome' in element['attrs'] and element['bar']:
            one_bar = found[element['bar']['data-label']]
            one_bar['segments'][element['attrs']['data-outcome']] = int(element['attrs']['data-count'])
    return found


def spans(reader):
    """The timeline's waves: ``[attrs]`` in order."""
    return [e['attrs'] for e in reader.elements if e['chart'] == 'timeline' and e['tag'] == 'g' and 'data-wave' in e['attrs']]


def external_references(html, reader=None):
    """Everything in ``html`` that could make a browser fetch something outside the file: a URL scheme or
    protocol-relative URL anywhere in markup or style, a URL attribute, ``@import``, ``url(``, a script,
    a ``<link>``, ``<base>``, ``<iframe>``, ``<object>``, ``<embed>``, ``<img>``, an SVG ``<image>``/``<use>`` or meta refresh."""
    reader = reader or read(html)
    problems = []
    for match in re.finditer(r'(?i)\b(?:https?|ftp|wss?|file)://|(?<![:\w])//[\w.-]', html):
        problems.append('URL-like text %r at %d' % (html[max(match.start() - 20, 0):match.end() + 20], match.start()))
    for element in reader.elements:
        tag, attrs = element['tag'], element['attrs']
        if tag in ('script', 'link', 'base', 'iframe', 'object', 'embed', 'img', 'image', 'use', 'video', 'audio',
                   'source', 'track', 'frame', 'frameset', 'portal', 'foreignobject'):
            problems.append('element <%s>' % tag)
        if tag == 'meta' and (attrs.get('http-equiv') or '').lower() == 'refresh':
            problems.append('meta refresh')
        for name, value in attrs.items():
            if name in URL_ATTRIBUTES or name.startswith('on'):
                problems.append('attribute %s on <%s>' % (name, tag))
            if re.search(r'(?i)^\s*(?:javascript|data|vbscript):', value or ''):
                problems.append('attribute %s=%r on <%s>' % (name, value[:40], tag))
    for style in reader.styles:
        if re.search(r'(?i)@import|url\s*\(|image-set\s*\(|@font-face', style):
            problems.append('style fetches: %r' % style[:80])
    if reader.scripts:
        problems.append('%d script(s)' % reader.scripts)
    return problems
