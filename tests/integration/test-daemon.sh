#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-daemon.sh — the daemon's life cycle and command line: --help and
# --version, usage errors, the configuration file and its precedence,
# SIGTERM/SIGINT (prompt exit 0, socket files removed), stale sockets, a
# second daemon on a live socket, READY=1 to NOTIFY_SOCKET, systemd socket
# activation (descriptors matched by name), and op-id replay.
. "$GVM_TESTDIR/lib.sh"
need jq
RAW=$GVM_TOOLSDIR/rawsock
field() { printf '%s' "$2" | jq -c "$1" 2>/dev/null || echo "<not JSON: $2>"; }
# canon JQ-FILTER JSON: the value with sorted keys, for comparing results.
canon() { printf '%s' "$2" | jq -cS "$1" 2>/dev/null || echo "<not JSON: $2>"; }

# ---- command line ------------------------------------------------------------
help=$("$GVMD" --help); rc=$?
assert_eq 0 "$rc" "--help exit status"
for opt in --foreground --socket --ro-socket --catalog --state-dir --libvirt-uri \
           --log-level --config --workers --help --version; do
    printf '%s\n' "$help" | grep -q -- "$opt" || check_fail "--help does not mention $opt"
done
ver=$("$GVMD" --version); rc=$?
assert_eq 0 "$rc" "--version exit status"
assert_match '^gvmd [0-9]+\.[0-9]+\.[0-9]+' "$ver" "--version output"
"$GVMD" --no-such-option >/dev/null 2>&1; assert_eq 2 $? "unknown option exit status"
"$GVMD" --log-level loud --socket "$TEST_TMP/x.sock" >/dev/null 2>&1
assert_eq 2 $? "bad --log-level exit status"
"$GVMD" --workers 0 --socket "$TEST_TMP/x.sock" >/dev/null 2>&1
assert_eq 2 $? "--workers 0 exit status"
"$GVMD" --socket >/dev/null 2>&1; assert_eq 2 $? "--socket without a value"
"$GVMD" extra-arg >/dev/null 2>&1; assert_eq 2 $? "stray argument"
[ ! -e "$TEST_TMP/x.sock" ] || check_fail "a usage error still created a socket"

# ---- proto/PROTOCOL.md documents every method of methods.def ---------------------
doc=$GVM_SRCDIR/proto/PROTOCOL.md
methods=$(grep -v '^ *\*\|^ */\*' "$GVM_SRCDIR/proto/methods.def" | tr '\n' ' ' |
          grep -o 'GVM_METHOD([a-z_0-9]*, *"[^"]*"' | sed 's/.*"\([^"]*\)"/\1/')
[ -n "$methods" ] || fail "no methods found in methods.def"
for m in $methods; do
    grep -q "^#### \`$m\` — implemented" "$doc" ||
        check_fail "proto/PROTOCOL.md has no '#### \`$m\` — implemented' section"
    sed -n '/^### Not implemented/,$p' "$doc" | grep -q "\`$m\`" &&
        check_fail "proto/PROTOCOL.md lists $m as not implemented"
done

# ---- configuration file -----------------------------------------------------------
cdir=$TEST_TMP/conf
mkdir -p "$cdir"
cat >"$cdir/gvmd.conf" <<EOC
# gvmd test configuration
socket = $cdir/rw.sock
ro-socket=$cdir/ro.sock   # trailing comment
catalog = $cdir/catalog.db

state-dir = $cdir/state
log-level = debug
workers = 2
foreground = yes
EOC
"$GVMD" --config "$cdir/gvmd.conf" >"$cdir/log" 2>&1 &
cpid=$!
track_pid "$cpid"
i=0
until "$GVMCTL" --socket "$cdir/rw.sock" query-version >/dev/null 2>&1; do
    i=$((i+1)); kill -0 "$cpid" 2>/dev/null || { cat "$cdir/log" >&2; fail "gvmd exited with a config file"; }
    [ $i -lt 200 ] || fail "gvmd with a config file did not answer"; sleep 0.1
done
[ -S "$cdir/ro.sock" ] || check_fail "ro-socket from the config file not created"
[ -f "$cdir/catalog.db" ] || check_fail "catalog from the config file not created"
[ -d "$cdir/state/images" ] || check_fail "state-dir from the config file not used"
grep -q 'debug:' "$cdir/log" || check_fail "log-level = debug from the config file not applied"
grep -q '2 workers' "$cdir/log" || check_fail "workers = 2 from the config file not applied"
kill -TERM "$cpid"; wait "$cpid"; assert_eq 0 $? "config-file daemon exit status"

