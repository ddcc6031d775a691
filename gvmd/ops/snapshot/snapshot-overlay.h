/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-overlay.h — the overlays of a snapshot job (snapshot-overlay.c),
 * shared by the offline job (snapshot.c) and the live one (snapshot-live.c).
 *
 * The job's params hold "disks": [{target, image, volume, path,
 * backing-name, backing-format, size}], one overlay per disk.
 */
#ifndef GVMD_SNAPSHOT_OVERLAY_H
#define GVMD_SNAPSHOT_OVERLAY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gvmd.h"
#include "journal.h"

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
/* Record a finished snapshot of params p: in one transaction, the journal
 * step "commit-catalog" and the catalog change (overlay rows, the snapshot
 * for kind "create", the domain's active disks).  Rolled back on error. */
int snapshot_overlays_record(struct gvmd *d, struct journal_op *op, json_t *p,
                             const struct snapshot_overlay *v, size_t n,
                             struct gvm_error *err);

#endif
