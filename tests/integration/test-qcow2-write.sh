#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The qcow2 write path (gvmd/qcow2-write.c, gvmd/qcow2-refcount.c): the
# same random writes and zero writes (fixed seeds) are done by gvmd's engine
# (imgtool ops) on one copy of an image and by qemu-io on another; then
# `qemu-img check` must find no corruption and no leak in gvmd's copy, and
# `qemu-img compare` must find both copies identical.  Cases: v3 and v2,
# refcount widths 1/4/16/64, 512-byte clusters with 64-bit refcounts (L2
# allocation and refcount-table growth), a backing chain (partial-cluster
# copy-on-write from backing data), an internal snapshot (kept intact),
# compressed clusters being overwritten; a crash (SIGKILL through the
# faulty store) before every write of two workloads never leaves a
# corruption; then the same on a gluster volume (gvmd through libgfapi, the
# qemu oracle on a FUSE mount).
. "$GVM_TESTDIR/lib.sh"
need_fault_injection

need qemu-img qemu-io od awk jq
IMGTOOL=$GVM_TOOLSDIR/imgtool
[ -x "$IMGTOOL" ] || skip "imgtool is not built"
# Work in memory where we can: every allocating write fsyncs several times,
# and on a disk that, not the engine, would set the test's pace.
WORK=$TEST_TMP
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    WORK=$(mktemp -d /dev/shm/gvmtest.qcow2-write.XXXXXX) || fail "mktemp"
    at_exit "rm -rf '$WORK'"
fi
cd "$WORK" || fail "no test directory"

# gen_ops SEED N SIZE MAXLEN ZERO% ALIGN: N random operations inside SIZE
# bytes, lengths 1..MAXLEN; ZERO% of them zero writes; about half of them
# rounded to multiples of ALIGN (whole clusters), the rest at byte offsets.
gen_ops() {
    awk -v seed="$1" -v n="$2" -v size="$3" -v maxlen="$4" -v zp="$5" -v al="$6" 'BEGIN {
        srand(seed)
        for (i = 0; i < n; i++) {
            len = 1 + int(rand() * maxlen)
            if (len > size) len = size
            off = int(rand() * (size - len + 1))
            if (rand() < 0.5) {
                off = int(off / al) * al
                len = int((len + al - 1) / al) * al
                if (off + len > size) len = size - off
                if (len < 1) { off = 0; len = al }
            }
            if (rand() * 100 < zp)
                printf "z %d %d\n", off, len
            else
                printf "w %d %d 0x%02x\n", off, len, 1 + int(rand() * 255)
        }
    }'
}

# qemu_ops IMAGE OPSFILE: the same operations through qemu-io.
qemu_ops() {
    local img=$1 ops=$2 op a b c args=() out
    while read -r op a b c; do
        case $op in
            w) args+=(-c "write -P $c $a $b") ;;
            z) args+=(-c "write -z $a $b") ;;
        esac
    done <"$ops"
    out=$(qemu-io -f qcow2 "${args[@]}" "$img" 2>&1) || fail "qemu-io on $img: $out"
    if printf '%s' "$out" | grep -qiE 'error|failed'; then
        fail "qemu-io on $img: $(printf '%s' "$out" | grep -iE 'error|failed' | head -3)"
    fi
}

# gvm_ops IMAGE OPSFILE [imgtool options...]
gvm_ops() {
    local img=$1 ops=$2
    shift 2
    "$IMGTOOL" "$@" ops "$img" qcow2 "$ops" || check_fail "imgtool ops on $img failed"
}

# verify WHAT GVM-IMAGE QEMU-IMAGE: gvmd's copy checks clean and reads the
# same as qemu's.
verify() {
    local what=$1 gi=$2 qi=$3 out
    out=$(qemu-img check "$gi" 2>&1) ||
        check_fail "$what: qemu-img check of gvmd's image failed: $out"
    out=$(qemu-img compare "$gi" "$qi" 2>&1) ||
        check_fail "$what: gvmd's and qemu's images differ: $out"
    note "$what: clean and identical"
}

