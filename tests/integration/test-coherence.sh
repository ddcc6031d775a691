#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-coherence.sh — issue 9, acceptance 1: gvmd never acts on stale
# metadata from another gluster client, and another client reads what gvmd
# wrote at once.  No sleep anywhere between the steps.
#
# On the virt-profile volume and on the plain one (gluster's defaults, every
# client cache on), ROUNDS rounds (default 100) on one image X (4 KiB
# clusters: every other round allocates a new L2 table, and new refcount
# blocks in turn).  In round k another client — qemu-io through its own
# libgfapi (gluster://) in odd rounds, qemu-io on a FUSE mount in even ones
# — writes pattern A at a new offset, growing X; then at once:
#   - gvmd's image-map, image-check and image-checksum of X equal qemu-img
#     map, check and convert|sha256sum of X (read on a FUSE mount that
#     caches nothing);
#   - gvmd makes an overlay T on X, the other client writes pattern B into T
#     (across the end of A), gvmd commits T into X (a job, waited for),
#     chain-audit of X is clean, and the other client (the same kind as the
#     round's writer) reads A and B back from X; the FUSE oracle compares X
#     with a raw reference holding every round's patterns and checks it.
# A qemu-io on gluster:// spends ~10 s in glfs_fini after its last command;
# the test goes on as soon as the commands' output is there (the write was
# flushed by the `flush` command before) and collects the processes at the
# end.
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

need qemu-img qemu-io glusterfs stdbuf
need_gluster
ROUNDS=${GVM_COHERENCE_ROUNDS:-100}
STEP=$((1 << 20))           # each round writes at k * STEP
SIZE=$(( (ROUNDS + 2) * STEP ))
start_gvmd

# qio_gfapi OUT URI CMD...: qemu-io on a gluster:// URI, in the background;
# returns once every command's result line is in OUT (or qemu-io ended),
# leaving the process to finish its glfs_fini.  Fails on an error line of
# qemu-io's own (gluster's log lines, "[date] E ...", are not its results).
# gfapi 10.3's client sometimes refuses a brick at connect time with a
# garbled "volume-id changed ... Needs remount" (its ctx->volume_id read
# while another thread writes it) and then fails to open the image: that is
# the oracle's own connection failing before it did anything, so it is
# started again, at most 3 times.
qio_gfapi() {
    local out=$1 uri=$2 want=0 c args=() i n pid try
    shift 2
    for c in "$@"; do
        args+=(-c "$c")
        case $c in write*|read*) want=$((want + 1)) ;; esac
    done
    for try in 1 2 3; do
        stdbuf -oL -eL qemu-io -f qcow2 "${args[@]}" "$uri" >"$out" 2>&1 &
        pid=$!
        track_pid "$pid"
        i=0
        while :; do
            n=$(grep -Ec '^(wrote|read) [0-9]+/[0-9]+ bytes' "$out" 2>/dev/null) || n=0
            [ "$n" -ge "$want" ] && break 2
            if ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid"
                grep -q "can't open device.*failed to connect" "$out" &&
                    grep -q "volume-id changed" "$out" && [ "$try" -lt 3 ] &&
                    { note "qemu-io's gfapi refused a brick (volume-id race): again"; continue 2; }
                fail "qemu-io on $uri ended early: $(cat "$out")"
            fi
            i=$((i + 1)); [ $i -lt 6000 ] || fail "qemu-io on $uri: no answer in 60 s: $(cat "$out")"
            sleep 0.01
        done
    done
    if grep -v '^\[' "$out" | grep -Eqi 'error|fail|mismatch|not match'; then
        fail "qemu-io $* on $uri: $(cat "$out")"
    fi
}

# other KIND FILE-OR-URI CMD...: the other client of this round.
other() {
    local kind=$1 target=$2
    shift 2
    if [ "$kind" = gfapi ]; then
        _qn=$((${_qn:-0} + 1))
        qio_gfapi "$TEST_TMP/qio-$prof-$_qn.out" "$target" "$@"
    else
        QIO_FMT=qcow2 qio "$target" "$@"
    fi
}

# field JSON KEY: a key of a qemu-img check result (absent = 0).
field() { printf '%s' "$1" | jq ".\"$2\" // 0"; }

