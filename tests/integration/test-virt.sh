#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-virt.sh — gvmd's libvirt connection: lazy, so a daemon whose libvirt
# URI leads nowhere starts and answers (domain-disk-xml needs no libvirt);
# connected, it sees libvirt's domains and logs their lifecycle events; and
# it survives a restart of libvirtd (done only when this test alone uses a
# libvirtd the fixture started for it).
. "$GVM_TESTDIR/lib.sh"
need jq xmllint
TAG=gvmt-$$

# qv: query-virt's result.
qv() { rpc query-virt '{}'; }

# ---- 1. libvirt unreachable ---------------------------------------------------
for uri in "qemu+unix:///system?socket=$TEST_TMP/no-such-libvirt-sock" "test:///nonexistent"; do
    start_gvmd --libvirt-uri "$uri"
    gvmctl query-version >/dev/null || fail "gvmd with --libvirt-uri $uri does not answer"
    t0=$(date +%s)
    r=$(qv) || fail "query-virt failed with $uri"
    [ $(( $(date +%s) - t0 )) -le 10 ] || check_fail "query-virt took over 10 s on $uri"
    assert_eq false "$(jq -r .connected <<<"$r")" "connected with $uri"
    assert_eq "$uri" "$(jq -r .uri <<<"$r")" "uri reported"
    assert_eq null "$(jq -r .domains <<<"$r")" "domains with $uri"
    assert_match "." "$(jq -r '.error // empty' <<<"$r")" "error with $uri"
    # Still serving, and domain-disk-xml needs no libvirt.
    rpc image-create '{"volume":"local","path":"d.qcow2","format":"qcow2","size":1048576}' >/dev/null ||
        check_fail "image-create without libvirt failed"
    x=$(rpc domain-disk-xml '{"image":"local:d.qcow2","target":"vda"}' | jq -r .xml) ||
        check_fail "domain-disk-xml without libvirt failed"
    assert_eq "$GVMD_DIR/state/images/d.qcow2" "$(printf '%s' "$x" | xmllint --xpath 'string(/disk/source/@file)' - 2>&1)" \
        "disk XML without libvirt"
    # A second try reports the same, it does not hang.
    assert_eq false "$(qv | jq -r .connected)" "connected on a second try with $uri"
    gvmctl query-version >/dev/null || check_fail "gvmd stopped answering after query-virt ($uri)"
    stop_gvmd
    rm -rf "$GVMD_DIR"
done

# ---- 2. connected -----------------------------------------------------------------
if [ -z "${GVM_LIBVIRT_URI:-}" ] && ! timeout 20 virsh -c qemu:///system version >/dev/null 2>&1; then
    libvirt_was_running=false
else
    libvirt_was_running=true
fi
need_libvirt
start_gvmd --libvirt-uri "$LIBVIRT_URI" --log-level debug
r=$(qv) || fail "query-virt failed"
assert_eq true "$(jq -r .connected <<<"$r")" "connected to $LIBVIRT_URI: $r"
assert_eq "$LIBVIRT_URI" "$(jq -r .uri <<<"$r")" "uri"
n0=$(jq -r .domains <<<"$r")
assert_match '^[0-9]+$' "$n0" "domain count"

rpc image-create '{"volume":"local","path":"v.qcow2","format":"qcow2","size":1048576}' >/dev/null ||
    fail "image-create failed"
disk=$(rpc domain-disk-xml '{"image":"local:v.qcow2","target":"vda"}' | jq -r .xml) ||
    fail "domain-disk-xml failed"
libvirt_define_test_domain "$TAG-a" "$disk"
n1=$(qv | jq -r .domains)
[ "$n1" -ge 1 ] 2>/dev/null || check_fail "query-virt counts $n1 domains with $TAG-a defined"
tvirsh start "$TAG-a" >/dev/null || fail "virsh start $TAG-a failed"

# wait_log REGEX: the daemon's log shows it within 10 s.
wait_log() {
    local i=0
    until grep -Eq -- "$1" "$GVMD_DIR/gvmd.log"; do
        i=$((i+1)); [ $i -lt 100 ] || { check_fail "gvmd did not log /$1/"; return 1; }
        sleep 0.1
    done
}
wait_log "Domain $TAG-a started"
libvirt_kill_domain "$TAG-a"
wait_log "Domain $TAG-a stopped"

# ---- 3. libvirtd restarts -------------------------------------------------------------
LV_DIR=${GVM_LIBVIRTD_DIR:-/var/tmp/gvm-test-libvirtd}
lv_pid=$(cat "$LV_DIR/libvirtd.pid" 2>/dev/null)
users=$(ls "$LV_DIR/users" 2>/dev/null | wc -l)
if $libvirt_was_running || [ ! -f "$TEST_TMP/libvirt/registered" ] || [ -z "$lv_pid" ] ||
   [ "$users" -ne 1 ]; then
    note "libvirtd was not started for this test alone: not restarting it"
else
    note "restarting libvirtd (pid $lv_pid)"
    kill -TERM "$lv_pid"
    i=0; while kill -0 "$lv_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    kill -0 "$lv_pid" 2>/dev/null && fail "libvirtd did not stop"
    wait_log "libvirt connection to .* closed"
    # While it is down: gvmd answers, and says it is not connected.
    gvmctl query-version >/dev/null || check_fail "gvmd stopped answering while libvirtd is down"
    assert_eq false "$(qv | jq -r .connected)" "connected while libvirtd is down"
    "$GVM_TESTDIR/libvirt-fixture.sh" start "$TEST_TMP/libvirt" $$ >/dev/null ||
        fail "could not start libvirtd again"
    r=$(qv) || fail "query-virt after the restart failed"
    assert_eq true "$(jq -r .connected <<<"$r")" "connected after libvirtd restarted: $r"
    # Events flow on the new connection.
    libvirt_define_test_domain "$TAG-b" "$disk"
    tvirsh start "$TAG-b" >/dev/null || fail "virsh start $TAG-b failed"
    wait_log "Domain $TAG-b started"
    libvirt_kill_domain "$TAG-b"
fi
gvmctl query-version >/dev/null || check_fail "gvmd does not answer at the end"
stop_gvmd
exit 0
