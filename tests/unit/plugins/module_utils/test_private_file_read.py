# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/private_file_read.py: the one reader of payload files, on the controller and on the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import private_file_read
from ansible_collections.noreboot.xen.plugins.module_utils.private_file_read import UnsafeFile, read_private_file

DATA = b'\x7fELF' + b'x' * 100


@pytest.fixture
def private(tmp_path):
    path = tmp_path / 'p.livepatch'
    path.write_bytes(DATA)
    os.chmod(str(path), 0o600)
    return str(path)


def refusal(path, max_bytes=1 << 20, euid=None):
    with pytest.raises(UnsafeFile) as info:
        read_private_file(path, max_bytes, euid=euid)
    return info.value


def test_a_private_regular_file_is_read_whole(private):
    assert read_private_file(private, len(DATA)) == DATA


def test_each_refusal_names_its_reason(private, tmp_path):
    link = str(tmp_path / 'link')
    os.symlink(private, link)
    fifo = str(tmp_path / 'fifo')
    os.mkfifo(fifo, 0o600)  # opened non-blocking: refused, not waited on
    assert (refusal(link).kind, refusal(link).reason) == ('symlink', 'is a symlink')
    assert refusal(fifo).kind == 'not_regular'
    assert refusal(str(tmp_path)).kind == 'not_regular'
    assert refusal(str(tmp_path / 'missing')).reason.startswith('cannot be read (')
    assert refusal(private, max_bytes=len(DATA) - 1).reason == 'has %d bytes, more than %d' % (len(DATA), len(DATA) - 1)
    other = os.geteuid() + 4321
    if os.geteuid() == 0:
        os.chown(private, other, -1)
        assert refusal(private).kind == 'owner'
        assert 'neither root nor this user' in refusal(private).reason
        os.chown(private, 0, -1)
    else:  # the file is this user's: a reader running as another (non-root) user refuses it
        assert refusal(private, euid=other).kind == 'owner'
    for mode in (0o620, 0o602):
        os.chmod(private, mode)
        assert refusal(private).reason == 'is writable by its group or others (mode %04o)' % mode


def test_a_file_that_grows_while_it_is_read_is_refused(private, monkeypatch):
    real_read = os.read
    calls = []

    def growing_read(fd, size):
        calls.append(size)
        return real_read(fd, size) or (b'y' * 10 if len(calls) < 4 else b'')

    monkeypatch.setattr(private_file_read.os, 'read', growing_read)
    error = refusal(private, max_bytes=len(DATA) + 5)
    assert (error.kind, error.reason) == ('size', 'grew past %d bytes while it was read' % (len(DATA) + 5))
