#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/bench/chain.sh [BUILD-DIR] — chain surgery, gvmd beside qemu-img.
#
# On the dir volume and on a gluster volume (GVM_GLUSTER_VOLUME/
# GVM_GLUSTER_HOST), in the same run:
#   overlay  an overlay on a 3-deep chain: gvmd image-create with backing
#            vs qemu-img create -b;
#   rebase   safe rebase of a top onto its base past a mid holding 256 MiB:
#            gvmd image-rebase safe vs qemu-img rebase -b;
#   commit   a 2 GiB layer into its base: gvmd block-commit + job-wait vs
#            qemu-img commit;
#   pull     flatten an image whose backing holds 2 GiB of data: gvmd
#            block-pull + job-wait vs qemu-img rebase -b '' (the qemu-img
#            chain has one more, empty, layer: qemu-img commit left it);
#   write    raw sequential write bandwidth for reference: qemu-img convert
#            of a 1 GiB raw file onto the volume (gluster:// on gluster).
# On gluster qemu-img is given gluster:// URIs: its time is the whole call
# (libgfapi set-up and ~10 s tear-down included), as an operator pays it;
# gvmd works on the connection it keeps open.  The copies each tool works
# on are made beforehand (on gluster through a FUSE mount) and not timed.
# Prints a table: operation, volume, tool, seconds, MiB/s of data moved.
# Knobs: IMAGE_BACKENDS="dir" or "gluster" runs one volume only;
# BENCH_OPS="overlay rebase commit write" (default all; commit includes
# the pull, which works on what the commit left) runs a subset;
# BENCH_GVMD_ONLY=1 skips the qemu-img runs and comparisons (for tuning).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${GVM_BUILDDIR:-$here/../../build}}
export GVMD=${GVMD:-$build/gvmd/gvmd} GVMCTL=${GVMCTL:-$build/client/gvmctl}
export GVM_TESTDIR=${GVM_TESTDIR:-$here/..}
[ -x "$GVMD" ] && [ -x "$GVMCTL" ] || { echo "usage: $0 BUILD-DIR (no gvmd/gvmctl there)" >&2; exit 2; }
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

start_gvmd --log-level warn

now() { date +%s.%N; }
want() { case " ${BENCH_OPS:-overlay rebase commit write} " in *" $1 "*) return 0;; esac; return 1; }
results=$TEST_TMP/results
row() { # op volume tool seconds mib
    awk -v op="$1" -v vol="$2" -v tool="$3" -v s="$4" -v mib="$5" \
        'BEGIN { r = "-"; if (mib > 0) r = sprintf("%.1f", mib / s)
               printf "%-8s %-8s %-36s %8.2f %9s\n", op, vol, tool, s, r }' >>"$results"
}
timed() { # op volume tool mib cmd...
    op=$1 vol=$2 tool=$3 mib=$4; shift 4
    t0=$(now)
    "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || { cat "$TEST_TMP/err" >&2; fail "$tool $op on $vol failed"; }
    t1=$(now)
    row "$op" "$vol" "$tool" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$mib"
}
# qtimed: timed for a qemu-img run; cmpq: qemu-img compare of two results
# (both nothing with BENCH_GVMD_ONLY=1).
qtimed() { [ "${BENCH_GVMD_ONLY:-0}" = 1 ] || timed "$@"; }
cmpq() { [ "${BENCH_GVMD_ONLY:-0}" = 1 ] || qemu-img compare -q "$1" "$2" || check_fail "$3"; }
# job METHOD PARAMS: start a job and wait for it; fails if it failed.
job() {
    j=$("$GVMCTL" --socket "$GVM_SOCK" --json --params "$2" "$1") || return 1
    j=$("$GVMCTL" --socket "$GVM_SOCK" --json --params "{\"id\":$(jq .id <<<"$j"),\"timeout\":3600}" job-wait) || return 1
    [ "$(jq -c .error <<<"$j")" = null ] || { echo "$j" >&2; return 1; }
}
# q PATH: what qemu-img is given for a volume path.
q() { if [ "$BACKEND" = gluster ]; then guri "$1"; else lpath "$1"; fi; }
import() { rpc image-import "{\"image\":$(vref "$1")}" >/dev/null || fail "image-import $1"; }

