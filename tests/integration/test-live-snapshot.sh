#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-live-snapshot.sh — snapshot-create on a running libvirt domain
# (issue 5, acceptance 1), and domain-attach from the domain's XML.
#
# A domain with two disks — vda a gluster network disk, vdb a file on the
# dir volume, each a two-image chain made with qemu-img and not catalogued,
# the gluster volume not even registered — is started under TCG and
# attached from its XML: gvmd registers the gluster volume from the disk's
# <host> and imports both chains.  Two live snapshots (atomic over both
# disks) follow; after each, virsh dumpxml, the catalog (domain-list,
# snapshot-list, image-info --backing-chain) and qemu-img info
# --backing-chain -U agree.  quiesce:true without a guest agent is refused
# with an error that says so, and leaves no overlay and no change.  gvmd
# killed after libvirt switched the disks records the snapshot at restart;
# killed before the libvirt call, it removes the overlays.  After the
# domain is destroyed, qemu-img check is clean, the data written before
# the snapshots reads back through the new chains, and the domain starts
# again on them.
. "$GVM_TESTDIR/lib.sh"
need_fault_injection
. "$GVM_TESTDIR/lib-image.sh"
need jq qemu-img qemu-io xmllint
need_gluster
need_libvirt

start_gvmd --libvirt-uri "$LIBVIRT_URI"
FUSE=$TEST_TMP/fuse
gluster_fuse_mount "$FUSE"
SUB=gvmt-ls-$$
IMAGES=$GVMD_DIR/state/images
mkdir -p "$FUSE/$SUB" "$IMAGES/$SUB" || fail "cannot make the test directories"
at_exit "rm -rf '$FUSE/$SUB'"
GF=$FUSE/$SUB      # the gluster files, seen through FUSE
LF=$IMAGES/$SUB    # the dir volume's files

xp() { xmllint --xpath "$1" - 2>/dev/null; }

# ---- two chains gvmd does not know yet ------------------------------------
# vda starts as one image: QEMU's gluster driver cannot open a relative
# backing name of a network disk when libvirt (without its gluster
# storage-file backend) leaves the chain to QEMU, and a URI would make every
# qemu-img call below pay a gluster connection.  The overlays gvmd adds
# live are attached by libvirt node by node, so their relative names work.
qimg create -q -f qcow2 "$GF/top.qcow2" 16M
qimg create -q -f qcow2 "$LF/dbase.qcow2" 16M
qimg create -q -f qcow2 -b dbase.qcow2 -F qcow2 "$LF/dtop.qcow2"
qio "$GF/top.qcow2" "write -P 0x11 0 1M" "write -P 0x22 1M 1M"
qio "$LF/dbase.qcow2" "write -P 0x33 0 1M"
qio "$LF/dtop.qcow2" "write -P 0x44 1M 1M"

DOM=gvmt-ls-$$
libvirt_define_test_domain "$DOM" "<disk type='network' device='disk'>
  <driver name='qemu' type='qcow2'/>
  <source protocol='gluster' name='$GLUSTER_VOLUME/$SUB/top.qcow2'>
    <host name='127.0.0.1' port='24007'/>
  </source>
  <target dev='vda' bus='virtio'/>
</disk>
<disk type='file' device='disk'>
  <driver name='qemu' type='qcow2'/>
  <source file='$LF/dtop.qcow2'/>
  <target dev='vdb' bus='virtio'/>
</disk>"
tvirsh start "$DOM" >/dev/null || fail "virsh start $DOM failed"

# ---- domain-attach from the XML ----------------------------------------------
att=$(rpc domain-attach "{\"domain\":\"$DOM\"}") || fail "domain-attach from the XML failed"
note "attached: $att"
assert_eq "$DOM" "$(printf '%s' "$att" | jq -r .name)" "attached domain name"
assert_eq "$(tvirsh domuuid "$DOM")" "$(printf '%s' "$att" | jq -r .uuid)" "attached domain uuid (libvirt's)"
assert_eq true "$(printf '%s' "$att" | jq -r .live)" "attached domain is live"
GVOL=$(rpc volume-list '{}' | jq -r --arg v "$GLUSTER_VOLUME" \
    '.[] | select(.backend=="gluster" and .volume==$v) | .name')
