# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the inventory report: one summary per host, its one-line form, the fleet summary.

Documentation: xen_host_summary.yml, xen_host_line.yml, xen_fleet_summary.yml next to this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence

STATUS_OK = 'ok'
STATUS_UNREACHABLE = 'unreachable'
STATUS_FAILED = 'failed'
UNKNOWN = 'unknown'


def _get(data, *path):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def xen_host_summary(result, host):
    """Reduce the registered result of ``noreboot.xen.xen_facts`` to what the report shows."""
    if not isinstance(result, dict):
        raise AnsibleFilterError('xen_host_summary expects the registered result of noreboot.xen.xen_facts, got %r'
                                 % type(result).__name__)
    if not isinstance(host, str):
        raise AnsibleFilterError('xen_host_summary expects the inventory host name as its argument')
    summary = dict(host=host, status=STATUS_OK, msg=None, present=False, reason=None, version=None,
                   effective_version=None, build_id=None, hardware_class=None, generation=None,
                   livepatch_supported=False, livepatch_reason_kind=None, applied=[], guests=0,
                   unfinished_reboot=False, guests_not_back=[])
    facts = _get(result, 'ansible_facts', 'xen')
    if result.get('unreachable'):
        summary.update(status=STATUS_UNREACHABLE, msg=result.get('msg'))
        return summary
    if result.get('failed') or not isinstance(facts, dict):
        summary.update(status=STATUS_FAILED, msg=result.get('msg') or 'noreboot.xen.xen_facts returned no xen facts')
        return summary
    payloads = _get(facts, 'livepatch', 'payloads') or []
    summary.update(
        present=bool(facts.get('present')),
        reason=facts.get('reason'),
        version=_get(facts, 'hypervisor', 'version'),
        effective_version=facts.get('effective_version'),
        build_id=_get(facts, 'hypervisor', 'build_id'),
        hardware_class=_get(facts, 'hardware', 'class'),
        generation=_get(facts, 'hardware', 'generation'),
        livepatch_supported=bool(_get(facts, 'livepatch', 'supported')),
        livepatch_reason_kind=_get(facts, 'livepatch', 'reason_kind'),
        applied=[p.get('name') for p in payloads if p.get('state') == 'APPLIED'],
        guests=len([d for d in facts.get('domains') or [] if d.get('id') != 0]),
    )
    evacuation = facts.get('evacuation')
    if isinstance(evacuation, dict) and evacuation.get('unfinished'):
        # An earlier reboot fallback run did not finish here: the guests it moved are not back.
        summary.update(unfinished_reboot=True,
                       guests_not_back=[_not_back(g) for g in evacuation.get('guests') or [] if isinstance(g, dict)])
    return summary


def _not_back(guest):
    """``web1@/var/lib/noreboot-xen/saved-guests/web1.save`` (saved), ``db1@dom0-b`` (migrated),
    ``app1@/etc/xen/app1.cfg`` (shut down): the guest and where it is, in one word."""
    where = guest.get('file') or guest.get('peer') or guest.get('config') or guest.get('state') or 'unknown'
    return '%s@%s' % (guest.get('name'), where)


def _show(value):
    if value is None or value == '':
        return '-'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return str(value)


def xen_host_line(summary):
    """One line per host, ``key=value`` words, ``-`` for unknown values."""
    if not isinstance(summary, dict) or 'host' not in summary:
        raise AnsibleFilterError('xen_host_line expects the output of noreboot.xen.xen_host_summary')
    if summary['status'] != STATUS_OK:
        return '%s: %s %s' % (summary['host'], summary['status'].upper(), _show(summary.get('msg')))
    livepatch = _show(summary['livepatch_supported'])
    if not summary['livepatch_supported'] and summary.get('livepatch_reason_kind'):
        livepatch += '(%s)' % summary['livepatch_reason_kind']
    words = [
        'present=%s' % _show(summary['present']),
        'version=%s' % _show(summary['version']),
        'effective=%s' % _show(summary['effective_version']),
        'build_id=%s' % _show(summary['build_id']),
        'class=%s' % _show(summary['hardware_class']),
        'livepatch=%s' % livepatch,
        'applied=%s' % (','.join(summary['applied']) or '-'),
        'guests=%d' % summary['guests'],
    ]
    if summary.get('unfinished_reboot'):
        words.append('unfinished_reboot=yes')
        words.append('not_back=%s' % (','.join(summary.get('guests_not_back') or []) or '-'))
    if not summary['present']:
        words.append('reason=%s' % _show(summary['reason']))
    return '%s: %s' % (summary['host'], ' '.join(words))


def xen_fleet_summary(summaries):
    """Count and group the host summaries of one report run."""
    if not is_sequence(summaries) or not all(isinstance(s, dict) and 'host' in s for s in summaries):
        raise AnsibleFilterError('xen_fleet_summary expects a list of noreboot.xen.xen_host_summary results')
    fleet = dict(hosts_total=len(summaries), hosts_present=0, hosts_not_present=0, hosts_unreachable=0,
                 hosts_failed=0, livepatch_supported=0, by_build_class={}, by_effective_version={},
                 applied_payloads={}, hosts={}, unfinished_reboots={})
    for summary in sorted(summaries, key=lambda s: s['host']):
        host = summary['host']
        fleet['hosts'][host] = summary
        if summary.get('unfinished_reboot'):
            fleet['unfinished_reboots'][host] = list(summary.get('guests_not_back') or [])
        if summary['status'] == STATUS_UNREACHABLE:
            fleet['hosts_unreachable'] += 1
            continue
        if summary['status'] == STATUS_FAILED:
            fleet['hosts_failed'] += 1
            continue
        if not summary['present']:
            fleet['hosts_not_present'] += 1
            continue
        fleet['hosts_present'] += 1
        if summary['livepatch_supported']:
            fleet['livepatch_supported'] += 1
        fleet['applied_payloads'][host] = list(summary['applied'])
        by_class = fleet['by_build_class'].setdefault(summary['build_id'] or UNKNOWN, {})
        group = by_class.setdefault(summary['hardware_class'] or UNKNOWN,
                                    dict(count=0, version=summary['version'], hosts=[]))
        group['count'] += 1
        group['hosts'].append(host)
        effective = summary['effective_version'] or UNKNOWN
        fleet['by_effective_version'][effective] = fleet['by_effective_version'].get(effective, 0) + 1
    return fleet


class FilterModule(object):
    def filters(self):
        return {
            'xen_host_summary': xen_host_summary,
            'xen_host_line': xen_host_line,
            'xen_fleet_summary': xen_fleet_summary,
        }
