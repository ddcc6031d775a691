#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-locks.sh — gvmd and QEMU refuse to write what the other holds
# (gvmd/image/image-lock.c: QEMU's OFD lock bytes, through gfapi on gluster),
# on the dir volume and on gluster with QEMU on a FUSE mount of it.
#   (a) a qemu-io holding an image open after writing to it: block-commit
#       of it and into it, block-pull into it, image-rebase of it,
#       image-check repair of it and image-delete of it are refused with
#       InUse naming VOLUME:PATH, and no file of the chain changes (md5);
#   (b) gvmd holding images in a throttled block-commit: qemu-io writes
#       and `qemu-img commit` on the images it writes fail with QEMU's
#       'Failed to get "write" lock'; the job still completes, and
#       afterwards qemu-io can write the base again (the locks are gone).
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"
need md5sum stdbuf

start_gvmd

# sums DIR: md5 of every file of the chain in DIR, one line.
sums() { (cd "$1" && md5sum base.qcow2 mid.qcow2 top.qcow2 2>&1 | tr '\n' ' '); }

# settle FILE: wait until nobody holds FILE (`qemu-img info` without -U
# refuses an image someone writes).
settle() {
    i=0
    until qemu-img info "$1" >/dev/null 2>&1; do
        i=$((i+1)); [ $i -lt 100 ] || fail "$1 is still locked after 10 s"
        sleep 0.1
    done
}

# hold FILE: a qemu-io in the background that wrote to FILE and keeps it
# open read-write; returns once the write is done (so QEMU's locks are on
# the file).  HOLDER=pid.  No `qemu-img info` probe while the holder opens
# the file: QEMU locks its bytes first and tests the others' after, so two
# QEMUs opening at once can both fail (a probe that saw the lock of a
# holder which then died of the probe's lock made gvmd's refusals look
# broken).  Hence the probe before (settle) and after the write only.
hold() {
    local try
    settle "$1"
    # On a FUSE mount a process's locks are released asynchronously after
    # it closed the file: the settle probe's shared locks can still be
    # registered when the holder opens, which then dies refusing to share.
    # That refusal (and only it) is waited out, for up to 5 s.
    for try in $(seq 1 50); do
        stdbuf -oL qemu-io -f qcow2 -c "write -P 0x11 0 64k" -c "sleep 20000" "$1" \
            >"$TEST_TMP/holder.log" 2>&1 &
        HOLDER=$!
        HELD=$1
        track_pid "$HOLDER"
        i=0
        until grep -q '^wrote 65536/65536' "$TEST_TMP/holder.log"; do
            i=$((i+1))
            if ! kill -0 "$HOLDER" 2>/dev/null; then
                grep -q 'Failed to get .* lock' "$TEST_TMP/holder.log" && [ "$try" -lt 50 ] && break
                fail "qemu-io holding $1 died: $(cat "$TEST_TMP/holder.log")"
            fi
            [ $i -lt 200 ] || fail "qemu-io did not write $1 in 20 s"
            sleep 0.1
        done
        grep -q '^wrote 65536/65536' "$TEST_TMP/holder.log" && break
        sleep 0.1
    done
    probe=$(qemu-img info "$1" 2>&1)
    case $probe in *'write" lock'*) ;;
    *) fail "qemu-io holds $1 but qemu-img info does not see its lock; it said: $probe; the holder: $(cat "$TEST_TMP/holder.log"); alive: $(kill -0 "$HOLDER" 2>/dev/null && echo yes || echo no)";;
    esac
}
unhold() { kill_pid "$HOLDER"; settle "$HELD"; }

# refused WHAT METHOD PARAMS HELD: InUse naming the held image.
refused() {
    e=$(rpc_err "$2" "$3") || return 0
    assert_eq InUse "$(err_class "$e")" "$BACKEND$PROFILE: $1: error class"
    assert_match "holds a (write|resize) lock on $VOL:$4 " "$(err_msg "$e")" \
        "$BACKEND$PROFILE: $1: message"
}

# chain NAME: base <- mid <- top in $SUB/NAME, catalogued.
chain() {
    D=$SUB/$1
    P=$(lpath "$D")
    mkdir -p "$P"
    qimg create -q -f qcow2 "$P/base.qcow2" 4M
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$P/mid.qcow2" 4M
    qimg create -q -f qcow2 -b mid.qcow2 -F qcow2 "$P/top.qcow2" 4M
    qio "$P/base.qcow2" "write -P 0x01 0 4M"
    qio "$P/mid.qcow2" "write -P 0x02 1M 1M"
    qio "$P/top.qcow2" "write -P 0x03 2M 64k"
    rpc image-import "{\"image\":$(vref "$D/top.qcow2")}" >/dev/null || fail "$1: image-import"
}

