#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-live-inuse.sh — the offline path refuses the images of a running
# domain (issue 5, acceptance 4; issue 4's "an image used by a running
# libvirt domain is refused by the offline path with a clear error").
#
# A running domain's disk vda is the chain base ← mid ← top ← base.s1
# (s1 a live snapshot) on the dir volume; vdb a gluster disk.  image-rebase
# (unsafe and safe), image-delete, image-check repair, snapshot-revert and
# snapshot-delete on images of the running chain are refused with InUse,
# and files (sha256sum), qemu-img info and the catalog are unchanged.  An
# image sharing only a read-only backing file with the running domain can
# still be pulled offline.  A live snapshot-create whose libvirt call fails
# (the domain is destroyed while gvmd holds the call back) leaves no
# overlay behind and the catalog unchanged.
. "$GVM_TESTDIR/lib.sh"
need_fault_injection
. "$GVM_TESTDIR/lib-image.sh"
need jq qemu-img qemu-io sha256sum
need_gluster
need_libvirt

start_gvmd --libvirt-uri "$LIBVIRT_URI"
FUSE=$TEST_TMP/fuse
gluster_fuse_mount "$FUSE"
gluster_volume_add gl
SUB=gvmt-iu-$$
IMAGES=$GVMD_DIR/state/images
LF=$IMAGES/$SUB
GF=$FUSE/$SUB
mkdir -p "$LF" "$GF" || fail "cannot make the test directories"
at_exit "rm -rf '$GF'"

mk() { # VOL PATH [BACKING]
    rpc image-create "$(jq -nc --arg v "$1" --arg p "$2" --arg b "${3:-}" \
        '{volume:$v, path:$p, format:"qcow2", size:16777216} +
         (if $b == "" then {} else {backing:$b, "backing-format":"qcow2"} end)')" >/dev/null ||
        fail "image-create $1:$2 failed"
}
mk local "$SUB/base.qcow2"
mk local "$SUB/mid.qcow2" "local:$SUB/base.qcow2"
mk local "$SUB/top.qcow2" "local:$SUB/mid.qcow2"
mk local "$SUB/other.qcow2" "local:$SUB/base.qcow2"   # shares base, not running
mk gl "$SUB/g.qcow2"
qio "$LF/base.qcow2" "write -P 0x51 0 1M"
qio "$LF/mid.qcow2" "write -P 0x52 1M 1M"
qio "$LF/top.qcow2" "write -P 0x53 2M 1M"
qio "$LF/other.qcow2" "write -P 0x54 3M 1M"

DOM=gvmt-iu-$$
dx() { rpc domain-disk-xml "{\"image\":\"$1\",\"target\":\"$2\"}" | jq -r .xml; }
libvirt_define_test_domain "$DOM" "$(dx "local:$SUB/top.qcow2" vda)
$(dx "gl:$SUB/g.qcow2" vdb)"
tvirsh start "$DOM" >/dev/null || fail "virsh start $DOM failed"
rpc domain-attach "{\"domain\":\"$DOM\"}" >/dev/null || fail "domain-attach failed"
rpc snapshot-create "{\"name\":\"s1\",\"domain\":\"$DOM\"}" >/dev/null ||
    fail "live snapshot-create failed"
ACTIVE=$SUB/base.s1.qcow2
[ -f "$IMAGES/$ACTIVE" ] || fail "the live snapshot's overlay $ACTIVE is missing"

# ---- the state that must not change ----------------------------------------------
state() {
    (cd "$LF" && sha256sum base.qcow2 mid.qcow2 top.qcow2)
    qemu-img info -U --backing-chain --output=json "$IMAGES/$ACTIVE" |
        jq -c '[.[] | {filename, "backing-filename", "virtual-size"}]'
    rpc image-list '{}' | jq -S -c 'map(del(."actual-size"))'
    rpc snapshot-list '{}' | jq -S -c .
    rpc domain-list '{}' | jq -S -c 'map(del(.live))'
}
before=$(state)

# refused OP PARAMS WHAT: InUse naming the running domain, nothing changed.
refused() {
    local e
    e=$(rpc_err "$1" "$2") || return 0
    note "$1: $(err_msg "$e")"
    assert_eq InUse "$(err_class "$e")" "$3: class"
    assert_match "$DOM" "$(err_msg "$e")" "$3: names the running domain"
    assert_match "running" "$(err_msg "$e")" "$3: says it runs"
    assert_eq "$before" "$(state)" "$3: state afterwards"
}

