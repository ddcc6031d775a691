#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""gen_methods.py — write the gvmclient modules that follow proto/.

Usage:
  gen_methods.py [--proto DIR] [--out DIR]   write DIR/_methods.py, DIR/_proto.py
  gen_methods.py [--proto DIR] --check       fail (exit 1, with a diff) when
                                             the checked-in modules differ
                                             from what proto/ gives now

gvmclient/_methods.py has one method per GVM_METHOD line of
proto/methods.def (its keyword parameters from the spec, wire names with '-'
as '_', required ones first, the help line as docstring) and the METHODS
table; gvmclient/_proto.py has the numbers of proto/gvm-proto.h and one
exception class per error class (its doc from PROTOCOL.md's error table).
Both are checked in, so the package needs no build step; the suite's
`python-methods` test runs --check, so a method added to methods.def
without regenerating fails there rather than in a user's tool.

Standard library only.
"""
import argparse
import difflib
import keyword
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO = os.path.join(HERE, "..", "..", "proto")
DEFAULT_OUT = os.path.join(HERE, "gvmclient")
OUTPUTS = ("_methods.py", "_proto.py")

# gvm-proto.h: "Parameter specs"; the words are what a docstring says.
TYPES = {
    "s": "string",
    "i": "integer",
    "b": "boolean",
    "a": "array",
    "o": "object",
    "j": "any JSON value",
    "r": "IMAGE reference (catalog id or string)",
    "R": "IMAGE reference or None (none)",
    "S": "string or integer",
}
FLAG_WORDS = {
    "GVM_M_RO": "ro",
    "GVM_M_BLOCKING": "blocking",
    "GVM_M_MUTATING": "mutating",
    "GVM_M_ROOT": "root",
    "GVM_M_HEAVY": "heavy",
}


class SpecError(Exception):
    """proto/ says something this generator does not understand."""


# ---- reading C source ----------------------------------------------------

def strip_comments(text):
    """C comments out, string literals kept (a '/*' inside one stays)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise SpecError("unterminated comment")
            out.append(" ")
            i = j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_args(body):
    """Top-level comma-separated arguments of a macro call."""
    args, depth, cur, i = [], 0, [], 0
    while i < len(body):
        c = body[i]
        if c == '"':
            j = i + 1
            while body[j] != '"':
                j += 2 if body[j] == "\\" else 1
            cur.append(body[i:j + 1])
            i = j + 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    args.append("".join(cur).strip())
    return args


ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "'": "'"}


