#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/bench/rpc.sh — control-path latency and throughput.
#
#   tests/bench/rpc.sh [BUILDDIR] [SECONDS]
#
# Starts its own gvmd on a temporary socket and measures query-version
# round trips with 1, 16 and 128 concurrent clients (rpc-bench: one thread
# and one connection each, one request in flight per connection).  For
# comparison, the same table shows what a read-only query costs a user
# without the daemon: spawning gvmctl per call, `virsh -c test:///default
# version` and `qemu-img --version` (a handful of runs each; tools that are
# not installed are left out).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${GVM_BUILDDIR:-$here/../../build}}
secs=${2:-3}
GVMD=$build/gvmd/gvmd
GVMCTL=$build/client/gvmctl
BENCH=$build/tests/tools/rpc-bench
for f in "$GVMD" "$GVMCTL" "$BENCH"; do
    [ -x "$f" ] || { echo "rpc.sh: $f not built (give the build directory)" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/gvm-bench-rpc.XXXXXX)
gpid=
cleanup() { [ -n "$gpid" ] && kill "$gpid" 2>/dev/null && wait "$gpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$GVMD" --foreground --socket "$tmp/gvmd.sock" --ro-socket "$tmp/gvmd-ro.sock" \
    --catalog "$tmp/catalog.db" --state-dir "$tmp/state" --log-level warn \
    >"$tmp/gvmd.log" 2>&1 &
gpid=$!
i=0
until "$GVMCTL" --socket "$tmp/gvmd.sock" query-version >/dev/null 2>&1; do
    i=$((i+1)); [ $i -lt 100 ] || { cat "$tmp/gvmd.log" >&2; echo "rpc.sh: gvmd did not start" >&2; exit 1; }
    sleep 0.1
done

row() { printf '| %-44s | %7s | %10s | %9s | %9s |\n' "$@"; }
# spawn_stats N CMD...: run CMD N times; prints "calls/s p50_ms p99_ms".
spawn_stats() {
    n=$1; shift
    : >"$tmp/t"
    for _ in $(seq 1 "$n"); do
        t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
        echo $(( (t1 - t0) / 1000 )) >>"$tmp/t"
    done
    sort -n "$tmp/t" | awk -v n="$n" '{ v[NR] = $1; s += $1 }
        END { p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1];
              printf "%.0f %.2f %.2f\n", 1e6 * NR / s, p50 / 1000, p99 / 1000 }'
}

echo "query-version round trips, $(nproc) CPUs, ${secs}s per gvmd row"
echo
row "what" "clients" "calls/s" "p50 ms" "p99 ms"
row "--------------------------------------------" "-------" "----------" "---------" "---------"
for c in 1 16 128; do
    line=$("$BENCH" "$tmp/gvmd.sock" --clients "$c" --seconds "$secs") ||
        { echo "rpc-bench failed: $line" >&2; exit 1; }
    rate=$(sed 's/.*rate=\([0-9]*\).*/\1/' <<<"$line")
    p50=$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$line")
    p99=$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$line")
    row "gvmd query-version (persistent connection)" "$c" "$rate" \
        "$(awk -v u="$p50" 'BEGIN { printf "%.3f", u / 1000 }')" \
        "$(awk -v u="$p99" 'BEGIN { printf "%.3f", u / 1000 }')"
done
read -r rate p50 p99 <<<"$(spawn_stats 50 "$GVMCTL" --socket "$tmp/gvmd.sock" query-version)"
row "gvmctl query-version (a process per call)" 1 "$rate" "$p50" "$p99"
if command -v virsh >/dev/null 2>&1; then
    read -r rate p50 p99 <<<"$(spawn_stats 10 virsh -c test:///default version)"
    row "virsh -c test:///default version" 1 "$rate" "$p50" "$p99"
fi
if command -v qemu-img >/dev/null 2>&1; then
    read -r rate p50 p99 <<<"$(spawn_stats 20 qemu-img --version)"
    row "qemu-img --version" 1 "$rate" "$p50" "$p99"
fi
kill "$gpid"; wait "$gpid"; rc=$?; gpid=
[ $rc -eq 0 ] || { echo "gvmd exited $rc" >&2; exit 1; }
