/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-plan.h — planning snapshot-create and snapshot-revert
 * (snapshot-plan.c): which image each disk freezes and where its overlay
 * goes, the checks every plan passes before anything is written, and the
 * job params the overlay job (snapshot.c, snapshot-live.c) runs from.
 */
#ifndef GVMD_SNAPSHOT_PLAN_H
#define GVMD_SNAPSHOT_PLAN_H

#include <jansson.h>
#include <stddef.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "catalog.h"
#include "gvmd.h"
#include "job.h"

struct snapshot_plan_disk {
    char *target;
    struct catalog_image active;    /* becomes the frozen image / backing */
    struct catalog_volume vol;      /* active's volume (overlay goes there) */
    char *overlay;                  /* path in vol                        */
};

struct snapshot_plan {
    struct snapshot_plan_disk *v;
    size_t n;
};

void snapshot_plan_clear(struct snapshot_plan *p);
#define _cleanup_plan_ _cleanup_(snapshot_plan_clear)

/* Snapshot (and branch) names end up in file names: keep them plain.
 * InvalidParams on param otherwise. */
int snapshot_plan_check_name(const char *name, const char *param,
                             struct gvm_error *err);

/* Add disk i of snapshot-create's params to p: dj is its entry of "disks"
 * (NULL: the domain's disk i), dom the domain (NULL: bare images), name
 * the snapshot's.  Checks the disk and its image may be snapshotted. */
int snapshot_plan_create_disk(struct gvmd *d, struct snapshot_plan *p,
                              json_t *dj, const struct catalog_domain *dom,
                              size_t i, const char *name, struct gvm_error *err);
/* Add disk i of snapshot s to p for a revert of domain dom: a new overlay
 * on its frozen image, under the first free name of
 * "<BASE>.<s>-revert.qcow2", "<BASE>.<s>-revert-2.qcow2".. (snapshot-plan.c). */
int snapshot_plan_revert_disk(struct gvmd *d, struct snapshot_plan *p,
                              const struct catalog_snapshot *s,
                              const struct catalog_domain *dom, size_t i,
                              struct gvm_error *err);

/* Checks every plan needs: overlay paths free and distinct (a default
 * path is free already; a given one may not be). */
int snapshot_plan_check_paths(struct gvmd *d, struct snapshot_plan *p,
                              struct gvm_error *err);
/* The "disks" JSON the overlay job runs from (snapshot-overlay.h); NULL
 * when out of memory. */
json_t *snapshot_plan_json(struct gvmd *d, const struct snapshot_plan *p);
/* Set "active" in a snapshot-create/-revert result: [{target, image-name}],
 * the plan's overlays, which are the disks' active images once it ran. */
int snapshot_plan_add_active(const struct snapshot_plan *p, json_t *result,
                              struct gvm_error *err);
/* Run the overlay job of type with params, locking the plan's active
 * images for writing, and wait for it (snapshot-run.h). */
int snapshot_plan_run(struct gvmd *d, const struct job_type *type,
                      json_t *params, const struct snapshot_plan *p,
                      struct gvm_error *err);

#endif
