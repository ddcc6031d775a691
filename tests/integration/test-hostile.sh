#!/bin/bash
# Acceptance 4: a corpus of hostile images, one per validation rule, made by
# poking bytes into images qemu-img made.  Each is refused with Corrupt or
# Unsupported and a message naming what is wrong, the file is not changed by
# a byte, nothing is catalogued, and the daemon keeps answering.
# The whole corpus runs on the dir volume; a subset on gluster (poked
# through the FUSE mount).
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

start_gvmd

# ---- base images (made once per backend by qemu-img / qemu-io) --------------
make_bases() {
    d=$ROOT/$SUB
    qimg create -q -f qcow2 "$d/b3.qcow2" 4M
    qio "$d/b3.qcow2" "write -P 0x11 0 256k" "write -P 0x22 1M 64k"
    qimg create -q -f qcow2 -o compat=0.10 "$d/b2.qcow2" 4M
    qio "$d/b2.qcow2" "write -P 0x11 0 256k" "write -P 0x22 1M 64k"
    cp "$d/b3.qcow2" "$d/bs.qcow2"
    qimg snapshot -c s1 "$d/bs.qcow2"
    qio "$d/bs.qcow2" "write -P 0x33 0 64k"
    qimg convert -c -O qcow2 "$d/b3.qcow2" "$d/bc.qcow2"
    qimg create -q -f qcow2 -b b3.qcow2 -F qcow2 "$d/bb.qcow2"
    qio "$d/bb.qcow2" "write -P 0x44 64k 64k"
    cp "$d/b3.qcow2" "$d/bm.qcow2"
    qimg bitmap --add "$d/bm.qcow2" b0
    # a -> b -> a
    qimg create -q -f qcow2 "$d/loop-b.qcow2" 4M
    qimg create -q -f qcow2 -b loop-b.qcow2 -F qcow2 "$d/loop-a.qcow2"
    qimg rebase -u -b loop-a.qcow2 -F qcow2 "$d/loop-b.qcow2"
    # 66 images deep (-u: qemu-img need not open the chain)
    mkdir -p "$d/deep"
    qimg create -q -f qcow2 "$d/deep/d0.qcow2" 1M
    for i in $(seq 1 65); do
        qimg create -q -u -f qcow2 -b "d$((i - 1)).qcow2" -F qcow2 "$d/deep/d$i.qcow2" 1M
    done
}

