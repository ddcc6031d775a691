#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-live-blockjob.sh — block-commit and block-pull on a running domain
# (issue 5, acceptance 2).  One TCG domain with two disks: vda on the gluster
# volume (a network disk whose chain is given in the domain XML) and vdb on
# the dir volume (a file disk whose chain libvirt probes).  Each disk has the
# chain L0 <- L1 <- L2 <- L3 <- L4 <- L5 (active), every layer holding its
# own qemu-io pattern in its own 512 KiB region.  On the running domain:
#   1. intermediate commit L2 into L1
#   2. active commit L5 into L4 with pivot
#   3. active commit L4 into L3 with pivot false: ready, then job-cancel
#      (the domain stays on L4, nothing changes)
#   4. the same again, completed with job-complete
#   5. block-pull into L3 down to base L0
#   6. block-pull into L3 without base (flatten)
# After each: the domain XML's chain, the catalog's chain and the qcow2
# headers (qemu-img info --backing-chain -U) name the same layers, and every
# pattern reads back through the running chain; at the end the domain is
# destroyed and the patterns are read from the one image left.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq xmllint qemu-img qemu-io
need_gluster
need_libvirt

start_gvmd --libvirt-uri "$LIBVIRT_URI"
TAG=h1lbj$$
IMAGES=$GVMD_DIR/state/images
GDIR=h1/$TAG
DOM=$TAG-dom

xp() { xmllint --xpath "$1" "${2:--}" 2>/dev/null; }

# The gluster volume through a FUSE mount that caches nothing
# (gluster_fuse_mount): qemu-img through libgfapi pays ~10 s per call on
# tear-down, and the mount must read QEMU's header changes at once.
FUSE=$TEST_TMP/fuse
gluster_fuse_mount "$FUSE"
# This run's directory on the volume (gvmd deletes images, not dirs).
at_exit "rm -rf '$FUSE/$GDIR'"
gfile() { echo "$FUSE/$GDIR/$1"; }
dfile() { echo "$IMAGES/$TAG/$1"; }

rpc volume-add "$(jq -nc --arg v "$GLUSTER_VOLUME" \
    '{name:"gv", backend:"gluster", volume:$v, servers:[{type:"tcp", host:"127.0.0.1"}]}')" \
    >/dev/null || fail "volume-add failed"

pat() { printf '0x%02x' $((0x40 + $1)); }
R=524288

# ---- the chains ----------------------------------------------------------
for L in 0 1 2 3 4 5; do
    for vp in "gv:$GDIR" "local:$TAG"; do
        b=""
        [ $L -gt 0 ] && b=",\"backing\":\"$vp/L$((L-1)).qcow2\""
        rpc image-create "{\"volume\":\"${vp%%:*}\",\"path\":\"${vp#*:}/L$L.qcow2\",\"format\":\"qcow2\",\"size\":4194304$b}" \
            >/dev/null || fail "image-create $vp/L$L.qcow2 failed"
    done
done
# Every layer writes its own region (one qemu-io call per image).
for L in 0 1 2 3 4 5; do
    for f in "$(gfile L$L.qcow2)" "$(dfile L$L.qcow2)"; do
        qemu-io -f qcow2 -c "write -P $(pat $L) $((L * R)) $R" "$f" >/dev/null ||
            fail "qemu-io write into $f failed"
    done
done
at_exit "rpc domain-detach '{\"domain\":\"$DOM\"}' >/dev/null 2>&1"

# The gluster disk with its chain spelled out (libvirt does not probe
# network chains here); the file disk with none (libvirt probes it).
gsrc() { echo "<source protocol='gluster' name='$GLUSTER_VOLUME/$GDIR/$1'><host name='127.0.0.1' port='24007'/></source>"; }
gxml="<disk type='network' device='disk'><driver name='qemu' type='qcow2'/>$(gsrc L5.qcow2)"
for L in 4 3 2 1 0; do
    gxml="$gxml<backingStore type='network'><format type='qcow2'/>$(gsrc L$L.qcow2)"
