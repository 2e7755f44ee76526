# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn per-host decisions into canaries and waves (pure Python, deterministic).

* Groups: live-patch hosts grouped by (hypervisor build-id, hardware class).
* Canary waves: one host per group, the first by host name whose failure domain still has
  room in the wave (a host the operator released from ``held``, ``retry_failed`` true, goes
  before the others of its group: it is the canary again); a group whose hosts all sit in full
  domains waits for the next canary wave. At most ``max_canaries_per_wave`` canaries a wave
  (default 5; 0 or None: no cap): 20 build/hardware groups give 4 canary waves of 5, not one of 20.
* Live-patch waves: the other live-patch hosts, taken round-robin over the groups (so early
  waves sample every group), in waves sized by ``wave_sizes`` like Ansible's ``serial``: an
  integer is a host count, ``"N%"`` a share of all live-patch hosts (rounded down, at least
  1), the last size repeats; ``"100%"`` means the rest.
* Reboot waves: the reboot hosts, after all live-patch waves. The first reboot wave(s) are
  canaries (``canary: true``): one host per reboot group, (the fixed build-ids it is to boot
  into, hardware class), chosen as the live patch canaries are; the other reboot hosts follow,
  by name, in waves sized by ``reboot_wave_sizes``. A fixed build that does not boot on a kind
  of hardware is then met on one host, not on a wave of them.
