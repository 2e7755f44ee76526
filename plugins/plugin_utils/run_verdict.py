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


def rolling_verdict(summary, reboot_failures=()):
    """Why the rolling live patch failed (it stopped itself, hosts are held or need attention, reboot hosts
    are not accounted for), or '' when it did not. ``summary``: rollout_summary's output; ``reboot_failures``:
    the rows of reboot_wave_gate.failures for its reboot hosts."""
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
    return ''.join(parts).strip()


def reboot_fallback_verdict(gate, failures=()):
    """Why the reboot fallback failed (the gate stopped it, or hosts failed), or '' when it did not."""
    gate = gate or {}
    stopped = not gate.get('proceed', True)
    if not stopped and not failures:
        return ''
    what = ('stopped: %s' % gate.get('reason')) if stopped else 'did not succeed everywhere'
    return ('The reboot fallback %s. %s' % (what, failure_rows(failures))).strip()
