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

#include "gvmd.h"
#include "job.h"
#include "resolve.h"

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

/*
 * A commit run by another job (snapshot-delete: a frozen image whose
 * parent has no other child is committed into it).  Commits top into its
 * catalogued backing `base` (which must have no other child) with the
 * steps of block-commit journaled in the caller's operation op: "commit"
 * {params}, "grow", "copying" and "switch"; top's children are repointed
 * to base (header, then catalog edge, one child after the other).  top is
 * NOT removed: it stays catalogued and on storage, reading as before (base
 * now reads what top read), for the caller to forget and delete.
 * 0, JOB_STOPPED (nothing above base changed), or -1 with err set.
 */
int chain_commit_merge(struct job *job, struct journal_op *op, int64_t top_id,
                       struct gvm_error *err);
/*
 * Recovery of chain_commit_merge from the caller's journal entries e[0..n):
 * when the last pending entry is one of its steps, roll forward ("switch":
 * the remaining children are repointed) or back (leaks in base repaired,
 * a grown base's new range zeroed again) and return 1; the caller then
 * marks its operation undone and runs again.  0 if the last pending entry
 * is not the merge's; -1 with err set.
 */
int chain_commit_merge_recover(struct job *job, const struct journal_entry *e,
                               size_t n, struct gvm_error *err);

/*
 * InUse unless every catalog child of image id is `allowed` (0: none may
 * be): a commit must not change what an image outside `chain` (words for
 * the message: "the committed chain") reads; why ends the sentence.
 */
int chain_commit_only_child(struct gvmd *d, int64_t id, int64_t allowed,
                            const char *chain, const char *why,
                            struct gvm_error *err);

/*
 * The base of a commit request: req->base, or top's catalogued backing
 * file.  InvalidParams (base) when that is top itself.
 */
int chain_commit_base(struct gvmd *d, const struct chain_commit_req *req,
                      const struct resolved *top, int64_t *base_id,
                      struct gvm_error *err);

/*
 * The catalogued chain from top_id down to base_id, base excluded, into
 * chain[0..*k) (top first); name: top's "VOLUME:PATH" for the messages.
 * InvalidParams (base) when base is not below top, Corrupt when the chain
 * is deeper than IMG_MAX_CHAIN_DEPTH.
 */
int chain_commit_walk(struct gvmd *d, int64_t top_id, const char *name,
                      int64_t base_id, int64_t *chain, size_t *k,
                      struct gvm_error *err);

/*
 * chain_commit_only_child for every image the commit chain[0..k) into
 * base changes: base (only chain[k-1] may back onto it), the removed
 * chain[1..k) (only the image above each), and, when top_allowed >= 0,
 * top (only top_allowed, 0: none).  words: as chain_commit_only_child's.
 */
int chain_commit_only_children(struct gvmd *d, int64_t base_id,
                               const int64_t *chain, size_t k,
                               int64_t top_allowed, const char *words,
                               struct gvm_error *err);

/*
 * Read locks on every catalogued image below base_id, appended to
 * locks[*nlocks..max): a commit reads them and they must not change under
 * it.  below: words naming base in the Corrupt message ("the base").
 */
int chain_commit_lock_below(struct gvmd *d, int64_t base_id, const char *below,
                            struct catalog_job_lock *locks, size_t *nlocks,
                            size_t max, struct gvm_error *err);

/*
 * The catalog and storage preconditions of committing top into base
 * (chain[0..k): top first, base excluded, the images that go away), as
 * chain-check.h states them: no snapshot records base or a removed image,
 * no domain disk is on them (top's moves to base), no uncatalogued overlay
 * backs onto them.  0, or -1 with err (InUse) saying what to do.
 */
int chain_commit_check(struct gvmd *d, int64_t top_id, int64_t base_id,
                       const int64_t *chain, size_t k, struct gvm_error *err);

/*
 * Planning a commit (offline or live): the images chain[0..k) (top first,
 * base excluded) go away: append each to removed as {id, volume-id,
 * volume, path}, its id to images, and a write lock to locks[*nlocks++].
 */
int chain_commit_plan_removed(struct gvmd *d, const int64_t *chain, size_t k,
                              json_t *removed, json_t *images,
                              struct catalog_job_lock *locks, size_t *nlocks,
                              struct gvm_error *err);

/*
 * In the catalog transaction that ends a commit (offline or live): delete
 * the rows of the images the commit removed (removed: [{id, ...}]; rows
 * already gone are skipped), releasing job_id's locks on them first.
 */
int chain_commit_drop_removed(struct catalog *cat, int64_t job_id,
                              json_t *removed, struct gvm_error *err);

/*
 * After the catalog transaction that ends a commit (offline or live):
 * delete the files of the images it removed ([{volume-id, path, ...}]);
 * missing files are fine.  fault: a journal fault point before each, or
 * NULL.  The error says "The WHAT into BASE is complete, but deleting the
 * file PATH failed".
 */
int chain_commit_delete_removed(struct gvmd *d, json_t *removed,
                                const char *fault, const char *what,
                                const char *base_name, struct gvm_error *err);

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

/*
 * The live path (live-job.c): when a running libvirt domain uses the top
 * (commit) or the image (pull), the job is libvirt's and gvmd watches it.
 * Return 1 with *result (the JOB, "live": true) when the live path was
 * taken, 0 when no running domain uses the image (take the offline path),
 * -1 with err set (refusals say why libvirt cannot do it).
 */
extern const struct job_type live_commit_job;
extern const struct job_type live_pull_job;
int live_commit_start(struct gvmd *d, const struct chain_commit_req *req,
                      json_t **result, struct gvm_error *err);
int live_pull_start(struct gvmd *d, const struct chain_pull_req *req,
                    json_t **result, struct gvm_error *err);

#endif
