/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job.c — the job runner (see job.h for the life of a job): the run queue
 * and the threads that run them, creation, cancellation, dismissal, and
 * recovery at start-up.
 *
 * The rest of the runner: job-list.c holds the jobs in memory and their
 * references, job-store.c writes and reads the catalog rows,
 * job-event.c builds the JOB and announces status changes, job-live.c is
 * the plumbing of live jobs, job-wait.c the waiters.  Locking is described
 * in job-internal.h.  Nothing here knows the wire: types and the event
 * sink come in through struct jobs_config.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "job-internal.h"
#include "jsonutil.h"
#include "virt.h"

/* outcome: 0 done, JOB_STOPPED cancelled, -1 failed with err. */
static void conclude(struct job *job, int outcome, const struct gvm_error *err)
{
    struct job_state next = {
        .status = JOB_CONCLUDED,
        .cancelled = outcome == JOB_STOPPED,
        .set_error = true,
        .error = outcome < 0 ? err : NULL,
    };

    /* Every caller fills err before concluding with a failure. */
    assert(outcome >= 0 || (err && gvm_error_isset(err)));
    if (outcome == 0)
        atomic_store(&job->cur, atomic_load(&job->total));
    if (outcome < 0)
        log_warn("Job %" PRId64 " (%s) failed: %s", job->id, job->type_name,
                 err->message);
    job_store_save_or_log(job, &next, true);
    job_event_announce(job);
}

/* ---- runner threads ---------------------------------------------------------- */

static void run_one(struct job *job)
{
    struct gvm_error err = { 0 };
    int r;

    struct job_state next = { .status = JOB_RUNNING, .cancelled = -1 };

    job_store_save_or_log(job, &next, false);
    job_event_announce(job);

    r = job->type->run(job, &err);
    if (r < 0 && !gvm_error_isset(&err))
        gvm_error_set(&err, GVM_ERR_INTERNAL, "Job %" PRId64 " (%s) failed "
                      "without saying why.", job->id, job->type_name);
    if (r == JOB_STOPPED && !atomic_load(&job->cancel_req)) {
        /* Stopped for shutdown: stays "running"; the next start resumes
         * it through recover(). */
        job_store_save_or_log(job, NULL, false);
        log_info("Job %" PRId64 " (%s) interrupted by shutdown; it resumes "
                 "at the next start.", job->id, job->type_name);
        return;
    }
    conclude(job, r == JOB_STOPPED ? JOB_STOPPED : r < 0 ? -1 : 0, &err);
}

static void *runner(void *arg)
{
    struct jobs *jobs = arg;

    for (;;) {
        struct job *job;

        {
            GVM_LOCK_GUARD(&jobs->lock);
            while (!atomic_load(&jobs->stopping) && jobs->nq == 0)
                pthread_cond_wait(&jobs->work, &jobs->lock);
            if (atomic_load(&jobs->stopping))
                break;
            job = jobs->queue[0];
            job_list_remove_at(jobs->queue, &jobs->nq, 0);
            job->queued = false;
        }
        /* The queue's reference is now ours. */
        if (atomic_load(&job->cancel_req))
            conclude(job, JOB_STOPPED, NULL);
        else
            run_one(job);
        job_unref(job);
    }
    return NULL;
}

/* A live job's own thread: holds a reference to it. */
static void *live_thread(void *arg)
{
    struct job *job = arg;
    struct jobs *jobs = job->jobs;
    bool fresh;

    {
        GVM_LOCK_GUARD(&jobs->lock);
        fresh = job->status == JOB_CREATED;
    }
    /* A job that never ran has no libvirt job to abort. */
    if (atomic_load(&job->cancel_req) && fresh)
        conclude(job, JOB_STOPPED, NULL);
    else if (!atomic_load(&jobs->stopping))
        run_one(job);
    job_unref(job);
    {
        GVM_LOCK_GUARD(&jobs->lock);
        jobs->nlive--;
        pthread_cond_broadcast(&jobs->changed);
    }
    return NULL;
}

static void start_live_locked(struct jobs *jobs, struct job *job)
{
    pthread_t t;
    pthread_attr_t a;
    int r;

    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    job->refs++;                  /* the thread's */
    r = pthread_create(&t, &a, live_thread, job);
    pthread_attr_destroy(&a);
    if (r != 0) {
        job->refs--;
        log_error("Job %" PRId64 ": cannot start its thread: %s; it is "
                  "retried at the next start.", job->id, strerror(r));
        return;
    }
    jobs->nlive++;
}

static void enqueue_locked(struct jobs *jobs, struct job *job)
{
    if (job->type && job->type->live) {
        start_live_locked(jobs, job);
        return;
    }
    if (job_list_push(&jobs->queue, &jobs->nq, &jobs->capq, job) < 0) {
        /* Cannot happen in practice (a few pointers); the job stays in
         * its state and is retried at the next start. */
        log_error("Job %" PRId64 ": out of memory queueing it.", job->id);
        return;
    }
    job->refs++;
    job->queued = true;
    pthread_cond_signal(&jobs->work);
}

