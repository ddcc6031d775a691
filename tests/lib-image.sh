# SPDX-License-Identifier: GPL-2.0-or-later
# tests/lib-image.sh — helpers for the image tests.  Source after lib.sh:
#   . "$GVM_TESTDIR/lib.sh"; . "$GVM_TESTDIR/lib-image.sh"
#
# An image test runs the same checks on every backend: for_each_backend
# FUNCTION calls FUNCTION once with these set:
#   BACKEND  "dir" or "gluster"
#   VOL      the gvmd volume name ("local", or "gl" registered on the test
#            gluster volume)
#   SUB      a directory inside the volume private to this test run
#   ROOT     where the volume's files are visible locally: the dir volume's
#            root, or a FUSE mount of the gluster volume (qemu-img on
#            gluster:// pays ~10 s a call; on the mount it is instant)
# so an image at volume path "$SUB/x.qcow2" is the local file "$ROOT/$SUB/x.qcow2".
# IMAGE_BACKENDS="dir" (or "gluster") restricts the run.

need qemu-img qemu-io jq sha256sum

# ---- gluster through FUSE: gluster_fuse_mount is in lib.sh -----------------
# gluster_volume_add [NAME]: register the test gluster volume in gvmd.
gluster_volume_add() {
    rpc volume-add "{\"name\":\"${1:-gl}\",\"backend\":\"gluster\",\"volume\":\"$GLUSTER_VOLUME\",\"servers\":[{\"type\":\"tcp\",\"host\":\"$GLUSTER_HOST\"}]}" \
        >/dev/null || fail "volume-add of gluster volume $GLUSTER_VOLUME failed"
}

# ---- backends ---------------------------------------------------------------
_backend_dir() {
    BACKEND=dir VOL=local ROOT=$GVMD_DIR/state/images SUB=t$$
    mkdir -p "$ROOT/$SUB"
}
# _gluster_backend PROFILE GVMD-VOLUME MOUNT-DIR: a gluster backend on the
# fixture's PROFILE volume (virt: gluster's `virt` option group; plain:
# gluster's defaults), registered in gvmd as GVMD-VOLUME and FUSE-mounted
# once per test.
_gluster_backend() {
    local prof=$1 name=$2 mnt=$TEST_TMP/$3 ready
    need_gluster
    local var=GVM_GLUSTER_VOLUME_$(echo "$prof" | tr a-z A-Z)
    [ -n "${!var:-}" ] ||
        fail "the gluster fixture has no $prof volume ($var): see tests/gluster-fixture.sh"
    GLUSTER_VOLUME=${!var}
    ready=_gluster_ready_$prof
    if [ -z "${!ready:-}" ]; then
        gluster_fuse_mount "$mnt"
        gluster_volume_add "$name"
        mkdir -p "$mnt/images-$(basename "$TEST_TMP")" || fail "cannot write to the FUSE mount"
        at_exit "rm -rf '$mnt/images-$(basename "$TEST_TMP")'"
        printf -v "$ready" 1
    fi
    BACKEND=gluster PROFILE=$prof VOL=$name ROOT=$mnt SUB=images-$(basename "$TEST_TMP")
}
_backend_gluster() { _gluster_backend virt gl fuse; }
_backend_gluster_plain() { _gluster_backend plain glp fuse-plain; }
# for_each_backend FUNCTION: run FUNCTION on the dir volume, on the gluster
# virt-profile volume and on the plain gluster volume (IMAGE_BACKENDS, from
# "dir gluster gluster-plain", restricts the run).  BACKEND is "dir" or
# "gluster" (PROFILE then says which volume).  Without glusterd the gluster
# parts are skipped, and said so.
for_each_backend() {
    for b in ${IMAGE_BACKENDS:-dir gluster gluster-plain}; do
        if [ "$b" != dir ] && [ -z "${GVM_GLUSTER_VOLUME:-}" ] &&
           ! command -v glusterd >/dev/null 2>&1; then
            note "no gluster: the $b part of this test is skipped"; continue
        fi
        PROFILE=""
        "_backend_${b//-/_}"
        note "---- backend $BACKEND${PROFILE:+ ($PROFILE)} (volume $VOL, $ROOT/$SUB)"
        "$1"
    done
}

# mk_local PATH [BACKING]: gvmd creates the 4 MiB qcow2 image $SUB/PATH on
# the dir volume `local` (over the catalogued image local:BACKING).
mk_local() {
    rpc image-create "$(jq -nc --arg p "$SUB/$1" --arg b "${2:-}" \
        '{volume:"local", path:$p, format:"qcow2", size:4194304} +
         (if $b == "" then {} else {backing:("local:" + $b), "backing-format":"qcow2"} end)')" >/dev/null ||
        fail "image-create $1 failed"
}

