#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-commit.sh — offline block-commit as a job, on a dir volume and on
# gluster (qemu-img on a FUSE mount as the oracle).  One chain
#   base(8M) <- sn1(8M) <- sn2(6M) <- sn3(6M) <- active(8M)
# with patterns in overlapping ranges and zero writes in every layer is
# copied for every case, catalogued with image-import, and committed:
# sn1..sn3 into base, sn1..sn2 into base, sn1 into base (base omitted),
# sn2 into sn1, sn3 into sn2, sn2..sn3 into sn1, an offline active commit
# (active..sn2 into sn1), a top with two overlays, a raw base that grows,
# qcow2 bases smaller than top that grow (one whose own backing file is
# longer than it, which must not show through the grown range), and a
# cancelled commit.  Each time:
#   - every image above top reads what it read before (qemu-img compare);
#   - base reads what top read before (over top's size);
#   - qemu-img check is clean on every remaining image;
#   - qemu-img info --backing-chain and image-info --backing-chain agree
#     on the expected chain; the removed images are gone (files and rows).
# Refusals: base with a child outside the chain (InUse naming it), a base
# not in top's chain.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

start_gvmd

proto() {
    P=$(lpath "$SUB/proto")
    [ -d "$P" ] && return 0
    mkdir -p "$P"
    mk_chain5 "$P"
}

# setup CASE: a fresh copy of the chain in $SUB/CASE, catalogued; flat
# copies of every image in $TEST_TMP/CASE-NAME.raw.
setup() {
    proto
    D=$SUB/$1
    cp -r "$(lpath "$SUB/proto")" "$(lpath "$D")" || fail "copy of the chain for $1"
    rpc image-import "{\"image\":$(vref "$D/active.qcow2")}" >/dev/null || fail "$1: image-import"
    # The copies read what the prototype reads: flatten it once.
    for i in base sn1 sn2 sn3 active; do
        [ -e "$TEST_TMP/$BACKEND$PROFILE-$i.raw" ] ||
            qemu-img convert -O raw "$(lpath "$SUB/proto/$i.qcow2")" "$TEST_TMP/$BACKEND$PROFILE-$i.raw" ||
            fail "flat $i"
        ln -sf "$TEST_TMP/$BACKEND$PROFILE-$i.raw" "$TEST_TMP/$1-$i.raw"
    done
}

# commit CASE TOP BASE|- [EXTRA-JSON]: run the job to its end.
commit() {
    p="{\"top\":$(vref "$SUB/$1/$2.qcow2")"
    case $3 in -) ;; *.*) p="$p,\"base\":$(vref "$SUB/$1/$3")";;
               *) p="$p,\"base\":$(vref "$SUB/$1/$3.qcow2")";; esac
    p="$p${4:-}}"
    j=$(rpc block-commit "$p") || { check_fail "$1: block-commit $p refused"; return 1; }
    assert_eq block-commit "$(jq -r .type <<<"$j")" "$1: job type"
    id=$(jq .id <<<"$j")
    j=$(rpc job-wait "{\"id\":$id,\"timeout\":60}") || { check_fail "$1: job-wait"; return 1; }
    assert_eq concluded "$(jq -r .status <<<"$j")" "$1: status"
    assert_eq null "$(jq -c .error <<<"$j")" "$1: job error"
    assert_eq "$(jq .progress.total <<<"$j")" "$(jq .progress.current <<<"$j")" "$1: progress at the end"
    rpc job-dismiss "{\"id\":$id}" >/dev/null || check_fail "$1: job-dismiss"
}

# same CASE IMG: IMG reads what it read before and is clean.
same() {
    f=$(lpath "$SUB/$1/$2.qcow2")
    qemu-img compare -q "$f" "$TEST_TMP/$1-$2.raw" || check_fail "$1: content of $2 changed"
    qemu-img check -q "$f" || check_fail "$1: qemu-img check of $2"
}
# merged CASE BASE TOP: base now reads what top read (over top's size).
merged() {
    f=$(lpath "$SUB/$1/$2.qcow2")
    qemu-img check -q "$f" || check_fail "$1: qemu-img check of $2"
    qemu-img convert -O raw "$f" "$TEST_TMP/m.raw" || fail "flat $2"
    n=$(stat -c %s "$TEST_TMP/$1-$3.raw")
    cmp -s -n "$n" "$TEST_TMP/m.raw" "$TEST_TMP/$1-$3.raw" ||
        check_fail "$1: $2 does not read what $3 read before"
}
# grown CASE IMG: IMG now has the size of the top committed into it
# (8M), on storage and in the catalog.
grown() {
    assert_eq 8388608 "$(qemu-img info --output=json "$(lpath "$SUB/$1/$2.qcow2")" | jq '."virtual-size"')" \
        "$1: size of $2 on storage"
    assert_eq 8388608 "$(rpc image-info "{\"image\":$(vref "$SUB/$1/$2.qcow2")}" | jq '."virtual-size"')" \
        "$1: size of $2 in the catalog"
}
# gone CASE IMG...: files and catalog rows removed.
gone() {
    c=$1; shift
    for i in "$@"; do
        [ -e "$(lpath "$SUB/$c/$i.qcow2")" ] && check_fail "$c: file $i still exists"
        e=$(rpc_err image-info "{\"image\":$(vref "$SUB/$c/$i.qcow2")}")
        assert_eq NotFound "$(err_class "$e")" "$c: catalog row of $i"
    done
}

