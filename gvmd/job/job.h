/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * job.h — the job runner (job.c; with job-store.c, job-event.c,
 * job-live.c, job-wait.c, sharing job-internal.h): long storage operations
 * run as jobs on the runner's own threads (not the RPC worker pool, so a
 * long commit never starves short blocking calls), with progress,
 * cancellation, image locks, status-change events, persistence and
 * recovery at start-up.
 *
 * Life of a job (PROTOCOL.md's JOB):
 *   created    in the catalog with its image locks, queued for a thread;
 *   running    its type's run() is working (or, after a restart, about to
 *              resume);
 *   ready      (live jobs only) a live active commit mirrors the disk and
 *              waits for job-complete (pivot) or job-cancel (abort);
 *   concluded  finished: with an error, cancelled, or done; its image locks
 *              are released; it stays listed until job-dismiss.
 * ("pending" is not used.)  Live jobs (job_type.live: a libvirt block job
 * drives the work, the job watches it) run on a thread of their own each,
 * not on the runner's threads: they mostly wait, and a ready job may wait
 * for a client for hours.  Every status change is written to the catalog's jobs table
 * and broadcast as a job-status-change event; progress is kept in memory
 * and written at most about once a second.
 *
 * Threads: job_* accessors for run() may be called from the job's thread;
 * jobs_* functions from any thread.  Nothing here blocks the loop except
 * jobs_wait(), which is meant for a worker (see rpc-job.c).
 */
#ifndef GVMD_JOB_H
#define GVMD_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog-job.h"
#include "gvmd.h"
#include "journal.h"
#include "util.h"

struct jobs;
struct job;

/* What run() returns besides 0 (done) and -1 (failed, err set). */
#define JOB_STOPPED 1   /* stopped early at a consistent point, change not
                           made: on job-cancel, or for daemon shutdown */

/* What recover() returns besides -1 (err set: the job concludes with that
 * error, which must say what state storage is in). */
#define JOB_RECOVERED_DONE      0   /* finished: the job concludes done    */
#define JOB_RECOVERED_RESUME    1   /* run() again from the start          */
#define JOB_RECOVERED_CANCELLED 2   /* rolled back: concludes cancelled    */

struct job_type {
    const char *name;       /* JOB type, e.g. "image-rebase" */
    bool live;              /* JOB "live": runs on its own thread, may be
                               ready, gets libvirt block-job events       */
    /*
     * Do the work on a runner thread.  Poll job_should_stop() between
     * steps and return JOB_STOPPED at a point where storage is consistent;
     * report progress with job_set_progress().  Must be idempotent with
     * respect to an earlier, interrupted run of the same job (recovery may
     * call it again after a crash).
     */
    int (*run)(struct job *job, struct gvm_error *err);
    /*
     * At start-up, for a job the previous daemon left unfinished: op is
     * its latest journal operation (NULL if it never wrote one) with its
     * entries e[0..n).  Decide from the journal and what storage holds.
     * Runs before the control socket is served.
     */
    int (*recover)(struct job *job, struct journal_op *op,
                   const struct journal_entry *e, size_t n,
                   struct gvm_error *err);
};

/* ---- the runner ------------------------------------------------------------ */

/* What the daemon tells the runner (main.c): the runner knows no job type
 * and no transport of its own. */
struct jobs_config {
    /* The types whose catalogued jobs it can run again or recover; a row
     * of any other type is concluded with an error saying so. */
    const struct job_type *const *types;
    size_t ntypes;
    unsigned nthreads;      /* runner threads for offline jobs; 0: 2 */
    /* Each job-status-change event ({"event", "job"}, borrowed), from any
     * thread; NULL: none. */
    void (*on_event)(void *arg, json_t *event);
    void *event_arg;
};

/* Load every job of the catalog (concluded ones too: they stay listed
 * until dismissed).  Nothing runs yet. */
int jobs_new(struct gvmd *d, const struct jobs_config *cfg, struct jobs **out,
             struct gvm_error *err);
/* Recover the jobs left unfinished (see job_type.recover) and start the
 * threads.  Needs the catalog and the volumes; call before serving the
 * control socket.  Failures of single jobs conclude those jobs; the return
 * is -1 only when the runner itself cannot start. */
int jobs_start(struct jobs *jobs, struct gvm_error *err);
/* Ask running jobs to stop at their next consistent point (they stay
 * "running" in the catalog and resume at the next start), wake every
 * jobs_wait(), join the threads.  Call before draining the RPC workers. */
void jobs_stop(struct jobs *jobs);
void jobs_free(struct jobs *jobs);

/*
 * Create a job of type with params (borrowed) locking locks[0..nlocks) and
 * reporting `images` (borrowed, a JSON array of ids) and queue it.  With an
 * op_id, a job of the same type already started with it is returned instead
 * (return 1).  InUse naming the holding job if an image is locked.
 * *out gets a reference (job_unref).
 */
