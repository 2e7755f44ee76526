# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wave_plan: exact plans for small fleets, and properties over many generated fleets."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random

import pytest

from ansible_collections.noreboot.xen.plugins.module_utils import wave_plan as wp
from xen_builds import XEN_4175 as B1, XEN_4177 as B2


def host(name, decision='livepatch', build_id=B1, hw='intel-6-85', domain=None):
    return dict(host=name, decision=decision, build_id=build_id, hardware_class=hw, failure_domain=domain)


@pytest.mark.parametrize('policy, message', [
    ({'wave_size': [1]}, 'unknown key(s) wave_size'),
    ({'wave_sizes': []}, 'policy.wave_sizes must be a non-empty list'),
    ({'wave_sizes': [1, 0]}, 'policy.wave_sizes[1]: 0 hosts per wave cannot make progress'),
    ({'wave_sizes': ['0%']}, "policy.wave_sizes[0]: '0%' is not a wave size"),
    ({'wave_sizes': ['150%']}, "policy.wave_sizes[0]: '150%' is not a wave size"),
    ({'wave_sizes': [True]}, 'policy.wave_sizes[0]: True is not a wave size'),
    ({'reboot_wave_sizes': 'all'}, 'policy.reboot_wave_sizes must be a non-empty list'),
    ({'max_per_domain': 'half'}, "policy.max_per_domain: 'half' is not a wave size"),
])
def test_bad_policies_are_refused(policy, message):
    with pytest.raises(wp.PolicyError) as info:
        wp.normalize_policy(policy)
    assert message in str(info.value)


def test_policy_defaults():
    assert wp.normalize_policy(None) == dict(wave_sizes=[1, '5%', '25%', '100%'],
                                             reboot_wave_sizes=[1, '5%', '25%', '100%'], max_per_domain='50%',
                                             max_canaries_per_wave=5)
    assert wp.normalize_policy({'wave_sizes': ['2', ' 10 % '], 'max_per_domain': None}) == dict(
        wave_sizes=[2, '10%'], reboot_wave_sizes=[2, '10%'], max_per_domain=None, max_canaries_per_wave=5)


@pytest.mark.parametrize('spec, total, expected', [(1, 100, 1), ('5%', 100, 5), ('5%', 10, 1), ('25%', 10, 2),
                                                   ('100%', 7, 7), ('33.5%', 200, 67), (10, 3, 10)])
def test_size_of_rounds_like_ansible_serial(spec, total, expected):
    assert wp.size_of(spec, total) == expected


def test_small_fleet_exact_plan():
    decisions = [host('a%02d' % i, domain='r%d' % (i % 2)) for i in range(10)]
    decisions += [host('b1', build_id=B2, domain='r0'), host('b2', build_id=B2, hw='amd-25-1', domain='r1')]
    decisions += [host('z1', 'reboot', domain='r0'), host('z2', 'reboot', domain='r1'), host('n1', 'not_affected', domain='r0')]
    plan = wp.plan_waves(decisions)
    assert [(g['build_id'], g['hardware_class'], g['canary']) for g in plan['groups']] == [
        (B2, 'amd-25-1', 'b2'), (B2, 'intel-6-85', 'b1'), (B1, 'intel-6-85', 'a00')]
    assert [(w['kind'], w['hosts']) for w in plan['waves']] == [
        ('canary', ['a00', 'b1', 'b2']),
        ('livepatch', ['a01']),                 # 1
        ('livepatch', ['a02']),                 # 5% of 12 -> 1
        ('livepatch', ['a03', 'a04', 'a05']),   # 25% of 12 -> 3
        ('livepatch', ['a06', 'a07', 'a08', 'a09']),
        ('reboot', ['z1']),
        ('reboot', ['z2']),
    ]
    assert [d['name'] for d in plan['domains']] == ['r0', 'r1']
    assert plan['domains'][0] == dict(name='r0', hosts=8, max_per_wave=4)
    assert plan['wave_of']['b2'] == 1 and 'n1' not in plan['wave_of']