static void enqueue(struct jobs *jobs, struct job *job)
{
    GVM_LOCK_GUARD(&jobs->lock);
    enqueue_locked(jobs, job);
}

/* ---- accessors for job types ------------------------------------------------ */

struct gvmd *job_daemon(struct job *job) { return job->jobs->d; }
int64_t job_id(const struct job *job) { return job->id; }
const char *job_op_id(const struct job *job) { return job->op_id; }
json_t *job_params(struct job *job) { return job->params; }

bool job_cancel_requested(struct job *job)
{
    return atomic_load(&job->cancel_req);
}

bool job_should_stop(struct job *job)
{
    return atomic_load(&job->cancel_req) || atomic_load(&job->jobs->stopping);
}

bool job_daemon_stopping(struct job *job)
{
    return atomic_load(&job->jobs->stopping);
}

void job_set_progress(struct job *job, uint64_t current, uint64_t total)
{
    /* libvirt reports 0/0 for a block job it has not sized yet or is
     * winding up: the last real progress is the true one. */
    if (current == 0 && total == 0 && atomic_load(&job->total) > 0)
        return;
    atomic_store(&job->total, total);
    atomic_store(&job->cur, current);
    job_store_save_progress(job);
}

void job_add_progress(struct job *job, uint64_t delta)
{
    atomic_fetch_add(&job->cur, delta);
    job_store_save_progress(job);
}

/* ---- start, recovery, stop ----------------------------------------------------- */

int jobs_new(struct gvmd *d, const struct jobs_config *cfg, struct jobs **out,
             struct gvm_error *err)
{
    struct jobs *jobs;
    pthread_condattr_t ca;

    assert(d && cfg && out && (cfg->types || cfg->ntypes == 0));
    for (size_t i = 0; i < cfg->ntypes; i++)
        assert(cfg->types[i]->name && cfg->types[i]->run && cfg->types[i]->recover);
    jobs = calloc(1, sizeof(*jobs));
    if (!jobs) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating the job runner.");
        return -1;
    }
    jobs->d = d;
    jobs->cfg = *cfg;
    jobs->nthreads = cfg->nthreads ? cfg->nthreads : 2;
    /* Each job-wait holds an RPC worker: leave at least one free for
     * everything else. */
    jobs->max_waiters = d->cfg.workers > 1 ? d->cfg.workers - 1 : 1;
    pthread_mutex_init(&jobs->lock, NULL);
    pthread_cond_init(&jobs->work, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&jobs->changed, &ca);
    pthread_cond_init(&jobs->live_cond, &ca);
    pthread_condattr_destroy(&ca);

    if (job_store_load(jobs, err) < 0) {
        jobs_free(jobs);
        return -1;
    }
    *out = jobs;
    return 0;
}

/* Conclude a job the previous daemon left unfinished, of a type this one
 * does not know. */
static void conclude_unknown(struct job *job)
{
    struct gvm_error err = { 0 };

    gvm_error_set(&err, GVM_ERR_UNSUPPORTED,
                  "Job %" PRId64 " is of type '%s', which this gvmd does not "
                  "know; it was left unfinished by an earlier daemon, so its "
                  "images may be mid-change: check them with chain-audit.",
                  job->id, job->type_name);
    conclude(job, -1, &err);
}

/* Recover one unfinished job at start-up. */
static void recover_one(struct jobs *jobs, struct job *job)
{
    struct catalog *cat = jobs->d->cat;
    struct gvm_error err = { 0 };
    _cleanup_journal_op_ struct journal_op *op = NULL;
    struct journal_entry *e = NULL;
    char **ids = NULL;
    size_t nids = 0, n = 0;
    int r;

    if (!job->type) {
        conclude_unknown(job);
        return;
    }
    if (job->status == JOB_CREATED) {
        /* Never started: nothing on storage to look at. */
        if (atomic_load(&job->cancel_req))
            conclude(job, JOB_STOPPED, NULL);
        else
            enqueue(jobs, job);
        return;
    }
    if (journal_ops(cat, job->id, false, &ids, &nids, &err) < 0 ||
        (nids > 0 && journal_load(cat, ids[nids - 1], &op, &e, &n, &err) < 0)) {
        journal_op_ids_free(ids, nids);
        gvm_error_set(&err, GVM_ERR_INTERNAL, "Job %" PRId64 ": reading its "
                      "journal failed.", job->id);
        conclude(job, -1, &err);
        return;
    }
    journal_op_ids_free(ids, nids);
    log_info("Job %" PRId64 " (%s) was left %s by the previous daemon; "
             "recovering it.", job->id, job->type_name, job_status_name(job->status));
    r = job->type->recover(job, op, e, n, &err);
    journal_entries_free(e, n);
    switch (r) {
    case JOB_RECOVERED_DONE:
        conclude(job, 0, NULL);
        break;
    case JOB_RECOVERED_CANCELLED:
        conclude(job, JOB_STOPPED, NULL);
        break;
    case JOB_RECOVERED_RESUME:
        enqueue(jobs, job);
        break;
    default:
        if (!gvm_error_isset(&err))
            gvm_error_set(&err, GVM_ERR_INTERNAL, "Recovery of job %" PRId64
                          " failed without saying why.", job->id);
        conclude(job, -1, &err);
        break;
    }
}