done
gxml="$gxml<backingStore/>"
for L in 4 3 2 1 0; do gxml="$gxml</backingStore>"; done
gxml="$gxml<target dev='vda' bus='virtio'/></disk>"
dxml="<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$(dfile L5.qcow2)'/><target dev='vdb' bus='virtio'/></disk>"
libvirt_define_test_domain "$DOM" "$gxml
$dxml"
tvirsh start "$DOM" >/dev/null ||
    fail "virsh start $DOM failed: $(tail -n 5 "/var/log/libvirt/qemu/$DOM.log" 2>/dev/null)"
rpc domain-attach "{\"domain\":\"$DOM\",\"disks\":[{\"target\":\"vda\",\"image\":\"gv:$GDIR/L5.qcow2\"},{\"target\":\"vdb\",\"image\":\"local:$TAG/L5.qcow2\"}]}" \
    >/dev/null || fail "domain-attach failed"

# ---- what each side says -------------------------------------------------
# Layer names (L0..L5) top to base, space separated.
xml_chain() { # TARGET
    local x
    x=$(tvirsh dumpxml "$DOM") || { echo "dumpxml-failed"; return; }
    printf '%s' "$x" | xmllint --xpath "//disk[target/@dev='$1']//source/@name | //disk[target/@dev='$1']//source/@file" - 2>/dev/null |
        grep -o 'L[0-9]\.qcow2' | sed 's/\.qcow2//' | tr '\n' ' ' | sed 's/ $//'
}
cat_chain() { # VOLUME:PATH of the active layer
    local imgs id out=""
    imgs=$(rpc image-list '{}') || { echo "image-list-failed"; return; }
    id=$(printf '%s' "$imgs" | jq -r --arg p "${1#*:}" --arg v "${1%%:*}" \
        '.[] | select(.path == $p and .volume == $v) | .id')
    while [ -n "$id" ] && [ "$id" != null ]; do
        out="$out $(printf '%s' "$imgs" | jq -r --argjson i "$id" '.[] | select(.id == $i) | .path' | grep -o 'L[0-9]')"
        id=$(printf '%s' "$imgs" | jq -r --argjson i "$id" \
            '.[] | select(.id == $i) | .backing | if type == "object" then .id elif type == "number" then . else null end')
    done
    echo "${out# }"
}
hdr_chain() { # FILE
    qemu-img info -U --backing-chain --output=json "$1" 2>/dev/null |
        jq -r '.[].filename' | grep -o 'L[0-9]\.qcow2' | sed 's/\.qcow2//' | tr '\n' ' ' | sed 's/ $//'
}
# The vda chain from its headers, one `qemu-img info` (no backing opened)
# per layer through FUSE: once QEMU wrote absolute gluster:// backing names,
# --backing-chain would go through libgfapi (~10 s a call).  Every name must
# be the relative one or exactly the URL of that layer on our volume.
ghdr_chain() { # TOP-LAYER
    local L=$1 out="" b n=0
    [ "${FUSE_OK:-}" = 1 ] || { hdr_chain "$(gfile "$L.qcow2")"; return; }
    while [ -n "$L" ] && [ $n -lt 8 ]; do
        out="$out $L"; n=$((n+1))
        b=$(qemu-img info -U --output=json "$(gfile "$L.qcow2")" 2>/dev/null | jq -r '."backing-filename" // empty')
        [ -n "$b" ] || break
        L=$(printf '%s' "$b" | sed -n "s#^\(gluster://127\.0\.0\.1:24007/$GLUSTER_VOLUME/$GDIR/\)\{0,1\}\(L[0-9]\)\.qcow2\$#\2#p")
        [ -n "$L" ] || out="$out unexpected-name:$b"
    done
    echo "${out# }"
}
dom_disk() { # TARGET: the catalog's active layer of the domain's disk
    rpc domain-list '{}' | jq -r --arg d "$DOM" --arg t "$1" \
        '.[] | select(.name == $d) | .disks[] | select(.target == $t) | .image' |
        while read -r id; do
            rpc image-info "{\"image\":$id}" | jq -r .path | grep -o 'L[0-9]'
        done
}
# qflush TARGET: make QEMU write its qcow2 metadata cache of the disk's
# active layer (node libvirt-N-format, N its index in the live XML).  QEMU
# 7.2 keeps the L2 entries of clusters a block-stream copied in memory after
# the job completed (and after it rewrote the backing name): reading the
# image from outside, or after a SIGKILL, would miss them.  Test-only HMP.
qflush() {
    local n
    n=$(tvirsh dumpxml "$DOM" | xp "string(//disk[target/@dev='$1']/source/@index)")
    [ -n "$n" ] || { check_fail "no index for $1"; return; }
    tvirsh qemu-monitor-command "$DOM" --hmp "qemu-io libvirt-$n-format \"flush\"" >/dev/null ||
        check_fail "flushing $1 failed"
}
# read_all FILE LAYERS...: every listed layer's pattern reads back.
read_all() {
    local f=$1 args=() L
    shift
    for L in "$@"; do args+=(-c "read -P $(pat $L) $((L * R)) $R"); done
    out=$(gfapi_oracle qemu-io -U -r -f qcow2 "${args[@]}" "$f" 2>&1)
    [ $? -eq 0 ] && ! printf '%s' "$out" | grep -q "Pattern verification failed\|error\|failed"
}
# gread_all "CHAIN" LAYERS...: the same through vda's chain CHAIN ("L3 L1
# L0", checked against the headers by ghdr_chain) opened from FUSE files,
# so that no layer goes through libgfapi.
gread_all() {
    local chain=$1 opts="" p="" L args=()
    shift
    [ "${FUSE_OK:-}" = 1 ] || { read_all "$(gfile "${chain%% *}.qcow2")" "$@"; return; }
    for L in $chain; do
        opts="$opts,${p}driver=qcow2,${p}file.driver=file,${p}file.filename=$(gfile "$L.qcow2")"
        p="${p}backing."
    done
    for L in "$@"; do args+=(-c "read -P $(pat $L) $((L * R)) $R"); done
    out=$(qemu-io -U -r "${args[@]}" --image-opts "${opts#,}" 2>&1)
    [ $? -eq 0 ] && ! printf '%s' "$out" | grep -q "Pattern verification failed\|error\|failed"
}
# agree WHAT EXPECTED-CHAIN: all three sides, both disks.
agree() {
    local what=$1 want=$2 top
    top=${want%% *}
    assert_eq "$want" "$(xml_chain vda)" "$what: vda chain in the domain XML"
    assert_eq "$want" "$(cat_chain "gv:$GDIR/$top.qcow2")" "$what: vda chain in the catalog"
    assert_eq "$want" "$(ghdr_chain "$top")" "$what: vda chain in the headers"
    assert_eq "$top" "$(dom_disk vda)" "$what: vda in domain-list"
    assert_eq "$want" "$(xml_chain vdb)" "$what: vdb chain in the domain XML"
    assert_eq "$want" "$(cat_chain "local:$TAG/$top.qcow2")" "$what: vdb chain in the catalog"
    assert_eq "$want" "$(hdr_chain "$(dfile $top.qcow2)")" "$what: vdb chain in the headers"
    assert_eq "$top" "$(dom_disk vdb)" "$what: vdb in domain-list"
    qflush vda
    qflush vdb
    gread_all "$want" 0 1 2 3 4 5 || check_fail "$what: vda patterns: $out"
    read_all "$(dfile $top.qcow2)" 0 1 2 3 4 5 || check_fail "$what: vdb patterns: $out"
}
# run_job METHOD PARAMS: start a job, wait for it, expect it done and live.
run_job() {
    local j id st
    j=$(rpc "$1" "$2") || { check_fail "$1 $2 failed"; return 1; }
    assert_eq true "$(printf '%s' "$j" | jq -r .live)" "$1 $2: live"
    id=$(printf '%s' "$j" | jq -r .id)
    st=$(rpc job-wait "{\"id\":$id,\"timeout\":90}") || { check_fail "job-wait $id failed"; return 1; }
    assert_eq "concluded false null" "$(printf '%s' "$st" | jq -r '"\(.status) \(.cancelled) \(.error)"')" \
        "$1 $2: outcome"
    rpc job-dismiss "{\"id\":$id}" >/dev/null
}
# wait_ready ID
wait_ready() {
    local i=0 st
    while [ $i -lt 120 ]; do
        st=$(rpc query-jobs '{}' | jq -r --argjson i "$1" '.[] | select(.id == $i) | .status')
        [ "$st" = ready ] && return 0
        [ "$st" = concluded ] && break
        sleep 0.25; i=$((i+1))
    done
    check_fail "job $1 did not become ready (status $st)"
    return 1
}
gone() { # LAYER: the file and the catalog row are gone on both volumes
    [ -e "$(dfile $1.qcow2)" ] && check_fail "$1 of vdb still exists on storage"
    if [ "${FUSE_OK:-}" = 1 ] && [ -e "$(gfile $1.qcow2)" ]; then check_fail "$1 of vda still exists"; fi
    rpc image-list '{}' | jq -e --arg p "$1.qcow2" '.[] | select(.path | endswith($p))' >/dev/null &&
        check_fail "$1 is still catalogued"
    return 0
}
mountpoint -q "$FUSE" && FUSE_OK=1

