#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Issue 11, item 10: a deep chain must not cost memory in proportion to its
# tables.  64 sparse layers of 1 PiB with 64 KiB clusters (a 16 MiB L1
# table each: 1 GiB of L1 tables in all) are opened by one read-only
# image-info backing-chain; gvmd's peak RSS may grow by less than 64 MiB
# (the engine reads L1 and refcount tables on demand, in small chunks,
# through a bounded cache per image).  Reading a guest offset near the end
# of the disk (an L1 entry far into the table) of the whole chain stays
# inside the same bound, and the answers agree with qemu-img.
#
# Dir volume only: the bound is the engine's; gfapi's client caches on a
# gluster volume have sizes of their own that this test does not measure.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need fallocate

LAYERS=64
SIZE=$((1 << 50))           # 1 PiB: l1_size 2 Mi entries = 16 MiB per layer
BOUND_KB=$((64 * 1024))

start_gvmd

# Peak RSS since the last reset, in kB.  Writing 5 to clear_refs resets
# VmHWM to the current RSS (Linux 4.0+), so the peak measured is that of
# the calls in between, not one of start-up.
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$GVMD_PID/status"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$GVMD_PID/status"; }
hwm_reset() { echo 5 >"/proc/$GVMD_PID/clear_refs" 2>/dev/null ||
    note "cannot reset VmHWM: the peak measured may predate the call (stricter)"; }

# The bound is checked under ASan too: its shadow memory, the 4 KiB it
# fills in each allocation and its quarantine of freed blocks cost about
# 10 MiB here (the plain build 0.5 MiB), and the old code's 1 GiB is
# past the bound either way.

run_backend() {
    d=$ROOT/$SUB
    # qemu-img writes each L1 table (16 MiB of zeros); digging holes keeps
    # the 64 files at a few MiB on disk.  -u: it need not open the chain.
    qimg create -q -f qcow2 "$d/l0.qcow2" $SIZE
    for i in $(seq 1 $((LAYERS - 1))); do
        qimg create -q -u -f qcow2 -b "l$((i - 1)).qcow2" -F qcow2 "$d/l$i.qcow2" $SIZE
        fallocate -d "$d/l$((i - 1)).qcow2"
    done
    fallocate -d "$d/l$((LAYERS - 1)).qcow2"
    # Data at the very end of the disk in the bottom layer, and at 0 in the
    # top one: the last L1 entry of l0 and the first of the top layer.
    tail=$((SIZE - 65536))
    qio "$d/l0.qcow2" "write -P 0x5a $tail 64k"
    top=l$((LAYERS - 1)).qcow2
    qio "$d/$top" "write -P 0x3c 0 64k"
    for f in l0.qcow2 "$top"; do
        v=$(qemu-img info --output=json "$d/$f" | jq '."virtual-size"')
        assert_eq $SIZE "$v" "qemu-img's virtual size of $f"
    done

    hwm_reset
    r0=$(rss)
    info=$(gvmctl_ro --json --params "{\"image\":$(vref "$SUB/$top"),\"backing-chain\":true}" image-info) ||
        { check_fail "read-only image-info backing-chain of $top: $info"; return; }
    peak=$(hwm)
    grew=$((peak - r0))
    note "image-info of a $LAYERS-layer chain of 1 PiB layers: RSS $r0 kB before, peak $peak kB (+$grew kB)"
    assert_eq $LAYERS "$(printf '%s' "$info" | jq '.chain | length')" "layers reported"
    assert_eq "$top" "$(basename "$(printf '%s' "$info" | jq -r '.chain[0].path')")" "first layer"
    assert_eq l0.qcow2 "$(basename "$(printf '%s' "$info" | jq -r '.chain[-1].path')")" "last layer"
    assert_eq "[$SIZE]" "$(printf '%s' "$info" | jq -c '[.chain[]."virtual-size"] | unique')" \
        "virtual size of every layer"
    assert_eq 0 "$(printf '%s' "$info" | jq '[.chain[:-1][] | select(."backing-filename" == null)] | length')" \
        "every layer but the last names a backing file"
    [ $grew -lt $BOUND_KB ] ||
        check_fail "image-info of the $LAYERS-layer chain grew gvmd's peak RSS by $grew kB (bound $BOUND_KB kB)"

    # The last 1 MiB of the disk through all 64 layers: one L1 lookup per
    # layer far into each table.
    hwm_reset
    r0=$(rss)
    exp=$(qemu-img map --output=json --start-offset=$((SIZE - (1 << 20))) --max-length=$((1 << 20)) "$d/$top") ||
        fail "qemu-img map"
    got=$(gvmctl_ro --json --params "{\"image\":$(vref "$SUB/$top"),\"offset\":$((SIZE - (1 << 20))),\"length\":$((1 << 20))}" image-map) ||
        { check_fail "image-map of the end of $top: $got"; return; }
    peak=$(hwm)
    grew=$((peak - r0))
    note "image-map of the last MiB through $LAYERS layers: RSS $r0 kB before, peak $peak kB (+$grew kB)"
    json_eq "image-map of the last MiB of $top" "$exp" "$got"
    [ $grew -lt $BOUND_KB ] ||
        check_fail "image-map of the end of the chain grew gvmd's peak RSS by $grew kB (bound $BOUND_KB kB)"
    rm -f "$d"/l*.qcow2
}

# (no gluster fixture is started for a part that would not run)
IMAGE_BACKENDS=dir for_each_backend run_backend
kill -0 "$GVMD_PID" || fail "gvmd died"
exit 0
