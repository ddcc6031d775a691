#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-jobs.sh — the job methods around image-rebase jobs on a dir volume
# (slowed down by the test-only fault point image-rebase.chunk so they can
# be caught running):
#   - a job outlives the connection that started it; op-id returns the
#     original job; a second job on a locked image gets InUse naming the job;
#   - job-wait with a timeout returns the running job, without one the
#     concluded job; job-dismiss refuses a running job and forgets a
#     concluded one; job-complete is Unsupported for offline jobs;
#   - job-cancel: the job concludes cancelled, the image reads as before and
#     keeps its backing file, the lock is released;
#   - job-status-change events reach a subscriber (rawsock) in order;
#   - concluded jobs and op-ids survive a restart; a job interrupted by a
#     shutdown resumes at the next start and completes.
. "$GVM_TESTDIR/lib.sh"
need_fault_injection
. "$GVM_TESTDIR/lib-image.sh"
RAWSOCK=$GVM_TOOLSDIR/rawsock
[ -x "$RAWSOCK" ] || skip "tests/tools/rawsock is not built"

export GVMD_FAULT=step:image-rebase.chunk:delay1000
start_gvmd
unset GVMD_FAULT
ROOT=$GVMD_DIR/state/images
SIZE=$((64 << 20))

# A subscriber on its own connection, collecting events as they come.
printf '{"jsonrpc":"2.0","id":1,"method":"events-subscribe"}\n' |
    "$RAWSOCK" "$GVM_SOCK" --timeout-ms 60000 --expect 10 >"$TEST_TMP/events" &
SUB_PID=$!
track_pid $SUB_PID
i=0
until grep -q '"id":1' "$TEST_TMP/events" 2>/dev/null; do
    i=$((i+1)); [ $i -lt 100 ] || fail "events-subscribe was not answered"; sleep 0.05
done

# BASE <- NAME, with a little data of its own.
overlay() {
    qimg create -q -f qcow2 -b "$2" -F qcow2 "$ROOT/$1"
    qio "$ROOT/$1" "write -P 0x22 1M 64k"
    rpc image-import "{\"image\":\"local:$1\"}" >/dev/null || fail "import $1"
}
job_field() { rpc query-jobs '{}' | jq -r --argjson id "$1" ".[] | select(.id == \$id) | $2"; }

# ---- a long job: op-id, InUse, wait with timeout, dismiss, complete, cancel ------
# 64M at 1 s per 4M chunk: ~16 s, cancelled long before.
qimg create -q -f qcow2 "$ROOT/base.qcow2" $SIZE
qio "$ROOT/base.qcow2" "write -P 0x11 0 32M" "write -P 0x12 32M 32M"
overlay top2.qcow2 base.qcow2
top_id=$(rpc image-info '{"image":"local:top2.qcow2"}' | jq .id)
base_id=$(rpc image-info '{"image":"local:base.qcow2"}' | jq .id)
qemu-img convert -O raw "$ROOT/top2.qcow2" "$TEST_TMP/top2.raw" || fail "flat copy of top2"

j=$(rpc image-rebase '{"image":"local:top2.qcow2","backing":null,"mode":"safe","op-id":"op-K"}') ||
    fail "image-rebase refused"
K=$(jq .id <<<"$j")
assert_match '^(created|running)$' "$(jq -r .status <<<"$j")" "status of a new job"
assert_eq op-K "$(jq -r '."op-id"' <<<"$j")" "op-id of the job"
assert_eq false "$(jq -r .cancelled <<<"$j")" "cancelled of a new job"
assert_eq "[$top_id,$base_id]" "$(jq -c .images <<<"$j")" "images of the job"
# The same op-id again: the same job, no new one.
j2=$(rpc image-rebase '{"image":"local:top2.qcow2","backing":null,"mode":"safe","op-id":"op-K"}') ||
    check_fail "repeat with the same op-id failed"