def c_string(arg):
    """The value of one argument made of adjacent C string literals."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', arg)
    if not parts or re.sub(r'"(?:[^"\\]|\\.)*"', "", arg).strip():
        raise SpecError("expected a string literal, got %r" % arg)
    out = []
    for p in parts:
        out.append(re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), p))
    return "".join(out)


def macro_calls(text, name):
    """The argument lists of every NAME(...) in text (comments stripped)."""
    calls = []
    for m in re.finditer(r"\b%s\s*\(" % re.escape(name), text):
        i, depth = m.end(), 1
        while depth:
            if i >= len(text):
                raise SpecError("unterminated %s(" % name)
            c = text[i]
            if c == '"':
                i += 1
                while text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            i += 1
        calls.append(split_args(text[m.end():i - 1]))
    return calls


# ---- proto/methods.def ---------------------------------------------------

def parse_spec(wire, spec):
    """[(wire name, type letter, required)] of a parameter spec."""
    params = []
    for word in spec.split():
        m = re.fullmatch(r"([a-z][a-z0-9-]*):([sibaojrRS])(\??)", word)
        if not m:
            raise SpecError("%s: bad parameter spec %r" % (wire, word))
        params.append((m.group(1), m.group(2), m.group(3) != "?"))
    return params


def parse_methods(text):
    methods = []
    for args in macro_calls(strip_comments(text), "GVM_METHOD"):
        if len(args) != 5:
            raise SpecError("GVM_METHOD with %d arguments: %r" % (len(args), args))
        c_name, wire, flags, spec, help_ = args
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", c_name):
            raise SpecError("bad C name %r" % c_name)
        wire = c_string(wire)
        words = []
        for f in flags.split("|"):
            f = f.strip()
            if f not in FLAG_WORDS:
                raise SpecError("%s: unknown flag %r" % (wire, f))
            words.append(FLAG_WORDS[f])
        methods.append({
            "name": c_name, "wire": wire, "flags": words,
            "params": parse_spec(wire, c_string(spec)), "help": c_string(help_),
        })
    if not methods:
        raise SpecError("no GVM_METHOD line found")
    return methods


def py_name(wire):
    n = wire.replace("-", "_")
    return n + "_" if keyword.iskeyword(n) else n


# ---- proto/gvm-proto.h and PROTOCOL.md -----------------------------------

def parse_proto(header, protocol_md):
    text = strip_comments(header)
    defines = dict(re.findall(r"^[ \t]*#[ \t]*define[ \t]+(GVM_\w+)[ \t]+(.+)", text, re.M))

    def number(expr):
        expr = expr.strip()
        while expr in defines:
            expr = defines[expr].strip()
        m = re.fullmatch(r"\(?\s*(-?\d+)\s*\)?", expr)
        if not m:
            raise SpecError("cannot evaluate %r" % expr)
        return int(m.group(1))

    def string(name):
        if name not in defines:
            raise SpecError("gvm-proto.h has no %s" % name)
        return c_string(defines[name])

    # "| -32000 | `NotFound` | no such volume, ... |" in PROTOCOL.md §5
    when = {}
    for code, cls, what in re.findall(r"^\|\s*(-?\d+)\s*\|\s*`(\w+)`\s*\|(.*)\|\s*$",
                                      protocol_md, re.M):
        when[cls] = re.sub(r"`", "", what).strip()
    classes = []
    # the X-macro's definition: its lines up to the first without a backslash
    m = re.search(r"#define\s+GVM_ERROR_CLASSES\(X\)((?:.*\\\n)*.*)", text)
    if not m:
        raise SpecError("gvm-proto.h has no GVM_ERROR_CLASSES(X)")
    for ident, name, code in re.findall(r'\bX\(\s*(\w+)\s*,\s*"(\w+)"\s*,\s*([\w-]+)\s*\)',
                                        m.group(1)):
        if ident != "NONE":
            classes.append({"name": name, "code": number(code), "when": when.get(name)})
    if not classes:
        raise SpecError("no error class found in gvm-proto.h")
    return {
        "version": number(defines["GVM_PROTOCOL_VERSION"]),
        "socket": string("GVM_DEFAULT_SOCKET"),
        "ro_socket": string("GVM_DEFAULT_RO_SOCKET"),
        "classes": classes,
    }


# ---- writing -------------------------------------------------------------

def header(sources):
    """The comment at the top of a generated file."""
    lines = ["# SPDX-License-Identifier: GPL-2.0-or-later"]
    lines += wrap("Generated by contrib/python/gen_methods.py from %s: do not edit. "
                  "Regenerate with `python3 contrib/python/gen_methods.py`; the "
                  "suite's python-methods test fails while this file is out of date."
                  % sources, "# ")
    return "\n".join(lines) + "\n"


def wrap(text, indent, width=79, hang=""):
    """Words of text on lines of at most width columns, each indented,
    the lines after the first by hang more."""
    lines, cur = [], ""
    for w in text.split():
        if cur and len(indent) + len(cur) + 1 + len(w) > width:
            lines.append(indent + cur)
            indent += hang
            hang = ""
            cur = w
        else:
            cur = w if not cur else cur + " " + w
    if cur:
        lines.append(indent + cur)
    return lines


def doc_lines(m):
    ind = " " * 8
    out = wrap(m["help"], ind, 76)  # the first line has """ before it
    out.append("")
    out.append(ind + "Wire method %s (%s)." % (m["wire"], ", ".join(m["flags"])))
    if m["params"] or "mutating" in m["flags"]:
        out.append("")
        out.append(ind + "Parameters:")
    for wire, t, req in m["params"]:
        what = "%s: %s, %s" % (py_name(wire), TYPES[t], "required" if req else "optional")
        if py_name(wire) != wire:
            what += " (wire name %s)" % wire
        out.extend(wrap(what, ind + "  ", hang="    "))
    if "mutating" in m["flags"]:
        out.extend(wrap("op_id: string, optional: a repeat with the same op-id "
                        "answers the first successful call's result", ind + "  ",
                        hang="    "))
    return out


def method_source(m):
    req = [p for p in m["params"] if p[2]]
    opt = [p for p in m["params"] if not p[2]]
    sig = ["self"] + [py_name(w) for w, _, _ in req]
    if opt or "mutating" in m["flags"]:
        sig.append("*")
    sig += ["%s=OMIT" % py_name(w) for w, _, _ in opt]
    if "mutating" in m["flags"]:
        sig.append("op_id=None")
    lines = []
    head = "    def %s(%s):" % (m["name"], ", ".join(sig))
    if len(head) <= 79:
        lines.append(head)
    else:
        lines.append("    def %s(" % m["name"])
        lines.extend(wrap(", ".join(sig) + "):", " " * 12))
    lines.append('        """' + doc_lines(m)[0].strip())
    lines.extend(l.rstrip() for l in doc_lines(m)[1:])
    lines.append('        """')
    pairs = ["%r: %s" % (w, py_name(w)) for w, _, _ in m["params"]]
    call = "        return self._invoke(%r, {%s}" % (m["wire"], ", ".join(pairs))
    call += ", op_id)" if "mutating" in m["flags"] else ")"
    if len(call) <= 79:
        lines.append(call)
    else:
        lines.append("        return self._invoke(")
        lines.append("            %r," % m["wire"])
        lines.append("            {")
        lines.extend("                %s," % p for p in pairs)
        lines.append("            }%s)" % (", op_id" if "mutating" in m["flags"] else ""))
    return lines


