#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-diskxml.sh — domain-disk-xml: the <disk> gvmd writes for an image is
# what libvirt accepts and QEMU opens.  A gluster volume registered with
# three servers (tcp by host name with the default port, tcp 127.0.0.1:24007,
# unix /var/run/glusterd.socket) gives a network disk with all three hosts in
# that order; a domain using it (and a dir-volume disk) is defined, started
# under TCG and read back with virsh dumpxml.  FUSE mode, raw and
# uncatalogued images, escaping and refusals are checked for shape.
. "$GVM_TESTDIR/lib.sh"
need jq xmllint qemu-img
need_gluster
need_libvirt

FUSE=/mnt/gvmt-fuse-$$
start_gvmd --fuse-mount "$FUSE"
IMAGES=$GVMD_DIR/state/images
TAG=gvmt-$$

# xp XPATH FILE-or-stdin: the string value of an XPath expression.
xp() { xmllint --xpath "$1" "${2:--}" 2>/dev/null; }

# ---- a volume with three servers -----------------------------------------
rpc volume-add "$(jq -nc --arg v "$GLUSTER_VOLUME" --arg h "$GLUSTER_HOST" \
    '{name:"gv3", backend:"gluster", volume:$v,
      servers:[{type:"tcp", host:$h}, {type:"tcp", host:"127.0.0.1", port:24007},
               {type:"unix", socket:"/var/run/glusterd.socket"}]}')" >/dev/null ||
    fail "volume-add with three servers failed"
GPATH=$TAG-disk.qcow2
rpc image-create "$(jq -nc --arg p "$GPATH" \
    '{volume:"gv3", path:$p, format:"qcow2", size:16777216}')" >/dev/null ||
    fail "image-create on the gluster volume failed"
at_exit "rpc image-delete '{\"image\":\"gv3:$GPATH\"}' >/dev/null 2>&1"

gxml=$(rpc domain-disk-xml "{\"image\":\"gv3:$GPATH\",\"target\":\"vda\"}" | jq -r .xml) ||
    fail "domain-disk-xml (native, gluster) failed"
note "native gluster disk:"; printf '%s\n' "$gxml" >&2
printf '%s' "$gxml" | xmllint --noout - 2>/dev/null || fail "native XML is not well-formed"
assert_eq network "$(printf '%s' "$gxml" | xp 'string(/disk/@type)')" "disk type"
assert_eq disk "$(printf '%s' "$gxml" | xp 'string(/disk/@device)')" "disk device"
assert_eq qcow2 "$(printf '%s' "$gxml" | xp 'string(/disk/driver/@type)')" "driver type"
assert_eq gluster "$(printf '%s' "$gxml" | xp 'string(/disk/source/@protocol)')" "protocol"
assert_eq "$GLUSTER_VOLUME/$GPATH" "$(printf '%s' "$gxml" | xp 'string(/disk/source/@name)')" "source name"
assert_eq vda "$(printf '%s' "$gxml" | xp 'string(/disk/target/@dev)')" "target dev"
assert_eq 3 "$(printf '%s' "$gxml" | xp 'count(/disk/source/host)')" "number of hosts"

# hosts FILE-or-stdin XPATH-TO-SOURCE: "transport name port socket" per host.
hosts() {
    local doc n i
    doc=$(cat)
    n=$(printf '%s' "$doc" | xp "count($1/host)")
    for i in $(seq 1 "${n:-0}"); do
        printf '%s|%s|%s|%s\n' \
            "$(printf '%s' "$doc" | xp "string($1/host[$i]/@transport)")" \
            "$(printf '%s' "$doc" | xp "string($1/host[$i]/@name)")" \
            "$(printf '%s' "$doc" | xp "string($1/host[$i]/@port)")" \
            "$(printf '%s' "$doc" | xp "string($1/host[$i]/@socket)")"
    done
}
want_hosts="|$GLUSTER_HOST|24007|
|127.0.0.1|24007|
unix|||/var/run/glusterd.socket"
assert_eq "$want_hosts" "$(printf '%s' "$gxml" | hosts /disk/source)" "hosts of the native XML"

# ---- a dir-volume disk -------------------------------------------------------
# (on a backing image, so the running domain has a chain virt.c must see)
rpc image-create "{\"volume\":\"local\",\"path\":\"$TAG-base.qcow2\",\"format\":\"qcow2\",\"size\":8388608}" \
    >/dev/null || fail "image-create on the local volume failed"
