#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/run-all.sh [--bench] — build gvmd and run the whole test suite.
#
# As root on Debian 12 (what CI runs, through .ci/run):
#   1. installs the packages the build and the suite need (only missing ones);
#   2. builds build/ (plain) and build-san/ (ASan+UBSan), both -Dwerror=true
#      and -Dfault_injection=true, inside the source tree (git-ignored);
#   3. starts one GlusterFS volume (tests/gluster-fixture.sh) and one libvirtd
#      (tests/libvirt-fixture.sh) for the whole run and exports their env;
#   4. runs every test on the sanitizer build and the unit and security
#      tests on the plain build (every test there too with
#      GVM_PLAIN_SUITE=all, or when the sanitizer build failed);
#   5. with --bench, runs tests/bench/*.sh on the plain build;
#   6. stops the fixtures (also on failure or interrupt), prints the logs of
#      the failed tests, and last the line "N passed, N failed, N skipped".
# Exit status 0 iff nothing failed.
#
# Environment: GVM_TEST_JOBS (parallel tests, default 4: most integration
# tests wait on gluster or qemu rather than use CPU), GVM_PLAIN_SUITE
# (unit|all, default unit).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
cd "$SRC" || exit 1
BENCH=0
for a in "$@"; do
    case $a in
        --bench) BENCH=1 ;;
        -h|--help) sed -n '3,/^set -u/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
        *) echo "run-all: unknown argument $a (try --help)" >&2; exit 2 ;;
    esac
done
T0=$(date +%s)
JOBS=${GVM_TEST_JOBS:-4}
PLAIN_SUITE=${GVM_PLAIN_SUITE:-unit}

PASSED=0 FAILED=0 SKIPPED=0
WORK=$(mktemp -d /tmp/gvm-run-all.XXXXXX)
FAILURES=$WORK/failures.txt
: >"$FAILURES"

say() { echo "run-all: [$(( $(date +%s) - T0 )) s] $*" >&2; }
# record_failure NAME TEXT-FILE: count a failure that is not a meson test.
record_failure() {
    FAILED=$((FAILED + 1))
    { echo "==== $1"; tail -n 60 "$2"; } >>"$FAILURES"
}
summary() {
    if [ -s "$FAILURES" ]; then
        echo "======== failures ========"
        cat "$FAILURES"
        echo "=========================="
    fi
    echo "run-all: wall time $(( $(date +%s) - T0 )) s"
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
}

if [ "$(id -u)" -ne 0 ]; then
    echo "run-all needs root (packages, glusterd bricks, qemu:///system)." >"$WORK/root"
    record_failure "run-all" "$WORK/root"; summary; exit 1
fi

# ---- 1. packages ------------------------------------------------------------
PACKAGES="meson ninja-build pkg-config gcc libc6-dev libglusterfs-dev uuid-dev libjansson-dev
    libevent-dev libsqlite3-dev libvirt-dev libcmocka-dev zlib1g-dev glusterfs-server
    qemu-utils qemu-block-extra libvirt-daemon libvirt-daemon-driver-qemu
    libvirt-daemon-driver-storage-gluster
    libvirt-clients qemu-system-x86 clang libclang-rt-14-dev jq util-linux procps passwd
    libxml2-dev libxml2-utils python3 bc sqlite3 xxd systemd glusterfs-client debootstrap git"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } \
            >"$WORK/apt.log" 2>&1; then
        record_failure "package installation" "$WORK/apt.log"; summary; exit 1
    fi
fi

# ---- 2. build ---------------------------------------------------------------
# build_tree DIR OPTIONS...: configure (or reconfigure to OPTIONS) and build.
build_tree() {
    local dir=$1; shift
    say "building $dir ($*)"
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >"$WORK/build-$dir.log" 2>&1
    else
        meson setup "$dir" "$SRC" "$@" >"$WORK/build-$dir.log" 2>&1
    fi && ninja -C "$dir" >>"$WORK/build-$dir.log" 2>&1 && return 0
    # The compiler's complaint, not meson's preamble.
    sed -n '/^FAILED\|ERROR/,$p' "$WORK/build-$dir.log" | head -n 80 >"$WORK/build-$dir.err"
    [ -s "$WORK/build-$dir.err" ] || tail -n 60 "$WORK/build-$dir.log" >"$WORK/build-$dir.err"
    record_failure "build of $dir" "$WORK/build-$dir.err"
    return 1
}
BUILT=""
# Both are test builds: fault injection (GVMD_FAULT) compiled in.
build_tree build -Dwerror=true -Dfault_injection=true && BUILT="$BUILT build"
build_tree build-san -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true \
    -Dfault_injection=true &&
    BUILT="$BUILT build-san"