def render_methods(methods):
    out = [header("proto/methods.def"),
           '"""One Python method per protocol method (proto/methods.def)."""',
           "from .spec import OMIT, Method, Param", "", "",
           "class Methods:",
           '    """The protocol methods; Client mixes them in.',
           "",
           "    Required parameters may be given by position (in the order of the",
           "    spec) or by name; optional ones only by name, and are left out of",
           "    the request unless given.  A method flagged mutating also takes",
           "    op_id.  Each returns the result, or raises the GvmError subclass",
           "    of the error's class.",
           '    """',
           "",
           "    __slots__ = ()",
           "",
           "    def _invoke(self, method, params, op_id=None):",
           "        raise NotImplementedError",
           ""]
    for m in methods:
        out.extend(method_source(m))
        out.append("")
    out[-1:] = ["", ""]
    out.append("# wire name -> Method(name, wire, flags, params, help)")
    out.append("METHODS = {")
    for m in methods:
        out.append("    %r: Method(" % m["wire"])
        out.append("        %r, %r, %r," % (m["name"], m["wire"], tuple(m["flags"])))
        if m["params"]:
            out.append("        (")
            for w, t, r in m["params"]:
                out.append("            Param(%r, %r, %r, %r)," % (w, py_name(w), t, r))
            out.append("        ),")
        else:
            out.append("        (),")
        out.extend(wrap_string(m["help"], " " * 8))
        out[-1] += ","
        out.append("    ),")
    out.append("}")
    return "\n".join(out) + "\n"


def wrap_string(s, indent):
    """A Python string literal of s, over several lines if it is long."""
    lit = repr(s)
    if len(indent) + len(lit) <= 78:
        return [indent + lit]
    pieces = wrap(s, "", 70 - len(indent))
    return [indent + repr(p + (" " if i < len(pieces) - 1 else ""))
            for i, p in enumerate(pieces)]


def render_proto(p):
    out = [header("proto/gvm-proto.h and proto/PROTOCOL.md"),
           '"""The protocol\'s numbers and one exception class per error class."""',
           "from .errors import GvmError", "",
           "PROTOCOL_VERSION = %d" % p["version"],
           "DEFAULT_SOCKET = %r" % p["socket"],
           "DEFAULT_RO_SOCKET = %r" % p["ro_socket"], ""]
    for c in p["classes"]:
        out += ["", "class %s(GvmError):" % c["name"]]
        doc = "Error class %s (code %d)" % (c["name"], c["code"])
        doc += ": " + c["when"].rstrip(".") + "." if c["when"] else "."
        lines = wrap(doc, "    ", 73)  # room for the quotes at both ends
        lines[0] = '    """' + lines[0].strip()
        lines[-1] += '"""'
        out += lines
        out += ["", "    code = %d" % c["code"]]
        out.append("")
    out += ["", "# data.class -> exception class",
            "ERROR_CLASSES = {"]
    out += ["    %r: %s," % (c["name"], c["name"]) for c in p["classes"]]
    out.append("}")
    return "\n".join(out) + "\n"


def generate(proto_dir):
    def read(name):
        with open(os.path.join(proto_dir, name), encoding="utf-8") as f:
            return f.read()
    methods = parse_methods(read("methods.def"))
    proto = parse_proto(read("gvm-proto.h"), read("PROTOCOL.md"))
    return {"_methods.py": render_methods(methods), "_proto.py": render_proto(proto)}


def write(files, out_dir):
    for name, text in files.items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write(text)


def check(files, out_dir):
    """Write to a temporary directory and diff with the checked-in files."""
    stale = 0
    with tempfile.TemporaryDirectory(prefix="gvmclient-gen.") as tmp:
        write(files, tmp)
        for name in OUTPUTS:
            new = os.path.join(tmp, name)
            old = os.path.join(out_dir, name)
            with open(new, encoding="utf-8") as f:
                new_lines = f.readlines()
            try:
                with open(old, encoding="utf-8") as f:
                    old_lines = f.readlines()
            except FileNotFoundError:
                old_lines = []
            diff = list(difflib.unified_diff(old_lines, new_lines, old, "generated"))
            if diff:
                stale += 1
                sys.stdout.writelines(diff)
                print("%s is out of date with proto/: run python3 %s" %
                      (old, os.path.relpath(__file__)))
    if not stale:
        print("gvmclient's %s follow proto/" % " and ".join(OUTPUTS))
    return 1 if stale else 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proto", default=DEFAULT_PROTO, help="the proto/ directory")
    ap.add_argument("--out", default=DEFAULT_OUT, help="the gvmclient package directory")
    ap.add_argument("--check", action="store_true",
                    help="compare with the checked-in files instead of writing")
    a = ap.parse_args(argv)
    try:
        files = generate(a.proto)
    except (OSError, SpecError) as e:
        print("gen_methods.py: %s" % e, file=sys.stderr)
        return 1
    if a.check:
        return check(files, a.out)
    write(files, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
