/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job-store.c — a job's row in the catalog: creation with its image
 * locks, every status change, throttled progress, loading at start-up,
 * deletion at dismissal.  The runner (job.c) never calls the catalog
 * itself.
 *
 * Persistence.  Status changes are written synchronously before they are
 * announced (event, job-wait), so a client never learns of a state a crash
 * could take back.  Progress is written at most every PERSIST_MS.
 *
 * A job keeps its error as a struct gvm_error; the row holds it as the
 * JSON text of the ERROR object (gvm_error_to_json), converted here in
 * both directions.
 *
 * Times.  The row's created is set when it is inserted; started when a
 * state at or past running is first written, finished when "concluded" is:
 * the times are written with the state they date, so they survive a
 * restart as the state does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "job-internal.h"
#include "jsonutil.h"
#include "resolve.h"

#define PERSIST_MS 1000

/* ---- the error column ------------------------------------------------------ */

/* The row's error text for err (NULL: no error, or ENOMEM if err is set). */
static char *error_to_text(const struct gvm_error *err)
{
    _cleanup_json_ json_t *j = NULL;

    if (!gvm_error_isset(err))
        return NULL;
    j = gvm_error_to_json(err);
    return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

static enum gvm_error_class class_from_name(const char *name)
{
    for (int c = 0; c < GVM_ERR__COUNT; c++) {
        if (name && strcmp(gvm_error_class_name((enum gvm_error_class)c), name) == 0)
            return (enum gvm_error_class)c;
    }
    return GVM_ERR_INTERNAL;
}

/* The inverse of error_to_text for a row this daemon wrote; text that is
 * not an ERROR object leaves err clear (the job reports no error). */
static void error_from_text(const char *text, struct gvm_error *err)
{
    _cleanup_json_ json_t *j = NULL;
    json_t *data;
    const char *param;
    enum gvm_error_class cls;

    gvm_error_clear(err);
    j = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(j))
        return;
    data = json_object_get(j, "data");
    cls = class_from_name(json_string_value(json_object_get(data, "class")));
    gvm_error_set(err, cls == GVM_ERR_NONE ? GVM_ERR_INTERNAL : cls, "%s",
                  json_string_value(json_object_get(j, "message")) ?: "");
    param = json_string_value(json_object_get(data, "param"));
    if (param)
        snprintf(err->param, sizeof(err->param), "%s", param);
    err->errnum = (int)json_integer_value(json_object_get(data, "errno"));
}

/* ---- status changes and progress -------------------------------------------- */

/* Copy what is to be written into row (under jobs->lock), dating the
 * first start and the conclusion. */
static void fill_row(struct job *job, const struct job_state *next,
                     struct catalog_job *row)
{
    enum job_status st = next ? next->status : job->status;

    const struct gvm_error *error = next && next->set_error ? next->error
                                                            : &job->error;

    row->id = job->id;
    row->status = strdup(job_status_name(next ? next->status : job->status));
    row->cancelled = next && next->cancelled >= 0 ? next->cancelled : job->cancelled;
    row->error = error ? error_to_text(error) : NULL;
    row->progress_current = atomic_load(&job->cur);
    row->progress_total = atomic_load(&job->total);
    row->started = job->started;
    row->finished = job->finished;
    if (!row->started && st != JOB_CREATED && st != JOB_CONCLUDED)
        row->started = catalog_now();
    if (!row->finished && st == JOB_CONCLUDED)
        row->finished = catalog_now();
}

static int write_row(struct job *job, const struct catalog_job *row,
                     bool has_error, bool release, struct gvm_error *err)
{
    struct catalog *cat = job->jobs->d->cat;

    if (!row->status || (has_error && !row->error)) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory saving job %" PRId64 ".",
                      job->id);
        return -1;
    }
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (catalog_job_update(cat, row, err) < 0 ||
        (release && catalog_job_unlock(cat, job->id, err) < 0)) {
        catalog_rollback(cat);
        return -1;
    }
    return catalog_commit(cat, err);
}

static void publish_locked(struct job *job, const struct job_state *next,
                           const struct catalog_job *row)
{
    job->status = next->status;
    job->started = row->started;
    job->finished = row->finished;
    if (next->cancelled >= 0)
        job->cancelled = next->cancelled;
    if (next->set_error) {
        if (next->error)
            job->error = *next->error;
        else
            gvm_error_clear(&job->error);
    }
}

int job_store_save(struct job *job, const struct job_state *next, bool release,
                   struct gvm_error *err)
{
    struct jobs *jobs = job->jobs;
    struct catalog_job row = { 0 };
    bool has_error;
    int r;

    {
        GVM_LOCK_GUARD(&job->persist_lock);
        {
            GVM_LOCK_GUARD(&jobs->lock);
            fill_row(job, next, &row);
            has_error = next && next->set_error ? next->error && gvm_error_isset(next->error)
                                                : gvm_error_isset(&job->error);
        }
        atomic_store(&job->last_persist_ms, gvm_now_ms());
        r = write_row(job, &row, has_error, release, err);
        /* Published even if the write failed (logged by the caller): the
         * job did change, and memory must not lie about it either. */
        if (next) {
            GVM_LOCK_GUARD(&jobs->lock);
            publish_locked(job, next, &row);
        }
    }
    catalog_job_clear(&row);
    return r;
}