agree "start" "L5 L4 L3 L2 L1 L0"

# ---- 1. intermediate commit ---------------------------------------------------
for d in "gv:$GDIR" "local:$TAG"; do
    run_job block-commit "{\"top\":\"$d/L2.qcow2\",\"base\":\"$d/L1.qcow2\"}"
done
agree "intermediate commit" "L5 L4 L3 L1 L0"
gone L2
# The file chain used relative names: kept.
assert_eq "L1.qcow2" "$(qemu-img info -U --output=json "$(dfile L3.qcow2)" | jq -r '."backing-filename"')" \
    "relative backing name kept on the dir disk"

# ---- 2. active commit with pivot ------------------------------------------------
for d in "gv:$GDIR" "local:$TAG"; do
    run_job block-commit "{\"top\":\"$d/L5.qcow2\",\"speed\":0}"
done
agree "active commit" "L4 L3 L1 L0"
gone L5

# ---- 3. active commit, pivot false, cancelled -------------------------------------
j=$(rpc block-commit "{\"top\":\"gv:$GDIR/L4.qcow2\",\"pivot\":false}") || fail "block-commit pivot false failed"
id=$(printf '%s' "$j" | jq -r .id)
wait_ready "$id"
# Offline work on its images is refused while it holds them.
e=$(rpc_err image-rebase "{\"image\":\"gv:$GDIR/L4.qcow2\",\"backing\":null,\"mode\":\"unsafe\"}")
assert_eq InUse "$(printf '%s' "$e" | jq -r .data.class)" "image-rebase during a ready live job"
# job-complete on a job that is not ready / not live.
st=$(rpc job-cancel "{\"id\":$id}") || check_fail "job-cancel failed"
st=$(rpc job-wait "{\"id\":$id,\"timeout\":60}")
assert_eq "concluded true null" "$(printf '%s' "$st" | jq -r '"\(.status) \(.cancelled) \(.error)"')" "cancelled ready job"
rpc job-dismiss "{\"id\":$id}" >/dev/null
e=$(rpc_err job-complete "{\"id\":999999}")
assert_eq NotFound "$(printf '%s' "$e" | jq -r .data.class)" "job-complete of an unknown job"
assert_eq "L4 L3 L1 L0" "$(xml_chain vda)" "after job-cancel: vda chain unchanged (XML)"
assert_eq "L4 L3 L1 L0" "$(cat_chain "gv:$GDIR/L4.qcow2")" "after job-cancel: vda chain unchanged (catalog)"
qflush vda
gread_all "L4 L3 L1 L0" 0 1 2 3 4 5 || check_fail "after job-cancel: vda patterns: $out"

