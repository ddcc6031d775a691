/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job.c — the job runner (see job.h for the life of a job).
 *
 * Locking.  jobs->lock guards the job list, the run queue and every field
 * of every job except the atomics (progress, cancel request, stopping).
 * Writing a job to the catalog takes, in this order, the job's persist_lock
 * (so two writers of one job cannot land out of order: the state written
 * last is the state read last), jobs->lock just long enough to copy the
 * fields, then the catalog lock.  jobs->lock is never held while calling
 * the catalog, the event sink or a job type.
 *
 * Persistence.  Status changes are written synchronously before they are
 * announced (event, job-wait), so a client never learns of a state a crash
 * could take back.  Progress is written at most every PERSIST_MS.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "job.h"
#include "jsonutil.h"
#include "virt.h"

#define PERSIST_MS 1000

enum job_status { JOB_CREATED, JOB_RUNNING, JOB_READY, JOB_PENDING, JOB_CONCLUDED };

static const char *const status_names[] = {
    [JOB_CREATED] = "created",
    [JOB_RUNNING] = "running",
    [JOB_READY] = "ready",
    [JOB_PENDING] = "pending",
    [JOB_CONCLUDED] = "concluded",
};

struct job {
    struct jobs *jobs;
    const struct job_type *type;  /* NULL: a type this daemon does not know */
    char *type_name;
    int64_t id;
    int refs;                     /* jobs->lock                           */
    enum job_status status;
    bool cancelled;               /* as reported                          */
    json_t *error;                /* ERROR object or NULL                 */
    json_t *images;               /* array of ids                         */
    json_t *params;
    char *op_id;
    bool live;
    bool queued, listed;
    _Atomic bool cancel_req;
    _Atomic uint64_t cur, total;
    _Atomic uint64_t last_persist_ms;
    pthread_mutex_t persist_lock;
    /* live jobs (jobs->lock) */
    char *live_domain, *live_disk;  /* whose block-job events it gets    */
    _Atomic unsigned bj_events;     /* statuses seen, 1 << status         */
    int complete_state;             /* COMPLETE_*                         */
    struct gvm_error complete_err;  /* COMPLETE_FAILED: why               */
};

enum { COMPLETE_NONE, COMPLETE_ASKED, COMPLETE_FAILED };

struct jobs {
    struct gvmd *d;
    struct jobs_config cfg;       /* types, event sink (main.c's)          */
    pthread_mutex_t lock;
    pthread_cond_t work;          /* runners: something queued or stopping */
    pthread_cond_t changed;       /* waiters: some job changed status      */
    struct job **all;             /* listed jobs by id, one ref each       */
    size_t nall, capall;
    struct job **queue;           /* FIFO of jobs to run, one ref each     */
    size_t nq, capq;
    pthread_t *threads;
    unsigned nthreads, started;
    _Atomic bool stopping;
    int waiters, max_waiters;
    pthread_cond_t live_cond;     /* live jobs: an event, cancel, complete */
    int nlive;                    /* live job threads running              */
};

/* ---- small helpers ----------------------------------------------------------- */

/* The registered type a catalogued job row names (offline and live types
 * share the method's name). */
static const struct job_type *type_for_row(const struct jobs *jobs,
                                           const char *name, bool live)
{
    for (size_t i = 0; i < jobs->cfg.ntypes; i++) {
        const struct job_type *t = jobs->cfg.types[i];

        if (strcmp(t->name, name) == 0 && t->live == live)
            return t;
    }
    return NULL;
}

static int parse_status(const char *s, enum job_status *out)
{
    for (size_t i = 0; i < GVM_ARRAY_SIZE(status_names); i++) {
        if (strcmp(status_names[i], s) == 0) {
            *out = (enum job_status)i;
            return 0;
        }
    }
    return -1;
}

static int push(struct job ***v, size_t *n, size_t *cap, struct job *j)
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

static void job_free(struct job *job)
{
    free(job->type_name);
    free(job->op_id);
    free(job->live_domain);
    free(job->live_disk);
    json_decref(job->error);
    json_decref(job->images);
    json_decref(job->params);
    pthread_mutex_destroy(&job->persist_lock);
    free(job);
}

