#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# img_check on qcow2 (gvmd/qcow2-check.c) against `qemu-img check`: the same
# numbers (corruptions, leaks, check-errors, allocated-clusters,
# total-clusters, image-end-offset) on clean images (internal snapshots,
# compressed clusters, v2, 512-byte clusters, persistent bitmaps) and on images with leaks and
# corruptions injected by poking refcount bytes (and a misaligned L2 entry)
# at offsets computed from the header; repairing leaks, then everything, leaves images qemu-img
# finds clean and whose content did not change; a dirty lazy-refcounts
# image (qemu-io killed mid-way) is repaired when gvmd opens it for write.
. "$GVM_TESTDIR/lib.sh"

need qemu-img qemu-io od awk jq dd
IMGTOOL=$GVM_TOOLSDIR/imgtool
[ -x "$IMGTOOL" ] || skip "imgtool is not built"
WORK=$TEST_TMP
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    WORK=$(mktemp -d /dev/shm/gvmtest.qcow2-check.XXXXXX) || fail "mktemp"
    at_exit "rm -rf '$WORK'"
fi
cd "$WORK" || fail "no test directory"

be32() { od -An -tu1 -j "$2" -N4 "$1" | awk '{ print ($1 * 16777216) + ($2 * 65536) + ($3 * 256) + $4 }'; }
be64() { od -An -tu1 -j "$2" -N8 "$1" | awk '{ v = 0; for (i = 1; i <= 8; i++) v = v * 256 + $i; printf "%.0f\n", v }'; }

FIELDS="corruptions leaks check-errors allocated-clusters total-clusters image-end-offset"

# compare_check WHAT IMAGE: gvmd's numbers and exit status equal qemu-img's.
compare_check() {
    local what=$1 img=$2 q g qrc grc f
    q=$(qemu-img check --output=json "$img" 2>/dev/null); qrc=$?
    g=$("$IMGTOOL" check "$img" qcow2); grc=$?
    for f in $FIELDS; do
        assert_eq "$(printf '%s' "$q" | jq ".\"$f\" // 0")" \
                  "$(printf '%s' "$g" | jq ".\"$f\" // 0")" "$what: $f"
    done
    assert_eq "$qrc" "$grc" "$what: exit status"
    note "$what: $(printf '%s' "$g" | jq -c '{corruptions, leaks, "allocated-clusters"}') qemu-img exit $qrc"
}

# poke_refcount IMAGE HOST-OFFSET VALUE: set the stored refcount of the
# cluster at HOST-OFFSET (16-bit refcounts).
poke_refcount() {
    local img=$1 off=$2 val=$3 cb cs rt rbe ci blk pos
    cb=$(be32 "$img" 20); cs=$((1 << cb))
    [ "$(be32 "$img" 96)" -eq 4 ] || fail "poke_refcount: needs 16-bit refcounts"
    rt=$(be64 "$img" 48)
    rbe=$((cs / 2))
    ci=$((off >> cb))
    blk=$(be64 "$img" $((rt + ci / rbe * 8)))
    [ "$blk" -ne 0 ] || fail "poke_refcount: no refcount block for cluster $ci"
    pos=$((blk + (ci % rbe) * 2))
    printf "\\x$(printf %02x $((val >> 8)))\\x$(printf %02x $((val & 255)))" |
        dd of="$img" bs=1 seek="$pos" conv=notrunc status=none
}

# host offset of guest offset G (qemu-img map)
host_of() {
    qemu-img map --output=json "$1" | jq -r --argjson g "$2" \
        '.[] | select(.start <= $g and $g < .start + .length and .offset != null) | .offset + ($g - .start)' | head -1
}

qio() { qemu-io -f qcow2 "$@" >/dev/null || fail "qemu-io $*"; }

# ---- clean images ----------------------------------------------------------------
qemu-img create -q -f qcow2 clean.qcow2 16M
qio -c "write -P 0x11 0 3M" -c "write -P 0x12 5M 200k" -c "write -z 8M 1M" clean.qcow2
qemu-img snapshot -c s1 clean.qcow2
qio -c "write -P 0x13 1M 100k" -c "write -P 0x14 12M 64k" clean.qcow2
qemu-img snapshot -c s2 clean.qcow2
qio -c "discard 0 128k" clean.qcow2
compare_check "clean, 2 snapshots" clean.qcow2

qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 v2.qcow2 2M
qio -c "write -P 0x21 0 300k" -c "write -P 0x22 1M 7000" v2.qcow2
qemu-img snapshot -c s1 v2.qcow2
qio -c "write -P 0x23 100k 10k" v2.qcow2
compare_check "v2, 512-byte clusters, snapshot" v2.qcow2

qemu-img convert -c -O qcow2 clean.qcow2 comp.qcow2
compare_check "compressed" comp.qcow2

qemu-img create -q -f qcow2 bm.qcow2 64M
if qemu-img bitmap --add bm.qcow2 b0 2>/dev/null; then
    qemu-img bitmap --add -g 65536 bm.qcow2 b1
    qio -c "write -P 0x24 0 10M" -c "write -P 0x25 40M 1M" bm.qcow2
    compare_check "persistent bitmaps" bm.qcow2
else
    note "qemu-img bitmap unavailable: bitmaps case not run"
fi

