/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job-internal.h — what the files of the job runner share and nothing
 * else may use: the job and runner structures and the prototypes of
 * job.c (the runner), job-store.c (persistence), job-event.c (the JOB
 * representation and its announcement), job-live.c (live-job plumbing)
 * and job-wait.c (waiters).  job.h is the runner's public interface.
 *
 * Locking.  jobs->lock guards the job list, the run queue and every field
 * of every job except the atomics (progress, cancel request, stopping).
 * Writing a job to the catalog takes, in this order, the job's persist_lock
 * (so two writers of one job cannot land out of order: the state written
 * last is the state read last), jobs->lock just long enough to copy the
 * fields, then the catalog lock.  jobs->lock is never held while calling
 * the catalog, the event sink or a job type.  Functions named *_locked
 * expect the caller to hold jobs->lock.
 */
#ifndef GVMD_JOB_INTERNAL_H
#define GVMD_JOB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "job.h"

enum job_status { JOB_CREATED, JOB_RUNNING, JOB_READY, JOB_PENDING, JOB_CONCLUDED };

enum { COMPLETE_NONE, COMPLETE_ASKED, COMPLETE_FAILED };

struct job {
    struct jobs *jobs;
    const struct job_type *type;  /* NULL: a type this daemon does not know */
    char *type_name;
    int64_t id;
    int refs;                     /* jobs->lock                           */
    enum job_status status;
    bool cancelled;               /* as reported                          */
    struct gvm_error error;       /* why it failed; cls NONE: it did not  */
    json_t *images;               /* array of ids                         */
    json_t *image_names;          /* their VOLUME:PATH, same order        */
    int64_t created, started, finished;  /* epoch s, 0: not (yet) known   */
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

/*
 * A state to write (job_store_save): next == NULL writes the current
 * state (progress).
 */
struct job_state {
    enum job_status status;
    int cancelled;                  /* 0/1, or -1: keep the current flag */
    bool set_error;                 /* replace the error with `error`    */
    const struct gvm_error *error;  /* NULL: no error (copied)           */
};

/* ---- job-list.c: jobs in memory ------------------------------------------ */

const char *job_status_name(enum job_status st);
int job_status_parse(const char *s, enum job_status *out);
/* The registered type a catalogued row names, NULL if none. */
const struct job_type *job_type_find(const struct jobs *jobs, const char *name,
                                     bool live);
struct job *job_alloc(struct jobs *jobs);
void job_free(struct job *job);
/* Append to jobs->all (one reference: the list's); -ENOMEM. */
int job_list_add_locked(struct jobs *jobs, struct job *job);
/* Append j to the array *v of *n (capacity *cap); -ENOMEM. */
int job_list_push(struct job ***v, size_t *n, size_t *cap, struct job *j);
/* Remove entry i of the array v of *n, keeping the order. */
void job_list_remove_at(struct job **v, size_t *n, size_t i);
/* Under jobs->lock: the job with that id, or NULL. */
struct job *job_list_find_locked(struct jobs *jobs, int64_t id);
/* Whether type is one of jobs' registered types (a caller contract). */
bool job_type_registered(const struct jobs *jobs, const struct job_type *type);

/* ---- job-store.c: the job's catalog row ---------------------------------- */

/*
 * Write a state to the catalog, then publish it in memory: a client never
 * sees (query-jobs, job-wait, events) a status a crash could take back.
 * With release, the job's image locks go in the same transaction (a
 * concluded job holds none).
 */
int job_store_save(struct job *job, const struct job_state *next, bool release,
                   struct gvm_error *err);
/* The same, logging a failure (the state is published anyway). */
void job_store_save_or_log(struct job *job, const struct job_state *next,
                           bool release);
/* Write the progress if it was not written for about a second. */
void job_store_save_progress(struct job *job);
/* Load every catalogued job into jobs->all (before any thread runs). */
int job_store_load(struct jobs *jobs, struct gvm_error *err);
/*
 * The catalog part of jobs_create: with op_id, a job of the type already
 * started with it is looked up first (return 1, row->id set); else the row
 * is inserted with its locks (return 0, row filled, row->image_names the
 * images' VOLUME:PATH).  One transaction.
 */
int job_store_create(struct jobs *jobs, const struct job_type *type,
                     json_t *params, json_t *images,
                     const struct catalog_job_lock *locks, size_t nlocks,
                     const char *op_id, struct catalog_job *row,
                     struct gvm_error *err);
/* Delete a concluded job's row. */
int job_store_delete(struct jobs *jobs, int64_t id, struct gvm_error *err);

/* ---- job-event.c: JOB and job-status-change ------------------------------ */

/* JOB as PROTOCOL.md describes it (new reference, NULL on ENOMEM). */
json_t *job_event_json_locked(struct job *job);
/* Announce the job's current status: event to subscribers, wake waiters. */
void job_event_announce(struct job *job);

/* ---- job-live.c: live-job plumbing --------------------------------------- */

/* libvirt's block-job event callback (virt_set_blockjob_cb), opaque: jobs. */
void job_live_on_blockjob(void *opaque, const char *domain, const char *disk,
                          int type, int status);

/* ---- job-wait.c: waiters ------------------------------------------------- */

/* The CLOCK_MONOTONIC time timeout_ms from now (now if timeout_ms < 0). */
void job_wait_deadline(int64_t timeout_ms, struct timespec *deadline);

#endif
