#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-live-restart.sh — live block jobs survive restarts (issue 5,
# acceptance 3) and a domain stopping mid-job.
#   A. gvmd is killed (-9) while a live active commit runs (slowed by
#      `speed`) and started again: the job is found again (libvirt still
#      runs it), pivots and concludes done; catalog and domain XML agree.
#   B. libvirtd is restarted while a live intermediate commit runs: gvmd
#      re-opens its connection, keeps polling, and the job concludes done.
#   C. the domain is stopped while a live commit runs: the job concludes
#      with an error saying the chain is unchanged, and it is.
#
# Restarting the libvirtd every other test uses would break the live tests
# running next to this one, so this test runs a libvirtd of its own: a
# second privileged libvirtd in a private mount namespace (its own
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt bound
# over the system's) whose socket lives in the test's directory; gvmd and
# virsh reach it as qemu+unix:///system?socket=....  Its QEMU processes
# survive its restart like any libvirtd's.  Disks are files on the dir
# volume (the restart logic does not depend on the disk type; gluster disks
# are covered by test-live-blockjob.sh).
. "$GVM_TESTDIR/lib.sh"
need jq xmllint qemu-img qemu-io virsh libvirtd unshare qemu-system-x86_64
[ "$(id -u)" -eq 0 ] || skip "a private privileged libvirtd needs root"
unshare --mount --propagation private true 2>/dev/null ||
    skip "no mount namespace here for a private libvirtd"

# ---- a private libvirtd ----------------------------------------------------------
LV=$TEST_TMP/lv
mkdir -p "$LV/etc" "$LV/run" "$LV/lib" "$LV/cache" "$LV/sock" /var/cache/libvirt /var/lib/libvirt /run/libvirt
[ -d /etc/libvirt ] && cp -a /etc/libvirt/. "$LV/etc/"
rm -rf "$LV/etc/qemu"
cat >"$LV/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
EOF
cat >"$LV/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$LV/sock"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$LV/libvirtd.log"
EOF
LIBVIRT_URI="qemu+unix:///system?socket=$LV/sock/libvirt-sock"
lv_start() {
    unshare --mount --propagation private -- sh -c '
        mount --bind "$1/etc" /etc/libvirt && mount --bind "$1/run" /run/libvirt &&
        mount --bind "$1/lib" /var/lib/libvirt && mount --bind "$1/cache" /var/cache/libvirt &&
        exec libvirtd -d -p "$1/libvirtd.pid" -f "$1/etc/libvirtd.conf"' sh "$LV" 9>&- ||
        fail "the private libvirtd did not start"
    i=0
    until timeout 10 virsh -q -c "$LIBVIRT_URI" version >/dev/null 2>&1; do
        i=$((i+1)); [ $i -lt 60 ] || fail "the private libvirtd does not answer"
        sleep 0.5
    done
    LV_PID=$(cat "$LV/libvirtd.pid")
}
# Stop it by its pid (after destroying its domains: their QEMUs would
# outlive it).
lv_stop() {
    for d in $(timeout 30 virsh -q -c "$LIBVIRT_URI" list --name 2>/dev/null); do
        timeout 30 virsh -q -c "$LIBVIRT_URI" destroy "$d" >/dev/null 2>&1
    done
    [ -n "${LV_PID:-}" ] && kill_pid "$LV_PID"
}
at_exit "lv_stop"
lv_start
note "private libvirtd pid $LV_PID at $LIBVIRT_URI"

start_gvmd --libvirt-uri "$LIBVIRT_URI"
TAG=h1lrs$$
IMAGES=$GVMD_DIR/state/images
DOM=$TAG-dom
dfile() { echo "$IMAGES/$TAG/$1"; }
xp() { xmllint --xpath "$1" "${2:--}" 2>/dev/null; }
MiB=1048576

