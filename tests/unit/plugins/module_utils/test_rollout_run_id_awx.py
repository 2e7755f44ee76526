# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run id of a rollout: new, given, and with the AWX job id in it when AWX runs the job."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.noreboot.xen.plugins.filter.rollout_run import rollout_choose_run_id
from ansible_collections.noreboot.xen.plugins.module_utils.rollout_run_id import (
    choose_run_id,
    job_id_of,
    run_id_problem,
)

NOW = datetime.datetime(2026, 12, 2, 17, 29, 5)


def test_a_new_run_id_is_the_utc_time_and_4_hex_outside_awx():
    assert choose_run_id(None, None, now=NOW, token='beef') == '20261202T172905Z-beef'
    assert choose_run_id('', None, now=NOW, token='beef') == '20261202T172905Z-beef'
    assert choose_run_id('  ', None, now=NOW, token='beef') == '20261202T172905Z-beef'


def test_an_aware_time_is_written_in_utc():
    cet = datetime.timezone(datetime.timedelta(hours=1))
    assert choose_run_id(None, None, now=datetime.datetime(2026, 12, 2, 18, 0, tzinfo=cet), token='0001') == \
        '20261202T170000Z-0001'


def test_under_awx_a_new_run_id_carries_the_job_id():
    assert choose_run_id(None, job_id_of(4711, 4711), now=NOW, token='beef') == '20261202T172905Z-awx4711'
    assert choose_run_id(None, job_id_of(tower_job_id='12'), now=NOW) == '20261202T172905Z-awx12'


def test_a_given_run_id_is_used_as_given_even_under_awx():
    assert choose_run_id('change-1234', '4711', now=NOW) == 'change-1234'
    assert choose_run_id(' change-1234 ', None) == 'change-1234'
    assert choose_run_id(7, None) == '7'


def test_random_new_run_ids_are_valid_and_differ():
    ids = {choose_run_id() for _attempt in range(50)}
    assert len(ids) > 1
    for run_id in ids:
        assert run_id_problem(run_id) is None
        assert re.match(r'^\d{8}T\d{6}Z-[0-9a-f]{4}$', run_id), run_id


@pytest.mark.parametrize('awx, tower, expected', [
    (None, None, None), ('', None, None), (None, '  ', None), (4711, None, '4711'), ('4711', 4711, '4711'),
    (None, '0042', '42'),
])
def test_the_job_id_comes_from_either_extra_var(awx, tower, expected):
    assert job_id_of(awx, tower) == expected


@pytest.mark.parametrize('awx, tower, message', [
    ('../x', None, 'awx_job_id must be the number'),
    (True, None, 'awx_job_id must be the number'),
    (None, 1.5, 'tower_job_id must be the number'),
    (None, '-3', 'tower_job_id must be the number'),
    (None, '1' * 19, 'tower_job_id must be the number'),
    (1, 2, 'disagree'),
])
def test_a_job_id_that_is_no_job_number_is_refused(awx, tower, message):
    with pytest.raises(ValueError, match=message):
        job_id_of(awx, tower)
    with pytest.raises(AnsibleFilterError, match=message):
        rollout_choose_run_id(None, awx_job_id=awx, tower_job_id=tower)


@pytest.mark.parametrize('given', ['../../etc', 'a/b', '-rf', 'a' * 65, True, ['x'], {'a': 1}])
def test_a_bad_given_run_id_is_refused_naming_the_variable(given):
    with pytest.raises(ValueError, match='noreboot_xen_run_id'):
        choose_run_id(given, None)
    with pytest.raises(AnsibleFilterError, match='noreboot_xen_run_id'):
        rollout_choose_run_id(given, awx_job_id=5)


def test_the_filter_uses_the_awx_job_id_for_a_new_run_id():
    run_id = rollout_choose_run_id(None, awx_job_id=99, tower_job_id=99)
    assert re.match(r'^\d{8}T\d{6}Z-awx99$', run_id), run_id
    assert rollout_choose_run_id('mine', awx_job_id=99) == 'mine'
