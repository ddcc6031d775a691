# SPDX-License-Identifier: GPL-2.0-or-later
# tests/fixture-common.sh — sourced by tests/gluster-fixture.sh and
# tests/libvirt-fixture.sh.
#
# A fixture may find a daemon (glusterd, libvirtd) already running — a
# developer's — and then only uses it.  When none runs, the first fixture
# starts a private one and records it in a shared daemon directory; every
# fixture that uses that daemon registers itself there as a "user" (its
# owner's pid and its fixture directory), and the last user to leave stops
# the daemon by the pid it recorded.  So tests run in parallel by meson,
# each with its own fixture, share one daemon and never stop one they did
# not start.  A user whose owner died without tearing down is pruned by the
# next fixture that stops.

# fx_lock DIR: serialise fixture set-up/tear-down on DIR/lock (fd 9).
fx_lock() {
    mkdir -p "$1/users"
    exec 9>"$1/lock"
    flock 9
}
fx_unlock() { flock -u 9; exec 9>&-; }

# fx_user_add DAEMON-DIR FIXTURE-DIR OWNER-PID
fx_user_add() {
    printf '%s %s\n' "$3" "$2" >"$1/users/$(fx_user_id "$2")"
}
fx_user_del() { rm -f "$1/users/$(fx_user_id "$2")"; }
fx_user_id() { printf '%s' "$1" | cksum | cut -d' ' -f1; }

# fx_users_prune DAEMON-DIR TEARDOWN-FUNCTION: tear down the fixtures whose
# owner is gone (its pid no longer runs), then print the number of users left.
fx_users_prune() {
    local n=0 u upid udir
    for u in "$1"/users/*; do
        [ -f "$u" ] || continue
        read -r upid udir <"$u"
        if kill -0 "$upid" 2>/dev/null; then n=$((n+1)); continue; fi
        echo "# tearing down fixture $udir left by dead process $upid" >&2
        [ -d "$udir" ] && "$2" "$udir"
        rm -f "$u"
    done
    echo "$n"
}

# fx_stop_pid PID [SECONDS]: TERM, wait, then KILL.
fx_stop_pid() {
    local p=$1 i=0
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    while kill -0 "$p" 2>/dev/null && [ $i -lt $(( ${2:-10} * 10 )) ]; do
        sleep 0.1; i=$((i+1)); done
    kill -KILL "$p" 2>/dev/null
    return 0
}

# fx_wait SECONDS CMD...: retry CMD every 0.2 s until it succeeds.
fx_wait() {
    local t=$(( $1 * 5 )); shift
    while ! "$@" >/dev/null 2>&1; do
        t=$((t-1)); [ $t -gt 0 ] || return 1
        sleep 0.2
    done
}