# header fields (big endian) of a qcow2 file
be32() { od -An -tu1 -j "$2" -N4 "$1" | awk '{ print ($1 * 16777216) + ($2 * 65536) + ($3 * 256) + $4 }'; }
be64() { od -An -tu1 -j "$2" -N8 "$1" | awk '{ v = 0; for (i = 1; i <= 8; i++) v = v * 256 + $i; printf "%.0f\n", v }'; }

# run_case NAME SEED N SIZE MAXLEN ZERO% CREATE-OPTIONS: fresh image, ops
# by both engines, verify.
run_case() {
    local name=$1 seed=$2 n=$3 size=$4 maxlen=$5 zp=$6 opts=$7 cs
    qemu-img create -q -f qcow2 -o "$opts" "$name.qcow2" "$size" || fail "create $name"
    cs=$((1 << $(be32 "$name.qcow2" 20)))
    cp "$name.qcow2" "$name.ref.qcow2"
    gen_ops "$seed" "$n" "$size" "$maxlen" "$zp" "$cs" >"$name.ops"
    gvm_ops "$name.qcow2" "$name.ops"
    qemu_ops "$name.ref.qcow2" "$name.ops"
    verify "$name" "$name.qcow2" "$name.ref.qcow2"
}

# ---- plain images ----------------------------------------------------------
run_case v3-64k 11 150 $((16 << 20)) $((300 << 10)) 20 "cluster_size=65536"
run_case v2-64k 12 150 $((16 << 20)) $((300 << 10)) 20 "compat=0.10,cluster_size=65536"
run_case v3-4k-rc1 13 120 $((4 << 20)) $((40 << 10)) 15 "cluster_size=4096,refcount_bits=1"
run_case v3-4k-rc4 14 120 $((4 << 20)) $((40 << 10)) 15 "cluster_size=4096,refcount_bits=4"
run_case v2-512 15 150 $((2 << 20)) $((20 << 10)) 15 "compat=0.10,cluster_size=512"

# 512-byte clusters, 64-bit refcounts: a refcount block counts 64 clusters
# (32 KiB) and one refcount-table cluster 64 blocks (2 MiB), so filling a
# few MiB allocates many L2 tables and refcount blocks and must grow the
# refcount table.
name=grow
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 $name.qcow2 6M
cp $name.qcow2 $name.ref.qcow2
rt0=$(be64 $name.qcow2 48)
rtc0=$(be32 $name.qcow2 56)
{ echo "w 0 $((5 << 20)) 0x31"; gen_ops 16 200 $((6 << 20)) 8192 10 512; } >$name.ops
gvm_ops $name.qcow2 $name.ops
qemu_ops $name.ref.qcow2 $name.ops
verify "$name" $name.qcow2 $name.ref.qcow2
rtc1=$(be32 $name.qcow2 56)
[ "$rtc1" -gt "$rtc0" ] ||
    check_fail "refcount table did not grow ($rtc0 -> $rtc1 clusters)"
[ "$(be64 $name.qcow2 48)" != "$rt0" ] || check_fail "refcount table did not move"
note "refcount table grew from $rtc0 to $rtc1 clusters"

# ---- backing chain: partial clusters merge with backing data ----------------
qemu-img create -q -f qcow2 -o cluster_size=65536 base.qcow2 8M
qemu-io -f qcow2 -c "write -P 0x61 0 3M" -c "write -P 0x62 3M 3M" -c "write -z 6M 512k" \
    base.qcow2 >/dev/null || fail "fill base"
for v in 3 2; do
    compat=1.1
    [ $v -eq 2 ] && compat=0.10
    name=ovl-v$v
    qemu-img create -q -f qcow2 -o compat=$compat,cluster_size=4096 \
        -b base.qcow2 -F qcow2 $name.qcow2 || fail "create $name"
    cp $name.qcow2 $name.ref.qcow2
    gen_ops $((20 + v)) 150 $((8 << 20)) 20000 25 4096 >$name.ops
    gvm_ops $name.qcow2 $name.ops
    qemu_ops $name.ref.qcow2 $name.ops
    verify "$name" $name.qcow2 $name.ref.qcow2
