#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-snapshot.sh — offline external snapshots of a domain known only to
# the catalog (domain-attach with explicit disks), on the dir volume and on
# gluster.  After every step, qemu-img (on the files, through a FUSE mount
# for gluster) is the oracle: the backing chains, qemu-img check, and the
# guest-visible content (sha256 of qemu-img convert -O raw) must be what the
# step promises, and gvmd's image-info / snapshot-list / domain-list must
# agree with storage.
#   create sn1, sn2, sn3 (writes between them) -> linear tree
#   atomicity: a taken given overlay path -> nothing created, nothing recorded
#   overlay names BASE.SNAP.qcow2 (revert: BASE.SNAP-revert.qcow2), "-2".. when
#   taken, the snapshot names gvmd added left out of BASE; the results' "active"
#   revert to sn1 -> new overlay on sn1's frozen image, old branch untouched
#   sn4 on the new branch; revert to sn2 with a branch name
#   delete the middle snapshot sn2 (two children: data pulled into both),
#   metadata-only delete of sn3, delete of the leaf sn4 and of the root sn1
#   (bottom image flattened into its children): every remaining image reads
#   as before, the freed files are gone, metadata-only keeps its files.
# The two ways snapshot-delete moves data, on bare images:
#   commit into the parent: base(4M) <- d1(6M) with snapshots s1 (freezes
#   d1, overlay o1) and s2 (freezes o1, overlay o2); base has no other
#   child, is frozen by no snapshot and is no domain's disk, so deleting s1
#   commits d1 into base (base grows to 6M and now reads what d1 read) and
#   deleting s2 then commits o1 into base; o1/o2 read as before;
#   pull into the child: the same with a base that has a second child:
#   base is left byte for byte as it was and the data goes into the child.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
# Every refusal's message is checked for bare catalog ids at the end.
export GVM_COLLECT_ERRORS=1

start_gvmd

bn() { xargs -r -n1 basename | tr '\n' ' ' | sed 's/ $//'; }
# The chain of a local file as qemu-img sees it: basenames top -> base.
qchain() { qemu-img info --backing-chain --output=json "$1" | jq -r '.[].filename' | bn; }
# The chain gvmd reports for VOL:PATH.
gchain() { rpc image-info "{\"image\":$(vref "$1"),\"backing-chain\":true}" | jq -r '.chain[].path' | bn; }
active() { rpc domain-list '{}' | jq -r --arg d "$DOM" --arg t "$1" \
    '.[] | select(.name == $d) | .disks[] | select(.target == $t) | ."image-name"' | sed 's/^[^:]*://'; }
