# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/plugin_utils/controller_payload.py: what the action plugin of livepatch_rollout sends, and what it refuses."""

from __future__ import absolute_import, division, print_function

import hashlib
import os

import pytest

from ansible_collections.noreboot.xen.plugins.plugin_utils.controller_payload import (
    MAX_PAYLOAD_BYTES,
    PayloadRefused,
    read_verified_payload,
)

DATA = b'\x7fELF payload bytes'
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / 'p.livepatch'
    path.write_bytes(DATA)
    os.chmod(str(path), 0o600)
    return path


def test_the_verified_bytes_are_returned(payload):
    assert read_verified_payload(str(payload), SHA) == DATA
    assert read_verified_payload(str(payload), 'sha256:' + SHA.upper()) == DATA


@pytest.mark.parametrize('checksum', ['', None, 'abc', 'md5:' + SHA])
def test_a_checksum_that_is_not_a_sha256_is_refused(payload, checksum):
    with pytest.raises(PayloadRefused, match='is not a SHA-256'):
        read_verified_payload(str(payload), checksum)


def test_a_changed_file_is_refused_naming_both_digests(payload):
    payload.write_bytes(DATA + b'!')
    with pytest.raises(PayloadRefused) as caught:
        read_verified_payload(str(payload), SHA)
    assert 'checksum mismatch' in caught.value.msg and SHA in caught.value.msg
    assert hashlib.sha256(DATA + b'!').hexdigest() in caught.value.msg and 'nothing was sent' in caught.value.msg


def test_a_symlink_is_refused(payload, tmp_path):
    link = tmp_path / 'link.livepatch'
    link.symlink_to(payload)
    with pytest.raises(PayloadRefused, match='is a symlink'):
        read_verified_payload(str(link), SHA)


@pytest.mark.parametrize('mode', [0o620, 0o602, 0o666])
def test_a_file_others_can_write_is_refused(payload, mode):
    os.chmod(str(payload), mode)
    with pytest.raises(PayloadRefused, match='writable by its group or others'):
        read_verified_payload(str(payload), SHA)


def test_a_file_of_another_user_is_refused(payload):
    if os.geteuid() == 0:
        os.chown(str(payload), 4321, -1)  # neither root nor this user
        euid = None
    else:
        euid = os.stat(str(payload)).st_uid + 1  # as if this user were another one
    with pytest.raises(PayloadRefused, match='neither root nor this user'):
        read_verified_payload(str(payload), SHA, euid=euid)


def test_a_directory_a_relative_path_and_a_missing_file_are_refused(tmp_path):
    with pytest.raises(PayloadRefused, match='not a regular file'):
        read_verified_payload(str(tmp_path), SHA)
    with pytest.raises(PayloadRefused, match='absolute path'):
        read_verified_payload('p.livepatch', SHA)
    with pytest.raises(PayloadRefused, match='cannot be read'):
        read_verified_payload(str(tmp_path / 'missing'), SHA)


def test_a_file_larger_than_the_cap_is_refused(payload):
    with open(str(payload), 'ab') as handle:
        handle.truncate(MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(PayloadRefused, match='more than'):
        read_verified_payload(str(payload), SHA)
