/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-job.h — jobs, the image locks they hold, and the operation
 * journal in the catalog (catalog-job.c, catalog-journal.c; SQL against
 * the jobs, job_images and journal tables of db/schema/0001-init.sql and
 * the columns 0004-job-times.sql adds).
 *
 * Errors as in catalog.h: functions fill err (NotFound, InUse where they
 * say so, Internal for sqlite failures) and return -1.
 */
#ifndef GVMD_CATALOG_JOB_H
#define GVMD_CATALOG_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"

/* ---- jobs (catalog-job.c) ---------------------------------------------- */

struct catalog_job {
    int64_t id;                 /* set by catalog_job_add                */
    char *type;                 /* "image-rebase", ...                   */
    char *status;               /* "created" ... "concluded"             */
    bool cancelled;
    char *error;                /* JSON text of the ERROR, or NULL       */
    uint64_t progress_current, progress_total;
    char *images;               /* JSON text: array of image ids         */
    bool live;
    char *op_id;                /* NULL if none                          */
    char *params;               /* JSON text: what run/recover need      */
    char *checkpoint;           /* JSON text or NULL: job-defined        */
    int64_t created, updated;
    int64_t started, finished;  /* epoch seconds, 0: not (yet) known    */
    char *image_names;          /* JSON text: VOLUME:PATH of each image,
                                 * NULL for a row of an older catalog  */
};
void catalog_job_clear(struct catalog_job *j);
void catalog_jobs_free(struct catalog_job *j, size_t n);

/* An image a job locks: write locks exclude every other lock on the image,
 * read locks exclude only write locks. */
struct catalog_job_lock {
    int64_t image_id;
    bool write;
};

/*
 * Insert job j (status "created") and lock its images, in one transaction:
 * either the job exists with all its locks or nothing was written.  If an
 * image is already locked in a conflicting mode, InUse naming the image and
 * the job holding it, and *holder (if not NULL) is set to that job's id.
 * A lock on an image that is not catalogued is NotFound.  Sets j->id,
 * j->created and j->updated.
 */
int catalog_job_add(struct catalog *cat, struct catalog_job *j,
                    const struct catalog_job_lock *locks, size_t nlocks,
                    int64_t *holder, struct gvm_error *err);
/* NotFound if no job has that id. */
int catalog_job_get(struct catalog *cat, int64_t id, struct catalog_job *out,
                    struct gvm_error *err);
/* 1 and *out filled if a job of that type was started with op_id, 0 if
 * none, -1 on error. */
int catalog_job_find_opid(struct catalog *cat, const char *type,
                          const char *op_id, struct catalog_job *out,
                          struct gvm_error *err);
/* All jobs ordered by id. */
int catalog_job_list(struct catalog *cat, struct catalog_job **out, size_t *n,
                     struct gvm_error *err);
/* Write status, cancelled, error, progress, checkpoint, started, finished
 * (and updated). */
int catalog_job_update(struct catalog *cat, const struct catalog_job *j,
                       struct gvm_error *err);
/* Release every image lock the job holds. */
int catalog_job_unlock(struct catalog *cat, int64_t id, struct gvm_error *err);
/* Release the job's lock on one image (before the image's row goes). */
int catalog_job_unlock_image(struct catalog *cat, int64_t id, int64_t image_id,
                             struct gvm_error *err);
/* Delete the job (its locks go with it, its journal rows are deleted). */
int catalog_job_delete(struct catalog *cat, int64_t id, struct gvm_error *err);
/* The id of a job holding a lock on image_id (the lowest if several), 0 if
 * none, -1 on error. */
int64_t catalog_job_lock_holder(struct catalog *cat, int64_t image_id,
                                struct gvm_error *err);

/* ---- the operation journal (catalog-journal.c) ------------------------- */

struct catalog_journal_entry {
    int64_t id;
    char *op_id;                /* the operation this step belongs to    */
    int64_t job_id;             /* 0: not run as a job                   */
    int step;                   /* 0 = the operation's start record      */
    char *kind;                 /* step 0: operation type; then the step */
    char *payload;              /* JSON text                             */
    char *state;                /* "pending", "done", "undone"           */
};
void catalog_journal_entry_clear(struct catalog_journal_entry *e);
void catalog_journal_entries_free(struct catalog_journal_entry *e, size_t n);

/* Insert one pending row. */
int catalog_journal_add(struct catalog *cat, const char *op_id, int64_t job_id,
                        int step, const char *kind, const char *payload,
                        struct gvm_error *err);
/* Set the state of the op's rows whose step is below `below` (INT32_MAX:
 * all of them): only those still pending, or with all_rows every one. */
int catalog_journal_settle(struct catalog *cat, const char *op_id, int below,
                           const char *state, bool all_rows,
                           struct gvm_error *err);
/* Delete the op's rows, none of which may be pending (an operation that
 * ended needs no record for recovery).  0 also when it has none. */
int catalog_journal_forget(struct catalog *cat, const char *op_id,
                           struct gvm_error *err);
/* The op's rows in step order. */
int catalog_journal_list_op(struct catalog *cat, const char *op_id,
                            struct catalog_journal_entry **out, size_t *n,
                            struct gvm_error *err);
/* The distinct op ids, oldest first, of the operations of job job_id (0:
 * of those run outside jobs); with pending_only, only those that still
 * have pending rows.  Caller frees each and the array. */
int catalog_journal_ops(struct catalog *cat, int64_t job_id, bool pending_only,
                        char ***op_ids, size_t *n, struct gvm_error *err);

#endif