/* A copy of the job list, one reference each: conclude() takes jobs->lock,
 * so recovery cannot walk jobs->all under it. */
static struct job **list_copy(struct jobs *jobs, size_t *n)
{
    GVM_LOCK_GUARD(&jobs->lock);
    struct job **todo = calloc(jobs->nall ? jobs->nall : 1, sizeof(*todo));

    *n = jobs->nall;
    for (size_t i = 0; todo && i < *n; i++) {
        todo[i] = jobs->all[i];
        todo[i]->refs++;
    }
    return todo;
}

int jobs_start(struct jobs *jobs, struct gvm_error *err)
{
    size_t n;
    struct job **todo;

    assert(jobs);
    /* Before recovery: re-attached live jobs must not miss an event. */
    if (jobs->d->virt)
        virt_set_blockjob_cb(jobs->d->virt, job_live_on_blockjob, jobs);
    todo = list_copy(jobs, &n);
    if (!todo) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory starting jobs.");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (todo[i]->status != JOB_CONCLUDED)
            recover_one(jobs, todo[i]);
        job_unref(todo[i]);
    }
    free(todo);

    jobs->threads = calloc(jobs->nthreads, sizeof(*jobs->threads));
    if (!jobs->threads) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory starting jobs.");
        return -1;
    }
    for (unsigned i = 0; i < jobs->nthreads; i++) {
        int r = pthread_create(&jobs->threads[i], NULL, runner, jobs);
        if (r != 0) {
            gvm_error_set_errno(err, GVM_ERR_INTERNAL, -r,
                                "Starting a job runner thread failed");
            return -1;
        }
        jobs->started++;
    }
    return 0;
}

void jobs_stop(struct jobs *jobs)
{
    if (!jobs)
        return;
    {
        GVM_LOCK_GUARD(&jobs->lock);
        atomic_store(&jobs->stopping, true);
        pthread_cond_broadcast(&jobs->work);
        pthread_cond_broadcast(&jobs->changed);
        pthread_cond_broadcast(&jobs->live_cond);
    }
    for (unsigned i = 0; i < jobs->started; i++)
        pthread_join(jobs->threads[i], NULL);
    jobs->started = 0;
    /* Live jobs notice `stopping` within one poll and leave their libvirt
     * jobs running (re-attached at the next start). */
    {
        GVM_LOCK_GUARD(&jobs->lock);
        while (jobs->nlive > 0)
            pthread_cond_wait(&jobs->changed, &jobs->lock);
    }
    if (jobs->d->virt)
        virt_set_blockjob_cb(jobs->d->virt, NULL, NULL);
}

void jobs_free(struct jobs *jobs)
{
    if (!jobs)
        return;
    jobs_stop(jobs);
    for (size_t i = 0; i < jobs->nq; i++)
        jobs->queue[i]->refs--;
    for (size_t i = 0; i < jobs->nall; i++) {
        if (--jobs->all[i]->refs == 0)
            job_free(jobs->all[i]);
    }
    free(jobs->queue);
    free(jobs->all);
    free(jobs->threads);
    pthread_cond_destroy(&jobs->work);
    pthread_cond_destroy(&jobs->changed);
    pthread_cond_destroy(&jobs->live_cond);
    pthread_mutex_destroy(&jobs->lock);
    free(jobs);
}

/* ---- the job methods ------------------------------------------------------------ */

/* A new job from its freshly inserted row (whose strings it takes). */
static struct job *job_from_row(struct jobs *jobs, const struct job_type *type,
                                json_t *params, json_t *images,
                                struct catalog_job *row)
{
    struct job *job = job_alloc(jobs);

    if (!job)
        return NULL;
    job->id = row->id;
    job->type = type;
    job->type_name = steal_pointer(&row->type);
    job->status = JOB_CREATED;
    job->images = json_incref(images);
    job->params = json_incref(params);
    job->op_id = steal_pointer(&row->op_id);
    job->live = type->live;
    job->created = row->created;
    job->image_names = row->image_names ? json_loads(row->image_names, 0, NULL)
                                        : NULL;
    if (!job->image_names) {
        job_free(job);
        return NULL;
    }
    return job;
}