rpc image-create "{\"volume\":\"local\",\"path\":\"$TAG-local.qcow2\",\"format\":\"qcow2\",\"backing\":\"local:$TAG-base.qcow2\",\"backing-format\":\"qcow2\"}" \
    >/dev/null || fail "image-create of an overlay on the local volume failed"
dxml=$(rpc domain-disk-xml "{\"image\":\"local:$TAG-local.qcow2\",\"target\":\"vdb\"}" | jq -r .xml) ||
    fail "domain-disk-xml (dir volume) failed"
printf '%s' "$dxml" | xmllint --noout - 2>/dev/null || fail "dir XML is not well-formed"
assert_eq file "$(printf '%s' "$dxml" | xp 'string(/disk/@type)')" "dir disk type"
assert_eq "$IMAGES/$TAG-local.qcow2" "$(printf '%s' "$dxml" | xp 'string(/disk/source/@file)')" "dir source file"
assert_eq qcow2 "$(printf '%s' "$dxml" | xp 'string(/disk/driver/@type)')" "dir driver type"
assert_eq vdb "$(printf '%s' "$dxml" | xp 'string(/disk/target/@dev)')" "dir target dev"
assert_eq 0 "$(printf '%s' "$dxml" | xp 'count(/disk/source/host)')" "dir disk hosts"

# ---- libvirt accepts both and QEMU starts on them -----------------------------
DOM=$TAG-dx
libvirt_define_test_domain "$DOM" "$gxml
$dxml"
tvirsh start "$DOM" >/dev/null || fail "virsh start $DOM failed: $(tail -n 5 /var/log/libvirt/qemu/$DOM.log 2>/dev/null)"
sleep 1
assert_eq running "$(tvirsh domstate "$DOM" | head -n 1)" "state of $DOM"
live=$(tvirsh dumpxml "$DOM") || fail "virsh dumpxml $DOM failed"
assert_eq "$want_hosts" "$(printf '%s' "$live" | hosts "/domain/devices/disk[target/@dev='vda']/source")" \
    "hosts of the running domain's vda"
assert_eq "$GLUSTER_VOLUME/$GPATH" \
    "$(printf '%s' "$live" | xp "string(/domain/devices/disk[target/@dev='vda']/source/@name)")" \
    "running vda source"
assert_eq "$IMAGES/$TAG-local.qcow2" \
    "$(printf '%s' "$live" | xp "string(/domain/devices/disk[target/@dev='vdb']/source/@file)")" \
    "running vdb source"
# QEMU itself got all three servers for vda.
qpid=$(cat "/run/libvirt/qemu/$DOM.pid" 2>/dev/null)
if [ -n "$qpid" ] && [ -r "/proc/$qpid/cmdline" ]; then
    cmd=$(tr '\0' ' ' <"/proc/$qpid/cmdline")
    assert_match "glusterd\.socket" "$cmd" "QEMU command line (unix server)"
    assert_match "127\.0\.0\.1" "$cmd" "QEMU command line (tcp 127.0.0.1)"
fi

# ---- virt.c reads the running domain back (tests/tools/virt-probe) ----------
PROBE=$GVM_TOOLSDIR/virt-probe
disks=$("$PROBE" "$LIBVIRT_URI" disks "$DOM") || fail "virt_domain_disks failed"
note "virt_domain_disks:"; printf '%s\n' "$disks" >&2
assert_eq "vda gluster qcow2 $GLUSTER_VOLUME/$GPATH tcp:$GLUSTER_HOST:24007 tcp:127.0.0.1:24007 unix:/var/run/glusterd.socket" \
    "$(printf '%s\n' "$disks" | grep '^vda ')" "virt_domain_disks: vda"
assert_eq "vdb file qcow2 $IMAGES/$TAG-local.qcow2" \
    "$(printf '%s\n' "$disks" | grep '^vdb ')" "virt_domain_disks: vdb"
assert_eq "  backing file qcow2 $IMAGES/$TAG-base.qcow2" \
    "$(printf '%s\n' "$disks" | grep -A1 '^vdb ' | sed -n 2p)" "virt_domain_disks: vdb's backing"