bench_backend() {
    d=$(lpath "$SUB")
    qtag="qemu-img"; [ "$BACKEND" = gluster ] && qtag="qemu-img (gluster://)"

    # ---- overlay on a 3-deep chain ---------------------------------------
    if want overlay; then
    mkdir -p "$d/o"
    qimg create -q -f qcow2 "$d/o/base.qcow2" 2G
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/o/mid.qcow2"
    qimg create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/o/top.qcow2"
    # Data in every layer: qemu's gluster driver fails the short read of
    # an L1 table at the very end of a file that qemu-img create leaves.
    qio "$d/o/base.qcow2" "write -P 0x11 0 1M"
    qio "$d/o/mid.qcow2" "write -P 0x12 1M 1M"
    qio "$d/o/top.qcow2" "write -P 0x13 2M 1M"
    import "$SUB/o/top.qcow2"
    timed overlay "$BACKEND" "gvmd image-create -b" 0 \
        rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$SUB/o/ov-g.qcow2\",\"format\":\"qcow2\",\"backing\":$(vref "$SUB/o/top.qcow2")}"
    qtimed overlay "$BACKEND" "$qtag create -b" 0 \
        qemu-img create -q -f qcow2 -b top.qcow2 -F qcow2 "$(q "$SUB/o/ov-q.qcow2")"

    fi

    # ---- safe rebase past 256 MiB ---------------------------------------
    if want rebase; then
    mkdir -p "$d/r"
    qimg create -q -f qcow2 "$d/r/base.qcow2" 2G
    qio "$d/r/base.qcow2" "write -P 0x11 0 256M"
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/r/mid.qcow2"
    qio "$d/r/mid.qcow2" "write -P 0x21 128M 256M"
    qimg create -q -f qcow2 -b mid.qcow2 -F qcow2 "$d/r/top.qcow2"
    qio "$d/r/top.qcow2" "write -P 0x31 1G 64M"
    cp -r "$d/r" "$d/rq"
    import "$SUB/r/top.qcow2"
    timed rebase "$BACKEND" "gvmd image-rebase safe" 256 \
        job image-rebase "{\"image\":$(vref "$SUB/r/top.qcow2"),\"backing\":$(vref "$SUB/r/base.qcow2"),\"mode\":\"safe\"}"
    qtimed rebase "$BACKEND" "$qtag rebase -b" 256 \
        qemu-img rebase -f qcow2 -b base.qcow2 -F qcow2 "$(q "$SUB/rq/top.qcow2")"
    cmpq "$d/r/top.qcow2" "$d/rq/top.qcow2" "rebase results differ on $BACKEND"
    rm -rf "$d/rq"
    fi

    # ---- commit of a 2 GiB layer, then pull of 2 GiB ---------------------
    if want commit; then
    mkdir -p "$d/c"
    qimg create -q -f qcow2 "$d/c/base.qcow2" 2G
    qio "$d/c/base.qcow2" "write -P 0x11 0 64M"
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$d/c/top.qcow2"
    qio "$d/c/top.qcow2" "write -P 0x21 0 1G" "write -P 0x22 1G 1G"
    qimg create -q -f qcow2 -b top.qcow2 -F qcow2 "$d/c/active.qcow2"
    qio "$d/c/active.qcow2" "write -P 0x31 0 1M"
    cp -r --sparse=always "$d/c" "$d/cq"
    import "$SUB/c/active.qcow2"
    timed commit "$BACKEND" "gvmd block-commit" 2048 \
        job block-commit "{\"top\":$(vref "$SUB/c/top.qcow2"),\"base\":$(vref "$SUB/c/base.qcow2")}"
    qtimed commit "$BACKEND" "$qtag commit" 2048 \
        qemu-img commit -q -f qcow2 "$(q "$SUB/cq/top.qcow2")"
    cmpq "$d/c/active.qcow2" "$d/cq/active.qcow2" "commit results differ on $BACKEND"
    timed pull "$BACKEND" "gvmd block-pull (flatten)" 2048 \
        job block-pull "{\"image\":$(vref "$SUB/c/active.qcow2")}"
    qtimed pull "$BACKEND" "$qtag rebase -b ''" 2048 \
        qemu-img rebase -f qcow2 -b '' "$(q "$SUB/cq/active.qcow2")"
    cmpq "$d/c/active.qcow2" "$d/cq/active.qcow2" "pull results differ on $BACKEND"
    rm -rf "$d/cq"
    fi

    # ---- raw sequential write, for reference ------------------------------
    if want write; then
    [ -e "$TEST_TMP/w.raw" ] || { qimg create -q -f raw "$TEST_TMP/w.raw" 1G
        QIO_FMT=raw qio "$TEST_TMP/w.raw" "write -P 0x5a 0 1G"; }
    timed write "$BACKEND" "$qtag convert raw 1 GiB" 1024 \
        qemu-img convert -f raw -O raw "$TEST_TMP/w.raw" "$(q "$SUB/w.raw")"
    fi
    rm -rf "$d/o" "$d/r" "$d/c" "$d/w.raw"
}

for_each_backend bench_backend
printf '%-8s %-8s %-36s %8s %9s\n' operation volume tool seconds MiB/s
cat "$results"
exit "$_test_failed"
