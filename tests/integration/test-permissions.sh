#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-permissions.sh — who may call what.  A throwaway system user, not in
# group gvm, is refused on the read-write socket (by the file mode, and by
# the daemon's own peer-credential check when the mode lets it connect),
# may query on the read-only socket, and may not change anything there.
# Added to group gvm, the same user may use the read-write socket, but not
# volume-add/volume-remove, which are root's.
. "$GVM_TESTDIR/lib.sh"
need jq useradd userdel usermod groupadd setpriv
[ "$(id -u)" -eq 0 ] || skip "creating a user needs root"
RAW=$GVM_TOOLSDIR/rawsock
RPC_REPLAY_MAX=1024     # gvmd/rpc/rpc.h: op-ids remembered per caller

groupadd -f gvm || fail "cannot create group gvm"
user=gvmt$$
useradd -M -N -g nogroup -d /nonexistent -s /usr/sbin/nologin "$user" ||
    fail "cannot create user $user"
at_exit "userdel -f $user >/dev/null 2>&1"
uid=$(id -u "$user")
gid=$(id -g "$user")
# The user must be able to reach the sockets: open up the test directory.
chmod 755 "$TEST_TMP"

start_gvmd

# as_user [setpriv group option] CMD...: run CMD as the test user.
as_user() { setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"; }
as_member() { setpriv --reuid="$uid" --regid="$gid" --init-groups "$@"; }
field() { printf '%s' "$2" | jq -c "$1" 2>/dev/null || echo "<not JSON: $2>"; }
# user_ctl SOCKET ARGS...: gvmctl --json as the user; sets rc, out, err.
user_ctl() {
    s=$1; shift
    out=$(as_user "$GVMCTL" --socket "$s" --json "$@" 2>"$TEST_TMP/err"); rc=$?
    err=$(cat "$TEST_TMP/err")
}
# user_raw SOCKET JSON: one request through rawsock as the user.
user_raw() { printf '%s\n' "$2" | as_user "$RAW" "$1" --expect 1 --timeout-ms 10000; }

assert_eq "srw-rw----" "$(stat -c %A "$GVM_SOCK")" "rw socket mode"
assert_eq "srw-rw-rw-" "$(stat -c %A "$GVM_RO_SOCK")" "ro socket mode"
assert_eq "gvm" "$(stat -c %G "$GVM_SOCK")" "rw socket group"

# ---- not a member: the rw socket's mode keeps the user out ----------------
user_ctl "$GVM_SOCK" query-version
assert_eq 3 "$rc" "non-member connecting to the 0660 rw socket (gvmctl exit)"

# ---- ... and so does the daemon when the mode would let it in ----------
chmod 0666 "$GVM_SOCK"
user_ctl "$GVM_SOCK" query-version
assert_eq 1 "$rc" "non-member on the rw socket: gvmctl exit"
assert_eq '"PermissionDenied"' "$(field .data.class "$err")" "non-member query-version class"
assert_eq '-32000' "$(field .code "$err")" "non-member query-version code"
assert_match "uid $uid" "$(field .message "$err")" "refusal names the uid"
for m in volume-list query-capabilities no-such-method; do
    r=$(user_raw "$GVM_SOCK" "{\"jsonrpc\":\"2.0\",\"method\":\"$m\",\"id\":1}")
    assert_eq '"PermissionDenied"' "$(field .error.data.class "$r")" "non-member $m on the rw socket"
done
# a refused notification is not executed either
mkdir -p "$TEST_TMP/vol-n"
printf '%s\n' "{\"jsonrpc\":\"2.0\",\"method\":\"volume-add\",\"params\":{\"name\":\"sneaky\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-n\"}}" |
    as_user "$RAW" "$GVM_SOCK" --timeout-ms 500 >"$TEST_TMP/n.out"
assert_eq "" "$(cat "$TEST_TMP/n.out")" "refused notification: no reply"
names=$(rpc volume-list '{}' | jq -r '.[].name' | paste -sd, -)
assert_eq "local" "$names" "a refused notification registered nothing"
chmod 0660 "$GVM_SOCK"

# ---- the read-only socket -------------------------------------------------
user_ctl "$GVM_RO_SOCK" query-version
assert_eq 0 "$rc" "query-version on the ro socket: exit ($err)"
assert_eq 1 "$(field .protocol "$out")" "query-version on the ro socket"
user_ctl "$GVM_RO_SOCK" volume-list
assert_eq 0 "$rc" "volume-list on the ro socket: exit ($err)"
assert_eq '"local"' "$(field '.[0].name' "$out")" "volume-list on the ro socket"
user_ctl "$GVM_RO_SOCK" volume-info --name local
assert_eq 0 "$rc" "volume-info on the ro socket: exit ($err)"
mkdir -p "$TEST_TMP/vol-ro"
user_ctl "$GVM_RO_SOCK" volume-add --name rovol --backend dir --path "$TEST_TMP/vol-ro"
assert_eq 1 "$rc" "volume-add on the ro socket: exit"
assert_eq '"PermissionDenied"' "$(field .data.class "$err")" "volume-add on the ro socket"
assert_match "read-only" "$(field .message "$err")" "ro refusal says read-only"
r=$(user_raw "$GVM_RO_SOCK" '{"jsonrpc":"2.0","method":"volume-remove","params":{"name":"local"},"id":5}')
assert_eq '"PermissionDenied"' "$(field .error.data.class "$r")" "volume-remove on the ro socket"
assert_eq 5 "$(field .id "$r")" "ro refusal keeps the id"
# root is held to the same rule on the ro socket
r=$(printf '%s\n' '{"jsonrpc":"2.0","method":"volume-remove","params":{"name":"local"},"id":6}' |
    "$RAW" "$GVM_RO_SOCK" --expect 1 --timeout-ms 10000)
assert_eq '"PermissionDenied"' "$(field .error.data.class "$r")" "root's volume-remove on the ro socket"
# every method the table marks read-only is allowed there
ro_methods=$(grep -oE 'GVM_METHOD\([a-z_0-9]*, *"[^"]*", *[^,]*,' "$GVM_SRCDIR/proto/methods.def" |
             grep -E 'GVM_M_RO( |\||,)' | sed 's/.*"\([^"]*\)".*/\1/')
for m in $ro_methods; do
    r=$(user_raw "$GVM_RO_SOCK" "{\"jsonrpc\":\"2.0\",\"method\":\"$m\",\"id\":1}")
    [ "$(field .error.data.class "$r")" != '"PermissionDenied"' ] ||
        check_fail "read-only method $m refused on the ro socket: $r"
done
names=$(rpc volume-list '{}' | jq -r '.[].name' | paste -sd, -)
assert_eq "local" "$names" "nothing registered through the ro socket"

# ---- a member of group gvm ------------------------------------------------
usermod -a -G gvm "$user" || fail "cannot add $user to group gvm"
out=$(as_member "$GVMCTL" --socket "$GVM_SOCK" --json volume-list 2>"$TEST_TMP/err"); rc=$?
assert_eq 0 "$rc" "member on the rw socket: volume-list exit ($(cat "$TEST_TMP/err"))"
assert_eq '"local"' "$(field '.[0].name' "$out")" "member volume-list"
mkdir -p "$TEST_TMP/vol-m"
out=$(as_member "$GVMCTL" --socket "$GVM_SOCK" --json volume-add --name member-vol \
      --backend dir --path "$TEST_TMP/vol-m" 2>"$TEST_TMP/err"); rc=$?
# volume-add and volume-remove are root's: a volume decides which host
# directories gvmd (root) writes, so a member could reach root-only files.
assert_eq 1 "$rc" "member volume-add exit"
assert_match "PermissionDenied" "$(cat "$TEST_TMP/err")" "member volume-add: class"
assert_match "volume-add is for root only" "$(cat "$TEST_TMP/err")" "member volume-add: message"
assert_eq local "$(rpc volume-list '{}' | jq -r '.[].name' | paste -sd, -)" "no volume from the member's volume-add"
rpc volume-add "{\"name\":\"member-vol\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-m\"}" >/dev/null ||
    fail "root's volume-add of member-vol"
out=$(as_member "$GVMCTL" --socket "$GVM_SOCK" --json volume-remove --name member-vol 2>"$TEST_TMP/err"); rc=$?
assert_eq 1 "$rc" "member volume-remove exit"
assert_match "volume-remove is for root only" "$(cat "$TEST_TMP/err")" "member volume-remove: message"
# Images on a volume root registered are a member's to make.
out=$(as_member "$GVMCTL" --socket "$GVM_SOCK" --json image-create --volume member-vol \
      --path m.qcow2 --format qcow2 --size 1048576 2>"$TEST_TMP/err"); rc=$?
assert_eq 0 "$rc" "member image-create exit ($(cat "$TEST_TMP/err"))"
# group membership from the group database counts even for a process that
# dropped its supplementary groups (the mode must let it connect)
chmod 0666 "$GVM_SOCK"
r=$(user_raw "$GVM_SOCK" '{"jsonrpc":"2.0","method":"volume-info","params":{"name":"member-vol"},"id":7}')
assert_eq '"member-vol"' "$(field .result.name "$r")" "member by the group database"
chmod 0660 "$GVM_SOCK"
names=$(rpc volume-list '{}' | jq -r '.[].name' | sort | paste -sd, -)
assert_eq "local,member-vol" "$names" "volumes after the member's call"

# op-ids are remembered per caller: a member's many op-ids do not push
# root's out (a repeat of root's call still answers its first result).
first=$(rpc image-create '{"volume":"member-vol","path":"r.qcow2","format":"qcow2","size":1048576,"op-id":"r1"}') ||
    fail "root's image-create with op-id r1"
n=$((RPC_REPLAY_MAX + 76))
for i in $(seq 1 $n); do
    printf '{"jsonrpc":"2.0","method":"chain-audit","params":{"image":"member-vol:m.qcow2","op-id":"m%d"},"id":%d}\n' "$i" "$i"
done | as_member "$RAW" "$GVM_SOCK" --expect $n --timeout-ms 60000 >"$TEST_TMP/many.out"
assert_eq $n "$(jq -s '[.[] | select(.result)] | length' "$TEST_TMP/many.out")" "the member's $n chain-audits"
again=$(rpc image-create '{"volume":"member-vol","path":"r.qcow2","format":"qcow2","size":1048576,"op-id":"r1"}') ||
    check_fail "root's repeat of op-id r1 after the member's op-ids ran again (not a replay)"
assert_eq "$(jq -c . <<<"$first")" "$(jq -c . <<<"$again")" "root's repeat of op-id r1: the first result"

stop_gvmd
exit 0