# ---- the corpus ------------------------------------------------------------------
# name | base | method | offset (shell arithmetic on $f) | bytes (hex; may use $(...)) | class | message regex
# method: import (whole chain), info (top only), map, checksum, repair
# (image-check repair "leaks": a read-write open).
CORPUS='
magic              |b3|import|0                                |51464958          |Corrupt|magic|not a qcow2|qcow2 format
version-1          |b3|import|4                                |00000001          |Unsupported|Corrupt|version
version-4          |b3|import|4                                |00000004          |Unsupported|Corrupt|version
cluster-bits-small |b3|import|20                               |00000008          |Corrupt|Unsupported|cluster
cluster-bits-large |b3|import|20                               |00000016          |Corrupt|Unsupported|cluster
cluster-bits-huge  |b3|import|20                               |00000040          |Corrupt|Unsupported|cluster
header-length-small|b3|import|100                              |00000040          |Corrupt|header.length|header_length
header-length-large|b3|import|100                              |00020000          |Corrupt|header.length|header_length
header-length-odd  |b3|import|100                              |00000071          |Corrupt|header.length|header_length
incompat-unknown   |b3|import|72                               |0000000000000400  |Unsupported|Corrupt|bit 10
incompat-named     |b3|import|$(q_ext_off $f 6803f857)+8        |000a686f7374696c652d66656174757265 |Unsupported|Corrupt|hostile-feature
incompat-unnamed   |b3|import|$(q_ext_off $f 6803f857)           |12345678          |Unsupported|Corrupt|bit 10
backing-offset-eof |bb|import|8                                |0000000000100000  |Corrupt|backing
backing-offset-hdr |bb|import|8                                |0000000000000010  |Corrupt|backing
backing-length     |bb|import|16                               |000003ff          |Corrupt|backing
backing-length-huge|bb|import|16                               |00010000          |Corrupt|backing
extension-overrun  |b3|import|$(q_ext_off $f 6803f857)+4      |000fff00          |Corrupt|extension
ext-overrun-first  |b3|import|$(be32 $f 100)+4                 |7ffffff0          |Corrupt|extension
l1-unaligned       |b3|import|40                               |$(printf %016x $(( $(q_l1_offset $f) + 8 )))|Corrupt|L1|l1
l1-past-eof        |b3|import|40                               |0000000100000000  |Corrupt|L1|l1
l1-overflow        |b3|import|40                               |ffffffffffff0000  |Corrupt|L1|l1
l1-in-header       |b3|import|40                               |0000000000000000  |Corrupt|L1|l1
l1-too-small       |b3|import|36                               |00000000          |Corrupt|L1|l1
l1-too-big         |b3|import|36                               |02000001          |Corrupt|L1|l1
refcount-unaligned |b3|import|48                               |$(printf %016x $(( $(q_rt_offset $f) + 8 )))|Corrupt|refcount
refcount-past-eof  |b3|import|48                               |0000000100000000  |Corrupt|refcount
refcount-too-big   |b3|import|56                               |01000000          |Corrupt|refcount
refcount-in-header |b3|import|48                               |0000000000000000  |Corrupt|refcount
refcount-order     |b3|import|96                               |00000007          |Corrupt|Unsupported|refcount
size-overflow      |b3|import|24                               |4000000000000000  |Corrupt|Unsupported|size
snap-count         |bs|import|60                               |00010001          |Corrupt|snapshot
snap-offset-unalign|bs|import|64                               |$(printf %016x $(( $(be64 $f 64) + 8 )))|Corrupt|snapshot
snap-offset-eof    |bs|import|64                               |0000000100000000  |Corrupt|snapshot
snap-offset-zero   |bs|import|64                               |0000000000000000  |Corrupt|snapshot
snap-l1-unaligned  |bs|import|$(be64 $f 64)                    |$(printf %016x $(( $(be64 $f $(be64 $f 64)) + 8 )))|Corrupt|snapshot|L1
snap-l1-too-big    |bs|import|$(be64 $f 64)+8                  |02000001          |Corrupt|snapshot|L1
l2-reserved-bits   |b3|map   |$(q_l2_entry_off $f 0)+7          |$(byte_or $f $(( $(q_l2_entry_off $f 0) + 7 )) 2)|Corrupt|L2|reserved
l2-unaligned       |b3|map   |$(q_l1_offset $f)+6               |$(byte_or $f $(( $(q_l1_offset $f) + 6 )) 2)|Corrupt|L2
l2-past-eof        |b3|map   |$(q_l1_offset $f)                 |8000000100000000  |Corrupt|L2
l2-on-refcounts    |b3|map   |$(q_l1_offset $f)                 |$(printf %016x $(( $(q_rt_offset $f) + (1 << 63) )))|Corrupt|L2
data-past-eof      |b3|map   |$(q_l2_entry_off $f 0)            |8000000100000000  |Corrupt|past|beyond|end of
data-unaligned     |b3|map   |$(q_l2_entry_off $f 0)+6          |$(byte_or $f $(( $(q_l2_entry_off $f 0) + 6 )) 2)|Corrupt|unaligned|aligned|cluster
zero-flag-v2       |b2|map   |$(q_l2_entry_off $f 0)+7          |01                |Corrupt|zero|reserved|v2|version 2
compressed-eof     |bc|checksum|$(q_l2_entry_off $f 0)+1        |ff                |Corrupt|compressed
loop               |loop-a|import|0                            |51                |Corrupt|loops|loop in
deep               |deep/d65|import|0                          |51                |Corrupt|deeper|depth
encryption-aes     |b3|import|32                               |00000001          |Unsupported|encrypt
encryption-luks    |b3|import|32                               |00000002          |Unsupported|encrypt
external-data      |b3|import|72                               |0000000000000004  |Unsupported|data file|external
extended-l2        |b3|import|72                               |0000000000000010  |Unsupported|extended
zstd               |b3|import|72                               |0000000000000008  |Unsupported|zstd|compression
bitmaps-on-write   |bm|repair|0                                |51                |Unsupported|bitmap
'
# Rules that need a second poke (applied after the first).
second_poke() { # name file
    case $1 in
        incompat-named|incompat-unnamed) poke "$2" 72 0000000000000400 ;;
        zstd) poke "$2" 104 01 ;;
    esac
}
GLUSTER_SUBSET=" magic version-4 incompat-named l1-past-eof refcount-unaligned snap-count l2-reserved-bits loop encryption-luks "