void job_unref(struct job *job)
{
    struct jobs *jobs = job->jobs;
    bool last;

    pthread_mutex_lock(&jobs->lock);
    last = --job->refs == 0;
    pthread_mutex_unlock(&jobs->lock);
    if (last)
        job_free(job);
}

static struct job *find_locked(struct jobs *jobs, int64_t id)
{
    for (size_t i = 0; i < jobs->nall; i++) {
        if (jobs->all[i]->id == id)
            return jobs->all[i];
    }
    return NULL;
}

static json_t *to_json_locked(struct job *job)
{
    json_t *j = json_pack("{s:I, s:s, s:s, s:b, s:{s:I, s:I}, s:O, s:b}",
                          "id", (json_int_t)job->id,
                          "type", job->type_name,
                          "status", status_names[job->status],
                          "cancelled", job->cancelled,
                          "progress",
                          "current", (json_int_t)atomic_load(&job->cur),
                          "total", (json_int_t)atomic_load(&job->total),
                          "images", job->images,
                          "live", job->live);
    if (!j)
        return NULL;
    if (job->error)
        json_object_set(j, "error", job->error);
    if (job->op_id)
        json_object_set_new(j, "op-id", json_string(job->op_id));
    return j;
}

json_t *job_to_json(struct job *job)
{
    json_t *j;

    pthread_mutex_lock(&job->jobs->lock);
    j = to_json_locked(job);
    pthread_mutex_unlock(&job->jobs->lock);
    return j;
}

json_t *jobs_list_json(struct jobs *jobs)
{
    json_t *arr = json_array();

    pthread_mutex_lock(&jobs->lock);
    for (size_t i = 0; arr && i < jobs->nall; i++)
        json_array_append_new(arr, to_json_locked(jobs->all[i]));
    pthread_mutex_unlock(&jobs->lock);
    return arr;
}

/*
 * Write a state to the catalog, then publish it in memory: a client never
 * sees (query-jobs, job-wait, events) a status a crash could take back.
 * next == NULL writes the current state (progress).  With release, the
 * job's image locks go in the same transaction (a concluded job holds
 * none).  Takes ownership of next->error.
 */
struct job_state {
    enum job_status status;
    int cancelled;          /* 0/1, or -1: keep the current flag       */
    bool set_error;         /* replace the error with `error`          */
    json_t *error;
};

static int persist(struct job *job, struct job_state *next, bool release,
                   struct gvm_error *err)
{
    struct jobs *jobs = job->jobs;
    struct catalog *cat = jobs->d->cat;
    struct catalog_job row = { 0 };
    json_t *error;
    int r = -1;

    pthread_mutex_lock(&job->persist_lock);
    pthread_mutex_lock(&jobs->lock);
    error = next && next->set_error ? next->error : job->error;
    row.id = job->id;
    row.status = strdup(status_names[next ? next->status : job->status]);
    row.cancelled = next && next->cancelled >= 0 ? next->cancelled : job->cancelled;
    row.error = error ? json_dumps(error, JSON_COMPACT) : NULL;
    row.progress_current = atomic_load(&job->cur);
    row.progress_total = atomic_load(&job->total);
    pthread_mutex_unlock(&jobs->lock);
    atomic_store(&job->last_persist_ms, gvm_now_ms());

    if (!row.status || (error && !row.error)) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory saving job %" PRId64 ".",
                      job->id);
        goto publish;
    }
    if (catalog_begin(cat, err) < 0)
        goto publish;
    if (catalog_job_update(cat, &row, err) < 0 ||
        (release && catalog_job_unlock(cat, job->id, err) < 0)) {
        catalog_rollback(cat);
        goto publish;
    }
    r = catalog_commit(cat, err);
