#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-qcow2-read — gvmd's qcow2 engine against qemu-img as the oracle:
# for images qemu-img/qemu-io make in many shapes, `imgtool map` must equal
# `qemu-img map --output=json` (jq -S) and `imgtool read` must equal
# `qemu-img convert -O raw` byte for byte; images imgtool creates must pass
# `qemu-img check` and show the asked values in `qemu-img info`; malformed
# headers must be refused as Corrupt/Unsupported.  A subset runs again on
# the gluster volume when one is available.
. "$GVM_TESTDIR/lib.sh"

need qemu-img qemu-io jq cmp
IMGTOOL=$GVM_TOOLSDIR/imgtool
[ -x "$IMGTOOL" ] || fail "imgtool not built at $IMGTOOL"

D=$TEST_TMP/img
mkdir -p "$D"
cd "$D" || fail "cd $D"
ncompared=0
T0=$(date +%s)
section() { note "$(( $(date +%s) - T0 ))s: $*"; }

qio() { # qemu-io on a file, failing the test if it fails
    out=$(qemu-io "$@" 2>&1) || check_fail "qemu-io $*: $out"
    case $out in *rror*) check_fail "qemu-io $*: $out" ;; esac
}
qimg() { out=$(qemu-img "$@" 2>&1) || check_fail "qemu-img $*: $out"; }

# Without SEEK_DATA/SEEK_HOLE in the store, holes in raw files (and, for
# images QEMU takes as metadata-preallocated, in data clusters) cannot be
# reported like qemu-img does: those maps are then not compared.
SEEK=$("$IMGTOOL" --dir "$D" caps . | jq '."seek-hole"')
[ "$SEEK" = true ] || note "the dir store cannot seek holes: hole-sensitive maps not compared"

# compare IMAGE FMT [imgtool options]: map and content against qemu-img.
# compare_nohole: the same, but the map only if the store can seek holes.
compare_nohole() {
    if [ "$SEEK" = true ]; then compare "$@"; else NOMAP=1 compare "$@"; fi
}
compare() {
    img=$1 fmt=$2; shift 2
    if ! "$IMGTOOL" --dir "$D" "$@" map "$img" "$fmt" >"$img.map.gvm" 2>"$img.err"; then
        check_fail "imgtool map $img: $(cat "$img.err")"; return; fi
    qemu-img map -f "$fmt" --output=json "$img" >"$img.map.qemu" ||
        { check_fail "qemu-img map $img"; return; }
    if [ -z "${NOMAP:-}" ] &&
       [ "$(jq -s -S '.[0] == .[1]' "$img.map.qemu" "$img.map.gvm")" != true ]; then
        check_fail "map of $img differs from qemu-img:"
        diff <(jq -S . "$img.map.qemu") <(jq -S . "$img.map.gvm") >&2; fi
    if ! "$IMGTOOL" --dir "$D" "$@" read "$img" "$fmt" "$img.raw.gvm" 2>"$img.err"; then
        check_fail "imgtool read $img: $(cat "$img.err")"; return; fi
    qemu-img convert -f "$fmt" -O raw "$img" "$img.raw.qemu" ||
        { check_fail "qemu-img convert $img"; return; }
    cmp "$img.raw.qemu" "$img.raw.gvm" || check_fail "content of $img differs from qemu-img convert"
    rm -f "$img.raw.gvm" "$img.raw.qemu"
    ncompared=$((ncompared + 1))
}

# Patterns in overlapping ranges, spread over the image.
fill() { # image fmt seed
    s=$3
    qio -f "$2" -c "write -P $((s + 1)) 0 3k" -c "write -P $((s + 2)) 70k 200k" \
        -c "write -P $((s + 3)) 1M 1536k" -c "write -P $((s + 4)) 3000k 5k" "$1"
}

# ---- cluster sizes, versions, refcount widths -----------------------------
section "cluster sizes, versions, refcount widths"
for cs in 512 4096 65536 2097152; do
    compats="1.1"
    case $cs in 512|65536) compats="0.10 1.1" ;; esac
    for compat in $compats; do
        f=cs$cs-$compat.qcow2
        qimg create -q -f qcow2 -o cluster_size=$cs,compat=$compat "$f" 4M
        fill "$f" qcow2 0
        compare "$f" qcow2
    done
