#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-libvirt-unknown.sh — unknown is not "free" (issue 10).
#
# gvmd configured with a libvirt whose daemon does not run (a unix socket
# that does not exist; never a network address) cannot tell whether a
# running domain uses an image: image-rebase, block-commit, image-delete
# and image-check repair of catalogued images are refused with InUse
# saying libvirt at URI cannot be reached and how to configure a host
# without libvirt, and nothing changes (files, catalog); image-info,
# image-map, image-checksum and a plain image-check still answer.  With
# --libvirt-uri none (and `libvirt-uri = none` in a config file) the same
# writes run, query-virt says libvirt is not configured, and a live
# feature (domain-attach from libvirt's XML) says so too.
#
# Then libvirt goes away while gvmd runs: gvmd is connected to the test's
# libvirtd through a unix-socket relay of the test's own; a write runs;
# the relay is killed (to gvmd, libvirtd stopped: its connection closes
# and every reconnect fails); the same kind of write is refused with the
# message above and changes nothing, reads answer; the relay comes back
# and the write runs.  (The shared libvirtd itself is never stopped: other
# tests use it.)
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need jq qemu-img qemu-io sha256sum python3
need_libvirt

URI='qemu+unix:///system?socket=/nonexistent/gvmd-test/libvirt-sock'
start_gvmd --libvirt-uri "$URI"
IMAGES=$GVMD_DIR/state/images
SUB=lu-$$
mkdir -p "$IMAGES/$SUB"

# Image creation writes no catalogued image: it works while libvirt is away.
mk_local base.qcow2
mk_local mid.qcow2 "$SUB/base.qcow2"
mk_local top.qcow2 "$SUB/mid.qcow2"
mk_local spare.qcow2
qio "$IMAGES/$SUB/base.qcow2" "write -P 0x11 0 1M"
qio "$IMAGES/$SUB/mid.qcow2" "write -P 0x22 1M 1M"
qio "$IMAGES/$SUB/top.qcow2" "write -P 0x33 2M 1M"

v=$(rpc query-virt '{}') || fail "query-virt failed"
assert_eq "true false" "$(printf '%s' "$v" | jq -r '"\(.configured) \(.connected)"')" \
    "query-virt with an unreachable libvirt: configured, connected"