# the command line overrides the file
"$GVMD" --config "$cdir/gvmd.conf" --socket "$cdir/rw2.sock" --log-level warn >"$cdir/log2" 2>&1 &
cpid=$!
track_pid "$cpid"
i=0
until "$GVMCTL" --socket "$cdir/rw2.sock" query-version >/dev/null 2>&1; do
    i=$((i+1)); kill -0 "$cpid" 2>/dev/null || { cat "$cdir/log2" >&2; fail "gvmd exited (override)"; }
    [ $i -lt 200 ] || fail "gvmd with an overridden socket did not answer"; sleep 0.1
done
[ ! -e "$cdir/rw.sock" ] || check_fail "the file's socket was used despite --socket"
[ -S "$cdir/ro.sock" ] || check_fail "the file's ro-socket was not used"
! grep -q 'debug:\|info:' "$cdir/log2" || check_fail "--log-level warn did not override the file"
kill -INT "$cpid"; wait "$cpid"; assert_eq 0 $? "SIGINT exit status"
[ ! -e "$cdir/rw2.sock" ] && [ ! -e "$cdir/ro.sock" ] || check_fail "sockets left after SIGINT"

printf 'socket = %s\nbogus-key = 1\n' "$cdir/rw3.sock" >"$cdir/bad.conf"
msg=$("$GVMD" --config "$cdir/bad.conf" 2>&1 >/dev/null); rc=$?
assert_eq 2 "$rc" "unknown key in the config file: exit status"
assert_match 'bad.conf:2.*bogus-key' "$msg" "unknown key reported with file and line"
"$GVMD" --config "$cdir/missing.conf" >/dev/null 2>&1
assert_eq 2 $? "missing config file: exit status"

# ---- SIGTERM, stale and live sockets ---------------------------------------------------
start_gvmd
t0=$(date +%s%N)
stop_gvmd
t1=$(date +%s%N)
[ $(( (t1 - t0) / 1000000 )) -lt 5000 ] || check_fail "SIGTERM took $(( (t1 - t0) / 1000000 )) ms"
[ ! -e "$GVM_SOCK" ] || check_fail "rw socket file left after SIGTERM"
[ ! -e "$GVM_RO_SOCK" ] || check_fail "ro socket file left after SIGTERM"

# a daemon killed -9 leaves its socket files; the next one replaces them
start_gvmd
kill9_gvmd
[ -S "$GVM_SOCK" ] || check_fail "kill -9 did not leave the socket (test premise)"
start_gvmd
gvmctl query-version >/dev/null || check_fail "restart over a stale socket"
# a second daemon must not steal a live socket
"$GVMD" --socket "$GVM_SOCK" --ro-socket "$TEST_TMP/other-ro.sock" \
    --catalog "$TEST_TMP/other.db" --state-dir "$TEST_TMP/other" >"$TEST_TMP/second.log" 2>&1 &
spid=$!
track_pid "$spid"
i=0
while kill -0 "$spid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -0 "$spid" 2>/dev/null && check_fail "a second daemon kept running on a live socket"
wait "$spid"; [ $? -ne 0 ] || check_fail "a second daemon on a live socket exited 0"
grep -q 'Another gvmd' "$TEST_TMP/second.log" || check_fail "second daemon: $(cat "$TEST_TMP/second.log")"
gvmctl query-version >/dev/null || check_fail "first daemon lost its socket to a second one"

# ---- op-id replay --------------------------------------------------------------------
mkdir -p "$TEST_TMP/vol-a" "$TEST_TMP/vol-b"
r1=$(rpc volume-add "{\"name\":\"va\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-a\",\"op-id\":\"op-1\"}") ||
    check_fail "volume-add with op-id failed"
assert_eq '"va"' "$(field .name "$r1")" "first volume-add"
r2=$(rpc volume-add "{\"name\":\"va\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-a\",\"op-id\":\"op-1\"}") ||
    check_fail "a repeat with the same op-id failed instead of replaying"
assert_eq "$(canon . "$r1")" "$(canon . "$r2")" "replayed result equals the first"
# the same params without the op-id run again, and fail
e=$(rpc_err volume-add "{\"name\":\"va\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-a\"}")
assert_eq '"AlreadyExists"' "$(field .data.class "$e")" "repeat without op-id"
# another op-id is another operation
e=$(rpc_err volume-add "{\"name\":\"va\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-a\",\"op-id\":\"op-2\"}")
assert_eq '"AlreadyExists"' "$(field .data.class "$e")" "a new op-id runs again"
# op-ids are per method: the same op-id on volume-remove is a new operation
r3=$(rpc volume-remove '{"name":"va","op-id":"op-1"}') || check_fail "volume-remove op-1"
r4=$(rpc volume-remove '{"name":"va","op-id":"op-1"}') || check_fail "volume-remove replay failed (NotFound?)"
assert_eq "$(canon . "$r3")" "$(canon . "$r4")" "volume-remove replay"
e=$(rpc_err volume-remove '{"name":"va"}')
assert_eq '"NotFound"' "$(field .data.class "$e")" "volume-remove really ran once"
# replay works across connections, and in a batch
b=$(printf '%s\n' "[{\"jsonrpc\":\"2.0\",\"method\":\"volume-add\",\"params\":{\"name\":\"vb\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-b\",\"op-id\":\"op-b\"},\"id\":1}]" |
    "$RAW" "$GVM_SOCK" --expect 1 --timeout-ms 10000)
