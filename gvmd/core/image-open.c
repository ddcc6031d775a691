/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-open.c — opening a resolved image for a method: which format to
 * open it as (the caller's, else the catalog's, else probed), the hint for
 * its backing file's format, its write lock, and the sentences that say why storage or the
 * engine refused, naming the image as VOLUME:PATH.
 */
#include <errno.h>

#include "catalog-image.h"
#include "image-open.h"

/* An engine call failed: keep the engine's sentence if it wrote one, else
 * say which image and what errno. */
int image_open_data_fail(struct gvm_error *err, int r, const char *what,
                          const char *volume, const char *path,
                          const struct img *img)
{
    /* The engine's sentence naming the entry and value, if it kept one. */
    const char *detail = (r == -EUCLEAN && img) ? img_corrupt_message(img)
                                                : NULL;
    if (!gvm_error_isset(err) && detail && *detail) {
        gvm_error_set(err, GVM_ERR_CORRUPT, "%s %s:%s failed: %s", what,
                      volume, path, detail);
        return -1;
    }
    return image_open_fail(err, r, what, volume, path);
}

int image_open_fail(struct gvm_error *err, int r, const char *what,
                    const char *volume, const char *path)
{
    if (!gvm_error_isset(err)) {
        if (r == -EUCLEAN)
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "%s %s:%s failed: its metadata is corrupt.", what,
                          volume, path);
        else if (r == -ENODEV || r == -EISDIR)
            gvm_error_set(err, GVM_ERR_INVALID_PARAMS,
                          "%s %s:%s failed: it is %s, not a regular file; "
                          "images are regular files.", what, volume, path,
                          r == -EISDIR ? "a directory"
                                       : "a FIFO, socket or device file");
        else
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "%s %s:%s failed", what, volume, path);
    }
    return -1;
}

/* An image nobody told us the format of: as its content claims. */
static int probe_format(struct resolved *r, enum img_format *fmt,
                        struct gvm_error *err)
{
    int ret = img_probe(r->store, r->path, fmt);

    if (ret == -ENOENT)
        gvm_error_set(err, GVM_ERR_NOT_FOUND,
                      "The image %s:%s does not exist on storage.",
                      r->vol.name, r->path);
    else if (ret < 0)
        image_open_fail(err, ret, "Opening", r->vol.name, r->path);
    return ret < 0 ? -1 : 0;
}

/* The format to open r with: the param, else the catalog's, else probed. */
static int pick_format(struct resolved *r, const char *param_fmt,
                       enum img_format *fmt, struct gvm_error *err)
{
    if (param_fmt) {
        if (img_format_parse(param_fmt, fmt) < 0) {
            gvm_error_param(err, "format", "The format '%s' is not one of "
                            "\"qcow2\" and \"raw\".", param_fmt);
            return -1;
        }
        return 0;
    }
    if (r->catalogued && r->row.format &&
        img_format_parse(r->row.format, fmt) == 0)
        return 0;
    return probe_format(r, fmt, err);
}

/* Open the resolved image (and its chain unless IMG_OPEN_NOBACKING). */
int image_open(struct resolved *r, const char *param_fmt,
               const char *backing_fmt, unsigned flags,
               struct resolve_ctx *ctx, struct img **out,
               struct gvm_error *err)
{
    enum img_format fmt;
    struct catalog_image brow = { 0 };
    if (pick_format(r, param_fmt, &fmt, err) < 0)
        return -1;
    /* A header that names its backing file but not its format: the format
     * catalogued for the backing image (given at import) is the hint. */
    if (!backing_fmt && r->catalogued && r->row.backing_id > 0 &&
        !r->row.backing_format &&
        catalog_image_get(ctx->d->cat, r->row.backing_id, &brow, err) < 0)
        return -1;
    if (!backing_fmt)
        backing_fmt = brow.format;
    if (resolve_ctx_add(ctx, r->store, r->vol.id, r->vol.name) < 0)
        return gvm_error_oom(err);
    struct img_resolver res = resolve_img_resolver(ctx);
    int ret = img_open_hint(r->store, r->path, fmt, flags, &res, 0, backing_fmt,
                            out, err);
    catalog_image_clear(&brow);
    if (ret < 0) {
        if (ret == -ENOENT && !gvm_error_isset(err))
            gvm_error_set(err, GVM_ERR_NOT_FOUND,
                          "The image %s:%s does not exist on storage.",
                          r->vol.name, r->path);
        return image_open_fail(err, ret, "Opening", r->vol.name, r->path);
    }
    return 0;
}

int image_open_lock(struct resolved *r, struct img_lock **out,
                    struct gvm_error *err)
{
    _cleanup_free_ char *name = resolve_name(r->vol.name, r->path);
    struct gvm_error e2 = { 0 };
    int ret;

    *out = NULL;
    if (!name)
        return gvm_error_oom(err);
    ret = img_lock_take(r->store, r->path, true, name, out, &e2);
    if (ret == -ENOENT || ret == 0)
        return 0;
    *err = e2;
    return -1;
}
