#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The fixtures of tests/lib.sh work: need_gluster gives a started replica-3
# volume with three bricks online that qemu-img can use over gluster://, a
# second fixture comes up and is torn down completely, and need_libvirt gives
# a libvirtd where a TCG domain with a gluster network disk starts and is
# destroyed.  (Each qemu-img call on gluster:// costs ~10 s: glfs_fini.)
. "$GVM_TESTDIR/lib.sh"
need jq qemu-img

need_gluster
note "volume $GLUSTER_VOLUME on $GLUSTER_HOST"
case $(getent ahosts "$GLUSTER_HOST" | awk 'NR == 1 { print $1 }') in
    127.*|::1) ;; *) fail "GLUSTER_HOST $GLUSTER_HOST is not a loopback name" ;;
esac
info=$(gluster --mode=script volume info "$GLUSTER_VOLUME") || fail "no volume $GLUSTER_VOLUME"
assert_match 'Status: Started' "$info" "volume status"
assert_match 'Number of Bricks: 1 x 3 = 3' "$info" "volume layout"
assert_match 'server.allow-insecure: on' "$info" "allow-insecure"
pids=$(gluster_brick_pids)
assert_eq 3 "$(echo "$pids" | grep -c .)" "online bricks"
for p in $pids; do
    tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "--volfile-id $GLUSTER_VOLUME\." ||
        check_fail "pid $p is not a brick of $GLUSTER_VOLUME"
done

img=fixtures-$$.qcow2
url=gluster://$GLUSTER_HOST/$GLUSTER_VOLUME/$img
gfapi_oracle qemu-img create -q -f qcow2 "$url" 16M 2>"$TEST_TMP/qemu-img.err" ||
    { cat "$TEST_TMP/qemu-img.err" >&2; fail "qemu-img create $url failed"; }
out=$(gfapi_oracle qemu-img info --output=json "$url" 2>"$TEST_TMP/qemu-img.err") ||
    { cat "$TEST_TMP/qemu-img.err" >&2; fail "qemu-img info $url failed"; }
assert_eq qcow2 "$(jq -r .format <<<"$out")" "format on gluster"
assert_eq 16777216 "$(jq -r '."virtual-size"' <<<"$out")" "virtual size on gluster"

# A second, private fixture: up with its own bricks, then gone without trace.
fx2=$TEST_TMP/gluster2
at_exit "\"\$GVM_TESTDIR/gluster-fixture.sh\" stop \"$fx2\""
env2=$("$GVM_TESTDIR/gluster-fixture.sh" start "$fx2" $$) || fail "second fixture failed"
vol2=$(sed -n "s/^export GVM_GLUSTER_VOLUME='\(.*\)'$/\1/p" <<<"$env2")
[ -n "$vol2" ] && [ "$vol2" != "$GLUSTER_VOLUME" ] || fail "second fixture gave volume '$vol2'"
gluster --mode=script volume list | grep -qx "$vol2" || check_fail "volume $vol2 not listed"
assert_eq 3 "$("$GVM_TESTDIR/gluster-fixture.sh" brick-pids "$vol2" | grep -c .)" "online bricks of $vol2"
b2pids=$("$GVM_TESTDIR/gluster-fixture.sh" brick-pids "$vol2")
"$GVM_TESTDIR/gluster-fixture.sh" stop "$fx2" || check_fail "stopping the second fixture failed"
gluster --mode=script volume list | grep -qx "$vol2" && check_fail "volume $vol2 still exists"
for p in $b2pids; do kill -0 "$p" 2>/dev/null && check_fail "brick pid $p of $vol2 still runs"; done
[ -e "$fx2" ] && check_fail "$fx2 still exists"
gluster --mode=script volume info "$GLUSTER_VOLUME" | grep -q 'Status: Started' ||
    check_fail "stopping $vol2 disturbed $GLUSTER_VOLUME"

need_libvirt
tvirsh version >/dev/null || fail "virsh -c $LIBVIRT_URI version failed"
dom=gvmt-fixtures-$$
libvirt_define_test_domain "$dom" "    <disk type='network' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source protocol='gluster' name='$GLUSTER_VOLUME/$img'>
        <host name='$GLUSTER_HOST' port='24007'/>
      </source>
      <target dev='vda' bus='virtio'/>
    </disk>"
tvirsh start "$dom" >/dev/null || fail "domain $dom did not start"
assert_eq running "$(tvirsh domstate "$dom")" "state after start"
assert_match "vda +$GLUSTER_VOLUME/$img" "$(tvirsh domblklist "$dom")" "disk of $dom"
tvirsh destroy "$dom" >/dev/null || fail "destroy $dom failed"
assert_eq "shut off" "$(tvirsh domstate "$dom")" "state after destroy"
exit 0
