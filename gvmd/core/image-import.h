/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-import.h — cataloguing an image found on storage with its backing
 * chain (image-import.c).
 */
#ifndef GVMD_IMAGE_IMPORT_H
#define GVMD_IMAGE_IMPORT_H

#include "image-catalogue.h"

/* Open r as format (NULL: as catalogued, else probed — and then a backing
 * file outside r's directory tree is refused) through ctx, and catalogue
 * the chain.  *img (close it) and ctx must outlive *layers (free them with
 * image_layers_free; top first). */
int image_import(struct gvmd *d, struct resolved *r, const char *format,
                 const char *backing_format, struct resolve_ctx *ctx,
                 struct img **img, struct image_layer **layers, size_t *n,
                 struct gvm_error *err);

#endif
