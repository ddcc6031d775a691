#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-fresh-machine.sh — the README's quick start on a fresh Debian 12.
#
# Builds a minimal Debian 12 root (debootstrap --variant=minbase bookworm,
# from the mirror this machine's apt uses), bind-mounts /proc, /dev,
# /dev/pts and /sys into it, copies the git-tracked files of the work tree
# into /root/gvmd there and runs, as root in a clean environment inside
# chroot, exactly the README's command: `contrib/quickstart.sh` from the
# checkout.  The quick start has to install every package it needs itself
# (the root has none of them, not even cmocka), build without test-only
# packages, and start a gvmd whose `gvmctl query-version` (the path it
# printed) answers inside the chroot.  That gvmd is then stopped by the pid
# it printed, and the quick start is run again with one step made to fail
# (apt, meson setup, ninja, a build directory without binaries): each time
# it must exit non-zero and name the failing step and command on stderr.
# Everything is unmounted and the root removed at exit, also on failure.
#
# Skipped (77) only where debootstrap cannot run: not root, no debootstrap,
# or the mirror cannot be reached.  The .debs debootstrap fetches are kept
# in /var/cache/gvmd-tests/debootstrap/<suite>-<variant>-<arch>-<mirror hash>
# (debootstrap checks each cached .deb against the signed index before it
# uses it); what the quick start installs is always downloaded by apt.
. "$GVM_TESTDIR/lib.sh"

SUITE=bookworm
VARIANT=minbase
[ "$(id -u)" -eq 0 ] || skip "debootstrap, mount and chroot need root"
command -v debootstrap >/dev/null 2>&1 ||
    skip "debootstrap is not installed (apt-get install debootstrap; tests/run-all.sh does)"
need chroot mount umount flock timeout sha256sum
git -C "$GVM_SRCDIR" rev-parse --is-inside-work-tree >/dev/null ||
    fail "$GVM_SRCDIR is not a git checkout: the test copies its git-tracked files"

