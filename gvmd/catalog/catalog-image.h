/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-image.h — images and their backing edges in the catalog
 * (catalog-image.c; SQL against db/schema, through catalog.h's helpers).
 *
 * Errors as in catalog.h: functions fill err (NotFound, AlreadyExists,
 * InUse where they say so, Internal for sqlite failures) and return -1.
 */
#ifndef GVMD_CATALOG_IMAGE_H
#define GVMD_CATALOG_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"

struct catalog_image {
    int64_t id;                 /* set by catalog_image_add              */
    int64_t volume_id;
    char *volume;               /* the volume's name (filled on reads)   */
    char *path;                 /* relative to the volume root           */
    char *format;               /* "qcow2" | "raw"                       */
    uint64_t virtual_size;
    uint32_t cluster_size;      /* 0: none (raw)                         */
    int64_t backing_id;         /* 0: no catalogued backing image        */
    char *backing_filename;     /* as in the header, or NULL             */
    char *backing_format;       /* NULL if none                          */
    char *state;                /* "ready", "creating", "deleting"       */
    int64_t created;
};
void catalog_image_clear(struct catalog_image *img);
static inline void catalog_image_clearp(struct catalog_image *i) { catalog_image_clear(i); }
#define _cleanup_catimg_ _cleanup_(catalog_image_clearp)
void catalog_images_free(struct catalog_image *imgs, size_t n);

/* Insert img (state "ready" unless img->state says otherwise); sets
 * img->id and img->created.  AlreadyExists if volume+path is catalogued;
 * NotFound if backing_id names no image. */
int catalog_image_add(struct catalog *cat, struct catalog_image *img,
                      struct gvm_error *err);
/* NotFound if no image has that id. */
int catalog_image_get(struct catalog *cat, int64_t id,
                      struct catalog_image *out, struct gvm_error *err);
/* 1 and *out filled if volume_id+path is catalogued, 0 if not, -1 on error. */
int catalog_image_find(struct catalog *cat, int64_t volume_id,
                       const char *path, struct catalog_image *out,
                       struct gvm_error *err);
/* All images (volume_id 0) or those of one volume, ordered by id. */
int catalog_image_list(struct catalog *cat, int64_t volume_id,
                       struct catalog_image **out, size_t *n,
                       struct gvm_error *err);
/* Ids of the images whose backing edge points at id, ordered. */
int catalog_image_children(struct catalog *cat, int64_t id, int64_t **ids,
                           size_t *n, struct gvm_error *err);
/* Change the backing edge and the header fields recorded with it. */
int catalog_image_set_backing(struct catalog *cat, int64_t id,
                              int64_t backing_id, const char *backing_filename,
                              const char *backing_format,
                              struct gvm_error *err);
/* Record the format, virtual size and cluster size (0: none) an image's
 * header says it has (chain-audit's adopt-storage). */
int catalog_image_set_header(struct catalog *cat, int64_t id,
                             const char *format, uint64_t virtual_size,
                             uint32_t cluster_size, struct gvm_error *err);
int catalog_image_set_state(struct catalog *cat, int64_t id,
                            const char *state, struct gvm_error *err);
/* Put back a row removed earlier, with its id and every field (an
 * image-delete whose file could not be removed).  Conflict if its id or
 * path was taken or its volume or backing image went meanwhile. */
int catalog_image_restore(struct catalog *cat, const struct catalog_image *img,
                          struct gvm_error *err);
/* Remove the row.  NotFound if unknown; InUse if it has children, is a
 * domain's disk, is part of a snapshot or locked by a job (the message says
 * which). */
int catalog_image_delete(struct catalog *cat, int64_t id,
                         struct gvm_error *err);

#endif
