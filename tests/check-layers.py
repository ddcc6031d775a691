#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check-layers.py — gvmd's layers call only down.

Usage: check-layers.py SRCDIR FOLDER=LIBRARY...   (bottom layer first, as
gvmd/meson.build's layer_table lists them; the test of the suite passes
them).

From the symbols of each layer's static library (nm), every reference from
one object file to a symbol another defines is a call (or a use of its
data).  The check fails when
  - a file calls a file of a higher layer, or
  - files call each other round a cycle that spans two folders, or one
    inside a folder other than image/ (the qcow2 engine's files are one
    unit: its metadata caches and its cluster code call each other), or
  - a source file includes a header of a higher layer (the build refuses
    that too, since each layer's include path holds only its own folder and
    those below; this says which file and which header).
Each finding is one line; exit 1 if there is any, else 0 after a summary.
"""
import os
import re
import subprocess
import sys

CYCLE_OK = {"image"}


def objects(lib):
    """{object file name: (defined symbols, undefined symbols)}"""
    out = subprocess.run(["nm", "-A", lib], capture_output=True, text=True,
                         check=True).stdout
    objs = {}
    for line in out.splitlines():
        # "lib.a:member.o:0000 T name" or "lib.a:member.o:  U name"
        head, _, rest = line.rpartition(":")
        member = head.split(":")[-1]
        parts = rest.split()
        d, u = objs.setdefault(member, (set(), set()))
        if len(parts) == 3 and parts[1] in "TDBRCGS":
            d.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            u.add(parts[1])
    return objs


def source_name(folder, member):
    """meson names a member after its path with '/' as '_'."""
    base = re.sub(r"\.o$", "", os.path.basename(member))
    generated = base.startswith("meson-generated_")
    base = re.sub(r"^meson-generated_(\.\._)*", "", base)
    prefix = folder.replace("/", "_") + "_"
    if folder != "." and base.startswith(prefix):
        base = base[len(prefix):]
    if generated:
        base += " (generated)"
    return os.path.join(folder, base) if folder != "." else base


def tarjan(graph):
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(sorted(comp))

    sys.setrecursionlimit(100000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sccs


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    srcdir = argv[1]
    layers = []                     # [(folder, library)] bottom first
    for a in argv[2:]:
        folder, _, lib = a.partition("=")
        layers.append((folder, lib))
    rank = {folder: i for i, (folder, _) in enumerate(layers)}
    folder_of, defs, undefs = {}, {}, {}
    for folder, lib in layers:
        for member, (d, u) in objects(lib).items():
            f = source_name(folder, member)
            folder_of[f] = folder
            undefs[f] = u
            for s in d:
                defs[s] = f
    graph = {f: set() for f in folder_of}
    why = {}
    for f, us in undefs.items():
        for s in us:
            g = defs.get(s)
            if g and g != f:
                graph[f].add(g)
                why.setdefault((f, g), s)

    findings = []
    for f in sorted(graph):
        for g in sorted(graph[f]):
            if rank[folder_of[g]] > rank[folder_of[f]]:
                findings.append(f"up-call: {f} ({folder_of[f]}) calls "
                                f"{why[(f, g)]} of {g} ({folder_of[g]}), a "
                                "higher layer")
    for comp in tarjan(graph):
        if len(comp) < 2:
            continue
        folders = sorted({folder_of[f] for f in comp})
        if len(folders) > 1 or folders[0] not in CYCLE_OK:
            findings.append("cycle: " + " ".join(comp))

    headers = {}                    # header name -> folder
    for folder, _ in layers:
        d = os.path.join(srcdir, "gvmd", folder)
        for name in os.listdir(d):
            if name.endswith(".h"):
                headers[name] = folder
    for folder, _ in layers:
        d = os.path.join(srcdir, "gvmd", folder)
        for name in sorted(os.listdir(d)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(d, name), encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m or m.group(1) not in headers:
                        continue
                    hf = headers[m.group(1)]
                    if rank[hf] > rank[folder]:
                        findings.append(f"up-include: {folder}/{name}:{n} "
                                        f"includes {m.group(1)} of {hf}")

    for line in findings:
        print(line)
    nedges = sum(len(v) for v in graph.values())
    print(f"# {len(graph)} files in {len(layers)} layers, {nedges} calls "
          f"between files: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
