/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-create.h — making a new image and cataloguing it (image-create.c).
 */
#ifndef GVMD_IMAGE_CREATE_H
#define GVMD_IMAGE_CREATE_H

#include <jansson.h>

#include "catalog-image.h"
#include "gvmd.h"
#include "image.h"

/* What to make; the strings are borrowed. */
struct image_create_req {
    const char *volume;          /* registered volume                     */
    const char *path;            /* inside it, checked by path_check()    */
    struct img_create_opts opts; /* format and options; size 0: the backing
                                  * image's; backing_name/_format unset  */
    json_t *backing;             /* IMAGE reference of the backing image,
                                  * or NULL                               */
    const char *backing_format;  /* what the caller says it is, or NULL   */
};

/* The image made: its catalog row and what its header says. */
struct image_created {
    struct catalog_image row;
    struct img_info info;
};
void image_created_clear(struct image_created *c);

/*
 * Create req's image: refused (AlreadyExists) when the path is catalogued
 * or exists on storage; the backing image's chain is catalogued first and
 * the name written for it is one QEMU resolves to it from the new image
 * (resolve_backing_name); directories above the image are made.  The new
 * file is read back and catalogued above its backing image.  On failure
 * nothing is left on storage or in the catalog but the backing chain's
 * rows (true facts of storage).
 */
int image_create(struct gvmd *d, const struct image_create_req *req,
                 struct image_created *out, struct gvm_error *err);

#endif