# ---- time bounds ---------------------------------------------------------
# meson kills the test 900 s after its start, with SIGKILL 0.5 s after
# SIGTERM: too soon to unmount and remove the root.  So every long step is
# bounded, all of them together by DEADLINE, leaving time to clean up.
DEADLINE=$((SECONDS + 780))
# bound CAP: CAP seconds, or what is left before DEADLINE if that is less.
bound() {
    local left=$((DEADLINE - SECONDS))
    [ "$left" -ge 10 ] || left=10
    if [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}
# bounded CAP CMD...: CMD, killed after `bound CAP` seconds (exit 124).
# It runs as a job the shell waits for, so a SIGTERM to the test runs the
# clean-up at once (bash runs traps only between commands).
bounded() {
    timeout "$(bound "$1")" "${@:2}" &
    wait $!
}

# ---- the mirror -------------------------------------------------------------
# mirror_uri: the URI of the first apt source of this machine that serves
# $SUITE (deb822 debian.sources, else the one-line sources.list format).
mirror_uri() {
    local f=/etc/apt/sources.list.d/debian.sources
    if [ -f "$f" ]; then
        awk -v suite="$SUITE" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "")
                    { print uri; found = 1; exit }
                types = suites = uri = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            tolower($1) == "types:"  { $1 = ""; types = $0 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            tolower($1) == "uris:"   { uri = $2 }
            END { if (!found) flush() }' "$f" | sed 's,/*$,,' | head -n 1
        return
    fi
    f=/etc/apt/sources.list
    [ -f "$f" ] || return 0
    sed -n "s,^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) $SUITE .*,\2,p" "$f" | sed 's,/*$,,' | head -n 1
}
MIRROR=$(mirror_uri)
[ -n "$MIRROR" ] || skip "no apt source for $SUITE in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
# apt's own downloader, as on any Debian: is the mirror there?
if ! bounded 60 /usr/lib/apt/apt-helper -o Acquire::http::Timeout=20 \
        download-file "$MIRROR/dists/$SUITE/InRelease" "$TEST_TMP/InRelease" \
        >"$TEST_TMP/mirror-check.log" 2>&1 || ! grep -q "^Suite: *$SUITE\|^Codename: *$SUITE" "$TEST_TMP/InRelease"; then
    cat "$TEST_TMP/mirror-check.log" >&2
    skip "the mirror $MIRROR cannot be reached (no $MIRROR/dists/$SUITE/InRelease)"
fi
note "mirror: $MIRROR"

# ---- clean-up (registered before anything is mounted) ----------------------
ROOT=$TEST_TMP/root
# pids_in_root DIR: processes whose root directory is DIR (a chroot of
# this test: only it puts processes there).
pids_in_root() {
    local d
    for d in /proc/[0-9]*; do
        [ "$(readlink "$d/root" 2>/dev/null)" = "$1" ] && echo "${d#/proc/}"
    done
    return 0
}
# mounts_in_root DIR: mount points under DIR, deepest first.
mounts_in_root() {
    awk -v r="$1/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
# remove_root DIR: stop the processes in the chroot DIR, unmount what is
# mounted under it and remove it (never across a file system boundary).
remove_root() {
    local p m
    [ -d "$1" ] || return 0
    for p in $(pids_in_root "$1"); do
        note "stopping pid $p left in the chroot: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
        kill_pid "$p"
    done
    for m in $(mounts_in_root "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
    if [ -n "$(mounts_in_root "$1")" ]; then
        echo "FAIL: still mounted, $1 not removed: $(mounts_in_root "$1" | tr '\n' ' ')" >&2
        return 1
    fi
    rm -rf --one-file-system "$1"
}
# A run that was SIGKILLed (a meson timeout) could not clean up: its root,
# with /dev and /proc still bind-mounted, is a trap for the next
# `rm -rf /tmp/*`.  Remove the roots whose test process is gone.
for old in /tmp/gvmtest.test-fresh-machine.*/root; do
    [ -d "$old" ] || continue
    owner=$(cat "${old%/root}/owner" 2>/dev/null)
    [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null && continue
    note "removing the root of an earlier run that was killed: $old"
    remove_root "$old" || fail "cannot remove $old"
done
echo $$ >"$TEST_TMP/owner"
at_exit 'remove_root "$ROOT" || _test_failed=1'

# in_root CMD...: run CMD in the chroot as root in a login-like clean
# environment (nothing of this test's environment leaks in), bounded by
# IN_ROOT_TIMEOUT seconds.
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
IN_ROOT_TIMEOUT=120
in_root() {
    bounded "$IN_ROOT_TIMEOUT" chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb \
        PATH="$CHROOT_PATH" "$@"
}
# show FILE LABEL: put FILE into the test log, each line prefixed.
show() { sed "s/^/$2 | /" "$1" >&2; }

# ---- 1. a minimal Debian 12 -------------------------------------------------
ARCH=$(dpkg --print-architecture)
CACHE=/var/cache/gvmd-tests/debootstrap/$SUITE-$VARIANT-$ARCH-$(printf '%s' "$MIRROR" | sha256sum | cut -c1-12)
mkdir -p "$CACHE"
t0=$SECONDS
# The lock: two runs must not write the same cached .deb at once.
if ! bounded 420 flock -w "$(bound 120)" "$CACHE" debootstrap --variant="$VARIANT" --arch="$ARCH" \
        --cache-dir="$CACHE" "$SUITE" "$ROOT" "$MIRROR" >"$TEST_TMP/debootstrap.log" 2>&1; then
    tail -n 40 "$TEST_TMP/debootstrap.log" >&2
    [ -f "$ROOT/debootstrap/debootstrap.log" ] && tail -n 40 "$ROOT/debootstrap/debootstrap.log" >&2
    fail "debootstrap $SUITE from $MIRROR failed"
fi
note "debootstrap --variant=$VARIANT $SUITE: $((SECONDS - t0)) s (.deb cache $CACHE)"
# The machine's apt sources (the same mirror, with its -updates and
# -security suites), as a fresh machine of this kind has them.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$ROOT/etc/apt/sources.list.d/"
    rm -f "$ROOT/etc/apt/sources.list"
else
    cp /etc/apt/sources.list "$ROOT/etc/apt/sources.list"
fi
for m in proc dev dev/pts sys; do
    mount --bind "/$m" "$ROOT/$m" || fail "cannot bind-mount /$m into $ROOT"
    mount --make-private "$ROOT/$m" || fail "cannot make $ROOT/$m private"
done
# Really fresh: none of the build packages, not even the unit tests' cmocka.
for p in meson gcc libglusterfs-dev libcmocka-dev; do
    in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' &&
        fail "the fresh root already has $p"
done

# ---- 2. the checkout: git-tracked files of the work tree --------------------
SRC_IN_ROOT=/root/gvmd
# copy_checkout DIR: the tracked files (as they are in the work tree, so
# uncommitted changes are tested too; no build directories) into DIR.
copy_checkout() {
    mkdir -p "$ROOT$1"
    git -C "$GVM_SRCDIR" ls-files -z --cached |
        while IFS= read -r -d '' f; do
            if [ -e "$GVM_SRCDIR/$f" ] || [ -L "$GVM_SRCDIR/$f" ]; then printf '%s\0' "$f"; fi
        done | tar -C "$GVM_SRCDIR" --null -T - -cf - | tar -C "$ROOT$1" -xf -
}
copy_checkout "$SRC_IN_ROOT" || fail "cannot copy the checkout into the root"
[ -x "$ROOT$SRC_IN_ROOT/contrib/quickstart.sh" ] || fail "no contrib/quickstart.sh in the copy"
[ ! -e "$ROOT$SRC_IN_ROOT/build" ] || fail "a build directory was copied"

# ---- 3. the README's first command, as written -------------------------------
readme_cmd=$(awk '/^## Quick start/ { q = 1 } q && /^```sh/ { getline; print; exit }' "$GVM_SRCDIR/README.md")
assert_eq "contrib/quickstart.sh" "$readme_cmd" "the README's first quick-start command"
t0=$SECONDS
IN_ROOT_TIMEOUT=480 in_root /bin/bash -c "cd $SRC_IN_ROOT && $readme_cmd" \
    >"$TEST_TMP/qs.out" 2>"$TEST_TMP/qs.err"
rc=$?
note "quick start ($readme_cmd in the chroot): exit $rc after $((SECONDS - t0)) s; its output:"
show "$TEST_TMP/qs.err" "quickstart stderr"
show "$TEST_TMP/qs.out" "quickstart stdout"
[ "$rc" -eq 0 ] || fail "the quick start failed on a fresh Debian 12 (exit $rc)"

grep -q '^gvmd [0-9][0-9.]* is running\.$' "$TEST_TMP/qs.out" ||
    check_fail "the quick start did not say that gvmd is running"
grep -q '^quickstart: installing:.* uuid-dev' "$TEST_TMP/qs.err" ||
    check_fail "the quick start did not install uuid-dev itself"
grep -q 'FAILED' "$TEST_TMP/qs.err" && check_fail "a successful quick start reported a failure"
version=$(sed -n 's/^gvmd \([^ ]*\) is running\.$/\1/p' "$TEST_TMP/qs.out")
pid=$(sed -n 's/^ *pid: *\([0-9][0-9]*\) .*/\1/p' "$TEST_TMP/qs.out")
sock=$(sed -n 's/^ *socket: *\([^ ]*\).*/\1/p' "$TEST_TMP/qs.out")
ctl=$(sed -n 's/^ *gvmctl: *\([^ ]*\).*/\1/p' "$TEST_TMP/qs.out")
[ -n "$pid" ] && [ -n "$sock" ] && [ -n "$ctl" ] ||
    fail "the quick start did not print the pid, socket and gvmctl (pid '$pid', socket '$sock', gvmctl '$ctl')"
assert_eq "$SRC_IN_ROOT/build/client/gvmctl" "$ctl" "the gvmctl the quick start printed"
assert_eq "$pid" "$(cat "$ROOT/run/gvmd/gvmd.pid" 2>/dev/null)" "the pid file"
# That pid is a gvmd running inside our root.
kill -0 "$pid" 2>/dev/null || fail "no process $pid (the pid the quick start printed)"
assert_eq "$ROOT" "$(readlink "/proc/$pid/root")" "root directory of pid $pid"
assert_match "^$SRC_IN_ROOT/build/gvmd/gvmd --foreground --socket $sock " \
    "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "command line of pid $pid"

# gvmctl, as printed, answers inside the chroot (no libvirtd, no glusterd
# and no systemd there: gvmd connects to libvirt only when a method needs it).
in_root "$ctl" --socket "$sock" query-version >"$TEST_TMP/version.out" 2>&1 ||
    { cat "$TEST_TMP/version.out" >&2; fail "gvmctl query-version does not answer in the chroot"; }
show "$TEST_TMP/version.out" "gvmctl query-version"
assert_match "^version: +$version\$" "$(grep '^version:' "$TEST_TMP/version.out")" "query-version's version"
assert_match "^protocol: +1\$" "$(grep '^protocol:' "$TEST_TMP/version.out")" "query-version's protocol"
in_root "$ctl" --socket "$sock" volume-list >"$TEST_TMP/volumes.out" 2>&1 ||
    check_fail "gvmctl volume-list failed: $(cat "$TEST_TMP/volumes.out")"
grep -qw local "$TEST_TMP/volumes.out" || check_fail "no 'local' volume: $(cat "$TEST_TMP/volumes.out")"

# Built without cmocka: the unit tests were left out, not failed.
in_root dpkg-query -W -f='${Status}' libcmocka-dev 2>/dev/null | grep -q 'install ok installed' &&
    check_fail "the quick start installed libcmocka-dev (a test-only package)"
grep -q 'cmocka not found: the unit tests are not built' \
    "$ROOT$SRC_IN_ROOT/build/meson-logs/meson-log.txt" ||
    check_fail "meson setup did not say it left the unit tests out"
[ -e "$ROOT$SRC_IN_ROOT/build/tests/test-sha256" ] && check_fail "a unit test was built without cmocka"

# Stop it by the printed pid, inside the chroot, and see it go.
in_root /bin/bash -c "kill $pid" || fail "kill $pid in the chroot failed"
i=0
while kill -0 "$pid" 2>/dev/null; do
    i=$((i+1)); [ $i -lt 300 ] || fail "gvmd (pid $pid) ignored SIGTERM for 30 s"; sleep 0.1
done
in_root "$ctl" --socket "$sock" query-version >/dev/null 2>&1 &&
    check_fail "something still answers on $sock after kill $pid"
grep -q 'ready' "$ROOT/var/lib/gvmd/gvmd.log" || check_fail "gvmd.log does not show the daemon ready"
[ -z "$(pids_in_root "$ROOT")" ] ||
    check_fail "processes left in the chroot: $(pids_in_root "$ROOT" | tr '\n' ' ')"

# ---- 4. a failing step says what failed -------------------------------------
# fake NAME EXIT LINE...: a command NAME in /root/fail-bin that prints the
# lines on stderr and exits EXIT.
fake() {
    local name=$1 rc=$2
    shift 2
    mkdir -p "$ROOT/root/fail-bin"
    { echo '#!/bin/sh'; for l in "$@"; do printf "echo '%s' >&2\n" "$l"; done; echo "exit $rc"; } \
        >"$ROOT/root/fail-bin/$name"
    chmod +x "$ROOT/root/fail-bin/$name"
}
# failing_run LABEL DIR STEP CMD-REGEX EXPECTED-OUTPUT [VAR=VALUE...]: run the
# quick start from DIR with /root/fail-bin first in PATH; it must fail,
# print nothing on stdout, and its stderr must name STEP and the command and
# show EXPECTED-OUTPUT (the failing command's own last words).
failing_run() {
    local label=$1 dir=$2 step=$3 cmd=$4 expect=$5 rc
    shift 5
    in_root /usr/bin/env PATH="/root/fail-bin:$CHROOT_PATH" "$@" \
        /bin/bash -c "cd $dir && contrib/quickstart.sh" \
        >"$TEST_TMP/fail.out" 2>"$TEST_TMP/fail.err"
    rc=$?
    note "quick start with $label: exit $rc"
    show "$TEST_TMP/fail.err" "$label"
    [ "$rc" -ne 0 ] || check_fail "$label: the quick start exited 0"
    [ "$rc" -ne 124 ] || check_fail "$label: the quick start hung"
    [ -s "$TEST_TMP/fail.out" ] && check_fail "$label: output on stdout: $(cat "$TEST_TMP/fail.out")"
    grep -q "^quickstart: FAILED in step '$step': .*$cmd" "$TEST_TMP/fail.err" ||
        check_fail "$label: stderr does not name step '$step' and /$cmd/"
    grep -qF -- "$expect" "$TEST_TMP/fail.err" ||
        check_fail "$label: stderr does not show the failing command's output '$expect'"
    rm -rf "$ROOT/root/fail-bin"
    [ -z "$(pids_in_root "$ROOT")" ] ||
        check_fail "$label: processes left in the chroot: $(pids_in_root "$ROOT" | tr '\n' ' ')"
}
# apt: every package looks missing and apt-get cannot reach its mirror.
fake dpkg-query 1
fake apt-get 100 "E: simulated: Unable to fetch some archives"
failing_run "apt-get failing" "$SRC_IN_ROOT" packages '`apt-get update -qq` exited with status 100' \
    "E: simulated: Unable to fetch some archives"
# meson setup, in a second checkout without a build directory.
copy_checkout /root/gvmd-fresh || fail "cannot copy the checkout again"
fake meson 1 "meson.build:1:0: ERROR: simulated configure failure"
failing_run "meson failing" /root/gvmd-fresh configure \
    "\`meson setup /root/gvmd-fresh/build /root/gvmd-fresh\` exited with status 1" \
    "ERROR: simulated configure failure"
# ninja: the compiler's complaint is shown.
fake ninja 1 "FAILED: gvmd/gvmd.p/main.c.o" "main.c:1:1: error: simulated compile error" \
    "ninja: build stopped: subcommand failed."
failing_run "ninja failing" "$SRC_IN_ROOT" build "\`ninja -C $SRC_IN_ROOT/build\` exited with status 1" \
    "main.c:1:1: error: simulated compile error"
# GVMD_BUILDDIR naming an empty directory.
mkdir -p "$ROOT/root/empty-build"
failing_run "GVMD_BUILDDIR empty" "$SRC_IN_ROOT" build "no gvmd/gvmctl in /root/empty-build" \
    "no gvmd/gvmctl" GVMD_SKIP_APT=1 GVMD_BUILDDIR=/root/empty-build
note "fresh machine: $SECONDS s in all before the clean-up"
exit 0
