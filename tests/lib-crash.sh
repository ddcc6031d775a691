# SPDX-License-Identifier: GPL-2.0-or-later
# tests/lib-crash.sh — the skeleton every crash test repeats.  Source after
# lib.sh:
#   . "$GVM_TESTDIR/lib.sh"; . "$GVM_TESTDIR/lib-crash.sh"
#
# A scenario makes gvmd die at one moment of an operation and checks what a
# restart makes of it:
#   crash_start SPEC          gvmd with GVMD_FAULT=SPEC (see journal.h,
#                             journal_fault_point, and store/store-faulty.c:
#                             "step:NAME:kill", "write:N:kill", ...)
#   ...the request that reaches the fault point...
#   crash_restart WHAT TAG    wait for the death, keep that log, start again
#   crash_job OPID WHAT       the interrupted job, waited for (job-wait is
#                             followed by audit_clean: rpc in lib.sh)
#   crash_job_recovered WHAT  it concluded without error
# Failures are recorded with check_fail and name WHAT (the scenario).

# crash_start SPEC: start gvmd with GVMD_FAULT=SPEC in its environment, and
# only in its: the test's own qemu-img and gvmctl calls run unfaulted.
crash_start() {
    GVMD_FAULT=$1
    export GVMD_FAULT
    start_gvmd
    unset GVMD_FAULT
}

# crash_restart WHAT TAG [SECONDS]: wait up to SECONDS (default 10) for gvmd
# to die at its fault point (killed with SIGKILL if it does not, which is a
# failure, as is a death by anything but GVMD_FAULT); keep its log as
# $TEST_TMP/gvmd-TAG.log; start gvmd again on the same catalog and state.
crash_restart() {
    wait_death ${3:-} || { check_fail "$1: gvmd did not die"; kill9_gvmd; }
    grep -q "GVMD_FAULT: killed" "$GVMD_DIR/gvmd.log" || check_fail "$1: killed by something else"
    mv "$GVMD_DIR/gvmd.log" "$TEST_TMP/gvmd-$2.log"
    start_gvmd
}

# crash_job OPID WHAT: after a restart, wait (up to 60 s) for the job that
# was started with op-id OPID; CRASH_JOB is job-wait's answer.  A job that
# is gone is a failure: then gvmd is stopped and this returns 1, for the
# scenario to end (`crash_job ... || return`).
crash_job() {
    local id
    id=$(rpc query-jobs '{}' | jq -r --arg op "$1" '.[] | select(."op-id" == $op) | .id')
    if [ -z "$id" ]; then check_fail "$2: the job is gone after the restart"; stop_gvmd; return 1; fi
    CRASH_JOB=$(rpc job-wait "{\"id\":$id,\"timeout\":60}")
}

# crash_job_recovered WHAT: CRASH_JOB concluded without error (recovery
# rolled it forward, or rolled back and ran it again).
crash_job_recovered() {
    assert_eq concluded "$(jq -r .status <<<"$CRASH_JOB")" "$1: job status after recovery"
    assert_eq null "$(jq -c .error <<<"$CRASH_JOB")" "$1: job error after recovery"
}

# crash_log_lines REGEX [MAX]: the info lines of the current gvmd log that
# match REGEX (at most MAX), on one line, for a note saying what recovery
# did.
crash_log_lines() {
    grep -hE "$1" "$GVMD_DIR/gvmd.log" | sed 's/^.*: info: //' |
        if [ -n "${2:-}" ]; then head -n "$2"; else cat; fi | tr '\n' ' '
}

# crash_kill9_restart: kill -9 gvmd from outside (no fault point) and start
# it again on the same catalog.
crash_kill9_restart() {
    kill9_gvmd
    start_gvmd
}

# crash_sql DB STATEMENT: run STATEMENT on the catalog DB while gvmd is
# stopped or dead: the sqlite3 shell if installed, else python's module.
crash_sql() {
    if command -v sqlite3 >/dev/null 2>&1; then sqlite3 "$1" "$2"
    else python3 -c 'import sqlite3,sys
c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit()
for row in r: print("|".join(str(x) for x in row))' "$1" "$2"; fi
}
