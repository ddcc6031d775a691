#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-rebase.sh — image-rebase as a job, on a dir volume and on gluster
# (qemu-img on a FUSE mount as the oracle).  A chain base(4M) <- mid(6M) <-
# top(8M) with patterns in overlapping ranges, zero writes and data past the
# smaller images' ends:
#   - safe rebase of top onto base (dropping mid), onto a larger unrelated
#     image, and onto nothing: the guest content of top is what it was
#     (qemu-img compare against a flat copy made before), qemu-img check is
#     clean, qemu-img info --backing-chain shows the new chain, image-info
#     --backing-chain and the catalog edge agree, the old backing is
#     untouched;
#   - unsafe rebase: only the header changed (every byte after the header
#     cluster identical), and the content now shows the new backing where
#     top does not allocate;
#   - refusals: a loop, a raw image, an uncatalogued backing.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

start_gvmd

# chain P: P-base (4M, 0x11 everywhere) <- P-mid (6M) <- P-top (8M), the
# backing names relative, then catalogued with image-import.
chain() {
    b=$(lpath "$SUB/$1-base.qcow2"); m=$(lpath "$SUB/$1-mid.qcow2"); t=$(lpath "$SUB/$1-top.qcow2")
    qimg create -q -f qcow2 "$b" 4M
    qimg create -q -f qcow2 -b "$1-base.qcow2" -F qcow2 "$m" 6M
    qimg create -q -f qcow2 -b "$1-mid.qcow2" -F qcow2 "$t" 8M
    qio "$b" "write -P 0x11 0 4M"
    # mid: data over base, zeros over base data, data past base's end
    qio "$m" "write -P 0x22 1M 1M" "write -z 2560k 512k" "write -P 0x23 4M 128k" \
        "write -P 0x24 5M 64k"
    # top: a little of its own, a zero cluster, data past mid's end
    qio "$t" "write -P 0x33 1536k 64k" "write -z 3M 64k" "write -P 0x34 7M 64k" \
        "write -P 0x35 1000k 8k"
    rpc image-import "{\"image\":$(vref "$SUB/$1-top.qcow2")}" >/dev/null ||
        fail "image-import of $SUB/$1-top.qcow2 failed"
}
id_of() { rpc image-info "{\"image\":$(vref "$SUB/$1")}" | jq .id; }
flat() { qemu-img convert -O raw "$(lpath "$SUB/$1")" "$TEST_TMP/$2" || fail "qemu-img convert $1 failed"; }

# rebase TOP BACKING-JSON MODE: run the job to its end; prints the JOB.
rebase() {
    j=$(rpc image-rebase "{\"image\":$(vref "$SUB/$1"),\"backing\":$2,\"mode\":\"$3\"}") ||
        { check_fail "image-rebase $1 onto $2 ($3) refused"; return 1; }
    id=$(jq .id <<<"$j")
    assert_eq image-rebase "$(jq -r .type <<<"$j")" "job type"
    assert_eq false "$(jq -r .live <<<"$j")" "job live"
    j=$(rpc job-wait "{\"id\":$id,\"timeout\":60}") || { check_fail "job-wait $id"; return 1; }
    assert_eq concluded "$(jq -r .status <<<"$j")" "status of rebase job $id"
    [ "$(jq -r '.error.message // empty' <<<"$j")" = "" ] ||
        check_fail "rebase job $id failed: $(jq -c .error <<<"$j")"
    assert_eq "$(jq .progress.total <<<"$j")" "$(jq .progress.current <<<"$j")" "progress at the end"
    rpc job-dismiss "{\"id\":$id}" >/dev/null || check_fail "job-dismiss $id"
    printf '%s\n' "$j"
}

