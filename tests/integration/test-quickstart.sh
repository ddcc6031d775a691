#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# contrib/quickstart.sh starts a gvmd that answers on the socket it prints,
# with the embedded `local` dir volume, and a second run restarts it cleanly.
# Uses the binaries of this build (GVMD_BUILDDIR) and skips apt, so it is fast
# and leaves the source tree alone; state and sockets live under $TEST_TMP.
. "$GVM_TESTDIR/lib.sh"
need jq setsid
[ "$(id -u)" -eq 0 ] || skip "contrib/quickstart.sh needs root (groupadd)"

QS_STATE=$TEST_TMP/state
QS_RUN=$TEST_TMP/run
quickstart() {
    GVMD_SKIP_APT=1 GVMD_BUILDDIR=$GVM_BUILDDIR GVMD_STATE_DIR=$QS_STATE \
        GVMD_RUN_DIR=$QS_RUN GVMD_LOG_LEVEL=debug \
        "$GVM_SRCDIR/contrib/quickstart.sh" >"$TEST_TMP/qs.out" 2>"$TEST_TMP/qs.err"
}
# Stop whatever gvmd the script left running, also when we fail.
at_exit '[ -f "$QS_RUN/gvmd.pid" ] && kill_pid "$(cat "$QS_RUN/gvmd.pid")"'

quickstart || { cat "$TEST_TMP/qs.out" "$TEST_TMP/qs.err" >&2; fail "quickstart.sh failed"; }
cat "$TEST_TMP/qs.out" >&2
pid1=$(cat "$QS_RUN/gvmd.pid") || fail "no pid file in $QS_RUN"
kill -0 "$pid1" || fail "gvmd (pid $pid1) is not running"
assert_match "pid: +$pid1 " "$(grep 'pid:' "$TEST_TMP/qs.out")" "printed pid"

# The socket it printed is the one that answers.
GVM_SOCK=$(sed -n 's/^ *socket: *\([^ ]*\).*/\1/p' "$TEST_TMP/qs.out")
assert_eq "$QS_RUN/gvmd.sock" "$GVM_SOCK" "printed socket"
[ -S "$GVM_SOCK" ] || fail "no socket at $GVM_SOCK"
ver=$(rpc query-version '{}') || fail "query-version failed on $GVM_SOCK"
assert_match '^[0-9]+\.[0-9]+\.[0-9]+$' "$(jq -r .version <<<"$ver")" "version"
assert_eq 1 "$(jq -r .protocol <<<"$ver")" "protocol"
# The run dir is open to all (the read-only socket is for anyone); the
# read-write socket is root:gvm 0660, the read-only one 0666.
assert_eq "gvm 755" "$(stat -c '%G %a' "$QS_RUN")" "run directory group and mode"
assert_eq "root gvm 660" "$(stat -c '%U %G %a' "$GVM_SOCK")" "read-write socket"
assert_eq "666" "$(stat -c '%a' "$QS_RUN/gvmd-ro.sock")" "read-only socket mode"

vols=$(rpc volume-list '{}') || fail "volume-list failed"
assert_eq dir "$(jq -r '.[] | select(.name == "local") | .backend' <<<"$vols")" "backend of local"
[ -d "$QS_STATE/images" ] || check_fail "the local volume's root $QS_STATE/images was not created"
[ -f "$QS_STATE/catalog.db" ] || check_fail "no catalog at $QS_STATE/catalog.db"
[ -s "$QS_STATE/gvmd.log" ] || check_fail "no log at $QS_STATE/gvmd.log"

# Re-running restarts the daemon: the old one is gone, a new one answers
# with the same catalog.
quickstart || { cat "$TEST_TMP/qs.out" "$TEST_TMP/qs.err" >&2; fail "second quickstart.sh failed"; }
pid2=$(cat "$QS_RUN/gvmd.pid")
[ "$pid2" != "$pid1" ] || check_fail "second run did not start a new gvmd"
kill -0 "$pid1" 2>/dev/null && check_fail "the first gvmd (pid $pid1) still runs"
grep -q "stopping the gvmd started earlier (pid $pid1)" "$TEST_TMP/qs.err" ||
    check_fail "second run did not say it stopped pid $pid1"
rpc query-version '{}' >/dev/null || fail "the restarted gvmd does not answer"
assert_eq 1 "$(rpc volume-list '{}' | jq '[.[] | select(.name == "local")] | length')" \
    "local volumes after restart"
# Without libvirtd installed the script runs gvmd with --libvirt-uri none:
# a configured libvirt nobody can reach would make gvmd refuse every write.
if command -v libvirtd >/dev/null 2>&1; then want=true; else want=false; fi
assert_eq "$want" "$(rpc query-virt '{}' | jq -r .configured)" \
    "gvmd's libvirt configured (libvirtd installed: $want)"
if [ "$want" = false ]; then
    grep -q -- "--libvirt-uri none" "$TEST_TMP/qs.err" || check_fail "the script did not say it runs without libvirt"
fi

# Stop it by the pid it printed: a clean exit removes nothing we rely on.
kill -TERM "$pid2"
i=0
while kill -0 "$pid2" 2>/dev/null; do
    i=$((i+1)); [ $i -lt 300 ] || fail "gvmd ignored SIGTERM for 30 s"; sleep 0.1
done
"$GVMCTL" --socket "$GVM_SOCK" query-version >/dev/null 2>&1 &&
    check_fail "something still answers on $GVM_SOCK after the stop"
exit 0