run_rule() { # the fields of one CORPUS line
    name=$1 base=$2 method=$3 offexpr=$4 bytesexpr=$5 want=$6
    src=$ROOT/$SUB/$base.qcow2
    case $base in loop-a|deep/d65) f=$src; p=$SUB/$base.qcow2 ;;   # used as made
        # numbered, so the file name cannot satisfy the message regex
        *) f=$ROOT/$SUB/h$count.qcow2; p=$SUB/h$count.qcow2; cp "$src" "$f"
           off=$(eval "echo \$(( $offexpr ))") || fail "$name: offset"
           bytes=$(eval "echo $bytesexpr") || fail "$name: bytes"
           poke "$f" "$off" "$bytes"; second_poke "$name" "$f" ;;
    esac
    before=$(sha256sum <"$f")
    ref=$(vref "$p")
    case $method in
        import)   e=$(rpc_err image-import "{\"image\":$ref,\"format\":\"qcow2\"}") ;;
        info)     e=$(rpc_err image-info "{\"image\":$ref}") ;;
        map)      rpc image-import "{\"image\":$ref,\"format\":\"qcow2\"}" >/dev/null 2>&1
                  e=$(rpc_err image-map "{\"image\":$ref}") ;;
        checksum) rpc image-import "{\"image\":$ref,\"format\":\"qcow2\"}" >/dev/null 2>&1
                  e=$(rpc_err image-checksum "{\"image\":$ref}") ;;
        repair)   rpc image-import "{\"image\":$ref,\"format\":\"qcow2\"}" >/dev/null 2>&1
                  e=$(rpc_err image-check "{\"image\":$ref,\"repair\":\"leaks\"}") ;;
    esac
    { IFS= read -r cls; IFS= read -r msg; } < <(printf '%s' "$e" | jq -r '.data.class // "", .message // ""' 2>/dev/null)
    note "$name: $cls: $msg"
    # want: CLASS[|CLASS]|regex|regex...: split classes from message words.
    classes="" words=""
    IFS='|' read -ra parts <<<"$want"
    for w in "${parts[@]}"; do
        case $w in Corrupt|Unsupported) classes="$classes|$w" ;; *) words="$words|$w" ;; esac
    done
    assert_match "^(${classes#|})\$" "$cls" "$name: error class"
    printf '%s' "$msg" | grep -Eiq -- "${words#|}" || check_fail "$name: message '$msg' does not match /${words#|}/"
    assert_eq "$before" "$(sha256sum <"$f")" "$name: the file is unchanged"
    if [ "$method" = import ]; then
        n=$(rpc image-list "{\"volume\":\"$VOL\"}" | jq --arg p "$p" '[.[] | select(.path == $p)] | length')
        assert_eq 0 "$n" "$name: nothing catalogued"
    fi
    gvmctl query-version >/dev/null || fail "$name: gvmd stopped answering"
    count=$((count + 1))
}

# The corrupt bit: like qemu, a read-only open is allowed (to look, copy
# data out); the image is reported corrupt and not written.
corrupt_bit() {
    f=$ROOT/$SUB/h-corrupt-bit.qcow2; cp "$ROOT/$SUB/b3.qcow2" "$f"
    poke "$f" 72 0000000000000002
    before=$(sha256sum <"$f")
    c=$(rpc image-info "{\"image\":$(vref "$SUB/h-corrupt-bit.qcow2")}" | jq .corrupt)
    assert_eq true "$c" "image-info reports the corrupt bit"
    assert_eq "$before" "$(sha256sum <"$f")" "corrupt-bit: the file is unchanged"
}

run_backend() {
    make_bases
    [ "$BACKEND" = gluster ] || corrupt_bit
    count=0
    while IFS='|' read -r name base method offexpr bytesexpr want; do
        name=$(echo $name); [ -n "$name" ] || continue
        if [ "$BACKEND" = gluster ]; then
            case $GLUSTER_SUBSET in *" $name "*) ;; *) continue ;; esac
        fi
        run_rule "$name" "$(echo $base)" "$(echo $method)" "$offexpr" "$(echo $bytesexpr)" "$(printf '%s' "$want" | sed 's/^ *//; s/ *$//')"
    done <<<"$CORPUS"
    note "$count hostile images refused on $BACKEND"
    [ "$BACKEND" = gluster ] || [ $count -ge 40 ] || check_fail "only $count rules ran"
    kill -0 "$GVMD_PID" || fail "gvmd died"
}

for_each_backend run_backend
exit 0
