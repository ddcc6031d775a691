#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-rebase-crash.sh — crash safety of a safe image-rebase: gvmd is
# killed (SIGKILL from inside, through the test-only GVMD_FAULT: the faulty
# store and the named journal fault points) at every journaled step and at
# several write and flush counts, then restarted.  After recovery, for every
# moment of death:
#   - the job concluded without error (recovery resumed or rolled forward);
#   - qemu-img check finds nothing (no corruption; leaks repaired);
#   - the image reads exactly what it read before (qemu-img compare against
#     a flat copy made before);
#   - the catalog edge is what the header says (image-info, qemu-img info).
# Also a write that fails (not a kill): the job concludes with a
# StorageError saying the image still reads as before, and it does.
. "$GVM_TESTDIR/lib.sh"
need_fault_injection
. "$GVM_TESTDIR/lib-image.sh"
. "$GVM_TESTDIR/lib-crash.sh"

# Where scenario files go: ROOT (local view) is volume path PFX of VOL.
VOL=local PFX= ROOT=$GVMD_DIR/state/images
mkdir -p "$ROOT"
n=0

# One chain built with qemu-img, copied for every scenario (into cN/):
# base (4M) <- mid (6M) <- top (8M), data in many places so that the copy
# makes many writes; backing names relative, so the copies stand alone.
P=$TEST_TMP/proto
mkdir -p "$P"
qimg create -q -f qcow2 "$P/base.qcow2" 4M
qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$P/mid.qcow2" 6M
qimg create -q -f qcow2 -b mid.qcow2 -F qcow2 "$P/top.qcow2" 8M
qio "$P/base.qcow2" "write -P 0x11 0 4M"
qio "$P/mid.qcow2" "write -P 0x22 0 64k" "write -P 0x23 512k 192k" \
    "write -z 1M 128k" "write -P 0x24 1536k 64k" "write -P 0x25 2M 1M" \
    "write -z 3200k 64k" "write -P 0x26 4M 256k" "write -P 0x27 5M 64k"
qio "$P/top.qcow2" "write -P 0x33 576k 64k" "write -P 0x34 7M 64k"
qemu-img convert -O raw "$P/top.qcow2" "$TEST_TMP/flat.raw" || fail "flat copy"
chain() { cp -r "$P" "$ROOT/$1"; }

