#!/bin/bash
# Acceptance 3 through the RPC: image-check agrees with qemu-img check on
# images with leaks and corruptions injected with dd at offsets computed
# from the header, and repair "leaks" (and "all") leaves qemu-img finding
# nothing.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

start_gvmd

# compare NAME [FIELDS]: gvmd's image-check vs qemu-img check --output=json.
compare() {
    f=$(lpath "$SUB/$1")
    fields=${2:-'corruptions leaks check-errors allocated-clusters total-clusters image-end-offset'}
    exp=$(qemu-img check --output=json "$f" 2>/dev/null)
    got=$(rpc image-check "{\"image\":$(vref "$SUB/$1")}") ||
        { check_fail "image-check of $1 failed"; return; }
    note "$1: qemu-img $(printf '%s' "$exp" | jq -c '{corruptions: (.corruptions // 0), leaks: (.leaks // 0)}'), gvmd $(printf '%s' "$got" | jq -c '{corruptions, leaks}')"
    for k in $fields; do
        assert_eq "$(printf '%s' "$exp" | jq ".\"$k\" // 0")" "$(printf '%s' "$got" | jq ".\"$k\"")" \
            "$k of $1 (qemu: $exp)"
    done
}

mk() { # NAME OPTS SIZE: a qcow2 with data in several clusters
    qimg create -q -f qcow2 $2 "$(lpath "$SUB/$1")" "$3"
    qio "$(lpath "$SUB/$1")" "write -P 0x11 0 256k" "write -P 0x22 1M 64k" "write -P 0x33 2M 128k"
}

run_backend() {
    # Clean images, v3, v2, with an internal snapshot, 4 KiB clusters.
    mk clean.qcow2 "" 4M;                        compare clean.qcow2
    mk v2.qcow2 "-o compat=0.10" 4M;             compare v2.qcow2
    mk small.qcow2 "-o cluster_size=4096" 4M;    compare small.qcow2
    mk snap.qcow2 "" 4M
    qimg snapshot -c s1 "$(lpath "$SUB/snap.qcow2")"
    qio "$(lpath "$SUB/snap.qcow2")" "write -P 0x44 64k 64k"
    compare snap.qcow2

    # One leak: drop the L2 entry of an allocated data cluster.
    mk leak1.qcow2 "" 4M; f=$(lpath "$SUB/leak1.qcow2")
    poke_be64 "$f" "$(q_l2_entry_off "$f" 1048576)" 0
    qemu-img check -q "$f" >/dev/null 2>&1; assert_eq 3 $? "qemu-img sees the injected leak"
    compare leak1.qcow2
    # Three leaks, 4 KiB clusters, and one refcount too high (also a leak).
    mk leak3.qcow2 "-o cluster_size=4096" 4M; f=$(lpath "$SUB/leak3.qcow2")
    for o in 0 4096 2097152; do poke_be64 "$f" "$(q_l2_entry_off "$f" $o)" 0; done
    h=$(q_host_cluster "$f" 1048576)
    poke_be16 "$f" "$(q_refcount_off "$f" "$h")" 2
    compare leak3.qcow2
    assert_eq 4 "$(rpc image-check "{\"image\":$(vref "$SUB/leak3.qcow2")}" | jq .leaks)" "leaks in leak3"
    # v2 leak
    mk leakv2.qcow2 "-o compat=0.10" 4M; f=$(lpath "$SUB/leakv2.qcow2")
    poke_be64 "$f" "$(q_l2_entry_off "$f" 2097152)" 0
    compare leakv2.qcow2

    # Corruption: the refcount of a used data cluster set to 0.
    mk corrupt.qcow2 "" 4M; f=$(lpath "$SUB/corrupt.qcow2")
    h=$(q_host_cluster "$f" 0)
    poke_be16 "$f" "$(q_refcount_off "$f" "$h")" 0
    qemu-img check -q "$f" >/dev/null 2>&1; assert_eq 2 $? "qemu-img sees the injected corruption"
    compare corrupt.qcow2 "corruptions leaks"
    # Two L2 entries sharing one cluster (refcount 1, referenced twice).
    mk shared.qcow2 "" 4M; f=$(lpath "$SUB/shared.qcow2")
    e1=$(q_l2_entry_off "$f" 0); e2=$(q_l2_entry_off "$f" 1048576)
    poke "$f" "$e2" "$(od -An -tx1 -j "$e1" -N 8 "$f" | tr -d ' \n')"
    compare shared.qcow2 "corruptions leaks"

    # Repairs.  "leaks": qemu-img then finds none, and gvmd says how many
    # it fixed.
    for n in leak1 leak3 leakv2; do
        before=$(qemu-img check --output=json "$(lpath "$SUB/$n.qcow2")" 2>/dev/null | jq '.leaks // 0')
        r=$(rpc image-check "{\"image\":$(vref "$SUB/$n.qcow2"),\"repair\":\"leaks\"}") ||
            { check_fail "repair leaks of $n"; continue; }
        assert_eq "$before" "$(printf '%s' "$r" | jq '."leaks-fixed"')" "leaks-fixed of $n"
        out=$(qemu-img check --output=json "$(lpath "$SUB/$n.qcow2")" 2>/dev/null)
        assert_eq 0 "$?" "qemu-img check after gvmd repaired $n ($out)"
        assert_eq 0 "$(printf '%s' "$out" | jq '.leaks // 0')" "leaks left in $n"
        compare $n.qcow2
    done
    # "all" on the corrupt images: qemu-img check then passes.
    for n in corrupt shared; do
        rpc image-check "{\"image\":$(vref "$SUB/$n.qcow2"),\"repair\":\"all\"}" >/dev/null ||
            { check_fail "repair all of $n"; continue; }
        qemu-img check -q "$(lpath "$SUB/$n.qcow2")" || check_fail "qemu-img check after repair all of $n"
    done
    # The data stayed where it was.
    qio "$(lpath "$SUB/leak3.qcow2")" "read -P 0x22 1M 64k"
    # image-check of an image without a refcount problem through a gluster URI.
    if [ "$BACKEND" = gluster ]; then
        r=$(rpc image-check "{\"image\":\"$(guri "$SUB/clean.qcow2")\"}") || check_fail "image-check by gluster URI"
        assert_eq 0 "$(printf '%s' "$r" | jq '.leaks + .corruptions')" "clean by gluster URI"
    fi
}

for_each_backend run_backend
exit 0