# verify_chain TOP EXPECTED-BASENAMES...: qemu-img's chain and gvmd's agree.
verify_chain() {
    top=$1; shift
    want=$(echo "$top" "$@")
    got=$(qemu-img info --backing-chain --output=json "$(lpath "$SUB/$top")" |
          jq -r '.[].filename' | xargs -n1 basename | xargs)
    assert_eq "$want" "$got" "qemu-img backing chain of $top"
    got=$(rpc image-info "{\"image\":$(vref "$SUB/$top"),\"backing-chain\":true}" |
          jq -r '.chain[].path' | xargs -n1 basename | xargs)
    assert_eq "$want" "$got" "image-info backing chain of $top"
    # The catalog edge is the header's backing file.
    info=$(rpc image-info "{\"image\":$(vref "$SUB/$top")}")
    if [ $# -gt 0 ]; then
        assert_eq "$(id_of "$1")" "$(jq .backing <<<"$info")" "catalog edge of $top"
        assert_eq "$1" "$(jq -r '."backing-filename"' <<<"$info")" "backing-filename of $top"
        assert_eq qcow2 "$(jq -r '."backing-format"' <<<"$info")" "backing-format of $top"
    else
        assert_eq null "$(jq .backing <<<"$info")" "catalog edge of $top"
        assert_eq null "$(jq '."backing-filename"' <<<"$info")" "backing-filename of $top"
    fi
}

# same_content IMAGE FLAT: qemu-img compare says identical, check is clean.
same_content() {
    qemu-img compare -q "$(lpath "$SUB/$1")" "$TEST_TMP/$2" ||
        check_fail "guest content of $1 changed (qemu-img compare vs $2)"
    qemu-img check -q "$(lpath "$SUB/$1")" || check_fail "qemu-img check of $1"
}

run() {
    # ---- safe onto base (dropping mid) ---------------------------------------
    chain a
    flat a-top.qcow2 a-before.raw
    flat a-mid.qcow2 a-mid.raw
    rebase a-top.qcow2 "$(vref "$SUB/a-base.qcow2")" safe >/dev/null
    same_content a-top.qcow2 a-before.raw
    verify_chain a-top.qcow2 a-base.qcow2
    same_content a-mid.qcow2 a-mid.raw
    # What mid zeroed over base reads as zeros in top now (written there).
    qio "$(lpath "$SUB/a-top.qcow2")" "read -P 0 2560k 512k" "read -P 0x23 4M 128k"

    # ---- safe onto a larger unrelated image: zeros past mid's end ----------------
    chain b
    o=$(lpath "$SUB/b-other.qcow2")
    qimg create -q -f qcow2 "$o" 8M
    qio "$o" "write -P 0x55 0 8M"
    rpc image-import "{\"image\":$(vref "$SUB/b-other.qcow2")}" >/dev/null || fail "import b-other"
    flat b-top.qcow2 b-before.raw
    rebase b-top.qcow2 "$(vref "$SUB/b-other.qcow2")" safe >/dev/null
    same_content b-top.qcow2 b-before.raw
    verify_chain b-top.qcow2 b-other.qcow2
    qio "$(lpath "$SUB/b-top.qcow2")" "read -P 0 6M 1M"

    # ---- safe onto nothing (flatten) ------------------------------------------------
    chain c
    flat c-top.qcow2 c-before.raw
    rebase c-top.qcow2 null safe >/dev/null
    same_content c-top.qcow2 c-before.raw
    verify_chain c-top.qcow2
    # The old chain's images are still catalogued, no longer top's backing.
    assert_eq "[]" "$(rpc image-info "{\"image\":$(vref "$SUB/c-mid.qcow2")}" | jq -c .children)" \
        "children of c-mid after the flatten"

    # ---- unsafe: only the header changes ---------------------------------------
    chain d
    t=$(lpath "$SUB/d-top.qcow2")
    cp "$t" "$TEST_TMP/d-top.before"
    rebase d-top.qcow2 "$(vref "$SUB/d-base.qcow2")" unsafe >/dev/null
    cmp -s <(tail -c +65537 "$t") <(tail -c +65537 "$TEST_TMP/d-top.before") ||
        check_fail "unsafe rebase changed more than the header cluster of d-top"
    verify_chain d-top.qcow2 d-base.qcow2
    qemu-img check -q "$t" || check_fail "qemu-img check of d-top after unsafe rebase"
    # mid is gone from the chain: base shows through where mid had data.
    qio "$t" "read -P 0x11 2M 512k" "read -P 0x33 1536k 64k" "read -P 0 4M 128k"

    # ---- refusals ------------------------------------------------------------------
    e=$(rpc_err image-rebase "{\"image\":$(vref "$SUB/a-base.qcow2"),\"backing\":$(vref "$SUB/a-top.qcow2"),\"mode\":\"safe\"}")
    assert_eq InvalidParams "$(jq -r 'if .code == -32602 then "InvalidParams" else .data.class end' <<<"$e")" "loop refused"
    assert_match "loop" "$(err_msg "$e")" "loop message"
    r=$(lpath "$SUB/raw.img")
    qimg create -q -f raw "$r" 1M
    rpc image-import "{\"image\":$(vref "$SUB/raw.img")}" >/dev/null || fail "import raw.img"
    e=$(rpc_err image-rebase "{\"image\":$(vref "$SUB/raw.img"),\"backing\":null,\"mode\":\"safe\"}")
    assert_eq Unsupported "$(err_class "$e")" "rebase of a raw image"
    qimg create -q -f qcow2 "$(lpath "$SUB/loose.qcow2")" 1M
    e=$(rpc_err image-rebase "{\"image\":$(vref "$SUB/a-top.qcow2"),\"backing\":$(vref "$SUB/loose.qcow2"),\"mode\":\"safe\"}")
    assert_eq NotFound "$(err_class "$e")" "uncatalogued backing"
    e=$(rpc_err image-rebase "{\"image\":$(vref "$SUB/a-top.qcow2"),\"backing\":null,\"mode\":\"fast\"}")
    assert_eq -32602 "$(jq .code <<<"$e")" "bad mode"
    # No job was left behind by the refusals.
    assert_eq 0 "$(rpc query-jobs '{}' | jq length)" "jobs left after the refusals"
}

for_each_backend run
