#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-commit-crash.sh — crash safety of block-commit and block-pull: gvmd
# is killed (SIGKILL from inside, through the test-only GVMD_FAULT: named
# journal steps and fault points, and the faulty store's write and flush
# counts) at every journaled step and at many write counts, then
# restarted.  After recovery, for every moment of death:
#   - the job concluded without error (rolled back and ran again, or rolled
#     forward);
#   - qemu-img check finds no corruption and no leak in the images kept;
#   - the active image reads exactly what it read before;
#   - commit: base reads what top read; the removed images are gone from
#     storage and catalog; the active image's header names base and the
#     catalog edge agrees;
#   - pull: the header names the new base, the catalog edge agrees, and the
#     intermediates are byte-identical to what they were.
# A commit whose base is smaller than top and grows first ("grow"):
#   under(8M) <- small(4M) <- mid(8M) <- leaf(8M), mid into small, killed
#   in and around the grow: small is 8M on storage and in the catalog,
#   reads what mid read (zeros where mid read past small's old end, not
#   under's data), leaf reads as before and names small, under is untouched.
# Also a write that fails (not a kill): the job concludes with an error
# saying the chain is unchanged, and it is.
. "$GVM_TESTDIR/lib.sh"
need_fault_injection
. "$GVM_TESTDIR/lib-image.sh"
. "$GVM_TESTDIR/lib-crash.sh"

ROOT=$GVMD_DIR/state/images
mkdir -p "$ROOT"
n=0

# base(8M) <- sn1(8M) <- sn2(6M) <- sn3(6M) <- active(8M), data in many
# places so that the copy makes many writes.
P=$TEST_TMP/proto
mkdir -p "$P"
qimg create -q -f qcow2 "$P/base.qcow2" 8M
qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$P/sn1.qcow2" 8M
qimg create -q -f qcow2 -b sn1.qcow2 -F qcow2 "$P/sn2.qcow2" 6M
qimg create -q -f qcow2 -b sn2.qcow2 -F qcow2 "$P/sn3.qcow2" 6M
qimg create -q -f qcow2 -b sn3.qcow2 -F qcow2 "$P/active.qcow2" 8M
qio "$P/base.qcow2" "write -P 0x11 0 8M"
qio "$P/sn1.qcow2" "write -P 0x21 1M 1M" "write -z 3M 512k" "write -P 0x22 7M 512k" \
    "write -P 0x23 0 64k" "write -P 0x24 256k 64k"
qio "$P/sn2.qcow2" "write -P 0x31 1536k 1M" "write -z 5M 256k" "write -P 0x32 128k 64k" \
    "write -P 0x33 4M 128k"
qio "$P/sn3.qcow2" "write -P 0x41 2M 128k" "write -z 1M 64k" "write -P 0x42 4608k 512k" \
    "write -P 0x43 3200k 64k" "write -P 0x44 5376k 64k"
qio "$P/active.qcow2" "write -P 0x51 64k 64k" "write -P 0x52 7M 64k" "write -z 4608k 64k"
qemu-img convert -O raw "$P/active.qcow2" "$TEST_TMP/active.raw" || fail "flat copy"
qemu-img convert -O raw "$P/sn3.qcow2" "$TEST_TMP/sn3.raw" || fail "flat copy"

P2=$TEST_TMP/proto2
mkdir -p "$P2"
qimg create -q -f qcow2 "$P2/under.qcow2" 8M
qimg create -q -f qcow2 -b under.qcow2 -F qcow2 "$P2/small.qcow2" 4M
qimg create -q -f qcow2 -b small.qcow2 -F qcow2 "$P2/mid.qcow2" 8M
qimg create -q -f qcow2 -b mid.qcow2 -F qcow2 "$P2/leaf.qcow2" 8M
qio "$P2/under.qcow2" "write -P 0x61 0 8M"
qio "$P2/small.qcow2" "write -P 0x62 0 1M" "write -P 0x63 3M 1M"
qio "$P2/mid.qcow2" "write -P 0x64 512k 1M" "write -z 3584k 64k" "write -P 0x65 5M 512k" \
    "write -P 0x66 7M 64k"
qio "$P2/leaf.qcow2" "write -P 0x67 2M 64k" "write -P 0x68 6M 64k"
qemu-img convert -O raw "$P2/leaf.qcow2" "$TEST_TMP/leaf.raw" || fail "flat copy"
qemu-img convert -O raw "$P2/mid.qcow2" "$TEST_TMP/mid.raw" || fail "flat copy"