assert_eq running "$(printf '%s\n' "$disks" | tail -n 1)" "virt_domain_disks: running"
uuid=$(tvirsh domuuid "$DOM")
assert_eq 2 "$("$PROBE" "$LIBVIRT_URI" disks "$uuid" | grep -c '^vd')" "virt_domain_disks by uuid"
"$PROBE" "$LIBVIRT_URI" disks "$TAG-nosuch" >/dev/null 2>&1 && check_fail "disks of a missing domain"
running() { "$PROBE" "$LIBVIRT_URI" running || echo "ERROR"; }
r=$(running)
assert_match "^$DOM vda\$" "$r" "virt_running_domains lists vda of the running domain"
assert_match "^$DOM vdb\$" "$r" "virt_running_domains lists vdb of the running domain"
libvirt_kill_domain "$DOM"
case $(running) in *"$DOM "*) check_fail "virt_running_domains lists the stopped domain" ;; esac
assert_eq inactive "$("$PROBE" "$LIBVIRT_URI" disks "$DOM" | tail -n 1)" "virt_domain_disks: inactive"

# ---- FUSE mode ---------------------------------------------------------------------
fxml=$(rpc domain-disk-xml "{\"image\":\"gv3:$GPATH\",\"target\":\"vdc\",\"mode\":\"fuse\"}" | jq -r .xml) ||
    fail "domain-disk-xml (fuse) failed"
printf '%s' "$fxml" | xmllint --noout - 2>/dev/null || fail "fuse XML is not well-formed"
assert_eq file "$(printf '%s' "$fxml" | xp 'string(/disk/@type)')" "fuse disk type"
assert_eq "$FUSE/$GLUSTER_VOLUME/$GPATH" "$(printf '%s' "$fxml" | xp 'string(/disk/source/@file)')" "fuse source file"
assert_eq qcow2 "$(printf '%s' "$fxml" | xp 'string(/disk/driver/@type)')" "fuse driver type"
assert_eq vdc "$(printf '%s' "$fxml" | xp 'string(/disk/target/@dev)')" "fuse target dev"

# ---- an uncatalogued raw image whose name needs escaping ----------------------------
ODD="$TAG-a&b'c<d>.img"
qemu-img create -q -f raw "$IMAGES/$ODD" 1M || fail "qemu-img create failed"
oxml=$(rpc domain-disk-xml "$(jq -nc --arg i "local:$ODD" '{image:$i, target:"sda"}')" | jq -r .xml) ||
    fail "domain-disk-xml on an uncatalogued image failed"
printf '%s' "$oxml" | xmllint --noout - 2>/dev/null || check_fail "escaped XML is not well-formed: $oxml"
assert_eq "$IMAGES/$ODD" "$(printf '%s' "$oxml" | xp 'string(/disk/source/@file)')" "escaped source file"
assert_eq raw "$(printf '%s' "$oxml" | xp 'string(/disk/driver/@type)')" "probed raw format"
# An uncatalogued qcow2 is told as qcow2 (by its magic), never as raw.
qemu-img create -q -f qcow2 "$IMAGES/$TAG-loose.qcow2" 1M || fail "qemu-img create failed"
assert_eq qcow2 "$(rpc domain-disk-xml "{\"image\":\"local:$TAG-loose.qcow2\",\"target\":\"sdb\"}" |
    jq -r .xml | xp 'string(/disk/driver/@type)')" "probed qcow2 format"

# ---- refusals --------------------------------------------------------------------------
e=$(rpc_err domain-disk-xml "{\"image\":\"local:$TAG-missing.qcow2\",\"target\":\"vda\"}")
assert_eq NotFound "$(printf '%s' "$e" | jq -r .data.class)" "missing image"
e=$(rpc_err domain-disk-xml "{\"image\":\"gv3:$GPATH\",\"target\":\"vda\",\"mode\":\"nfs\"}")
assert_eq mode "$(printf '%s' "$e" | jq -r .data.param)" "bad mode"
e=$(rpc_err domain-disk-xml "{\"image\":\"gv3:$GPATH\",\"target\":\"vd'a\"}")
assert_eq target "$(printf '%s' "$e" | jq -r .data.param)" "bad target"
# Read-only socket: allowed (it only writes XML).
"$GVMCTL" --socket "$GVM_RO_SOCK" --json --params "{\"image\":\"gv3:$GPATH\",\"target\":\"vda\"}" \
    domain-disk-xml >/dev/null || check_fail "domain-disk-xml refused on the read-only socket"

rpc image-delete "{\"image\":\"gv3:$GPATH\"}" >/dev/null || check_fail "image-delete of the gluster image failed"
stop_gvmd
exit 0