void job_store_save_or_log(struct job *job, const struct job_state *next,
                           bool release)
{
    struct gvm_error err = { 0 };

    if (job_store_save(job, next, release, &err) < 0)
        log_error("Job %" PRId64 " (%s): saving its state failed: %s",
                  job->id, job->type_name, err.message);
}

void job_store_save_progress(struct job *job)
{
    if (gvm_now_ms() - atomic_load(&job->last_persist_ms) >= PERSIST_MS)
        job_store_save_or_log(job, NULL, false);
}

/* ---- image names ---------------------------------------------------------------- */

/* VOLUME:PATH of each image id of images ("image ID" for one not
 * catalogued), NULL on ENOMEM.  Calls the catalog: not under jobs->lock. */
static json_t *image_names(struct jobs *jobs, json_t *images)
{
    json_t *names = json_array();
    size_t i;
    json_t *v;

    json_array_foreach(images, i, v) {
        _cleanup_free_ char *s = NULL;

        if (!names)
            return NULL;
        s = resolve_image_name(jobs->d, json_integer_value(v));
        if (gvm_json_append(names, s ? json_string(s) : NULL) < 0) {
            json_decref(names);
            return NULL;
        }
    }
    return names;
}

/* ---- loading ------------------------------------------------------------------ */

static int load_row(struct jobs *jobs, const struct catalog_job *row,
                    struct gvm_error *err)
{
    struct job *job = job_alloc(jobs);
    json_error_t jerr;

    if (!job)
        goto oom;
    job->id = row->id;
    job->type = job_type_find(jobs, row->type, row->live);
    job->type_name = strdup(row->type);
    if (job_status_parse(row->status, &job->status) < 0)
        job->status = JOB_RUNNING;   /* the CHECK constraint prevents this */
    job->cancelled = row->cancelled;
    atomic_store(&job->cancel_req, row->cancelled && job->status != JOB_CONCLUDED);
    error_from_text(row->error, &job->error);
    job->images = json_loads(row->images, 0, &jerr);
    job->params = json_loads(row->params, 0, &jerr);
    job->op_id = row->op_id ? strdup(row->op_id) : NULL;
    job->live = row->live;
    atomic_store(&job->cur, row->progress_current);
    atomic_store(&job->total, row->progress_total);
    job->created = row->created;
    job->started = row->started;
    job->finished = row->finished;
    if (!job->type_name || (row->op_id && !job->op_id))
        goto oom;
    if (!job->images || !json_is_array(job->images)) {
        json_decref(job->images);
        job->images = json_array();
    }
    /* A row of an older catalog has no names: those of now. */
    job->image_names = row->image_names ? json_loads(row->image_names, 0, &jerr)
                                        : NULL;
    if (!json_is_array(job->image_names) ||
        json_array_size(job->image_names) != json_array_size(job->images)) {
        json_decref(job->image_names);
        job->image_names = image_names(jobs, job->images);
        if (!job->image_names)
            goto oom;
    }
    if (!job->params) {
        /* Recovery will conclude it: its type cannot work without them. */
        job->params = json_object();
    }
    /* No lock: no thread runs yet. */
    if (job_list_add_locked(jobs, job) < 0)
        goto oom;
    return 0;
oom:
    if (job)
        job_free(job);
    gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory loading jobs.");
    return -1;
}

int job_store_load(struct jobs *jobs, struct gvm_error *err)
{
    struct catalog_job *rows = NULL;
    size_t n = 0;
    int r = 0;

    if (catalog_job_list(jobs->d->cat, &rows, &n, err) < 0)
        return -1;
    for (size_t i = 0; r == 0 && i < n; i++)
        r = load_row(jobs, &rows[i], err);
    catalog_jobs_free(rows, n);
    return r;
}

/* ---- creation and deletion ---------------------------------------------------- */

int job_store_create(struct jobs *jobs, const struct job_type *type,
                     json_t *params, json_t *images,
                     const struct catalog_job_lock *locks, size_t nlocks,
                     const char *op_id, struct catalog_job *row,
                     struct gvm_error *err)
{
    struct catalog *cat = jobs->d->cat;
    _cleanup_json_ json_t *names = image_names(jobs, images);
    int found = 0;

    if (!names) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating a job.");
        return -1;
    }
    /* The op-id lookup and the insertion in one transaction: two calls
     * with the same op-id cannot both create a job. */
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (op_id) {
        found = catalog_job_find_opid(cat, type->name, op_id, row, err);
        if (found < 0) {
            catalog_rollback(cat);
            return -1;
        }
    }
    if (!found) {
        row->type = strdup(type->name);
        row->images = json_dumps(images, JSON_COMPACT);
        row->params = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
        row->op_id = op_id ? strdup(op_id) : NULL;
        row->live = type->live;
        row->image_names = json_dumps(names, JSON_COMPACT);
        if (!row->type || !row->images || !row->params || !row->image_names ||
            (op_id && !row->op_id)) {
            catalog_rollback(cat);
            catalog_job_clear(row);
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating a job.");
            return -1;
        }
        if (catalog_job_add(cat, row, locks, nlocks, NULL, err) < 0) {
            catalog_rollback(cat);
            catalog_job_clear(row);
            return -1;
        }
    }
    if (catalog_commit(cat, err) < 0) {
        catalog_job_clear(row);
        return -1;
    }
    return found;
}

int job_store_delete(struct jobs *jobs, int64_t id, struct gvm_error *err)
{
    return catalog_job_delete(jobs->d->cat, id, err);
}