state() {
    (cd "$IMAGES/$SUB" && sha256sum ./*.qcow2)
    rpc image-list '{}' | jq -S -c 'map(del(."actual-size"))'
    rpc query-jobs '{}' | jq -c 'length'
}
before=$(state)

# refused METHOD PARAMS WHAT
refused() {
    local e m
    e=$(rpc_err "$1" "$2") || return 0
    m=$(err_msg "$e")
    note "$1: $m"
    assert_eq InUse "$(err_class "$e")" "$3: class"
    assert_match "libvirt at $(printf '%s' "$URI" | sed 's/[][\.*^$?+(){}|]/\\&/g') cannot be reached" \
        "$m" "$3: names the unreachable libvirt"
    assert_match "cannot tell whether a running domain uses" "$m" "$3: says why"
    assert_match "local:$SUB/" "$m" "$3: names the image"
    assert_match -- "--libvirt-uri none" "$m" "$3: the option for a host without libvirt"
    assert_match "libvirt-uri = none" "$m" "$3: the config file key"
    assert_eq "$before" "$(state)" "$3: files and catalog afterwards"
}
refused image-delete "{\"image\":\"local:$SUB/top.qcow2\"}" "image-delete"
refused image-delete "{\"image\":\"local:$SUB/spare.qcow2\"}" "image-delete of an image no domain knows"
refused image-rebase "{\"image\":\"local:$SUB/top.qcow2\",\"backing\":\"local:$SUB/base.qcow2\"}" "image-rebase"
refused image-rebase "{\"image\":\"local:$SUB/top.qcow2\",\"backing\":\"local:$SUB/base.qcow2\",\"mode\":\"unsafe\"}" \
    "unsafe image-rebase"
refused block-commit "{\"top\":\"local:$SUB/top.qcow2\"}" "block-commit"
refused block-pull "{\"image\":\"local:$SUB/top.qcow2\"}" "block-pull"
refused image-check "{\"image\":\"local:$SUB/top.qcow2\",\"repair\":\"leaks\"}" "image-check repair"

# Reads still answer.
rpc image-info "{\"image\":\"local:$SUB/top.qcow2\",\"backing-chain\":true}" >/dev/null ||
    check_fail "image-info refused while libvirt is unreachable"
m=$(rpc image-map "{\"image\":\"local:$SUB/top.qcow2\"}") ||
    check_fail "image-map refused while libvirt is unreachable"
assert_eq 3 "$(printf '%s' "$m" | jq '[.[] | select(.data)] | length')" "image-map: data extents"
c=$(rpc image-checksum "{\"image\":\"local:$SUB/top.qcow2\"}") ||
    check_fail "image-checksum refused while libvirt is unreachable"
rpc image-check "{\"image\":\"local:$SUB/top.qcow2\"}" >/dev/null ||
    check_fail "image-check without repair refused while libvirt is unreachable"
want=$(qemu-img convert -O raw "$IMAGES/$SUB/top.qcow2" "$TEST_TMP/top.raw" &&
       sha256sum <"$TEST_TMP/top.raw" | cut -d' ' -f1)
assert_eq "$want" "$(printf '%s' "$c" | jq -r .sha256)" "image-checksum"
assert_eq "$before" "$(state)" "after the reads"
stop_gvmd

# ---- libvirt-uri none: no libvirt, the offline path writes ------------------
start_gvmd --libvirt-uri none
v=$(rpc query-virt '{}') || fail "query-virt failed"
assert_eq "false false none" "$(printf '%s' "$v" | jq -r '"\(.configured) \(.connected) \(.uri)"')" \
    "query-virt with libvirt-uri none"
assert_match "libvirt is not configured" "$(printf '%s' "$v" | jq -r .error)" "query-virt's error"
e=$(rpc_err domain-attach '{"domain":"nosuchdomain"}')
assert_eq Unsupported "$(err_class "$e")" "domain-attach from libvirt's XML: class"
assert_match "libvirt is not configured" "$(err_msg "$e")" "domain-attach from libvirt's XML: message"

# job JSON WHAT: wait for the job JSON started and expect no error.
job() {
    local jid w
    jid=$(printf '%s' "$1" | jq -r .id)
    w=$(rpc job-wait "{\"id\":$jid,\"timeout\":60}") || fail "$2: job-wait failed"
    assert_eq "concluded null" "$(printf '%s' "$w" | jq -r '"\(.status) \(.error.message // "null")"')" "$2: job"
    rpc job-dismiss "{\"id\":$jid}" >/dev/null
}
rpc image-delete "{\"image\":\"local:$SUB/spare.qcow2\"}" >/dev/null ||
    check_fail "image-delete with libvirt-uri none refused"
[ ! -e "$IMAGES/$SUB/spare.qcow2" ] || check_fail "spare.qcow2 is still on storage"
j=$(rpc block-commit "{\"top\":\"local:$SUB/top.qcow2\"}") || fail "block-commit with libvirt-uri none refused"
job "$j" "block-commit"
qio "$IMAGES/$SUB/mid.qcow2" "read -P 0x11 0 1M" "read -P 0x22 1M 1M" "read -P 0x33 2M 1M"
stop_gvmd

# ---- the same from a configuration file --------------------------------------
printf '# no libvirt on this host\nlibvirt-uri = none\n' >"$TEST_TMP/gvmd.conf"
GVMD_DEFAULT_LIBVIRT_URI= start_gvmd --config "$TEST_TMP/gvmd.conf"
assert_eq false "$(rpc query-virt '{}' | jq -r .configured)" "query-virt with libvirt-uri = none in the config file"
j=$(rpc image-rebase "{\"image\":\"local:$SUB/mid.qcow2\",\"backing\":null}") ||
    fail "image-rebase with libvirt-uri = none refused"
job "$j" "image-rebase"
assert_eq null "$(qemu-img info -U --output=json "$IMAGES/$SUB/mid.qcow2" | jq -r '."backing-filename" // "null"')" \
    "mid.qcow2 rebased onto nothing"
qio "$IMAGES/$SUB/mid.qcow2" "read -P 0x11 0 1M" "read -P 0x22 1M 1M" "read -P 0x33 2M 1M"
stop_gvmd

# ---- libvirtd goes away while gvmd runs ---------------------------------------
# relay SOCKET: forward SOCKET to libvirtd's socket (qemu:///system).
relay() {
    python3 - "$1" /run/libvirt/libvirt-sock <<'PY' &
import socket, sys, threading
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(16)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for x in (a, b):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = srv.accept()
    t = socket.socket(socket.AF_UNIX)
    try:
        t.connect(sys.argv[2])
    except OSError:
        c.close()
        continue
    threading.Thread(target=pump, args=(c, t), daemon=True).start()
    threading.Thread(target=pump, args=(t, c), daemon=True).start()
PY
    RELAY_PID=$!
    _test_pids="$_test_pids $RELAY_PID"
    i=0
    until [ -S "$1" ]; do i=$((i+1)); [ $i -lt 100 ] || fail "the relay did not listen"; sleep 0.05; done
}
SOCK=$TEST_TMP/lv.sock
URI2="qemu+unix:///system?socket=$SOCK"
relay "$SOCK"
start_gvmd --libvirt-uri "$URI2"
assert_eq "true true" "$(rpc query-virt '{}' | jq -r '"\(.configured) \(.connected)"')" \
    "query-virt through the relay: configured, connected"
SUB=lg-$$
mkdir -p "$IMAGES/$SUB"
mk_local base.qcow2
mk_local top.qcow2 "$SUB/base.qcow2"
qio "$IMAGES/$SUB/top.qcow2" "write -P 0x44 0 1M"
j=$(rpc image-rebase "{\"image\":\"local:$SUB/top.qcow2\",\"backing\":null}") ||
    fail "image-rebase with libvirt reachable refused"
job "$j" "image-rebase while libvirt answers"

kill -KILL "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null; rm -f "$SOCK"
URI=$URI2
before=$(state)
# The first call after the close may be the one that finds it closed.
refused image-rebase "{\"image\":\"local:$SUB/top.qcow2\",\"backing\":\"local:$SUB/base.qcow2\"}" \
    "image-rebase once libvirtd is gone"
refused image-check "{\"image\":\"local:$SUB/top.qcow2\",\"repair\":\"leaks\"}" "image-check repair once libvirtd is gone"
refused image-delete "{\"image\":\"local:$SUB/base.qcow2\"}" "image-delete once libvirtd is gone"
assert_eq "true false" "$(rpc query-virt '{}' | jq -r '"\(.configured) \(.connected)"')" \
    "query-virt once libvirtd is gone"
m=$(rpc image-map "{\"image\":\"local:$SUB/top.qcow2\"}") ||
    check_fail "image-map refused once libvirtd is gone"
assert_eq 1 "$(printf '%s' "$m" | jq '[.[] | select(.data)] | length')" "image-map once libvirtd is gone"

relay "$SOCK"
j=$(rpc image-rebase "{\"image\":\"local:$SUB/top.qcow2\",\"backing\":\"local:$SUB/base.qcow2\",\"mode\":\"unsafe\"}") ||
    check_fail "image-rebase once libvirtd answers again refused"
[ -n "$j" ] && job "$j" "image-rebase once libvirtd answers again"
assert_eq "true true" "$(rpc query-virt '{}' | jq -r '"\(.configured) \(.connected)"')" \
    "query-virt once libvirtd answers again"
qio "$IMAGES/$SUB/top.qcow2" "read -P 0x44 0 1M"
stop_gvmd
