#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/libvirt-fixture.sh — a libvirtd with the QEMU driver (TCG) for the tests.
#
#   libvirt-fixture.sh start DIR [OWNER-PID]   make qemu:///system answer; print env
#   libvirt-fixture.sh env DIR                 print that env again
#   libvirt-fixture.sh stop DIR                release it (stop it if we were last)
#
# A libvirtd that already answers `virsh -c qemu:///system` is used as it is
# and never stopped.  Otherwise virtlogd and libvirtd are started as root and
# stopped by their pids when the last fixture using them stops (see
# fixture-common.sh); their state lives under $GVM_LIBVIRTD_DIR (default
# /var/tmp/gvm-test-libvirtd).
#
# The QEMU driver of a privileged libvirtd reads /etc/libvirt/qemu.conf and no
# other file, and this machine needs settings there (root user, no security
# driver, no cgroups, no dynamic ownership).  So libvirtd runs in a private
# mount namespace where a private copy of /etc/libvirt, holding our
# qemu.conf, is bind-mounted over /etc/libvirt: the system's files are never
# changed, and domains it defines are kept in that copy.  Only where a mount
# namespace cannot be made does it fall back to adding a marked block to
# /etc/libvirt/qemu.conf (keeping qemu.conf.gvm-orig as a backup).
#
# The env printed: GVM_LIBVIRT_URI.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/fixture-common.sh"

LV_DIR=${GVM_LIBVIRTD_DIR:-/var/tmp/gvm-test-libvirtd}
URI=qemu:///system

die() { echo "libvirt-fixture: $*" >&2; exit 1; }

libvirtd_answers() { timeout 20 virsh -c "$URI" version >/dev/null 2>&1; }

# own_pid NAME: pid of the NAME daemon we started, if it still runs.
own_pid() {
    local p
    p=$(cat "$LV_DIR/$1.pid" 2>/dev/null) || return 1
    [ -n "$p" ] && tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q "$LV_DIR/$1.pid" || return 1
    echo "$p"
}

QEMU_CONF_SETTINGS='user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]'

# Fallback only: a marked block in the system's qemu.conf, replaced in place.
patch_system_qemu_conf() {
    local f=/etc/libvirt/qemu.conf
    mkdir -p /etc/libvirt
    [ -e "$f" ] && [ ! -e "$f.gvm-orig" ] && cp -p "$f" "$f.gvm-orig"
    [ -e "$f" ] || : >"$f"
    sed -i '/^# BEGIN gvmd tests/,/^# END gvmd tests/d' "$f"
    printf '# BEGIN gvmd tests (tests/libvirt-fixture.sh)\n%s\n# END gvmd tests\n' \
        "$QEMU_CONF_SETTINGS" >>"$f"
    echo "# libvirt-fixture: no mount namespace here; edited $f (backup $f.gvm-orig)" >&2
}