# ---- 4. active commit, pivot false, job-complete --------------------------------------
for d in "gv:$GDIR" "local:$TAG"; do
    j=$(rpc block-commit "{\"top\":\"$d/L4.qcow2\",\"pivot\":false}") || { check_fail "block-commit $d pivot false failed"; continue; }
    id=$(printf '%s' "$j" | jq -r .id)
    wait_ready "$id" || continue
    # Still on L4 while ready.
    [ "$d" = "local:$TAG" ] && assert_match "L4" "$(xml_chain vdb | cut -d' ' -f1)" "vdb active while ready"
    st=$(rpc job-complete "{\"id\":$id}") || { check_fail "job-complete $id failed"; continue; }
    st=$(rpc job-wait "{\"id\":$id,\"timeout\":60}")
    assert_eq "concluded false null" "$(printf '%s' "$st" | jq -r '"\(.status) \(.cancelled) \(.error)"')" \
        "job-complete of the $d commit"
    rpc job-dismiss "{\"id\":$id}" >/dev/null
    e=$(rpc_err job-complete "{\"id\":$id}")
done
agree "active commit completed by job-complete" "L3 L1 L0"
gone L4

# ---- 5. pull with a base ------------------------------------------------------------
for d in "gv:$GDIR" "local:$TAG"; do
    run_job block-pull "{\"image\":\"$d/L3.qcow2\",\"base\":\"$d/L0.qcow2\"}"
