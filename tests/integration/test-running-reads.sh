#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-running-reads.sh — reads of a running guest's images (issue 10):
# image-checksum, image-map and image-check without repair of a running TCG
# domain's active layer are refused with InUse naming the domain and saying
# the answer could lag the guest's cache, unless allow-running: true is
# given; its backing file (QEMU only reads it) and an image no running
# domain uses are read as before, and so is the active layer once the
# domain stopped.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq qemu-img qemu-io
need_libvirt

start_gvmd --libvirt-uri "$LIBVIRT_URI"
SUB=gvmt-rr-$$
IMAGES=$GVMD_DIR/state/images
mkdir -p "$IMAGES/$SUB"
mk_local base.qcow2
mk_local top.qcow2 "$SUB/base.qcow2"
mk_local other.qcow2
qio "$IMAGES/$SUB/base.qcow2" "write -P 0x41 0 1M"
qio "$IMAGES/$SUB/other.qcow2" "write -P 0x42 0 1M"

DOM=gvmt-rr-$$
dx=$(rpc domain-disk-xml "{\"image\":\"local:$SUB/top.qcow2\",\"target\":\"vda\"}" | jq -r .xml) ||
    fail "domain-disk-xml"
libvirt_define_test_domain "$DOM" "$dx"
tvirsh start "$DOM" >/dev/null || fail "virsh start $DOM failed"

reads() { # IMAGE EXTRA-JSON: the three reads' params
    printf '%s\n' "image-checksum {\"image\":\"$1\"$2}" "image-map {\"image\":\"$1\"$2}" \
        "image-check {\"image\":\"$1\"$2}"
}
for img in "local:$SUB/top.qcow2"; do
    while read -r m p; do
        e=$(rpc_err "$m" "$p") || continue
        note "$m of $img: $(err_msg "$e")"
        assert_eq InUse "$(err_class "$e")" "$m of $img: class"
        assert_match "active layer of disk vda of running domain $DOM" "$(err_msg "$e")" "$m of $img: names the domain"
        assert_match "may lag what the guest wrote" "$(err_msg "$e")" "$m of $img: says why"
        assert_match "allow-running: true" "$(err_msg "$e")" "$m of $img: says how to read anyway"
    done < <(reads "$img" "")
    while read -r m p; do
        rpc "$m" "$p" >/dev/null || check_fail "$m $p refused"
    done < <(reads "$img" ',"allow-running":true')
done
for img in "local:$SUB/base.qcow2" "local:$SUB/other.qcow2"; do
    while read -r m p; do
        rpc "$m" "$p" >/dev/null || check_fail "$m of $img (no running domain writes it) refused"
    done < <(reads "$img" "")
done
# A repair stays refused, allow-running or not.
e=$(rpc_err image-check "{\"image\":\"local:$SUB/top.qcow2\",\"repair\":\"leaks\",\"allow-running\":true}")
assert_eq InUse "$(err_class "$e")" "image-check repair with allow-running: class"

libvirt_kill_domain "$DOM"
while read -r m p; do
    rpc "$m" "$p" >/dev/null || check_fail "$m $p refused after the domain stopped"
done < <(reads "local:$SUB/top.qcow2" "")
stop_gvmd