* Every wave respects ``max_per_domain``: at most that many hosts (``"50%"``: that share of
  the domain's hosts in the whole input, rounded down, at least 1) of one failure domain.
  Hosts without a failure domain share the domain ``unassigned``. A host the cap keeps out
  of a wave goes to the next wave of the same kind.

Same input, same plan: everything is sorted by host name and group key; nothing is random.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

DEFAULT_WAVE_SIZES = (1, '5%', '25%', '100%')
DEFAULT_MAX_PER_DOMAIN = '50%'
# Canaries of one wave: a canary wave tries a payload on one host per build/hardware group at once;
# more groups than this wait for the next canary wave.
DEFAULT_MAX_CANARIES_PER_WAVE = 5
UNASSIGNED_DOMAIN = 'unassigned'

CANARY = 'canary'
LIVEPATCH = 'livepatch'
REBOOT = 'reboot'

_PCT_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*%\s*$')
POLICY_KEYS = ('wave_sizes', 'reboot_wave_sizes', 'max_per_domain', 'max_canaries_per_wave')


class PolicyError(ValueError):
    """The wave policy is malformed; the message says which key and how to fix it."""


def _check_size(value, where):
    if isinstance(value, bool):
        raise PolicyError('%s: %r is not a wave size; use a host count like 1 or a share like "25%%"' % (where, value))
    if isinstance(value, int):
        if value < 1:
            raise PolicyError('%s: %d hosts per wave cannot make progress; use 1 or more' % (where, value))
        return value
    if isinstance(value, str):
        if value.strip().isdigit():
            return _check_size(int(value), where)
        match = _PCT_RE.match(value)
        if match and 0 < float(match.group(1)) <= 100:
            return '%s%%' % match.group(1)
    raise PolicyError('%s: %r is not a wave size; use a host count like 1 or a share like "25%%" (0-100]' % (where, value))


def normalize_policy(policy=None):
    """Fill defaults and check the policy; return a new dict or raise PolicyError."""
    policy = dict(policy or {})
    unknown = sorted(set(policy) - set(POLICY_KEYS))
    if unknown:
        raise PolicyError('policy: unknown key(s) %s; allowed: %s' % (', '.join(unknown), ', '.join(POLICY_KEYS)))
    sizes = policy.get('wave_sizes')
    sizes = list(DEFAULT_WAVE_SIZES) if sizes is None else sizes
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise PolicyError('policy.wave_sizes must be a non-empty list such as [1, "5%%", "25%%", "100%%"]')
    sizes = [_check_size(v, 'policy.wave_sizes[%d]' % i) for i, v in enumerate(sizes)]
    reboot = policy.get('reboot_wave_sizes')
    if reboot is None:
        reboot = list(sizes)
    elif not isinstance(reboot, (list, tuple)) or not reboot:
        raise PolicyError('policy.reboot_wave_sizes must be a non-empty list such as [1, "10%%", "25%%"] or null')
    reboot = [_check_size(v, 'policy.reboot_wave_sizes[%d]' % i) for i, v in enumerate(reboot)]
    cap = policy.get('max_per_domain', DEFAULT_MAX_PER_DOMAIN)
    if cap is not None:
        cap = _check_size(cap, 'policy.max_per_domain')
    canaries = policy.get('max_canaries_per_wave', DEFAULT_MAX_CANARIES_PER_WAVE)
    if canaries in (0, '0'):
        canaries = None  # 0: no cap, as the fleet_plan module option says
    if canaries is not None:
        canaries = _check_size(canaries, 'policy.max_canaries_per_wave')
        if not isinstance(canaries, int):
            raise PolicyError('policy.max_canaries_per_wave: %r is not a host count; use an integer like 5, or null for '
                              'no cap' % (canaries,))
    return dict(wave_sizes=sizes, reboot_wave_sizes=reboot, max_per_domain=cap, max_canaries_per_wave=canaries)


def size_of(spec, total):
    """Hosts in a wave of size ``spec`` out of ``total`` (Ansible ``serial`` rounding)."""
    if isinstance(spec, int):
        return spec
    share = float(spec.rstrip('%')) / 100.0
    return max(1, int(share * total))


def domain_of(decision):
    return decision.get('failure_domain') or UNASSIGNED_DOMAIN


def domain_caps(decisions, max_per_domain):
    """``{domain: max hosts per wave}`` (None when there is no cap)."""
    sizes = {}
    for decision in decisions:
        domain = domain_of(decision)
        sizes[domain] = sizes.get(domain, 0) + 1
    caps = {}
    for domain, size in sizes.items():
        caps[domain] = None if max_per_domain is None else min(size, size_of(max_per_domain, size))
    return caps, sizes


def group_key(decision):
    return (decision.get('build_id') or '', decision.get('hardware_class') or 'unknown')


def _fits(domain, used, caps):
    cap = caps.get(domain)
    return cap is None or used.get(domain, 0) < cap


def _canary_waves(groups, by_host, caps, max_canaries=None):
    pending = sorted(groups)
    waves = []
    canaries = {}
    while pending:
        used = {}
        wave = []
        waiting = []
        for key in pending:
            if max_canaries is not None and len(wave) >= max_canaries:
                waiting.append(key)
                continue
            chosen = None
            for host in groups[key]:
                if _fits(domain_of(by_host[host]), used, caps):
                    chosen = host
                    break
            if chosen is None:
                waiting.append(key)
                continue
            domain = domain_of(by_host[chosen])
            used[domain] = used.get(domain, 0) + 1
            wave.append(chosen)
            canaries[key] = chosen
        waves.append(wave)
        pending = waiting
    return waves, canaries


def reboot_group_key(decision):
    """A reboot host's canary group: (its fixed build-ids, joined, and its hardware class)."""
    fallback = decision.get('fallback') if isinstance(decision.get('fallback'), dict) else {}
    fixed = ','.join(sorted(str(b) for b in fallback.get('fixed_build_ids') or []))
    return (fixed, decision.get('hardware_class') or 'unknown')


def _reboot_waves(reboot, sizes, by_host, caps):
    """``(canary_waves, waves)`` of the reboot hosts: one canary per reboot group first."""
    groups = {}
    for host in reboot:
        groups.setdefault(reboot_group_key(by_host[host]), []).append(host)
    canary_waves, canaries = _canary_waves(groups, by_host, caps)
    chosen = set(canaries.values())
    rest = [host for host in reboot if host not in chosen]
    return canary_waves, _sized_waves(rest, sizes, len(reboot), by_host, caps)


def _round_robin(groups, skip):
    queues = [[h for h in groups[key] if h not in skip] for key in sorted(groups)]
    longest = max([len(q) for q in queues] or [0])
    return [queue[index] for index in range(longest) for queue in queues if index < len(queue)]


def _sized_waves(order, sizes, total, by_host, caps):
    remaining = list(order)
    waves = []
    while remaining:
        target = size_of(sizes[min(len(waves), len(sizes) - 1)], total)
        used = {}
        wave = []
        rest = []
        for host in remaining:
            domain = domain_of(by_host[host])
            if len(wave) < target and _fits(domain, used, caps):
                wave.append(host)
                used[domain] = used.get(domain, 0) + 1
            else:
                rest.append(host)
        waves.append(wave)
        remaining = rest
    return waves


def plan_waves(decisions, policy=None):
    """Return ``dict(policy, groups, waves, domains)`` for a list of host decisions.

    ``decisions`` are the dicts of plan_decision.decide_host (keys used: host, decision,
    build_id, hardware_class, failure_domain). Waves are numbered from 1 in run order.
    """
    policy = normalize_policy(policy)
    by_host = dict((d['host'], d) for d in decisions)
    caps, domain_sizes = domain_caps(decisions, policy['max_per_domain'])
    live = sorted(d['host'] for d in decisions if d['decision'] == LIVEPATCH)
    reboot = sorted(d['host'] for d in decisions if d['decision'] == REBOOT)
    groups = {}
    for host in live:
        groups.setdefault(group_key(by_host[host]), []).append(host)
    for key in groups:
        # A host released after a failure is its group's canary again (sort is stable: then by name).
        groups[key].sort(key=lambda name: not by_host[name].get('retry_failed'))
    canary_waves, canaries = _canary_waves(groups, by_host, caps, policy['max_canaries_per_wave'])
    rest = _round_robin(groups, set(canaries.values()))
    live_waves = _sized_waves(rest, policy['wave_sizes'], len(live), by_host, caps)
    reboot_canary_waves, reboot_waves = _reboot_waves(reboot, policy['reboot_wave_sizes'], by_host, caps)

    waves = []
    for kind, hosts_lists in ((CANARY, canary_waves), (LIVEPATCH, live_waves),
                              (REBOOT, reboot_canary_waves + reboot_waves)):
        for index, hosts in enumerate(hosts_lists):
            per_domain = {}
            for host in hosts:
                domain = domain_of(by_host[host])
                per_domain[domain] = per_domain.get(domain, 0) + 1
            waves.append(dict(number=len(waves) + 1, kind=kind, hosts=sorted(hosts), size=len(hosts),
                              per_domain=dict(sorted(per_domain.items()))))
            if kind == REBOOT:
                waves[-1]['canary'] = index < len(reboot_canary_waves)
    wave_of = {}
    for wave in waves:
        for host in wave['hosts']:
            wave_of[host] = wave['number']
    group_list = []
    for key in sorted(groups):
        group_list.append(dict(build_id=key[0] or None, hardware_class=key[1], hosts=groups[key],
                               size=len(groups[key]), canary=canaries[key], canary_wave=wave_of[canaries[key]]))
    domains = []
    for domain in sorted(domain_sizes):
        domains.append(dict(name=domain, hosts=domain_sizes[domain], max_per_wave=caps[domain]))
    return dict(policy=policy, groups=group_list, waves=waves, wave_of=wave_of, domains=domains)