done
for rb in 1 16 64; do
    f=rb$rb.qcow2
    qimg create -q -f qcow2 -o refcount_bits=$rb,cluster_size=4096 "$f" 4M
    fill "$f" qcow2 10
    compare "$f" qcow2
done

# ---- zero clusters over backing data --------------------------------------
section "zero clusters over backing data"
qimg create -q -f qcow2 zbase.qcow2 4M
qio -c "write -P 0x11 0 4M" zbase.qcow2
qimg create -q -f qcow2 -b zbase.qcow2 -F qcow2 ztop.qcow2
qio -c "write -P 0x22 64k 128k" -c "write -z 128k 256k" -c "write -z 1M 64k" \
    -c "write -P 0x23 2M 64k" -c "write -z -u 2M 64k" -c "write -z 3M 12k" ztop.qcow2
compare ztop.qcow2 qcow2
# zero flag keeping the preallocated cluster (no backing)
qimg create -q -f qcow2 zalloc.qcow2 2M
qio -c "write -P 0x31 0 1M" -c "write -z 64k 128k" -c "write -z -u 512k 64k" zalloc.qcow2
compare zalloc.qcow2 qcow2

# ---- compressed ------------------------------------------------------------
section "compressed"
qimg create -q -f qcow2 csrc.qcow2 4M
fill csrc.qcow2 qcow2 20
qio -c "write -P 0 3200k 64k" csrc.qcow2
for cs in 4096 65536; do
    qimg convert -c -f qcow2 -O qcow2 -o cluster_size=$cs csrc.qcow2 comp$cs.qcow2
    compare comp$cs.qcow2 qcow2
done
# compressed base under an overlay written across cluster boundaries
qimg create -q -f qcow2 -b comp65536.qcow2 -F qcow2 compov.qcow2
qio -c "write -P 0x41 100k 50k" compov.qcow2
compare compov.qcow2 qcow2

# ---- internal snapshots ---------------------------------------------------
section "internal snapshots"
qimg create -q -f qcow2 snap.qcow2 4M
fill snap.qcow2 qcow2 30
qimg snapshot -c s1 snap.qcow2
qio -c "write -P 0x51 1M 100k" -c "write -z 0 64k" snap.qcow2
qimg snapshot -c s2 snap.qcow2
qio -c "write -P 0x52 2M 64k" snap.qcow2
compare_nohole snap.qcow2 qcow2
info=$("$IMGTOOL" --dir "$D" info snap.qcow2 qcow2)
assert_eq 2 "$(jq .snapshots <<<"$info")" "snapshots counted in snap.qcow2"
# writing into shared L2 tables copies them: the snapshots stay intact
qemu-img convert -l snapshot.name=s1 -O raw snap.qcow2 s1.before
"$IMGTOOL" --dir "$D" write snap.qcow2 qcow2 60k 100k 0x53 || check_fail "write to snap.qcow2"
qemu-img check snap.qcow2 >/dev/null 2>&1 || check_fail "qemu-img check after writing over snapshots"
qemu-img convert -l snapshot.name=s1 -O raw snap.qcow2 s1.after
cmp s1.before s1.after || check_fail "snapshot s1 changed by a write to the active layer"
qio -c "read -P 0x53 60k 100k" snap.qcow2
compare_nohole snap.qcow2 qcow2

# ---- lazy refcounts left dirty ----------------------------------------------
section "lazy refcounts left dirty"
qimg create -q -f qcow2 -o lazy_refcounts=on dirty.qcow2 4M
sh -c 'qemu-io -c "write -P 0x61 0 300k" -c "write -P 0x62 1M 64k" -c "sigraise 9" dirty.qcow2' >/dev/null 2>&1
info=$("$IMGTOOL" --dir "$D" info dirty.qcow2 qcow2)
assert_eq true "$(jq .dirty <<<"$info")" "dirty bit seen in dirty.qcow2"
assert_eq true "$(jq '."lazy-refcounts"' <<<"$info")" "lazy refcounts seen in dirty.qcow2"
compare dirty.qcow2 qcow2
qemu-img check dirty.qcow2 >/dev/null 2>&1 && check_fail "qemu left dirty.qcow2 with consistent refcounts: the case is not tested"
# opening it for writing repairs the refcounts and clears the dirty bit; an
# unknown autoclear bit (bit 5) is cleared too
printf '\x00\x00\x00\x00\x00\x00\x00\x20' | dd of=dirty.qcow2 bs=1 seek=88 conv=notrunc status=none
"$IMGTOOL" --dir "$D" write dirty.qcow2 qcow2 2M 64k 0x63 || check_fail "write to a dirty image"
qemu-img check dirty.qcow2 >/dev/null 2>&1 || check_fail "dirty.qcow2 not repaired on write-open"
assert_eq false "$("$IMGTOOL" --dir "$D" info dirty.qcow2 qcow2 | jq .dirty)" "dirty bit after write-open"
assert_eq 0000000000000000 "$(od -An -tx1 -j 88 -N 8 dirty.qcow2 | tr -d ' \n')" "autoclear bits after write-open"
qio -c "read -P 0x61 0 300k" -c "read -P 0x62 1M 64k" -c "read -P 0x63 2M 64k" dirty.qcow2
compare dirty.qcow2 qcow2

