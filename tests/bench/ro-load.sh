#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/bench/ro-load.sh — what heavy read-only callers cost root.
#
#   tests/bench/ro-load.sh [BUILDDIR] [SECONDS]
#
# Starts its own gvmd (dir volume), makes a sparse 2 GiB qcow2 image, and
# measures root's volume-info round trips on the read-write socket (one
# client, one call every 5 ms) for SECONDS (default 10), first with the
# daemon idle, then while 3 unprivileged users (each its own uid) send
# batches of 12 image-checksum calls of that image on the read-only socket,
# one batch after another, for the whole measurement — the load of issue
# 11's item 8.  Meanwhile a fourth unprivileged user asks image-info of the
# same image on the read-only socket every 50 ms: what a light read-only
# caller waits behind the heavy ones.  Prints p50/p99/max of each and how
# many checksums the heavy clients completed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${GVM_BUILDDIR:-$here/../../build}}
secs=${2:-10}
export GVMD=${GVMD:-$build/gvmd/gvmd} GVMCTL=${GVMCTL:-$build/client/gvmctl}
export GVM_TESTDIR=${GVM_TESTDIR:-$here/..}
BENCH=$build/tests/tools/rpc-bench
[ -x "$GVMD" ] && [ -x "$GVMCTL" ] && [ -x "$BENCH" ] ||
    { echo "usage: $0 BUILD-DIR (no gvmd/gvmctl/rpc-bench there)" >&2; exit 2; }
. "$GVM_TESTDIR/lib.sh"
need setpriv
[ "$(id -u)" = 0 ] || skip "needs root (to run clients as other uids)"
[ -x /usr/bin/python3 ] || skip "needs /usr/bin/python3"

start_gvmd --log-level warn
tmp=$TEST_TMP
chmod 755 "$TEST_TMP" "$GVMD_DIR"     # the read-only socket is for anyone
loaders=()
at_exit 'for p in "${loaders[@]}"; do kill "$p" 2>/dev/null; done'
vol=local
rpc image-create "{\"volume\":\"$vol\",\"path\":\"big.qcow2\",\"format\":\"qcow2\",\"size\":$((2 << 30))}" \
    >/dev/null || fail "image-create big.qcow2"

cat >"$tmp/load.py" <<'PY'
import json, socket, sys, time
sock, image, until = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_UNIX); s.connect(sock)
f = s.makefile("rb")
n = 0
while time.time() < until:
    batch = [{"jsonrpc": "2.0", "method": "image-checksum", "params": {"image": image},
              "id": i} for i in range(12)]
    s.sendall((json.dumps(batch) + "\n").encode())
    line = f.readline()
    if not line:
        break
    n += sum(1 for r in json.loads(line) if "result" in r)
print(n)
PY
lat() { "$BENCH" "$GVM_SOCK" --method volume-info --params "{\"name\":\"$vol\"}" \
        --seconds "$secs" --gap-ms 5; }
fmt() { sed 's/.*calls=\([0-9]*\).*p50_us=\([0-9]*\).*p99_us=\([0-9]*\).*max_us=\([0-9]*\).*/\1 \2 \3 \4/' <<<"$1" |
        awk '{ printf "%6d calls  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms\n", $1, $2/1000, $3/1000, $4/1000 }'; }

idle=$(lat) || fail "rpc-bench failed: $idle"
until=$(( $(date +%s) + secs + 3 ))
for u in 60001 60002 60003; do
    setpriv --reuid=$u --regid=$u --clear-groups /usr/bin/python3 "$tmp/load.py" "$GVM_RO_SOCK" \
        "$vol:big.qcow2" "$until" >"$tmp/load.$u" 2>&1 &
    loaders+=($!)
done
sleep 1            # the batches are queued and running before we measure
setpriv --reuid=60004 --regid=60004 --clear-groups "$BENCH" "$GVM_RO_SOCK" \
    --method image-info --params "{\"image\":\"$vol:big.qcow2\"}" --seconds "$secs" \
    --gap-ms 50 >"$tmp/light" 2>&1 &
light_pid=$!
loaded=$(lat) || fail "rpc-bench failed: $loaded"
wait "$light_pid" || fail "the light read-only client failed: $(cat "$tmp/light")"
for p in "${loaders[@]}"; do wait "$p"; done
loaders=()
done_n=0
for u in 60001 60002 60003; do
    n=$(tail -1 "$tmp/load.$u"); case $n in ''|*[!0-9]*) fail "client $u: $(cat "$tmp/load.$u")";; esac
    done_n=$((done_n + n))
done
echo "root's volume-info on the read-write socket, $(nproc) CPUs, ${secs} s each:"
echo "  idle:                                   $(fmt "$idle")"
echo "  3 read-only uids, checksum batches:     $(fmt "$loaded")"
echo "a fourth uid's image-info on the read-only socket meanwhile:"
echo "                                          $(fmt "$(cat "$tmp/light")")"
echo "  (the read-only clients completed $done_n checksums of a sparse 2 GiB image)"
