/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-job.h — the skeleton every chain surgery job shares (image-rebase,
 * block-commit, block-pull, offline and live; snapshot-delete's steps can
 * use it too): starting the job, holding its images, opening catalogued
 * images, throttling, repairing leaks after an interrupted copy, closing
 * an abandoned journal record and the crash-recovery decision
 * (chain-job.c); copying data into an image (chain-job-copy.c).
 *
 * Written once here so that a fix to, say, crash recovery is made once.
 */
#ifndef GVMD_CHAIN_JOB_H
#define GVMD_CHAIN_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "catalog-image.h"
#include "gvmd.h"
#include "image.h"
#include "job.h"
#include "journal.h"
#include "resolve.h"

/* ---- chain-job.c: start ------------------------------------------------------ */

/*
 * Create and queue a chain job of `type` on image `top` (shared by rebase,
 * commit and pull): *result gets the JOB.  A lock conflict (InUse) is
 * reported as "Cannot WHAT VOLUME:PATH now." followed by the holder.
 */
int chain_job_start(struct gvmd *d, const struct job_type *type,
                    json_t *params, json_t *images,
                    const struct catalog_job_lock *locks, size_t nlocks,
                    const char *op_id, const char *what,
                    const struct resolved *top, json_t **result,
                    struct gvm_error *err);

/*
 * The last part of chain_job_start, for a job that checks running guests
 * and image locks itself (the live path): create the job, InUse reworded
 * as "Cannot WHAT NAME now." followed by the holder.
 */
int chain_job_create(struct gvmd *d, const struct job_type *type,
                     json_t *params, json_t *images,
                     const struct catalog_job_lock *locks, size_t nlocks,
                     const char *op_id, const char *what, const char *name,
                     json_t **result, struct gvm_error *err);

/*
 * Image locks (image-lock.c) held across a job's steps.  chain_job_start
 * checks that no other process holds any image the job writes (write
 * locks; InUse naming VOLUME:PATH, before the job exists) and records
 * their ids in the params as "hold"; a job whose steps open its images
 * one after the other (block-commit) takes them again for its whole
 * write phase with chain_job_hold_take, so no QEMU can open one in
 * between.  Images missing on storage are skipped: the job reports them.
 */
struct chain_job_hold;
int chain_job_hold_take(struct job *job, struct chain_job_hold **out,
                        struct gvm_error *err);
void chain_job_hold_release(struct chain_job_hold *h);

/* ---- chain-job.c: steps ------------------------------------------------------ */

/*
 * Open a catalogued image by its row through ctx (which must outlive the
 * image), with its backing chain unless flags has IMG_OPEN_NOBACKING.
 * Fails (err set) with "The image VOLUME:PATH has format 'F'." or
 * "Opening VOLUME:PATH failed: ...".
 */
int chain_job_open_row(struct gvmd *d, struct resolve_ctx *ctx,
                       const struct catalog_image *row, unsigned flags,
                       struct img **out, struct gvm_error *err);

/* Sleep as long as needed to keep to speed bytes/s (0: unlimited) since
 * t0, done bytes being done; returns early when the job should stop. */
void chain_job_throttle(struct job *job, uint64_t speed,
                        const struct timespec *t0, uint64_t done);

/*
 * Repair cluster leaks an interrupted or failed copy may have left in an
 * image (never corruption: the engine's write ordering sees to that).
 * Best effort, as a leak wastes space and nothing else: failures are
 * logged, never returned.  img: the image opened read-write, or NULL to
 * open row here (through ctx, or a context of its own when ctx is NULL);
 * a row that is not qcow2 has nothing to repair.  The log lines start
 * with the printf-style subject ("Rebase of VOLUME:PATH").
 */
void chain_job_repair_leaks(struct gvmd *d, struct resolve_ctx *ctx,
                            const struct catalog_image *row, struct img *img,
                            const char *fmt, ...) GVM_PRINTF(5, 6);

/* Close op as undone when a run stops short (nothing guest-visible
 * changed); a failure is logged with the printf-style subject.  op may
 * be NULL (nothing journaled yet). */
void chain_job_abandon(struct journal_op *op, const char *fmt, ...)
    GVM_PRINTF(2, 3);

/*
 * Switching an image's backing file (image-rebase, block-pull): the header
 * first, then the catalog edge.  The fields are borrowed.
 */
struct chain_job_backing {
    int64_t id;                     /* the image                           */
    const char *name;               /* its "VOLUME:PATH", for messages     */
    int64_t new_id;                 /* the new backing's image, 0: none    */
    const char *new_name, *new_fmt; /* for the header, NULL: none          */
};

/* Write the new backing name into img's header and make it durable.  0, or
 * -1 with err ("Writing the backing file name into the header of ..."). */
int chain_job_backing_write(const struct chain_job_backing *b, struct img *img,
                            struct gvm_error *err);

