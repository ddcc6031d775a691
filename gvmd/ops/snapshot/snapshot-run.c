/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-run.c — run an internal job and wait for it (snapshot-run.h).
 */
#include <inttypes.h>

#include "snapshot-run.h"

int snapshot_run_job(struct gvmd *d, const struct job_type *type,
                     json_t *params, json_t *images,
                     const struct catalog_job_lock *locks, size_t nlocks,
                     struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    struct gvm_error je, e2 = { 0 };
    int64_t id;
    int ret = -1;

    if (jobs_create(d->jobs, type, params, images, locks, nlocks, NULL, &job,
                    err) < 0)
        return -1;
    id = job_id(job);
    if (job_wait(job, -1, err) < 0)
        return -1;
    switch (job_outcome(job, &je)) {
    case JOB_OUTCOME_UNFINISHED:
        gvm_error_set(err, GVM_ERR_BUSY, "gvmd is shutting down; the %s "
                      "operation (job %" PRId64 ") resumes at the next start.",
                      type->name, id);
        return -1;
    case JOB_OUTCOME_FAILED:
        /* Its class and sentence, as a client of the job would read them
         * (not the parameter name or errno the job's step kept). */
        gvm_error_set(err, je.cls, "%s", je.message);
        break;
    case JOB_OUTCOME_CANCELLED:
        gvm_error_set(err, GVM_ERR_BUSY, "The %s operation was cancelled; "
                      "nothing was changed.", type->name);
        break;
    case JOB_OUTCOME_DONE:
        ret = 0;
        break;
    }
    jobs_dismiss(d->jobs, id, &e2);
    return ret;
}
