/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-catalogue.c — an opened chain and the catalog: each layer with its
 * row (image_layers_walk), and cataloguing the layers the catalog lacks in
 * one transaction, checking those it has against their headers.  Used by
 * image-import, image-info and image-create (rpc-image.c) and by
 * chain-audit's adopt-storage (audit.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-image.h"
#include "catalog.h"
#include "image-catalogue.h"

void image_layers_free(struct image_layer *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        img_info_clear(&l[i].info);
        catalog_image_clear(&l[i].row);
    }
    free(l);
}

int image_layers_walk(struct gvmd *d, struct resolve_ctx *ctx, struct img *top,
                      struct image_layer **out, size_t *n, struct gvm_error *err)
{
    size_t cnt = 0;
    for (struct img *i = top; i; i = img_backing(i))
        cnt++;
    struct image_layer *l = calloc(cnt, sizeof(*l));
    if (!l)
        return gvm_error_oom(err);
    size_t k = 0;
    for (struct img *i = top; i; i = img_backing(i), k++) {
        l[k].vm = resolve_ctx_lookup(ctx, img_store(i));
        l[k].path = img_path(i);
        if (!l[k].vm) {
            image_layers_free(l, k);
            gvm_error_set(err, GVM_ERR_INTERNAL,
                          "Layer '%s' of the chain was opened on a store "
                          "gvmd cannot name.", img_path(i));
            return -1;
        }
        int r = img_get_info(i, &l[k].info);
        if (r < 0) {
            gvm_error_set_errno(err, r == -EUCLEAN ? GVM_ERR_CORRUPT
                                                   : gvm_error_class_from_errno(r),
                                r, "Reading %s:%s failed", l[k].vm->volume,
                                l[k].path);
            image_layers_free(l, k + 1);
            return -1;
        }
        r = catalog_image_find(d->cat, l[k].vm->volume_id, l[k].path,
                               &l[k].row, err);
        if (r < 0) {
            image_layers_free(l, k + 1);
            return -1;
        }
        l[k].catalogued = r > 0;
    }
    *out = l;
    *n = cnt;
    return 0;
}

struct import_ctx {
    struct image_layer *l;
    size_t n;
};

/* Disagreement between a catalogued row and the header on storage. */
static int check_agrees(const struct image_layer *l, int64_t backing_id,
                        struct gvm_error *err)
{
    const struct catalog_image *r = &l->row;
    const struct img_info *i = &l->info;
    const char *what = NULL;
    char detail[512];

    if (strcmp(r->format, img_format_name(i->format)) != 0) {
        what = "format";
        snprintf(detail, sizeof(detail), "'%s' in the catalog, '%s' on storage",
                 r->format, img_format_name(i->format));
    } else if (r->virtual_size != i->virtual_size) {
        what = "virtual size";
        snprintf(detail, sizeof(detail), "%llu in the catalog, %llu on storage",
                 (unsigned long long)r->virtual_size,
                 (unsigned long long)i->virtual_size);
    } else if ((r->backing_filename == NULL) != (i->backing_filename == NULL) ||
               (r->backing_filename &&
                strcmp(r->backing_filename, i->backing_filename) != 0)) {
        what = "backing file";
        snprintf(detail, sizeof(detail), "'%s' in the catalog, '%s' on storage",
                 r->backing_filename ? r->backing_filename : "(none)",
                 i->backing_filename ? i->backing_filename : "(none)");
    } else if (r->backing_id > 0 && backing_id > 0 && r->backing_id != backing_id) {
        what = "backing image";
        snprintf(detail, sizeof(detail), "id %lld in the catalog, id %lld on storage",
                 (long long)r->backing_id, (long long)backing_id);
    }
    if (!what)
        return 0;
    gvm_error_set(err, GVM_ERR_CONFLICT,
                  "The catalog and storage disagree on the %s of %s:%s (%s); "
                  "run chain-audit.", what, l->vm->volume, l->path, detail);
    return -1;
}

/* In one transaction (catalog_txn): base to top, reuse or add each layer. */
static int import_txn(struct catalog *cat, void *opaque, struct gvm_error *err)
{
    struct import_ctx *ic = opaque;
    int64_t below = 0;

    for (size_t k = ic->n; k-- > 0;) {
        struct image_layer *l = &ic->l[k];
        if (l->catalogued) {
            if (check_agrees(l, below, err) < 0)
                return -1;
            if (l->row.backing_id <= 0 && below > 0 &&
                catalog_image_set_backing(cat, l->row.id, below,
                                          l->info.backing_filename,
                                          l->info.backing_format, err) < 0)
                return -1;
            l->row.backing_id = below;
        } else {
            struct catalog_image *r = &l->row;
            memset(r, 0, sizeof(*r));
            r->volume_id = l->vm->volume_id;
            r->path = strdup(l->path);
            r->volume = strdup(l->vm->volume);
            r->format = strdup(img_format_name(l->info.format));
            r->virtual_size = l->info.virtual_size;
            r->cluster_size = l->info.cluster_size;
            r->backing_id = below;
            r->backing_filename = l->info.backing_filename
                                  ? strdup(l->info.backing_filename) : NULL;
            r->backing_format = l->info.backing_format
                                ? strdup(l->info.backing_format) : NULL;
            r->state = strdup("ready");
            if (!r->path || !r->volume || !r->format || !r->state)
                return gvm_error_oom(err);
            if (catalog_image_add(cat, r, err) < 0)
                return -1;
            l->catalogued = true;
        }
        below = l->row.id;
    }
    return 0;
}

int image_layers_catalogue(struct gvmd *d, struct resolve_ctx *ctx,
                           struct img *top, struct image_layer **out,
                           size_t *n, struct gvm_error *err)
{
    struct import_ctx ic = { 0 };
    if (image_layers_walk(d, ctx, top, &ic.l, &ic.n, err) < 0)
        return -1;
    if (catalog_txn(d->cat, import_txn, &ic, err) < 0) {
        image_layers_free(ic.l, ic.n);
        return -1;
    }
    /* Rows added in a rolled-back transaction would carry stale ids: the
     * transaction committed, so re-read nothing; ids are final. */
    *out = ic.l;
    *n = ic.n;
    return 0;
}

int image_catalogue(struct gvmd *d, struct resolve_ctx *ctx, struct img *top,
                    int64_t *top_id, struct gvm_error *err)
{
    struct image_layer *l = NULL;
    size_t n = 0;

    if (image_layers_catalogue(d, ctx, top, &l, &n, err) < 0)
        return -1;
    *top_id = l[0].row.id;
    image_layers_free(l, n);
    return 0;
}