[ -n "$GVOL" ] || fail "domain-attach did not register gluster volume $GLUSTER_VOLUME"
assert_eq "$GVOL:$SUB/top.qcow2" "$(printf '%s' "$att" | jq -r '.disks[] | select(.target=="vda") | ."image-name"')" "vda's image"
assert_eq "local:$SUB/dtop.qcow2" "$(printf '%s' "$att" | jq -r '.disks[] | select(.target=="vdb") | ."image-name"')" "vdb's image"
# The whole chain was imported.
assert_eq "local:$SUB/dbase.qcow2" "$(rpc image-info "{\"image\":\"local:$SUB/dtop.qcow2\",\"backing-chain\":true}" |
    jq -r '.chain[1] | "\(.volume):\(.path)"')" "vdb's imported backing"
e=$(rpc_err domain-attach "{\"domain\":\"$DOM\"}")
assert_eq AlreadyExists "$(err_class "$e")" "attaching twice"

# ---- checks of one state ------------------------------------------------------
# check_state N VDA-ACTIVE VDB-ACTIVE: the chains are VDA-ACTIVE (gluster
# volume path) over N older images and VDB-ACTIVE (dir volume path) over
# N + 1.
check_state() {
    local n=$1 ga=$2 la=$3 live
    live=$(tvirsh dumpxml "$DOM") || fail "virsh dumpxml failed"
    assert_eq "$GLUSTER_VOLUME/$ga" "$(printf '%s' "$live" |
        xp "string(/domain/devices/disk[target/@dev='vda']/source/@name)")" "domain XML: vda's source"
    assert_eq 127.0.0.1 "$(printf '%s' "$live" |
        xp "string(/domain/devices/disk[target/@dev='vda']/source/host/@name)")" "domain XML: vda's host"
    assert_eq "$IMAGES/$la" "$(printf '%s' "$live" |
        xp "string(/domain/devices/disk[target/@dev='vdb']/source/@file)")" "domain XML: vdb's source"
    local dl
    dl=$(rpc domain-list '{}') || fail "domain-list failed"
    assert_eq "$GVOL:$ga" "$(printf '%s' "$dl" | jq -r --arg d "$DOM" \
        '.[] | select(.name==$d) | .disks[] | select(.target=="vda") | ."image-name"')" "catalog: vda's active image"
    assert_eq "local:$la" "$(printf '%s' "$dl" | jq -r --arg d "$DOM" \
        '.[] | select(.name==$d) | .disks[] | select(.target=="vdb") | ."image-name"')" "catalog: vdb's active image"
    assert_eq true "$(printf '%s' "$dl" | jq -r --arg d "$DOM" '.[] | select(.name==$d) | .live')" "domain-list: live"
    # Catalog chain against qemu-img's, layer by layer (paths relative to
    # the volume), read-only while QEMU holds the images.
    local cat_g q_g cat_l q_l
    cat_g=$(rpc image-info "{\"image\":\"$GVOL:$ga\",\"backing-chain\":true}" | jq -r '.chain[].path' | tr '\n' ' ')
    q_g=$(qemu-img info -U --backing-chain --output=json "$FUSE/$ga" |
        jq -r --arg r "$FUSE/" '.[].filename | ltrimstr($r)' | tr '\n' ' ')
    assert_eq "$q_g" "$cat_g" "vda: catalog chain against qemu-img info --backing-chain"
    cat_l=$(rpc image-info "{\"image\":\"local:$la\",\"backing-chain\":true}" | jq -r '.chain[].path' | tr '\n' ' ')
    q_l=$(qemu-img info -U --backing-chain --output=json "$IMAGES/$la" |
        jq -r --arg r "$IMAGES/" '.[].filename | ltrimstr($r)' | tr '\n' ' ')
    assert_eq "$q_l" "$cat_l" "vdb: catalog chain against qemu-img info --backing-chain"
    assert_eq $((n + 1)) "$(printf '%s' "$cat_g" | wc -w)" "vda's chain length"
    assert_eq $((n + 2)) "$(printf '%s' "$cat_l" | wc -w)" "vdb's chain length"
}

check_state 0 "$SUB/top.qcow2" "$SUB/dtop.qcow2"

# ---- first live snapshot, atomic over both disks ---------------------------------
s1=$(rpc snapshot-create "{\"name\":\"s1\",\"domain\":\"$DOM\",\"description\":\"first <live> & one\"}") ||
    fail "snapshot-create s1 on the running domain failed"