int jobs_create(struct jobs *jobs, const struct job_type *type,
                json_t *params, json_t *images,
                const struct catalog_job_lock *locks, size_t nlocks,
                const char *op_id, struct job **out, struct gvm_error *err);

/* A job by id, with a reference; NotFound if unknown. */
int jobs_get(struct jobs *jobs, int64_t id, struct job **out,
             struct gvm_error *err);
void job_unref(struct job *job);
static inline void job_unrefp(struct job **j) { if (*j) job_unref(*j); }
#define _cleanup_job_ _cleanup_(job_unrefp)

/* JOB as PROTOCOL.md describes it (new reference). */
json_t *job_to_json(struct job *job);
/* [JOB] of every job, by id. */
json_t *jobs_list_json(struct jobs *jobs);

/* Request cancellation.  A job not yet started concludes at once; a
 * running one at its next consistent point.  A concluded job is left as
 * it is.  *result: the JOB afterwards. */
int jobs_cancel(struct jobs *jobs, int64_t id, json_t **result,
                struct gvm_error *err);
/*
 * job-complete: ask a ready live job to complete (pivot) and wait (up to
 * about a minute) until it concluded; *result: the JOB then.  Unsupported
 * for an offline job, Busy for a live job that is not ready, the job's
 * own error when the pivot was refused (the job stays ready).
 */
int jobs_complete(struct jobs *jobs, int64_t id, json_t **result,
                  struct gvm_error *err);
/* Forget a concluded job (Busy if it is not concluded). */
int jobs_dismiss(struct jobs *jobs, int64_t id, struct gvm_error *err);
/* Block until the job concludes, timeout_ms passes (< 0: no limit) or the
 * daemon stops; *result: the JOB then (check its status).  Busy when too
 * many callers wait already (each holds an RPC worker). */
int jobs_wait(struct jobs *jobs, int64_t id, int64_t timeout_ms,
              json_t **result, struct gvm_error *err);

/*
 * For a caller that runs a job to its end itself (job-wait.c): block like
 * jobs_wait() — same waiter limit (Busy), ends when the job concludes,
 * timeout_ms passes (< 0: no limit) or the daemon stops — then ask
 * job_outcome() how it ended.  The job's error stays a struct gvm_error;
 * it becomes JSON only in the JOB (job_to_json) and the catalog row.
 */
int job_wait(struct job *job, int64_t timeout_ms, struct gvm_error *err);

enum job_outcome {
    JOB_OUTCOME_UNFINISHED,     /* not concluded (yet)                   */
    JOB_OUTCOME_DONE,
    JOB_OUTCOME_CANCELLED,
    JOB_OUTCOME_FAILED,         /* *job_err gets the job's error         */
};
/* How the job ended; job_err (if not NULL) is cleared unless it failed. */
enum job_outcome job_outcome(struct job *job, struct gvm_error *job_err);

/* ---- for run() and recover() ------------------------------------------------ */

struct gvmd *job_daemon(struct job *job);
int64_t job_id(const struct job *job);
const char *job_op_id(const struct job *job);
/* The params given at creation (borrowed). */
json_t *job_params(struct job *job);
/* true once the job should stop: cancel requested or daemon stopping. */
bool job_should_stop(struct job *job);
bool job_cancel_requested(struct job *job);
/* true when the daemon is stopping (not a cancel): a live job leaves its
 * libvirt job alone and returns JOB_STOPPED; the next start re-attaches. */
bool job_daemon_stopping(struct job *job);

/* ---- for live jobs ---------------------------------------------------------- */

/* Enter (ready true) or leave the ready state: persisted and announced. */
void job_set_ready(struct job *job, bool ready);
/* The job watches libvirt block-job events of this domain's disk. */
int job_live_watch(struct job *job, const char *domain, const char *disk);
/* The BLOCK_JOB_2 statuses seen since the last call, as a bit mask
 * (1 << virConnectDomainEventBlockJobStatus); with clear, forgotten. */
unsigned job_live_events(struct job *job, bool clear);
/* Sleep until an event for the job, a cancel, a complete request or daemon
 * stop, or timeout_ms. */
void job_live_sleep(struct job *job, int64_t timeout_ms);
/* Whether job-complete asked this (ready) job to complete. */
bool job_complete_requested(struct job *job);
/* The completion asked for failed (err): job-complete reports err, the job
 * stays ready. */
void job_complete_failed(struct job *job, const struct gvm_error *err);

/* Progress in bytes; persisted at most about once a second. */
void job_set_progress(struct job *job, uint64_t current, uint64_t total);
void job_add_progress(struct job *job, uint64_t delta);

#endif