r5=$(rpc volume-add "{\"name\":\"vb\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-b\",\"op-id\":\"op-b\"}") ||
    check_fail "replay of a batched call failed"
assert_eq "$(canon '.[0].result' "$b")" "$(canon . "$r5")" "replay of a batched call"
# a failed call is not remembered: fixing the cause and retrying works
e=$(rpc_err volume-add "{\"name\":\"vc\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-c\",\"op-id\":\"op-c\"}")
mkdir -p "$TEST_TMP/vol-c"
r6=$(rpc volume-add "{\"name\":\"vc\",\"backend\":\"dir\",\"path\":\"$TEST_TMP/vol-c\",\"op-id\":\"op-c\"}") ||
    check_fail "retry of a failed op-id"
assert_eq '"vc"' "$(field .name "$r6")" "retry of a failed op-id ran"
stop_gvmd

# ---- NOTIFY_SOCKET ----------------------------------------------------------------------
ndir=$TEST_TMP/notify
mkdir -p "$ndir"
"$RAW" --recv-dgram "$ndir/notify" --expect 2 --timeout-ms 30000 >"$ndir/got" 2>"$ndir/recv.log" &
npid=$!
track_pid "$npid"
i=0; until grep -q listening "$ndir/recv.log" || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
NOTIFY_SOCKET=$ndir/notify "$GVMD" --socket "$ndir/rw.sock" --ro-socket "$ndir/ro.sock" \
    --catalog "$ndir/cat.db" --state-dir "$ndir/state" >"$ndir/log" 2>&1 &
gpid=$!
track_pid "$gpid"
i=0; until grep -q 'READY=1' "$ndir/got" || [ $i -gt 300 ]; do sleep 0.1; i=$((i+1)); done
grep -q "^READY=1" "$ndir/got" || check_fail "no READY=1 on NOTIFY_SOCKET: $(cat "$ndir/got")"
grep -q "^MAINPID=$gpid" "$ndir/got" || check_fail "no MAINPID=$gpid: $(cat "$ndir/got")"
"$GVMCTL" --socket "$ndir/rw.sock" query-version >/dev/null || check_fail "not serving after READY=1"
kill -TERM "$gpid"; wait "$gpid"; assert_eq 0 $? "notify daemon exit status"
wait "$npid"
grep -q '^STOPPING=1' "$ndir/got" || check_fail "no STOPPING=1 on SIGTERM: $(cat "$ndir/got")"

# ---- socket activation ------------------------------------------------------------------
if command -v systemd-socket-activate >/dev/null 2>&1; then
    adir=$TEST_TMP/act
    mkdir -p "$adir"
    # The read-only socket first: gvmd must match descriptors by name.
    systemd-socket-activate -l "$adir/ro.sock" -l "$adir/rw.sock" --fdname=ro:rw \
        "$GVMD" --foreground --socket "$adir/unused-rw.sock" --ro-socket "$adir/unused-ro.sock" \
        --catalog "$adir/cat.db" --state-dir "$adir/state" --log-level debug \
        >"$adir/log" 2>&1 &
    apid=$!
    track_pid "$apid"
    i=0; until [ -S "$adir/rw.sock" ] || [ $i -gt 100 ]; do sleep 0.1; i=$((i+1)); done
    r=$("$GVMCTL" --socket "$adir/rw.sock" --json query-version) || check_fail "activated rw socket: $(cat "$adir/log")"
    assert_eq 1 "$(field .protocol "$r")" "query-version on the activated socket"
    mkdir -p "$adir/vol"
    "$GVMCTL" --socket "$adir/rw.sock" --json volume-add --name act --backend dir --path "$adir/vol" >/dev/null ||
        check_fail "volume-add on the activated rw socket"
    e=$("$GVMCTL" --socket "$adir/ro.sock" --json volume-remove --name act 2>&1 >/dev/null)
    assert_eq '"PermissionDenied"' "$(field .data.class "$e")" "activated ro socket is read-only"
    [ ! -e "$adir/unused-rw.sock" ] && [ ! -e "$adir/unused-ro.sock" ] ||
        check_fail "gvmd bound its own sockets despite socket activation"
    grep -q 'passed by systemd' "$adir/log" || check_fail "no activation in the log"
    kill -TERM "$apid"; wait "$apid"; assert_eq 0 $? "activated daemon exit status"
else
    note "systemd-socket-activate not installed: socket activation not tested"
fi
exit 0
