/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job-list.c — the jobs in memory: status names, registered types, the
 * runner's list, allocation and references, and look-up by id.  Every
 * other file of the runner builds on these and this file calls none of
 * them (the locking rules are in job-internal.h).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "job-internal.h"
#include "jsonutil.h"

static const char *const status_names[] = {
    [JOB_CREATED] = "created",
    [JOB_RUNNING] = "running",
    [JOB_READY] = "ready",
    [JOB_PENDING] = "pending",
    [JOB_CONCLUDED] = "concluded",
};

/* ---- small helpers ----------------------------------------------------------- */

const char *job_status_name(enum job_status st)
{
    return status_names[st];
}

int job_status_parse(const char *s, enum job_status *out)
{
    for (size_t i = 0; i < GVM_ARRAY_SIZE(status_names); i++) {
        if (strcmp(status_names[i], s) == 0) {
            *out = (enum job_status)i;
            return 0;
        }
    }
    return -1;
}

/* The registered type a catalogued job row names (offline and live types
 * share the method's name). */
const struct job_type *job_type_find(const struct jobs *jobs, const char *name,
                                     bool live)
{
    for (size_t i = 0; i < jobs->cfg.ntypes; i++) {
        const struct job_type *t = jobs->cfg.types[i];

        if (strcmp(t->name, name) == 0 && t->live == live)
            return t;
    }
    return NULL;
}

bool job_type_registered(const struct jobs *jobs, const struct job_type *type)
{
    for (size_t i = 0; i < jobs->cfg.ntypes; i++) {
        if (jobs->cfg.types[i] == type)
            return true;
    }
    return false;
}

int job_list_push(struct job ***v, size_t *n, size_t *cap, struct job *j)
{
    if (*n == *cap) {
        size_t ncap = *cap ? 2 * *cap : 8;
        struct job **nv = realloc(*v, ncap * sizeof(**v));
        if (!nv)
            return -ENOMEM;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = j;
    return 0;
}

int job_list_add_locked(struct jobs *jobs, struct job *job)
{
    if (job_list_push(&jobs->all, &jobs->nall, &jobs->capall, job) < 0)
        return -ENOMEM;
    job->listed = true;
    return 0;
}

/* Remove the i-th of v[0..*n), keeping the order. */
void job_list_remove_at(struct job **v, size_t *n, size_t i)
{
    memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
    (*n)--;
}

struct job *job_alloc(struct jobs *jobs)
{
    struct job *job = calloc(1, sizeof(*job));
    pthread_mutexattr_t ma;

    if (!job)
        return NULL;
    job->jobs = jobs;
    job->refs = 1;
    /* Recursive: jobs_cancel() holds it around a save. */
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&job->persist_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    return job;
}

void job_free(struct job *job)
{
    free(job->type_name);
    free(job->op_id);
    free(job->live_domain);
    free(job->live_disk);
    json_decref(job->images);
    json_decref(job->image_names);
    json_decref(job->params);
    pthread_mutex_destroy(&job->persist_lock);
    free(job);
}

void job_unref(struct job *job)
{
    struct jobs *jobs;
    bool last;

    assert(job);
    jobs = job->jobs;
    {
        GVM_LOCK_GUARD(&jobs->lock);
        last = --job->refs == 0;
    }
    if (last)
        job_free(job);
}

struct job *job_list_find_locked(struct jobs *jobs, int64_t id)
{
    for (size_t i = 0; i < jobs->nall; i++) {
        if (jobs->all[i]->id == id)
            return jobs->all[i];
    }
    return NULL;
}

int jobs_get(struct jobs *jobs, int64_t id, struct job **out,
             struct gvm_error *err)
{
    struct job *job;

    assert(jobs && out);
    {
        GVM_LOCK_GUARD(&jobs->lock);
        job = job_list_find_locked(jobs, id);
        if (job)
            job->refs++;
    }
    if (!job) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "There is no job %" PRId64 ".", id);
        return -1;
    }
    *out = job;
    return 0;
}