def test_first_reboot_wave_is_a_canary_per_fixed_build_and_hardware_class():
    fixed_a = {'fixed_build_ids': ['aa']}
    fixed_b = {'fixed_build_ids': ['bb']}
    decisions = [dict(host('r%d' % i, 'reboot', hw='intel-6-85'), fallback=fixed_a) for i in range(4)]
    decisions += [dict(host('s%d' % i, 'reboot', hw='amd-25-1'), fallback=fixed_a) for i in range(2)]
    decisions += [dict(host('t%d' % i, 'reboot', hw='intel-6-85'), fallback=fixed_b) for i in range(2)]
    plan = wp.plan_waves(decisions, {'reboot_wave_sizes': ['100%'], 'max_per_domain': None})
    assert [(w['hosts'], w['canary']) for w in plan['waves']] == [
        (['r0', 's0', 't0'], True),
        (['r1', 'r2', 'r3', 's1', 't1'], False)]


def test_domain_cap_splits_canaries_and_waves():
    # Three groups, all in one two-host domain: at most one host of it per wave (50% of 2).
    decisions = [host('a', hw='c1', domain='rack'), host('b', hw='c2', domain='rack'), host('c', hw='c3', domain='solo')]
    plan = wp.plan_waves(decisions, {'wave_sizes': ['100%']})
    assert [(w['kind'], w['hosts']) for w in plan['waves']] == [('canary', ['a', 'c']), ('canary', ['b'])]
    assert plan['domains'] == [dict(name='rack', hosts=2, max_per_wave=1), dict(name='solo', hosts=1, max_per_wave=1)]


def test_hosts_without_domain_share_one_and_no_cap_means_no_split():
    decisions = [host('h%d' % i) for i in range(9)]
    capped = wp.plan_waves(decisions, {'wave_sizes': ['100%']})
    assert [w['size'] for w in capped['waves']] == [1, 4, 4]
    assert capped['waves'][1]['per_domain'] == {'unassigned': 4}
    uncapped = wp.plan_waves(decisions, {'wave_sizes': ['100%'], 'max_per_domain': None})
    assert [w['size'] for w in uncapped['waves']] == [1, 8]


def test_later_waves_sample_every_group_round_robin():
    decisions = [host('a%d' % i, hw='c1') for i in range(4)] + [host('b%d' % i, hw='c2') for i in range(4)]
    plan = wp.plan_waves(decisions, {'wave_sizes': [2], 'max_per_domain': None})
    assert [w['hosts'] for w in plan['waves']] == [['a0', 'b0'], ['a1', 'b1'], ['a2', 'b2'], ['a3', 'b3']]


# ---------------------------------------------------------------------------------------------
# Properties over generated fleets

DECISION_WEIGHTS = [('livepatch', 6), ('reboot', 2), ('not_affected', 2), ('already_patched', 1),
                    ('unreachable', 1), ('undecided', 1), ('not_xen', 1)]


def generate_fleet(rng):
    size = rng.randint(0, 120)
    domains = ['rack-%d' % i for i in range(rng.randint(1, 6))] + [None]
    builds = ['%040x' % rng.getrandbits(160) for dummy in range(rng.randint(1, 3))]
    classes = ['intel-6-85', 'intel-6-106', 'amd-25-1']
    names = [choice for choice, weight in DECISION_WEIGHTS for dummy in range(weight)]
    return [host('host-%03d' % i, rng.choice(names), rng.choice(builds), rng.choice(classes), rng.choice(domains))
            for i in range(size)]


def generate_policy(rng):
    sizes = [rng.choice([1, 2, 3, '5%', '10%', '25%', '50%', '100%']) for dummy in range(rng.randint(1, 4))]
    return {'wave_sizes': sizes, 'max_per_domain': rng.choice(['25%', '50%', '100%', 1, 3, None])}