# ---- raw bases, shorter and longer backing files -------------------------------
section "raw bases, shorter and longer backing files"
qimg create -q -f raw rawbase.raw 4M
qio -f raw -c "write -P 0x71 0 4M" rawbase.raw
qimg create -q -f qcow2 -b rawbase.raw -F raw rawtop.qcow2
qio -c "write -P 0x72 1M 100k" rawtop.qcow2
compare rawtop.qcow2 qcow2
compare rawbase.raw raw
# a sparse raw base: holes are reported as qemu does when the store can seek
qimg create -q -f raw sparse.raw 4M
qio -f raw -c "write -P 0x73 1M 64k" sparse.raw
qimg create -q -f qcow2 -b sparse.raw -F raw sparsetop.qcow2
qio -c "write -P 0x74 0 8k" sparsetop.qcow2
compare_nohole sparsetop.qcow2 qcow2

qimg create -q -f qcow2 short.qcow2 2M
qio -c "write -P 0x81 0 2M" short.qcow2
qimg create -q -f qcow2 -b short.qcow2 -F qcow2 overshort.qcow2 6M
qio -c "write -P 0x82 1984k 128k" -c "write -P 0x83 5M 64k" overshort.qcow2
compare overshort.qcow2 qcow2
qimg create -q -f qcow2 long.qcow2 8M
qio -c "write -P 0x84 0 8M" long.qcow2
qimg create -q -f qcow2 -b long.qcow2 -F qcow2 overlong.qcow2 3M
qio -c "write -P 0x85 1M 64k" overlong.qcow2
compare overlong.qcow2 qcow2
# v2 overlay on a shorter v2 base
qimg create -q -f qcow2 -o compat=0.10 v2base.qcow2 1M
qio -c "write -P 0x86 0 1M" v2base.qcow2
qimg create -q -f qcow2 -o compat=0.10 -b v2base.qcow2 -F qcow2 v2top.qcow2 3M
qio -c "write -P 0x87 512k 1M" v2top.qcow2
compare v2top.qcow2 qcow2

# ---- 3-deep chain, mixed cluster sizes ----------------------------------------------
section "3-deep chain"
qimg create -q -f qcow2 -o cluster_size=512 c1.qcow2 5M
qio -c "write -P 0x91 0 5M" c1.qcow2
qimg create -q -f qcow2 -o cluster_size=2M -b c1.qcow2 -F qcow2 c2.qcow2
qio -c "write -P 0x92 1M 1M" -c "write -z 3M 64k" c2.qcow2
qimg create -q -f qcow2 -o cluster_size=4096 -b c2.qcow2 -F qcow2 c3.qcow2
qio -c "write -P 0x93 1500k 1M" -c "write -P 0x94 4092k 8k" c3.qcow2
compare c3.qcow2 qcow2
# a sub-range map equals qemu-img map --start-offset/--max-length
"$IMGTOOL" --dir "$D" map c3.qcow2 qcow2 1000000 3000000 >sub.gvm ||
    check_fail "imgtool map with a range"
qemu-img map --output=json --start-offset 1000000 --max-length 3000000 c3.qcow2 >sub.qemu
diff <(jq -S . sub.qemu) <(jq -S . sub.gvm) >&2 || check_fail "ranged map of c3.qcow2 differs"