publish:
    /* Published even if the write failed (logged by the caller): the job
     * did change, and memory must not lie about it either. */
    if (next) {
        pthread_mutex_lock(&jobs->lock);
        job->status = next->status;
        if (next->cancelled >= 0)
            job->cancelled = next->cancelled;
        if (next->set_error) {
            json_decref(job->error);
            job->error = next->error;
            next->error = NULL;
        }
        pthread_mutex_unlock(&jobs->lock);
    }
    pthread_mutex_unlock(&job->persist_lock);
    catalog_job_clear(&row);
    return r;
}

static void persist_or_log(struct job *job, struct job_state *next, bool release)
{
    struct gvm_error err = { 0 };

    if (persist(job, next, release, &err) < 0)
        log_error("Job %" PRId64 " (%s): saving its state failed: %s",
                  job->id, job->type_name, err.message);
}

/* Announce the job's current status: event to subscribers, wake waiters. */
static void announce(struct job *job)
{
    struct jobs *jobs = job->jobs;
    _cleanup_json_ json_t *ev = NULL;
    json_t *j;

    pthread_mutex_lock(&jobs->lock);
    j = to_json_locked(job);
    pthread_cond_broadcast(&jobs->changed);
    pthread_mutex_unlock(&jobs->lock);
    if (!j)
        return;
    log_info("Job %" PRId64 " (%s) is %s.", job->id, job->type_name,
             json_string_value(json_object_get(j, "status")));
    ev = json_pack("{s:s, s:o}", "event", "job-status-change", "job", j);
    if (ev && jobs->cfg.on_event)
        jobs->cfg.on_event(jobs->cfg.event_arg, ev);
}

/* outcome: 0 done, JOB_STOPPED cancelled, -1 failed with err. */
static void conclude(struct job *job, int outcome, const struct gvm_error *err)
{
    struct job_state next = {
        .status = JOB_CONCLUDED,
        .cancelled = outcome == JOB_STOPPED,
        .set_error = true,
        .error = outcome < 0 ? gvm_error_to_json(err) : NULL,
    };

    if (outcome == 0)
        atomic_store(&job->cur, atomic_load(&job->total));
    if (outcome < 0)
        log_warn("Job %" PRId64 " (%s) failed: %s", job->id, job->type_name,
                 err->message);
    persist_or_log(job, &next, true);
    announce(job);
}

static void *live_thread(void *arg);

static void enqueue_locked(struct jobs *jobs, struct job *job)
{
    if (job->type && job->type->live) {
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
        return;
    }
    if (push(&jobs->queue, &jobs->nq, &jobs->capq, job) < 0) {
        /* Cannot happen in practice (a few pointers); the job stays in
         * its state and is retried at the next start. */
        log_error("Job %" PRId64 ": out of memory queueing it.", job->id);
        return;
    }
    job->refs++;
    job->queued = true;
    pthread_cond_signal(&jobs->work);
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

/* ---- live jobs ----------------------------------------------------------------- */

void job_set_ready(struct job *job, bool ready)
{
    struct job_state next = {
        .status = ready ? JOB_READY : JOB_RUNNING,
        .cancelled = -1,
    };
    enum job_status cur;

    pthread_mutex_lock(&job->jobs->lock);
    cur = job->status;
    pthread_mutex_unlock(&job->jobs->lock);
    if (cur == next.status || cur == JOB_CONCLUDED)
        return;
    persist_or_log(job, &next, false);
    announce(job);
}

int job_live_watch(struct job *job, const char *domain, const char *disk)
{
    char *dom = strdup(domain), *dk = strdup(disk);

    if (!dom || !dk) {
        free(dom);
        free(dk);
        return -ENOMEM;
    }
    pthread_mutex_lock(&job->jobs->lock);
    free(job->live_domain);
    free(job->live_disk);
    job->live_domain = dom;
    job->live_disk = dk;
    pthread_mutex_unlock(&job->jobs->lock);
    return 0;
}

unsigned job_live_events(struct job *job, bool clear)
{
    return clear ? atomic_exchange(&job->bj_events, 0u)
                 : atomic_load(&job->bj_events);
}

bool job_complete_requested(struct job *job)
{
    bool r;

    pthread_mutex_lock(&job->jobs->lock);
    r = job->complete_state == COMPLETE_ASKED;
    pthread_mutex_unlock(&job->jobs->lock);
    return r;
}

void job_complete_failed(struct job *job, const struct gvm_error *err)
{
    pthread_mutex_lock(&job->jobs->lock);
    job->complete_state = COMPLETE_FAILED;
    job->complete_err = *err;
    pthread_cond_broadcast(&job->jobs->changed);
    pthread_mutex_unlock(&job->jobs->lock);
}

void job_live_sleep(struct job *job, int64_t timeout_ms)
{
    struct jobs *jobs = job->jobs;
    struct timespec dl;

    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&jobs->lock);
    /* Whatever wakes us is re-checked by the caller; one wait is enough. */
    /* Only what the caller consumes or exits on skips the wait: a cancel
     * or complete request stays set while it is handled, and wakes us by
     * a broadcast when it comes. */
    if (!atomic_load(&job->bj_events) && !atomic_load(&jobs->stopping))
        pthread_cond_timedwait(&jobs->live_cond, &jobs->lock, &dl);
    pthread_mutex_unlock(&jobs->lock);
}