@pytest.mark.parametrize('seed', range(5))
def test_properties_over_generated_fleets(seed):
    rng = random.Random(seed)
    for dummy in range(60):
        decisions = generate_fleet(rng)
        policy = generate_policy(rng)
        plan = wp.plan_waves(decisions, policy)
        by_host = dict((d['host'], d) for d in decisions)
        live = set(d['host'] for d in decisions if d['decision'] == 'livepatch')
        reboot = set(d['host'] for d in decisions if d['decision'] == 'reboot')
        planned = [h for w in plan['waves'] for h in w['hosts']]
        # Every live-patch and reboot host in exactly one wave, nobody else.
        assert sorted(planned) == sorted(live | reboot)
        assert len(planned) == len(set(planned))
        kinds = [w['kind'] for w in plan['waves']]
        # Canaries first, reboots last; waves numbered in order; no empty wave.
        assert kinds == sorted(kinds, key=['canary', 'livepatch', 'reboot'].index)
        assert [w['number'] for w in plan['waves']] == list(range(1, len(plan['waves']) + 1))
        assert all(w['size'] == len(w['hosts']) > 0 for w in plan['waves'])
        for wave in plan['waves']:
            expected = set(live) if wave['kind'] != 'reboot' else reboot
            assert set(wave['hosts']) <= expected
        # Canaries: exactly one per (build-id, hardware class) group, from that group.
        groups = set(wp.group_key(by_host[h]) for h in live)
        canaries = [h for w in plan['waves'] if w['kind'] == 'canary' for h in w['hosts']]
        assert sorted(wp.group_key(by_host[h]) for h in canaries) == sorted(groups)
        assert [(g['build_id'] or '', g['hardware_class']) for g in plan['groups']] == sorted(groups)
        # Reboot canaries: exactly one per reboot group (fixed build-ids, hardware class), before the other reboot waves.
        reboot_canaries = [h for w in plan['waves'] if w['kind'] == 'reboot' and w['canary'] for h in w['hosts']]
        assert sorted(wp.reboot_group_key(by_host[h]) for h in reboot_canaries) == sorted(
            set(wp.reboot_group_key(by_host[h]) for h in reboot))
        flags = [w['canary'] for w in plan['waves'] if w['kind'] == 'reboot']
        assert flags == sorted(flags, reverse=True)
        # Domain cap in every wave.
        caps = dict((d['name'], d['max_per_wave']) for d in plan['domains'])
        for wave in plan['waves']:
            for domain, count in wave['per_domain'].items():
                assert caps[domain] is None or count <= caps[domain]
        # Wave sizes never above the policy's size for that wave.
        norm = wp.normalize_policy(policy)
        for kind, sizes, total in (('livepatch', norm['wave_sizes'], len(live)),
                                   ('reboot', norm['reboot_wave_sizes'], len(reboot))):
            waves = [w for w in plan['waves'] if w['kind'] == kind and not w.get('canary')]
            for index, wave in enumerate(waves):
                assert wave['size'] <= wp.size_of(sizes[min(index, len(sizes) - 1)], total)
        # Deterministic: the same input in another order gives the same plan.
        shuffled = list(decisions)
        rng.shuffle(shuffled)
        assert wp.plan_waves(shuffled, policy) == plan


def test_without_cap_the_waves_follow_the_policy_exactly():
    rng = random.Random(7)
    for dummy in range(30):
        decisions = [d for d in generate_fleet(rng) if d['decision'] != 'reboot']
        live = [d for d in decisions if d['decision'] == 'livepatch']
        plan = wp.plan_waves(decisions, {'wave_sizes': [1, '10%', '100%'], 'max_per_domain': None})
        canaries = sum(w['size'] for w in plan['waves'] if w['kind'] == 'canary')
        rest = len(live) - canaries
        expected = []
        for spec in (1, '10%', '100%'):
            if rest <= 0:
                break
            take = min(rest, wp.size_of(spec, len(live)))
            expected.append(take)
            rest -= take
        assert [w['size'] for w in plan['waves'] if w['kind'] == 'livepatch'] == expected
