#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# tests/gluster-fixture.sh — a real replica-3 GlusterFS volume for the tests.
#
#   gluster-fixture.sh start DIR [OWNER-PID]  create a volume whose bricks live
#                                             under DIR; print the env to export
#   gluster-fixture.sh env DIR                print that env again
#   gluster-fixture.sh stop DIR               stop and delete the volume
#   gluster-fixture.sh brick-pids VOLUME      pids of the volume's brick processes
#   gluster-fixture.sh brick-status VOLUME    "PATH ONLINE(0|1) PID" per brick
#
# If a glusterd answers the gluster CLI (a developer's), the volume is created
# on it and nothing else of it is touched.  Otherwise a private glusterd is
# started with its own working directory under $GVM_GLUSTERD_DIR (default
# /var/tmp/gvm-test-glusterd) and stopped by its pid when the last fixture
# using it stops (see fixture-common.sh).  OWNER-PID (default: the parent
# process) is the process whose death makes the fixture stale.
#
# The fixture makes one replica-3 volume per profile in $GVM_GLUSTER_PROFILES
# (default "virt plain"):
#   virt   gluster's `virt` option group, as virt-store deployments run
#          (sharding, client caches off, strict O_DIRECT, eager lock,
#          quorum...), with features.shard-block-size 4MB so that small test
#          images cross shard boundaries;
#   plain  gluster's defaults (every client cache on).
# The env printed: GVM_GLUSTER_HOST (the host name the bricks use, which must
# resolve to a loopback address), GVM_GLUSTER_VOLUME (the first profile's
# volume) and GVM_GLUSTER_VOLUME_VIRT / GVM_GLUSTER_VOLUME_PLAIN.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/fixture-common.sh"

GD_DIR=${GVM_GLUSTERD_DIR:-/var/tmp/gvm-test-glusterd}
GD_PIDFILE=$GD_DIR/glusterd.pid

die() { echo "gluster-fixture: $*" >&2; exit 1; }

glusterd_answers() { timeout 20 gluster --mode=script volume list >/dev/null 2>&1; }

# glusterd runs one transaction at a time and refuses a second one ("Another
# transaction is in progress") instead of queueing it: retry those.
gl() {
    local i out
    for i in $(seq 30); do
        out=$(timeout 120 gluster --mode=script "$@" 2>&1) && return 0
        case $out in
            *"nother transaction"*|*"ocking failed"*|*"cquire lock"*) sleep 1 ;;
            *) break ;;
        esac
    done
    echo "gluster $*: $out" >&2
    return 1
}

# "PATH ONLINE PID" for each brick (nodes whose path is absolute; the
# self-heal and other daemons are listed with path "localhost").
brick_status() {
    timeout 60 gluster --mode=script volume status "$1" --xml 2>/dev/null | awk '
        function val(s) { sub(/^[^>]*>/, "", s); sub(/<.*$/, "", s); return s }
        /<node>/     { p = ""; s = ""; pid = "" }
        /<path>/     { p = val($0) }
        /<status>/   { s = val($0) }
        /<pid>/      { pid = val($0) }
        /<\/node>/   { if (p ~ /^\//) print p, s, pid }'
}
brick_pids() { brick_status "$1" | awk '$2 == 1 && $3 > 0 { print $3 }'; }
bricks_online() { [ "$(brick_pids "$1" | wc -l)" -eq "$2" ]; }

# Is the private glusterd recorded in GD_DIR running?
own_glusterd_pid() {
    local p
    [ -f "$GD_PIDFILE" ] || return 1
    p=$(cat "$GD_PIDFILE" 2>/dev/null)
    [ -n "$p" ] && tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q "$GD_DIR/wd" || return 1
    echo "$p"
}

start_glusterd() {
    local p
    # One we started earlier but that stopped answering is of no use.
    if p=$(own_glusterd_pid); then fx_stop_pid "$p"; fi
    fx_users_prune "$GD_DIR" teardown_volume >/dev/null
    # A fresh working directory: no stale volume definitions.
    rm -rf "$GD_DIR/wd"
    mkdir -p "$GD_DIR/wd" "$GD_DIR/log"
    # The option groups (`volume set VOL group virt`) are read from the
    # working directory: give ours the ones the package ships.
    [ -d /var/lib/glusterd/groups ] && cp -r /var/lib/glusterd/groups "$GD_DIR/wd/"
    : >"$GD_DIR/log/glusterd.log"
    # (fd 9, our lock, must not live on in the daemon)
    glusterd -p "$GD_PIDFILE" -l "$GD_DIR/log/glusterd.log" --log-level=WARNING 9>&- \
        --xlator-option "management.working-directory=$GD_DIR/wd" ||
        die "glusterd failed to start (log: $GD_DIR/log/glusterd.log)"
    if ! fx_wait 30 glusterd_answers; then
        tail -n 30 "$GD_DIR/log/glusterd.log" >&2
        if p=$(own_glusterd_pid); then fx_stop_pid "$p"; fi
        die "glusterd did not answer within 30 s"
    fi
    echo "# started a private glusterd (pid $(cat "$GD_PIDFILE"), working directory $GD_DIR/wd)" >&2
}

# teardown_volume FIXTURE-DIR: stop and delete the fixture's volumes and
# remove their bricks.  Called with the lock held.
teardown_volume() {
    local dir=$1 vol pids p prof
    if [ -f "$dir/volumes" ]; then
        while read -r prof vol; do
            pids=$(brick_pids "$vol")
            gl volume stop "$vol" force >/dev/null
            gl volume delete "$vol" >/dev/null
            # glusterd signals the bricks and returns before they are gone:
            # give them 10 s.  A brick still there is still ours (its
            # volfile-id names our volume), never anyone else's: stop it.
            for p in $pids; do
                fx_wait 10 sh -c "! kill -0 $p" ||
                    { tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "--volfile-id $vol\." &&
                      fx_stop_pid "$p"; }
            done
            rm -rf "${dir:?}/$prof"
        done <"$dir/volumes"
    fi
    rm -f "$dir/volumes" "$dir/host"
    rmdir "$dir" 2>/dev/null
    return 0
}

# make_volume DIR HOST VOLUME PROFILE: create, configure and start one
# replica-3 volume with bricks under DIR/PROFILE.  Called with the lock held.
make_volume() {
    local dir=$1 host=$2 vol=$3 prof=$4 b
    for b in b1 b2 b3; do mkdir -p "$dir/$prof/$b"; done
    echo "$prof $vol" >>"$dir/volumes"
    gl volume create "$vol" replica 3 "$host:$dir/$prof/b1/brick" \
        "$host:$dir/$prof/b2/brick" "$host:$dir/$prof/b3/brick" force >/dev/null || return 1
    case $prof in
        virt)
            # `group virt` reads the group file from glusterd's working
            # directory: a private glusterd has its own (start_glusterd).
            gl volume set "$vol" group virt >/dev/null &&
            gl volume set "$vol" features.shard-block-size 4MB >/dev/null || return 1 ;;
        plain) ;;
        *) echo "gluster-fixture: unknown profile '$prof'" >&2; return 1 ;;
    esac
    gl volume set "$vol" server.allow-insecure on >/dev/null &&
    gl volume start "$vol" >/dev/null
}

