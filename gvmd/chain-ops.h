/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-ops.h — offline block-commit (chain-commit.c) and block-pull
 * (chain-pull.c), run as jobs on the image engine, journaled like
 * image-rebase (chain.c).
 */
#ifndef GVMD_CHAIN_OPS_H
#define GVMD_CHAIN_OPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"
#include "job.h"

/* The job type "block-commit". */
extern const struct job_type chain_commit_job;

struct chain_commit_req {
    json_t *top;            /* IMAGE reference (borrowed)                  */
    json_t *base;           /* IMAGE reference, or NULL: top's backing     */
    uint64_t speed;         /* bytes/s, 0: unlimited                       */
    bool pivot;             /* false refused for an (offline) active commit */
    const char *op_id;      /* NULL if none                                */
};

/*
 * Check the request (base in top's catalogued chain, no image outside the
 * committed chain depending on base or on an image that goes away), lock
 * the images and start a block-commit job.  Blocking.  *result: the JOB.
 */
int chain_commit_start(struct gvmd *d, const struct chain_commit_req *req,
                       json_t **result, struct gvm_error *err);

/* The job type "block-pull". */
extern const struct job_type chain_pull_job;

struct chain_pull_req {
    json_t *image;          /* IMAGE reference (borrowed)                  */
    json_t *base;           /* IMAGE reference, NULL or null: flatten      */
    uint64_t speed;         /* bytes/s, 0: unlimited                       */
    const char *op_id;
};

/* Check, lock and start a block-pull job.  Blocking.  *result: the JOB. */
int chain_pull_start(struct gvmd *d, const struct chain_pull_req *req,
                     json_t **result, struct gvm_error *err);

#endif
