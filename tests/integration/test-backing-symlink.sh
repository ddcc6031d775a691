#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-backing-symlink.sh — issue 11, item 3: a relative backing name is
# resolved as QEMU resolves it when it opens the image, on a dir volume and
# on both gluster volumes (QEMU joins the name to the image's directory and
# hands it to the system or to gfapi, which follow a symlinked directory
# and take each ".." from where it led):
#   - link -> real/a/b; link/top.qcow2 names "../base.qcow2": QEMU reads
#     real/a/base.qcow2, not the base.qcow2 beside link that the text
#     "link/../base.qcow2" suggests; gvmd's checksum and backing chain say
#     the same (before: the text, so a commit would write the other file);
#   - an overlay gvmd makes in link/ over the base.qcow2 beside link gets a
#     backing name that reaches that file when QEMU opens it ("../base.qcow2"
#     would not): qemu-io reads base.qcow2's data through it.
# The oracle on gluster is QEMU through gluster:// (gfapi, as a guest's QEMU
# opens it), not the FUSE mount; through gfapi_oracle, which runs it again
# when gfapi 10.3's client dies while it connects (a SIGSEGV seen once in
# CI on this test's qemu-io).
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq qemu-img qemu-io sha256sum

start_gvmd

# qpath PATH: what QEMU opens for the image at $SUB/PATH on this backend.
qpath() { if [ "$BACKEND" = dir ]; then lpath "$SUB/$1"; else guri "$SUB/$1"; fi; }

symlinked() {
    local D; D=$(lpath "$SUB")
    mkdir -p "$D/real/a/b" && ln -s real/a/b "$D/link" || fail "symlink setup"
    qimg create -q -f qcow2 "$D/real/a/base.qcow2" 1M
    qimg create -q -f qcow2 "$D/base.qcow2" 1M
    qimg create -q -f qcow2 -b ../base.qcow2 -F qcow2 "$D/real/a/b/top.qcow2" 1M
    qio "$D/real/a/base.qcow2" "write -P 0x61 0 64k"
    qio "$D/base.qcow2" "write -P 0x62 0 64k"
    # QEMU's gluster driver fails a short read (an L1 table that ends the
    # file is read as a whole sector): whole clusters, as gfapi writers leave.
    truncate -s %65536 "$D/real/a/base.qcow2" "$D/base.qcow2" "$D/real/a/b/top.qcow2"
    gfapi_oracle qemu-img convert -O raw "$(qpath link/top.qcow2)" "$TEST_TMP/link.raw" ||
        fail "qemu-img convert $(qpath link/top.qcow2)"
    want=$(sha256sum <"$TEST_TMP/link.raw" | cut -d' ' -f1)
    rm -f "$TEST_TMP/link.raw"
    assert_eq "$want" "$(rpc image-checksum "{\"image\":$(vref "$SUB/link/top.qcow2")}" | jq -r .sha256)" \
        "$BACKEND${PROFILE:+ $PROFILE}: checksum of link/top.qcow2 is that of the chain QEMU opens"
    assert_eq "$SUB/real/a/base.qcow2" \
        "$(rpc image-info "{\"image\":$(vref "$SUB/link/top.qcow2"),\"backing-chain\":true}" | jq -r '.chain[1].path')" \
        "$BACKEND${PROFILE:+ $PROFILE}: the backing file gvmd names for link/top.qcow2"

    rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$SUB/link/ov.qcow2\",\"format\":\"qcow2\",\"backing\":$(vref "$SUB/base.qcow2")}" \
        >/dev/null || fail "image-create link/ov.qcow2"
    note "$BACKEND${PROFILE:+ $PROFILE}: link/ov.qcow2 names $(qemu-img info -U --output=json "$D/real/a/b/ov.qcow2" | jq -r '."backing-filename"')"
    gfapi_oracle qemu-io -f qcow2 -c "read -P 0x62 0 64k" "$(qpath link/ov.qcow2)" >/dev/null ||
        check_fail "$BACKEND${PROFILE:+ $PROFILE}: QEMU does not read base.qcow2's data through link/ov.qcow2"
    for f in link/ov.qcow2 link/top.qcow2 real/a/base.qcow2 base.qcow2; do
        rpc image-delete "{\"image\":$(vref "$SUB/$f")}" >/dev/null 2>&1
    done
    rm -rf "$D/link" "$D/real" "$D/base.qcow2"
}

for_each_backend symlinked

