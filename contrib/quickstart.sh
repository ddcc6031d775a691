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
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
STATE=${GVMD_STATE_DIR:-/var/lib/gvmd}
RUN=${GVMD_RUN_DIR:-/run/gvmd}
PIDFILE=$RUN/gvmd.pid
SOCK=$RUN/gvmd.sock
RO_SOCK=$RUN/gvmd-ro.sock

say() { echo "quickstart: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run me as root (I install packages, create the group gvm and $RUN)."

# ---- packages -------------------------------------------------------------
PACKAGES="meson ninja-build pkg-config gcc libc6-dev libglusterfs-dev libjansson-dev
    libevent-dev libsqlite3-dev libvirt-dev libxml2-dev zlib1g-dev passwd procps util-linux"
if [ "${GVMD_SKIP_APT:-0}" != 1 ]; then
    missing=""
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        say "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
fi

# ---- build ----------------------------------------------------------------
if [ -n "${GVMD_BUILDDIR:-}" ]; then
    BUILD=$(cd "$GVMD_BUILDDIR" && pwd)
else
    BUILD=$SRC/build
    [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$SRC" >/dev/null
    ninja -C "$BUILD" >/dev/null || { ninja -C "$BUILD"; die "the build failed"; }
fi
GVMD=$BUILD/gvmd/gvmd
GVMCTL=$BUILD/client/gvmctl
[ -x "$GVMD" ] && [ -x "$GVMCTL" ] || die "no gvmd/gvmctl in $BUILD"

# ---- group, directories -----------------------------------------------------
# Members of gvm may use the read-write socket (gvmd makes it 0660 root:gvm);
# anyone may use the read-only one (0666), so the run directory is open to
# all.  (Where systemd runs, contrib/systemd/gvmd.sysusers.conf and
# gvmd.tmpfiles.conf do the same.)
groupadd -f gvm
mkdir -p "$STATE" "$RUN"
chmod 0750 "$STATE"
chgrp gvm "$RUN"
chmod 0755 "$RUN"

# ---- (re)start ------------------------------------------------------------
# Only a process that is gvmd on our socket counts: a pid file can outlive
# its process and the pid be reused.
if [ -f "$PIDFILE" ]; then
    old=$(cat "$PIDFILE")
    if [ -n "$old" ] && tr '\0' ' ' 2>/dev/null <"/proc/$old/cmdline" | grep -q -- "--socket $SOCK "; then
        say "stopping the gvmd started earlier (pid $old)"
        kill -TERM "$old"
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

LOG=$STATE/gvmd.log
# setsid: the daemon leaves this script's session and survives its end.
# Its stdout/stderr go to the log (gvmd logs to stderr in the foreground).
setsid "$GVMD" --foreground --socket "$SOCK" --ro-socket "$RO_SOCK" \
    --catalog "$STATE/catalog.db" --state-dir "$STATE" \
    --log-level "${GVMD_LOG_LEVEL:-info}" </dev/null >>"$LOG" 2>&1 &
pid=$!
echo "$pid" >"$PIDFILE"

i=0
until "$GVMCTL" --socket "$SOCK" query-version >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 20 "$LOG" >&2; rm -f "$PIDFILE"; die "gvmd exited during start-up (log: $LOG)"
    fi
    i=$((i+1))
    if [ $i -ge 300 ]; then
        tail -n 20 "$LOG" >&2; kill -TERM "$pid"; rm -f "$PIDFILE"
        die "gvmd did not answer within 30 s (log: $LOG)"
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
