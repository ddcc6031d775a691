/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-commit.h — inside block-commit: what one run of the job works
 * with, shared by the job (chain-commit.c) and its data steps
 * (chain-commit-copy.c).  The commit's interface is chain-ops.h.
 */
#ifndef GVMD_CHAIN_COMMIT_H
#define GVMD_CHAIN_COMMIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog-image.h"
#include "gvmd.h"
#include "image.h"
#include "job.h"
#include "journal.h"
#include "resolve.h"

/* Bytes a copy of [0, top's size) moves: data, and data plus zeros. */
struct chain_commit_plan { uint64_t data, total; };

/* What one run of block-commit (or chain_commit_merge) works with. */
struct chain_commit {
    struct job *job;
    struct gvmd *d;
    int64_t top_id, base_id;
    uint64_t speed;
    json_t *removed, *children;         /* borrowed from the params */
    struct catalog_image base;          /* base's catalog row       */
    char *name, *base_name;             /* "VOLUME:PATH"            */
    struct resolve_ctx ctx;
    uint64_t cut;                       /* end of the shortest removed layer */
    struct chain_commit_plan plan;      /* of [0, top's size): chain_commit_copy_plan */
    bool planned;
};

/* ---- chain-commit-copy.c ------------------------------------------------------- */

/* Open catalogued image id through c's context.  0, or -1 with err set. */
int chain_commit_copy_open_id(struct chain_commit *c, int64_t id,
                              unsigned flags, struct img **out, struct gvm_error *err);

/* Repair leaks in base after an interrupted copy (best effort, logged). */
void chain_commit_copy_repair_leaks(struct chain_commit *c);


/*
 * The storage preconditions, before the journal and the first write: the
 * chain on storage is the catalogued one, and base's volume has room for
 * every data byte the commit may write.  Sets c->plan over [0, top's
 * size), the range the copy covers once step "grow" made base as large.
 * 0, or -1 with err set.
 */
int chain_commit_copy_plan(struct chain_commit *c, struct gvm_error *err);

/* Step "grow" (journaled in op when base is smaller than top): 0 (also
 * when base is big enough), or -1 with err set. */
int chain_commit_copy_grow(struct chain_commit *c, struct journal_op *op,
                           struct gvm_error *err);

/* R0: a crash while base grew (pl: the "grow" step's payload): zero the
 * grown range again, repair leaks, record base's size.  0, or -1. */
int chain_commit_copy_grow_recover(struct chain_commit *c, json_t *pl,
                                   struct gvm_error *err);

/* The copy (step "copying"): 0, JOB_STOPPED, or -1 with err set. */
int chain_commit_copy_run(struct chain_commit *c, struct gvm_error *err);

#endif
