#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-volume-dir.sh — dir volumes through the protocol: add, list, info,
# remove; every refusal with its error class (duplicate, bad path, bad name,
# unknown or misplaced params, unknown volume); the default volume; and path
# confinement — a symlink inside the volume pointing outside is refused when
# an image method opens it (if image methods are implemented).
. "$GVM_TESTDIR/lib.sh"
need jq

# err_class JSON: the error class (or the code for -326xx errors).
err_class() { jq -r 'if .code == -32000 then .data.class else (.code|tostring) end' <<<"$1" 2>/dev/null; }
expect_err() { # CLASS METHOD PARAMS [message-regex]
    out=$(rpc_err "$2" "$3") || return 0
    assert_eq "$1" "$(err_class "$out")" "$2 $3: error class"
    [ -z "${4:-}" ] || assert_match "$4" "$(jq -r .message <<<"$out")" "$2 $3: message"
}

start_gvmd

# ---- the default volume ------------------------------------------------------
out=$(rpc volume-list '{}') || fail "volume-list failed"
assert_eq dir "$(jq -r '.[] | select(.name=="local") | .backend' <<<"$out")" "default volume backend"
assert_eq "$(realpath "$GVMD_DIR/state/images")" \
    "$(jq -r '.[] | select(.name=="local") | .path' <<<"$out")" "default volume path"
[ -d "$GVMD_DIR/state/images" ] || check_fail "state/images was not created"

# ---- add ------------------------------------------------------------------------
mkdir -p "$TEST_TMP/vol1" "$TEST_TMP/outside"
out=$(rpc volume-add "{\"name\":\"v1\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol1\"}") ||
    fail "volume-add v1 failed"
assert_eq v1 "$(jq -r .name <<<"$out")" "added name"
assert_eq dir "$(jq -r .backend <<<"$out")" "added backend"
assert_eq "$(realpath "$TEST_TMP/vol1")" "$(jq -r .path <<<"$out")" "added path"
assert_eq 0 "$(jq '.servers | length' <<<"$out")" "a dir volume has no servers"
assert_match '^[0-9]+$' "$(jq -r .id <<<"$out")" "added id"
id1=$(jq -r .id <<<"$out")

# a second one, with a path that needs canonicalising
mkdir -p "$TEST_TMP/vol2"
out=$(rpc volume-add "{\"name\":\"v.2_x-y\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol1/../vol2/\"}") ||
    check_fail "volume-add v.2_x-y failed"
assert_eq "$(realpath "$TEST_TMP/vol2")" "$(jq -r .path <<<"$out")" "canonical path"

# ---- list / info ------------------------------------------------------------------
out=$(rpc volume-list '{}') || fail "volume-list failed"
assert_eq "local v1 v.2_x-y" "$(jq -r 'map(.name) | join(" ")' <<<"$out")" "volume-list names in order"
assert_eq "$id1" "$(jq -r '.[] | select(.name=="v1") | .id' <<<"$out")" "id in list"

out=$(rpc volume-info '{"name":"v1"}') || fail "volume-info failed"
free=$(jq -r '."free-bytes"' <<<"$out")
total=$(jq -r '."total-bytes"' <<<"$out")
assert_match '^[1-9][0-9]*$' "$free" "free-bytes"
assert_match '^[1-9][0-9]*$' "$total" "total-bytes"
[ "$free" -le "$total" ] 2>/dev/null || check_fail "free-bytes $free > total-bytes $total"
# compare with df (same file system, within 10% or 1 GiB: other tests write)
df_free=$(( $(df -B1 --output=avail "$TEST_TMP/vol1" | tail -1) ))
diff=$(( free > df_free ? free - df_free : df_free - free ))
[ $diff -lt $(( 1024*1024*1024 )) ] || [ $diff -lt $(( df_free / 10 )) ] ||
    check_fail "free-bytes $free far from df's $df_free"
# the read-only socket may ask for info and list
"$GVMCTL" --socket "$GVM_RO_SOCK" --json volume-info --name v1 >/dev/null ||
    check_fail "volume-info on the read-only socket"