start_libvirtd() {
    local p
    for p in libvirtd virtlogd; do
        if p=$(own_pid "$p"); then fx_stop_pid "$p"; fi
    done
    fx_users_prune "$LV_DIR" true >/dev/null
    command -v libvirtd >/dev/null && command -v virtlogd >/dev/null ||
        die "libvirt-daemon is not installed"
    [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
        ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 ||
        die "libvirt-daemon-driver-qemu is not installed"
    getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu || die "groupadd failed"
    id libvirt-qemu >/dev/null 2>&1 ||
        useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu ||
        die "useradd failed"
    mkdir -p /var/log/libvirt /run/libvirt /var/lib/libvirt "$LV_DIR/log"

    # virtlogd: one that answers on its socket already (not ours) serves us
    # as well.  (Asked, not pgrep'd: a virtlogd of another mount namespace
    # shows in the process list but not on our /run.)
    if ! timeout 10 virt-admin -c virtlogd:///system version >/dev/null 2>&1; then
        virtlogd -d -p "$LV_DIR/virtlogd.pid" 9>&- || die "virtlogd failed to start"
        fx_wait 10 test -S /run/libvirt/virtlogd-sock ||
            die "virtlogd did not create its socket"
    fi

    rm -rf "$LV_DIR/etc"
    mkdir -p "$LV_DIR/etc"
    [ -d /etc/libvirt ] && cp -a /etc/libvirt/. "$LV_DIR/etc/"
    rm -rf "$LV_DIR/etc/qemu"          # no domains defined by anyone else
    printf '# written by tests/libvirt-fixture.sh\n%s\n' "$QEMU_CONF_SETTINGS" >"$LV_DIR/etc/qemu.conf"
    : >"$LV_DIR/log/libvirtd.log"
    if unshare --mount --propagation private true 2>/dev/null && mkdir -p /etc/libvirt; then
        unshare --mount --propagation private -- sh -c \
            'mount --bind "$1" /etc/libvirt && exec libvirtd -d -p "$2"' \
            sh "$LV_DIR/etc" "$LV_DIR/libvirtd.pid" >>"$LV_DIR/log/libvirtd.log" 2>&1 9>&- ||
            die "libvirtd failed to start: $(tail -n 5 "$LV_DIR/log/libvirtd.log")"
    else
        patch_system_qemu_conf
        libvirtd -d -p "$LV_DIR/libvirtd.pid" >>"$LV_DIR/log/libvirtd.log" 2>&1 9>&- ||
            die "libvirtd failed to start: $(tail -n 5 "$LV_DIR/log/libvirtd.log")"
    fi
    if ! fx_wait 30 libvirtd_answers; then
        tail -n 20 "$LV_DIR/log/libvirtd.log" >&2
        stop_daemons
        die "libvirtd did not answer within 30 s"
    fi
    echo "# started a private libvirtd (pid $(cat "$LV_DIR/libvirtd.pid"))" >&2
}

# Stop the daemons we started, after destroying the domains still running on
# them (all started by tests: QEMU processes outlive libvirtd otherwise).
stop_daemons() {
    local p d
    if p=$(own_pid libvirtd); then
        for d in $(timeout 30 virsh -c "$URI" list --name 2>/dev/null); do
            timeout 30 virsh -c "$URI" destroy "$d" >/dev/null 2>&1
        done
        fx_stop_pid "$p"
        echo "# stopped the private libvirtd (pid $p)" >&2
    fi
    if p=$(own_pid virtlogd); then fx_stop_pid "$p"; fi
    rm -f "$LV_DIR/libvirtd.pid" "$LV_DIR/virtlogd.pid"
}

print_env() {
    [ -f "$1/libvirt" ] || die "no fixture in $1"
    printf "export GVM_LIBVIRT_URI='%s'\n" "$URI"
}

cmd_start() {
    local dir=$1 owner=$2
    [ "$(id -u)" -eq 0 ] || die "qemu:///system needs root"
    command -v virsh >/dev/null || die "libvirt-clients is not installed"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    fx_lock "$LV_DIR"
    if libvirtd_answers && ! own_pid libvirtd >/dev/null; then
        echo "$URI" >"$dir/libvirt"        # someone else's: use, never stop
    else
        libvirtd_answers || start_libvirtd
        fx_user_add "$LV_DIR" "$dir" "$owner"
        echo "$URI" >"$dir/libvirt"
        : >"$dir/registered"
    fi
    fx_unlock
    print_env "$dir"
}

cmd_stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    fx_lock "$LV_DIR"
    if [ -f "$dir/registered" ]; then
        fx_user_del "$LV_DIR" "$dir"
        [ "$(fx_users_prune "$LV_DIR" true)" -eq 0 ] && stop_daemons
    fi
    rm -f "$dir/libvirt" "$dir/registered"
    rmdir "$dir" 2>/dev/null
    fx_unlock
}

case ${1:-} in
    start) [ $# -ge 2 ] || die "usage: $0 start DIR [OWNER-PID]"; cmd_start "$2" "${3:-$PPID}" ;;
    stop)  [ $# -eq 2 ] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
    env)   [ $# -eq 2 ] || die "usage: $0 env DIR"; print_env "$(cd "$2" && pwd)" ;;
    *) die "usage: $0 start|stop|env DIR" ;;
esac
