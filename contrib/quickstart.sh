#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# contrib/quickstart.sh — build gvmd and run it on this machine.
#
# As root on Debian 12: installs what building and running gvmd needs (only
# the packages that are missing), builds it in build/ (meson + ninja),
# creates the group gvm, and starts gvmd in the background with its embedded
# defaults: the catalog, the log and the `local` volume (STATE/images) in the
# state directory, the sockets in the run directory.  Run it again to
# restart the daemon it started (found by its pid file).
#
# Environment:
#   GVMD_STATE_DIR  state directory (default /var/lib/gvmd)
#   GVMD_RUN_DIR    socket and pid-file directory (default /run/gvmd)
#   GVMD_LOG_LEVEL  error, warn, info or debug (default info)
#   GVMD_SKIP_APT=1 do not install packages
#   GVMD_BUILDDIR   use the gvmd and gvmctl already built in this meson build
#                   directory instead of building build/
#
# A step that fails says so on stderr: "quickstart: FAILED in step 'STEP':"
# with the command and its exit status, then the end of that step's output
# (apt, meson, ninja or gvmd's log); the exit status is then non-zero.
set -eu

say() { echo "quickstart: $*" >&2; }
# The step under way, and the file its commands' output goes to (if any).
STEP=preflight
STEP_LOG=""
LOGDIR=""
step() { STEP=$1; STEP_LOG=""; }
# fail MESSAGE: name the step that failed and why, show the end of its log,
# exit 1.  Compiler errors are shown from ninja's first FAILED line.
fail() {
    trap - ERR
    say "FAILED in step '$STEP': $*"
    if [ -n "$STEP_LOG" ] && [ -s "$STEP_LOG" ]; then
        say "output of step '$STEP' (full log: $STEP_LOG):"
        { awk '/^FAILED: /{f=1} f' "$STEP_LOG" | head -n 60 | grep . ||
            tail -n 30 "$STEP_LOG"; } | sed 's/^/    /' >&2
    fi
    exit 1
}
die() { fail "$@"; }
# Any other command that fails (set -e) ends up here.
trap 'fail "\`$BASH_COMMAND\` exited with status $?"' ERR
# run NAME CMD...: run CMD with its stdout and stderr in $LOGDIR/NAME.log.
run() {
    local name=$1
    shift
    STEP_LOG=$LOGDIR/$name.log
    "$@" >>"$STEP_LOG" 2>&1 || fail "\`$*\` exited with status $?"
}
# The logs of the steps are removed after a successful run, kept otherwise.
LOGDIR=$(mktemp -d /tmp/gvmd-quickstart.XXXXXX)
trap '[ $? -ne 0 ] || rm -rf "$LOGDIR" || :' EXIT

SRC=$(cd "$(dirname "$0")/.." && pwd)
STATE=${GVMD_STATE_DIR:-/var/lib/gvmd}
RUN=${GVMD_RUN_DIR:-/run/gvmd}
PIDFILE=$RUN/gvmd.pid
SOCK=$RUN/gvmd.sock
RO_SOCK=$RUN/gvmd-ro.sock

[ "$(id -u)" -eq 0 ] || die "run me as root (I install packages, create the group gvm and $RUN)."

# ---- packages -------------------------------------------------------------
# Build dependencies only (the unit tests' cmocka is not needed).  uuid-dev:
# Debian's glusterfs-api.pc requires uuid.pc, and libglusterfs-dev does not
# pull it in.
PACKAGES="meson ninja-build pkg-config gcc libc6-dev libglusterfs-dev uuid-dev libjansson-dev
    libevent-dev libsqlite3-dev libvirt-dev libxml2-dev zlib1g-dev passwd procps util-linux"
step packages
if [ "${GVMD_SKIP_APT:-0}" != 1 ]; then
    missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        say "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        run apt apt-get update -qq
        # shellcheck disable=SC2086
        run apt apt-get install -y -qq --no-install-recommends $missing
    fi
fi

# ---- build ----------------------------------------------------------------
if [ -n "${GVMD_BUILDDIR:-}" ]; then
    step build
    BUILD=$(cd "$GVMD_BUILDDIR" && pwd)
