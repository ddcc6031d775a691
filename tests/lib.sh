# tests/lib.sh — shared shell fixtures for integration tests.  Source it:
#   . "$GVM_TESTDIR/lib.sh"
#
# Every process a test starts is recorded by pid and stopped on exit, also
# when the test fails.  Exit codes: 0 pass, 1 fail, 77 skip (with a reason).
set -u

: "${GVMD:?run tests through meson test}"
: "${GVMCTL:?}"
: "${GVM_TESTDIR:?}"

TEST_NAME=$(basename "$0" .sh)
TEST_TMP=$(mktemp -d "/tmp/gvmtest.$TEST_NAME.XXXXXX")
_test_pids=""
_test_cleanups=""
_test_failed=0

# Run "cmd" at exit (last registered runs first).
at_exit() { _test_cleanups="$1
$_test_cleanups"; }

_test_exit() {
    rc=$?
    set +e
    while IFS= read -r c; do [ -n "$c" ] && eval "$c"; done <<EOC
$_test_cleanups
EOC
    for p in $_test_pids; do kill_pid "$p"; done
    if [ -e "$TEST_TMP/.failed" ] && [ "$_test_failed" -eq 0 ]; then
        # Only subshells failed: their output may have been captured.
        echo "# failures recorded in subshells:" >&2; cat "$TEST_TMP/.failed" >&2
        _test_failed=1
    fi
    if [ "$rc" -eq 0 ] && [ "$_test_failed" -ne 0 ]; then rc=1; fi
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then rm -rf "$TEST_TMP"; else
        echo "# test files kept in $TEST_TMP" >&2; fi
    exit "$rc"
}
trap _test_exit EXIT
trap 'exit 1' INT TERM

skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# Record a failure but go on (the test exits 1 at the end).  Also in a
# file: a check inside $(...) runs in a subshell, whose variables are lost.
check_fail() { echo "FAIL: $*" >&2; _test_failed=1; echo "FAIL: $*" >>"$TEST_TMP/.failed"; }
note() { echo "# $*" >&2; }
need() { for t in "$@"; do command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"; done; }
# need_fault_injection: GVMD_FAULT works only in a test build of gvmd
# (meson -Dfault_injection=true, as tests/run-all.sh builds).
need_fault_injection() {
    "$GVMD" --version 2>/dev/null | grep -q 'fault injection' ||
        skip "$GVMD is not a test build (configure with -Dfault_injection=true)"
}

# Stop a process we started: TERM, wait up to 10 s, then KILL.
kill_pid() {
    p=$1
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    return 0
}
track_pid() { _test_pids="$_test_pids $1"; }

assert_eq() { # expected actual what
    [ "$1" = "$2" ] || check_fail "$3: expected '$1', got '$2'"
}
assert_match() { # regex actual what
    printf '%s' "$2" | grep -Eq -- "$1" || check_fail "$3: '$2' does not match /$1/"
}

# ---- gvmd ---------------------------------------------------------------
# start_gvmd [extra args...]: starts a daemon on a private socket, catalog
# and state dir under $TEST_TMP; sets GVMD_PID, GVM_SOCK, GVM_RO_SOCK.
# Without libvirt (--libvirt-uri none) unless the test gives its own
# --libvirt-uri: a configured but unreachable libvirt makes gvmd refuse
# every write to a catalogued image (live.h), and a test must not depend on
# whether the machine happens to run a libvirtd.  GVMD_DEFAULT_LIBVIRT_URI
# set empty leaves the option out (a test of the configuration file).
GVMD_DIR=$TEST_TMP/gvmd
start_gvmd() {
    mkdir -p "$GVMD_DIR"
    GVM_SOCK=$GVMD_DIR/gvmd.sock
    GVM_RO_SOCK=$GVMD_DIR/gvmd-ro.sock
    GVM_CATALOG=${GVM_CATALOG:-$GVMD_DIR/catalog.db}
    rm -f "$GVM_SOCK" "$GVM_RO_SOCK"
    if [ -n "${GVMD_DEFAULT_LIBVIRT_URI-none}" ]; then
        set -- --libvirt-uri "${GVMD_DEFAULT_LIBVIRT_URI-none}" "$@"
    fi
    "$GVMD" --foreground --socket "$GVM_SOCK" --ro-socket "$GVM_RO_SOCK" \
        --catalog "$GVM_CATALOG" --state-dir "$GVMD_DIR/state" \
        --log-level "${GVMD_LOG_LEVEL:-info}" "$@" \
        >>"$GVMD_DIR/gvmd.log" 2>&1 &
    GVMD_PID=$!
    track_pid "$GVMD_PID"
    i=0
    while ! gvmctl query-version >/dev/null 2>&1; do
        i=$((i+1))
        if ! kill -0 "$GVMD_PID" 2>/dev/null; then
            cat "$GVMD_DIR/gvmd.log" >&2; fail "gvmd exited during start-up"; fi
        [ $i -lt 300 ] || { cat "$GVMD_DIR/gvmd.log" >&2; fail "gvmd did not answer in 30 s"; }
        sleep 0.1
    done
}
# stop_gvmd: SIGTERM and expect a clean exit 0.
stop_gvmd() {
    kill -TERM "$GVMD_PID"
    wait "$GVMD_PID"; rc=$?
    [ $rc -eq 0 ] || { cat "$GVMD_DIR/gvmd.log" >&2; check_fail "gvmd exited $rc on SIGTERM"; }
}
# wait_death [SECONDS]: wait up to SECONDS (default 10) for gvmd to die by
# itself (a GVMD_FAULT kill); 1 if it still runs.
wait_death() {
    i=0
    while kill -0 "$GVMD_PID" 2>/dev/null; do
        i=$((i+1)); [ $i -lt $(( ${1:-10} * 10 )) ] || return 1; sleep 0.1
    done
    wait "$GVMD_PID" 2>/dev/null
    return 0
}
kill9_gvmd() { kill -KILL "$GVMD_PID"; wait "$GVMD_PID" 2>/dev/null; return 0; }
gvmd_log() { cat "$GVMD_DIR/gvmd.log"; }

# gvmctl on the test daemon's read-write socket.  With --wait the job has
# concluded when it returns (whatever its exit status): audit_clean then,
# as rpc does after job-wait.
gvmctl() {
    local _rc _a
    "$GVMCTL" --socket "$GVM_SOCK" "$@"
    _rc=$?
    for _a in "$@"; do
        [ "$_a" = --wait ] || continue
        audit_clean "after gvmctl $*" >&2
        break
    done
    return $_rc
}
gvmctl_ro() { "$GVMCTL" --socket "$GVM_RO_SOCK" "$@"; }
# rpc METHOD JSON-PARAMS: prints the raw JSON result; exit 1 on error
# (the error object is printed on stderr).  Every job-wait that returns a
# concluded job — succeeded, failed or cancelled — is followed by
# audit_clean: the suite's invariant that no job ends with the catalog and
# storage disagreeing.
rpc() {
    local _out _rc
    _out=$("$GVMCTL" --socket "$GVM_SOCK" --json --params "$2" "$1")
    _rc=$?
    [ -z "$_out" ] || printf '%s\n' "$_out"
    if [ $_rc -eq 0 ] && [ "$1" = job-wait ] &&
       [ "$(printf '%s' "$_out" | jq -r '.status // empty' 2>/dev/null)" = concluded ]; then
        audit_clean "after job $(printf '%s' "$_out" | jq -c '{id, type, error: (.error.message // null)}')"
    fi
    return $_rc
}
# audit_clean WHAT: chain-audit of every catalogued image and attached domain
# finds no difference between catalog, qcow2 headers and domain XML.  A test
# that makes differences on purpose (headers changed behind gvmd's back)
# sets GVM_AUDIT_AFTER_JOBS=0 around them.
audit_clean() {
    [ "${GVM_AUDIT_AFTER_JOBS:-1}" = 1 ] || return 0
    local _a
    if ! _a=$("$GVMCTL" --socket "$GVM_SOCK" --json --params '{}' chain-audit 2>&1); then
        check_fail "chain-audit ($1) failed: $_a"; return 1
    fi
    if [ "$(printf '%s' "$_a" | jq '.differences | length')" != 0 ]; then
        check_fail "chain-audit is not clean $1: $(printf '%s' "$_a" | jq -c .differences)"
        return 1
    fi
    return 0
}
# rpc_err METHOD JSON-PARAMS: expects an error; prints the error object.
# With GVM_COLLECT_ERRORS set, its message is also appended to
# $TEST_TMP/errors.log (for assert_error_names).
rpc_err() {
    if out=$("$GVMCTL" --socket "$GVM_SOCK" --json --params "$2" "$1" 2>&1); then
        check_fail "$1 $2 succeeded but should have failed: $out"; return 1; fi
    [ -z "${GVM_COLLECT_ERRORS:-}" ] ||
        printf '%s\t%s\n' "$1" "$(printf '%s' "$out" | jq -r '.message // .error.message // .' 2>/dev/null || printf '%s' "$out")" >>"$TEST_TMP/errors.log"
    printf '%s\n' "$out"
}
# assert_error_names: no error message collected in $TEST_TMP/errors.log
# (rpc_err with GVM_COLLECT_ERRORS) names an image or anything else by a
# bare catalog id: images are VOLUME:PATH, snapshots and domains go by
# name (jobs have no other name than "job N", which is allowed).
assert_error_names() {
    local _bad
    [ -s "$TEST_TMP/errors.log" ] || { check_fail "no error message was collected"; return 1; }
    _bad=$(grep -E '[Ii]mage [0-9]+\b|id [0-9]+' "$TEST_TMP/errors.log")
    [ -z "$_bad" ] || check_fail "error messages with bare catalog ids:
$_bad"
}

# ---- gluster --------------------------------------------------------------
# need_gluster: make a replica-3 gluster volume available; sets
# GLUSTER_HOST (a host name the bricks use, resolving to loopback) and
# GLUSTER_VOLUME.  tests/run-all.sh starts one volume for the whole suite and
# exports GVM_GLUSTER_HOST/GVM_GLUSTER_VOLUME; a test run alone gets a volume
# of its own (on a running glusterd, or on a private one started for it),
# torn down at exit.  See tests/gluster-fixture.sh.
need_gluster() {
    need gluster glusterd qemu-img
    if [ -z "${GVM_GLUSTER_VOLUME:-}" ]; then
        [ "$(id -u)" -eq 0 ] || skip "a private gluster volume needs root"
        at_exit "\"\$GVM_TESTDIR/gluster-fixture.sh\" stop \"\$TEST_TMP/gluster\""
        _fx_env=$("$GVM_TESTDIR/gluster-fixture.sh" start "$TEST_TMP/gluster" $$) ||
            fail "could not bring up a gluster volume"
        eval "$_fx_env"
    fi
    GLUSTER_HOST=${GVM_GLUSTER_HOST:-$(hostname)}
    GLUSTER_VOLUME=$GVM_GLUSTER_VOLUME
}
# gluster_fuse_mount DIR [VOLUME]: mount the test gluster volume (or VOLUME)
# on DIR, unmounted at exit (lazily if a file is still open).  The mount is
# an oracle: it must read what another client (gvmd, QEMU) wrote and closed,
# at once, with no wait.  So nothing on its path caches: the kernel keeps
# no attributes, entries or pages (timeouts 0, direct I/O, no keep-cache),
# and the mount's own gluster graph runs its performance translators in
# pass-through, as gvmd's connection does (store-gluster.c, "Coherence").
GLUSTER_NOCACHE_XLATOR_OPTS=('*-md-cache.pass-through=true' '*-io-cache.pass-through=true'
    '*-read-ahead.pass-through=true' '*-readdir-ahead.pass-through=true'
    '*-nl-cache.pass-through=true' '*-open-behind.pass-through=true'
    '*-quick-read.max-file-size=0' '*-write-behind.flush-behind=off')
gluster_fuse_mount() {
    need glusterfs
    mkdir -p "$1"
    local o xo=()
    for o in "${GLUSTER_NOCACHE_XLATOR_OPTS[@]}"; do xo+=("--xlator-option=$o"); done
    glusterfs --volfile-server="$GLUSTER_HOST" --volfile-id="${2:-$GLUSTER_VOLUME}" \
        --fopen-keep-cache=off --attribute-timeout=0 --entry-timeout=0 \
        --negative-timeout=0 --direct-io-mode=enable "${xo[@]}" \
        --log-file="$TEST_TMP/fuse-$(basename "$1").log" "$1" ||
        fail "could not FUSE-mount ${2:-$GLUSTER_VOLUME}"
    at_exit "umount '$1' 2>/dev/null || umount -l '$1' 2>/dev/null"
    i=0
    while ! mountpoint -q "$1"; do
        i=$((i+1)); [ $i -lt 100 ] || fail "FUSE mount of $GLUSTER_VOLUME did not appear"
        sleep 0.1
    done
}

# gfapi_oracle CMD...: run a qemu-img or qemu-io command that reaches
# gluster through its own libgfapi (a gluster:// URI).  gfapi 10.3's client
# in a short-lived process sometimes dies while it connects (SIGSEGV) or
# refuses a brick ("volume-id changed ... Needs remount") and then cannot
# open the image: the oracle failed before it read anything, so it is run
# again (3 tries), saying so.  Any other outcome is returned as it is;
# qemu's own messages go to stderr, gluster's log lines do not.
gfapi_oracle() {
    local try rc err=$TEST_TMP/gfapi-oracle.$$.err
    for try in 1 2 3; do
        "$@" 2>"$err"
        rc=$?
        if [ $try -lt 3 ] && { [ $rc -ge 128 ] ||
             { [ $rc -ne 0 ] && grep -q "volume-id changed\|failed to connect" "$err"; }; }; then
            note "$1 through libgfapi failed while connecting (exit $rc): again"
            continue
        fi
        break
    done
    grep -v '^\[' "$err" >&2
    rm -f "$err"
    return $rc
}
# gluster_brick_pids [VOLUME]: pids of the volume's online brick processes
# (glusterfsd), one a line; killing one is a real brick failure.
gluster_brick_pids() {
    "$GVM_TESTDIR/gluster-fixture.sh" brick-pids "${1:-$GLUSTER_VOLUME}"
}

# ---- libvirt --------------------------------------------------------------
# need_libvirt: make a libvirtd with the QEMU driver answer; sets LIBVIRT_URI
# (qemu:///system).  Uses GVM_LIBVIRT_URI from tests/run-all.sh, else a
# running libvirtd, else starts one for this test (tests/libvirt-fixture.sh).
need_libvirt() {
    need virsh qemu-system-x86_64
    if [ -z "${GVM_LIBVIRT_URI:-}" ]; then
        [ "$(id -u)" -eq 0 ] || skip "qemu:///system needs root"
        at_exit "\"\$GVM_TESTDIR/libvirt-fixture.sh\" stop \"\$TEST_TMP/libvirt\""
        _fx_env=$("$GVM_TESTDIR/libvirt-fixture.sh" start "$TEST_TMP/libvirt" $$) ||
            fail "could not start libvirtd"
        eval "$_fx_env"
    fi
    LIBVIRT_URI=$GVM_LIBVIRT_URI
}
# virsh on the test's libvirt connection.
tvirsh() { virsh -q -c "$LIBVIRT_URI" "$@"; }
# libvirt_kill_domain NAME: stop a test domain at once.  `virsh destroy`
# alone waits ~10 s: QEMU, sent SIGTERM, closes its gluster disks and
# glfs_fini takes that long.  The QEMU was started for our domain, so
# SIGKILL it (pid file of qemu:///system) first.
libvirt_kill_domain() {
    _qpid=$(cat "/run/libvirt/qemu/$1.pid" 2>/dev/null) &&
        tr '\0' ' ' 2>/dev/null <"/proc/$_qpid/cmdline" | grep -q -- "-name guest=$1," &&
        kill -KILL "$_qpid" 2>/dev/null
    tvirsh destroy "$1" >/dev/null 2>&1
    return 0
}
# libvirt_define_test_domain NAME DISK-XML: define (not start) a 64 MiB TCG
# domain with no OS whose devices are DISK-XML (one or more <disk>
# elements); it is destroyed and undefined at exit.  SeaBIOS finds nothing
# to boot and the guest idles, which is all block jobs need.
libvirt_define_test_domain() {
    cat >"$TEST_TMP/domain-$1.xml" <<EOX
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
$2
  </devices>
</domain>
EOX
    at_exit "libvirt_kill_domain '$1'; tvirsh undefine '$1' >/dev/null 2>&1"
    tvirsh define "$TEST_TMP/domain-$1.xml" >/dev/null ||
        fail "libvirt refused the test domain $1"
}
