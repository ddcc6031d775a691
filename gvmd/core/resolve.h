/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resolve.h — from an IMAGE reference (imageref.h) to where the image lives:
 * its registered volume, that volume's store, the path inside it and, when
 * it is catalogued, its catalog row (resolve.c).
 *
 * Also the img_resolver the daemon opens backing chains with: a backing
 * name relative to the image's directory stays on the same volume; a
 * gluster:// URI or json: name goes to the registered volume with that
 * gluster volume name (registering it if needed); an absolute name is
 * accepted only when it falls under a dir volume's root, and refused
 * otherwise with a sentence saying so.
 */
#ifndef GVMD_RESOLVE_H
#define GVMD_RESOLVE_H

#include <jansson.h>
#include <stdbool.h>

#include "catalog-image.h"
#include "catalog.h"
#include "gvmd.h"
#include "image.h"
#include "imageref.h"

struct resolved {
    struct catalog_volume vol;   /* the registered volume                 */
    struct gvm_store *store;     /* the volume's store (borrowed)         */
    char *path;                  /* inside the volume                     */
    bool catalogued;             /* row below is filled                   */
    struct catalog_image row;
};
void resolved_clear(struct resolved *r);
static inline void resolved_clearp(struct resolved *r) { resolved_clear(r); }
#define _cleanup_resolved_ _cleanup_(resolved_clearp)

/* Resolve ref.  An id must be catalogued (NotFound otherwise); other forms
 * need only a registered (or registrable) volume. */
int resolve_imageref(struct gvmd *d, const struct imageref *ref,
                     struct resolved *out, struct gvm_error *err);
/* Parse the IMAGE parameter `param` of params and resolve it. */
int resolve_param(struct gvmd *d, json_t *params, const char *param,
                  struct resolved *out, struct gvm_error *err);
/* Parse the image reference ref (the parameter `param`) and resolve it;
 * NotFound unless the image is in the catalog, as chain surgery needs its
 * row and edges. */
int resolve_catalogued(struct gvmd *d, json_t *ref, const char *param,
                       struct resolved *out, struct gvm_error *err);
/* Resolve a registered volume name to its row and store. */
int resolve_volume(struct gvmd *d, const char *name, struct catalog_volume *vol,
                   struct gvm_store **store, struct gvm_error *err);

/* "VOLUME:PATH", for messages.  Caller frees. */
char *resolve_name(const char *volume, const char *path);
/* The same for catalogued image id ("image ID" if it has no row any more,
 * for messages about images that may be gone).  Caller frees; NULL on
 * ENOMEM. */
char *resolve_image_name(struct gvmd *d, int64_t id);

/*
 * Opening chains.  A struct resolve_ctx remembers which volume each store
 * it handed out belongs to, so that every layer of an opened chain can be
 * named and catalogued.
 */
struct resolve_volmap {
    struct gvm_store *store;
    int64_t volume_id;
    char *volume;
};
struct resolve_ctx {
    struct gvmd *d;
    struct resolve_volmap *map;
    size_t nmap;
};
void resolve_ctx_init(struct resolve_ctx *ctx, struct gvmd *d);
void resolve_ctx_clear(struct resolve_ctx *ctx);
static inline void resolve_ctx_clearp(struct resolve_ctx *c) { resolve_ctx_clear(c); }
#define _cleanup_rctx_ _cleanup_(resolve_ctx_clearp)
/* Record that store belongs to volume (id, name). */
int resolve_ctx_add(struct resolve_ctx *ctx, struct gvm_store *store,
                    int64_t volume_id, const char *volume);
/* The volume of a store handed out through ctx, or NULL. */
const struct resolve_volmap *resolve_ctx_lookup(const struct resolve_ctx *ctx,
                                                const struct gvm_store *store);
/* The resolver to pass to img_open()/img_create(); ctx must outlive it. */
struct img_resolver resolve_img_resolver(struct resolve_ctx *ctx);

/*
 * The backing file name to write in the header of an image at
 * (child_vol, child_path) for a backing image at (vol, path): relative to
 * the child's directory on the same volume, unless a symlinked directory
 * on the way would take QEMU elsewhere (vols' store of the volume says);
 * else a gluster URI for a gluster volume, an absolute path for a dir
 * volume.  vols NULL: the relative name as computed (unit tests).  Caller
 * frees; NULL on ENOMEM.
 */
char *resolve_backing_name(struct volumes *vols,
                           const struct catalog_volume *child_vol,
                           const char *child_path,
                           const struct catalog_volume *vol, const char *path);

#endif
