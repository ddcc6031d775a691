/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job-live.c — the plumbing of live jobs (job_type.live): the ready
 * state, libvirt block-job events routed to the job watching that disk,
 * the sleep between polls, and the job-complete hand-shake between the
 * client's worker (jobs_complete) and the job's thread
 * (job_complete_requested, job_complete_failed).
 *
 * Everything waits on jobs->live_cond or jobs->changed under jobs->lock
 * (see job-internal.h); the libvirt event thread only ever takes the lock
 * briefly.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "job-internal.h"

void job_set_ready(struct job *job, bool ready)
{
    struct job_state next = {
        .status = ready ? JOB_READY : JOB_RUNNING,
        .cancelled = -1,
    };
    enum job_status cur;

    assert(job && job->live);
    {
        GVM_LOCK_GUARD(&job->jobs->lock);
        cur = job->status;
    }
    if (cur == next.status || cur == JOB_CONCLUDED)
        return;
    job_store_save_or_log(job, &next, false);
    job_event_announce(job);
}

int job_live_watch(struct job *job, const char *domain, const char *disk)
{
    char *dom, *dk;

    assert(job && domain && disk);
    dom = strdup(domain);
    dk = strdup(disk);
    if (!dom || !dk) {
        free(dom);
        free(dk);
        return -ENOMEM;
    }
    {
        GVM_LOCK_GUARD(&job->jobs->lock);
        free(job->live_domain);
        free(job->live_disk);
        job->live_domain = dom;
        job->live_disk = dk;
    }
    return 0;
}

unsigned job_live_events(struct job *job, bool clear)
{
    return clear ? atomic_exchange(&job->bj_events, 0u)
                 : atomic_load(&job->bj_events);
}

bool job_complete_requested(struct job *job)
{
    GVM_LOCK_GUARD(&job->jobs->lock);
    return job->complete_state == COMPLETE_ASKED;
}

void job_complete_failed(struct job *job, const struct gvm_error *err)
{
    assert(err && gvm_error_isset(err));
    {
        GVM_LOCK_GUARD(&job->jobs->lock);
        job->complete_state = COMPLETE_FAILED;
        job->complete_err = *err;
        pthread_cond_broadcast(&job->jobs->changed);
    }
}

void job_live_sleep(struct job *job, int64_t timeout_ms)
{
    struct jobs *jobs = job->jobs;
    struct timespec dl;

    assert(timeout_ms >= 0);
    job_wait_deadline(timeout_ms, &dl);
    {
        GVM_LOCK_GUARD(&jobs->lock);
        /* Whatever wakes us is re-checked by the caller; one wait is enough. */
        /* Only what the caller consumes or exits on skips the wait: a cancel
         * or complete request stays set while it is handled, and wakes us by
         * a broadcast when it comes. */
        if (!atomic_load(&job->bj_events) && !atomic_load(&jobs->stopping))
            pthread_cond_timedwait(&jobs->live_cond, &jobs->lock, &dl);
    }
}

/* libvirt's event thread: must not block (jobs->lock is only ever held
 * briefly). */
void job_live_on_blockjob(void *opaque, const char *domain, const char *disk,
                          int type, int status)
{
    struct jobs *jobs = opaque;

    (void)type;
    if (!domain || !disk || status < 0 || status >= 32)
        return;
    {
        GVM_LOCK_GUARD(&jobs->lock);
        for (size_t i = 0; i < jobs->nall; i++) {
            struct job *j = jobs->all[i];

            if (j->live_domain && j->live_disk &&
                strcmp(j->live_domain, domain) == 0 &&
                strcmp(j->live_disk, disk) == 0)
                atomic_fetch_or(&j->bj_events, 1u << status);
        }
        pthread_cond_broadcast(&jobs->live_cond);
    }
}

/* ---- job-complete ------------------------------------------------------------- */

/* Under jobs->lock: Unsupported or Busy if job-complete does not apply. */
static int check_completable_locked(struct job *job, struct gvm_error *err)
{
    if (!job->live) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "Job %" PRId64 " (%s) is an "
                      "offline job and completes by itself; job-complete "
                      "applies only to a live active block-commit in the "
                      "ready state.", job->id, job->type_name);
        return -1;
    }
    if (job->status != JOB_READY) {
        gvm_error_set(err, job->status == JOB_CONCLUDED ? GVM_ERR_UNSUPPORTED
                                                        : GVM_ERR_BUSY,
                      "Job %" PRId64 " (%s) is %s, not ready: only a live "
                      "active commit started with pivot false becomes ready "
                      "(once its mirror has caught up) and can be completed.",
                      job->id, job->type_name, job_status_name(job->status));
        return -1;
    }
    return 0;
}

int jobs_complete(struct jobs *jobs, int64_t id, json_t **result,
                  struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    struct timespec dl;

    if (jobs_get(jobs, id, &job, err) < 0)
        return -1;
    {
        GVM_LOCK_GUARD(&jobs->lock);
        if (check_completable_locked(job, err) < 0)
            return -1;
        job->complete_state = COMPLETE_ASKED;
        pthread_cond_broadcast(&jobs->live_cond);
        job_wait_deadline(60 * 1000, &dl);
        while (job->status != JOB_CONCLUDED &&
               job->complete_state == COMPLETE_ASKED &&
               !atomic_load(&jobs->stopping)) {
            if (pthread_cond_timedwait(&jobs->changed, &jobs->lock, &dl) == ETIMEDOUT)
                break;
        }
        if (job->complete_state == COMPLETE_FAILED) {
            *err = job->complete_err;
            job->complete_state = COMPLETE_NONE;
            return -1;
        }
        *result = job_event_json_locked(job);
    }
    if (!*result)
        return gvm_error_oom(err);
    return 0;
}