/* libvirt's event thread: must not block (jobs->lock is only ever held
 * briefly). */
static void on_blockjob_event(void *opaque, const char *domain,
                              const char *disk, int type, int status)
{
    struct jobs *jobs = opaque;

    (void)type;
    if (!domain || !disk || status < 0 || status >= 32)
        return;
    pthread_mutex_lock(&jobs->lock);
    for (size_t i = 0; i < jobs->nall; i++) {
        struct job *j = jobs->all[i];

        if (j->live_domain && j->live_disk && strcmp(j->live_domain, domain) == 0 &&
            strcmp(j->live_disk, disk) == 0)
            atomic_fetch_or(&j->bj_events, 1u << status);
    }
    pthread_cond_broadcast(&jobs->live_cond);
    pthread_mutex_unlock(&jobs->lock);
}

static void maybe_persist_progress(struct job *job)
{
    if (gvm_now_ms() - atomic_load(&job->last_persist_ms) >= PERSIST_MS)
        persist_or_log(job, NULL, false);
}

void job_set_progress(struct job *job, uint64_t current, uint64_t total)
{
    atomic_store(&job->total, total);
    atomic_store(&job->cur, current);
    maybe_persist_progress(job);
}

void job_add_progress(struct job *job, uint64_t delta)
{
    atomic_fetch_add(&job->cur, delta);
    maybe_persist_progress(job);
}

/* ---- runner threads ---------------------------------------------------------- */

static void run_one(struct job *job)
{
    struct gvm_error err = { 0 };
    int r;

    struct job_state next = { .status = JOB_RUNNING, .cancelled = -1 };

    persist_or_log(job, &next, false);
    announce(job);

    r = job->type->run(job, &err);
    if (r < 0 && !gvm_error_isset(&err))
        gvm_error_set(&err, GVM_ERR_INTERNAL, "Job %" PRId64 " (%s) failed "
                      "without saying why.", job->id, job->type_name);
    if (r == JOB_STOPPED && !atomic_load(&job->cancel_req)) {
        /* Stopped for shutdown: stays "running"; the next start resumes
         * it through recover(). */
        persist_or_log(job, NULL, false);
        log_info("Job %" PRId64 " (%s) interrupted by shutdown; it resumes "
                 "at the next start.", job->id, job->type_name);
        return;
    }
    conclude(job, r == JOB_STOPPED ? JOB_STOPPED : r < 0 ? -1 : 0, &err);
}