# setup_volume PROFILE VOLUME: mount, register and make X (in the test's
# own shell, so that its at_exit clean-ups are kept).
setup_volume() {
    local prof=$1 vol=$2 M=$TEST_TMP/fuse-$1 V=v$1 D=coh-$$ k kind off pa pb x uri
    gluster_fuse_mount "$M" "$vol"
    GLUSTER_VOLUME=$vol gluster_volume_add "$V"
    mkdir -p "$M/$D" || fail "$prof: cannot write to the FUSE mount"
    at_exit "rm -rf '$M/$D'"
    x=$M/$D/x.qcow2
    uri="gluster://$GLUSTER_HOST/$vol/$D/x.qcow2"
    # gvmd makes X: QEMU's gluster driver reads in 512-byte units and takes
    # a short read at the end of the file as an I/O error, so an image that
    # qemu-img made on a file (ending in an 8-byte L1 table) would not open
    # through gluster:// at all; gvmd's images end on a cluster boundary.
    rpc image-create "{\"volume\":\"$V\",\"path\":\"$D/x.qcow2\",\"format\":\"qcow2\",\"size\":$SIZE,\"cluster-size\":4096}" \
        >/dev/null || fail "$prof: image-create x"
    qemu-img create -q -f raw "$TEST_TMP/ref-$prof.raw" "$SIZE" || fail "reference image"
}