done
agree "pull down to L0" "L3 L0"

# ---- 6. pull without base -------------------------------------------------------------
for d in "gv:$GDIR" "local:$TAG"; do
    run_job block-pull "{\"image\":\"$d/L3.qcow2\"}"
done
agree "flatten" "L3"

# An offline job cannot be completed: L1 is used by no domain any more.
j=$(rpc block-pull "{\"image\":\"local:$TAG/L1.qcow2\"}") || check_fail "offline block-pull of L1 failed"
id=$(printf '%s' "$j" | jq -r .id)
assert_eq false "$(printf '%s' "$j" | jq -r .live)" "block-pull of an unused image is offline"
e=$(rpc_err job-complete "{\"id\":$id}")
assert_eq Unsupported "$(printf '%s' "$e" | jq -r .data.class)" "job-complete of an offline job"
rpc job-wait "{\"id\":$id,\"timeout\":60}" >/dev/null

# ---- after the domain: the one image left reads every pattern ---------------------------
# A clean stop (not libvirt_kill_domain's SIGKILL): QEMU closes its images.
tvirsh destroy "$DOM" >/dev/null || check_fail "virsh destroy $DOM failed"
read_all "gluster://127.0.0.1/$GLUSTER_VOLUME/$GDIR/L3.qcow2" 0 1 2 3 4 5 ||
    check_fail "vda's L3 after the domain: $out"
read_all "$(dfile L3.qcow2)" 0 1 2 3 4 5 || check_fail "vdb's L3 after the domain: $out"
assert_eq "null" "$(qemu-img info --output=json "$(dfile L3.qcow2)" | jq -r '."backing-filename"')" \
    "flattened vdb has no backing file"
qemu-img check -q "$(dfile L3.qcow2)" || check_fail "qemu-img check of vdb's L3"

# Clean the gluster files.
rpc domain-detach "{\"domain\":\"$DOM\"}" >/dev/null
for L in 3 1 0; do rpc image-delete "{\"image\":\"gv:$GDIR/L$L.qcow2\"}" >/dev/null 2>&1; done
stop_gvmd
exit 0