static void *runner(void *arg)
{
    struct jobs *jobs = arg;

    pthread_mutex_lock(&jobs->lock);
    for (;;) {
        struct job *job;

        while (!atomic_load(&jobs->stopping) && jobs->nq == 0)
            pthread_cond_wait(&jobs->work, &jobs->lock);
        if (atomic_load(&jobs->stopping))
            break;
        job = jobs->queue[0];
        memmove(jobs->queue, jobs->queue + 1, (jobs->nq - 1) * sizeof(*jobs->queue));
        jobs->nq--;
        job->queued = false;
        pthread_mutex_unlock(&jobs->lock);
        /* The queue's reference is now ours. */
        if (atomic_load(&job->cancel_req))
            conclude(job, JOB_STOPPED, NULL);
        else
            run_one(job);
        job_unref(job);
        pthread_mutex_lock(&jobs->lock);
    }
    pthread_mutex_unlock(&jobs->lock);
    return NULL;
}

/* A live job's own thread: holds a reference to it. */
static void *live_thread(void *arg)
{
    struct job *job = arg;
    struct jobs *jobs = job->jobs;

    bool fresh;

    pthread_mutex_lock(&jobs->lock);
    fresh = job->status == JOB_CREATED;
    pthread_mutex_unlock(&jobs->lock);
    /* A job that never ran has no libvirt job to abort. */
    if (atomic_load(&job->cancel_req) && fresh)
        conclude(job, JOB_STOPPED, NULL);
    else if (!atomic_load(&jobs->stopping))
        run_one(job);
    job_unref(job);
    pthread_mutex_lock(&jobs->lock);
    jobs->nlive--;
    pthread_cond_broadcast(&jobs->changed);
    pthread_mutex_unlock(&jobs->lock);
    return NULL;
}

/* ---- creation, loading ----------------------------------------------------- */

static struct job *job_alloc(struct jobs *jobs)
{
    struct job *job = calloc(1, sizeof(*job));

    if (!job)
        return NULL;
    job->jobs = jobs;
    job->refs = 1;
    /* Recursive: jobs_cancel() holds it around a persist(). */
    {
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&job->persist_lock, &ma);
        pthread_mutexattr_destroy(&ma);
    }
    return job;
}

static int load_row(struct jobs *jobs, const struct catalog_job *row,
                    struct gvm_error *err)
{
    struct job *job = job_alloc(jobs);
    json_error_t jerr;

    if (!job)
        goto oom;
    job->id = row->id;
    job->type = type_for_row(jobs, row->type, row->live);
    job->type_name = strdup(row->type);
    if (parse_status(row->status, &job->status) < 0)
        job->status = JOB_RUNNING;   /* the CHECK constraint prevents this */
    job->cancelled = row->cancelled;
    atomic_store(&job->cancel_req, row->cancelled && job->status != JOB_CONCLUDED);
    job->error = row->error ? json_loads(row->error, 0, &jerr) : NULL;
    job->images = json_loads(row->images, 0, &jerr);
    job->params = json_loads(row->params, 0, &jerr);
    job->op_id = row->op_id ? strdup(row->op_id) : NULL;
    job->live = row->live;
    atomic_store(&job->cur, row->progress_current);
    atomic_store(&job->total, row->progress_total);
    if (!job->type_name || (row->op_id && !job->op_id))
        goto oom;
    if (!job->images || !json_is_array(job->images)) {
        json_decref(job->images);
        job->images = json_array();
    }
    if (!job->params) {
        /* Recovery will conclude it: its type cannot work without them. */
        job->params = json_object();
    }
    if (push(&jobs->all, &jobs->nall, &jobs->capall, job) < 0)
        goto oom;
    job->listed = true;
    return 0;
oom:
    if (job)
        job_free(job);
    gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory loading jobs.");
    return -1;
}

int jobs_new(struct gvmd *d, const struct jobs_config *cfg, struct jobs **out,
             struct gvm_error *err)
{
    struct jobs *jobs = calloc(1, sizeof(*jobs));
    struct catalog_job *rows = NULL;
    pthread_condattr_t ca;
    size_t n = 0;

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

