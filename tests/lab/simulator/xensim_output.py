# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the simulated tools write: unbuffered, to stdout or stderr, in the real tools' order.
"""

import os


class Output(object):
    """Unbuffered writes, in the order the real tool makes them (it sets stdout unbuffered)."""

    def out(self, text):
        os.write(1, text.encode('utf-8', 'surrogateescape'))

    def err(self, text):
        os.write(2, text.encode('utf-8', 'surrogateescape'))


IO = Output()


def strerror(code):
    return os.strerror(code)
