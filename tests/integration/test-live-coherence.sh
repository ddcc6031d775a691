#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-live-coherence.sh — issue 9, acceptance 2: a live snapshot-create
# followed at once by a live block-pull on a gluster network disk, ROUNDS
# times in a row (default 20), on the virt-profile volume.
#
# QEMU, another libgfapi client than gvmd, grows the new overlay while it
# pulls; gvmd then reads that overlay to conclude the job.  A gvmd that
# trusted its client's cached size judged the image corrupt ("L1 table
# entry 0 points to L2 table offset … past the end of the file") although
# QEMU's pull succeeded.  Each round must conclude without error, and then
# the domain XML, the catalog and the qcow2 headers (qemu-img info -U on a
# FUSE mount that caches nothing) name the same one-image chain, and
# chain-audit is clean.  After the last round the domain is stopped
# cleanly and the data reads back from the active image.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq xmllint qemu-img qemu-io virsh
need_gluster
need_libvirt
ROUNDS=${GVM_LIVE_COHERENCE_ROUNDS:-20}

start_gvmd --libvirt-uri "$LIBVIRT_URI"
SUB=lc$$
FUSE=$TEST_TMP/fuse
gluster_fuse_mount "$FUSE"
mkdir -p "$FUSE/$SUB" || fail "cannot write to the FUSE mount"
at_exit "rm -rf '$FUSE/$SUB'"
xp() { xmllint --xpath "$1" - 2>/dev/null; }

# The disk: one image of gvmd's (its size ends on a cluster boundary, which
# QEMU's gluster driver needs) with 4 MiB of data that every pull copies.
gluster_volume_add gv
rpc image-create "{\"volume\":\"gv\",\"path\":\"$SUB/base.qcow2\",\"format\":\"qcow2\",\"size\":67108864}" \
    >/dev/null || fail "image-create base"
qio "$FUSE/$SUB/base.qcow2" "write -P 0x5a 0 2M" "write -P 0xa5 6M 2M"

DOM=gvmt-lc-$$
libvirt_define_test_domain "$DOM" "<disk type='network' device='disk'>
  <driver name='qemu' type='qcow2'/>
  <source protocol='gluster' name='$GLUSTER_VOLUME/$SUB/base.qcow2'>
    <host name='127.0.0.1' port='24007'/>
  </source>
  <target dev='vda' bus='virtio'/>
</disk>"
tvirsh start "$DOM" >/dev/null || fail "virsh start $DOM failed"
rpc domain-attach "{\"domain\":\"$DOM\"}" >/dev/null || fail "domain-attach failed"

active() {
    rpc domain-list '{}' | jq -r --arg d "$DOM" \
        '.[] | select(.name==$d) | .disks[] | select(.target=="vda") | ."image-name"'
}

t0=$SECONDS
for k in $(seq 1 "$ROUNDS"); do
    rpc snapshot-create "{\"name\":\"r$k\",\"domain\":\"$DOM\"}" >/dev/null ||
        fail "round $k: live snapshot-create failed"
    act=$(active)
    j=$(rpc block-pull "{\"image\":\"$act\",\"base\":null}") ||
        fail "round $k: live block-pull of $act refused"
    id=$(jq .id <<<"$j")
    w=$(rpc job-wait "{\"id\":$id,\"timeout\":120}") || fail "round $k: job-wait failed"
    [ "$(jq -r .status <<<"$w")" = concluded ] && [ "$(jq -c .error <<<"$w")" = null ] ||
        fail "round $k: the live pull of $act did not conclude cleanly: $w"
    assert_eq true "$(jq -r .live <<<"$w")" "round $k: the pull went through libvirt"
    rpc job-dismiss "{\"id\":$id}" >/dev/null 2>&1

    path=${act#gv:}
    # The domain XML, the catalog and the headers: one image, no backing.
    live=$(tvirsh dumpxml "$DOM") || fail "virsh dumpxml failed"
    assert_eq "$GLUSTER_VOLUME/$path" "$(printf '%s' "$live" |
        xp "string(/domain/devices/disk[target/@dev='vda']/source/@name)")" "round $k: domain XML's vda"
    assert_eq 0 "$(printf '%s' "$live" |
        xp "count(/domain/devices/disk[target/@dev='vda']/backingStore/source)")" \
        "round $k: domain XML's backing chain of vda"
    assert_eq "$path" "$(rpc image-info "{\"image\":\"$act\",\"backing-chain\":true}" |
        jq -r '[.chain[].path] | join(" ")')" "round $k: catalog chain of vda"
    assert_eq "$FUSE/$path" "$(qemu-img info -U --backing-chain --output=json "$FUSE/$path" |
        jq -r '[.[].filename] | join(" ")')" "round $k: qcow2 header chain of vda"
    assert_eq 0 "$(rpc chain-audit "{\"image\":\"$act\"}" | jq '.differences | length')" \
        "round $k: chain-audit"
    [ "$_test_failed" -eq 0 ] || fail "round $k: catalog, XML and headers disagree"
done
note "$ROUNDS rounds of live snapshot-create + block-pull in $((SECONDS - t0)) s"

# A clean stop (QEMU flushes its caches), then the data from the last image.
tvirsh destroy --graceful "$DOM" >/dev/null 2>&1 || tvirsh destroy "$DOM" >/dev/null 2>&1
qio "$FUSE/$path" "read -P 0x5a 0 2M" "read -P 0xa5 6M 2M" "read -P 0 2M 4M"
qemu-img check -q "$FUSE/$path" || check_fail "qemu-img check of $path after the domain stopped"
