# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Payloads that expire: ``apply_until`` per payload and ``livepatch_end_of_life`` per base build send
the host to the reboot fallback once the given time is reached (the caller's ``now``, never a clock read)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest
import yaml

from ansible_collections.noreboot.xen.plugins.module_utils import advisory_manifest as am
from ansible_collections.noreboot.xen.plugins.module_utils import fleet_plan_builder as fpb
from ansible_collections.noreboot.xen.plugins.module_utils import plan_decision as pd
from ansible_collections.noreboot.xen.plugins.module_utils import utc_timestamp

from test_plan_decision import XEN_4175, XEN_4176, advisory, facts

UTC = datetime.timezone.utc
UNTIL = datetime.datetime(2027, 1, 31, 0, 0, tzinfo=UTC)
SECOND = datetime.timedelta(seconds=1)
MANIFEST = '/srv/advisories/XSA-999.yml'


def expiring(apply_until=None, end_of_life=None):
    """The test advisory with apply_until on the 4.17.5 payload and/or an end-of-life list."""
    base = advisory()
    livepatches = [dict((k, v) for k, v in lp.items() if k in am.LIVEPATCH_KEYS and v is not None and v != {})
                   for lp in base['livepatches']]
    if apply_until is not None:
        livepatches[0]['apply_until'] = apply_until
    changes = dict(livepatches=livepatches)
    if end_of_life is not None:
        changes['livepatch_end_of_life'] = end_of_life
    return advisory(**changes)


def decide(adv, now, xen=None):
    return pd.decide_host('h1', dict(xen=xen or facts()), [adv], now=now)


@pytest.mark.parametrize('value, expected', [
    ('2027-01-31T00:00:00Z', '2027-01-31T00:00:00Z'),
    ('2027-01-31t00:00z', '2027-01-31T00:00:00Z'),
    ('2027-01-31T01:00:00+01:00', '2027-01-31T00:00:00Z'),
    ('2027-01-30T18:30:00-0530', '2027-01-31T00:00:00Z'),
    ('2027-01-31 00:00:00.25Z', '2027-01-31T00:00:00.250000Z'),
    ('2027-01-31', '2027-01-31T00:00:00Z'),
    (datetime.date(2027, 1, 31), '2027-01-31T00:00:00Z'),
    (datetime.datetime(2027, 1, 31, 2, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))), '2027-01-31T00:00:00Z'),
], ids=['zulu', 'lower-case', 'plus-offset', 'minus-offset-no-colon', 'fraction', 'date-is-midnight-utc',
        'yaml-date', 'yaml-aware-datetime'])
def test_times_are_read_as_utc(value, expected):
    assert utc_timestamp.format_utc_timestamp(utc_timestamp.parse_utc_timestamp(value)) == expected


@pytest.mark.parametrize('value, words', [
    ('2027-01-31T00:00:00', 'has no time zone'),
    (datetime.datetime(2027, 1, 31, 0, 0), 'has no time zone'),
    ('2027-02-30', 'is not a valid time'),
    ('2027-01-31T25:00:00Z', 'is not a valid time'),
    ('next tuesday', 'is not an ISO 8601 time or date'),
    (20270131, 'is not a time'),
    (True, 'is not a time'),
], ids=['naive-string', 'naive-yaml-datetime', 'no-such-day', 'no-such-hour', 'words', 'number', 'boolean'])
def test_bad_times_are_refused(value, words):
    with pytest.raises(ValueError, match=words):
        utc_timestamp.parse_utc_timestamp(value)