case_a() {
    chain a
    note "(a) qemu-io holds top.qcow2"
    hold "$P/top.qcow2"
    before=$(sums "$P")
    refused "commit of the held top" block-commit \
        "{\"top\":$(vref "$D/top.qcow2")}" "$D/top.qcow2"
    refused "pull into the held image" block-pull \
        "{\"image\":$(vref "$D/top.qcow2")}" "$D/top.qcow2"
    refused "rebase of the held image" image-rebase \
        "{\"image\":$(vref "$D/top.qcow2"),\"backing\":$(vref "$D/base.qcow2"),\"mode\":\"unsafe\"}" "$D/top.qcow2"
    refused "repair of the held image" image-check \
        "{\"image\":$(vref "$D/top.qcow2"),\"repair\":\"all\"}" "$D/top.qcow2"
    refused "delete of the held image" image-delete \
        "{\"image\":$(vref "$D/top.qcow2")}" "$D/top.qcow2"
    # A plain check (read only) still works on an image QEMU writes.
    rpc image-check "{\"image\":$(vref "$D/top.qcow2")}" >/dev/null ||
        check_fail "$BACKEND$PROFILE: a read-only image-check of the held image failed"
    assert_eq "$before" "$(sums "$P")" "$BACKEND$PROFILE: files after the refusals (top held)"
    unhold

    note "(a) qemu-io holds mid.qcow2"
    hold "$P/mid.qcow2"
    before=$(sums "$P")
    refused "commit into the held base" block-commit \
        "{\"top\":$(vref "$D/top.qcow2")}" "$D/mid.qcow2"
    refused "commit of the held image" block-commit \
        "{\"top\":$(vref "$D/mid.qcow2")}" "$D/mid.qcow2"
    assert_eq "$before" "$(sums "$P")" "$BACKEND$PROFILE: files after the refusals (mid held)"
    unhold

    # Nobody holds anything now: the same requests go through.
    j=$(rpc image-check "{\"image\":$(vref "$D/top.qcow2"),\"repair\":\"all\"}") ||
        check_fail "$BACKEND$PROFILE: repair after the holder left"
}

case_b() {
    D=$SUB/b
    P=$(lpath "$D")
    mkdir -p "$P"
    qimg create -q -f qcow2 "$P/base.qcow2" 32M
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$P/top.qcow2" 32M
    qio "$P/top.qcow2" "write -P 0x07 0 24M"
    rpc image-import "{\"image\":$(vref "$D/top.qcow2")}" >/dev/null || fail "b: image-import"
    # 24 MiB at 3 MiB/s: ~8 s of copying.
    j=$(rpc block-commit "{\"top\":$(vref "$D/top.qcow2"),\"speed\":3145728}") ||
        fail "$BACKEND$PROFILE: throttled block-commit refused"
    id=$(jq .id <<<"$j")
    t0=$(date +%s)
    i=0
    until [ "$(rpc job-wait "{\"id\":$id,\"timeout\":0}" | jq -r '.progress.current // 0')" -gt 0 ]; do
        i=$((i+1)); [ $i -lt 100 ] || fail "$BACKEND$PROFILE: the commit did not start copying"
        sleep 0.1
    done
    note "(b) gvmd commits top into base; QEMU tries to write both"
    for f in base top; do
        out=$(qemu-io -f qcow2 -c "write -P 0x66 0 64k" "$P/$f.qcow2" 2>&1) &&
            check_fail "$BACKEND$PROFILE: qemu-io wrote $f.qcow2 during gvmd's commit: $out"
        assert_match 'Failed to get "write" lock' "$out" "$BACKEND$PROFILE: qemu-io on $f during the commit"
    done
    out=$(qemu-img commit -f qcow2 "$P/top.qcow2" 2>&1) &&
        check_fail "$BACKEND$PROFILE: qemu-img commit ran during gvmd's commit: $out"
    assert_match 'Failed to get "write" lock' "$out" "$BACKEND$PROFILE: qemu-img commit during the commit"
    st=$(rpc job-wait "{\"id\":$id,\"timeout\":0}" | jq -r .status)
    [ "$st" != concluded ] ||
        check_fail "$BACKEND$PROFILE: the commit ended before QEMU was tried (throttle too fast)"
    j=$(rpc job-wait "{\"id\":$id,\"timeout\":120}") || fail "$BACKEND$PROFILE: job-wait"
    assert_eq concluded "$(jq -r .status <<<"$j")" "$BACKEND$PROFILE: commit status"
    assert_eq null "$(jq -c .error <<<"$j")" "$BACKEND$PROFILE: commit error"
    note "(b) the commit took $(( $(date +%s) - t0 )) s"
    rpc job-dismiss "{\"id\":$id}" >/dev/null
    [ ! -e "$P/top.qcow2" ] || check_fail "$BACKEND$PROFILE: top.qcow2 still there after the commit"
    # The locks went with the job.
    out=$(qemu-io -f qcow2 -c "read -P 0x07 0 64k" -c "write -P 0x66 0 64k" "$P/base.qcow2" 2>&1) ||
        check_fail "$BACKEND$PROFILE: qemu-io cannot write base after the commit: $out"
    case $out in *rror*|*ailed*) check_fail "$BACKEND$PROFILE: qemu-io on base after the commit: $out";; esac
    qemu-img check -q "$P/base.qcow2" || check_fail "$BACKEND$PROFILE: qemu-img check of base"
}

run() {
    case_a
    case_b
}
for_each_backend run
