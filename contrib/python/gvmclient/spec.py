# SPDX-License-Identifier: GPL-2.0-or-later
"""The vocabulary of the method table (proto/methods.def, gvm-proto.h).

METHODS in _methods.py describes each protocol method with these tuples, so
a tool can list methods and their parameters without parsing C.
"""
import collections

# Param: wire name ("backing-chain"), Python keyword ("backing_chain"), the
# type letter of gvm-proto.h ("s", "i", "b", "a", "o", "j", "r", "R", "S")
# and whether the method requires it.
Param = collections.namedtuple("Param", "wire name type required")

# Method: Python name, wire name, flags ("ro", "blocking", "mutating",
# "root", "heavy"), a tuple of Param, the one-line help.
Method = collections.namedtuple("Method", "name wire flags params help")


class _Omit:
    """The default of an optional parameter: left out of the request.

    Not None, because None is a value some parameters take (an R-typed
    IMAGE reference: null means none, as block-pull's base).
    """

    __slots__ = ()

    def __repr__(self):
        return "OMIT"

    def __bool__(self):
        return False


OMIT = _Omit()