note "s1: $s1"
assert_eq "$GVOL:$SUB/top.qcow2" "$(printf '%s' "$s1" | jq -r '.disks[] | select(.target=="vda") | ."image-name"')" "s1 froze vda's image"
assert_eq "local:$SUB/dtop.qcow2" "$(printf '%s' "$s1" | jq -r '.disks[] | select(.target=="vdb") | ."image-name"')" "s1 froze vdb's image"
check_state 1 "$SUB/top.s1.qcow2" "$SUB/dbase.s1.qcow2"
assert_eq "top.qcow2" "$(qemu-img info -U --output=json "$GF/top.s1.qcow2" | jq -r '."backing-filename"')" "vda overlay's backing name"

# ---- a second one -----------------------------------------------------------------
rpc snapshot-create "{\"name\":\"s2\",\"domain\":\"$DOM\"}" >/dev/null ||
    fail "snapshot-create s2 on the running domain failed"
check_state 2 "$SUB/top.s2.qcow2" "$SUB/dbase.s2.qcow2"
sl=$(rpc snapshot-list "{\"domain\":\"$DOM\"}") || fail "snapshot-list failed"
assert_eq "s1 s2" "$(printf '%s' "$sl" | jq -r '[.[].name] | sort | join(" ")')" "snapshots of the domain"
assert_eq s1 "$(printf '%s' "$sl" | jq -r '.[] | select(.name=="s2") | .parent')" "s2's parent"
assert_eq true "$(printf '%s' "$sl" | jq -r '.[] | select(.name=="s2") | .current')" "s2 is current"
assert_eq s2 "$(rpc domain-list '{}' | jq -r --arg d "$DOM" '.[] | select(.name==$d) | ."current-snapshot"')" "domain's current snapshot"

# ---- quiesce without a guest agent: refused, nothing left ------------------------
files_before=$(ls "$GF" "$LF" | sort)
cat_before=$(rpc image-list '{}' | jq -S -c 'map(del(."actual-size"))')
xml_before=$(tvirsh dumpxml "$DOM" | xp '/domain/devices/disk/source')
e=$(rpc_err snapshot-create "{\"name\":\"sq\",\"domain\":\"$DOM\",\"quiesce\":true}")
note "quiesce: $e"
assert_eq VirtError "$(err_class "$e")" "quiesce without agent: class"
assert_match "[Aa]gent" "$(err_msg "$e")" "quiesce without agent: the message says so"
assert_match "no snapshot was taken|removed" "$(err_msg "$e")" "quiesce without agent: nothing taken"
assert_eq "$files_before" "$(ls "$GF" "$LF" | sort)" "files after the refused quiesce"
[ -e "$GF/top.sq.qcow2" ] && check_fail "the gluster overlay of sq was left behind"
[ -e "$LF/dbase.sq.qcow2" ] && check_fail "the dir overlay of sq was left behind"
assert_eq "$cat_before" "$(rpc image-list '{}' | jq -S -c 'map(del(."actual-size"))')" "catalog after the refused quiesce"
assert_eq "$xml_before" "$(tvirsh dumpxml "$DOM" | xp '/domain/devices/disk/source')" "domain XML after the refused quiesce"
rpc_err snapshot-info '{"snapshot":"sq"}' >/dev/null
check_state 2 "$SUB/top.s2.qcow2" "$SUB/dbase.s2.qcow2"

# ---- gvmd killed mid-snapshot: recovery from the journal ---------------------------
# crash_snapshot NAME FAULT: snapshot-create NAME with gvmd killed at FAULT,
# then a normal restart (recovery runs before the socket is served).
crash_snapshot() {
    stop_gvmd
    GVMD_FAULT="step:$2:kill" start_gvmd --libvirt-uri "$LIBVIRT_URI"
    rpc snapshot-create "{\"name\":\"$1\",\"domain\":\"$DOM\"}" >/dev/null 2>&1 &&
        check_fail "snapshot-create $1 returned although gvmd was killed at $2"
    wait "$GVMD_PID" 2>/dev/null
    start_gvmd --libvirt-uri "$LIBVIRT_URI"
}
# Killed after libvirt switched the disks, before the catalog recorded it:
# rolled forward.
crash_snapshot s3 snapshot-live.switched
rpc snapshot-info '{"snapshot":"s3"}' >/dev/null || check_fail "s3 was not recorded after the restart"
check_state 3 "$SUB/top.s3.qcow2" "$SUB/dbase.s3.qcow2"
# Killed after the overlays were made, before libvirt was called: rolled
# back, no overlay left.
files_before=$(ls "$GF" "$LF" | sort)
crash_snapshot s4 libvirt-snapshot
rpc_err snapshot-info '{"snapshot":"s4"}' >/dev/null
assert_eq "$files_before" "$(ls "$GF" "$LF" | sort)" "files after the rolled-back snapshot s4"
check_state 3 "$SUB/top.s3.qcow2" "$SUB/dbase.s3.qcow2"

