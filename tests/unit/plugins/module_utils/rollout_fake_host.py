# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small stateful stand-in for one Xen dom0's ``xl`` and ``xen-livepatch`` (unit tests only).

It answers argv lists with the wording of real Xen 4.17 output (see /work/shared/reference and
tests/fixtures) and keeps the payload table, the guests and the console ring, so a test can
follow a whole transaction and assert the exact commands that ran.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from xen_builds import XEN_4175  # noqa: F401  (the fake dom0 runs 4.17.5; tests import it from here)
XL = '/usr/sbin/xl'
LP = '/usr/sbin/xen-livepatch'

XL_INFO = """host                   : dom0
release                : 6.1.0-50-amd64
machine                : x86_64
nr_cpus                : 2
xen_major              : 4
xen_minor              : 17
xen_extra              : {extra}
xen_version            : 4.17{extra}
xen_caps               : xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64
xen_changeset          :
build_id               : {build_id}
xend_config_format     : 4
"""

BOOT_DMESG = [
    '(XEN) Xen version 4.17.5 (Debian 4.17.5+72-g01140da4e8-1) (pkg-xen-devel@lists.alioth.debian.org) '
    '(x86_64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0) debug=n Mon Jul  7 09:02:33 UTC 2025',
    '(XEN) build-id: ' + XEN_4175,
    '(XEN) Command line: console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all noreboot',
    '(XEN) Brought up 2 CPUs',
]


class FakeHost(object):
    def __init__(self, build_id=XEN_4175, guests=(('web1', 1), ('db1', 2)), payloads=None):
        self.build_id = build_id
        self.extra = '.5'
        self.guests = [dict(name=n, id=i, state='-b----') for n, i in guests]
        self.payloads = list(payloads or [])  # dicts: name, state, metadata, effect
        self.dmesg = list(BOOT_DMESG)
        self.ran = []
        self.ebusy = {}           # verb -> how many times to answer rc 2 first
        self.on_apply = []        # callables(host) run after a successful apply
        self.staged_effect = {}   # name -> xen_extra set while applied
        self.fail_xl_info = False
        self.metadata = {}        # name -> metadata shown once uploaded

    # --- what the tools print ------------------------------------------------------------
    def _info(self):
        if self.fail_xl_info:
            return 1, '', 'libxl: error: cannot connect to hypervisor\n'
        return 0, XL_INFO.format(extra=self.extra, build_id=self.build_id), ''

    def _list_domains(self):
        out = ['Name                                        ID   Mem VCPUs\tState\tTime(s)',
               'Domain-0                                     0  1024     2     r-----      68.9']
        for guest in self.guests:
            out.append('%-40s %5d   512     1     %s       3.1' % (guest['name'], guest['id'], guest['state']))
        return 0, '\n'.join(out) + '\n', ''

    def _lp_list(self):
        if not self.payloads:
            return 0, 'Nothing to list\n', ''
        lines = [' ID                                     | status     | metadata',
                 '----------------------------------------+------------+---------------']
        for p in self.payloads:
            lines.append('%-40s| %s    | %s' % (p['name'], p['state'], p.get('metadata') or ''))
        return 0, '\n'.join(lines) + '\n', ''

    def row(self, name):
        for p in self.payloads:
            if p['name'] == name:
                return p
        return None

    def log(self, line):
        self.dmesg.append('(XEN) ' + line)

    # --- the run function runners get -----------------------------------------------------
    def run(self, argv):
        self.ran.append(list(argv))
        if argv[0] == XL:
            return {'info': self._info, 'list': self._list_domains,
                    'dmesg': lambda: (0, '\n'.join(self.dmesg) + '\n', '')}[argv[1]]()
        assert argv[0] == LP, argv
        verb = argv[1]
        if verb == 'list':
            return self._lp_list()
        if self.ebusy.get(verb):
            self.ebusy[verb] -= 1
            if verb in ('apply', 'revert', 'replace'):
                # What Xen 4.17 logs when the CPU rendezvous times out (reference/livepatch_ebusy_retry).
                self.log('livepatch: %s: Timed out on semaphore in IRQ quiesce phase 0/1' % argv[2])
                self.log('livepatch: %s finished %s with rc=-16' % (argv[2], verb.upper()))
            return 2, '%s %s failed\n' % (verb.capitalize(), argv[2]), 'Error 16: Device or resource busy\n'
        name = argv[2]
        row = self.row(name)
        if verb == 'upload':
            if row is not None:
                return 1, 'Uploading %s... failed\n' % argv[3], 'Error 17: File exists\n'
            self.payloads.append(dict(name=name, state='CHECKED', metadata=self.staged_metadata(name)))
            return 0, 'Uploading %s... completed\n' % argv[3], ''
        if verb in ('apply', 'replace'):
            if row is None or row['state'] != 'CHECKED':
                return 1, '%s is in the wrong state.\nCurrent state: %s\nExpected state: CHECKED\n' % (
                    name, row['state'] if row else 'none'), ''
            row['state'] = 'APPLIED'
            self.log('livepatch: %s: Applying 1 functions' % name)
            self.log('livepatch: %s finished APPLY with rc=0' % name)
            if name in self.staged_effect:
                self.extra = self.staged_effect[name]
            for hook in self.on_apply:
                hook(self)
            return 0, 'Applying %s... completed\n' % name, ''
        if verb == 'revert':
            if row is None or row['state'] != 'APPLIED':
                return 1, '%s is in the wrong state.\n' % name, ''
            row['state'] = 'CHECKED'
            self.extra = '.5'
            self.log('livepatch: %s finished REVERT with rc=0' % name)
            return 0, 'Reverting %s... completed\n' % name, ''
        if verb == 'unload':
            if row is None or row['state'] != 'CHECKED':
                return 1, '%s is in the wrong state.\nCurrent state: %s\nExpected state: CHECKED\n' % (
                    name, row['state'] if row else 'none'), ''
            self.payloads.remove(row)
            return 0, 'Unloading %s... completed\n' % name, ''
        raise AssertionError('unexpected xen-livepatch verb %r' % verb)

    def staged_metadata(self, name):
        return self.metadata.get(name)

    def verbs(self):
        """The commands that ran, short: ``xl info``, ``xen-livepatch upload NAME``..."""
        short = []
        for argv in self.ran:
            tool = 'xl' if argv[0] == XL else 'xen-livepatch'
            words = [tool] + argv[1:3]
            short.append(' '.join(words))
        return short