# run_volume PROFILE VOLUME: the rounds on that volume.
run_volume() {
    local prof=$1 vol=$2 M=$TEST_TMP/fuse-$1 V=v$1 D=coh-$$ k kind off pa pb
    local x=$M/$D/x.qcow2 uri="gluster://$GLUSTER_HOST/$2/coh-$$/x.qcow2"
    local t0=$SECONDS
    # The other volume's loop runs jobs at the same time, so an audit of
    # everything here could catch one of them half-way (a row listed, then
    # its file removed by that commit): each round audits its own chain
    # (step 3), and everything is audited once both loops are done.
    local GVM_AUDIT_AFTER_JOBS=0
    for k in $(seq 1 "$ROUNDS"); do
        [ $((k % 2)) -eq 1 ] && kind=gfapi || kind=fuse
        off=$((k * STEP)); pa=$(( (k * 7) % 250 + 1 )); pb=$(( (k * 13) % 250 + 2 ))
        # 1. The other client grows X.
        if [ $kind = gfapi ]; then
            other gfapi "$uri" "write -P $pa $off 192k" "flush" "read -P $pa $off 192k"
        else
            other fuse "$x" "write -P $pa $off 192k"
        fi
        qemu-io -f raw -c "write -P $pa $off 192k" "$TEST_TMP/ref-$prof.raw" >/dev/null ||
            fail "reference write"
        # 2. gvmd answers as qemu-img does, at once.
        local exp got
        exp=$(qemu-img map --output=json "$x") || fail "$prof round $k: qemu-img map"
        got=$(rpc image-map "{\"image\":\"$V:$D/x.qcow2\"}") ||
            fail "$prof round $k ($kind): image-map failed"
        json_eq "$prof round $k ($kind): image-map" "$exp" "$got" ||
            fail "$prof round $k: gvmd read a stale map"
        exp=$(qemu-img check --output=json "$x" 2>/dev/null)
        got=$(rpc image-check "{\"image\":\"$V:$D/x.qcow2\"}") ||
            fail "$prof round $k ($kind): image-check failed"
        for f in corruptions leaks check-errors allocated-clusters image-end-offset; do
            assert_eq "$(field "$exp" $f)" "$(printf '%s' "$got" | jq ".\"$f\"")" \
                "$prof round $k ($kind): image-check $f"
        done
        exp=$(sha256sum <"$TEST_TMP/ref-$prof.raw" | cut -d' ' -f1)
        qemu-img convert -O raw "$x" "$TEST_TMP/convert-$prof.raw" || fail "qemu-img convert $x"
        assert_eq "$exp" "$(sha256sum <"$TEST_TMP/convert-$prof.raw" | cut -d' ' -f1)" \
            "$prof round $k: qemu-img reads the reference"
        got=$(rpc image-checksum "{\"image\":\"$V:$D/x.qcow2\"}" | jq -r .sha256)
        assert_eq "$exp" "$got" "$prof round $k ($kind): image-checksum"
        [ "$_test_failed" -eq 0 ] || fail "$prof round $k: gvmd disagrees with qemu-img"

        # 3. gvmd writes into X: an overlay, the other client's data in it,
        # a commit.
        rpc image-create "{\"volume\":\"$V\",\"path\":\"$D/t$k.qcow2\",\"format\":\"qcow2\",\"backing\":\"$V:$D/x.qcow2\"}" \
            >/dev/null || fail "$prof round $k: image-create overlay"
        if [ $kind = gfapi ]; then
            other gfapi "gluster://$GLUSTER_HOST/$vol/$D/t$k.qcow2" \
                "write -P $pb $((off + 131072)) 128k" "flush" "read -P $pb $((off + 131072)) 128k"
        else
            other fuse "$M/$D/t$k.qcow2" "write -P $pb $((off + 131072)) 128k"
        fi
        qemu-io -f raw -c "write -P $pb $((off + 131072)) 128k" "$TEST_TMP/ref-$prof.raw" >/dev/null ||
            fail "reference write"
        local j id w
        j=$(rpc block-commit "{\"top\":\"$V:$D/t$k.qcow2\",\"base\":\"$V:$D/x.qcow2\"}") ||
            fail "$prof round $k: block-commit refused"
        id=$(printf '%s' "$j" | jq .id)
        w=$(rpc job-wait "{\"id\":$id,\"timeout\":120}") || fail "$prof round $k: job-wait"
        [ "$(printf '%s' "$w" | jq -r .status)" = concluded ] &&
            [ "$(printf '%s' "$w" | jq -c .error)" = null ] ||
            fail "$prof round $k: the commit did not succeed: $w"
        rpc job-dismiss "{\"id\":$id}" >/dev/null 2>&1
        assert_eq 0 "$(rpc chain-audit "{\"image\":\"$V:$D/x.qcow2\"}" | jq '.differences | length')" \
            "$prof round $k: chain-audit after the commit"

        # 4. The other client reads gvmd's result at once.
        if [ $kind = gfapi ]; then
            other gfapi "$uri" "read -P $pa $off 128k" "read -P $pb $((off + 131072)) 128k"
        else
            other fuse "$x" "read -P $pa $off 128k" "read -P $pb $((off + 131072)) 128k"
        fi
        qemu-img compare -q -f qcow2 -F raw "$x" "$TEST_TMP/ref-$prof.raw" ||
            fail "$prof round $k ($kind): X after the commit differs from the reference"
        qemu-img check -q "$x" || fail "$prof round $k: qemu-img check of X after the commit"
        [ -e "$M/$D/t$k.qcow2" ] && fail "$prof round $k: the committed overlay is still there"
        [ "$_test_failed" -eq 0 ] || fail "$prof round $k failed"
    done
    note "$prof ($vol): $ROUNDS rounds in $((SECONDS - t0)) s," \
        "$(qemu-img info --output=json "$x" | jq '."actual-size"') bytes allocated"
}

[ -n "${GVM_GLUSTER_VOLUME_VIRT:-}" ] && [ -n "${GVM_GLUSTER_VOLUME_PLAIN:-}" ] ||
    fail "the gluster fixture gave no virt and plain volumes (GVM_GLUSTER_VOLUME_VIRT/PLAIN)"
setup_volume virt "$GVM_GLUSTER_VOLUME_VIRT"
setup_volume plain "$GVM_GLUSTER_VOLUME_PLAIN"
# Both volumes at once: each loop alone mostly waits on the bricks.
run_volume virt "$GVM_GLUSTER_VOLUME_VIRT" & virt_pid=$!
run_volume plain "$GVM_GLUSTER_VOLUME_PLAIN" & plain_pid=$!
wait "$virt_pid" || check_fail "the rounds on the virt-profile volume failed"
wait "$plain_pid" || check_fail "the rounds on the plain volume failed"
audit_clean "after the rounds on both volumes"