# ---- after the domain is gone: headers, checks, data ------------------------------
libvirt_kill_domain "$DOM"
assert_eq false "$(rpc domain-list '{}' | jq -r --arg d "$DOM" '.[] | select(.name==$d) | .live')" "domain-list after destroy"
for f in "$GF"/top.s[123].qcow2 "$LF"/dbase.s[123].qcow2; do
    qemu-img check -q "$f" || check_fail "qemu-img check $f"
done
assert_eq 4 "$(qemu-img info --backing-chain --output=json "$GF/top.s3.qcow2" | jq length)" "vda: chain depth after destroy"
assert_eq 5 "$(qemu-img info --backing-chain --output=json "$LF/dbase.s3.qcow2" | jq length)" "vdb: chain depth after destroy"
qio "$GF/top.s3.qcow2" "read -P 0x11 0 1M" "read -P 0x22 1M 1M"
qio "$LF/dbase.s3.qcow2" "read -P 0x33 0 1M" "read -P 0x44 1M 1M"
# The domain starts again on its new chains.
tvirsh start "$DOM" >/dev/null || check_fail "the domain does not start again after its live snapshots"
assert_eq "$GLUSTER_VOLUME/$SUB/top.s3.qcow2" "$(tvirsh dumpxml "$DOM" |
    xp "string(/domain/devices/disk[target/@dev='vda']/source/@name)")" "restarted domain: vda's source"
libvirt_kill_domain "$DOM"

# ---- a disk on no registered volume: a clear error naming it ---------------------
mkdir -p "$TEST_TMP/elsewhere"
qimg create -q -f qcow2 "$TEST_TMP/elsewhere/x.qcow2" 1M
DOM2=gvmt-ls2-$$
libvirt_define_test_domain "$DOM2" "<disk type='file' device='disk'>
  <driver name='qemu' type='qcow2'/>
  <source file='$TEST_TMP/elsewhere/x.qcow2'/>
  <target dev='vdc' bus='virtio'/>
</disk>"
e=$(rpc_err domain-attach "{\"domain\":\"$DOM2\"}")
assert_eq NotFound "$(err_class "$e")" "disk on no registered volume: class"
assert_match "vdc" "$(err_msg "$e")" "disk on no registered volume: names the disk"
assert_match "no registered volume" "$(err_msg "$e")" "disk on no registered volume: says why"
rpc domain-list '{}' | jq -e --arg d "$DOM2" 'any(.[]; .name==$d)' >/dev/null &&
    check_fail "a domain whose attach failed is listed"

# ---- domain-detach forgets a domain (refused while it has snapshots) --------------
e=$(rpc_err domain-detach "{\"domain\":\"$DOM\"}")
assert_eq InUse "$(err_class "$e")" "detach with snapshots"
DOM3=gvmt-ls3-$$
qimg create -q -f qcow2 "$LF/third.qcow2" 1M
libvirt_define_test_domain "$DOM3" "<disk type='file' device='disk'>
  <driver name='qemu' type='qcow2'/>
  <source file='$LF/third.qcow2'/>
  <target dev='vdd' bus='virtio'/>
</disk>"
a3=$(rpc domain-attach "{\"domain\":\"$DOM3\"}") || fail "domain-attach of a defined, stopped domain failed"
assert_eq false "$(printf '%s' "$a3" | jq -r .live)" "a stopped domain is not live"
assert_eq "local:$SUB/third.qcow2" "$(rpc domain-list '{}' | jq -r --arg d "$DOM3" \
    '.[] | select(.name==$d) | .disks[0]."image-name"')" "domain-list shows the attached domain"
rpc domain-detach "{\"domain\":\"$DOM3\"}" >/dev/null || check_fail "domain-detach failed"
rpc domain-list '{}' | jq -e --arg d "$DOM3" 'any(.[]; .name==$d)' >/dev/null &&
    check_fail "domain-list still shows the detached domain"

stop_gvmd
exit 0
