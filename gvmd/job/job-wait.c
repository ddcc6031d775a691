/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job-wait.c — callers that block until a job concludes: job-wait
 * (jobs_wait, which answers with the JOB) and the daemon's own callers
 * (job_wait, then job_outcome for the error as a struct gvm_error).
 *
 * A waiter holds an RPC worker, so at most max_waiters wait at a time
 * (Busy beyond that, see rpc-job.c), and every wait ends when the daemon
 * stops.  Waiters sleep on jobs->changed, which announcements, dismissal
 * and jobs_stop() broadcast.
 */
#include <errno.h>
#include <inttypes.h>

#include "job-internal.h"

void job_wait_deadline(int64_t timeout_ms, struct timespec *deadline)
{
    clock_gettime(CLOCK_MONOTONIC, deadline);
    if (timeout_ms < 0)
        return;
    deadline->tv_sec += timeout_ms / 1000;
    deadline->tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_sec++;
        deadline->tv_nsec -= 1000000000L;
    }
}

/*
 * Under jobs->lock: wait until the job concludes or is dismissed, the
 * daemon stops or the deadline passes (timeout_ms < 0: none).  -1 without
 * waiting when too many wait already.
 */
static int wait_locked(struct jobs *jobs, struct job *job, int64_t timeout_ms,
                       const struct timespec *deadline)
{
    if (job->status != JOB_CONCLUDED && jobs->waiters >= jobs->max_waiters)
        return -1;
    jobs->waiters++;
    while (job->status != JOB_CONCLUDED && job->listed &&
           !atomic_load(&jobs->stopping)) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&jobs->changed, &jobs->lock);
        } else if (pthread_cond_timedwait(&jobs->changed, &jobs->lock,
                                          deadline) == ETIMEDOUT) {
            break;
        }
    }
    jobs->waiters--;
    return 0;
}

static int too_many_waiters(struct jobs *jobs, struct gvm_error *err)
{
    gvm_error_set(err, GVM_ERR_BUSY, "Too many job-wait calls are waiting "
                  "already (%d); wait with a timeout and retry, or "
                  "subscribe to job-status-change events.",
                  jobs->max_waiters);
    return -1;
}

int jobs_wait(struct jobs *jobs, int64_t id, int64_t timeout_ms,
              json_t **result, struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    struct timespec deadline;
    int r;

    if (jobs_get(jobs, id, &job, err) < 0)
        return -1;
    job_wait_deadline(timeout_ms, &deadline);
    {
        GVM_LOCK_GUARD(&jobs->lock);
        r = wait_locked(jobs, job, timeout_ms, &deadline);
        if (r == 0)
            *result = job_event_json_locked(job);
    }
    if (r < 0)
        return too_many_waiters(jobs, err);
    if (!*result) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    return 0;
}

int job_wait(struct job *job, int64_t timeout_ms, struct gvm_error *err)
{
    struct jobs *jobs = job->jobs;
    struct timespec deadline;
    int r;

    job_wait_deadline(timeout_ms, &deadline);
    {
        GVM_LOCK_GUARD(&jobs->lock);
        r = wait_locked(jobs, job, timeout_ms, &deadline);
    }
    if (r < 0)
        return too_many_waiters(jobs, err);
    return 0;
}

enum job_outcome job_outcome(struct job *job, struct gvm_error *job_err)
{
    GVM_LOCK_GUARD(&job->jobs->lock);

    if (job_err)
        gvm_error_clear(job_err);
    if (job->status != JOB_CONCLUDED)
        return JOB_OUTCOME_UNFINISHED;
    if (gvm_error_isset(&job->error)) {
        if (job_err)
            *job_err = job->error;
        return JOB_OUTCOME_FAILED;
    }
    return job->cancelled ? JOB_OUTCOME_CANCELLED : JOB_OUTCOME_DONE;
}