# ---- 3. fixtures ------------------------------------------------------------
stop_fixtures() {
    [ -d "$WORK/gluster" ] && tests/gluster-fixture.sh stop "$WORK/gluster"
    [ -d "$WORK/libvirt" ] && tests/libvirt-fixture.sh stop "$WORK/libvirt"
    return 0
}
trap 'stop_fixtures; rm -rf "$WORK"' EXIT
trap 'say "interrupted"; exit 130' INT TERM

# start_fixture NAME: run tests/NAME-fixture.sh start and export its env.
start_fixture() {
    local out
    say "starting the $1 fixture"
    if out=$("tests/$1-fixture.sh" start "$WORK/$1" $$ 2>"$WORK/$1-fixture.log"); then
        eval "$out"
        cat "$WORK/$1-fixture.log" >&2
        printf '%s\n' "$out" | sed 's/^/run-all: /' >&2
    else
        record_failure "$1 fixture" "$WORK/$1-fixture.log"
    fi
}
if [ -n "$BUILT" ]; then
    start_fixture gluster
    start_fixture libvirt
fi

# ---- 4. tests ---------------------------------------------------------------
# count_run DIR: add the results of the last `meson test` in DIR and keep
# the output of the failed tests.
JQ_DEFS='def failed: .result | IN("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS");
         def passed: .result | IN("OK", "EXPECTEDFAIL");'
count_run() {
    local log=$1/meson-logs/testlog.json p f s
    if [ ! -s "$log" ]; then
        echo "meson test wrote no $log" >"$WORK/nolog"
        record_failure "meson test in $1" "$WORK/nolog"
        return
    fi
    read -r p f s < <(jq -rs "$JQ_DEFS"'
        [map(select(passed)), map(select(failed)), map(select(.result == "SKIP"))]
        | map(length) | @tsv' "$log")
    PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + s))
    jq -r --arg dir "$1" "$JQ_DEFS"'select(failed)
        | "==== \($dir): \(.name) — \(.result) (exit \(.returncode), \(.duration | floor) s)\n"
          + ((.stdout // "") + "\n" + (.stderr // "") | split("\n") | .[-60:] | join("\n"))' \
        "$log" >>"$FAILURES"
}
# run_meson_test DIR ARGS...
run_meson_test() {
    local dir=$1; shift
    say "meson test in $dir${*:+ ($*)}"
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --num-processes "$JOBS" "$@"
    count_run "$dir"
}
case " $BUILT " in *" build-san "*)
    # Sanitized code runs a few times slower.
    run_meson_test build-san --timeout-multiplier 2 ;;
esac
case " $BUILT " in *" build-san "*) ;; *)
    PLAIN_SUITE=all ;;           # no sanitizer build: everything on the plain one
esac
case " $BUILT " in *" build "*)
    if [ "$PLAIN_SUITE" = all ]; then run_meson_test build
    else run_meson_test build --suite unit --suite security; fi ;;
esac

# ---- 5. benchmarks ----------------------------------------------------------
if [ "$BENCH" = 1 ]; then
    case " $BUILT " in *" build "*)
        for b in tests/bench/*.sh; do
            [ -f "$b" ] || continue
            name=bench/$(basename "$b" .sh)
            say "running $name"
            GVMD=$SRC/build/gvmd/gvmd GVMCTL=$SRC/build/client/gvmctl GVM_SRCDIR=$SRC \
                GVM_BUILDDIR=$SRC/build GVM_TESTDIR=$SRC/tests GVM_TOOLSDIR=$SRC/build/tests/tools \
                bash "$b" 2>&1 | tee "$WORK/bench.log"
            rc=${PIPESTATUS[0]}
            case $rc in
                0) PASSED=$((PASSED + 1)) ;;
                77) SKIPPED=$((SKIPPED + 1)) ;;
                *) record_failure "$name (exit $rc)" "$WORK/bench.log" ;;
            esac
        done ;;
    esac
fi

# ---- 6. summary -------------------------------------------------------------
stop_fixtures
rm -rf "$WORK/gluster" "$WORK/libvirt"
summary
[ "$FAILED" -eq 0 ]