# ---- refusals ---------------------------------------------------------------------
expect_err AlreadyExists volume-add "{\"name\":\"v1\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\"}" "v1"
expect_err -32602 volume-add "{\"name\":\"v3\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/missing\"}" "not an existing directory"
expect_err -32602 volume-add '{"name":"v3","backend":"dir","path":"relative/dir"}' "absolute"
touch "$TEST_TMP/afile"
expect_err -32602 volume-add "{\"name\":\"v3\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/afile\"}" "not an existing directory"
expect_err -32602 volume-add '{"name":"v3","backend":"dir"}' "path"
expect_err -32602 volume-add "{\"name\":\"bad/name\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\"}" "bad/name"
expect_err -32602 volume-add "{\"name\":\"\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\"}" "not valid"
long=$(printf 'x%.0s' $(seq 65))
expect_err -32602 volume-add "{\"name\":\"$long\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\"}" "not valid"
expect_err -32602 volume-add "{\"name\":\"v3\",\"backend\":\"nfs\",\"path\":\"$TEST_TMP/vol2\"}" "nfs"
expect_err -32602 volume-add "{\"name\":\"v3\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\",\"bogus\":1}" "bogus"
expect_err -32602 volume-add "{\"name\":\"v3\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\",\"servers\":[{\"type\":\"tcp\",\"host\":\"127.0.0.1\"}]}" "only for gluster"
expect_err -32602 volume-add "{\"name\":\"v3\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\",\"debug\":10}" "0..9"
expect_err -32602 volume-add '{"name":"v3","backend":"gluster","volume":"x","servers":[{"type":"tcp","host":"127.0.0.1","colour":"red"}]}' "colour"
expect_err -32602 volume-add '{"name":"v3","backend":"gluster","volume":"x","servers":[{"type":"tcp","host":"127.0.0.1","port":70000}]}' "port"
expect_err -32602 volume-add '{"name":"v3","backend":"gluster","volume":"x","servers":[{"type":"unix","host":"h"}]}' "host"
expect_err -32602 volume-add '{"name":"v3","backend":"gluster","volume":"x","servers":[]}' "at least one server"
expect_err -32602 volume-add '{"name":"v3","backend":"gluster","servers":[{"type":"tcp","host":"127.0.0.1"}]}' "volume"
expect_err NotFound volume-remove '{"name":"nope"}' "nope"
expect_err NotFound volume-info '{"name":"nope"}' "nope"
# nothing of the refused calls was registered
out=$(rpc volume-list '{}')
assert_eq "local v1 v.2_x-y" "$(jq -r 'map(.name) | join(" ")' <<<"$out")" "volumes after refusals"

# ---- confinement through image methods (when implemented) ---------------------------
# An image outside the volume, reachable only through a symlink inside it.
if command -v qemu-img >/dev/null 2>&1; then
    qemu-img create -q -f qcow2 "$TEST_TMP/outside/secret.qcow2" 1M
    qemu-img create -q -f qcow2 "$TEST_TMP/vol1/real.qcow2" 1M
    ln -s "$TEST_TMP/outside/secret.qcow2" "$TEST_TMP/vol1/escape.qcow2"
    ln -s ../outside/secret.qcow2 "$TEST_TMP/vol1/escape-rel.qcow2"
    ln -s real.qcow2 "$TEST_TMP/vol1/inside.qcow2"
    out=$("$GVMCTL" --socket "$GVM_SOCK" --json --params '{"image":"v1:escape.qcow2"}' image-info 2>&1)
    if [ "$(err_class "$out")" = "-32601" ] || [[ $out == *"unknown command"* ]]; then
        note "image-info is not implemented: confinement covered by test-store-posix only"
    else
        ok=$(rpc image-info '{"image":"v1:inside.qcow2"}') ||
            check_fail "image-info through a symlink inside the volume failed"
        assert_eq qcow2 "$(jq -r .format <<<"$ok")" "image-info through an inside symlink"
        for l in escape.qcow2 escape-rel.qcow2; do
            out=$(rpc_err image-info "{\"image\":\"v1:$l\"}")
            case $(err_class "$out") in
                StorageError|PermissionDenied|-32602) ;;
                *) check_fail "image-info v1:$l: unexpected error $out" ;;
            esac
        done
        # a catalogued image keeps its volume from being removed
        if rpc image-import '{"image":"v1:real.qcow2"}' >/dev/null 2>&1; then
            expect_err InUse volume-remove '{"name":"v1"}' "image"
            rpc image-delete "{\"image\":\"v1:real.qcow2\"}" >/dev/null 2>&1 ||
                note "image-delete failed; v1 stays registered"
        else
            note "image-import unavailable: InUse refusal not exercised here"
        fi
    fi
fi

# ---- remove ----------------------------------------------------------------------------
rpc volume-remove '{"name":"v.2_x-y"}' >/dev/null || check_fail "volume-remove v.2_x-y"
expect_err NotFound volume-info '{"name":"v.2_x-y"}'
expect_err NotFound volume-remove '{"name":"v.2_x-y"}'
[ -d "$TEST_TMP/vol2" ] || check_fail "volume-remove deleted the directory"
out=$(rpc volume-list '{}')
assert_eq "" "$(jq -r '.[] | select(.name=="v.2_x-y") | .name' <<<"$out")" "removed volume listed"
# the name can be taken again (a new volume, new id)
out=$(rpc volume-add "{\"name\":\"v.2_x-y\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol2\"}") ||
    check_fail "re-adding a removed name"

# everything survives a clean restart
stop_gvmd
start_gvmd
out=$(rpc volume-list '{}') || fail "volume-list after restart"
assert_match "^local v1 v.2_x-y$" "$(jq -r 'map(.name) | join(" ")' <<<"$out")" "volumes after restart"
stop_gvmd
exit 0
