#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-preconditions.sh — every job all or nothing (issue 10): a job checks
# every catalog and storage precondition before it journals or writes.
# On each backend (dir, gluster):
#   1. snapshots: base <- s1 <- s2 <- s3 <- act made by four offline
#      snapshots sn1..sn4 of a domain known only to the catalog (sn2
#      freezes s1, sn3 s2, sn4 s3).  block-commit --top s3 --base s1 would
#      change s1's frozen content and remove s2 and s3: refused up front,
#      naming sn2, sn3 and sn4, and not one byte of any file or header has
#      changed (md5sum of every file, qemu-img info of every header).  After
#      snapshot-delete --metadata-only of the three, the same commit
#      succeeds, act reads as before and chain-audit is clean.  An unsafe
#      rebase of s2 (frozen by sn3) is refused the same way; snapshot-delete
#      of sn1, which would free base under an uncatalogued overlay, too.
#   2. an overlay gvmd does not know: `qemu-img create -b m2.qcow2` beside
#      the catalogued chain m1 <- m2 <- m3: block-commit --top m2 --base m1
#      would change what it reads (m2 goes away): refused naming it, nothing
#      changes; chain-audit lists it as not-catalogued.
# On the dir volume with libvirt (a running TCG domain whose file disk has
# the chain of 1, snapshots taken while it was shut off): the same commit
# takes the live path and is refused before libvirt is asked (no block job,
# no byte changed below the active layer, the live XML's chain unchanged).
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need md5sum

HAVE_LIBVIRT=""
if [ -n "${GVM_LIBVIRT_URI:-}" ] || { command -v virsh >/dev/null 2>&1 &&
        command -v qemu-system-x86_64 >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; }; then
    need_libvirt
    HAVE_LIBVIRT=1
    start_gvmd --libvirt-uri "$LIBVIRT_URI"
else
    note "no libvirt: the live part of this test is skipped"
    start_gvmd
fi

