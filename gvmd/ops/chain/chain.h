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

#endif
