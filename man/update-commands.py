#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Rewrite the COMMANDS section of man/gvmctl.1 from proto/methods.def.

    man/update-commands.py          # rewrite in place
    man/update-commands.py --check  # exit 1 if the page is out of date

The section lies between the '.\\" BEGIN COMMANDS' and '.\\" END COMMANDS'
comment lines; everything else in the page is left alone.  Run it after
adding a method to methods.def (tests/integration/test-gvmctl.sh checks).
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEF = os.path.join(HERE, '..', 'proto', 'methods.def')
PAGE = os.path.join(HERE, 'gvmctl.1')

TYPES = {'s': 'STRING', 'i': 'INTEGER', 'b': 'BOOL', 'a': 'JSON-ARRAY',
         'o': 'JSON-OBJECT', 'j': 'JSON', 'r': 'IMAGE', 'R': 'IMAGE|none',
         'S': 'NAME|ID'}
METHOD = re.compile(r'^GVM_METHOD\(\s*(\w+),\s*"([^"]+)",\s*([^,]+),\s*'
                    r'"([^"]*)",\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\)', re.M)


def roff(s):
    """Escape text for roff: backslashes, hyphens, a leading dot/quote."""
    s = s.replace('\\', '\\e').replace('-', '\\-')
    if s[:1] in ('.', "'"):
        s = '\\&' + s
    return s


def section(src):
    out = []
    for m in METHOD.finditer(src):
        wire, spec = m.group(2), m.group(4)
        flags = set(re.findall(r'GVM_M_[A-Z]+', m.group(3)))
        text = ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(5)))
        params = []
        for tok in spec.split():
            name, _, t = tok.partition(':')
            opt = t.endswith('?')
            ty = TYPES.get(t[:1], 'JSON')
            # gvmctl's size_like(): byte counts take K/M/G/T/P suffixes
            if ty == 'INTEGER' and ('size' in name or name in ('speed', 'offset', 'length')):
                ty = 'SIZE'
            params.append((name, ty, opt))
        if 'GVM_M_MUTATING' in flags and not any(p[0] == 'op-id' for p in params):
            params.append(('op-id', 'STRING', True))
        out.append('.TP')
        out.append('.B ' + roff(wire))
        for name, t, opt in params:
            if opt:
                out.append('.RB [ \\-\\-%s' % roff(name))
                out.append('.IR %s ]' % roff(t))
            else:
                out.append('.B \\-\\-%s' % roff(name))
                out.append('.I %s' % roff(t))
        out.append('.br')
        notes = []
        if 'GVM_M_RO' in flags:
            notes.append('Allowed on the read\\-only socket.')
        if 'GVM_M_ROOT' in flags:
            notes.append('Root only.')
        out.append(roff(text) + (' ' + ' '.join(notes) if notes else ''))
    return out


def main():
    src = open(DEF, encoding='utf-8').read()
    page = open(PAGE, encoding='utf-8').read().split('\n')
    begin = next(i for i, l in enumerate(page) if l.startswith('.\\" BEGIN COMMANDS'))
    end = next(i for i, l in enumerate(page) if l.startswith('.\\" END COMMANDS'))
    # keep the BEGIN comment block (it may span two lines)
    head_end = begin + 1
    while head_end < end and page[head_end].startswith('.\\"'):
        head_end += 1
    new = page[:head_end] + section(src) + page[end:]
    if '--check' in sys.argv[1:]:
        if new != page:
            print('man/gvmctl.1 does not list the methods of proto/methods.def; '
                  'run man/update-commands.py', file=sys.stderr)
            return 1
        return 0
    if new != page:
        open(PAGE, 'w', encoding='utf-8').write('\n'.join(new))
    return 0


if __name__ == '__main__':
    sys.exit(main())