refused image-rebase "{\"image\":\"local:$SUB/top.qcow2\",\"backing\":\"local:$SUB/base.qcow2\",\"mode\":\"unsafe\"}" \
    "rebase of an image in the running chain"
refused image-rebase "{\"image\":\"local:$SUB/mid.qcow2\",\"backing\":null,\"mode\":\"safe\"}" \
    "safe rebase of an image in the running chain"
refused image-delete "{\"image\":\"local:$ACTIVE\"}" "image-delete of the active layer"
refused image-check "{\"image\":\"local:$SUB/top.qcow2\",\"repair\":\"leaks\"}" "image-check repair of a backing image"
refused image-check "{\"image\":\"local:$ACTIVE\",\"repair\":\"all\"}" "image-check repair of the active layer"
refused snapshot-delete '{"snapshot":"s1"}' "snapshot-delete"
e=$(rpc_err snapshot-revert '{"snapshot":"s1"}')
assert_eq InUse "$(err_class "$e")" "snapshot-revert: class"
assert_eq "snapshot-revert needs domain $DOM shut off; it is running." "$(err_msg "$e")" "snapshot-revert: message"
assert_eq "$before" "$(state)" "snapshot-revert: state afterwards"
# Checking without repair only reads: allowed.
rpc image-check "{\"image\":\"local:$SUB/top.qcow2\"}" >/dev/null || check_fail "a read-only image-check was refused"

# An offline pull into an image that only shares the (read-only) base with
# the running domain is fine: QEMU only reads base too.
j=$(rpc block-pull "{\"image\":\"local:$SUB/other.qcow2\"}") || fail "block-pull of other.qcow2 was refused"
jid=$(printf '%s' "$j" | jq -r .id)
w=$(rpc job-wait "{\"id\":$jid,\"timeout\":60}") || fail "job-wait failed"
assert_eq null "$(printf '%s' "$w" | jq -r '.error.message // "null"')" "pull of other.qcow2: error"
rpc job-dismiss "{\"id\":$jid}" >/dev/null
assert_eq null "$(qemu-img info --output=json "$LF/other.qcow2" | jq -r '."backing-filename" // "null"')" "other.qcow2 flattened"
qio "$LF/other.qcow2" "read -P 0x51 0 1M" "read -P 0x54 3M 1M"
before=$(state)

# ---- a live snapshot whose libvirt call fails leaves nothing behind -----------------
# gvmd is restarted so that it holds the libvirt call back 3 s (after the
# overlays exist); the domain is destroyed meanwhile, so libvirt refuses.
stop_gvmd
GVMD_FAULT="step:libvirt-snapshot:delay3000" start_gvmd --libvirt-uri "$LIBVIRT_URI"
files_before=$(ls "$LF" "$GF" | sort)
rpc snapshot-create "{\"name\":\"s2\",\"domain\":\"$DOM\"}" >"$TEST_TMP/s2.out" 2>"$TEST_TMP/s2.err" &
spid=$!
for i in $(seq 1 50); do
    [ -f "$LF/base.s2.qcow2" ] && break
    sleep 0.1
done
[ -f "$LF/base.s2.qcow2" ] || check_fail "gvmd did not create the overlay of s2 first"
libvirt_kill_domain "$DOM"
wait "$spid" && check_fail "snapshot-create s2 succeeded on a domain destroyed under it: $(cat "$TEST_TMP/s2.out")"
e=$(cat "$TEST_TMP/s2.err")
note "failed live snapshot: $e"
assert_eq VirtError "$(err_class "$e")" "failed live snapshot: class"
assert_match "removed" "$(err_msg "$e")" "failed live snapshot: says the overlays were removed"
assert_eq "$files_before" "$(ls "$LF" "$GF" | sort)" "files after the failed live snapshot"
[ -e "$LF/base.s2.qcow2" ] && check_fail "overlay base.s2.qcow2 left behind"
[ -e "$GF/g.s2.qcow2" ] && check_fail "overlay g.s2.qcow2 left behind"
rpc_err snapshot-info '{"snapshot":"s2"}' >/dev/null
now=$(state)
assert_eq "$before" "$now" "catalog and files after the failed live snapshot"

# With the domain stopped, the offline path takes the images again.
j=$(rpc snapshot-delete '{"snapshot":"s1"}') || fail "snapshot-delete s1 with the domain stopped failed"
jid=$(printf '%s' "$j" | jq -r .id)
w=$(rpc job-wait "{\"id\":$jid,\"timeout\":60}") || fail "job-wait failed"
assert_eq null "$(printf '%s' "$w" | jq -r '.error.message // "null"')" "snapshot-delete s1 offline: error"
stop_gvmd
exit 0
