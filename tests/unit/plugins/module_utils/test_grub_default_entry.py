# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""grub_default_entry: which entry GRUB boots and which hypervisor it loads.

The base file (grub/debian12-xen.cfg) has the layout grub-mkconfig writes on Debian 12 with
xen-hypervisor-4.17 installed (00_header, 10_linux, 20_linux_xen, 41_custom); each case
replaces the ``else`` branch's ``set default=...`` line and/or gives a grubenv.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils.grub_default_entry import (
    GrubConfigError,
    default_boot,
    parse_default_grub,
    parse_grub_cfg,
    parse_grubenv,
)

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, 'grub', 'debian12-xen.cfg')) as _handle:
    BASE = _handle.read()
DEFAULT_LINE = '   set default="Debian GNU/Linux, with Xen hypervisor"\n'
assert DEFAULT_LINE in BASE
XEN_TITLE = 'Debian GNU/Linux, with Xen hypervisor'
XEN417_ADV = 'Debian GNU/Linux, with Xen 4.17-amd64 and Linux 6.1.0-28-amd64'
XEN416_ADV = 'Debian GNU/Linux, with Xen 4.16-amd64 and Linux 6.1.0-28-amd64'
UUID = '0c4a3c62-1a4b-4d5e-9f6a-7b8c9d0e1f2a'


def grubenv(**values):
    body = '# GRUB Environment Block\n' + ''.join('%s=%s\n' % kv for kv in values.items())
    return body + '#' * (1024 - len(body))


def cfg(default_line=DEFAULT_LINE):
    return BASE.replace(DEFAULT_LINE, default_line)


CASES = [
    # id, grub.cfg, grubenv, expected title, expected hypervisor path (None: no Xen), notes substring
    ('debian-xen-default-by-title', cfg(), grubenv(), XEN_TITLE, '/boot/xen-4.17-amd64.gz', None),
    ('entry-0-is-plain-linux', cfg('   set default="0"\n'), None, 'Debian GNU/Linux', None, 'loads no multiboot'),
    ('index-counts-submenus', cfg('   set default="2"\n'), None, XEN_TITLE, '/boot/xen-4.17-amd64.gz', None),
    ('index-path-into-submenus', cfg('   set default="3>0>0"\n'), None, XEN417_ADV, '/boot/xen-4.17-amd64.gz', None),
    ('title-path-into-submenus', cfg('   set default="Advanced options for Debian GNU/Linux (with Xen hypervisor)>'
                                     'Xen hypervisor, version 4.16-amd64>%s"\n' % XEN416_ADV),
     None, XEN416_ADV, '/boot/xen-4.16-amd64.gz', None),
    ('id-of-entry', cfg('   set default="xen-gnulinux-simple-%s"\n' % UUID), None, XEN_TITLE,
     '/boot/xen-4.17-amd64.gz', None),
    # Debian gives both "Advanced options" submenus the same id: GRUB takes the first (plain Linux),
    # finds no Xen submenu there, and boots entry 0.
    ('duplicate-submenu-id-falls-back-to-0',
     cfg('   set default="gnulinux-advanced-%s>xen-hypervisor-4.16-amd64-%s>xen-gnulinux-6.1.0-28-amd64-advanced-xen416"\n'
         % (UUID, UUID)), None, 'Debian GNU/Linux', None, 'names no menu entry'),
    ('saved-entry-from-grubenv', cfg('   set default="${saved_entry}"\n'),
     grubenv(saved_entry='Advanced options for Debian GNU/Linux (with Xen hypervisor)>Xen hypervisor, version '
             '4.16-amd64>' + XEN416_ADV), XEN416_ADV, '/boot/xen-4.16-amd64.gz', None),
    ('saved-entry-missing-grubenv', cfg('   set default="${saved_entry}"\n'), None, 'Debian GNU/Linux', None,
     'default is empty'),
    ('next-entry-wins-once', cfg(), grubenv(next_entry='3>1>0'), XEN416_ADV, '/boot/xen-4.16-amd64.gz',
     'next boot (only)'),
    ('unknown-title-falls-back-to-0', cfg('   set default="Xen 4.99"\n'), None, 'Debian GNU/Linux', None,
     "'Xen 4.99' names no menu entry"),
    ('no-default-statement', cfg('   true\n'), None, 'Debian GNU/Linux', None, 'not set'),
]