run() {
    # sn1..sn3 into base
    setup a; commit a sn3 base
    same a active; merged a base sn3; chain_agree a active base; gone a sn1 sn2 sn3
    # sn1..sn2 into base: sn3 keeps reading zeros past sn2's end
    setup b; commit b sn2 base
    same b active; same b sn3; merged b base sn2; chain_agree b active sn3 base; gone b sn1 sn2
    # sn1 into base (base omitted: top's backing)
    setup c; commit c sn1 -
    same c active; same c sn3; same c sn2; merged c base sn1; chain_agree c active sn3 sn2 base; gone c sn1
    # sn2 into sn1: sn1 past sn2's end must read zeros for sn3
    setup d; commit d sn2 sn1
    same d active; same d sn3; same d base; merged d sn1 sn2; chain_agree d active sn3 sn1 base; gone d sn2
    # sn3 into sn2
    setup e; commit e sn3 sn2
    same e active; same e base; merged e sn2 sn3; chain_agree e active sn2 sn1 base; gone e sn3
    # sn2..sn3 into sn1
    setup f; commit f sn3 sn1
    same f active; same f base; merged f sn1 sn3; chain_agree f active sn1 base; gone f sn2 sn3
    # offline active commit: active..sn2 into sn1; sn1 becomes the active layer
    setup g; commit g active sn1
    same g base; merged g sn1 active; chain_agree g sn1 base; gone g sn2 sn3 active
    assert_eq "[]" "$(rpc image-info "{\"image\":$(vref "$SUB/g/sn1.qcow2")}" | jq -c .children)" "g: sn1 children"

    # a top with two overlays: both repointed
    setup h
    qimg create -q -f qcow2 -b sn3.qcow2 -F qcow2 "$(lpath "$SUB/h/active2.qcow2")" 8M
    qio "$(lpath "$SUB/h/active2.qcow2")" "write -P 0x61 5M 1M" "write -z 2M 64k"
    rpc image-import "{\"image\":$(vref "$SUB/h/active2.qcow2")}" >/dev/null || fail "h: import active2"
    qemu-img convert -O raw "$(lpath "$SUB/h/active2.qcow2")" "$TEST_TMP/h-active2.raw"
    commit h sn3 sn2
    same h active; same h active2; chain_agree h active sn2 sn1 base; chain_agree h active2 sn2 sn1 base; gone h sn3

    # raw base smaller than top: grows
    R=$(lpath "$SUB/raw"); mkdir -p "$R"
    qimg create -q -f raw "$R/base.img" 4M
    QIO_FMT=raw qio "$R/base.img" "write -P 0x71 0 4M"
    qimg create -q -f qcow2 -b base.img -F raw "$R/top.qcow2" 8M
    qimg create -q -f qcow2 -b top.qcow2 -F qcow2 "$R/act.qcow2" 8M
    qio "$R/top.qcow2" "write -P 0x72 6M 512k" "write -z 1M 128k" "write -P 0x73 3M 2M"
    qio "$R/act.qcow2" "write -P 0x74 0 64k"
    rpc image-import "{\"image\":$(vref "$SUB/raw/act.qcow2")}" >/dev/null || fail "raw: import"
    qemu-img convert -O raw "$R/act.qcow2" "$TEST_TMP/raw-act.raw"
    qemu-img convert -O raw "$R/top.qcow2" "$TEST_TMP/raw-top.raw"
    commit raw top base.img
    qemu-img compare -q "$R/act.qcow2" "$TEST_TMP/raw-act.raw" || check_fail "raw: content of act"
    cmp -s "$R/base.img" "$TEST_TMP/raw-top.raw" || check_fail "raw: base does not read what top read"
    assert_eq 8388608 "$(stat -c %s "$R/base.img")" "raw: base grown"
    assert_eq raw "$(qemu-img info --output=json "$R/act.qcow2" | jq -r '."backing-filename-format"')" "raw: backing format"

    # qcow2 base smaller than top: active (8M) into sn3 (6M) grows sn3
    setup s; commit s active sn3
    same s base; merged s sn3 active; chain_agree s sn3 sn2 sn1 base; gone s active
    grown s sn3
    # ... and into sn2 (6M) whose backing sn1 (8M) has data past 6M: the
    # grown range must read zeros (as active read there), not sn1's bytes
    setup t; commit t active sn2
    same t base; same t sn1; merged t sn2 active; chain_agree t sn2 sn1 base; gone t sn3 active
    grown t sn2
    # a grown base below a kept child, over a longer backing file:
    # under(8M) <- small(4M) <- mid(8M) <- leaf(8M), mid into small; leaf
    # is repointed and reads as before, and under's data past 4M must not
    # show through the grown small (mid read zeros there)
    U=$(lpath "$SUB/u"); mkdir -p "$U"
    qimg create -q -f qcow2 "$U/under.qcow2" 8M
    qio "$U/under.qcow2" "write -P 0x95 3M 5M"
    qimg create -q -f qcow2 -b under.qcow2 -F qcow2 "$U/small.qcow2" 4M
    qimg create -q -f qcow2 -b small.qcow2 -F qcow2 "$U/mid.qcow2" 8M
    qimg create -q -f qcow2 -b mid.qcow2 -F qcow2 "$U/leaf.qcow2" 8M
    qio "$U/small.qcow2" "write -P 0x91 0 4M"
    qio "$U/mid.qcow2" "write -P 0x92 3M 2M" "write -z 1M 64k" "write -P 0x94 7M 4k"
    qio "$U/leaf.qcow2" "write -P 0x93 6M 64k"
    rpc image-import "{\"image\":$(vref "$SUB/u/leaf.qcow2")}" >/dev/null || fail "u: import"
    for i in under mid leaf; do qemu-img convert -O raw "$U/$i.qcow2" "$TEST_TMP/u-$i.raw"; done
    commit u mid small
    same u leaf; same u under; merged u small mid; chain_agree u leaf small under; gone u mid
    grown u small

    # a cancelled commit: the chain reads as before and is unchanged
    setup x
    j=$(rpc block-commit "{\"top\":$(vref "$SUB/x/sn3.qcow2"),\"base\":$(vref "$SUB/x/base.qcow2"),\"speed\":1048576}") ||
        fail "x: block-commit refused"
    id=$(jq .id <<<"$j")
    i=0   # cancel once the copy has begun
    until [ "$(rpc query-jobs '{}' | jq ".[] | select(.id == $id) | .progress.current")" -gt 0 ] 2>/dev/null; do
        i=$((i+1)); [ $i -lt 600 ] || fail "x: the commit made no progress"; sleep 0.01
    done
    rpc job-cancel "{\"id\":$id}" >/dev/null || check_fail "x: job-cancel"
    j=$(rpc job-wait "{\"id\":$id,\"timeout\":60}")
    assert_eq true "$(jq -r .cancelled <<<"$j")" "x: cancelled"
    same x active; chain_agree x active sn3 sn2 sn1 base
    rpc job-dismiss "{\"id\":$id}" >/dev/null

    # refusals
    setup r
    qimg create -q -f qcow2 -b sn1.qcow2 -F qcow2 "$(lpath "$SUB/r/other.qcow2")" 8M
    rpc image-import "{\"image\":$(vref "$SUB/r/other.qcow2")}" >/dev/null || fail "r: import other"
    e=$(rpc_err block-commit "{\"top\":$(vref "$SUB/r/sn3.qcow2"),\"base\":$(vref "$SUB/r/base.qcow2")}")
    assert_eq InUse "$(err_class "$e")" "r: sn1 has another child"
    assert_match "other.qcow2" "$(err_msg "$e")" "r: the refusal names the other child"
    e=$(rpc_err block-commit "{\"top\":$(vref "$SUB/r/sn2.qcow2"),\"base\":$(vref "$SUB/r/sn1.qcow2")}")
    assert_eq InUse "$(err_class "$e")" "r: committing into sn1 with another child"
    e=$(rpc_err block-commit "{\"top\":$(vref "$SUB/r/sn2.qcow2"),\"base\":$(vref "$SUB/r/sn3.qcow2")}")
    assert_eq -32602 "$(jq .code <<<"$e")" "r: base not below top"
    e=$(rpc_err block-commit "{\"top\":$(vref "$SUB/r/base.qcow2")}")
    assert_eq -32602 "$(jq .code <<<"$e")" "r: top without backing"
    same r active
    assert_eq 0 "$(rpc query-jobs '{}' | jq length)" "jobs left"
}

for_each_backend run
