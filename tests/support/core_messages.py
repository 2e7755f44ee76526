# -*- coding: utf-8 -*-
# Copyright: noreboot.xen contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible-core's argument validation messages as 2.19 and later word them, whatever core printed them.

Before 2.19 a type is named by its class (``<class 'dict'>``, and for values from YAML
``<class 'ansible.parsing.yaml.objects.AnsibleUnicode'>``); 2.19 names it plainly (``dict``, ``str``).
"""

from __future__ import absolute_import, division, print_function

import re

YAML_TYPES = {'AnsibleUnicode': 'str', 'AnsibleMapping': 'dict', 'AnsibleSequence': 'list'}
CLASS = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")


def plain_types(text):
    """``text`` with every ``<class '...X'>`` replaced by the type's plain name."""
    return CLASS.sub(lambda m: YAML_TYPES.get(m.group(1), m.group(1)), text)
