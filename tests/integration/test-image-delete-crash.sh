#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-image-delete-crash.sh — image-delete is all or nothing (issue 10):
# the catalog row goes in a journaled step before the file, so whatever
# moment gvmd dies at (GVMD_FAULT: the named journal points, and the
# faulty store's unlink, which counts as a write), the restart leaves the
# catalog and storage in agreement — chain-audit finds no difference:
#   image-delete          killed after the start record: row and file stay;
#   unlink-file           killed before the row's removal commits: both stay;
#   image-delete.removed  killed after the row's removal, before the unlink:
#                         the restart finishes the unlink;
#   write:1:kill          killed as the unlink reaches the store: the same;
#   write:1:fail          the unlink fails: the call fails with a
#                         StorageError, the row is back with its id, the
#                         file stays, nothing is left pending.
# The images are made with qemu-img and imported (reads only), so the
# unlink is the store's first write.
. "$GVM_TESTDIR/lib.sh"
need_fault_injection
. "$GVM_TESTDIR/lib-image.sh"
. "$GVM_TESTDIR/lib-crash.sh"
need jq qemu-img

ROOT=$GVMD_DIR/state/images
mkdir -p "$ROOT"
n=0

# setup P: base <- top in P/, catalogued; prints top's id.
setup() {
    mkdir -p "$ROOT/$1"
    qimg create -q -f qcow2 "$ROOT/$1/base.qcow2" 1M
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$ROOT/$1/top.qcow2" 1M
    rpc image-import "{\"image\":\"local:$1/top.qcow2\"}" | jq -r .id
}

# agree WHAT: chain-audit finds no difference; the journal keeps no record
# of an ended image-delete (nothing pending, nothing piling up).
agree() {
    a=$(rpc chain-audit '{}') || { check_fail "$1: chain-audit failed"; return; }
    assert_eq 0 "$(jq '.differences | length' <<<"$a")" "$1: chain-audit differences ($(jq -c .differences <<<"$a"))"
    if command -v sqlite3 >/dev/null 2>&1; then
        assert_eq 0 "$(sqlite3 "$GVM_CATALOG" "SELECT count(*) FROM journal WHERE kind = 'image-delete'")" \
            "$1: image-delete records left in the journal"
    fi
}

# crash SPEC OUTCOME: kill gvmd at SPEC during image-delete of P/top;
# OUTCOME "kept" (row and file stay) or "gone" (both gone) after restart.
crash() {
    n=$((n+1)); p=k$n
    start_gvmd
    id=$(setup $p) || fail "$1: import"
    stop_gvmd
    crash_start "$1"
    rpc image-delete "{\"image\":\"local:$p/top.qcow2\"}" >/dev/null 2>&1
    crash_restart "$1" $p
    row=$(rpc image-list '{}' | jq -r --arg p "$p/top.qcow2" '.[] | select(.path == $p) | .id')
    if [ "$2" = kept ]; then
        assert_eq "$id" "$row" "$1: the row (same id)"
        [ -f "$ROOT/$p/top.qcow2" ] || check_fail "$1: the file is gone but the row stays"
    else
        assert_eq "" "$row" "$1: the row"
        [ ! -e "$ROOT/$p/top.qcow2" ] || check_fail "$1: the file is still there without its row"
        grep -q "finished the removal of its file" "$GVMD_DIR/gvmd.log" ||
            check_fail "$1: the restart did not say it finished the removal"
    fi
    [ -f "$ROOT/$p/base.qcow2" ] || check_fail "$1: base.qcow2 went"
    agree "$1"
    grep -q "could not be recovered" "$GVMD_DIR/gvmd.log" && check_fail "$1: recovery left the operation pending"
    # And the delete works now.
    if [ "$2" = kept ]; then
        rpc image-delete "{\"image\":\"local:$p/top.qcow2\"}" >/dev/null || check_fail "$1: image-delete after the restart"
        [ ! -e "$ROOT/$p/top.qcow2" ] || check_fail "$1: top.qcow2 after the second delete"
        agree "$1, deleted after the restart"
    fi
    stop_gvmd
    # A second restart finds nothing to do.
    mv "$GVMD_DIR/gvmd.log" "$TEST_TMP/gvmd-$p-2.log"
    start_gvmd
    grep -q "Journal replay" "$GVMD_DIR/gvmd.log" && check_fail "$1: something was replayed at the second start"
    stop_gvmd
}

crash step:image-delete:kill kept
crash step:unlink-file:kill kept
crash step:image-delete.removed:kill gone
crash write:1:kill gone

# ---- the unlink fails: the row comes back ----------------------------------------
start_gvmd
id=$(setup f) || fail "import f"
stop_gvmd
crash_start write:1:fail
e=$(rpc_err image-delete '{"image":"local:f/top.qcow2"}')
note "failed unlink: $(err_msg "$e")"
assert_eq StorageError "$(err_class "$e")" "failed unlink: class"
assert_match "local:f/top.qcow2" "$(err_msg "$e")" "failed unlink: names the image"
assert_eq "$id" "$(rpc image-list '{}' | jq -r '.[] | select(.path == "f/top.qcow2") | .id')" \
    "failed unlink: the row is back with its id"
[ -f "$ROOT/f/top.qcow2" ] || check_fail "failed unlink: the file is gone"
agree "failed unlink"
stop_gvmd
start_gvmd
grep -q "Journal replay" "$GVMD_DIR/gvmd.log" && check_fail "failed unlink: left something to replay"
rpc image-delete '{"image":"local:f/top.qcow2"}' >/dev/null || check_fail "image-delete after the failed one"
[ ! -e "$ROOT/f/top.qcow2" ] || check_fail "f/top.qcow2 after the second delete"
agree "after the second delete"
stop_gvmd
