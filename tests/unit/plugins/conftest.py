# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the module_utils and module tests of signed advisory directories (OpenPGP and minisign keys)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest

import gpg_signing  # noqa: E402  pylint: disable=wrong-import-position
import minisign_signing  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope='session')
def keys(tmp_path_factory):
    """Throwaway OpenPGP keys made once per test session (see tests/support/gpg_signing.py)."""
    base = tmp_path_factory.mktemp('gpg')
    home = base / 'home'
    home.mkdir(mode=0o700)
    yield gpg_signing.make_keys(str(home), str(base))
    gpg_signing.stop_agent(str(home))


@pytest.fixture(scope='session')
def minisign_keys(tmp_path_factory):
    """Throwaway minisign keys made once per test session with the real minisign (tests/support/minisign_signing.py).

    A missing minisign fails every test that uses them, saying that `make setup` installs it."""
    try:
        return minisign_signing.make_keys(str(tmp_path_factory.mktemp('minisign')))
    except minisign_signing.MinisignMissing as exc:
        pytest.fail(str(exc), pytrace=False)
