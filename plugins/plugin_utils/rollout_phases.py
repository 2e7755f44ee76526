# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan's waves as the playbooks run them (pure Python, controller side).

A rolling run has two phases, each one play whose ``serial`` batches are the plan's waves:
the live patch phase (the plan's canary and live patch waves, in order) and the reboot phase
(its reboot waves). ``phase`` gives a play what it needs (the hosts in plan order, for an
``add_host`` group, and the wave sizes, for ``serial``); ``batch_wave`` says which wave a batch
of that play is. So the number of waves comes from the plan alone.

Also here, said once for every playbook: how detection went on a host (``detection_record``),
the hosts that need a reboot (``reboot_hosts``), the refusal when they do and
``noreboot_xen_reboot_ok`` is unset (``reboot_ok_unset_message``), and a wave's start or end
time (``mark_wave_time``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

LIVE = 'live'
REBOOT = 'reboot'
PHASE_KINDS = {LIVE: ('canary', 'livepatch'), REBOOT: ('reboot',)}
WAVE_EVENTS = ('start', 'end')


def _plan_waves(plan):
    if not isinstance(plan, dict) or not isinstance(plan.get('waves'), list):
        raise ValueError('expected the plan of noreboot.xen.fleet_plan (a mapping with a "waves" list), got %s'
                         % type(plan).__name__)
    return plan['waves']


def _kinds(phase):
    try:
        return PHASE_KINDS[phase]
    except (KeyError, TypeError):
        raise ValueError('unknown phase %r: expected one of %s' % (phase, ', '.join(sorted(PHASE_KINDS))))


def phase_waves(plan, phase):
    """The plan's waves of ``phase`` (``live``: canary and live patch waves; ``reboot``: reboot
    waves), in plan order, without empty waves."""
    kinds = _kinds(phase)
    return [w for w in _plan_waves(plan) if w.get('kind') in kinds and w.get('hosts')]


def phase(plan, name):
    """What the play of phase ``name`` runs: ``{'phase', 'hosts', 'sizes', 'canaries', 'waves'}`` with
    ``hosts`` every host of the phase's waves in plan order, ``sizes`` the waves' sizes (the play's
    ``serial``: its batches are then exactly the waves), ``canaries`` the hosts of canary waves and
    ``waves`` the number of waves. A host in two waves of a phase is refused (the batches would not
    be the waves)."""
    hosts = []
    seen = set()
    sizes = []
    canaries = []
    waves = phase_waves(plan, name)
    for wave in waves:
        for host in wave['hosts']:
            if host in seen:
                raise ValueError('host %s is in more than one %s wave of the plan (wave %s): a plan from '
                                 'noreboot.xen.fleet_plan puts each host in one wave' % (host, name, wave.get('number')))
            seen.add(host)
            hosts.append(host)
            if wave.get('kind') == 'canary':
                canaries.append(host)
        sizes.append(len(wave['hosts']))
    return dict(phase=name, hosts=hosts, sizes=sizes, canaries=canaries, waves=len(waves))


def batch_wave(plan, name, batch):
    """The wave of phase ``name`` that a serial batch of the phase's play is: ``{'number', 'label',
    'kind', 'index', 'of', 'hosts'}`` (``label`` ``wave_<number>``, ``index`` its position in the phase
    from 1, ``of`` the phase's wave count). ``batch``: the batch's hosts (``ansible_play_batch``; hosts
    lost earlier may be missing from it). Every host of the batch must be in that one wave."""
    batch = list(batch or [])
    if not batch:
        raise ValueError('empty batch: expected the hosts of the running batch (ansible_play_batch)')
    waves = phase_waves(plan, name)
    for index, wave in enumerate(waves, 1):
        if batch[0] in wave['hosts']:
            strays = [h for h in batch if h not in wave['hosts']]
            if strays:
                raise ValueError('the batch %s is not one %s wave of the plan: %s not in wave %s (the play\'s '
                                 'serial must be the phase\'s wave sizes)' % (', '.join(batch), name,
                                                                              ', '.join(strays), wave.get('number')))
            return dict(number=wave['number'], label='wave_%s' % wave['number'], kind=wave.get('kind'),
                        index=index, of=len(waves), hosts=list(wave['hosts']))
    raise ValueError('host %s is in no %s wave of the plan' % (batch[0], name))


def reboot_hosts(plan):
    """Every host of the plan's reboot waves, sorted."""
    return sorted(h for w in phase_waves(plan, REBOOT) for h in w['hosts'])


def mark_wave_time(times, label, event, now):
    """``times`` (label -> ``{'start', 'end'}``) with ``event`` (``start`` or ``end``) of wave ``label``
    set to ``now``; a start begins the wave's entry afresh, an end keeps its start."""
    if event not in WAVE_EVENTS:
        raise ValueError('unknown wave event %r: expected start or end' % (event,))
    result = dict((k, dict(v) if isinstance(v, dict) else v) for k, v in (times or {}).items())
    entry = result.get(label) if (event == 'end' and isinstance(result.get(label), dict)) else {}
    entry[event] = now
    result[label] = entry
    return result


def detection_record(result):
    """How detection (noreboot.xen.xen_facts, registered with ignore_errors and ignore_unreachable)
    went on a host: ``{'unreachable': bool, 'error': str or None}``; ``error`` says why detection
    failed or could not reach the host (the result's message)."""
    result = result if isinstance(result, dict) else {}
    unreachable = bool(result.get('unreachable'))
    failed = bool(result.get('failed'))
    error = None
    if failed or unreachable:
        error = result.get('msg') or 'detection failed'
    return dict(unreachable=unreachable, error=error)


def reboot_ok_unset_message(hosts, live_patch_others=False, reasons=None):
    """The refusal when hosts need a reboot and ``noreboot_xen_reboot_ok`` is not set: names them and
    the two choices. ``live_patch_others``: the run live patches the other hosts (rolling_livepatch);
    ``reasons``: host -> why the plan sends it to a reboot, shown after its name."""
    reasons = reasons or {}
    hosts = ['%s (%s)' % (h, reasons[h]) if reasons.get(h) else h for h in sorted(hosts or [])]
    others = 'live patch the others and then ' if live_patch_others else ''
    only = 'live patch the others and ' if live_patch_others else ''
    return ('%d host(s) need a reboot to get the fix (no live patch fits them, their hypervisor cannot live patch, '
            'or it was forced): %s. noreboot_xen_reboot_ok is not set. Set -e noreboot_xen_reboot_ok=true to %s'
            'install the fixed hypervisor on these and reboot them in waves (their guests saved or migrated), or '
            '-e noreboot_xen_reboot_ok=false to %sonly report these. Nothing was changed.'
            % (len(hosts), ', '.join(hosts), others, only))
