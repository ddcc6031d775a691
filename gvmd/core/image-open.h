/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-open.h — opening a resolved image for a method (image-open.c).
 */
#ifndef GVMD_IMAGE_OPEN_H
#define GVMD_IMAGE_OPEN_H

#include "image.h"
#include "resolve.h"

/* Open the resolved image r (and its chain unless IMG_OPEN_NOBACKING in
 * flags) as format param_fmt, else as catalogued, else as its content
 * says; backing_fmt (else the catalog's for its backing image) is the hint
 * for a backing file whose header names no format.  -1 with err set
 * (NotFound when the file does not exist). */
int image_open(struct resolved *r, const char *param_fmt,
               const char *backing_fmt, unsigned flags,
               struct resolve_ctx *ctx, struct img **out,
               struct gvm_error *err);

/* The write lock of image-lock.c on r (release with img_lock_release /
 * _cleanup_img_lock_), InUse naming VOLUME:PATH if another process holds
 * the image.  A missing file is no error here (*out NULL): what follows
 * reports it as it would without locks. */
int image_open_lock(struct resolved *r, struct img_lock **out,
                    struct gvm_error *err);

/* "WHAT VOLUME:PATH failed" for storage error r (a negative errno) unless
 * err is set already; always -1.  image_open_data_fail keeps the engine's
 * sentence about corrupt metadata of img when it wrote one. */
int image_open_fail(struct gvm_error *err, int r, const char *what,
                    const char *volume, const char *path);
int image_open_data_fail(struct gvm_error *err, int r, const char *what,
                         const char *volume, const char *path,
                         const struct img *img);

#endif
