/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-run.c — run an internal job and wait for it (snapshot-run.h).
 */
#include <inttypes.h>
#include <string.h>

#include "jsonutil.h"
#include "snapshot-run.h"

static enum gvm_error_class class_parse(const char *name)
{
    for (int c = 0; c < GVM_ERR__COUNT; c++) {
        if (name && strcmp(gvm_error_class_name((enum gvm_error_class)c), name) == 0)
            return (enum gvm_error_class)c;
    }
    return GVM_ERR_INTERNAL;
}

/* The error of the concluded job whose result is res, into err: false when
 * it has none.  The one place that reads a job's error back from its
 * JSON-RPC form (to switch when job.c keeps it as a struct gvm_error). */
static bool job_error(json_t *res, struct gvm_error *err)
{
    json_t *je = json_object_get(res, "error");

    if (!json_is_object(je))
        return false;
    const char *msg = json_string_value(json_object_get(je, "message"));
    json_t *data = json_object_get(je, "data");
    gvm_error_set(err, class_parse(json_string_value(json_object_get(data, "class"))),
                  "%s", msg ? msg : "The operation failed.");
    return true;
}

int snapshot_run_job(struct gvmd *d, const struct job_type *type,
                     json_t *params, json_t *images,
                     const struct catalog_job_lock *locks, size_t nlocks,
                     struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    _cleanup_json_ json_t *res = NULL;
    struct gvm_error e2 = { 0 };
    int64_t id;

    if (jobs_create(d->jobs, type, params, images, locks, nlocks, NULL, &job,
                    err) < 0)
        return -1;
    id = job_id(job);
    if (jobs_wait(d->jobs, id, -1, &res, err) < 0)
        return -1;
    if (strcmp(json_string_value(json_object_get(res, "status")) ?: "", "concluded") != 0) {
        gvm_error_set(err, GVM_ERR_BUSY, "gvmd is shutting down; the %s "
                      "operation (job %" PRId64 ") resumes at the next start.",
                      type->name, id);
        return -1;
    }
    if (job_error(res, err)) {
        jobs_dismiss(d->jobs, id, &e2);
        return -1;
    }
    if (json_is_true(json_object_get(res, "cancelled"))) {
        gvm_error_set(err, GVM_ERR_BUSY, "The %s operation was cancelled; "
                      "nothing was changed.", type->name);
        jobs_dismiss(d->jobs, id, &e2);
        return -1;
    }
    jobs_dismiss(d->jobs, id, &e2);
    return 0;
}
