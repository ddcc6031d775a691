#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write gvmctl's bash completion from proto/methods.def.

    gen-gvmctl-completion.py METHODS.DEF OUTPUT

The build runs it (client/meson.build) and installs OUTPUT as
bash-completion's `gvmctl`: the commands are the methods of the table and
each command completes its own --parameters (mutating methods also take
--op-id, as gvmctl does), so a new method needs no change here.  BOOL
parameters complete true/false, IMAGE|none ones offer none.
"""
import re
import sys

METHOD = re.compile(r'^GVM_METHOD\(\s*(\w+),\s*"([^"]+)",\s*([^,]+),\s*"([^"]*)"', re.M)
GLOBAL = '--socket --json --bytes --params --wait --help --version'


def methods(src):
    for m in METHOD.finditer(src):
        wire, flags, spec = m.group(2), m.group(3), m.group(4)
        params = []
        for tok in spec.split():
            name, _, t = tok.partition(':')
            params.append((name, t[:1] or 'j'))
        if 'GVM_M_MUTATING' in flags and not any(p[0] == 'op-id' for p in params):
            params.append(('op-id', 's'))
        yield wire, params


def main():
    src = open(sys.argv[1], encoding='utf-8').read()
    table = list(methods(src))
    cases, bools, nones = [], [], []
    for wire, params in table:
        cases.append('        %s) params="%s" ;;' % (
            wire, ' '.join('--' + n for n, _ in params)))
        bools += ['%s:--%s' % (wire, n) for n, t in params if t == 'b']
        nones += ['%s:--%s' % (wire, n) for n, t in params if t == 'R']
    out = '''# bash completion for gvmctl; generated from proto/methods.def by
# contrib/bash-completion/gen-gvmctl-completion.py: do not edit.
_gvmctl()
{
    local cur prev cmd params i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cmd=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --socket|--params) ((i++)) ;;
        -*) ;;
        *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $prev in
    --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --params) return ;;
    esac
    if [ -z "$cmd" ]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "%(glob)s" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "help %(cmds)s" -- "$cur"))
        fi
        return
    fi
    if [ "$cmd" = help ]; then
        COMPREPLY=($(compgen -W "%(cmds)s" -- "$cur"))
        return
    fi
    case " %(bools)s " in
    *" $cmd:$prev "*) COMPREPLY=($(compgen -W "true false" -- "$cur")); return ;;
    esac
    case " %(nones)s " in
    *" $cmd:$prev "*) COMPREPLY=($(compgen -W "none" -- "$cur")); return ;;
    esac
    params=
    case $cmd in
%(cases)s
    esac
    COMPREPLY=($(compgen -W "$params --json --bytes --wait --socket --params" -- "$cur"))
}
complete -F _gvmctl gvmctl
''' % {'glob': GLOBAL, 'cmds': ' '.join(w for w, _ in table),
       'bools': ' '.join(bools), 'nones': ' '.join(nones),
       'cases': '\n'.join(cases)}
    with open(sys.argv[2], 'w', encoding='utf-8') as f:
        f.write(out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