# mk_chain5 DIR: the chain the commit and pull tests copy for every case,
#   base(8M) <- sn1(8M) <- sn2(6M) <- sn3(6M) <- active(8M)
# made with qemu-img in the existing directory DIR (local path), backing
# names relative so that copies stand alone; patterns in overlapping ranges
# and zero writes in every layer, intermediates shorter than the top.
mk_chain5() {
    qimg create -q -f qcow2 "$1/base.qcow2" 8M
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$1/sn1.qcow2" 8M
    qimg create -q -f qcow2 -b sn1.qcow2 -F qcow2 "$1/sn2.qcow2" 6M
    qimg create -q -f qcow2 -b sn2.qcow2 -F qcow2 "$1/sn3.qcow2" 6M
    qimg create -q -f qcow2 -b sn3.qcow2 -F qcow2 "$1/active.qcow2" 8M
    qio "$1/base.qcow2" "write -P 0x11 0 8M"
    qio "$1/sn1.qcow2" "write -P 0x21 1M 1M" "write -z 3M 512k" "write -P 0x22 7M 512k"
    qio "$1/sn2.qcow2" "write -P 0x31 1536k 1M" "write -z 5M 256k" "write -P 0x32 0 64k"
    qio "$1/sn3.qcow2" "write -P 0x41 2M 128k" "write -z 1M 64k" "write -P 0x42 4M 1M"
    qio "$1/active.qcow2" "write -P 0x51 64k 64k" "write -P 0x52 7M 64k" "write -z 4608k 64k"
}

# chain_agree CASE TOP EXPECTED...: the backing chain of $SUB/CASE/TOP.qcow2
# as qemu-img reads it and as image-info --backing-chain reports it are both
# TOP EXPECTED... (file names without .qcow2 or .img).
chain_agree() {
    c=$1; top=$2; shift 2
    want=$(echo "$top" "$@")
    got=$(qemu-img info --backing-chain --output=json "$(lpath "$SUB/$c/$top.qcow2")" |
          jq -r '.[].filename' | xargs -n1 basename | sed 's/\.qcow2$//; s/\.img$//' | xargs)
    assert_eq "$want" "$got" "$c: qemu-img backing chain of $top"
    got=$(rpc image-info "{\"image\":$(vref "$SUB/$c/$top.qcow2"),\"backing-chain\":true}" |
          jq -r '.chain[].path' | xargs -n1 basename | sed 's/\.qcow2$//; s/\.img$//' | xargs)
    assert_eq "$want" "$got" "$c: image-info backing chain of $top"
}

# The local file of a volume path, and a gluster URI of it (gluster only).
lpath() { printf '%s/%s' "$ROOT" "$1"; }
guri() { printf 'gluster://%s/%s/%s' "$GLUSTER_HOST" "$GLUSTER_VOLUME" "$1"; }
# JSON string of VOL:PATH.
vref() { printf '"%s:%s"' "$VOL" "$1"; }

# ---- qemu oracles -----------------------------------------------------------
# qimg ARGS...: qemu-img, failing the test if it fails.
qimg() { qemu-img "$@" || fail "qemu-img $* failed"; }
# qio FILE CMD...: one qemu-io call per command list, status checked
# (qemu-io exits 0 even for some failed requests: also grep its output).
qio() {
    f=$1; shift
    args=""
    for c in "$@"; do args="$args -c \"$c\""; done
    out=$(eval qemu-io ${QIO_FMT:+-f "$QIO_FMT"} "$args" "\"$f\"" 2>&1) || fail "qemu-io $* on $f failed: $out"
    case $out in *rror*|*ailed*) fail "qemu-io $* on $f: $out";; esac
}
# sha256 of the guest-visible content as qemu-img reads it.
qemu_sha256() {
    qemu-img convert -O raw "$1" "$TEST_TMP/convert.raw" || fail "qemu-img convert $1 failed"
    sha256sum <"$TEST_TMP/convert.raw" | cut -d' ' -f1
    rm -f "$TEST_TMP/convert.raw"
}
# Canonical (sorted keys, one line) JSON of a file or stdin.
jcanon() { jq -S -c . "$@"; }