# ---- imgtool create: every option, checked by qemu-img ----------------------------
section "imgtool create"
created=0
for opts in "" "--compat 0.10" "--cluster-size 512" "--cluster-size 2M" \
            "--refcount-bits 1" "--refcount-bits 64 --cluster-size 4096" \
            "--lazy-refcounts" "--compat 1.1 --refcount-bits 8 --lazy-refcounts --cluster-size 16384"; do
    created=$((created + 1))
    f=new$created.qcow2
    # shellcheck disable=SC2086
    "$IMGTOOL" --dir "$D" create "$f" qcow2 48M $opts 2>&1 || { check_fail "create $opts"; continue; }
    qemu-img check "$f" >/dev/null 2>&1 || check_fail "qemu-img check of $f ($opts) is not clean"
    i=$(qemu-img info --output=json "$f")
    read -r gsize gcs gcompat grb glazy <<<"$(jq -r '[."virtual-size", ."cluster-size",
        ."format-specific".data.compat, ."format-specific".data."refcount-bits",
        ."format-specific".data."lazy-refcounts"] | map(tostring) | join(" ")' <<<"$i")"
    assert_eq 50331648 "$gsize" "virtual size of $f ($opts)"
    cs=65536; compat=1.1; rb=16; lazy=false
    set -- $opts
    while [ $# -gt 0 ]; do
        case $1 in
        --compat) compat=$2; shift ;;
        --cluster-size) case $2 in 2M) cs=2097152 ;; *) cs=$2 ;; esac; shift ;;
        --refcount-bits) rb=$2; shift ;;
        --lazy-refcounts) lazy=true ;;
        esac; shift
    done
    assert_eq "$cs" "$gcs" "cluster size of $f"
    assert_eq "$compat" "$gcompat" "compat of $f"
    assert_eq "$rb" "$grb" "refcount bits of $f"
    [ "$compat" = 0.10 ] && lazy=null   # qemu-img shows no such field for v2
    assert_eq "$lazy" "$glazy" "lazy refcounts of $f"
    # qemu can write into it and it stays consistent
    qio -c "write -P 0xa1 1M 3M" -c "write -P 0xa2 40M 64k" "$f"
    qemu-img check "$f" >/dev/null 2>&1 || check_fail "qemu-img check of $f after qemu writes"
    compare "$f" qcow2
done
# raw, a backing file with format and size taken from it
"$IMGTOOL" --dir "$D" create newraw.raw raw 5M || check_fail "create raw"
assert_eq 5242880 "$(qemu-img info --output=json -f raw newraw.raw | jq '."virtual-size"')" "raw size"
mkdir -p sub
"$IMGTOOL" --dir "$D" create sub/ov.qcow2 qcow2 0 --backing ../c3.qcow2 --backing-fmt qcow2 ||
    check_fail "create overlay"
i=$(qemu-img info --output=json sub/ov.qcow2)
assert_eq '"../c3.qcow2"' "$(jq '."backing-filename"' <<<"$i")" "backing name of sub/ov.qcow2"
assert_eq '"qcow2"' "$(jq '."backing-filename-format"' <<<"$i")" "backing format of sub/ov.qcow2"
assert_eq "$(qemu-img info --output=json c3.qcow2 | jq '."virtual-size"')" \
    "$(jq '."virtual-size"' <<<"$i")" "overlay size taken from the backing file"
qemu-img check sub/ov.qcow2 >/dev/null 2>&1 || check_fail "qemu-img check sub/ov.qcow2"
compare sub/ov.qcow2 qcow2
# v2 overlay with a backing file
"$IMGTOOL" --dir "$D" create ov2.qcow2 qcow2 0 --compat 0.10 --backing c3.qcow2 --backing-fmt qcow2 ||
    check_fail "create v2 overlay"
qemu-img check ov2.qcow2 >/dev/null 2>&1 || check_fail "qemu-img check ov2.qcow2"
compare ov2.qcow2 qcow2
# refusals: existing file, bad options; nothing is left behind
"$IMGTOOL" --dir "$D" create ov2.qcow2 qcow2 1M 2>err.txt && check_fail "create over an existing file"
grep -q "AlreadyExists" err.txt || check_fail "create over existing: $(cat err.txt)"
"$IMGTOOL" --dir "$D" create bad.qcow2 qcow2 1M --compat 0.10 --refcount-bits 8 2>err.txt &&
    check_fail "v2 with 8-bit refcounts accepted"
