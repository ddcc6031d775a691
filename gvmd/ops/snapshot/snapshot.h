/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot.h — external disk-only snapshots on the offline path
 * (snapshot.c): the snapshot tree of a domain gvmd knows only from its
 * catalog (domain-attach with explicit disks), or of bare images.
 *
 * snapshot-create and snapshot-revert create qcow2 overlays and switch the
 * active images; they run as short internal jobs so that the job runner's
 * recovery settles an operation a crash interrupted (the RPC call waits for
 * the job and dismisses it).  snapshot-delete is an ordinary job.
 */
#ifndef GVMD_SNAPSHOT_H
#define GVMD_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>

#include "gvmd.h"
#include "job.h"

extern const struct job_type snapshot_create_job;
extern const struct job_type snapshot_revert_job;
extern const struct job_type snapshot_delete_job;

/* The methods (params as checked by the RPC layer; results as PROTOCOL.md
 * says).  op_id may be NULL. */
int snapshot_create(struct gvmd *d, json_t *params, json_t **result,
                    struct gvm_error *err);
int snapshot_revert(struct gvmd *d, json_t *params, json_t **result,
                    struct gvm_error *err);
int snapshot_delete_start(struct gvmd *d, json_t *params, const char *op_id,
                          json_t **result, struct gvm_error *err);
int snapshot_list(struct gvmd *d, json_t *params, json_t **result,
                  struct gvm_error *err);
int snapshot_info(struct gvmd *d, json_t *params, json_t **result,
                  struct gvm_error *err);
/* The id of the domain's current snapshot (0: none), -1 on error. */
int64_t snapshot_domain_current(struct gvmd *d, int64_t domain_id,
                                struct gvm_error *err);

/* ---- the overlays of a snapshot job (shared with snapshot-live.c) ----------
 * The job's params hold "disks": [{target, image, volume, path,
 * backing-name, backing-format, size}], one overlay per disk. */
struct snapshot_overlay {
    const char *target, *path, *bname, *bfmt;   /* borrowed from the params */
    int64_t image, volume;                      /* frozen image, overlay's vol */
    uint64_t size;
};
/* The overlays of params p (*out: free it; its strings are p's). */
int snapshot_overlays_parse(json_t *p, struct snapshot_overlay **out,
                            size_t *n, struct gvm_error *err);
/* Create one overlay on storage (its directories too).  -2 (AlreadyExists)
 * when the file exists and was left alone, -1 otherwise. */
int snapshot_overlay_create(struct gvmd *d, const struct snapshot_overlay *o,
                            struct gvm_error *err);
/* Create the overlays v[0..n), each after its journal step
 * "create-overlay" {index}, then pass the fault point `fault` (a snapshot
 * named name).  *made: how many files may exist (undo removes them). */
int snapshot_overlays_create_all(struct gvmd *d, struct journal_op *op,
                                 const struct snapshot_overlay *v, size_t n,
                                 const char *fault, const char *name,
                                 size_t *made, struct gvm_error *err);
/* Unlink the overlays v[0..n) that are not catalogued (best effort). */
void snapshot_overlays_remove(struct gvmd *d, const struct snapshot_overlay *v,
                              size_t n);
/* The catalog change of a finished snapshot (overlay rows, the snapshot
 * for kind "create", the domain's active disks), in the caller's txn. */
int snapshot_overlays_commit(struct gvmd *d, json_t *p,
                             const struct snapshot_overlay *v, size_t n,
                             struct gvm_error *err);

#endif
