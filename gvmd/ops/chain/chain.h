/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain.h — offline chain surgery built on the image engine, run as jobs
 * (chain.c): image-rebase so far.
 */
#ifndef GVMD_CHAIN_H
#define GVMD_CHAIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "gvmd.h"
#include "job.h"
#include "resolve.h"

/* The job type "image-rebase". */
extern const struct job_type chain_rebase_job;

struct chain_rebase_req {
    json_t *image;          /* IMAGE reference (borrowed)                 */
    json_t *backing;        /* IMAGE reference, or NULL/json null: none   */
    bool safe;              /* "safe": keep the guest content             */
    const char *op_id;      /* NULL if none                               */
};

/*
 * Check the request, lock the images and start an image-rebase job.
 * Blocking (may connect to a gluster volume).  The image and the new
 * backing must be catalogued; the new backing must not be the image or
 * have it in its chain.  *result: the JOB.
 */
int chain_rebase_start(struct gvmd *d, const struct chain_rebase_req *req,
                       json_t **result, struct gvm_error *err);

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
 * Image locks (image-lock.c) held across a job's steps.  chain_job_start
 * checks that no other process holds any image the job writes (write
 * locks; InUse naming VOLUME:PATH, before the job exists) and records
 * their ids in the params as "hold"; a job whose steps open its images
 * one after the other (block-commit) takes them again for its whole
 * write phase with chain_hold_take, so no QEMU can open one in between.
 * Images missing on storage are skipped: the job reports them.
 */
struct chain_hold;
int chain_hold_take(struct job *job, struct chain_hold **out,
                    struct gvm_error *err);
void chain_hold_release(struct chain_hold *h);

#endif