"$IMGTOOL" --dir "$D" create bad.qcow2 qcow2 1M --cluster-size 1000 2>err.txt &&
    check_fail "cluster size 1000 accepted"
"$IMGTOOL" --dir "$D" create bad.qcow2 qcow2 1M --backing c3.qcow2 2>err.txt &&
    check_fail "backing without format accepted"
[ -e bad.qcow2 ] && check_fail "a refused create left bad.qcow2 behind"

# ---- set-backing -------------------------------------------------------------------
section "set-backing"
qimg create -q -f qcow2 -b c2.qcow2 -F qcow2 rb.qcow2
qio -c "write -P 0xb1 0 64k" rb.qcow2
"$IMGTOOL" --dir "$D" set-backing rb.qcow2 c3.qcow2 qcow2 || check_fail "set-backing"
i=$(qemu-img info --output=json rb.qcow2)
assert_eq '"c3.qcow2"' "$(jq '."backing-filename"' <<<"$i")" "backing after set-backing"
assert_eq '"qcow2"' "$(jq '."backing-filename-format"' <<<"$i")" "backing format after set-backing"
qemu-img check rb.qcow2 >/dev/null 2>&1 || check_fail "qemu-img check after set-backing"
compare rb.qcow2 qcow2
# an unknown header extension survives the rewrite byte for byte: insert
# one where the extension list ends (found by walking it)
qimg create -q -f qcow2 -o cluster_size=4096 ext.qcow2 1M
be32() { echo $(( 0x$(od -An -tx1 -j "$2" -N 4 "$1" | tr -d ' \n') )); }
eoff=112
while [ "$(be32 ext.qcow2 $eoff)" -ne 0 ]; do
    eoff=$(( eoff + 8 + ( ($(be32 ext.qcow2 $((eoff + 4))) + 7) / 8 * 8 ) ))
done
printf '\x12\x34\x56\x78\x00\x00\x00\x05hello\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' |
    dd of=ext.qcow2 bs=1 seek=$eoff conv=notrunc status=none
"$IMGTOOL" --dir "$D" set-backing ext.qcow2 rawbase.raw raw || check_fail "set-backing on ext.qcow2"
hdr=$(dd if=ext.qcow2 bs=4096 count=1 status=none | od -An -tx1 -v | tr -d ' \n')
case $hdr in *123456780000000568656c6c6f000000*) ;; *) check_fail "unknown header extension lost" ;; esac
qemu-img check ext.qcow2 >/dev/null 2>&1 || check_fail "qemu-img check ext.qcow2"
compare ext.qcow2 qcow2
"$IMGTOOL" --dir "$D" set-backing ext.qcow2 "" "" || check_fail "removing the backing file"
assert_eq null "$(qemu-img info --output=json ext.qcow2 | jq '."backing-filename"')" "backing removed"
# a name that does not fit in a 512-byte header cluster
qimg create -q -f qcow2 -o cluster_size=512 tiny.qcow2 1M
long=$(printf 'x%.0s' $(seq 1 500))
"$IMGTOOL" --dir "$D" set-backing tiny.qcow2 "$long" qcow2 2>err.txt &&
    check_fail "over-long backing name accepted"
grep -q "do not fit" err.txt || check_fail "no clear error for a long name: $(cat err.txt)"
qemu-img check tiny.qcow2 >/dev/null 2>&1 || check_fail "tiny.qcow2 damaged by a refused rewrite"

