/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-tree.h — the snapshot tree as the methods read it
 * (snapshot-tree.c): snapshot-list, snapshot-info, a domain's current
 * snapshot, and the SNAPSHOT object PROTOCOL.md describes.
 */
#ifndef GVMD_SNAPSHOT_TREE_H
#define GVMD_SNAPSHOT_TREE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "gvmd.h"

/* The methods (params as checked by the RPC layer; results as PROTOCOL.md
 * says). */
int snapshot_tree_list(struct gvmd *d, json_t *params, json_t **result,
                       struct gvm_error *err);
int snapshot_tree_info(struct gvmd *d, json_t *params, json_t **result,
                       struct gvm_error *err);
/* The id of the domain's current snapshot (0: none), -1 on error. */
int64_t snapshot_tree_current(struct gvmd *d, int64_t domain_id,
                              struct gvm_error *err);
/* The first snapshot (of domain_id; 0: of bare images) freezing an image
 * of the catalogued chain below image_id (image_id itself excluded unless
 * include_self): its id, 0 when none, -1 on error. */
int64_t snapshot_tree_find_below(struct gvmd *d, int64_t image_id,
                                 bool include_self, int64_t domain_id,
                                 struct gvm_error *err);
/* The SNAPSHOT object of snapshot id (NotFound when there is none). */
json_t *snapshot_tree_json_by_id(struct gvmd *d, int64_t id,
                                 struct gvm_error *err);
/* The param "snapshot" (a name or an integer id) as a key for
 * catalog_snapshot_find, written into buf when an id; NULL (InvalidParams)
 * when it is neither. */
const char *snapshot_tree_key(json_t *key, char buf[32], struct gvm_error *err);

#endif