done
# the backing file itself was not touched
qemu-img check -q base.qcow2 || check_fail "base image changed"

# ---- internal snapshot: shared clusters are copied, the snapshot survives ---
name=snap
qemu-img create -q -f qcow2 -o cluster_size=4096 $name.qcow2 4M
qemu-io -f qcow2 -c "write -P 0x41 0 4M" -c "write -z 1M 64k" $name.qcow2 >/dev/null
qemu-img snapshot -c s1 $name.qcow2 || fail "snapshot create"
qemu-io -f qcow2 -c "write -P 0x42 2M 100k" $name.qcow2 >/dev/null
cp $name.qcow2 $name.pre.qcow2
qemu-img snapshot -a s1 $name.pre.qcow2 || fail "snapshot apply (pre)"
cp $name.qcow2 $name.ref.qcow2
gen_ops 31 150 $((4 << 20)) 20000 20 4096 >$name.ops
gvm_ops $name.qcow2 $name.ops
qemu_ops $name.ref.qcow2 $name.ops
verify "$name" $name.qcow2 $name.ref.qcow2
cp $name.qcow2 $name.back.qcow2
qemu-img snapshot -a s1 $name.back.qcow2 || check_fail "snapshot apply after gvmd's writes"
qemu-img check -q $name.back.qcow2 || check_fail "image check after reverting to s1"
qemu-img compare -q $name.back.qcow2 $name.pre.qcow2 ||
    check_fail "snapshot s1 content changed by gvmd's writes"

# ---- compressed clusters overwritten -------------------------------------------
qemu-img create -q -f qcow2 src.qcow2 4M
qemu-io -f qcow2 -c "write -P 0x71 0 2M" -c "write -P 0x72 2M 1M" src.qcow2 >/dev/null
qemu-img convert -c -O qcow2 -o cluster_size=65536 src.qcow2 comp.qcow2 || fail "convert -c"
cp comp.qcow2 comp.ref.qcow2
gen_ops 41 60 $((4 << 20)) 150000 25 65536 >comp.ops
gvm_ops comp.qcow2 comp.ops
qemu_ops comp.ref.qcow2 comp.ops
verify compressed comp.qcow2 comp.ref.qcow2

# ---- crash at every write: never a corruption ---------------------------------
# imgtool under GVMD_FAULT=write:N:kill dies (SIGKILL) just before its Nth
# write reaches the file; whatever prefix of the write sequence is on disk,
# qemu-img check may find leaks but no corruption, the snapshot still reads
# as before, and gvmd's leak repair leaves the image clean.
crash_series() { # NAME BASE-IMAGE OPSFILE FIRST-N-ALL STEP-AFTER
    local name=$1 base=$2 ops=$3 all=$4 step=$5 n=1 rc out points=0
    while [ $n -lt 2000 ]; do
        cp "$base" "$name.c.qcow2"
        # (a subshell, so bash's "Killed" notice stays out of the log)
        (GVMD_FAULT="write:$n:kill" "$IMGTOOL" ops "$name.c.qcow2" qcow2 "$ops"; exit $?) 2>/dev/null
        rc=$?
        out=$(qemu-img check "$name.c.qcow2" 2>&1); crc=$?
        if [ $crc -ne 0 ] && [ $crc -ne 3 ]; then
            check_fail "$name: crash before write $n left a corrupt image: $(printf '%s' "$out" | head -5)"
            return
        fi
        if [ -n "${SNAP_REF:-}" ] && [ $((points % 3)) -eq 0 ]; then
            cp "$name.c.qcow2" "$name.s.qcow2"
            qemu-img snapshot -a s1 "$name.s.qcow2" &&
                qemu-img compare -q "$name.s.qcow2" "$SNAP_REF" ||
                check_fail "$name: crash before write $n damaged snapshot s1"
        fi
        if [ $crc -eq 3 ] && [ $((points % 4)) -eq 0 ]; then
            "$IMGTOOL" check "$name.c.qcow2" qcow2 --repair leaks >/dev/null
            qemu-img check -q "$name.c.qcow2" || check_fail "$name: leaks after crash $n not repaired"
        fi
        points=$((points + 1))
        [ $rc -eq 0 ] && break      # the run got through: no write left
        if [ $n -lt "$all" ]; then n=$((n + 1)); else n=$((n + step)); fi
    done
    note "$name: $points crash points, none corrupt"
}
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 crash1.qcow2 1M
qemu-io -f qcow2 -c "write -P 0x51 0 512k" -c "write -P 0x52 700k 20k" crash1.qcow2 >/dev/null
qemu-img snapshot -c s1 crash1.qcow2
cp crash1.qcow2 crash1.pre.qcow2
qemu-img snapshot -a s1 crash1.pre.qcow2
printf '%s\n' "w 1000 3000 0x61" "w 300000 70000 0x62" "z 100000 5000" "z 0 4096" \
    "w 600000 40000 0x63" "z 700000 10240" >crash1.ops