assert_eq "$K" "$(jq .id <<<"$j2")" "job id returned for a repeated op-id"
# Another rebase of the locked image is refused, naming the job.
e=$(rpc_err image-rebase '{"image":"local:top2.qcow2","backing":"local:base.qcow2","mode":"unsafe"}')
assert_eq InUse "$(err_class "$e")" "rebase of a locked image"
assert_match "job $K\b" "$(err_msg "$e")" "InUse names the job"
# A short wait returns the job still running.
w=$(rpc job-wait "{\"id\":$K,\"timeout\":0.1}") || check_fail "job-wait with timeout"
assert_match '^(created|running)$' "$(jq -r .status <<<"$w")" "status after a short wait"
e=$(rpc_err job-dismiss "{\"id\":$K}")
assert_eq Busy "$(err_class "$e")" "dismiss of a running job"
e=$(rpc_err job-complete "{\"id\":$K}")
assert_eq Unsupported "$(err_class "$e")" "job-complete of an offline job"
assert_eq $SIZE "$(job_field "$K" .progress.total)" "progress total of job $K"
# The read-only socket lists jobs but cannot cancel them.
"$GVMCTL" --socket "$GVM_RO_SOCK" --json query-jobs | jq -e "map(.id) | index($K) != null" >/dev/null ||
    check_fail "query-jobs on the read-only socket does not list job $K"
"$GVMCTL" --socket "$GVM_RO_SOCK" --json --params "{\"id\":$K}" job-cancel >/dev/null 2>&1 &&
    check_fail "job-cancel allowed on the read-only socket"

i=0
until [ "$(job_field "$K" .progress.current)" -gt 0 ] 2>/dev/null; do
    i=$((i+1)); [ $i -lt 300 ] || fail "job $K made no progress"; sleep 0.05
done
c=$(rpc job-cancel "{\"id\":$K}") || fail "job-cancel $K"
assert_eq true "$(jq -r .cancelled <<<"$c")" "cancelled right after job-cancel"
w=$(rpc job-wait "{\"id\":$K,\"timeout\":30}") || fail "job-wait $K"
assert_eq concluded "$(jq -r .status <<<"$w")" "status of the cancelled job"
assert_eq true "$(jq -r .cancelled <<<"$w")" "cancelled flag at the end"
assert_eq null "$(jq -c .error <<<"$w")" "error of the cancelled job"
[ "$(jq .progress.current <<<"$w")" -lt $SIZE ] || check_fail "job $K ran to the end despite the cancel"
assert_eq base.qcow2 "$(qemu-img info --output=json "$ROOT/top2.qcow2" | jq -r '."backing-filename"')" \
    "backing file of top2 after the cancel"
assert_eq "$base_id" "$(rpc image-info '{"image":"local:top2.qcow2"}' | jq .backing)" "catalog edge of top2"
qemu-img compare -q "$ROOT/top2.qcow2" "$TEST_TMP/top2.raw" || check_fail "top2 reads differently after the cancel"
qemu-img check -q "$ROOT/top2.qcow2" || check_fail "qemu-img check of top2 after the cancel"
# The lock went with the job: a new job on top2 runs (a no-op: same backing).
j=$(rpc image-rebase '{"image":"local:top2.qcow2","backing":"local:base.qcow2","mode":"unsafe"}') ||
    check_fail "rebase after the cancel refused"
L=$(jq .id <<<"$j")
w=$(rpc job-wait "{\"id\":$L,\"timeout\":30}")
assert_eq concluded "$(jq -r .status <<<"$w")" "status of job $L"
assert_eq null "$(jq -c .error <<<"$w")" "error of job $L"
rpc job-dismiss "{\"id\":$L}" >/dev/null || check_fail "dismiss $L"

# ---- a short job to its end: wait, dismiss ------------------------------------------
qimg create -q -f qcow2 "$ROOT/small.qcow2" 8M
qio "$ROOT/small.qcow2" "write -P 0x33 0 8M"
overlay top.qcow2 small.qcow2
j=$(rpc image-rebase '{"image":"local:top.qcow2","backing":null,"mode":"safe"}') ||
    fail "image-rebase of top refused"