# invariants P WHAT [LEAKS-OK]: content, check, catalog edge == header.
invariants() {
    t=$ROOT/$1/top.qcow2
    out=$(qemu-img check "$t" 2>&1); rc=$?
    if [ $rc -eq 3 ] && [ -n "${3:-}" ]; then
        note "$2: qemu-img check finds leaked clusters (no corruption): $(echo $out | head -c 200)"
    elif [ $rc -ne 0 ]; then
        check_fail "$2: qemu-img check of $1/top (exit $rc): $out"
    fi
    qemu-img compare -q "$t" "$TEST_TMP/flat.raw" || check_fail "$2: content of $1/top changed"
    hdr=$(qemu-img info --output=json "$t" | jq -r '."backing-filename" // "none"')
    info=$(rpc image-info "{\"image\":\"$VOL:$PFX$1/top.qcow2\"}") || { check_fail "$2: image-info"; return; }
    assert_eq "$hdr" "$(jq -r '."backing-filename" // "none"' <<<"$info")" "$2: image-info header name"
    edge=$(jq -r .backing <<<"$info")
    if [ "$edge" = null ]; then cat=none; else
        cat=$(rpc image-info "{\"image\":$edge}" | jq -r .path); cat=${cat#$PFX$1/}; fi
    assert_eq "$hdr" "$cat" "$2: catalog edge of $1/top vs its header"
}

# crash SPEC: one scenario.
crash() {
    n=$((n+1)); p=c$n
    chain $p
    crash_start "$1"
    rpc image-import "{\"image\":\"$VOL:$PFX$p/top.qcow2\"}" >/dev/null || fail "$1: import"
    rpc image-rebase "{\"image\":\"$VOL:$PFX$p/top.qcow2\",\"backing\":\"$VOL:$PFX$p/base.qcow2\",\"mode\":\"safe\",\"op-id\":\"$p\"}" \
        >/dev/null 2>&1
    crash_restart "$1" $p
    crash_job $p "$1" || return
    crash_job_recovered "$1"
    assert_eq base.qcow2 "$(qemu-img info --output=json "$ROOT/$p/top.qcow2" | jq -r '."backing-filename"')" \
        "$1: backing file after recovery"
    invariants $p "$1"
    note "$1: $(crash_log_lines 'recovering|rolled|header|leaked')"
    stop_gvmd
}

# Every journaled step, the named point after the header write, and a spread
# of write and flush counts (the rebase below makes about 30 writes).
for spec in step:image-rebase:kill step:copying:kill step:switch-header:kill \
            step:image-rebase.header-written:kill \
            write:1:kill write:2:kill write:4:kill write:7:kill write:11:kill \
            write:16:kill write:22:kill flush:1:kill flush:2:kill; do
    crash "$spec"
done

# The same on a gluster volume (gfapi; qemu-img on a FUSE mount), a few
# moments only: each step kind and a write in the middle of the copy.
if [ -n "${GVM_GLUSTER_VOLUME:-}" ] || command -v glusterd >/dev/null 2>&1; then
    need_gluster
    gluster_fuse_mount "$TEST_TMP/fuse"
    start_gvmd
    gluster_volume_add gl
    stop_gvmd
    gsub=crash-$(basename "$TEST_TMP")
    mkdir -p "$TEST_TMP/fuse/$gsub" || fail "cannot write to the FUSE mount"
    at_exit "rm -rf '$TEST_TMP/fuse/$gsub'"
    VOL=gl PFX=$gsub/ ROOT=$TEST_TMP/fuse/$gsub
    for spec in step:copying:kill step:switch-header:kill \
                step:image-rebase.header-written:kill write:7:kill; do
        crash "$spec"
    done
    VOL=local PFX= ROOT=$GVMD_DIR/state/images
else
    note "no gluster: the gluster scenarios are skipped"
fi

# ---- a failing write: the job fails, nothing guest-visible changed ------------------
n=$((n+1)); p=c$n
chain $p
crash_start write:4:fail
rpc image-import "{\"image\":\"$VOL:$PFX$p/top.qcow2\"}" >/dev/null || fail "import"
j=$(rpc image-rebase "{\"image\":\"$VOL:$PFX$p/top.qcow2\",\"backing\":\"$VOL:$PFX$p/base.qcow2\",\"mode\":\"safe\"}") ||
    fail "rebase refused"
j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":60}")
assert_eq concluded "$(jq -r .status <<<"$j")" "failed write: status"
assert_eq StorageError "$(jq -r .error.data.class <<<"$j")" "failed write: error class"
assert_match "still reads as before" "$(jq -r .error.message <<<"$j")" "failed write: message says the state"
assert_eq mid.qcow2 "$(qemu-img info --output=json "$ROOT/$p/top.qcow2" | jq -r '."backing-filename"')" \
    "failed write: backing file unchanged"
invariants $p "failed write"
# The lock is gone and a retry succeeds.
j=$(rpc image-rebase "{\"image\":\"$VOL:$PFX$p/top.qcow2\",\"backing\":\"$VOL:$PFX$p/base.qcow2\",\"mode\":\"safe\"}") ||
    fail "retry refused"
j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":60}")
assert_eq null "$(jq -c .error <<<"$j")" "retry after the failed write"
# The failed write may leave a cluster allocated past the end of the file
# that no check sees until the file grows over it (an engine matter):
# leaks are tolerated here, corruption is not.
invariants $p "retry" leaks-ok
stop_gvmd