# Fingerprint of a directory: md5sum of every file and every header as
# qemu-img reads it (-U: a running QEMU may hold the active layer).
fingerprint() {
    for f in "$1"/*; do
        [ -f "$f" ] || continue
        echo "$(basename "$f") $(md5sum <"$f" | cut -d' ' -f1)"
        qemu-img info -U --output=json "$f" | jq -c 'del(.filename)'
    done
}
fingerprint_below() { # DIR EXCEPT-FILE: files other than the running layer
    for f in "$1"/*; do
        [ -f "$f" ] && [ "$(basename "$f")" != "$2" ] || continue
        echo "$(basename "$f") $(md5sum <"$f" | cut -d' ' -f1)"
        qemu-img info -U --output=json "$f" | jq -c 'del(.filename)'
    done
}
bn() { xargs -r -n1 basename | tr '\n' ' ' | sed 's/ $//'; }
qchain() { qemu-img info -U --backing-chain --output=json "$1" | jq -r '.[].filename' | bn; }
audit_diffs() { # VOL:PATH
    rpc chain-audit "{\"image\":\"$1\"}" | jq -c '[.differences[] | {what, image: .image.name}]'
}
job_wait() { rpc job-wait "{\"id\":$(jq .id <<<"$1"),\"timeout\":120}"; }

# The chain base <- s1 <- s2 <- s3 <- act in VOL:$1 by snapshots of domain
# $2 (attached with explicit disks), a pattern written into each layer.
make_chain() {
    local d=$1 dom=$2 tag=$3 i=1 prev=base
    rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$d/base.qcow2\",\"format\":\"qcow2\",\"size\":4194304}" \
        >/dev/null || fail "image-create base"
    qio "$(lpath "$d/base.qcow2")" "write -P 0x10 0 1M"
    rpc domain-attach "{\"domain\":\"$dom\",\"disks\":[{\"target\":\"vda\",\"image\":\"$VOL:$d/base.qcow2\"}]}" \
        >/dev/null || fail "domain-attach $dom"
    for o in s1 s2 s3 act; do
        rpc snapshot-create "{\"name\":\"sn$i-$tag\",\"domain\":\"$dom\",\"disks\":[{\"target\":\"vda\",\"overlay\":\"$d/$o.qcow2\"}]}" \
            >/dev/null || fail "snapshot-create sn$i-$tag"
        qio "$(lpath "$d/$o.qcow2")" "write -P $((0x10 + i)) $((i * 512 * 1024)) 512k"
        prev=$o
        i=$((i + 1))
    done
    assert_eq "act.qcow2 s3.qcow2 s2.qcow2 s1.qcow2 base.qcow2" "$(qchain "$(lpath "$d/act.qcow2")")" \
        "$tag: the chain on storage"
}

scenario() {
    B=$BACKEND${PROFILE:+-$PROFILE}
    local A=$SUB/a M=$SUB/m dom=pre-$B-$$

    # ---- 1. snapshots ---------------------------------------------------------------
    make_chain "$A" "$dom" "$B"
    sum_act=$(qemu_sha256 "$(lpath "$A/act.qcow2")")
    fingerprint "$(lpath "$A")" >"$TEST_TMP/before-$B"
    njobs=$(rpc query-jobs '{}' | jq length)
    out=$(gvmctl --wait block-commit --top "$VOL:$A/s3.qcow2" --base "$VOL:$A/s1.qcow2" 2>&1) &&
        check_fail "$B: the commit over snapshots succeeded: $out"
    note "$B: refused: $out"
    for s in sn2 sn3 sn4; do
        assert_match "snapshot $s-$B" "$out" "$B: the refusal names $s"
    done
    assert_match "metadata-only" "$out" "$B: the refusal says what to do"
    assert_match "InUse" "$out" "$B: the refusal's class"
    fingerprint "$(lpath "$A")" >"$TEST_TMP/after-$B"
    diff "$TEST_TMP/before-$B" "$TEST_TMP/after-$B" >&2 ||
        check_fail "$B: a refused commit changed files or headers"
    assert_eq "[]" "$(audit_diffs "$VOL:$A/act.qcow2")" "$B: chain-audit after the refusal"
    assert_eq "$njobs" "$(rpc query-jobs '{}' | jq length)" "$B: no job was created"
    # An unsafe rebase of a frozen image would change what the snapshot froze.
    e=$(rpc_err image-rebase "{\"image\":\"$VOL:$A/s2.qcow2\",\"backing\":\"$VOL:$A/base.qcow2\",\"mode\":\"unsafe\"}")
    assert_match "snapshot sn3-$B" "$(err_msg "$e")" "$B: unsafe rebase of a frozen image refused"
    cmp -s <(fingerprint "$(lpath "$A")") "$TEST_TMP/before-$B" ||
        check_fail "$B: a refused rebase changed files or headers"

    # The records go (files kept); then the same commit goes through.
    for s in sn2 sn3 sn4; do
        j=$(rpc snapshot-delete "{\"snapshot\":\"$s-$B\",\"metadata-only\":true}") || fail "$B: delete $s"
        j=$(job_wait "$j")
        assert_eq "concluded null" "$(jq -c -r '"\(.status) \(.error)"' <<<"$j")" "$B: delete $s metadata-only"
    done
    cmp -s <(fingerprint "$(lpath "$A")") "$TEST_TMP/before-$B" ||
        check_fail "$B: snapshot-delete metadata-only changed files"
    out=$(gvmctl --wait block-commit --top "$VOL:$A/s3.qcow2" --base "$VOL:$A/s1.qcow2" 2>&1) ||
        check_fail "$B: the commit after the snapshots' records went failed: $out"
    assert_eq "act.qcow2 s1.qcow2 base.qcow2" "$(qchain "$(lpath "$A/act.qcow2")")" "$B: chain after the commit"
    assert_eq "$sum_act" "$(qemu_sha256 "$(lpath "$A/act.qcow2")")" "$B: act reads as before"
    [ ! -e "$(lpath "$A/s2.qcow2")" ] && [ ! -e "$(lpath "$A/s3.qcow2")" ] ||
        check_fail "$B: s2/s3 still on storage"
    assert_eq "[]" "$(audit_diffs "$VOL:$A/act.qcow2")" "$B: chain-audit after the commit"
    # sn1 froze base, which its delete would free (unlink): not while an
    # overlay the catalog does not know backs onto it.
    (cd "$(lpath "$A")" && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 other.qcow2) ||
        fail "$B: qemu-img create other.qcow2"
    fingerprint "$(lpath "$A")" >"$TEST_TMP/before-d-$B"
    GVM_AUDIT_AFTER_JOBS=0  # other.qcow2 is a difference on purpose until removed
    out=$(gvmctl --wait snapshot-delete --snapshot "sn1-$B" 2>&1) &&
        check_fail "$B: snapshot-delete freeing the backing file of an uncatalogued overlay succeeded"
    assert_match "$VOL:$A/other.qcow2 \\(on $VOL:$A/base.qcow2\\)" "$out" "$B: snapshot-delete names the overlay"
    cmp -s <(fingerprint "$(lpath "$A")") "$TEST_TMP/before-d-$B" ||
        check_fail "$B: a refused snapshot-delete changed files or headers"
    rm -f "$(lpath "$A/other.qcow2")"
    GVM_AUDIT_AFTER_JOBS=1
    j=$(rpc snapshot-delete "{\"snapshot\":\"sn1-$B\",\"metadata-only\":true}") && job_wait "$j" >/dev/null
    rpc domain-detach "{\"domain\":\"$dom\"}" >/dev/null || check_fail "$B: domain-detach"

    # ---- 2. an overlay the catalog does not know -------------------------------------
    for L in 1 2 3; do
        b=""
        [ $L -gt 1 ] && b=",\"backing\":\"$VOL:$M/m$((L-1)).qcow2\""
        rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$M/m$L.qcow2\",\"format\":\"qcow2\",\"size\":4194304$b}" \
            >/dev/null || fail "$B: image-create m$L"
        qio "$(lpath "$M/m$L.qcow2")" "write -P $((0x30 + L)) $((L * 512 * 1024)) 512k"
    done
    (cd "$(lpath "$M")" && qemu-img create -q -f qcow2 -b m2.qcow2 -F qcow2 other.qcow2) ||
        fail "$B: qemu-img create other.qcow2"
    sum_other=$(qemu_sha256 "$(lpath "$M/other.qcow2")")
    fingerprint "$(lpath "$M")" >"$TEST_TMP/before-m-$B"
    # other.qcow2 is an audit difference on purpose until it is removed below.
    GVM_AUDIT_AFTER_JOBS=0
    out=$(gvmctl --wait block-commit --top "$VOL:$M/m2.qcow2" --base "$VOL:$M/m1.qcow2" 2>&1) &&
        check_fail "$B: the commit under an uncatalogued overlay succeeded: $out"
    note "$B: refused: $out"
    assert_match "$VOL:$M/other.qcow2 \\(on $VOL:$M/m2.qcow2\\)" "$out" "$B: the refusal names the overlay"
    assert_match "image-import" "$out" "$B: the refusal says what to do"
    cmp -s <(fingerprint "$(lpath "$M")") "$TEST_TMP/before-m-$B" ||
        check_fail "$B: a refused commit changed files or headers"
    assert_eq "$sum_other" "$(qemu_sha256 "$(lpath "$M/other.qcow2")")" "$B: other.qcow2 reads as before"
    a=$(audit_diffs "$VOL:$M/m3.qcow2")
    assert_eq "[{\"what\":\"not-catalogued\",\"image\":\"$VOL:$M/other.qcow2\"}]" "$a" \
        "$B: chain-audit lists the overlay"
    # Committing m3 into m2 would change what other.qcow2 reads too.
    out=$(gvmctl --wait block-commit --top "$VOL:$M/m3.qcow2" 2>&1) &&
        check_fail "$B: a commit into the uncatalogued overlay's backing file succeeded"
    assert_match "other.qcow2" "$out" "$B: commit into m2 names the overlay"
    cmp -s <(fingerprint "$(lpath "$M")") "$TEST_TMP/before-m-$B" ||
        check_fail "$B: a refused commit into m2 changed files or headers"
    # The planted overlay goes: every later job's audit of everything
    # (tests/lib.sh) must find catalog and storage in agreement again.
    rm -f "$(lpath "$M/other.qcow2")"
    GVM_AUDIT_AFTER_JOBS=1
    audit_clean "once the uncatalogued overlay is gone ($B)"
}

for_each_backend scenario

# ---- live: refused before libvirt is called ---------------------------------------------
live() {
    local tag=live$$ d=$SUB/live dom=pre-live-$$ xml
    VOL=local ROOT=$GVMD_DIR/state/images
    xml="<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$(lpath "$d/base.qcow2")'/><target dev='vda' bus='virtio'/></disk>"
    mkdir -p "$(lpath "$d")"
    # The domain's disk starts on base; the offline snapshots move libvirt's
    # definition up the chain (virt-define.c).
    libvirt_define_test_domain "$dom" "$xml"
    at_exit "rpc domain-detach '{\"domain\":\"$(tvirsh domuuid "$dom")\"}' >/dev/null 2>&1"
    # Attached by libvirt's uuid, so gvmd finds the definition to update.
    make_chain "$d" "$(tvirsh domuuid "$dom")" "$tag"
    tvirsh dumpxml --inactive "$dom" | grep -q "act.qcow2" ||
        fail "libvirt's definition does not name act.qcow2 after the snapshots"
    tvirsh start "$dom" >/dev/null ||
        fail "virsh start $dom failed: $(tail -n 5 "/var/log/libvirt/qemu/$dom.log" 2>/dev/null)"
    fingerprint_below "$(lpath "$d")" act.qcow2 >"$TEST_TMP/before-live"
    xml_before=$(tvirsh dumpxml "$dom" | grep -o "file='[^']*'")
    lines=$(wc -l <"$GVMD_DIR/gvmd.log")
    out=$(gvmctl --wait block-commit --top "local:$d/s3.qcow2" --base "local:$d/s1.qcow2" 2>&1) &&
        check_fail "live: the commit over snapshots succeeded: $out"
    note "live: refused: $out"
    for s in sn2 sn3 sn4; do
        assert_match "snapshot $s-$tag" "$out" "live: the refusal names $s"
    done
    tail -n +"$((lines + 1))" "$GVMD_DIR/gvmd.log" | grep -q "through libvirt" &&
        check_fail "live: gvmd asked libvirt for the commit"
    assert_eq "" "$(tvirsh blockjob "$dom" vda 2>&1 | grep -iv 'no current block job')" "live: no libvirt block job"
    assert_eq "$xml_before" "$(tvirsh dumpxml "$dom" | grep -o "file='[^']*'")" "live: the live XML's chain"
    fingerprint_below "$(lpath "$d")" act.qcow2 >"$TEST_TMP/after-live"
    diff "$TEST_TMP/before-live" "$TEST_TMP/after-live" >&2 ||
        check_fail "live: a refused commit changed files or headers"
    assert_eq "act.qcow2 s3.qcow2 s2.qcow2 s1.qcow2 base.qcow2" "$(qchain "$(lpath "$d/act.qcow2")")" \
        "live: the chain on storage"
    libvirt_kill_domain "$dom"
}
if [ -n "$HAVE_LIBVIRT" ]; then
    SUB=t$$ live
fi