# ---- malformed images are refused with a precise error ------------------------------
section "malformed images are refused with a precise error"
corrupt_case() { # name offset hexbytes expected-class expected-words
    cp ztop.qcow2 "$1.qcow2"
    printf "$3" | dd of="$1.qcow2" bs=1 seek="$2" conv=notrunc status=none
    if "$IMGTOOL" --dir "$D" -F qcow2 read "$1.qcow2" qcow2 /dev/null 2>err.txt; then
        check_fail "$1: malformed image accepted"; return; fi
    grep -q "imgtool: $4: .*$5" err.txt || check_fail "$1: unexpected error $(cat err.txt)"
}
corrupt_case magic 0 '\x51\x46\x49\x00' Corrupt "magic"
corrupt_case version 4 '\x00\x00\x00\x07' Corrupt "version 7"
corrupt_case cbits 20 '\x00\x00\x00\x08' Corrupt "cluster_bits 8"
corrupt_case crypt 32 '\x00\x00\x00\x01' Unsupported "encrypted"
corrupt_case l1off 40 '\x00\x00\x00\x00\x00\x03\x00\x01' Corrupt "L1 table offset"
corrupt_case l1past 40 '\x00\x00\x01\x00\x00\x00\x00\x00' Corrupt "L1 table"
corrupt_case rtoff 48 '\x00\x00\x00\x00\x00\x00\x10\x00' Corrupt "refcount table offset"
corrupt_case l1small 36 '\x00\x00\x00\x00' Corrupt "l1_size 0"
corrupt_case incompat 79 '\x40' Corrupt "unknown incompatible"
corrupt_case extl2 79 '\x10' Unsupported "extended L2"
corrupt_case zstd 79 '\x08' Unsupported "compression"
corrupt_case hdrlen 100 '\x00\x00\x00\x65' Corrupt "header_length"
corrupt_case refo 96 '\x00\x00\x00\x07' Corrupt "refcount_order 7"
corrupt_case bfo 8 '\x00\x00\x00\x00\x00\x01\x00\x00' Corrupt "backing"
corrupt_case nsnap 60 '\x00\x02\x00\x00' Corrupt "nb_snapshots"
# the corrupt bit: readable, not writable
cp ztop.qcow2 cbit.qcow2
printf '\x02' | dd of=cbit.qcow2 bs=1 seek=79 conv=notrunc status=none
"$IMGTOOL" --dir "$D" read cbit.qcow2 qcow2 /dev/null || check_fail "a corrupt-marked image is not readable"
assert_eq true "$("$IMGTOOL" --dir "$D" info cbit.qcow2 qcow2 | jq .corrupt)" "corrupt bit in info"
"$IMGTOOL" --dir "$D" write cbit.qcow2 qcow2 0 4k 1 2>err.txt && check_fail "write to a corrupt-marked image"
grep -q "Corrupt: .*marked corrupt" err.txt || check_fail "corrupt bit: $(cat err.txt)"
# persistent dirty bitmaps: readable, writes refused
if qemu-img create -q -f qcow2 bm.qcow2 1M && qemu-img bitmap --add bm.qcow2 b0 2>/dev/null; then
    compare bm.qcow2 qcow2
    "$IMGTOOL" --dir "$D" write bm.qcow2 qcow2 0 4k 1 2>err.txt && check_fail "write with bitmaps accepted"
    grep -q "Unsupported: .*bitmaps" err.txt || check_fail "bitmaps: $(cat err.txt)"
fi
# an L2 entry with reserved bits, and one pointing past the end of the file
l2=$(qemu-img map --output=json ztop.qcow2 >/dev/null; od -An -tx1 -j 196608 -N 8 ztop.qcow2 | tr -d ' ')
cp ztop.qcow2 resv.qcow2
l1e=$(od -An -j $((196608)) -N 8 -tx1 resv.qcow2 | tr -d ' \n')
l2off=$(( 0x$(od -An -j 196608 -N 8 -tx1 ztop.qcow2 | tr -d ' \n') & 0x00fffffffffffe00 ))
[ "$l2off" -gt 0 ] || note "could not find ztop's L2 table (l1e=$l1e $l2)"
if [ "$l2off" -gt 0 ]; then
    # entry 1 (64k..128k) is a data cluster written by qemu-io
    printf '\x80\x00\x00\x00\x00\x05\x00\x02' | dd of=resv.qcow2 bs=1 seek=$((l2off + 8)) conv=notrunc status=none
    "$IMGTOOL" --dir "$D" read resv.qcow2 qcow2 /dev/null 2>err.txt && check_fail "reserved L2 bits accepted"
    grep -q "reserved bits" err.txt || check_fail "reserved L2 bits: $(cat err.txt)"
    cp ztop.qcow2 past.qcow2
    printf '\x80\x00\x00\x10\x00\x00\x00\x00' | dd of=past.qcow2 bs=1 seek=$((l2off + 8)) conv=notrunc status=none
    "$IMGTOOL" --dir "$D" read past.qcow2 qcow2 /dev/null 2>err.txt && check_fail "data past EOF accepted"
    grep -q "past the" err.txt || check_fail "data past EOF: $(cat err.txt)"
    cp ztop.qcow2 meta.qcow2
    printf '\x80\x00\x00\x00\x00\x00\x00\x00' | dd of=meta.qcow2 bs=1 seek=$((l2off + 8)) conv=notrunc status=none
    printf '\x80\x00\x00\x00\x00\x01\x00\x00' | dd of=meta.qcow2 bs=1 seek=$((l2off + 8)) conv=notrunc status=none
    "$IMGTOOL" --dir "$D" read meta.qcow2 qcow2 /dev/null 2>err.txt && check_fail "data in metadata accepted"
    grep -q "metadata" err.txt || check_fail "data in metadata: $(cat err.txt)"
