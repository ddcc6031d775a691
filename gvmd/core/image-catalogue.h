/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-catalogue.h — an opened image chain and its catalog rows
 * (image-catalogue.c).
 */
#ifndef GVMD_IMAGE_CATALOGUE_H
#define GVMD_IMAGE_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog-image.h"
#include "gvmd.h"
#include "image.h"
#include "resolve.h"

/* One layer of an opened chain: where it lives, what its header says, and
 * its catalog row (when catalogued). */
struct image_layer {
    const struct resolve_volmap *vm;
    const char *path;
    struct img_info info;
    struct catalog_image row;
    bool catalogued;
};

void image_layers_free(struct image_layer *l, size_t n);

/* Every opened layer of top, top first, with its catalog row; ctx is the
 * resolve_ctx top was opened through.  0, or -1 with err set. */
int image_layers_walk(struct gvmd *d, struct resolve_ctx *ctx, struct img *top,
                      struct image_layer **out, size_t *n,
                      struct gvm_error *err);

/*
 * Catalogue every layer of the opened chain of top (as far as it was
 * opened: with IMG_OPEN_NOBACKING only top itself, recorded with its
 * header's backing name and format but no backing edge) that is not in the
 * catalog yet, base first, in one transaction — a savepoint when the
 * calling thread has one open, so a caller's rollback undoes it.  Layers
 * already catalogued must agree with their headers (Conflict otherwise).
 * image_layers_catalogue gives the layers with their rows (free them);
 * image_catalogue only top's id.
 */
int image_layers_catalogue(struct gvmd *d, struct resolve_ctx *ctx,
                           struct img *top, struct image_layer **out,
                           size_t *n, struct gvm_error *err);
int image_catalogue(struct gvmd *d, struct resolve_ctx *ctx, struct img *top,
                    int64_t *top_id, struct gvm_error *err);

#endif
