#!/bin/bash
# Acceptance 2 (create half): images gvmd creates, with every option, pass
# qemu-img check and show the backing file and format gvmd wrote;
# AlreadyExists; a backing name too long for the header cluster fails
# cleanly; image-delete refuses a parent with children and deletes a leaf.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

start_gvmd

# create NAME JSON-EXTRA: image-create $SUB/NAME on $VOL; prints IMAGEINFO.
create() {
    rpc image-create "{\"volume\":\"$VOL\",\"path\":\"$SUB/$1\"$2}" ||
        { check_fail "image-create $VOL:$SUB/$1 ($2) failed"; return 1; }
}

# verify NAME INFO: qemu-img check is clean and qemu-img info shows what
# gvmd reported (format, size, cluster size, backing file and format).
verify() {
    f=$(lpath "$SUB/$1")
    [ -f "$f" ] || { check_fail "$1: no file at $f"; return; }
    out=$(qemu-img check --output=json "$f" 2>&1); rc=$?
    if [ "$(printf '%s' "$2" | jq -r .format)" = qcow2 ]; then
        assert_eq 0 "$rc" "qemu-img check exit status of $1 ($out)"
        assert_eq 0 "$(printf '%s' "$out" | jq '(.leaks // 0) + (.corruptions // 0)')" \
            "leaks+corruptions of $1"
    fi
    exp=$(printf '%s' "$2" | jq -c '{format, "virtual-size": ."virtual-size",
        "cluster-size", "backing-filename", "backing-format"}')
    got=$(qemu-img info --output=json "$f" | jq -c '{format, "virtual-size": ."virtual-size",
        "cluster-size": (."cluster-size" // null),
        "backing-filename": (."backing-filename" // null),
        "backing-format": (."backing-filename-format" // null)}')
    json_eq "qemu-img info of $1 vs gvmd's IMAGEINFO" "$exp" "$got"
}

# Write through qemu-io and check again: the metadata gvmd wrote is usable.
exercise() {
    f=$(lpath "$SUB/$1")
    qio "$f" "write -P 0x5a 0 100k" "write -P 0xa5 1M 64k" "read -P 0x5a 0 100k"
    qemu-img check -q "$f" || check_fail "qemu-img check of $1 after writes"
}

run_backend() {
    # Every option, one image each.
    i=$(create plain.qcow2 ',"format":"qcow2","size":16777216') && {
        verify plain.qcow2 "$i"; exercise plain.qcow2
        assert_eq "$(printf '%s' "$i" | jq .id)" \
            "$(rpc image-info "{\"image\":$(vref "$SUB/plain.qcow2")}" | jq .id)" "catalogued id"; }
    i=$(create v2.qcow2 ',"format":"qcow2","size":8388608,"compat":"0.10"') && {
        verify v2.qcow2 "$i"; exercise v2.qcow2
        assert_eq 0.10 "$(qemu-img info --output=json "$(lpath "$SUB/v2.qcow2")" | jq -r '."format-specific".data.compat')" "compat of v2.qcow2"; }
    for cs in 512 4096 2097152; do
        i=$(create cs$cs.qcow2 ",\"format\":\"qcow2\",\"size\":8388608,\"cluster-size\":$cs") && {
            verify cs$cs.qcow2 "$i"; exercise cs$cs.qcow2; }
    done
    for rb in 1 64; do
        i=$(create rb$rb.qcow2 ",\"format\":\"qcow2\",\"size\":8388608,\"refcount-bits\":$rb") && {
            verify rb$rb.qcow2 "$i"; exercise rb$rb.qcow2
            assert_eq $rb "$(qemu-img info --output=json "$(lpath "$SUB/rb$rb.qcow2")" | jq '."format-specific".data."refcount-bits"')" "refcount bits"; }
    done
    i=$(create lazy.qcow2 ',"format":"qcow2","size":8388608,"lazy-refcounts":true') && {
        verify lazy.qcow2 "$i"
        assert_eq true "$(qemu-img info --output=json "$(lpath "$SUB/lazy.qcow2")" | jq '."format-specific".data."lazy-refcounts"')" "lazy refcounts"; }
    i=$(create base.raw ',"format":"raw","size":4194304') && verify base.raw "$i"
    i=$(create odd.qcow2 ',"format":"qcow2","size":1000000') && verify odd.qcow2 "$i"

    # Backing files: same directory, a subdirectory (relative "../"),
    # by id, a raw base, size defaulting to the backing's.
    i=$(create over.qcow2 ",\"format\":\"qcow2\",\"backing\":$(vref "$SUB/plain.qcow2")") && {
        verify over.qcow2 "$i"; exercise over.qcow2
        assert_eq plain.qcow2 "$(printf '%s' "$i" | jq -r '."backing-filename"')" "relative backing name"
        assert_eq 16777216 "$(printf '%s' "$i" | jq '."virtual-size"')" "size from the backing image"; }
    pid=$(rpc image-info "{\"image\":$(vref "$SUB/over.qcow2")}" | jq .id)
    i=$(create sub/dir/over2.qcow2 ",\"format\":\"qcow2\",\"size\":33554432,\"cluster-size\":4096,\"backing\":$pid") && {
        verify sub/dir/over2.qcow2 "$i"
        assert_eq ../../over.qcow2 "$(printf '%s' "$i" | jq -r '."backing-filename"')" "backing name from a subdirectory"
        assert_eq qcow2 "$(printf '%s' "$i" | jq -r '."backing-format"')" "backing format"
        assert_eq "$pid" "$(printf '%s' "$i" | jq .backing)" "backing edge"
        n=$(qemu-img info --backing-chain --output=json "$(lpath "$SUB/sub/dir/over2.qcow2")" | jq length)
        assert_eq 3 "$n" "qemu-img sees a 3-deep chain"; }
    i=$(create rawover.qcow2 ",\"format\":\"qcow2\",\"compat\":\"0.10\",\"backing\":$(vref "$SUB/base.raw"),\"backing-format\":\"raw\"") && {
        verify rawover.qcow2 "$i"; exercise rawover.qcow2; }
    # children recorded
    kids=$(rpc image-info "{\"image\":$(vref "$SUB/plain.qcow2")}" | jq -c .children)
    oid=$(rpc image-info "{\"image\":$(vref "$SUB/over.qcow2")}" | jq .id)
    assert_eq "[$oid]" "$kids" "children of plain.qcow2"

    # AlreadyExists: in the catalog, and a file on storage only.
    e=$(rpc_err image-create "{\"volume\":\"$VOL\",\"path\":\"$SUB/plain.qcow2\",\"format\":\"qcow2\",\"size\":1048576}")
    assert_eq AlreadyExists "$(err_class "$e")" "create over a catalogued image"
    echo precious >"$(lpath "$SUB/stray")"
    e=$(rpc_err image-create "{\"volume\":\"$VOL\",\"path\":\"$SUB/stray\",\"format\":\"qcow2\",\"size\":1048576}")
    assert_eq AlreadyExists "$(err_class "$e")" "create over a file on storage"
    assert_eq precious "$(cat "$(lpath "$SUB/stray")")" "the existing file is untouched"

    # A backing name too long for a 512-byte header cluster.
    long=$(printf 'd%.0s' $(seq 1 200))
    mkdir -p "$(lpath "$SUB/$long/$long")"
    qimg create -q -f qcow2 "$(lpath "$SUB/$long/$long/b.qcow2")" 1M
    e=$(rpc_err image-create "{\"volume\":\"$VOL\",\"path\":\"$SUB/toolong.qcow2\",\"format\":\"qcow2\",\"cluster-size\":512,\"backing\":$(vref "$SUB/$long/$long/b.qcow2")}")
    note "too long backing name: $e"
    assert_match 'InvalidParams|Unsupported' "$(err_class "$e")" "class of a too-long backing name"
    assert_match '[Bb]acking' "$(err_msg "$e")" "message of a too-long backing name"
    [ ! -e "$(lpath "$SUB/toolong.qcow2")" ] || check_fail "a file was left behind by the failed create"
    n=$(rpc image-list "{\"volume\":\"$VOL\"}" | jq "[.[] | select(.path == \"$SUB/toolong.qcow2\")] | length")
    assert_eq 0 "$n" "no catalog row for the failed create"

    # image-delete: a parent with children is InUse; a leaf goes.
    e=$(rpc_err image-delete "{\"image\":$(vref "$SUB/plain.qcow2")}")
    assert_eq InUse "$(err_class "$e")" "delete a parent"
    # named, not counted by catalog id: who keeps it, and what to do
    assert_match "^$VOL:$SUB/plain.qcow2 is the backing image of $VOL:$SUB/[^ ]+\\.qcow2.*; delete or rebase those first\\.$" \
        "$(err_msg "$e")" "delete a parent: the message names the image and its children"
    [ -f "$(lpath "$SUB/plain.qcow2")" ] || check_fail "refused delete removed the file"
    rpc image-delete "{\"image\":$(vref "$SUB/sub/dir/over2.qcow2")}" >/dev/null || check_fail "delete a leaf"
    [ ! -e "$(lpath "$SUB/sub/dir/over2.qcow2")" ] || check_fail "deleted leaf's file is still there"
    rpc image-delete "{\"image\":$pid}" >/dev/null || check_fail "delete over.qcow2 once its child is gone"
    e=$(rpc_err image-delete "{\"image\":$pid}")
    assert_eq NotFound "$(err_class "$e")" "delete an unknown id"
    e=$(rpc_err image-delete "{\"image\":$(vref "$SUB/stray")}")
    assert_eq NotFound "$(err_class "$e")" "delete an uncatalogued file"
}

# Across volumes: an overlay on gluster over a base in the local dir volume
# (absolute name under the dir volume's root), and the reverse (gluster URI).
cross_volume() {
    [ -n "${_gluster_ready_virt:-}" ] || return 0
    _backend_dir; lsub=$SUB; lroot=$ROOT
    i=$(create xbase.qcow2 ',"format":"qcow2","size":4194304') || return
    qio "$(lpath "$SUB/xbase.qcow2")" "write -P 0x77 0 1M"
    _backend_gluster
    i=$(create xover.qcow2 ",\"format\":\"qcow2\",\"backing\":\"local:$lsub/xbase.qcow2\"") && {
        assert_eq "$lroot/$lsub/xbase.qcow2" "$(printf '%s' "$i" | jq -r '."backing-filename"')" "absolute backing name"
        verify xover.qcow2 "$i"
        qio "$(lpath "$SUB/xover.qcow2")" "read -P 0x77 0 1M"; }
    gsub=$SUB
    _backend_dir
    i=$(create xover2.qcow2 ",\"format\":\"qcow2\",\"backing\":\"gl:$gsub/xover.qcow2\"") && {
        assert_eq "$(guri "$gsub/xover.qcow2")" "$(printf '%s' "$i" | jq -r '."backing-filename"')" "gluster URI backing name"
        # one direct gluster:// read by qemu-img through the chain
        gfapi_oracle qemu-io -c "read -P 0x77 0 1M" "$(lpath "$SUB/xover2.qcow2")" | grep -q 'read 1048576' ||
            check_fail "qemu-io cannot read through the gluster:// backing file"
        n=$(rpc image-info "{\"image\":$(vref "$SUB/xover2.qcow2"),\"backing-chain\":true}" | jq '.chain | length')
        assert_eq 3 "$n" "gvmd opens a chain across dir, gluster and dir"; }
}

for_each_backend run_backend
cross_volume
exit 0
