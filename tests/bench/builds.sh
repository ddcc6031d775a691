#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/bench/builds.sh BUILD-A BUILD-B [REPEATS] — gvmd against gvmd: the
# same benchmarks for two builds (before and after a change) in one run.
#
# For each repeat (default 3) it runs tests/bench/chain.sh (gvmd only:
# overlay, safe rebase, 2 GiB commit and flatten) with each build, the
# order alternating from one repeat to the next, page cache dropped before
# each run (sync; drop_caches, when root), then tests/bench/rpc.sh
# (query-version round trips) the same way.  Prints, per operation and
# volume, the median seconds of each build, the spread (max - min) and the
# ratio B/A.  IMAGE_BACKENDS as for chain.sh ("dir" to leave gluster out).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# (run-all.sh --bench runs every script here without arguments: skipped.)
[ $# -ge 2 ] || { echo "SKIP: builds.sh compares two builds: $0 BUILD-A BUILD-B [REPEATS]" >&2; exit 77; }
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd) n=${3:-3}
out=$(mktemp -d /tmp/gvm-bench-builds.XXXXXX)
trap 'rm -rf "$out"' EXIT
[ -n "${BENCH_KEEP:-}" ] && trap - EXIT && echo "# rows kept in $out" >&2

drop() { sync; [ "$(id -u)" -eq 0 ] && echo 3 >/proc/sys/vm/drop_caches; return 0; }

for i in $(seq 1 "$n"); do
    if [ $((i % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
    for w in $order; do
        if [ "$w" = A ]; then bd=$a; else bd=$b; fi
        drop
        # chain.sh's table: op volume tool... seconds MiB/s (the tool is words)
        GVMD=$bd/gvmd/gvmd GVMCTL=$bd/client/gvmctl BENCH_GVMD_ONLY=1 \
            bash "$here/chain.sh" "$bd" 2>"$out/err-$w-$i" |
            awk -v w="$w" '$3 == "gvmd" && $(NF - 1) ~ /^[0-9.]+$/ { print w, $1, $2, $(NF - 1) }' >>"$out/rows" ||
            { echo "chain.sh failed with $bd:" >&2; tail -5 "$out/err-$w-$i" >&2; exit 1; }
        drop
        # rpc.sh: query-version over persistent connections, per client
        # count: calls/s and p50 ms
        bash "$here/rpc.sh" "$bd" 3 2>/dev/null |
            awk -F'|' -v w="$w" '$2 ~ /gvmd query-version/ {
                gsub(/ /, "", $3); gsub(/ /, "", $4); gsub(/ /, "", $5)
                print w, "rpc", "query-version-" $3 "-clients-calls/s", $4
                print w, "rpc", "query-version-" $3 "-clients-p50-ms", $5 }' >>"$out/rows"
    done
done

echo "# $n repeats, order alternating, caches dropped before each run"
echo "# A = $a"
echo "# B = $b"
printf '%-8s %-42s %10s %10s %10s %10s %7s\n' op volume/what "A median" "A spread" "B median" "B spread" "B/A"
awk '
    { k = $2 SUBSEP $3; v[$1, k, ++c[$1, k]] = $4; keys[k] = 1 }
    function med(w, k,   n, i, j, t, x) {
        n = c[w, k]; for (i = 1; i <= n; i++) x[i] = v[w, k, i]
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] + 0 < x[i] + 0) { t = x[i]; x[i] = x[j]; x[j] = t }
        lo = x[1]; hi = x[n]
        # (mawk: no conditional expression in a return)
        if (n % 2) return x[(n + 1) / 2]
        return (x[n / 2] + x[n / 2 + 1]) / 2
    }
    END {
        for (k in keys) {
            split(k, p, SUBSEP)
            ma = med("A", k); sa = hi - lo; mb = med("B", k); sb = hi - lo
            r = 0
            if (ma > 0) r = mb / ma
            printf "%-8s %-42s %10.3f %10.3f %10.3f %10.3f %7.2f\n", p[1], p[2], ma, sa, mb, sb, r
        }
    }' "$out/rows" | sort