# mkchain DISK N DATA-MIB BULK: images DISK0 <- ... <- DISK(N-1) on the dir
# volume; layer k writes pattern 0x5k over [k MiB, k MiB + 1 MiB), layer
# BULK also DATA-MIB MiB of 0x77 from 4 MiB on (what makes a commit slow).
mkchain() {
    local k b
    for k in $(seq 0 $(($2 - 1))); do
        b=""
        [ "$k" -gt 0 ] && b=",\"backing\":\"local:$TAG/$1$((k-1)).qcow2\""
        rpc image-create "{\"volume\":\"local\",\"path\":\"$TAG/$1$k.qcow2\",\"format\":\"qcow2\",\"size\":$((16 * MiB))$b}" \
            >/dev/null || fail "image-create $1$k failed"
        qemu-io -f qcow2 -c "write -P 0x5$k $((k * MiB)) $MiB" "$(dfile "$1$k.qcow2")" >/dev/null ||
            fail "qemu-io into $1$k failed"
    done
    qemu-io -f qcow2 -c "write -P 0x77 $((4 * MiB)) $(($3 * MiB))" "$(dfile "$1$4.qcow2")" >/dev/null ||
        fail "qemu-io bulk write failed"
}
disk() { echo "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$(dfile "$1")'/><target dev='$2' bus='virtio'/></disk>"; }
mkchain A 2 6 1
mkchain B 3 6 1
mkchain C 2 6 1
libvirt_define_test_domain "$DOM" "$(disk A1.qcow2 vdb)
$(disk B2.qcow2 vdc)
$(disk C1.qcow2 vdd)"
tvirsh start "$DOM" >/dev/null || fail "virsh start $DOM failed: $(tail -n 5 "$LV/run/../lib/qemu/$DOM.log" 2>/dev/null)"
rpc domain-attach "{\"domain\":\"$DOM\",\"disks\":[{\"target\":\"vdb\",\"image\":\"local:$TAG/A1.qcow2\"},{\"target\":\"vdc\",\"image\":\"local:$TAG/B2.qcow2\"},{\"target\":\"vdd\",\"image\":\"local:$TAG/C1.qcow2\"}]}" \
    >/dev/null || fail "domain-attach failed"
at_exit "rpc domain-detach '{\"domain\":\"$DOM\"}' >/dev/null 2>&1"

xml_chain() { # TARGET: layer names top to base in the domain XML
    tvirsh dumpxml "$DOM" | xmllint --xpath "//disk[target/@dev='$1']//source/@file" - 2>/dev/null |
        grep -o '[A-C][0-9]\.qcow2' | sed 's/\.qcow2//' | tr '\n' ' ' | sed 's/ $//'
}
dom_disk() { # TARGET: the catalog's active layer
    local id
    id=$(rpc domain-list '{}' | jq -r --arg d "$DOM" --arg t "$1" \
        '.[] | select(.name == $d) | .disks[] | select(.target == $t) | .image')
    rpc image-info "{\"image\":$id}" | jq -r .path | grep -o '[A-C][0-9]'
}
catalogued() { rpc image-info "{\"image\":\"local:$TAG/$1.qcow2\"}" >/dev/null 2>&1; }
qflush() { # TARGET: QEMU writes its qcow2 metadata cache (see test-live-blockjob.sh)
    local n
    n=$(tvirsh dumpxml "$DOM" | xp "string(//disk[target/@dev='$1']/source/@index)")
    tvirsh qemu-monitor-command "$DOM" --hmp "qemu-io libvirt-$n-format \"flush\"" >/dev/null ||
        check_fail "flushing $1 failed"
}
read_all() { # FILE PATTERN-LAYERS...
    local f=$1 args=() k
    shift
    for k in "$@"; do args+=(-c "read -P 0x5$k $((k * MiB)) $MiB"); done
    args+=(-c "read -P 0x77 $((4 * MiB)) $((6 * MiB))")
    out=$(qemu-io -U -r -f qcow2 "${args[@]}" "$f" 2>&1)
    [ $? -eq 0 ] && ! printf '%s' "$out" | grep -q "verification failed\|error"
}
# wait_libvirt_job TARGET: until libvirt shows a block job on the disk.
wait_libvirt_job() {
    local i=0
    # (virsh -q would hide the progress line)
    until virsh -c "$LIBVIRT_URI" blockjob "$DOM" "$1" --info 2>&1 | grep -q "Commit"; do
        i=$((i+1)); [ $i -lt 40 ] || { check_fail "no libvirt job on $1"; return 1; }
        sleep 0.25
    done
}

# ---- A. gvmd killed during an active commit --------------------------------------------
j=$(rpc block-commit "{\"top\":\"local:$TAG/A1.qcow2\",\"speed\":$MiB}") || fail "block-commit A1 failed"
id=$(printf '%s' "$j" | jq -r .id)
assert_eq true "$(printf '%s' "$j" | jq -r .live)" "A: live job"
wait_libvirt_job vdb
sleep 1
assert_eq running "$(rpc query-jobs '{}' | jq -r --argjson i "$id" '.[] | select(.id == $i) | .status')" \
    "A: running before the kill"
kill9_gvmd
note "gvmd killed with job $id running"
virsh -c "$LIBVIRT_URI" blockjob "$DOM" vdb --info 2>&1 | grep -q "Active Block Commit" ||
    check_fail "A: libvirt's job did not outlive gvmd (too fast? raise the data size)"
start_gvmd --libvirt-uri "$LIBVIRT_URI"
st=$(rpc job-wait "{\"id\":$id,\"timeout\":90}") || fail "job-wait $id after the restart failed"
assert_eq "concluded false null true" "$(printf '%s' "$st" | jq -r '"\(.status) \(.cancelled) \(.error) \(.live)"')" \
    "A: the job found again concludes done"