else
    BUILD=$SRC/build
    step configure
    [ -f "$BUILD/build.ninja" ] || run meson-setup meson setup "$BUILD" "$SRC"
    step build
    run ninja ninja -C "$BUILD"
fi
GVMD=$BUILD/gvmd/gvmd
GVMCTL=$BUILD/client/gvmctl
[ -x "$GVMD" ] && [ -x "$GVMCTL" ] || die "no gvmd/gvmctl in $BUILD"

# ---- group, directories -----------------------------------------------------
# Members of gvm may use the read-write socket (gvmd makes it 0660 root:gvm);
# anyone may use the read-only one (0666), so the run directory is open to
# all.  (Where systemd runs, contrib/systemd/gvmd.sysusers.conf and
# gvmd.tmpfiles.conf do the same.)
step directories
groupadd -f gvm
mkdir -p "$STATE" "$RUN"
chmod 0750 "$STATE"
chgrp gvm "$RUN"
chmod 0755 "$RUN"

# ---- (re)start ------------------------------------------------------------
# Only a process that is gvmd on our socket counts: a pid file can outlive
# its process and the pid be reused.
step restart
if [ -f "$PIDFILE" ]; then
    old=$(cat "$PIDFILE")
    if [ -n "$old" ] && tr '\0' ' ' 2>/dev/null <"/proc/$old/cmdline" | grep -q -- "--socket $SOCK "; then
        say "stopping the gvmd started earlier (pid $old)"
        kill -TERM "$old" 2>/dev/null || :     # it may just have exited
        i=0
        while kill -0 "$old" 2>/dev/null; do
            i=$((i+1))
            [ $i -lt 300 ] || { kill -KILL "$old"; say "pid $old ignored SIGTERM for 30 s: killed"; break; }
            sleep 0.1
        done
    fi
    rm -f "$PIDFILE"
fi
if "$GVMCTL" --socket "$SOCK" query-version >/dev/null 2>&1; then
    die "another gvmd (not started by this script) answers on $SOCK; stop it first."
fi

step start
LOG=$STATE/gvmd.log
# setsid: the daemon leaves this script's session and survives its end.
# Its stdout/stderr go to the log (gvmd logs to stderr in the foreground).
# Without libvirtd on this machine, say so: gvmd would otherwise refuse
# every write, unable to tell whether a running guest uses the image.
LIBVIRT_OPT=
if ! command -v libvirtd >/dev/null 2>&1; then
    LIBVIRT_OPT="--libvirt-uri none"
    say "no libvirtd installed: gvmd runs without libvirt (--libvirt-uri none)"
fi
# shellcheck disable=SC2086 # LIBVIRT_OPT is two words or none
setsid "$GVMD" --foreground --socket "$SOCK" --ro-socket "$RO_SOCK" \
    --catalog "$STATE/catalog.db" --state-dir "$STATE" $LIBVIRT_OPT \
    --log-level "${GVMD_LOG_LEVEL:-info}" </dev/null >>"$LOG" 2>&1 &
pid=$!
echo "$pid" >"$PIDFILE"

i=0
until "$GVMCTL" --socket "$SOCK" query-version >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$PIDFILE"; STEP_LOG=$LOG; die "gvmd exited during start-up (log: $LOG)"
    fi
    i=$((i+1))
    if [ $i -ge 300 ]; then
        kill -TERM "$pid" 2>/dev/null || :; rm -f "$PIDFILE"
        STEP_LOG=$LOG; die "gvmd did not answer within 30 s (log: $LOG)"
    fi
    sleep 0.1
done
version=$("$GVMCTL" --socket "$SOCK" --json query-version | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p')

cat <<EOF
gvmd $version is running.
  pid:              $pid   (stop: kill $pid; restart: run $0 again)
  socket:           $SOCK   (read-write: root and group gvm)
  read-only socket: $RO_SOCK
  state directory:  $STATE   (catalog $STATE/catalog.db, log $LOG)
  local volume:     'local' = $STATE/images
  gvmctl:           $GVMCTL

Try:
  $GVMCTL --socket $SOCK query-version
  $GVMCTL --socket $SOCK volume-list
  $GVMCTL --socket $SOCK volume-info --name local
EOF