SNAP_REF=crash1.pre.qcow2 crash_series crash1 crash1.qcow2 crash1.ops 400 1
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 crash2.qcow2 3M
echo "w 0 2600000 0x71" >crash2.ops
crash_series crash2 crash2.qcow2 crash2.ops 20 17

# ---- gluster: gvmd through libgfapi, the oracle on a FUSE mount -------------
# On the virt-profile volume and on the plain one.  The mount caches nothing
# (gluster_fuse_mount): it reads at once what gvmd wrote through its own
# client.  (GVM_TEST_NO_GLUSTER=1 leaves this part out.)
gluster_write() { # LABEL VOLUME
    local lb=$1 vol=$2 m=$WORK/mnt-$1 gd=qcow2w-test-$$
    gluster_fuse_mount "$m" "$vol"
    mkdir -p "$m/$gd" || fail "$lb: cannot write to the FUSE mount"
    at_exit "rm -rf '$m/$gd'"
    qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 "$m/$gd/g.qcow2" 4M
    cp "$m/$gd/g.qcow2" "g-$lb.ref.qcow2"
    { echo "w 0 $((3 << 20)) 0x33"; gen_ops 51 150 $((4 << 20)) 8192 15 512; } >"g-$lb.ops"
    gvm_ops "$gd/g.qcow2" "g-$lb.ops" --gluster "$GLUSTER_HOST:$vol"
    qemu_ops "g-$lb.ref.qcow2" "g-$lb.ops"
    verify "$lb" "mnt-$lb/$gd/g.qcow2" "g-$lb.ref.qcow2"
    [ "$(be32 "$m/$gd/g.qcow2" 56)" -gt 1 ] || check_fail "$lb: refcount table did not grow"
    # gvmd's check through libgfapi agrees with qemu-img's on the mount
    local gchk qchk f
    gchk=$("$IMGTOOL" --gluster "$GLUSTER_HOST:$vol" check "$gd/g.qcow2" qcow2) ||
        check_fail "$lb: gvmd's check failed: $gchk"
    qchk=$(qemu-img check --output=json "$m/$gd/g.qcow2")
    for f in allocated-clusters image-end-offset total-clusters; do
        assert_eq "$(printf '%s' "$qchk" | jq ".\"$f\" // 0")" \
                  "$(printf '%s' "$gchk" | jq ".\"$f\" // 0")" "$lb check: $f"
    done
}
if [ -z "${GVM_TEST_NO_GLUSTER:-}" ] && { [ -n "${GVM_GLUSTER_VOLUME:-}" ] || { command -v glusterd >/dev/null && [ "$(id -u)" -eq 0 ]; }; }; then
    need_gluster
    gluster_write gluster-virt "${GVM_GLUSTER_VOLUME_VIRT:?the fixture has no virt volume}"
    gluster_write gluster-plain "${GVM_GLUSTER_VOLUME_PLAIN:?the fixture has no plain volume}"
else
    note "gluster part not run: no glusterd or not root"
fi
exit 0