@pytest.mark.parametrize('case_id,grub_cfg,env,title,path,note', CASES, ids=[c[0] for c in CASES])
def test_default_boot(case_id, grub_cfg, env, title, path, note):
    result = default_boot(grub_cfg, env)
    assert result['title'] == title
    if path is None:
        assert result['hypervisor'] is None
    else:
        assert result['hypervisor']['path'] == path
        assert result['hypervisor']['command'] == 'multiboot2'
        assert result['hypervisor']['modules'][0]['path'] == '/boot/vmlinuz-6.1.0-28-amd64'
    if note:
        assert any(note in n for n in result['notes']), result['notes']


def test_default_source_names_the_line():
    result = default_boot(cfg('   set default="${saved_entry}"\n'), grubenv(saved_entry=XEN_TITLE))
    assert result['default'] == XEN_TITLE
    assert result['saved_entry'] == XEN_TITLE
    assert result['source'].startswith('grub.cfg line 19: set default="${saved_entry}"')
    assert result['id'] == 'xen-gnulinux-simple-%s' % UUID


def test_structure_of_debian_cfg():
    parsed = parse_grub_cfg(BASE)
    menu = parsed['menu']
    assert [(i['kind'], i['title']) for i in menu] == [
        ('menuentry', 'Debian GNU/Linux'),
        ('submenu', 'Advanced options for Debian GNU/Linux'),
        ('menuentry', XEN_TITLE),
        ('submenu', 'Advanced options for Debian GNU/Linux (with Xen hypervisor)'),
    ]
    assert [c['title'] for c in menu[3]['children']] == ['Xen hypervisor, version 4.17-amd64',
                                                         'Xen hypervisor, version 4.16-amd64']
    # functions and if-blocks of the header stay top-level statements, not entries
    assert any(line.startswith('function savedefault') for _n, line in parsed['statements'])


def test_multiboot_v1_on_a_separate_boot_partition():
    text = ("set default=0\nmenuentry 'Xen' {\n\tmultiboot /xen-4.17-amd64.gz dom0_mem=2048M\n"
            "\tmodule /vmlinuz-6.1 root=/dev/sda2 ro\n\tmodule /initrd.img-6.1\n}\n")
    result = default_boot(text)
    assert result['hypervisor']['command'] == 'multiboot'
    assert result['hypervisor']['path'] == '/xen-4.17-amd64.gz'
    assert result['hypervisor']['args'] == ['dom0_mem=2048M']
    assert [m['path'] for m in result['hypervisor']['modules']] == ['/vmlinuz-6.1', '/initrd.img-6.1']


def test_quoted_title_with_escaped_quote():
    text = "set default=\"Bob's Xen\"\nmenuentry 'Bob'\\''s Xen' --id bobs {\n multiboot2 /boot/xen.gz\n}\n"
    result = default_boot(text)
    assert result['title'] == "Bob's Xen"
    assert result['id'] == 'bobs'


def test_default_under_a_condition_it_cannot_evaluate_is_refused():
    text = cfg() + 'if [ "$grub_platform" = efi ]; then\n  set default="0"\nfi\n'
    with pytest.raises(GrubConfigError, match='ambiguous'):
        default_boot(text)


def test_missing_closing_brace():
    with pytest.raises(GrubConfigError, match='closing brace is missing'):
        default_boot("menuentry 'Xen' {\n multiboot2 /boot/xen.gz\n")


def test_no_entry_at_all():
    with pytest.raises(GrubConfigError, match='no menuentry'):
        default_boot('set default=0\n')


def test_entry_0_a_submenu_is_not_bootable():
    text = "submenu 'More' {\n menuentry 'Xen' {\n  multiboot2 /boot/xen.gz\n }\n}\n"
    with pytest.raises(GrubConfigError, match='submenu'):
        default_boot(text)


def test_multiboot_without_file():
    with pytest.raises(GrubConfigError, match='without a file'):
        default_boot("menuentry 'Xen' {\n multiboot2\n}\n")


def test_grubenv_and_default_grub():
    assert parse_grubenv(grubenv(saved_entry='2', next_entry='')) == {'saved_entry': '2', 'next_entry': ''}
    assert parse_default_grub('GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n') == '0'
    assert parse_default_grub('GRUB_DEFAULT="Debian GNU/Linux, with Xen hypervisor"  # xen.cfg\n') == XEN_TITLE
    assert parse_default_grub('#GRUB_DEFAULT=saved\nGRUB_DEFAULT=saved\n') == 'saved'
    assert parse_default_grub('GRUB_TIMEOUT=5\n') is None
    result = default_boot(cfg(), None, 'GRUB_DEFAULT=saved\n')
    assert result['grub_default'] == 'saved'
