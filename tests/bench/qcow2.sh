#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/bench/qcow2.sh [BUILD-DIR] — qcow2 read-path benchmark, gvmd vs qemu-img.
#
# Builds a 2 GiB image as a 3-deep chain (data spread over the layers with
# qemu-io, no request of 2 GiB or more) on the dir volume and on a gluster
# volume (GVM_GLUSTER_VOLUME/GVM_GLUSTER_HOST, else a private fixture), then
# times in the same run:
#   read     gvmd image-checksum (every guest-visible byte read through the
#            chain and hashed with SHA-256) vs qemu-img convert to a null-co
#            target (qemu-img reads the allocated data, skips holes, hashes
#            nothing);
#   map      gvmd image-map vs qemu-img map --output=json.
# On gluster qemu-img is given gluster:// URIs, so its time is the whole call
# (connection set-up and its ~10 s tear-down included), as an operator pays
# it; gvmd works on the connection it keeps open.
# Prints a table: operation, volume, tool, seconds, MiB/s (of virtual size).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${GVM_BUILDDIR:-$here/../../build}}
export GVMD=${GVMD:-$build/gvmd/gvmd} GVMCTL=${GVMCTL:-$build/client/gvmctl}
export GVM_TESTDIR=${GVM_TESTDIR:-$here/..}
[ -x "$GVMD" ] && [ -x "$GVMCTL" ] || { echo "usage: $0 BUILD-DIR (no gvmd/gvmctl there)" >&2; exit 2; }
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

SIZE_MIB=2048
start_gvmd --log-level warn

now() { date +%s.%N; }
results=$TEST_TMP/results
row() { # op volume tool seconds
    awk -v op="$1" -v vol="$2" -v tool="$3" -v s="$4" -v mib=$SIZE_MIB \
        'BEGIN { printf "%-8s %-8s %-40s %8.2f %9.1f\n", op, vol, tool, s, mib / s }' >>"$results"
}
timed() { # op volume tool cmd...: run cmd, record its wall time
    op=$1 vol=$2 tool=$3; shift 3
    t0=$(now)
    "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || { cat "$TEST_TMP/err" >&2; fail "$tool $op on $vol failed"; }
    t1=$(now)
    row "$op" "$vol" "$tool" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
}

# build_chain DIR: base (64 KiB clusters), mid (1 MiB), top (64 KiB).
build_chain() {
    d=$1
    qimg create -q -f qcow2 "$d/base.qcow2" ${SIZE_MIB}M
    qio "$d/base.qcow2" "write -P 0x11 0 512M" "write -P 0x12 768M 512M"
    qimg create -q -f qcow2 -o cluster_size=1048576 -b base.qcow2 -F qcow2 "$d/mid.qcow2"
    qio "$d/mid.qcow2" "write -P 0x21 256M 384M" "write -z 900M 100M" "write -P 0x22 1536M 256M"
    qimg create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/top.qcow2"
    qio "$d/top.qcow2" "write -P 0x31 128M 128M" "write -P 0x32 1100M 64M" "write -P 0x33 1900M 100M"
    # scattered small writes: many extents for map
    cmds=()
    for i in $(seq 0 199); do cmds+=("write -P 0x4$((i % 10)) $((i * 10))M 64k"); done
    qio "$d/top.qcow2" "${cmds[@]}"
}

bench_backend() {
    note "building the 2 GiB 3-deep chain on $BACKEND"
    build_chain "$ROOT/$SUB"
    p=$SUB/top.qcow2
    rpc image-import "{\"image\":$(vref "$p")}" >/dev/null || fail "image-import"
    if [ "$BACKEND" = gluster ]; then src=$(guri "$p"); else src=$(lpath "$p"); fi
    qtag="qemu-img"; [ "$BACKEND" = gluster ] && qtag="qemu-img (gluster://)"

    timed read "$BACKEND" "$qtag convert -> null-co" \
        qemu-img convert -n "$src" --target-image-opts "driver=null-co,size=$((SIZE_MIB << 20))"
    timed read "$BACKEND" "gvmd image-checksum (sha256)" \
        "$GVMCTL" --socket "$GVM_SOCK" --json --params "{\"image\":$(vref "$p")}" image-checksum
    sum_g=$(jq -r .sha256 <"$TEST_TMP/out")
    timed map "$BACKEND" "$qtag map --output=json" qemu-img map --output=json "$src"
    cp "$TEST_TMP/out" "$TEST_TMP/qmap.json"
    timed map "$BACKEND" "gvmd image-map" \
        "$GVMCTL" --socket "$GVM_SOCK" --json --params "{\"image\":$(vref "$p")}" image-map
    json_eq "map of the bench chain on $BACKEND" "$(cat "$TEST_TMP/qmap.json")" "$(cat "$TEST_TMP/out")"
    n=$(jq length "$TEST_TMP/qmap.json")
    note "$BACKEND: $n extents; gvmd sha256 $sum_g"
    # The checksum is right (dir only: a 2 GiB sparse temporary file).
    [ "$BACKEND" = dir ] && assert_eq "$(qemu_sha256 "$(lpath "$p")")" "$sum_g" "checksum of the bench chain"
    rm -f "$ROOT/$SUB"/*.qcow2
}

for_each_backend bench_backend
printf '%-8s %-8s %-40s %8s %9s\n' operation volume tool seconds MiB/s
cat "$results"
exit "$_test_failed"