# json_eq WHAT EXPECTED ACTUAL: compare two JSON texts canonically.
json_eq() {
    a=$(printf '%s' "$2" | jcanon) || { check_fail "$1: expected is not JSON"; return 1; }
    b=$(printf '%s' "$3" | jcanon) || { check_fail "$1: result is not JSON: $3"; return 1; }
    if [ "$a" != "$b" ]; then
        check_fail "$1 differs"
        printf '%s\n' "$a" >"$TEST_TMP/exp.json"; printf '%s\n' "$b" >"$TEST_TMP/got.json"
        diff <(jq . "$TEST_TMP/exp.json") <(jq . "$TEST_TMP/got.json") | head -20 >&2
        return 1
    fi
    return 0
}

# err_class JSON-ERROR: the error's data.class.
err_class() { printf '%s' "$1" | jq -r '.data.class // empty' 2>/dev/null; }
err_msg() { printf '%s' "$1" | jq -r '.message // empty' 2>/dev/null; }

# ---- poking bytes ------------------------------------------------------------
# be64 FILE OFFSET / be32 / be16: big-endian integers from the file.
be64() { od -An -td8 --endian=big -j "$2" -N 8 "$1" | tr -d ' '; }
be32() { od -An -tu4 --endian=big -j "$2" -N 4 "$1" | tr -d ' '; }
be16() { od -An -tu2 --endian=big -j "$2" -N 2 "$1" | tr -d ' '; }
# poke FILE OFFSET HEX: write the bytes HEX ("00ff...") at OFFSET in place.
poke() {
    printf "$(printf '%s' "$3" | sed 's/../\\x&/g')" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none || fail "poke $1 @$2 failed"
}
# poke_be64 FILE OFFSET VALUE (and be32, be16)
poke_be64() { poke "$1" "$2" "$(printf '%016x' "$3")"; }
poke_be32() { poke "$1" "$2" "$(printf '%08x' "$3")"; }
poke_be16() { poke "$1" "$2" "$(printf '%04x' "$3")"; }

# qcow2 header fields of FILE (see docs/interop/qcow2.txt for the layout).
q_cluster_bits() { be32 "$1" 20; }
q_l1_offset() { be64 "$1" 40; }
q_rt_offset() { be64 "$1" 48; }
q_refcount_order() { if [ "$(be32 "$1" 4)" -ge 3 ]; then be32 "$1" 96; else echo 4; fi; }
# q_l2_entry_off FILE GUEST-OFFSET: file offset of the L2 entry mapping it.
q_l2_entry_off() {
    cb=$(q_cluster_bits "$1"); l2n=$((1 << (cb - 3)))
    ci=$(( $2 >> cb )); l1i=$((ci / l2n)); l2i=$((ci % l2n))
    l1e=$(be64 "$1" $(( $(q_l1_offset "$1") + 8 * l1i )))
    l2=$(( l1e & 0x00fffffffffffe00 ))
    [ $l2 -ne 0 ] || fail "no L2 table for guest offset $2 in $1"
    echo $(( l2 + 8 * l2i ))
}
# q_host_cluster FILE GUEST-OFFSET: host offset of the data cluster.
q_host_cluster() {
    e=$(be64 "$1" "$(q_l2_entry_off "$1" "$2")")
    echo $(( e & 0x00fffffffffffe00 ))
}
# q_refcount_off FILE HOST-OFFSET: file offset of that cluster's refcount
# entry (16-bit refcounts only); prints the offset.
q_refcount_off() {
    cb=$(q_cluster_bits "$1"); ord=$(q_refcount_order "$1")
    [ "$ord" -eq 4 ] || fail "q_refcount_off handles 16-bit refcounts only"
    per=$(( (1 << cb) / 2 )); c=$(( $2 >> cb ))
    rb=$(be64 "$1" $(( $(q_rt_offset "$1") + 8 * (c / per) )))
    echo $(( rb + 2 * (c % per) ))
}
# q_ext_off FILE MAGIC-HEX: file offset of the header extension with that
# magic (its 8-byte type+length header), or nothing.
q_ext_off() {
    [ "$(be32 "$1" 4)" -ge 3 ] && o=$(be32 "$1" 100) || o=72
    while :; do
        m=$(be32 "$1" "$o"); l=$(be32 "$1" $((o + 4)))
        [ "$m" -eq 0 ] && return 0
        if [ "$m" -eq $((0x$2)) ]; then echo "$o"; return 0; fi
        o=$(( o + 8 + (l + 7) / 8 * 8 ))
    done
}
# byte_or FILE OFFSET MASK: hex of the byte at OFFSET with MASK or-ed in.
byte_or() { printf '%02x' $(( $(od -An -tu1 -j "$2" -N 1 "$1") | $3 )); }
