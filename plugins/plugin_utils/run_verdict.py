# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a run failed, in words (pure Python, controller side): the last task of rolling_livepatch.yml and
reboot_fallback.yml fails the run with this message when it is not empty."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def failure_rows(failures):
    """``host - outcome - message`` of each failed reboot host, joined by `` | ``."""
    return ' | '.join(' - '.join('%s' % row.get(key) for key in ('host', 'outcome', 'msg')) for row in failures or [])


# Plan decisions of hosts that detection could not examine: nothing was done to them and whether they are
# exposed is unknown, so a run that met them has not fixed the fleet.
UNEXAMINED_DECISIONS = ('unreachable', 'undecided')


def unexamined_hosts(plan):
    """``[(host, decision, reason)]`` of the plan's hosts decided unreachable or undecided, sorted by host."""
    decisions = (plan or {}).get('decisions') or {}
    return [(host, decisions[host].get('decision'), decisions[host].get('reason'))
            for host in sorted(decisions) if (decisions[host] or {}).get('decision') in UNEXAMINED_DECISIONS]


def unexamined_verdict(plan, accepted=False):
    """Why a run fails because hosts could not be examined at detection, or '' (none, or the operator accepted
    them with noreboot_xen_unreachable_ok)."""
    hosts = unexamined_hosts(plan)
    if not hosts or accepted:
        return ''
    return ('Not examined, so not fixed and their state unknown (%d host(s) unreachable or undecided at detection): '
            '%s. Fix: bring them back (or repair detection) and run again - a rerun leaves the hosts already patched '
            'alone; or accept them in writing with noreboot_xen_unreachable_ok=true. '
            % (len(hosts), ' | '.join('%s - %s - %s' % row for row in hosts)))


def rolling_verdict(summary, reboot_failures=(), plan=None, unreachable_ok=False):
    """Why the rolling live patch failed (it stopped itself, hosts are held or need attention, reboot hosts
    are not accounted for, hosts could not be examined at detection), or '' when it did not. ``summary``:
    rollout_summary's output; ``reboot_failures``: the rows of reboot_wave_gate.failures for its reboot hosts;
    ``plan``: the run's plan (its unreachable and undecided hosts fail the run unless ``unreachable_ok``)."""
    parts = []
    if summary.get('stopped'):
        parts.append('The rolling live patch stopped: %s. ' % summary.get('stop_reason'))
    if summary.get('held'):
        parts.append('Held (a payload failed there or on its group before; release with noreboot_xen_retry_failed): '
                     '%s. ' % ', '.join(summary['held']))
    if summary.get('needs_attention'):
        parts.append('Needs attention (payload left APPLIED after failed checks): %s. '
                     % ', '.join(summary['needs_attention']))
    if reboot_failures:
        parts.append('Reboot hosts not accounted for: %s' % failure_rows(reboot_failures))
    parts.append(unexamined_verdict(plan, unreachable_ok))
    return ' '.join(part.strip() for part in parts if part.strip())


def reboot_fallback_verdict(gate, failures=(), plan=None, unreachable_ok=False):
    """Why the reboot fallback failed (the gate stopped it, hosts failed, hosts could not be examined at
    detection), or '' when it did not."""
    gate = gate or {}
    stopped = not gate.get('proceed', True)
    unexamined = unexamined_verdict(plan, unreachable_ok)
    if not stopped and not failures:
        return unexamined.strip()
    what = ('stopped: %s' % gate.get('reason')) if stopped else 'did not succeed everywhere'
    return ' '.join(part for part in ('The reboot fallback %s.' % what, failure_rows(failures), unexamined.strip()) if part)