    if (catalog_job_list(d->cat, &rows, &n, err) < 0) {
        jobs_free(jobs);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (load_row(jobs, &rows[i], err) < 0) {
            catalog_jobs_free(rows, n);
            jobs_free(jobs);
            return -1;
        }
    }
    catalog_jobs_free(rows, n);
    *out = jobs;
    return 0;
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
        gvm_error_set(&err, GVM_ERR_UNSUPPORTED,
                      "Job %" PRId64 " is of type '%s', which this gvmd does not "
                      "know; it was left unfinished by an earlier daemon, so its "
                      "images may be mid-change: check them with chain-audit.",
                      job->id, job->type_name);
        conclude(job, -1, &err);
        return;
    }
    if (job->status == JOB_CREATED) {
        /* Never started: nothing on storage to look at. */
        if (atomic_load(&job->cancel_req)) {
            conclude(job, JOB_STOPPED, NULL);
            return;
        }
        pthread_mutex_lock(&jobs->lock);
        enqueue_locked(jobs, job);
        pthread_mutex_unlock(&jobs->lock);
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
             "recovering it.", job->id, job->type_name, status_names[job->status]);
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
        pthread_mutex_lock(&jobs->lock);
        enqueue_locked(jobs, job);
        pthread_mutex_unlock(&jobs->lock);
        break;
    default:
        if (!gvm_error_isset(&err))
            gvm_error_set(&err, GVM_ERR_INTERNAL, "Recovery of job %" PRId64
                          " failed without saying why.", job->id);
        conclude(job, -1, &err);
        break;
    }
}

int jobs_start(struct jobs *jobs, struct gvm_error *err)
{
    size_t n;
    struct job **todo;

    /* Before recovery: re-attached live jobs must not miss an event. */
    if (jobs->d->virt)
        virt_set_blockjob_cb(jobs->d->virt, on_blockjob_event, jobs);
    /* Copy the list: conclude() takes jobs->lock. */
    pthread_mutex_lock(&jobs->lock);
    n = jobs->nall;
    todo = calloc(n ? n : 1, sizeof(*todo));
    for (size_t i = 0; todo && i < n; i++) {
        todo[i] = jobs->all[i];
        todo[i]->refs++;
    }
    pthread_mutex_unlock(&jobs->lock);
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
    pthread_mutex_lock(&jobs->lock);
    atomic_store(&jobs->stopping, true);
    pthread_cond_broadcast(&jobs->work);
    pthread_cond_broadcast(&jobs->changed);
    pthread_cond_broadcast(&jobs->live_cond);
    pthread_mutex_unlock(&jobs->lock);
    for (unsigned i = 0; i < jobs->started; i++)
        pthread_join(jobs->threads[i], NULL);
    jobs->started = 0;
    /* Live jobs notice `stopping` within one poll and leave their libvirt
     * jobs running (re-attached at the next start). */
    pthread_mutex_lock(&jobs->lock);
    while (jobs->nlive > 0)
        pthread_cond_wait(&jobs->changed, &jobs->lock);
    pthread_mutex_unlock(&jobs->lock);
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

int jobs_create(struct jobs *jobs, const struct job_type *type,
                json_t *params, json_t *images,
                const struct catalog_job_lock *locks, size_t nlocks,
                const char *op_id, struct job **out, struct gvm_error *err)
{
    struct catalog *cat = jobs->d->cat;
    struct catalog_job row = { 0 };
    struct job *job = NULL;
    int found = 0;

    /* The op-id lookup and the insertion in one transaction: two calls
     * with the same op-id cannot both create a job. */
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (op_id) {
        found = catalog_job_find_opid(cat, type->name, op_id, &row, err);
        if (found < 0) {
            catalog_rollback(cat);
            return -1;
        }
    }
    if (!found) {
        row.type = strdup(type->name);
        row.images = json_dumps(images, JSON_COMPACT);
        row.params = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
        row.op_id = op_id ? strdup(op_id) : NULL;
        row.live = type->live;
        if (!row.type || !row.images || !row.params || (op_id && !row.op_id)) {
            catalog_rollback(cat);
            catalog_job_clear(&row);
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating a job.");
            return -1;
        }
        if (catalog_job_add(cat, &row, locks, nlocks, NULL, err) < 0) {
            catalog_rollback(cat);
            catalog_job_clear(&row);
            return -1;
        }
    }
    if (catalog_commit(cat, err) < 0) {
        catalog_job_clear(&row);
        return -1;
    }

    if (found) {
        int64_t id = row.id;

        catalog_job_clear(&row);
        if (jobs_get(jobs, id, out, err) < 0)
            return -1;
        return 1;
    }

    job = job_alloc(jobs);
    if (!job) {
        catalog_job_clear(&row);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating a job.");
        return -1;
    }
    job->id = row.id;
    job->type = type;
    job->type_name = steal_pointer(&row.type);
    job->status = JOB_CREATED;
    job->images = json_incref(images);
    job->params = json_incref(params);
    job->op_id = steal_pointer(&row.op_id);
    job->live = type->live;
    catalog_job_clear(&row);

    pthread_mutex_lock(&jobs->lock);
    if (push(&jobs->all, &jobs->nall, &jobs->capall, job) < 0) {
        pthread_mutex_unlock(&jobs->lock);
        job_free(job);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating a job.");
        return -1;
    }
    job->listed = true;
    job->refs++;                  /* the caller's */
    pthread_mutex_unlock(&jobs->lock);
    log_info("Job %" PRId64 " (%s) created.", job->id, job->type_name);
    announce(job);
    /* Queued after the announcement, so "created" always precedes
     * "running" for subscribers. */
    pthread_mutex_lock(&jobs->lock);
    enqueue_locked(jobs, job);
    pthread_mutex_unlock(&jobs->lock);
    *out = job;
    return 0;
}

int jobs_get(struct jobs *jobs, int64_t id, struct job **out,
             struct gvm_error *err)
{
    struct job *job;

    pthread_mutex_lock(&jobs->lock);
    job = find_locked(jobs, id);
    if (job)
        job->refs++;
    pthread_mutex_unlock(&jobs->lock);
    if (!job) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "There is no job %" PRId64 ".", id);
        return -1;
    }
    *out = job;
    return 0;
}