int jobs_create(struct jobs *jobs, const struct job_type *type,
                json_t *params, json_t *images,
                const struct catalog_job_lock *locks, size_t nlocks,
                const char *op_id, struct job **out, struct gvm_error *err)
{
    struct catalog_job row = { 0 };
    struct job *job;
    int found, r;

    /* A type the runner does not know could not be recovered after a
     * restart: the daemon must register every type it creates jobs of. */
    assert(jobs && type && out && (locks || nlocks == 0));
    assert(job_type_registered(jobs, type));
    found = job_store_create(jobs, type, params, images, locks, nlocks, op_id,
                             &row, err);
    if (found < 0)
        return -1;
    if (found) {
        int64_t id = row.id;

        catalog_job_clear(&row);
        if (jobs_get(jobs, id, out, err) < 0)
            return -1;
        return 1;
    }

    job = job_from_row(jobs, type, params, images, &row);
    catalog_job_clear(&row);
    if (!job) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating a job.");
        return -1;
    }
    {
        GVM_LOCK_GUARD(&jobs->lock);
        r = job_list_add_locked(jobs, job);
        if (r == 0)
            job->refs++;          /* the caller's */
    }
    if (r < 0) {
        job_free(job);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating a job.");
        return -1;
    }
    log_info("Job %" PRId64 " (%s) created.", job->id, job->type_name);
    job_event_announce(job);
    /* Queued after the announcement, so "created" always precedes
     * "running" for subscribers. */
    enqueue(jobs, job);
    *out = job;
    return 0;
}

/* Under jobs->lock: mark the cancel request; *now: the job was queued,
 * not started, and is taken off the queue to conclude at once.  false if
 * the request changes nothing (concluded, or asked already). */
static bool request_cancel_locked(struct jobs *jobs, struct job *job, bool *now)
{
    *now = false;
    if (job->status == JOB_CONCLUDED || atomic_load(&job->cancel_req))
        return false;
    atomic_store(&job->cancel_req, true);
    if (job->queued) {
        for (size_t i = 0; i < jobs->nq; i++) {
            if (jobs->queue[i] == job) {
                job_list_remove_at(jobs->queue, &jobs->nq, i);
                job->refs--;      /* the queue's; the caller's remains */
                break;
            }
        }
        job->queued = false;
        *now = true;
    }
    return true;
}

int jobs_cancel(struct jobs *jobs, int64_t id, json_t **result,
                struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    bool now, changed;

    if (jobs_get(jobs, id, &job, err) < 0)
        return -1;
    {
        GVM_LOCK_GUARD(&jobs->lock);
        changed = request_cancel_locked(jobs, job, &now);
    }
    if (now) {
        conclude(job, JOB_STOPPED, NULL);
    } else if (changed) {
        /* Written so that a crash before the job stops still honours it:
         * recovery rolls back instead of resuming.  Under persist_lock, so
         * a conclusion racing with us is either written after us or seen
         * by us. */
        {
            GVM_LOCK_GUARD(&job->persist_lock);
            {
                GVM_LOCK_GUARD(&jobs->lock);
                if (job->status != JOB_CONCLUDED)
                    job->cancelled = true;
            }
            job_store_save_or_log(job, NULL, false);
        }
        {
            GVM_LOCK_GUARD(&jobs->lock);
            pthread_cond_broadcast(&jobs->live_cond);
        }
        log_info("Job %" PRId64 " (%s): cancellation requested.", job->id,
                 job->type_name);
    }
    *result = job_to_json(job);
    if (!*result) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    return 0;
}

int jobs_dismiss(struct jobs *jobs, int64_t id, struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    enum job_status st;

    if (jobs_get(jobs, id, &job, err) < 0)
        return -1;
    {
        GVM_LOCK_GUARD(&jobs->lock);
        st = job->status;
    }
    if (st != JOB_CONCLUDED) {
        gvm_error_set(err, GVM_ERR_BUSY, "Job %" PRId64 " (%s) is %s; only a "
                      "concluded job can be dismissed (cancel it first, or "
                      "wait for it).", id, job->type_name, job_status_name(st));
        return -1;
    }
    /* A concluded job changes no more: the catalog row can go first. */
    if (job_store_delete(jobs, id, err) < 0)
        return -1;
    {
        GVM_LOCK_GUARD(&jobs->lock);
        for (size_t i = 0; i < jobs->nall; i++) {
            if (jobs->all[i] == job) {
                job_list_remove_at(jobs->all, &jobs->nall, i);
                job->listed = false;
                job->refs--;      /* the list's; ours remains */
                break;
            }
        }
        pthread_cond_broadcast(&jobs->changed);
    }
    log_info("Job %" PRId64 " (%s) dismissed.", id, job->type_name);
    return 0;
}
