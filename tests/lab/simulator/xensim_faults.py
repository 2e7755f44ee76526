# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab faults (``state['faults']``): whether one fires for an attempt, and what follows the Nth
successful apply (guest crash, host unreachable, console lines).
"""

from xensim_state import dmesg


def take_fault(state, key, op, default_ops=('apply', 'revert', 'replace')):
    """Whether fault ``key`` fires for this attempt of ``op`` (first k attempts, or always).

    A fault is ``true`` (always), ``{"first": k}`` (the first k attempts) or ``{"always": true}``,
    optionally limited to some operations with ``"ops": [...]``.
    """
    fault = state['faults'].get(key)
    if not fault:
        return False
    if fault is True:
        fault = {'always': True}
    ops = fault.get('ops', default_ops)
    if ops is not None and op not in ops:
        return False
    counters = state['counters'].setdefault('faults', {})
    seen = counters.get(key, 0)
    counters[key] = seen + 1
    if fault.get('always'):
        return True
    return seen < int(fault.get('first', 1))


def after_apply_faults(state):
    """Health regressions and unreachability that follow the Nth successful apply."""
    count = state['counters']['applied_ok']
    crash = state['faults'].get('guest_crash_after_apply')
    if crash:
        if crash is True:
            crash = {}
        if count >= int(crash.get('after_applies', 1)):
            guests = [d for d in state['domains'] if d['id'] != 0]
            target = crash.get('domain') or (guests[0]['name'] if guests else None)
            for dom in list(state['domains']):
                if dom['name'] == target:
                    if crash.get('mode', 'crashed') == 'vanish':
                        state['domains'].remove(dom)
                    else:
                        dom['state'] = '----c-'
                    dmesg(state, 'd%d has crashed (lab fault guest_crash_after_apply)' % dom['id'])
    console_after_apply(state, count)
    gone = state['faults'].get('unreachable_after_applies')
    if gone and not state.get('unreachable_scheduled'):
        if isinstance(gone, int):
            gone = {'count': gone}
        if count >= int(gone.get('count', 1)):
            state['unreachable_scheduled'] = True
            state.setdefault('pending_host_actions', []).append(
                {'action': gone.get('how', 'link_down'), 'delay': float(gone.get('delay', 0.5))})
    if state['crashed']:
        pass


def console_after_apply(state, count):
    """Fault ``console_after_apply``: lines written to the console ring right after the Nth
    successful apply (``{"lines": [...], "after_applies": 1, "from": "guest"|"xen", "domain": NAME}``).

    From a guest (the default: its first guest, or ``domain``) a line reads ``(dN) TEXT``, as
    Xen prefixes what an HVM guest writes to port 0xE9 or a PV guest to its console; from
    ``xen`` it reads ``(XEN) TEXT``, as the hypervisor's own messages do.
    """
    console = state['faults'].get('console_after_apply')
    if not console or count != int(console.get('after_applies', 1)):
        return
    if console.get('from', 'guest') == 'xen':
        prefix = '(XEN) '
    else:
        guests = [d for d in state['domains'] if d['id'] != 0]
        wanted = console.get('domain') or (guests[0]['name'] if guests else None)
        domid = [d['id'] for d in guests if d['name'] == wanted]
        if not domid:
            return
        prefix = '(d%d) ' % domid[0]
    for line in console.get('lines') or []:
        state['dmesg'].append(prefix + line)
