/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-create.c — image-create as a service: the checks that the path is
 * free, the backing image catalogued and named as QEMU will find it, the
 * file made through the engine, read back and catalogued.  The method's
 * parameters are parsed into struct image_create_req by its handler.
 */
#include <errno.h>
#include <string.h>

#include "image-create.h"
#include "image-catalogue.h"
#include "image-open.h"
#include "imageref.h"
#include "resolve.h"
#include "volume.h"

void image_created_clear(struct image_created *c)
{
    catalog_image_clear(&c->row);
    img_info_clear(&c->info);
}

/* AlreadyExists when name (VOLUME:PATH) is catalogued or on storage. */
static int refuse_taken(struct gvmd *d, const struct catalog_volume *vol,
                        struct gvm_store *st, const char *path,
                        const char *name, struct gvm_error *err)
{
    struct catalog_image row = { 0 };
    struct gvm_stat sb;
    int r = catalog_image_find(d->cat, vol->id, path, &row, err);

    catalog_image_clear(&row);
    if (r < 0)
        return -1;
    if (r > 0) {
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS,
                      "The image %s is already in the catalog.", name);
        return -1;
    }
    r = st->ops->stat(st, path, &sb);
    if (r == 0) {
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS,
                      "%s already exists on storage.", name);
        return -1;
    }
    if (r != -ENOENT)
        return image_open_fail(err, r, "Looking up", vol->name, path);
    return 0;
}

/* The backing image of the new one. */
struct backing {
    struct resolved r;
    struct image_layer *l;       /* its chain, catalogued; l[0]: it       */
    size_t n;
    char *name;                  /* as written in the new header          */
    char *format;
};

static void backing_clear(struct backing *b)
{
    resolved_clear(&b->r);
    if (b->l)
        image_layers_free(b->l, b->n);
    free(b->name);
    free(b->format);
}

/* Catalogue the backing image's chain (so the edge can be recorded) and
 * work out the name and format to write in the new header. */
static int backing_prepare(struct gvmd *d, const struct image_create_req *req,
                           const struct catalog_volume *vol,
                           struct resolve_ctx *ctx, struct backing *b,
                           struct gvm_error *err)
{
    struct imageref ref = { 0 };
    _cleanup_img_ struct img *bimg = NULL;
    int r;

    if (imageref_parse_json(req->backing, "backing", &ref, err) < 0)
        return -1;
    r = resolve_imageref(d, &ref, &b->r, err);
    imageref_clear(&ref);
    if (r < 0 ||
        image_open(&b->r, req->backing_format, NULL, 0, ctx, &bimg, err) < 0 ||
        image_layers_catalogue(d, ctx, bimg, &b->l, &b->n, err) < 0)
        return -1;
    b->name = resolve_backing_name(d->vols, vol, req->path, &b->r.vol, b->r.path);
    b->format = strdup(img_format_name(b->l[0].info.format));
    if (!b->name || !b->format)
        return gvm_error_oom(err);
    if (req->backing_format && strcmp(req->backing_format, b->format) != 0) {
        gvm_error_param(err, "backing-format", "The backing image %s:%s is "
                        "%s, not %s.", b->r.vol.name, b->r.path, b->format,
                        req->backing_format);
        return -1;
    }
    return 0;
}

/* Directories above the image, then the file itself; a half-made file
 * goes. */
static int make_file(struct gvm_store *st, const struct catalog_volume *vol,
                     const char *path, const char *name,
                     const struct img_create_opts *o, struct resolve_ctx *ctx,
                     struct gvm_error *err)
{
    int ret = store_mkdir_parents(st, path);