print_env() {
    local prof vol first=""
    [ -f "$1/volumes" ] || die "no fixture in $1"
    printf "export GVM_GLUSTER_HOST='%s'\n" "$(cat "$1/host")"
    while read -r prof vol; do
        [ -n "$first" ] || { first=$vol; printf "export GVM_GLUSTER_VOLUME='%s'\n" "$vol"; }
        printf "export GVM_GLUSTER_VOLUME_%s='%s'\n" "$(echo "$prof" | tr a-z A-Z)" "$vol"
    done <"$1/volumes"
}

cmd_start() {
    local dir=$1 owner=$2 host vol prof
    command -v glusterd >/dev/null && command -v gluster >/dev/null ||
        die "glusterfs-server is not installed"
    [ "$(id -u)" -eq 0 ] || die "gluster bricks need root"
    host=${GVM_GLUSTER_HOST:-$(hostname)}
    # Bricks need a host name other than localhost, and tests must only ever
    # talk to loopback.
    case $(getent ahosts "$host" | awk 'NR == 1 { print $1 }') in
        127.*|::1) ;;
        *) die "host name '$host' does not resolve to a loopback address" ;;
    esac
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ! -e "$dir/volumes" ] || die "$dir already holds a fixture"

    fx_lock "$GD_DIR"
    glusterd_answers || start_glusterd
    echo "$host" >"$dir/host"
    : >"$dir/volumes"
    fx_user_add "$GD_DIR" "$dir" "$owner"
    for prof in ${GVM_GLUSTER_PROFILES:-virt plain}; do
        vol=gvmt-$owner-$RANDOM-$prof
        if ! make_volume "$dir" "$host" "$vol" "$prof"; then
            teardown_volume "$dir"; fx_user_del "$GD_DIR" "$dir"; fx_unlock
            die "could not create the $prof volume $vol"
        fi
    done
    fx_unlock
    while read -r prof vol; do
        if ! fx_wait 30 bricks_online "$vol" 3; then
            brick_status "$vol" >&2
            cmd_stop "$dir"
            die "the bricks of $vol did not come online within 30 s"
        fi
    done <"$dir/volumes"
    print_env "$dir"
}

cmd_stop() {
    local dir=$1 p
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    fx_lock "$GD_DIR"
    teardown_volume "$dir"
    fx_user_del "$GD_DIR" "$dir"
    if [ "$(fx_users_prune "$GD_DIR" teardown_volume)" -eq 0 ] && p=$(own_glusterd_pid); then
        # The self-heal daemon of our last replica volume went with the
        # volume; bricks went with theirs.  Now glusterd itself.
        fx_stop_pid "$p"
        rm -f "$GD_PIDFILE"
        echo "# stopped the private glusterd (pid $p)" >&2
    fi
    fx_unlock
}

case ${1:-} in
    start) [ $# -ge 2 ] || die "usage: $0 start DIR [OWNER-PID]"; cmd_start "$2" "${3:-$PPID}" ;;
    stop)  [ $# -eq 2 ] || die "usage: $0 stop DIR"; cmd_stop "$2" ;;
    env)   [ $# -eq 2 ] || die "usage: $0 env DIR"; print_env "$(cd "$2" && pwd)" ;;
    brick-pids)   [ $# -eq 2 ] || die "usage: $0 brick-pids VOLUME"; brick_pids "$2" ;;
    brick-status) [ $# -eq 2 ] || die "usage: $0 brick-status VOLUME"; brick_status "$2" ;;
    *) die "usage: $0 start|stop|env DIR | brick-pids|brick-status VOLUME" ;;
esac