fi
# a v2 image with a zero flag
cp cs65536-0.10.qcow2 v2zero.qcow2
l1=$(( 0x$(od -An -j 40 -N 8 -tx1 v2zero.qcow2 | tr -d ' \n') ))
l2off=$(( 0x$(od -An -j "$l1" -N 8 -tx1 v2zero.qcow2 | tr -d ' \n') & 0x00fffffffffffe00 ))
printf '\x00\x00\x00\x00\x00\x00\x00\x01' | dd of=v2zero.qcow2 bs=1 seek=$((l2off + 8 * 5)) conv=notrunc status=none
"$IMGTOOL" --dir "$D" read v2zero.qcow2 qcow2 /dev/null 2>err.txt && check_fail "zero flag in v2 accepted"
grep -q "zero flag" err.txt || check_fail "v2 zero flag: $(cat err.txt)"
# backing chains: a loop, missing format, depth limit
qimg create -q -f qcow2 loopa.qcow2 1M
qimg create -q -f qcow2 -b loopa.qcow2 -F qcow2 loopb.qcow2
qemu-img rebase -u -b loopb.qcow2 -F qcow2 loopa.qcow2 || check_fail "make loop"
"$IMGTOOL" --dir "$D" read loopb.qcow2 qcow2 /dev/null 2>err.txt && check_fail "loop accepted"
grep -q "Corrupt: .*loops" err.txt || check_fail "loop: $(cat err.txt)"
qimg create -q -f qcow2 nofmt.qcow2 1M
"$IMGTOOL" --dir "$D" set-backing nofmt.qcow2 c3.qcow2 "" || check_fail "set-backing without format"
assert_eq '"c3.qcow2"' "$(qemu-img info --output=json nofmt.qcow2 | jq '."backing-filename"')" "nofmt backing"
if [ "$(qemu-img info --output=json nofmt.qcow2 | jq -r '."backing-filename-format" // "none"')" = none ]; then
    "$IMGTOOL" --dir "$D" read nofmt.qcow2 qcow2 /dev/null 2>err.txt && check_fail "backing without format accepted"
    grep -q "format" err.txt || check_fail "no format: $(cat err.txt)"
    "$IMGTOOL" --dir "$D" -F qcow2 read nofmt.qcow2 qcow2 /dev/null || check_fail "format hint not used"
fi
# d00 over c3 (over c2 over c1), then d01..d62 each over the previous one:
# copies of one overlay with the backing name patched (fast, same length)
"$IMGTOOL" --dir "$D" create d00.qcow2 qcow2 5M --backing c3.qcow2 --backing-fmt qcow2 ||
    check_fail "create d00"
"$IMGTOOL" --dir "$D" create dtmpl.qcow2 qcow2 5M --backing d00.qcow2 --backing-fmt qcow2 ||
    check_fail "create dtmpl"
boff=$(( 0x$(od -An -tx1 -j 8 -N 8 dtmpl.qcow2 | tr -d ' \n') ))
for i in $(seq 1 62); do
    cp dtmpl.qcow2 "$(printf 'd%02d.qcow2' "$i")"
    printf 'd%02d.qcow2' $((i - 1)) |
        dd of="$(printf 'd%02d.qcow2' "$i")" bs=1 seek="$boff" conv=notrunc status=none
done
# below d61: d60..d00 and c3, c2, c1 = 64 backing files; below d62: 65
"$IMGTOOL" --dir "$D" read d61.qcow2 qcow2 /dev/null 2>err.txt ||
    check_fail "64 backing files refused: $(cat err.txt)"
