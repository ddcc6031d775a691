#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-pull.sh — offline block-pull as a job, on a dir volume and on
# gluster (qemu-img on a FUSE mount as the oracle).  The chain
#   base(8M) <- sn1(8M) <- sn2(6M) <- sn3(6M) <- active(8M)
# (patterns, zero writes, intermediates shorter than the image) is copied
# for every case and catalogued, then: flatten active; pull active down to
# sn1 (zeros past sn3's end must hide sn1's data); pull sn3 down to base;
# a pull with nothing between (no-op); a cancelled pull.  Each time every
# image reads what it read before (qemu-img compare), qemu-img check is
# clean, the intermediates are untouched (byte-identical files), and
# qemu-img info --backing-chain agrees with image-info --backing-chain.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

start_gvmd

proto() {
    P=$(lpath "$SUB/proto")
    [ -d "$P" ] && return 0
    mkdir -p "$P"
    mk_chain5 "$P"
    for i in base sn1 sn2 sn3 active; do
        qemu-img convert -O raw "$P/$i.qcow2" "$TEST_TMP/$BACKEND-$i.raw" || fail "flat $i"
    done
}

setup() {
    proto
    cp -r "$(lpath "$SUB/proto")" "$(lpath "$SUB/$1")" || fail "copy of the chain for $1"
    rpc image-import "{\"image\":$(vref "$SUB/$1/active.qcow2")}" >/dev/null || fail "$1: image-import"
}

# pull CASE IMAGE BASE|- [EXTRA]: run the job to its end.
pull() {
    p="{\"image\":$(vref "$SUB/$1/$2.qcow2")"
    [ "$3" != - ] && p="$p,\"base\":$(vref "$SUB/$1/$3.qcow2")"
    p="$p${4:-}}"
    j=$(rpc block-pull "$p") || { check_fail "$1: block-pull $p refused"; return 1; }
    assert_eq block-pull "$(jq -r .type <<<"$j")" "$1: job type"
    id=$(jq .id <<<"$j")
    j=$(rpc job-wait "{\"id\":$id,\"timeout\":60}") || { check_fail "$1: job-wait"; return 1; }
    assert_eq concluded "$(jq -r .status <<<"$j")" "$1: status"
    assert_eq null "$(jq -c .error <<<"$j")" "$1: job error"
    assert_eq "$(jq .progress.total <<<"$j")" "$(jq .progress.current <<<"$j")" "$1: progress at the end"
    rpc job-dismiss "{\"id\":$id}" >/dev/null || check_fail "$1: job-dismiss"
}

# same CASE IMG...: reads what it read before, clean.
same() {
    c=$1; shift
    for i in "$@"; do
        f=$(lpath "$SUB/$c/$i.qcow2")
        qemu-img compare -q "$f" "$TEST_TMP/$BACKEND-$i.raw" || check_fail "$c: content of $i changed"
        qemu-img check -q "$f" || check_fail "$c: qemu-img check of $i"
    done
}
# untouched CASE IMG...: byte-identical to the prototype.
untouched() {
    c=$1; shift
    for i in "$@"; do
        cmp -s "$(lpath "$SUB/$c/$i.qcow2")" "$(lpath "$SUB/proto/$i.qcow2")" ||
            check_fail "$c: $i was modified"
    done
}

run() {
    # flatten
    setup a; pull a active -
    same a active; untouched a base sn1 sn2 sn3; chain_agree a active
    assert_eq null "$(rpc image-info "{\"image\":$(vref "$SUB/a/active.qcow2")}" | jq .backing)" "a: catalog edge"
    # down to sn1: sn1's data at 7M must stay hidden (sn3 ends at 6M)
    setup b; pull b active sn1
    same b active; untouched b base sn1 sn2 sn3; chain_agree b active sn1 base
    # sn3 down to base: active still reads the same through sn3
    setup c; pull c sn3 base
    same c active sn3; untouched c base sn1 sn2; chain_agree c active sn3 base
    # nothing between: a no-op job
    setup d; pull d active sn3
    same d active; untouched d active base sn1 sn2 sn3; chain_agree d active sn3 sn2 sn1 base
    # cancelled: chain as before
    setup x
    j=$(rpc block-pull "{\"image\":$(vref "$SUB/x/active.qcow2"),\"speed\":1048576}") || fail "x: refused"
    id=$(jq .id <<<"$j")
    i=0   # cancel once the copy has begun
    until [ "$(rpc query-jobs '{}' | jq ".[] | select(.id == $id) | .progress.current")" -gt 0 ] 2>/dev/null; do
        i=$((i+1)); [ $i -lt 600 ] || fail "x: the pull made no progress"; sleep 0.01
    done
    rpc job-cancel "{\"id\":$id}" >/dev/null || check_fail "x: job-cancel"
    j=$(rpc job-wait "{\"id\":$id,\"timeout\":60}")
    assert_eq true "$(jq -r .cancelled <<<"$j")" "x: cancelled"
    same x active; chain_agree x active sn3 sn2 sn1 base
    rpc job-dismiss "{\"id\":$id}" >/dev/null
    # refusals
    e=$(rpc_err block-pull "{\"image\":$(vref "$SUB/x/sn2.qcow2"),\"base\":$(vref "$SUB/x/sn3.qcow2")}")
    assert_eq -32602 "$(jq .code <<<"$e")" "base not below the image"
    R=$(lpath "$SUB/r.img"); qimg create -q -f raw "$R" 1M
    rpc image-import "{\"image\":$(vref "$SUB/r.img")}" >/dev/null || fail "import raw"
    e=$(rpc_err block-pull "{\"image\":$(vref "$SUB/r.img")}")
    assert_eq Unsupported "$(err_class "$e")" "pull into a raw image"
    assert_eq 0 "$(rpc query-jobs '{}' | jq length)" "jobs left"
}

for_each_backend run