J=$(jq .id <<<"$j")
[ "$J" -gt "$L" ] || check_fail "job ids not increasing: $J after $L"
w=$(rpc job-wait "{\"id\":$J}") || fail "job-wait $J failed"
assert_eq concluded "$(jq -r .status <<<"$w")" "status after job-wait"
assert_eq false "$(jq -r .cancelled <<<"$w")" "cancelled after a normal end"
assert_eq null "$(jq -c .error <<<"$w")" "error of a successful job"
assert_eq $((8 << 20)) "$(jq .progress.current <<<"$w")" "progress current at the end"
assert_eq null "$(qemu-img info --output=json "$ROOT/top.qcow2" | jq -c '."backing-filename"')" \
    "backing file of top after the flatten"
qio "$ROOT/top.qcow2" "read -P 0x33 0 1M" "read -P 0x22 1M 64k" "read -P 0x33 2M 6M"
rpc job-dismiss "{\"id\":$J}" >/dev/null || check_fail "job-dismiss of a concluded job"
assert_eq "" "$(job_field "$J" .id)" "job $J listed after dismiss"
e=$(rpc_err job-wait "{\"id\":$J}")
assert_eq NotFound "$(err_class "$e")" "job-wait on a dismissed job"

# ---- events -----------------------------------------------------------------------
wait $SUB_PID 2>/dev/null
statuses() { jq -r --argjson id "$1" 'select(.method == "event" and .params.event == "job-status-change"
    and .params.job.id == $id) | .params.job.status' "$TEST_TMP/events" | xargs; }
assert_eq "created running concluded" "$(statuses "$J")" "events of job $J"
assert_eq "created running concluded" "$(statuses "$K")" "events of job $K"
assert_eq "created running concluded" "$(statuses "$L")" "events of job $L"
assert_eq true "$(jq -r --argjson id "$K" 'select(.params.job.id == $id and .params.job.status == "concluded")
    | .params.job.cancelled' "$TEST_TMP/events")" "cancelled in the concluded event of $K"

# ---- restart: concluded jobs and op-ids persist ------------------------------------------------
stop_gvmd
start_gvmd
assert_eq "concluded true" "$(job_field "$K" '"\(.status) \(.cancelled)"')" "job $K after a restart"
n=$(rpc query-jobs '{}' | jq length)
j=$(rpc image-rebase '{"image":"local:top2.qcow2","backing":null,"mode":"safe","op-id":"op-K"}') ||
    check_fail "repeat of op-K after the restart"
assert_eq "$K" "$(jq .id <<<"$j")" "op-id op-K after a restart"
assert_eq "$n" "$(rpc query-jobs '{}' | jq length)" "jobs after the repeated op-id"
rpc job-dismiss "{\"id\":$K}" >/dev/null || check_fail "dismiss $K after the restart"
assert_eq 0 "$(rpc query-jobs '{}' | jq length)" "jobs left at the end"

# ---- a job interrupted by a shutdown resumes at the next start ------------------------
stop_gvmd
export GVMD_FAULT=step:image-rebase.chunk:delay1000
start_gvmd
unset GVMD_FAULT
j=$(rpc image-rebase '{"image":"local:top2.qcow2","backing":null,"mode":"safe"}') ||
    fail "image-rebase of top2 refused"
R=$(jq .id <<<"$j")
i=0
until [ "$(job_field "$R" .progress.current)" -gt 0 ] 2>/dev/null; do
    i=$((i+1)); [ $i -lt 300 ] || fail "job $R made no progress"; sleep 0.05
done
stop_gvmd
start_gvmd
w=$(rpc job-wait "{\"id\":$R,\"timeout\":60}") || fail "job-wait $R after the restart"
assert_eq concluded "$(jq -r .status <<<"$w")" "job $R after a restart mid-run"
assert_eq null "$(jq -c .error <<<"$w")" "error of job $R resumed after the restart"
assert_eq null "$(qemu-img info --output=json "$ROOT/top2.qcow2" | jq -c '."backing-filename"')" \
    "backing file of top2 after the resumed flatten"
qemu-img compare -q "$ROOT/top2.qcow2" "$TEST_TMP/top2.raw" || check_fail "top2 reads differently after the resumed job"
qemu-img check -q "$ROOT/top2.qcow2" || check_fail "qemu-img check of top2 after the resumed job"
grep -q "Job $R (image-rebase) was left running" "$GVMD_DIR/gvmd.log" ||
    check_fail "job $R was not recovered at the start"
stop_gvmd