"$IMGTOOL" --dir "$D" read d62.qcow2 qcow2 /dev/null 2>err.txt && check_fail "65 backing files accepted"
grep -q "deeper than 64" err.txt || check_fail "depth: $(cat err.txt)"

note "$ncompared images compared with qemu-img locally"

# ---- the same on gluster (a subset) ---------------------------------------------
section "the same on gluster (a subset)"
# qemu-img/qemu-io make the images on a FUSE mount of the volume; imgtool
# reads them through gfapi (--gluster).
gluster_part() { # VOLUME
    local vol=$1
    M=$TEST_TMP/mnt-$vol
    gluster_fuse_mount "$M" "$vol"
    sub=qcow2r-read-$$
    mkdir -p "$M/$sub" || { check_fail "mkdir on the gluster mount"; return 0; }
    at_exit "rm -rf '$M/$sub'"
    cd "$M/$sub" || return 0
    qimg create -q -f raw gbase.raw 2M
    qio -f raw -c "write -P 0xc1 0 2M" gbase.raw
    qimg create -q -f qcow2 -o compat=0.10,cluster_size=4096 -b gbase.raw -F raw g1.qcow2 3M
    qio -c "write -P 0xc2 1M 1M" g1.qcow2
    qimg create -q -f qcow2 -o cluster_size=512 -b g1.qcow2 -F qcow2 g2.qcow2
    qio -c "write -P 0xc3 1500k 100k" -c "write -z 0 64k" g2.qcow2
    qimg convert -c -f qcow2 -O qcow2 g2.qcow2 gcomp.qcow2
    qimg snapshot -c s1 gcomp.qcow2
    for img in g2.qcow2 gcomp.qcow2 g1.qcow2; do
        "$IMGTOOL" --gluster "$GLUSTER_HOST:$vol" map "$sub/$img" qcow2 \
            >"$D/$img.map.gvm" 2>"$D/g.err" ||
            { check_fail "gluster map $img: $(cat "$D/g.err")"; continue; }
        qemu-img map --output=json "$img" >"$D/$img.map.qemu"
        diff <(jq -S . "$D/$img.map.qemu") <(jq -S . "$D/$img.map.gvm") >&2 ||
            check_fail "gluster map of $img differs from qemu-img"
        "$IMGTOOL" --gluster "$GLUSTER_HOST:$vol" read "$sub/$img" qcow2 \
            "$D/$img.gvm" 2>"$D/g.err" ||
            { check_fail "gluster read $img: $(cat "$D/g.err")"; continue; }
        qemu-img convert -O raw "$img" "$D/$img.qemu"
        cmp "$D/$img.qemu" "$D/$img.gvm" || check_fail "gluster content of $img differs"
        ncompared=$((ncompared + 1))
    done
    # create and set-backing through gfapi, checked by qemu-img on the mount
    "$IMGTOOL" --gluster "$GLUSTER_HOST:$vol" create "$sub/gnew.qcow2" qcow2 0 \
        --backing g2.qcow2 --backing-fmt qcow2 --cluster-size 4096 2>"$D/g.err" ||
        check_fail "gluster create: $(cat "$D/g.err")"
    qemu-img check gnew.qcow2 >/dev/null 2>&1 || check_fail "qemu-img check of gnew.qcow2"
    assert_eq 3145728 "$(qemu-img info --output=json gnew.qcow2 | jq '."virtual-size"')" \
        "gluster overlay size from its backing file"
    "$IMGTOOL" --gluster "$GLUSTER_HOST:$vol" set-backing "$sub/gnew.qcow2" g1.qcow2 qcow2 ||
        check_fail "gluster set-backing"
    # read at once: the mount caches nothing
    assert_eq '"g1.qcow2"' "$(qemu-img info --output=json gnew.qcow2 | jq '."backing-filename"')" \
        "gluster set-backing result"
    cd "$D" || true
    note "gluster part done"
}
if command -v gluster >/dev/null && command -v glusterd >/dev/null && [ "$(id -u)" -eq 0 ]; then
    need_gluster
    gluster_part "${GVM_GLUSTER_VOLUME_VIRT:?the fixture has no virt volume}"
    gluster_part "${GVM_GLUSTER_VOLUME_PLAIN:?the fixture has no plain volume}"
else
    note "gluster not available: gluster part not run"
fi
note "$ncompared images compared with qemu-img in all"
exit 0