check_clean() {
    out=$(qemu-img check "$1" 2>&1) || check_fail "$2: qemu-img check of $(basename "$1"): $out"
}

# catalog_backing P IMG: the catalogued backing's file name, or none.
catalog_backing() {
    info=$(rpc image-info "{\"image\":\"local:$1/$2.qcow2\"}") || { echo error; return; }
    edge=$(jq -r .backing <<<"$info")
    if [ "$edge" = null ]; then echo none; else
        rpc image-info "{\"image\":$edge}" | jq -r .path | xargs basename; fi
}

commit_invariants() {
    p=$1; w=$2; d=$ROOT/$p
    check_clean "$d/active.qcow2" "$w"; check_clean "$d/base.qcow2" "$w"
    qemu-img compare -q "$d/active.qcow2" "$TEST_TMP/active.raw" || check_fail "$w: content of active changed"
    qemu-img convert -O raw "$d/base.qcow2" "$TEST_TMP/b.raw"
    cmp -s -n 6291456 "$TEST_TMP/b.raw" "$TEST_TMP/sn3.raw" || check_fail "$w: base does not read what sn3 read"
    assert_eq base.qcow2 "$(qemu-img info --output=json "$d/active.qcow2" | jq -r '."backing-filename"')" \
        "$w: header of active"
    assert_eq base.qcow2 "$(catalog_backing $p active)" "$w: catalog edge of active"
    for i in sn1 sn2 sn3; do
        [ -e "$d/$i.qcow2" ] && check_fail "$w: $i still on storage"
        e=$(rpc_err image-info "{\"image\":\"local:$p/$i.qcow2\"}")
        assert_eq NotFound "$(err_class "$e")" "$w: catalog row of $i"
    done
}

pull_invariants() {
    p=$1; w=$2; d=$ROOT/$p
    check_clean "$d/active.qcow2" "$w"
    qemu-img compare -q "$d/active.qcow2" "$TEST_TMP/active.raw" || check_fail "$w: content of active changed"
    assert_eq sn1.qcow2 "$(qemu-img info --output=json "$d/active.qcow2" | jq -r '."backing-filename"')" \
        "$w: header of active"
    assert_eq sn1.qcow2 "$(catalog_backing $p active)" "$w: catalog edge of active"
    for i in base sn1 sn2 sn3; do
        cmp -s "$d/$i.qcow2" "$P/$i.qcow2" || check_fail "$w: $i was modified"
    done
}

grow_invariants() {
    p=$1; w=$2; d=$ROOT/$p
    check_clean "$d/leaf.qcow2" "$w"; check_clean "$d/small.qcow2" "$w"
    qemu-img compare -q "$d/leaf.qcow2" "$TEST_TMP/leaf.raw" || check_fail "$w: content of leaf changed"
    qemu-img compare -q "$d/small.qcow2" "$TEST_TMP/mid.raw" || check_fail "$w: small does not read what mid read"
    cmp -s "$d/under.qcow2" "$P2/under.qcow2" || check_fail "$w: under was modified"
    assert_eq 8388608 "$(qemu-img info --output=json "$d/small.qcow2" | jq '."virtual-size"')" "$w: size of small"
    assert_eq 8388608 "$(rpc image-info "{\"image\":\"local:$p/small.qcow2\"}" | jq '."virtual-size"')" \
        "$w: catalogued size of small"
    assert_eq small.qcow2 "$(qemu-img info --output=json "$d/leaf.qcow2" | jq -r '."backing-filename"')" \
        "$w: header of leaf"
    assert_eq small.qcow2 "$(catalog_backing $p leaf)" "$w: catalog edge of leaf"
    [ -e "$d/mid.qcow2" ] && check_fail "$w: mid still on storage"
    e=$(rpc_err image-info "{\"image\":\"local:$p/mid.qcow2\"}")
    assert_eq NotFound "$(err_class "$e")" "$w: catalog row of mid"
}