int jobs_cancel(struct jobs *jobs, int64_t id, json_t **result,
                struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    bool now = false, changed = false;

    if (jobs_get(jobs, id, &job, err) < 0)
        return -1;
    pthread_mutex_lock(&jobs->lock);
    if (job->status != JOB_CONCLUDED && !atomic_load(&job->cancel_req)) {
        atomic_store(&job->cancel_req, true);
        changed = true;
        if (job->queued) {
            /* Not started: take it off the queue and conclude here. */
            for (size_t i = 0; i < jobs->nq; i++) {
                if (jobs->queue[i] == job) {
                    memmove(jobs->queue + i, jobs->queue + i + 1,
                            (jobs->nq - i - 1) * sizeof(*jobs->queue));
                    jobs->nq--;
                    job->refs--;      /* the queue's; ours remains */
                    break;
                }
            }
            job->queued = false;
            now = true;
        }
    }
    pthread_mutex_unlock(&jobs->lock);
    if (now) {
        conclude(job, JOB_STOPPED, NULL);
    } else if (changed) {
        /* Written so that a crash before the job stops still honours it:
         * recovery rolls back instead of resuming.  Under persist_lock, so
         * a conclusion racing with us is either written after us or seen
         * by us. */
        pthread_mutex_lock(&job->persist_lock);
        pthread_mutex_lock(&jobs->lock);
        if (job->status != JOB_CONCLUDED)
            job->cancelled = true;
        pthread_mutex_unlock(&jobs->lock);
        persist_or_log(job, NULL, false);
        pthread_mutex_unlock(&job->persist_lock);
        pthread_mutex_lock(&jobs->lock);
        pthread_cond_broadcast(&jobs->live_cond);
        pthread_mutex_unlock(&jobs->lock);
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

int jobs_complete(struct jobs *jobs, int64_t id, json_t **result,
                  struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    struct timespec dl;
    int r = 0;

    if (jobs_get(jobs, id, &job, err) < 0)
        return -1;
    pthread_mutex_lock(&jobs->lock);
    if (!job->live) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "Job %" PRId64 " (%s) is an "
                      "offline job and completes by itself; job-complete "
                      "applies only to a live active block-commit in the "
                      "ready state.", id, job->type_name);
        r = -1;
    } else if (job->status != JOB_READY) {
        gvm_error_set(err, job->status == JOB_CONCLUDED ? GVM_ERR_UNSUPPORTED
                                                        : GVM_ERR_BUSY,
                      "Job %" PRId64 " (%s) is %s, not ready: only a live "
                      "active commit started with pivot false becomes ready "
                      "(once its mirror has caught up) and can be completed.",
                      id, job->type_name, status_names[job->status]);
        r = -1;
    }
    if (r < 0) {
        pthread_mutex_unlock(&jobs->lock);
        return -1;
    }
    job->complete_state = COMPLETE_ASKED;
    pthread_cond_broadcast(&jobs->live_cond);
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += 60;
    while (job->status != JOB_CONCLUDED && job->complete_state == COMPLETE_ASKED &&
           !atomic_load(&jobs->stopping)) {
        if (pthread_cond_timedwait(&jobs->changed, &jobs->lock, &dl) == ETIMEDOUT)
            break;
    }
    if (job->complete_state == COMPLETE_FAILED) {
        *err = job->complete_err;
        job->complete_state = COMPLETE_NONE;
        pthread_mutex_unlock(&jobs->lock);
        return -1;
    }
    *result = to_json_locked(job);
    pthread_mutex_unlock(&jobs->lock);
    if (!*result)
        return gvm_error_oom(err);
    return 0;
}