def test_bad_times_in_a_manifest_name_the_file_the_field_and_the_fix():
    data = yaml.safe_load('''
schema: 1
id: XSA-999
title: example
affected: {hypervisors: {versions: [">=4.17.0,<4.17.7"]}}
livepatches:
  - {xen_build_id: "%s", file: p/a.livepatch, sha256: "%s", name: xsa999_4175, apply_until: 2027-01-31T12:00:00}
livepatch_end_of_life:
  - {xen_build_id: "%s", from: "soon"}
  - {xen_build_id: "%s"}
  - {xen_build_id: "%s", from: 2027-01-31, until: 2028-01-01}
fallback: {reboot: true, packages: {debian: {package: xen-hypervisor-4.17-amd64, version: "4.17.7-1"}}}
''' % (XEN_4175, 'a' * 64, XEN_4175, XEN_4176, XEN_4175))
    with pytest.raises(am.AdvisoryManifestError) as caught:
        am.validate_manifest(data, MANIFEST, check_payload_files=False)
    problems = dict((p.path, p) for p in caught.value.problems)
    assert sorted(problems) == ['livepatch_end_of_life[0].from', 'livepatch_end_of_life[1].from',
                                'livepatch_end_of_life[2].until', 'livepatch_end_of_life[2].xen_build_id',
                                'livepatches[0].apply_until']
    message = str(caught.value)
    assert '%s: livepatches[0].apply_until: 2027-01-31T12:00:00 has no time zone (fix: write an ISO 8601 UTC time' % MANIFEST in message
    assert "%s: livepatch_end_of_life[0].from: 'soon' is not an ISO 8601 time or date" % MANIFEST in message
    assert 'a time without Z or an offset is refused' in problems['livepatches[0].apply_until'].fix
    assert 'missing from' in problems['livepatch_end_of_life[1].from'].problem
    assert 'also given by livepatch_end_of_life[0]' in problems['livepatch_end_of_life[2].xen_build_id'].problem


def test_end_of_life_must_be_a_list():
    with pytest.raises(am.AdvisoryManifestError, match=r'livepatch_end_of_life: livepatch_end_of_life must be a list'):
        advisory(livepatch_end_of_life={XEN_4175: '2027-01-31'})


def test_normalized_times_are_utc_strings():
    adv = expiring(apply_until='2027-01-31T01:00:00+01:00',
                   end_of_life=[{'xen_build_id': XEN_4176.upper(), 'from': datetime.date(2027, 3, 1)}])
    assert adv['livepatches'][0]['apply_until'] == '2027-01-31T00:00:00Z'
    assert adv['livepatches'][1]['apply_until'] is None
    assert adv['livepatch_end_of_life'] == {XEN_4176: '2027-03-01T00:00:00Z'}


@pytest.mark.parametrize('now, decision', [
    (UNTIL - SECOND, 'livepatch'),
    (UNTIL, 'reboot'),
    (UNTIL + SECOND, 'reboot'),
    (UNTIL.astimezone(datetime.timezone(datetime.timedelta(hours=-8))) - SECOND, 'livepatch'),
    (UNTIL.astimezone(datetime.timezone(datetime.timedelta(hours=-8))), 'reboot'),
], ids=['before', 'exactly-at', 'after', 'before-in-another-zone', 'at-in-another-zone'])
def test_apply_until_is_exclusive(now, decision):
    result = decide(expiring(apply_until='2027-01-31T00:00:00Z'), now)
    assert result['decision'] == decision
    if decision == 'reboot':
        assert result['reason'].endswith('payload xsa999_4175 expired at 2027-01-31T00:00:00Z (apply_until): '
                                         'the reboot fallback instead')
        assert result['fallback']['packages']['debian'][0]['package'] == 'xen-hypervisor-4.17-amd64'
        assert result['advisories'][0]['expired'] == dict(
            kind='apply_until', at='2027-01-31T00:00:00Z', reason='payload xsa999_4175 expired at 2027-01-31T00:00:00Z (apply_until)')
        assert result['payloads'] == []
    else:
        assert [p['name'] for p in result['payloads']] == ['xsa999_4175']


def test_apply_until_of_another_build_leaves_this_host_alone():
    adv = expiring(apply_until='2027-01-31')
    result = decide(adv, UNTIL + SECOND, xen=facts(version='4.17.6', build_id=XEN_4176))
    assert result['decision'] == 'livepatch' and result['payloads'][0]['name'] == 'xsa999_4176'


@pytest.mark.parametrize('now, decision', [(UNTIL - SECOND, 'livepatch'), (UNTIL, 'reboot'), (UNTIL + SECOND, 'reboot')],
                         ids=['before', 'exactly-at', 'after'])
def test_end_of_life_build_gets_the_reboot_fallback(now, decision):
    adv = expiring(end_of_life=[{'xen_build_id': XEN_4175, 'from': '2027-01-31T00:00:00Z'}])
    result = decide(adv, now)
    assert result['decision'] == decision
    if decision == 'reboot':
        assert ('build %s is no longer live patched since 2027-01-31T00:00:00Z (livepatch_end_of_life of %s)'
                % (XEN_4175, MANIFEST)) in result['reason']
        assert result['advisories'][0]['expired']['kind'] == 'end_of_life'
    # The other build is not at its end of life.
    other = decide(adv, now, xen=facts(version='4.17.6', build_id=XEN_4176))
    assert other['decision'] == 'livepatch'