    if (ret < 0)
        return image_open_fail(err, ret, "Creating the directories of",
                               vol->name, path);
    if (resolve_ctx_add(ctx, st, vol->id, vol->name) < 0)
        return gvm_error_oom(err);
    struct img_resolver res = resolve_img_resolver(ctx);
    ret = img_create(st, path, o, &res, err);
    if (ret < 0) {
        if (ret != -EEXIST) {
            st->ops->unlink(st, path);
        } else if (!gvm_error_isset(err)) {
            gvm_error_set(err, GVM_ERR_ALREADY_EXISTS,
                          "%s already exists on storage.", name);
        }
        return image_open_fail(err, ret, "Creating", vol->name, path);
    }
    return 0;
}

/* Read back what was written and catalogue it above its backing image b
 * (NULL: none); the file goes if that fails. */
static int catalogue_new(struct gvmd *d, const struct catalog_volume *vol,
                         struct gvm_store *st, const char *path,
                         enum img_format format, const struct backing *b,
                         struct resolve_ctx *ctx, struct image_created *out,
                         struct gvm_error *err)
{
    struct resolved top = { .vol = *vol, .store = st, .path = (char *)path };
    _cleanup_img_ struct img *img = NULL;
    struct image_layer *l = NULL;
    size_t n = 0;
    int ret;

    ret = image_open(&top, img_format_name(format), NULL, IMG_OPEN_NOBACKING,
                     ctx, &img, err);
    if (ret == 0)
        ret = image_layers_walk(d, ctx, img, &l, &n, err);
    if (ret == 0) {
        struct catalog_image *row = &l[0].row;
        /* walk_chain found a row when the catalog already has this path
         * (its file was missing): catalog_image_add refuses the duplicate
         * below, and the found row's strings are freed. */
        catalog_image_clear(row);
        row->volume_id = vol->id;
        row->path = strdup(path);
        row->volume = strdup(vol->name);
        row->format = strdup(img_format_name(l[0].info.format));
        row->virtual_size = l[0].info.virtual_size;
        row->cluster_size = l[0].info.cluster_size;
        row->backing_id = b ? b->l[0].row.id : 0;
        row->backing_filename = b ? strdup(b->name) : NULL;
        row->backing_format = b ? strdup(b->format) : NULL;
        if (!row->path || !row->volume || !row->format ||
            (b && (!row->backing_filename || !row->backing_format)))
            ret = gvm_error_oom(err);
        else
            ret = catalog_image_add(d->cat, row, err);
        if (ret == 0) {
            out->row = *row;
            out->info = l[0].info;
            memset(row, 0, sizeof(*row));
            memset(&l[0].info, 0, sizeof(l[0].info));
        }
    }
    if (l)
        image_layers_free(l, n);
    if (ret < 0) {
        img_close(steal_pointer(&img));
        st->ops->unlink(st, path);
    }
    return ret < 0 ? -1 : 0;
}

int image_create(struct gvmd *d, const struct image_create_req *req,
                 struct image_created *out, struct gvm_error *err)
{
    struct img_create_opts o = req->opts;
    _cleanup_catvol_ struct catalog_volume vol = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_free_ char *name = NULL;
    struct backing b = { 0 };
    struct gvm_store *st = NULL;
    int ret = -1;

    resolve_ctx_init(&ctx, d);
    if (resolve_volume(d, req->volume, &vol, &st, err) < 0)
        return -1;
    name = resolve_name(vol.name, req->path);
    if (!name)
        return gvm_error_oom(err);
    if (refuse_taken(d, &vol, st, req->path, name, err) < 0)
        return -1;
    if (req->backing) {
        if (backing_prepare(d, req, &vol, &ctx, &b, err) < 0)
            goto out;
        o.backing_name = b.name;
        o.backing_format = b.format;
        if (!o.size)
            o.size = b.l[0].info.virtual_size;
    }
    if (make_file(st, &vol, req->path, name, &o, &ctx, err) < 0)
        goto out;
    ret = catalogue_new(d, &vol, st, req->path, o.format,
                        req->backing ? &b : NULL, &ctx, out, err);
out:
    backing_clear(&b);
    return ret;
}