# ---- leaks -----------------------------------------------------------------------
qemu-img create -q -f qcow2 leak.qcow2 16M
qio -c "write -P 0x31 0 2M" leak.qcow2
h1=$(host_of leak.qcow2 $((512 << 10)))
qio -c "discard 512k 192k" leak.qcow2        # three clusters freed, file not shrunk
cp leak.qcow2 leak.orig.qcow2
for k in 0 1 2; do poke_refcount leak.qcow2 $((h1 + k * 65536)) 1; done
compare_check "3 leaked clusters" leak.qcow2
assert_eq 3 "$(qemu-img check --output=json leak.qcow2 2>/dev/null | jq '.leaks // 0')" "qemu-img sees the leaks"
out=$("$IMGTOOL" check leak.qcow2 qcow2 --repair leaks) || check_fail "repair leaks failed: $out"
assert_eq 3 "$(printf '%s' "$out" | jq '."leaks-fixed"')" "leaks fixed"
assert_eq 0 "$(printf '%s' "$out" | jq '.leaks')" "leaks left"
qemu-img check -q leak.qcow2 || check_fail "qemu-img still finds errors after leak repair"
qemu-img compare -q leak.qcow2 leak.orig.qcow2 || check_fail "leak repair changed the content"
compare_check "after leak repair" leak.qcow2

# ---- corruptions -------------------------------------------------------------------
qemu-img create -q -f qcow2 bad.qcow2 16M
qio -c "write -P 0x41 0 1M" -c "write -P 0x42 4M 64k" bad.qcow2
cp bad.qcow2 bad.orig.qcow2
d=$(host_of bad.qcow2 $((4 << 20)))
l1=$(be64 bad.qcow2 40)
l2=$(( $(be64 bad.qcow2 "$l1") & 0x00fffffffffffe00 ))
poke_refcount bad.qcow2 "$d" 0      # data cluster: refcount too low (+ COPIED)
poke_refcount bad.qcow2 "$l2" 2     # L2 table: leak (+ COPIED on the L1 entry)
compare_check "refcount too low and too high" bad.qcow2
"$IMGTOOL" check bad.qcow2 qcow2 --repair leaks >/dev/null
compare_check "after repairing leaks only" bad.qcow2
[ "$(qemu-img check --output=json bad.qcow2 2>/dev/null | jq '.corruptions // 0')" -gt 0 ] ||
    check_fail "repairing leaks should not repair corruptions"
out=$("$IMGTOOL" check bad.qcow2 qcow2 --repair all) || check_fail "repair all failed: $out"
[ "$(printf '%s' "$out" | jq '."corruptions-fixed"')" -gt 0 ] || check_fail "nothing fixed: $out"
qemu-img check -q bad.qcow2 || check_fail "qemu-img still finds errors after repair all"
qemu-img compare -q bad.qcow2 bad.orig.qcow2 || check_fail "repair changed the content"
compare_check "after repair all" bad.qcow2
# the repaired image is usable for writes
"$IMGTOOL" write bad.qcow2 qcow2 4194304 65536 0x43 || check_fail "write after repair"
qemu-img check -q bad.qcow2 || check_fail "write after repair made errors"
qemu-io -f qcow2 -c "read -P 0x43 4M 64k" bad.qcow2 | grep -q "^read" || check_fail "write after repair lost"

# ---- a misaligned data pointer in an L2 table ------------------------------------------
qemu-img create -q -f qcow2 mis.qcow2 16M
qio -c "write -P 0x44 0 256k" mis.qcow2
l1=$(be64 mis.qcow2 40)
l2=$(( $(be64 mis.qcow2 "$l1") & 0x00fffffffffffe00 ))
e0=$(( $(be64 mis.qcow2 "$l2") & 0x00fffffffffffe00 ))
bad=$((e0 + 512))     # entry 1 now points into entry 0's cluster, unaligned
hex=$(printf '%016x' $((bad | (1 << 63))))
printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" |
    dd of=mis.qcow2 bs=1 seek=$((l2 + 8)) conv=notrunc status=none
compare_check "misaligned L2 entry" mis.qcow2

# ---- dirty lazy-refcounts image: repaired when opened for write -----------------------
qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 8M
# writethrough: L2 updates reach the file, lazy refcount updates do not
(qemu-io -f qcow2 -t writethrough -c "write -P 0x55 0 1M" -c "write -P 0x56 2M 64k" \
    -c "sigraise 9" lazy.qcow2 >/dev/null 2>&1; exit $?) 2>/dev/null
[ $(( $(be64 lazy.qcow2 72) & 1 )) -eq 1 ] || fail "qemu-io left no dirty image"
compare_check "dirty lazy-refcounts image" lazy.qcow2
"$IMGTOOL" write lazy.qcow2 qcow2 $((3 << 20)) 4096 0x57 || check_fail "write to the dirty image failed"
assert_eq 0 $(( $(be64 lazy.qcow2 72) & 1 )) "dirty bit after gvmd's open"
qemu-img check -q lazy.qcow2 || check_fail "dirty image not repaired"
for p in "0x55 0 1M" "0x56 2M 64k" "0x57 3M 4k"; do
    set -- $p
    qemu-io -f qcow2 -c "read -P $1 $2 $3" lazy.qcow2 | grep -q "^read" ||
        check_fail "content $p lost in the repair"
done
compare_check "repaired lazy image" lazy.qcow2
exit 0
