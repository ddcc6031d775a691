/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job-event.c — a job as JOB (PROTOCOL.md) and the announcement of its
 * status changes: the job-status-change event handed to the sink the
 * daemon registered (jobs_config.on_event), and a wake-up of every waiter.
 * The job's error becomes the ERROR object here, when it is listed; its
 * times are epoch seconds or null, its images named as job-store.c named
 * them when the job was created.
 */
#include <inttypes.h>

#include "job-internal.h"
#include "jsonutil.h"

/* A time member: epoch seconds, null while not known. */
static json_t *time_json(int64_t t)
{
    return t ? json_integer((json_int_t)t) : json_null();
}

json_t *job_event_json_locked(struct job *job)
{
    json_t *j = json_pack("{s:I, s:s, s:s, s:b, s:{s:I, s:I}, s:O, s:O*, "
                          "s:o, s:o, s:o, s:b}",
                          "id", (json_int_t)job->id,
                          "type", job->type_name,
                          "status", job_status_name(job->status),
                          "cancelled", job->cancelled,
                          "progress",
                          "current", (json_int_t)atomic_load(&job->cur),
                          "total", (json_int_t)atomic_load(&job->total),
                          "images", job->images,
                          "image-names", job->image_names,
                          "created", time_json(job->created),
                          "started", time_json(job->started),
                          "finished", time_json(job->finished),
                          "live", job->live);
    if (!j)
        return NULL;
    if ((gvm_error_isset(&job->error) &&
         gvm_json_set(j, "error", gvm_error_to_json(&job->error)) < 0) ||
        (job->op_id && gvm_json_set(j, "op-id", json_string(job->op_id)) < 0)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *job_to_json(struct job *job)
{
    GVM_LOCK_GUARD(&job->jobs->lock);
    return job_event_json_locked(job);
}

json_t *jobs_list_json(struct jobs *jobs)
{
    json_t *arr = json_array();
    GVM_LOCK_GUARD(&jobs->lock);

    for (size_t i = 0; arr && i < jobs->nall; i++) {
        if (gvm_json_append(arr, job_event_json_locked(jobs->all[i])) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

void job_event_announce(struct job *job)
{
    struct jobs *jobs = job->jobs;
    _cleanup_json_ json_t *ev = NULL;
    json_t *j;

    {
        GVM_LOCK_GUARD(&jobs->lock);
        j = job_event_json_locked(job);
        pthread_cond_broadcast(&jobs->changed);
    }
    if (!j)
        return;
    log_info("Job %" PRId64 " (%s) is %s.", job->id, job->type_name,
             json_string_value(json_object_get(j, "status")));
    /* The sink is called without jobs->lock: it may call back into the
     * runner (job_to_json, query-jobs from another thread). */
    ev = json_pack("{s:s, s:o}", "event", "job-status-change", "job", j);
    if (ev && jobs->cfg.on_event)
        jobs->cfg.on_event(jobs->cfg.event_arg, ev);
}