int jobs_dismiss(struct jobs *jobs, int64_t id, struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    enum job_status st;

    if (jobs_get(jobs, id, &job, err) < 0)
        return -1;
    pthread_mutex_lock(&jobs->lock);
    st = job->status;
    pthread_mutex_unlock(&jobs->lock);
    if (st != JOB_CONCLUDED) {
        gvm_error_set(err, GVM_ERR_BUSY, "Job %" PRId64 " (%s) is %s; only a "
                      "concluded job can be dismissed (cancel it first, or "
                      "wait for it).", id, job->type_name, status_names[st]);
        return -1;
    }
    /* A concluded job changes no more: the catalog row can go first. */
    if (catalog_job_delete(jobs->d->cat, id, err) < 0)
        return -1;
    pthread_mutex_lock(&jobs->lock);
    for (size_t i = 0; i < jobs->nall; i++) {
        if (jobs->all[i] == job) {
            memmove(jobs->all + i, jobs->all + i + 1,
                    (jobs->nall - i - 1) * sizeof(*jobs->all));
            jobs->nall--;
            job->listed = false;
            job->refs--;          /* the list's; ours remains */
            break;
        }
    }
    pthread_cond_broadcast(&jobs->changed);
    pthread_mutex_unlock(&jobs->lock);
    log_info("Job %" PRId64 " (%s) dismissed.", id, job->type_name);
    return 0;
}

int jobs_wait(struct jobs *jobs, int64_t id, int64_t timeout_ms,
              json_t **result, struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    struct timespec deadline;

    if (jobs_get(jobs, id, &job, err) < 0)
        return -1;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms >= 0) {
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&jobs->lock);
    if (job->status != JOB_CONCLUDED && jobs->waiters >= jobs->max_waiters) {
        pthread_mutex_unlock(&jobs->lock);
        gvm_error_set(err, GVM_ERR_BUSY, "Too many job-wait calls are waiting "
                      "already (%d); wait with a timeout and retry, or "
                      "subscribe to job-status-change events.",
                      jobs->max_waiters);
        return -1;
    }
    jobs->waiters++;
    while (job->status != JOB_CONCLUDED && job->listed &&
           !atomic_load(&jobs->stopping)) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&jobs->changed, &jobs->lock);
        } else if (pthread_cond_timedwait(&jobs->changed, &jobs->lock,
                                          &deadline) == ETIMEDOUT) {
            break;
        }
    }
    jobs->waiters--;
    *result = to_json_locked(job);
    pthread_mutex_unlock(&jobs->lock);
    if (!*result) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    return 0;
}