assert_eq "A0" "$(xml_chain vdb)" "A: domain XML after the pivot"
assert_eq "A0" "$(dom_disk vdb)" "A: catalog disk after the pivot"
catalogued A1 && check_fail "A: A1 still catalogued"
[ -e "$(dfile A1.qcow2)" ] && check_fail "A: A1 still on storage"
qflush vdb
read_all "$(dfile A0.qcow2)" 0 1 || check_fail "A: data after the commit: $out"
grep -q "was left running by the previous daemon" "$GVMD_DIR/gvmd.log" ||
    check_fail "A: the log does not show the job being recovered"

# ---- B. libvirtd restarted during an intermediate commit ---------------------------------
j=$(rpc block-commit "{\"top\":\"local:$TAG/B1.qcow2\",\"speed\":$MiB}") || fail "block-commit B1 failed"
id=$(printf '%s' "$j" | jq -r .id)
wait_libvirt_job vdc
kill_pid "$LV_PID"
note "libvirtd stopped during job $id"
sleep 2
assert_eq running "$(rpc query-jobs '{}' | jq -r --argjson i "$id" '.[] | select(.id == $i) | .status')" \
    "B: the job keeps running while libvirtd is down"
lv_start
note "libvirtd restarted (pid $LV_PID)"
st=$(rpc job-wait "{\"id\":$id,\"timeout\":90}") || fail "job-wait $id failed"
assert_eq "concluded false null" "$(printf '%s' "$st" | jq -r '"\(.status) \(.cancelled) \(.error)"')" \
    "B: the job concludes done across the libvirtd restart"
assert_eq "B2 B0" "$(xml_chain vdc)" "B: domain XML after the commit"
assert_eq "B0.qcow2" "$(qemu-img info -U --output=json "$(dfile B2.qcow2)" | jq -r '."backing-filename"')" \
    "B: B2's header (relative name kept)"
assert_eq "B0.qcow2" "$(rpc image-info "{\"image\":\"local:$TAG/B2.qcow2\"}" | jq -r '."backing-filename"')" \
    "B: B2's catalogued backing name"
catalogued B1 && check_fail "B: B1 still catalogued"
qflush vdc
read_all "$(dfile B2.qcow2)" 0 1 2 || check_fail "B: data after the commit: $out"
grep -q "Reconnecting to libvirt" "$GVMD_DIR/gvmd.log" ||
    check_fail "B: the log does not show a reconnection"

# ---- C. the domain stops during a commit --------------------------------------------------
j=$(rpc block-commit "{\"top\":\"local:$TAG/C1.qcow2\",\"speed\":$MiB}") || fail "block-commit C1 failed"
id=$(printf '%s' "$j" | jq -r .id)
wait_libvirt_job vdd
tvirsh destroy "$DOM" >/dev/null || check_fail "virsh destroy failed"
st=$(rpc job-wait "{\"id\":$id,\"timeout\":60}") || fail "job-wait $id failed"
assert_eq "concluded VirtError" "$(printf '%s' "$st" | jq -r '"\(.status) \(.error.data.class)"')" \
    "C: the job fails when the domain stops"
assert_match "stopped.*unchanged" "$(printf '%s' "$st" | jq -r .error.message)" "C: the error says the chain's state"
# (the inactive XML lists no probed backing chain: the headers say it)
assert_eq "C1" "$(xml_chain vdd)" "C: domain XML unchanged"
assert_eq "C1.qcow2 C0.qcow2" "$(qemu-img info --backing-chain --output=json "$(dfile C1.qcow2)" |
    jq -r '.[].filename' | xargs -n1 basename | tr '\n' ' ' | sed 's/ $//')" "C: headers unchanged"
assert_eq "C1" "$(dom_disk vdd)" "C: catalog disk unchanged"
catalogued C1 || check_fail "C: C1 left the catalog"
read_all "$(dfile C1.qcow2)" 0 1 || check_fail "C: data after the stop: $out"
qemu-img check -q "$(dfile C0.qcow2)" || check_fail "C: qemu-img check of C0"
# The images are free again: an offline commit now works.
j=$(rpc block-commit "{\"top\":\"local:$TAG/C1.qcow2\"}") || check_fail "offline block-commit C1 after the stop failed"
id=$(printf '%s' "$j" | jq -r .id)
assert_eq false "$(printf '%s' "$j" | jq -r .live)" "C: the commit of a stopped domain is offline"
st=$(rpc job-wait "{\"id\":$id,\"timeout\":60}")
assert_eq "concluded null" "$(printf '%s' "$st" | jq -r '"\(.status) \(.error)"')" "C: the offline commit"

stop_gvmd
exit 0
