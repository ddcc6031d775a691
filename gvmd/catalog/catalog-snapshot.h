/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-snapshot.h — the snapshot tree (tables snapshots and
 * snapshot_disks of db/schema/0001-init.sql; catalog-snapshot.c).
 *
 * A snapshot records, per disk, the image it froze (image_id) and the
 * overlay that became active on top of it (overlay_id).  The tree goes
 * through parent_id.  Errors as in catalog.h.
 */
#ifndef GVMD_CATALOG_SNAPSHOT_H
#define GVMD_CATALOG_SNAPSHOT_H

#include <stdint.h>

#include "catalog.h"

struct catalog_snapshot_disk {
    char *target;
    int64_t image_id;           /* the frozen image                      */
    int64_t overlay_id;         /* 0: none (gone)                        */
};

struct catalog_snapshot {
    int64_t id;                 /* set by catalog_snapshot_add           */
    char *name;
    int64_t domain_id;          /* 0: a snapshot of bare images          */
    int64_t parent_id;          /* 0: a root                             */
    char *description;
    char *state;
    int64_t created;
    struct catalog_snapshot_disk *disks;   /* ordered by target          */
    size_t ndisks;
};
void catalog_snapshot_clear(struct catalog_snapshot *s);
static inline void catalog_snapshot_clearp(struct catalog_snapshot *s) { catalog_snapshot_clear(s); }
#define _cleanup_catsnap_ _cleanup_(catalog_snapshot_clearp)
void catalog_snapshots_free(struct catalog_snapshot *s, size_t n);

/* Insert the snapshot and its disks (in the caller's transaction, or its
 * own).  AlreadyExists if the name is taken. */
int catalog_snapshot_add(struct catalog *cat, struct catalog_snapshot *s,
                         struct gvm_error *err);
/* By name, or by id when key is all digits.  NotFound if unknown. */
int catalog_snapshot_find(struct catalog *cat, const char *key,
                          struct catalog_snapshot *out, struct gvm_error *err);
int catalog_snapshot_get(struct catalog *cat, int64_t id,
                         struct catalog_snapshot *out, struct gvm_error *err);
/* All snapshots ordered by id. */
int catalog_snapshot_list(struct catalog *cat, struct catalog_snapshot **out,
                          size_t *n, struct gvm_error *err);
/* The snapshot that froze image_id (the newest if several): 1 and *id, 0
 * if none, -1 on error. */
int catalog_snapshot_frozen_by(struct catalog *cat, int64_t image_id,
                               int64_t *id, struct gvm_error *err);
/* The snapshot whose overlay image_id is: 1 and *id, 0 if none. */
int catalog_snapshot_overlay_of(struct catalog *cat, int64_t image_id,
                                int64_t *id, struct gvm_error *err);
/* Remove snapshot id; its children get its parent. */
int catalog_snapshot_delete(struct catalog *cat, int64_t id,
                            struct gvm_error *err);
/* Every snapshot disk whose overlay is old_id gets new_id (0: none). */
int catalog_snapshot_replace_overlay(struct catalog *cat, int64_t old_id,
                                     int64_t new_id, struct gvm_error *err);
/* Remove an image row that job job_id holds locked (its own lock is
 * released first): for an operation that deletes an image it worked on.
 * The other checks of catalog_image_delete() apply. */
int catalog_snapshot_drop_image(struct catalog *cat, int64_t job_id,
                                int64_t image_id, struct gvm_error *err);

#endif