snaps() { rpc snapshot-list "{\"domain\":\"$DOM\"}"; }
# check_chain WHAT VOLPATH "expected basenames top->base"
check_chain() {
    assert_eq "$3" "$(qchain "$(lpath "$2")")" "$1: qemu-img chain of $2"
    assert_eq "$3" "$(gchain "$2")" "$1: image-info chain of $2"
}
check_clean() {
    for f in "$ROOT/$SUB"/*.qcow2; do
        out=$(qemu-img check "$f" 2>&1) || check_fail "$1: qemu-img check $(basename "$f"): $out"
    done
}
# Record the guest content of every catalogued image of the test dir.
sums() {
    for f in "$ROOT/$SUB"/*.qcow2; do
        echo "$(basename "$f") $(qemu_sha256 "$f")"
    done
}
tree() { snaps | jq -c '[.[] | {n: .name, p: .parent, c: (.children | sort), cur: .current}] | sort_by(.n)'; }

scenario() {
    B=$BACKEND${PROFILE:+-$PROFILE}
    DOM=vm-$B
    S=$SUB
    qimg create -q -f qcow2 "$(lpath $S/base.qcow2)" 4M
    qimg create -q -f qcow2 "$(lpath $S/data.qcow2)" 2M
    qio "$(lpath $S/base.qcow2)" "write -P 0x11 0 1M"
    qio "$(lpath $S/data.qcow2)" "write -P 0x21 0 512k"
    rpc image-import "{\"image\":$(vref $S/base.qcow2)}" >/dev/null || fail "import base"
    rpc image-import "{\"image\":$(vref $S/data.qcow2)}" >/dev/null || fail "import data"
    rpc domain-attach "{\"domain\":\"$DOM\",\"disks\":[{\"target\":\"vda\",\"image\":$(vref $S/base.qcow2)},{\"target\":\"vdb\",\"image\":$(vref $S/data.qcow2)}]}" \
        >/dev/null || fail "domain-attach"
    assert_eq "base.qcow2" "$(basename "$(active vda)")" "attach: vda active"

    # ---- sn1, sn2, sn3 ------------------------------------------------------------------
    r=$(rpc snapshot-create "{\"name\":\"sn1-$B\",\"domain\":\"$DOM\",\"description\":\"first\"}") || fail "sn1"
    assert_eq "null true 2 first" "$(jq -r '"\(.parent) \(.current) \(.disks|length) \(.description)"' <<<"$r")" "sn1 result"
    assert_eq "vda=$VOL:$S/base.sn1-$B.qcow2 vdb=$VOL:$S/data.sn1-$B.qcow2" \
        "$(jq -r '[.active[] | .target + "=" + ."image-name"] | join(" ")' <<<"$r")" "sn1 result: the new active images"
    assert_eq "$S/base.sn1-$B.qcow2" "$(active vda)" "sn1: vda active overlay"
    assert_eq "$S/data.sn1-$B.qcow2" "$(active vdb)" "sn1: vdb active overlay"
    hdr=$(qemu-img info --output=json "$(lpath $S/base.sn1-$B.qcow2)")
    assert_eq "base.qcow2 qcow2" "$(jq -r '[."backing-filename", ."backing-filename-format"] | join(" ")' <<<"$hdr")" \
        "sn1: relative backing name and format in the header"
    check_chain sn1 $S/base.sn1-$B.qcow2 "base.sn1-$B.qcow2 base.qcow2"
    check_chain sn1 $S/data.sn1-$B.qcow2 "data.sn1-$B.qcow2 data.qcow2"
    qio "$(lpath $S/base.sn1-$B.qcow2)" "write -P 0x12 512k 64k"
    qio "$(lpath $S/data.sn1-$B.qcow2)" "write -P 0x22 64k 64k"
    rpc snapshot-create "{\"name\":\"sn2-$B\",\"domain\":\"$DOM\"}" >/dev/null || fail "sn2"
    qio "$(lpath $S/base.sn2-$B.qcow2)" "write -P 0x13 1M 64k" "write -P 0x14 3M 64k"
    qio "$(lpath $S/data.sn2-$B.qcow2)" "write -P 0x23 128k 64k"
    rpc snapshot-create "{\"name\":\"sn3-$B\",\"domain\":\"$DOM\"}" >/dev/null || fail "sn3"
    qio "$(lpath $S/base.sn3-$B.qcow2)" "write -P 0x15 2M 64k"
    check_chain sn3 $S/base.sn3-$B.qcow2 \
        "base.sn3-$B.qcow2 base.sn2-$B.qcow2 base.sn1-$B.qcow2 base.qcow2"
    check_chain sn3 $S/data.sn3-$B.qcow2 \
        "data.sn3-$B.qcow2 data.sn2-$B.qcow2 data.sn1-$B.qcow2 data.qcow2"
    json_eq "tree after sn3" "[{\"n\":\"sn1-$B\",\"p\":null,\"c\":[\"sn2-$B\"],\"cur\":false},{\"n\":\"sn2-$B\",\"p\":\"sn1-$B\",\"c\":[\"sn3-$B\"],\"cur\":false},{\"n\":\"sn3-$B\",\"p\":\"sn2-$B\",\"c\":[],\"cur\":true}]" "$(tree)"
    i=$(rpc snapshot-info "{\"snapshot\":\"sn2-$B\"}") || fail "snapshot-info"
    assert_eq "vda:$S/base.sn1-$B.qcow2:$S/base.sn2-$B.qcow2" \
        "$(jq -r '.disks[] | select(.target=="vda") | "vda:" + (."image-name"|sub("^[^:]*:";"")) + ":" + (."overlay-name"|sub("^[^:]*:";""))' <<<"$i")" \
        "snapshot-info sn2: frozen image and overlay of vda"
    check_clean sn3

    # ---- atomicity: vdb's given overlay path is taken -----------------------------------
    echo keep >"$(lpath $S/data.bad-$B.qcow2)"
    e=$(rpc_err snapshot-create "{\"name\":\"bad-$B\",\"domain\":\"$DOM\",\"disks\":[{\"target\":\"vda\"},{\"target\":\"vdb\",\"overlay\":\"$S/data.bad-$B.qcow2\"}]}") || check_fail "bad: not refused"
    assert_eq AlreadyExists "$(err_class "$e")" "bad: error class"
    [ -e "$(lpath $S/base.bad-$B.qcow2)" ] && check_fail "bad: vda overlay left behind"
    assert_eq keep "$(cat "$(lpath $S/data.bad-$B.qcow2)")" "bad: the existing file is untouched"
    assert_eq "$S/base.sn3-$B.qcow2" "$(active vda)" "bad: vda still active"
    assert_eq 3 "$(snaps | jq length)" "bad: no snapshot recorded"
    rm -f "$(lpath $S/data.bad-$B.qcow2)"
    e=$(rpc_err snapshot-create "{\"name\":\"q-$B\",\"domain\":\"$DOM\",\"quiesce\":true}") || check_fail "quiesce accepted"
    assert_eq Unsupported "$(err_class "$e")" "quiesce on an offline domain"

    # ---- revert to sn1 ---------------------------------------------------------------------
    rm -rf "$TEST_TMP/copy-$B"; cp -r "$ROOT/$S" "$TEST_TMP/copy-$B"
    r=$(rpc snapshot-revert "{\"snapshot\":\"sn1-$B\"}") || fail "revert sn1"
    assert_eq "sn1-$B true" "$(jq -r '"\(.name) \(.current)"' <<<"$r")" "revert: sn1 is current"
    assert_eq "vda=$VOL:$S/base.sn1-$B-revert.qcow2 vdb=$VOL:$S/data.sn1-$B-revert.qcow2" \
        "$(jq -r '[.active[] | .target + "=" + ."image-name"] | join(" ")' <<<"$r")" "revert result: the new active images"
    assert_eq "$S/base.sn1-$B-revert.qcow2" "$(active vda)" "revert: vda active"
    check_chain revert $S/base.sn1-$B-revert.qcow2 "base.sn1-$B-revert.qcow2 base.qcow2"
    check_chain revert $S/data.sn1-$B-revert.qcow2 "data.sn1-$B-revert.qcow2 data.qcow2"
    qemu-img compare -q "$(lpath $S/base.sn1-$B-revert.qcow2)" "$(lpath $S/base.qcow2)" || check_fail "revert: vda does not read as at sn1"
    for f in "$TEST_TMP/copy-$B"/*.qcow2; do
        qemu-img compare -q "$(lpath $S/$(basename "$f"))" "$f" || check_fail "revert: $(basename "$f") of the old branch changed"
        cmp -s "$(lpath $S/$(basename "$f"))" "$f" || check_fail "revert: $(basename "$f") file bytes changed"
    done
    qio "$(lpath $S/base.sn1-$B-revert.qcow2)" "write -P 0x16 0 64k"
    r=$(rpc snapshot-create "{\"name\":\"sn4-$B\",\"domain\":\"$DOM\"}") || fail "sn4"
    assert_eq "sn1-$B" "$(jq -r .parent <<<"$r")" "sn4: parent is the reverted snapshot"
    r=$(rpc snapshot-revert "{\"snapshot\":\"sn2-$B\",\"branch\":\"br-$B\"}") || fail "revert sn2 branch"
    assert_eq "br-$B sn2-$B true" "$(jq -r '"\(.name) \(.parent) \(.current)"' <<<"$r")" "branch: node"
    check_chain branch $S/base.br-$B.qcow2 \
        "base.br-$B.qcow2 base.sn2-$B-revert.qcow2 base.sn1-$B.qcow2 base.qcow2"
    qio "$(lpath $S/base.br-$B.qcow2)" "write -P 0x17 3M 64k"
    json_eq "tree after revert" "[{\"n\":\"br-$B\",\"p\":\"sn2-$B\",\"c\":[],\"cur\":true},{\"n\":\"sn1-$B\",\"p\":null,\"c\":[\"sn2-$B\",\"sn4-$B\"],\"cur\":false},{\"n\":\"sn2-$B\",\"p\":\"sn1-$B\",\"c\":[\"br-$B\",\"sn3-$B\"],\"cur\":false},{\"n\":\"sn3-$B\",\"p\":\"sn2-$B\",\"c\":[],\"cur\":false},{\"n\":\"sn4-$B\",\"p\":\"sn1-$B\",\"c\":[],\"cur\":false}]" "$(tree)"
    check_clean revert

    # ---- delete the middle snapshot sn2 (its frozen image has two children) -----
    sums >"$TEST_TMP/before-$B"
    j=$(rpc snapshot-delete "{\"snapshot\":\"sn2-$B\"}") || fail "delete sn2"
    j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":120}")
    assert_eq "concluded null" "$(jq -c -r '"\(.status) \(.error)"' <<<"$j")" "delete sn2: job"
    for f in base data; do
        [ -e "$(lpath $S/$f.sn1-$B.qcow2)" ] && check_fail "delete sn2: the freed $f.sn1 is still there"
    done
    sums >"$TEST_TMP/after-$B"
    grep -v "\.sn1-$B\.qcow2 " "$TEST_TMP/before-$B" | diff - "$TEST_TMP/after-$B" >&2 ||
        check_fail "delete sn2: guest content of a remaining image changed"
    check_chain "delete sn2" $S/base.sn3-$B.qcow2 "base.sn3-$B.qcow2 base.sn2-$B.qcow2 base.qcow2"
    check_chain "delete sn2" $S/base.br-$B.qcow2 "base.br-$B.qcow2 base.sn2-$B-revert.qcow2 base.qcow2"
    json_eq "tree after delete sn2" "[{\"n\":\"br-$B\",\"p\":\"sn1-$B\",\"c\":[],\"cur\":true},{\"n\":\"sn1-$B\",\"p\":null,\"c\":[\"br-$B\",\"sn3-$B\",\"sn4-$B\"],\"cur\":false},{\"n\":\"sn3-$B\",\"p\":\"sn1-$B\",\"c\":[],\"cur\":false},{\"n\":\"sn4-$B\",\"p\":\"sn1-$B\",\"c\":[],\"cur\":false}]" "$(tree)"
    assert_eq "$S/base.sn2-$B.qcow2" "$(rpc snapshot-info "{\"snapshot\":\"sn1-$B\"}" | jq -r '.disks[] | select(.target=="vda") | ."overlay-name"' | sed 's/^[^:]*://')" \
        "delete sn2: sn1's overlay is now the child that took the freed image's place"
    check_clean "delete sn2"
    assert_eq 0 "$(rpc image-list '{}' | jq --arg p "$S/base.sn1-$B.qcow2" '[.[] | select(.path == $p)] | length')" \
        "delete sn2: freed image gone from the catalog"

    # ---- metadata-only keeps the files ---------------------------------------------------
    j=$(rpc snapshot-delete "{\"snapshot\":\"sn3-$B\",\"metadata-only\":true}") || fail "delete sn3"
    j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":60}")
    assert_eq "concluded null" "$(jq -c -r '"\(.status) \(.error)"' <<<"$j")" "delete sn3 metadata-only: job"
    [ -e "$(lpath $S/base.sn2-$B.qcow2)" ] && [ -e "$(lpath $S/base.sn3-$B.qcow2)" ] ||
        check_fail "metadata-only deleted files"
    rpc_err snapshot-info "{\"snapshot\":\"sn3-$B\"}" >/dev/null || check_fail "sn3 still listed"

    # ---- the leaf sn4 and the root sn1 (bottom image flattened into its children) --
    sums >"$TEST_TMP/before-$B"
    for s in sn4 sn1; do
        j=$(rpc snapshot-delete "{\"snapshot\":\"$s-$B\"}") || fail "delete $s"
        j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":120}")
        assert_eq "concluded null" "$(jq -c -r '"\(.status) \(.error)"' <<<"$j")" "delete $s: job"
    done
    for f in base.qcow2 data.qcow2 base.sn1-$B-revert.qcow2 data.sn1-$B-revert.qcow2; do
        [ -e "$(lpath $S/$f)" ] && check_fail "delete sn4/sn1: the freed $f is still there"
    done
    sums >"$TEST_TMP/after-$B"
    grep -v -E "^(base|data)(\.sn1-$B-revert)?\.qcow2 " "$TEST_TMP/before-$B" | diff - "$TEST_TMP/after-$B" >&2 ||
        check_fail "delete sn4/sn1: guest content of a remaining image changed"
    check_chain "delete sn1" $S/base.br-$B.qcow2 "base.br-$B.qcow2 base.sn2-$B-revert.qcow2"
    check_chain "delete sn1" $S/base.sn4-$B.qcow2 "base.sn4-$B.qcow2"
    json_eq "tree at the end" "[{\"n\":\"br-$B\",\"p\":null,\"c\":[],\"cur\":true}]" "$(tree)"
    check_clean "delete sn1"
    e=$(rpc_err domain-detach "{\"domain\":\"$DOM\"}") || check_fail "detach with snapshots accepted"
    assert_eq InUse "$(err_class "$e")" "detach with a snapshot"
}

# ---- snapshot-delete: commit into the parent, or pull into the child --------------
# del SNAPSHOT WHAT: delete and wait; the job must succeed.
del() {
    j=$(rpc snapshot-delete "{\"snapshot\":\"$1\"}") || { check_fail "$2: delete $1 refused"; return; }
    j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":120}")
    assert_eq "concluded null" "$(jq -c -r '"\(.status) \(.error)"' <<<"$j")" "$2: delete $1"
}
# vsize VOLPATH: virtual size on storage and in the catalog, "A B".
vsize() {
    echo "$(qemu-img info --output=json "$(lpath "$1")" | jq '."virtual-size"')" \
         "$(rpc image-info "{\"image\":$(vref "$1")}" | jq '."virtual-size"')"
}
branches() {
    B=$BACKEND${PROFILE:+-$PROFILE}; C=$SUB/cb; mkdir -p "$(lpath $C)"
    qimg create -q -f qcow2 "$(lpath $C/base.qcow2)" 4M
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$(lpath $C/d1.qcow2)" 6M
    qio "$(lpath $C/base.qcow2)" "write -P 0x41 0 4M"
    qio "$(lpath $C/d1.qcow2)" "write -P 0x42 1M 512k" "write -z 0 64k" "write -P 0x43 5M 512k"
    rpc image-import "{\"image\":$(vref $C/d1.qcow2)}" >/dev/null || fail "cb: import"
    rpc snapshot-create "{\"name\":\"s1-$B\",\"disks\":[{\"image\":$(vref $C/d1.qcow2),\"overlay\":\"$C/o1.qcow2\"}]}" \
        >/dev/null || fail "cb: s1"
    qio "$(lpath $C/o1.qcow2)" "write -P 0x44 2M 64k" "write -z 5M 64k"
    rpc snapshot-create "{\"name\":\"s2-$B\",\"disks\":[{\"image\":$(vref $C/o1.qcow2),\"overlay\":\"$C/o2.qcow2\"}]}" \
        >/dev/null || fail "cb: s2"
    qio "$(lpath $C/o2.qcow2)" "write -P 0x45 3M 64k"
    for i in base d1 o1 o2; do qemu-img convert -O raw "$(lpath $C/$i.qcow2)" "$TEST_TMP/cb-$i.raw"; done

    # s1: d1 is committed into base (which grows to d1's 6M)
    del "s1-$B" "commit branch"
    [ -e "$(lpath $C/d1.qcow2)" ] && check_fail "commit branch: d1 still there"
    assert_eq 0 "$(rpc image-list '{}' | jq --arg p "$C/d1.qcow2" '[.[] | select(.path == $p)] | length')" \
        "commit branch: d1 gone from the catalog"
    for i in o1 o2; do
        qemu-img compare -q "$(lpath $C/$i.qcow2)" "$TEST_TMP/cb-$i.raw" || check_fail "commit branch: $i changed"
    done
    qemu-img compare -q "$(lpath $C/base.qcow2)" "$TEST_TMP/cb-d1.raw" ||
        check_fail "commit branch: base does not read what d1 read"
    assert_eq "6291456 6291456" "$(vsize $C/base.qcow2)" "commit branch: base grown"
    check_chain "commit branch" $C/o2.qcow2 "o2.qcow2 o1.qcow2 base.qcow2"
    assert_eq "s2-$B null $C/o1.qcow2" "$(rpc snapshot-info "{\"snapshot\":\"s2-$B\"}" |
        jq -r '"\(.name) \(.parent) " + (.disks[0]."image-name" | sub("^[^:]*:";""))')" "commit branch: s2"
    for i in base o1 o2; do
        out=$(qemu-img check "$(lpath $C/$i.qcow2)" 2>&1) || check_fail "commit branch: check $i: $out"
    done
    # s2: o1 into base in turn
    del "s2-$B" "commit branch 2"
    [ -e "$(lpath $C/o1.qcow2)" ] && check_fail "commit branch 2: o1 still there"
    qemu-img compare -q "$(lpath $C/o2.qcow2)" "$TEST_TMP/cb-o2.raw" || check_fail "commit branch 2: o2 changed"
    qemu-img compare -q "$(lpath $C/base.qcow2)" "$TEST_TMP/cb-o1.raw" ||
        check_fail "commit branch 2: base does not read what o1 read"
    check_chain "commit branch 2" $C/o2.qcow2 "o2.qcow2 base.qcow2"
    for i in base o2; do
        out=$(qemu-img check "$(lpath $C/$i.qcow2)" 2>&1) || check_fail "commit branch 2: check $i: $out"
    done
    rpc_err snapshot-info "{\"snapshot\":\"s2-$B\"}" >/dev/null || check_fail "commit branch 2: s2 still listed"

    # the parent has another child: pull into the child, base untouched
    P=$SUB/pb; mkdir -p "$(lpath $P)"
    qimg create -q -f qcow2 "$(lpath $P/base.qcow2)" 4M
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$(lpath $P/e1.qcow2)" 4M
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$(lpath $P/e2.qcow2)" 4M
    qio "$(lpath $P/base.qcow2)" "write -P 0x51 0 2M"
    qio "$(lpath $P/e1.qcow2)" "write -P 0x52 1M 512k" "write -z 0 64k"
    qio "$(lpath $P/e2.qcow2)" "write -P 0x53 3M 64k"
    rpc image-import "{\"image\":$(vref $P/e1.qcow2)}" >/dev/null || fail "pb: import e1"
    rpc image-import "{\"image\":$(vref $P/e2.qcow2)}" >/dev/null || fail "pb: import e2"
    rpc snapshot-create "{\"name\":\"t1-$B\",\"disks\":[{\"image\":$(vref $P/e1.qcow2),\"overlay\":\"$P/p1.qcow2\"}]}" \
        >/dev/null || fail "pb: t1"
    qio "$(lpath $P/p1.qcow2)" "write -P 0x54 2M 64k"
    cp "$(lpath $P/base.qcow2)" "$TEST_TMP/pb-base.qcow2"
    for i in e2 p1; do qemu-img convert -O raw "$(lpath $P/$i.qcow2)" "$TEST_TMP/pb-$i.raw"; done
    del "t1-$B" "pull branch"
    [ -e "$(lpath $P/e1.qcow2)" ] && check_fail "pull branch: e1 still there"
    cmp -s "$(lpath $P/base.qcow2)" "$TEST_TMP/pb-base.qcow2" || check_fail "pull branch: base was modified"
    for i in e2 p1; do
        qemu-img compare -q "$(lpath $P/$i.qcow2)" "$TEST_TMP/pb-$i.raw" || check_fail "pull branch: $i changed"
        out=$(qemu-img check "$(lpath $P/$i.qcow2)" 2>&1) || check_fail "pull branch: check $i: $out"
    done
    check_chain "pull branch" $P/p1.qcow2 "p1.qcow2 base.qcow2"
    check_chain "pull branch" $P/e2.qcow2 "e2.qcow2 base.qcow2"
}

for_each_backend scenario
for_each_backend branches

# ---- snapshots of bare images (no domain) -------------------------------------------
ROOT=$GVMD_DIR/state/images; VOL=local; SUB=bare
mkdir -p "$ROOT/bare"
qimg create -q -f qcow2 "$ROOT/bare/a.qcow2" 1M
rpc image-import '{"image":"local:bare/a.qcow2"}' >/dev/null || fail "import a"
r=$(rpc snapshot-create '{"name":"b1","disks":[{"image":"local:bare/a.qcow2"}]}') || fail "bare b1"
assert_eq "null true" "$(jq -r '"\(.domain) \(.current)"' <<<"$r")" "bare b1"
r=$(rpc snapshot-create '{"name":"b2","disks":[{"image":"local:bare/a.b1.qcow2","overlay":"bare/top.qcow2"}]}') || fail "bare b2"
assert_eq "b1" "$(jq -r .parent <<<"$r")" "bare b2 parent"
assert_eq "top.qcow2 a.b1.qcow2 a.qcow2" "$(qchain "$ROOT/bare/top.qcow2")" "bare chain"
e=$(rpc_err snapshot-create '{"name":"b3","disks":[{"image":"local:bare/a.qcow2"}]}') || check_fail "frozen image snapshotted"
assert_eq InUse "$(err_class "$e")" "snapshot of a frozen image"
e=$(rpc_err snapshot-create '{"name":"b3"}') || check_fail "no domain, no disks accepted"
assert_eq InvalidParams "$(err_class "$e")" "no domain, no disks"
e=$(rpc_err snapshot-create '{"name":"b1","disks":[{"image":"local:bare/top.qcow2"}]}') || check_fail "duplicate name"
assert_eq AlreadyExists "$(err_class "$e")" "duplicate snapshot name"
e=$(rpc_err snapshot-revert '{"snapshot":"b1"}') || check_fail "revert of a bare snapshot"
assert_eq Unsupported "$(err_class "$e")" "revert of a bare snapshot"
assert_error_names

# ---- overlay names: BASE.SNAPNAME.qcow2, never growing; "-2" when taken ------------------
echo keep >"$ROOT/bare/m.n1.qcow2"
qimg create -q -f qcow2 "$ROOT/bare/m.qcow2" 1M
rpc image-import '{"image":"local:bare/m.qcow2"}' >/dev/null || fail "import m"
rpc domain-attach '{"domain":"vm-names","disks":[{"target":"vda","image":"local:bare/m.qcow2"}]}' >/dev/null ||
    fail "attach vm-names"
r=$(rpc snapshot-create '{"name":"n1","domain":"vm-names"}') || fail "names n1"
assert_eq "vda=local:bare/m.n1-2.qcow2" "$(jq -r '[.active[] | .target + "=" + ."image-name"] | join(" ")' <<<"$r")" \
    "a taken default overlay name gets -2"
assert_eq keep "$(cat "$ROOT/bare/m.n1.qcow2")" "the file that took the name is untouched"
j=$(rpc block-pull '{"image":"local:bare/m.n1-2.qcow2","base":null}') || fail "names: flatten"
j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":60}")
assert_eq "concluded null" "$(jq -c -r '"\(.status) \(.error)"' <<<"$j")" "names: flatten"
r=$(rpc snapshot-create '{"name":"n2","domain":"vm-names"}') || fail "names n2"
assert_eq "vda=local:bare/m.n2.qcow2" "$(jq -r '[.active[] | .target + "=" + ."image-name"] | join(" ")' <<<"$r")" \
    "the base name leaves out the snapshot names gvmd added"
r=$(rpc snapshot-revert '{"snapshot":"n2"}') || fail "names: revert n2"
assert_eq "vda=local:bare/m.n2-revert.qcow2" "$(jq -r '[.active[] | .target + "=" + ."image-name"] | join(" ")' <<<"$r")" \
    "revert overlay name"
r=$(rpc snapshot-revert '{"snapshot":"n2"}') || fail "names: revert n2 again"
assert_eq "vda=local:bare/m.n2-revert-2.qcow2" "$(jq -r '[.active[] | .target + "=" + ."image-name"] | join(" ")' <<<"$r")" \
    "a second revert overlay name"
qimg create -q -f qcow2 "$ROOT/bare/u.n1.qcow2" 1M
rpc image-import '{"image":"local:bare/u.n1.qcow2"}' >/dev/null || fail "import u.n1"
r=$(rpc snapshot-create '{"name":"u1","disks":[{"image":"local:bare/u.n1.qcow2"}]}') || fail "names u1"
assert_eq "disk0=local:bare/u.n1.u1.qcow2" "$(jq -r '[.active[] | .target + "=" + ."image-name"] | join(" ")' <<<"$r")" \
    "a user's dotted name stays whole (n1 is not a snapshot of that chain)"

stop_gvmd
exit $_test_failed