/* Make the catalog edge say what the header now says.  0, or -1 with err
 * saying that the header and the catalog disagree. */
int chain_job_backing_record(struct gvmd *d, const struct chain_job_backing *b,
                             struct gvm_error *err);

/* ---- chain-job.c: crash recovery --------------------------------------------- */

/*
 * One job type's part in recovering an interrupted operation; the
 * decision itself is chain_job_recover's:
 *   - nothing journaled, or no step pending: the operation finished (its
 *     last row done: JOB_RECOVERED_DONE) or was rolled back (run again);
 *   - the pending step is one of `forward` (past the point of no return):
 *     roll_forward finishes the operation, journal_done included, and the
 *     job concludes done;
 *   - any other pending step: roll_back (may be NULL) puts storage back,
 *     the record is closed undone, and the job runs again.
 * "Run again" is JOB_RECOVERED_CANCELLED instead when a cancel was
 * requested, unless run_settles_cancel (the live jobs: run() finds
 * libvirt's job and settles the cancel itself).
 */
struct chain_job_recovery {
    const char *const *forward;     /* step kinds, NULL-terminated         */
    /* 0, or -1 with err set (the job fails: an operator must look). */
    int (*roll_forward)(void *opaque, struct journal_op *op,
                        const struct journal_entry *last,
                        struct gvm_error *err);
    /* last: the pending step.  0, or -1 with err set. */
    int (*roll_back)(void *opaque, const struct journal_entry *last,
                     struct gvm_error *err);
    bool run_settles_cancel;
};

/* job_type.recover's contract; opaque goes to the callbacks. */
int chain_job_recover(struct job *job, struct journal_op *op,
                      const struct journal_entry *e, size_t n,
                      const struct chain_job_recovery *rec, void *opaque,
                      struct gvm_error *err);

/* ---- chain-job-copy.c: copying data into an image ---------------------------- */

/* Bytes per buffered read/write; the size of chain_job_copy's buffers. */
#define CHAIN_JOB_COPY_BUF (8u << 20)

/* What a range of the image being read needs in the image written. */
enum chain_job_copy_act {
    CHAIN_JOB_COPY_NONE,
    CHAIN_JOB_COPY_DATA,        /* what `from` reads there                  */
    CHAIN_JOB_COPY_ZERO,        /* zeros, as zeros (a zero flag on v3)      */
    CHAIN_JOB_COPY_REALZERO,    /* zeros written as data (from zbuf)        */
};

/* A copy from what `from` reads (through its chain) into `to`. */
struct chain_job_copy {
    struct job *job;            /* progress, stop requests                  */
    uint64_t speed;             /* bytes/s, 0: unlimited                    */
    const char *fault;          /* journal fault point before each run      */
    struct img *from, *to;      /* may be the same image (a pull)           */
    uint8_t *buf, *zbuf;        /* CHAIN_JOB_COPY_BUF bytes; zbuf all zeros,
                                   needed for CHAIN_JOB_COPY_REALZERO only  */
    uint64_t done, total;       /* progress: bytes                          */
    uint64_t fail_off;          /* out: near where it failed                */
    struct timespec t0;         /* start, for the speed limit               */
};

/* The layer of from's chain that holds a data extent's bytes at its
 * offset, or NULL when they must be read through `from` (compressed, no
 * offset to copy from, or e NULL). */
struct img *chain_job_copy_source(struct img *from, const struct img_extent *e);

/*
 * Copy [off, off+len) as act says (e: the extent of `from` the range lies
 * in, or NULL): store-side copies from the layer holding the data in
 * large runs unless a speed limit wants small steps, else through buf.
 * Progress, throttle and stop requests between runs.  0, JOB_STOPPED, or
 * -errno with cp->fail_off set.
 */
int chain_job_copy_run(struct chain_job_copy *cp, enum chain_job_copy_act act,
                       uint64_t off, uint64_t len, const struct img_extent *e);

/* chain_job_copy_if_differs flags. */
#define CHAIN_JOB_DIFF_ADD_PROGRESS  (1u << 0)  /* job_add_progress per chunk
                                                   (several images in one
                                                   job), not 0..size       */
#define CHAIN_JOB_DIFF_ZEROS_AS_DATA (1u << 1)  /* differing bytes are plain
                                                   writes from the buffer:
                                                   no zero clusters, no
                                                   store-side copies       */

/*
 * Make top read through nb (its new backing, NULL: none) what it reads
 * now: every range top does not allocate itself where its current chain
 * and nb read differently is copied into top, then top is flushed.  Until
 * top's header names nb this only stores what top already reads, so top
 * reads the same throughout.  fault: a journal fault point before each
 * chunk, or NULL.  0, JOB_STOPPED, or -errno with *fail_off set.
 */
int chain_job_copy_if_differs(struct job *job, struct img *top, struct img *nb,
                              unsigned flags, const char *fault,
                              uint64_t *fail_off);

#endif