# crash KIND SPEC: one scenario (KIND commit, pull or grow).
crash() {
    n=$((n+1)); p=c$n; w="$1 $2"
    if [ "$1" = grow ]; then cp -r "$P2" "$ROOT/$p"; else cp -r "$P" "$ROOT/$p"; fi
    crash_start "$2"
    if [ "$1" = grow ]; then
        rpc image-import "{\"image\":\"local:$p/leaf.qcow2\"}" >/dev/null || fail "$w: import"
        rpc block-commit "{\"top\":\"local:$p/mid.qcow2\",\"base\":\"local:$p/small.qcow2\",\"op-id\":\"$p\"}" >/dev/null 2>&1
    elif [ "$1" = commit ]; then
        rpc image-import "{\"image\":\"local:$p/active.qcow2\"}" >/dev/null || fail "$w: import"
        rpc block-commit "{\"top\":\"local:$p/sn3.qcow2\",\"base\":\"local:$p/base.qcow2\",\"op-id\":\"$p\"}" >/dev/null 2>&1
    else
        rpc image-import "{\"image\":\"local:$p/active.qcow2\"}" >/dev/null || fail "$w: import"
        rpc block-pull "{\"image\":\"local:$p/active.qcow2\",\"base\":\"local:$p/sn1.qcow2\",\"op-id\":\"$p\"}" >/dev/null 2>&1
    fi
    crash_restart "$w" $p
    crash_job $p "$w" || return
    crash_job_recovered "$w"
    "${1}_invariants" $p "$w"
    note "$w: $(crash_log_lines 'recovered|rolled|rolling|switching|complete')"
    stop_gvmd
}

# Every journaled step and named point, and a spread of write and flush
# counts (the commit makes about 20 writes, the pull about 17).
# GVM_CRASH_FULL=1 adds more counts (slower).
commit_specs="step:block-commit:kill step:copying:kill step:block-commit.run:kill
    step:switch:kill step:block-commit.child-switched:kill step:remove:kill
    step:block-commit.unlink:kill write:1:kill write:2:kill write:5:kill
    write:9:kill write:15:kill write:17:kill write:18:kill flush:1:kill flush:3:kill"
pull_specs="step:block-pull:kill step:copying:kill step:block-pull.run:kill
    step:switch-header:kill step:block-pull.header-written:kill write:1:kill
    write:3:kill write:6:kill write:12:kill write:16:kill flush:1:kill"
if [ -n "${GVM_CRASH_FULL:-}" ]; then
    commit_specs="$commit_specs write:3:kill write:7:kill write:12:kill flush:2:kill flush:4:kill"
    pull_specs="$pull_specs write:2:kill write:4:kill write:9:kill write:14:kill flush:2:kill"
fi
grow_specs="step:grow:kill step:copying:kill step:block-commit.run:kill step:switch:kill
    step:remove:kill write:1:kill write:2:kill write:3:kill write:4:kill write:6:kill
    flush:1:kill flush:2:kill flush:3:kill"
for spec in $commit_specs; do crash commit "$spec"; done
for spec in $grow_specs; do crash grow "$spec"; done
for spec in $pull_specs; do crash pull "$spec"; done

# ---- a failing write: the job fails, the chain is unchanged ------------------------
n=$((n+1)); p=c$n
cp -r "$P" "$ROOT/$p"
crash_start write:3:fail
rpc image-import "{\"image\":\"local:$p/active.qcow2\"}" >/dev/null || fail "import"
j=$(rpc block-commit "{\"top\":\"local:$p/sn3.qcow2\",\"base\":\"local:$p/base.qcow2\"}") || fail "commit refused"
j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":60}")
assert_eq StorageError "$(jq -r .error.data.class <<<"$j")" "failed write: error class"
assert_match "unchanged" "$(jq -r .error.message <<<"$j")" "failed write: message says the state"
assert_eq sn3.qcow2 "$(qemu-img info --output=json "$ROOT/$p/active.qcow2" | jq -r '."backing-filename"')" \
    "failed write: backing of active unchanged"
qemu-img compare -q "$ROOT/$p/active.qcow2" "$TEST_TMP/active.raw" || check_fail "failed write: content of active"
# The lock is gone and a retry succeeds.
j=$(rpc block-commit "{\"top\":\"local:$p/sn3.qcow2\",\"base\":\"local:$p/base.qcow2\"}") || fail "retry refused"
j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":60}")
assert_eq null "$(jq -c .error <<<"$j")" "retry after the failed write"
commit_invariants $p "retry"
stop_gvmd
note "$n scenarios"