def test_payload_not_expired_but_its_base_build_at_end_of_life():
    adv = expiring(apply_until='2028-01-01', end_of_life=[{'xen_build_id': XEN_4175, 'from': '2027-01-31'}])
    result = decide(adv, UNTIL + SECOND)
    assert result['decision'] == 'reboot'
    assert 'no longer live patched since 2027-01-31T00:00:00Z' in result['reason']
    assert 'expired at' not in result['reason']


def test_end_of_life_build_without_a_payload_is_still_the_plain_reboot():
    adv = expiring(end_of_life=[{'xen_build_id': 'ee' * 20, 'from': '2027-01-31'}])
    result = decide(adv, UNTIL, xen=facts(build_id='ee' * 20))
    assert result['decision'] == 'reboot' and result['reason'].endswith('no payload for build-id ' + 'ee' * 20)


def test_expiry_stops_applying_not_what_is_applied():
    applied = facts(payloads=[{'name': 'xsa999_4175', 'state': 'APPLIED', 'metadata': ''}])
    adv = expiring(apply_until='2027-01-31', end_of_life=[{'xen_build_id': XEN_4175, 'from': '2027-01-31'}])
    assert decide(adv, UNTIL + SECOND, xen=applied)['decision'] == 'already_patched'


def test_forced_reboot_of_an_expired_payload_says_it_expired():
    adv = expiring(apply_until='2027-01-31')
    result = pd.decide_host('h1', dict(xen=facts(), force_reboot=True), [adv], now=UNTIL)
    assert result['decision'] == 'reboot' and 'expired at 2027-01-31T00:00:00Z' in result['reason']


@pytest.mark.parametrize('now', [None, datetime.datetime(2027, 1, 31, 0, 0)], ids=['missing', 'naive'])
def test_expiry_needs_an_aware_now(now):
    with pytest.raises(ValueError, match='the current time is needed as an aware datetime'):
        decide(expiring(apply_until='2027-01-31'), now)


def test_advisory_without_expiry_needs_no_now():
    assert decide(advisory(), None)['decision'] == 'livepatch'


def test_build_plan_passes_now_and_puts_expired_hosts_in_a_reboot_wave():
    adv = expiring(apply_until='2027-01-31')
    hosts = dict(a={'xen': facts()}, b={'xen': facts(version='4.17.6', build_id=XEN_4176)})
    before = fpb.build_plan([adv], dict((k, dict(v)) for k, v in hosts.items()), now=UNTIL - SECOND)
    after = fpb.build_plan([adv], dict((k, dict(v)) for k, v in hosts.items()), now=UNTIL)
    assert (before['counts']['livepatch'], before['counts']['reboot']) == (2, 0)
    assert (after['counts']['livepatch'], after['counts']['reboot']) == (1, 1)
    assert [w['hosts'] for w in after['waves'] if w['kind'] == 'reboot'] == [['a']]
    assert after['advisories'][0]['livepatches'][0]['apply_until'] == '2027-01-31T00:00:00Z'


@pytest.mark.parametrize('apply_until, end_of_life, expected', [
    (None, None, None),
    ('2027-02-01T00:00:00Z', None, '2027-02-01T00:00:00Z'),
    (None, '2027-01-20', '2027-01-20T00:00:00Z'),
    ('2027-02-01T00:00:00Z', '2027-01-20', '2027-01-20T00:00:00Z'),
    ('2027-01-10T06:00:00+01:00', '2027-01-20', '2027-01-10T05:00:00Z'),
], ids=['none', 'apply-until', 'end-of-life', 'end-of-life-first', 'apply-until-first'])
def test_a_livepatch_decision_carries_the_deadline_the_rollout_checks_again(apply_until, end_of_life, expected):
    eol = [dict(xen_build_id=XEN_4175, **{'from': end_of_life})] if end_of_life else None
    decision = decide(expiring(apply_until, eol), datetime.datetime(2027, 1, 1, tzinfo=UTC))
    assert decision['decision'] == 'livepatch', decision['reason']
    [payload] = decision['payloads']
    assert payload['apply_until'] == expected
