#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-concurrency.sh — issue 4, acceptance 3, on the dir volume:
#   - two conflicting jobs on one chain: while a block-commit runs, a
#     block-pull, a second block-commit and an image-rebase of images in
#     its chain are refused with InUse, and the refusal names the running
#     job by id;
#   - while a 2 GiB block-commit copies, 1,000 query-jobs calls from another
#     client (one persistent connection on the read-only socket, one call at
#     a time: tests/bench/rpc-bench --calls) each answer in under 50 ms; the
#     commit must still be running when the last call returns.
# The commit is throttled (speed) so that it outlasts the calls even when
# the calls are slow; it is cancelled afterwards and must leave the chain
# as it was (the top still reads its data, base is unchanged and clean).
# GVM_LATENCY_MAX_US overrides the 50 ms bound (for experiments only).
. "$GVM_TESTDIR/lib.sh"
. "$GVM_TESTDIR/lib-image.sh"

BENCH=$GVM_TOOLSDIR/rpc-bench
[ -x "$BENCH" ] || skip "rpc-bench is not built"
MAX_US=${GVM_LATENCY_MAX_US:-50000}

start_gvmd
ROOT=$GVMD_DIR/state/images
D=$ROOT/cc
mkdir -p "$D"
G=$((1 << 30))

# base (2 GiB, a little data) <- top (2 GiB of data, written in 1 GiB
# requests: qemu-io silently drops requests of 2 GiB and more) <- act
qimg create -q -f qcow2 "$D/base.qcow2" 2G
qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$D/top.qcow2" 2G
qimg create -q -f qcow2 -b top.qcow2 -F qcow2 "$D/act.qcow2" 2G
qio "$D/base.qcow2" "write -P 0x11 0 64M"
qio "$D/top.qcow2" "write -P 0x5a 0 1G" "write -P 0x5b 1G 1G"
qio "$D/act.qcow2" "write -P 0x77 100M 1M"
alloc=$(qemu-img map --output=json "$D/top.qcow2" | jq '[.[] | select(.depth == 0 and .data) | .length] | add')
assert_eq $((2 * G)) "$alloc" "top allocates 2 GiB"
rpc image-import '{"image":"local:cc/act.qcow2"}' >/dev/null || fail "image-import"

# 2 GiB at 64 MiB/s: about 32 s, far more than 1,000 calls need even
# under ASan on a loaded machine; cancelled as soon as they are done.
j=$(rpc block-commit '{"top":"local:cc/top.qcow2","base":"local:cc/base.qcow2","speed":67108864}') ||
    fail "block-commit refused"
id=$(jq .id <<<"$j")
# Wait until it copies.
i=0
while :; do
    jj=$(rpc query-jobs '{}' | jq -c ".[] | select(.id == $id)")
    [ "$(jq -r .status <<<"$jj")" = running ] && [ "$(jq .progress.current <<<"$jj")" -gt 0 ] && break
    [ "$(jq -r .status <<<"$jj")" = concluded ] && fail "the commit ended before the test could start: $jj"
    i=$((i+1)); [ $i -lt 300 ] || fail "the commit did not start copying: $jj"
    sleep 0.1
done
assert_eq $((2 * G)) "$(jq .progress.total <<<"$jj")" "progress total of the 2 GiB commit"

# ---- conflicting jobs: InUse naming the job -----------------------------------------
conflict() { # WHAT METHOD PARAMS
    e=$(rpc_err "$2" "$3") || return
    assert_eq InUse "$(err_class "$e")" "$1: error class"
    assert_match "job $id[^0-9]" "$(err_msg "$e")" "$1: the refusal names job $id"
}
conflict "second commit" block-commit '{"top":"local:cc/act.qcow2","base":"local:cc/top.qcow2"}'
conflict "pull" block-pull '{"image":"local:cc/act.qcow2"}'
conflict "rebase" image-rebase '{"image":"local:cc/act.qcow2","backing":null,"mode":"unsafe"}'
conflict "commit into base" block-commit '{"top":"local:cc/act.qcow2","base":"local:cc/base.qcow2"}'

# ---- 1,000 query-jobs while it copies ---------------------------------------------------
out=$("$BENCH" "$GVM_RO_SOCK" --clients 1 --calls 1000 --method query-jobs) ||
    fail "rpc-bench failed: $out"
note "query-jobs during the 2 GiB commit: $out"
calls=$(sed -n 's/.* calls=\([0-9]*\).*/\1/p' <<<"$out")
p99=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
max=$(sed -n 's/.*max_us=\([0-9]*\).*/\1/p' <<<"$out")
assert_eq 1000 "$calls" "calls made"
[ -n "$max" ] && [ "$max" -lt "$MAX_US" ] ||
    check_fail "the slowest query-jobs call took ${max:-?} us (p99 ${p99:-?} us), over $MAX_US us"
jj=$(rpc query-jobs '{}' | jq -c ".[] | select(.id == $id)")
assert_eq running "$(jq -r .status <<<"$jj")" "the commit still runs after the 1,000 calls"
cur=$(jq .progress.current <<<"$jj")
[ "$cur" -lt $((2 * G)) ] || check_fail "the commit had finished copying ($cur bytes)"
note "commit progress when the calls ended: $cur of $((2 * G)) bytes"

# ---- cancel: the chain is as it was ------------------------------------------------------
rpc job-cancel "{\"id\":$id}" >/dev/null || check_fail "job-cancel"
j=$(rpc job-wait "{\"id\":$id,\"timeout\":120}") || fail "job-wait"
assert_eq concluded "$(jq -r .status <<<"$j")" "status after cancel"
assert_eq true "$(jq -r .cancelled <<<"$j")" "cancelled"
rpc job-dismiss "{\"id\":$id}" >/dev/null || check_fail "job-dismiss"
assert_eq top.qcow2 "$(qemu-img info --output=json "$D/act.qcow2" | jq -r '."backing-filename"')" "act still on top"
qemu-io -c "read -P 0x77 100M 1M" -c "read -P 0x5a 0 64M" -c "read -P 0x5b 2000M 48M" "$D/act.qcow2" |
    grep -q "Pattern verification failed" && check_fail "act does not read as before"
qemu-img check -q "$D/act.qcow2" || check_fail "qemu-img check of act"
qemu-img check -q "$D/top.qcow2" || check_fail "qemu-img check of top"
qemu-img check -q "$D/base.qcow2" || check_fail "qemu-img check of base"
# Base reads what it read where top hides it: its 64 MiB of data.
qemu-io -c "read -P 0x11 0 64M" "$D/base.qcow2" | grep -q "Pattern verification failed" &&
    note "base was partly written by the cancelled commit (allowed: top hides it)"
# After the cancel a new job on the chain is accepted again.
j=$(rpc block-pull '{"image":"local:cc/act.qcow2","base":"local:cc/top.qcow2"}') ||
    check_fail "a job after the cancel was refused"
jid=$(jq .id <<<"$j")
j=$(rpc job-wait "{\"id\":$jid,\"timeout\":60}")
assert_eq null "$(jq -c .error <<<"$j")" "pull after the cancel"
stop_gvmd
