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
#   atomicity: a taken overlay path -> nothing created, nothing recorded
#   revert to sn1 -> new overlay on sn1's frozen image, old branch untouched
#   sn4 on the new branch; revert to sn2 with a branch name
#   delete the middle snapshot sn2 (two children: data pulled into both),
#   metadata-only delete of sn3, delete of the leaf sn4 and of the root sn1
#   (bottom image flattened into its children): every remaining image reads
#   as before, the freed files are gone, metadata-only keeps its files.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

start_gvmd

# gvmd reads gluster through its own gfapi client, whose attribute cache
# may keep a file's old size for a moment after qemu-io changed it through
# the FUSE mount: let it expire before gvmd looks at files written there.
qsettle() { if [ "$BACKEND" = gluster ]; then sleep 2; fi; }
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
    DOM=vm-$BACKEND
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
    r=$(rpc snapshot-create "{\"name\":\"sn1-$BACKEND\",\"domain\":\"$DOM\",\"description\":\"first\"}") || fail "sn1"
    assert_eq "null true 2 first" "$(jq -r '"\(.parent) \(.current) \(.disks|length) \(.description)"' <<<"$r")" "sn1 result"
    assert_eq "$S/base.sn1-$BACKEND.qcow2" "$(active vda)" "sn1: vda active overlay"
    assert_eq "$S/data.sn1-$BACKEND.qcow2" "$(active vdb)" "sn1: vdb active overlay"
    hdr=$(qemu-img info --output=json "$(lpath $S/base.sn1-$BACKEND.qcow2)")
    assert_eq "base.qcow2 qcow2" "$(jq -r '[."backing-filename", ."backing-filename-format"] | join(" ")' <<<"$hdr")" \
        "sn1: relative backing name and format in the header"
    check_chain sn1 $S/base.sn1-$BACKEND.qcow2 "base.sn1-$BACKEND.qcow2 base.qcow2"
    check_chain sn1 $S/data.sn1-$BACKEND.qcow2 "data.sn1-$BACKEND.qcow2 data.qcow2"
    qio "$(lpath $S/base.sn1-$BACKEND.qcow2)" "write -P 0x12 512k 64k"
    qio "$(lpath $S/data.sn1-$BACKEND.qcow2)" "write -P 0x22 64k 64k"
    qsettle
    rpc snapshot-create "{\"name\":\"sn2-$BACKEND\",\"domain\":\"$DOM\"}" >/dev/null || fail "sn2"
    qio "$(lpath $S/base.sn2-$BACKEND.qcow2)" "write -P 0x13 1M 64k" "write -P 0x14 3M 64k"
    qio "$(lpath $S/data.sn2-$BACKEND.qcow2)" "write -P 0x23 128k 64k"
    qsettle
    rpc snapshot-create "{\"name\":\"sn3-$BACKEND\",\"domain\":\"$DOM\"}" >/dev/null || fail "sn3"
    qio "$(lpath $S/base.sn3-$BACKEND.qcow2)" "write -P 0x15 2M 64k"
    qsettle
    check_chain sn3 $S/base.sn3-$BACKEND.qcow2 \
        "base.sn3-$BACKEND.qcow2 base.sn2-$BACKEND.qcow2 base.sn1-$BACKEND.qcow2 base.qcow2"
    check_chain sn3 $S/data.sn3-$BACKEND.qcow2 \
        "data.sn3-$BACKEND.qcow2 data.sn2-$BACKEND.qcow2 data.sn1-$BACKEND.qcow2 data.qcow2"
    B=$BACKEND
    json_eq "tree after sn3" "[{\"n\":\"sn1-$B\",\"p\":null,\"c\":[\"sn2-$B\"],\"cur\":false},{\"n\":\"sn2-$B\",\"p\":\"sn1-$B\",\"c\":[\"sn3-$B\"],\"cur\":false},{\"n\":\"sn3-$B\",\"p\":\"sn2-$B\",\"c\":[],\"cur\":true}]" "$(tree)"
    i=$(rpc snapshot-info "{\"snapshot\":\"sn2-$B\"}") || fail "snapshot-info"
    assert_eq "vda:$S/base.sn1-$B.qcow2:$S/base.sn2-$B.qcow2" \
        "$(jq -r '.disks[] | select(.target=="vda") | "vda:" + (."image-name"|sub("^[^:]*:";"")) + ":" + (."overlay-name"|sub("^[^:]*:";""))' <<<"$i")" \
        "snapshot-info sn2: frozen image and overlay of vda"
    check_clean sn3

    # ---- atomicity: vdb's overlay path is taken ---------------------------------------
    echo keep >"$(lpath $S/data.bad-$B.qcow2)"
    e=$(rpc_err snapshot-create "{\"name\":\"bad-$B\",\"domain\":\"$DOM\"}") || check_fail "bad: not refused"
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
    assert_eq "$S/base.sn1-$B-r1.qcow2" "$(active vda)" "revert: vda active"
    check_chain revert $S/base.sn1-$B-r1.qcow2 "base.sn1-$B-r1.qcow2 base.qcow2"
    check_chain revert $S/data.sn1-$B-r1.qcow2 "data.sn1-$B-r1.qcow2 data.qcow2"
    qemu-img compare -q "$(lpath $S/base.sn1-$B-r1.qcow2)" "$(lpath $S/base.qcow2)" || check_fail "revert: vda does not read as at sn1"
    for f in "$TEST_TMP/copy-$B"/*.qcow2; do
        qemu-img compare -q "$(lpath $S/$(basename "$f"))" "$f" || check_fail "revert: $(basename "$f") of the old branch changed"
        cmp -s "$(lpath $S/$(basename "$f"))" "$f" || check_fail "revert: $(basename "$f") file bytes changed"
    done
    qio "$(lpath $S/base.sn1-$B-r1.qcow2)" "write -P 0x16 0 64k"
    qsettle
    r=$(rpc snapshot-create "{\"name\":\"sn4-$B\",\"domain\":\"$DOM\"}") || fail "sn4"
    assert_eq "sn1-$B" "$(jq -r .parent <<<"$r")" "sn4: parent is the reverted snapshot"
    r=$(rpc snapshot-revert "{\"snapshot\":\"sn2-$B\",\"branch\":\"br-$B\"}") || fail "revert sn2 branch"
    assert_eq "br-$B sn2-$B true" "$(jq -r '"\(.name) \(.parent) \(.current)"' <<<"$r")" "branch: node"
    check_chain branch $S/base.br-$B.qcow2 \
        "base.br-$B.qcow2 base.sn2-$B-r1.qcow2 base.sn1-$B.qcow2 base.qcow2"
    qio "$(lpath $S/base.br-$B.qcow2)" "write -P 0x17 3M 64k"
    qsettle
    json_eq "tree after revert" "[{\"n\":\"br-$B\",\"p\":\"sn2-$B\",\"c\":[],\"cur\":true},{\"n\":\"sn1-$B\",\"p\":null,\"c\":[\"sn2-$B\",\"sn4-$B\"],\"cur\":false},{\"n\":\"sn2-$B\",\"p\":\"sn1-$B\",\"c\":[\"br-$B\",\"sn3-$B\"],\"cur\":false},{\"n\":\"sn3-$B\",\"p\":\"sn2-$B\",\"c\":[],\"cur\":false},{\"n\":\"sn4-$B\",\"p\":\"sn1-$B\",\"c\":[],\"cur\":false}]" "$(tree)"
    check_clean revert

    # ---- delete the middle snapshot sn2 (its frozen image has two children) -----
    sums >"$TEST_TMP/before-$B"
    j=$(rpc snapshot-delete "{\"snapshot\":\"sn2-$B\"}") || fail "delete sn2"
    j=$(rpc job-wait "{\"id\":$(jq .id <<<"$j"),\"timeout\":120}")
    assert_eq "concluded null" "$(jq -c -r '"\(.status) \(.error)"' <<<"$j")" "delete sn2: job"
    qsettle   # and the FUSE client's, for files gvmd removed
    for f in base data; do
        [ -e "$(lpath $S/$f.sn1-$B.qcow2)" ] && check_fail "delete sn2: the freed $f.sn1 is still there"
    done
    sums >"$TEST_TMP/after-$B"
    grep -v "\.sn1-$B\.qcow2 " "$TEST_TMP/before-$B" | diff - "$TEST_TMP/after-$B" >&2 ||
        check_fail "delete sn2: guest content of a remaining image changed"
    check_chain "delete sn2" $S/base.sn3-$B.qcow2 "base.sn3-$B.qcow2 base.sn2-$B.qcow2 base.qcow2"
    check_chain "delete sn2" $S/base.br-$B.qcow2 "base.br-$B.qcow2 base.sn2-$B-r1.qcow2 base.qcow2"
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
    qsettle
    for f in base.qcow2 data.qcow2 base.sn1-$B-r1.qcow2 data.sn1-$B-r1.qcow2; do
        [ -e "$(lpath $S/$f)" ] && check_fail "delete sn4/sn1: the freed $f is still there"
    done
    sums >"$TEST_TMP/after-$B"
    grep -v -E "^(base|data)(\.sn1-$B-r1)?\.qcow2 " "$TEST_TMP/before-$B" | diff - "$TEST_TMP/after-$B" >&2 ||
        check_fail "delete sn4/sn1: guest content of a remaining image changed"
    check_chain "delete sn1" $S/base.br-$B.qcow2 "base.br-$B.qcow2 base.sn2-$B-r1.qcow2"
    check_chain "delete sn1" $S/base.sn4-$B.qcow2 "base.sn4-$B.qcow2"
    json_eq "tree at the end" "[{\"n\":\"br-$B\",\"p\":null,\"c\":[],\"cur\":true}]" "$(tree)"
    check_clean "delete sn1"
    e=$(rpc_err domain-detach "{\"domain\":\"$DOM\"}") || check_fail "detach with snapshots accepted"
    assert_eq InUse "$(err_class "$e")" "detach with a snapshot"
}

for_each_backend scenario

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

stop_gvmd
exit $_test_failed
