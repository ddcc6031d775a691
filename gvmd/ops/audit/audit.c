/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * audit.c — chain-audit: the catalog against the qcow2 headers on storage
 * and against libvirt's domain XML (audit.h).
 *
 * The audit works on "layers": every image the scope reaches, catalogued or
 * not, each named by its registered volume and path.  Starting from the
 * scope's roots (an image, the active images of a domain's disks and the
 * sources its XML names, or everything catalogued), each layer's own header
 * is read (opened read-only without its backing chain) and both the
 * backing image its header names (resolved by resolve.c's rules) and the
 * one its catalog row names are visited in turn, so a chain that storage
 * and the catalog see differently is walked along both.  Differences are
 * collected first; adopt-storage then changes the catalog in one
 * transaction, in an order that keeps every step valid: uncatalogued layers
 * are imported (image_catalogue, image-catalogue.h), then backing edges and
 * header fields are set from the headers, disks are pointed at the images
 * their XML names, and last the rows of files gone from storage are removed
 * where nothing depends on them any more.
 *
 * This file holds the layers and the run; the domains' disks are compared
 * in audit-domain.c and adopt-storage is audit-fix.c (audit-int.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-int.h"
#include "chain-check.h"
#include "jsonutil.h"

static void audit_clear(struct audit *a)
{
    for (size_t i = 0; i < a->n; i++) {
        struct layer *L = &a->l[i];
        free(L->volume);
        free(L->path);
        free(L->name);
        catalog_image_clear(&L->row);
        free(L->read_error);
        img_info_clear(&L->info);
        free(L->bresolve_error);
    }
    free(a->l);
    for (size_t i = 0; i < a->ndisks; i++) {
        free(a->disks[i].domain);
        free(a->disks[i].target);
        free(a->disks[i].xml_desc);
        json_decref(a->disks[i].xml_chain);
    }
    free(a->disks);
    json_decref(a->diffs);
    json_decref(a->domains);
    json_decref(a->fixed);
    json_decref(a->unfixed);
    resolve_ctx_clear(&a->ctx);
}

static int unreadable(struct layer *L, const char *msg, int r,
                      struct gvm_error *err)
{
    L->state = L_UNREADABLE;
    if (msg && *msg)
        L->read_error = strdup(msg);
    else if (asprintf(&L->read_error, "Reading %s failed: %s.", L->name,
                      strerror(-r)) < 0)
        L->read_error = NULL;
    return L->read_error ? 0 : gvm_error_oom(err);
}

/*
 * Read layer i's own header and visit the layers below it: the one its
 * header names and the one its catalog row names.  Problems with the layer
 * itself (missing, unreadable, a backing name that does not resolve) are
 * recorded in it, not returned; -1 only for catalog errors and ENOMEM.
 */
static int examine(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    struct gvm_error e = { 0 };
    enum img_format fmt = IMG_FMT_RAW;
    _cleanup_img_ struct img *img = NULL;
    struct img_resolver res = resolve_img_resolver(&a->ctx);
    size_t bidx = NONE, cbidx = NONE;

    int r = img_probe(L->store, L->path, &fmt);
    if (r == -ESTALE) {
        /* gfapi answers ESTALE for a file another client removed while
         * it still had the inode cached; a fresh lookup then tells. */
        struct gvm_stat sb;
        r = L->store->ops->stat(L->store, L->path, &sb);
        if (r == 0 || r == -ESTALE)
            r = img_probe(L->store, L->path, &fmt);
    }
    /* A catalogued image is read as the format the catalog records, never
     * as its content suggests: a guest writes anything into a raw disk,
     * a qcow2 header naming another VM's image included. */
    enum img_format cfmt;
    if (r == 0 && L->catalogued && img_format_parse(L->row.format, &cfmt) == 0) {
        L->qcow2_in_raw = cfmt == IMG_FMT_RAW && fmt == IMG_FMT_QCOW2;
        fmt = cfmt;
    }
    if (r == -ENOENT) {
        L->state = L_MISSING;
    } else if (r < 0) {
        if (unreadable(L, NULL, r, err) < 0)
            return -1;
    } else if ((r = img_open(L->store, L->path, fmt, IMG_OPEN_NOBACKING, &res,
                             0, &img, &e)) < 0) {
        if (r == -ENOENT)
            L->state = L_MISSING;
        else if (unreadable(L, e.message, r, err) < 0)
            return -1;
    } else if ((r = img_get_info(img, &L->info)) < 0) {
        if (unreadable(L, NULL, r, err) < 0)
            return -1;
    } else {
        L->state = L_PRESENT;
    }

    if (L->state == L_PRESENT && L->info.backing_filename) {
        struct gvm_store *bst = NULL;
        _cleanup_free_ char *bpath = NULL;
        gvm_error_clear(&e);
        r = res.resolve(res.opaque, L->store, L->path, L->info.backing_filename,
                        &bst, &bpath, &e);
        const struct resolve_volmap *vm = r < 0 ? NULL
                                                : resolve_ctx_lookup(&a->ctx, bst);
        if (vm) {
            _cleanup_free_ char *bvol = strdup(vm->volume);
            if (!bvol)
                return gvm_error_oom(err);
            if (audit_layer_visit(a, bvol, bpath, &bidx, err) < 0)
                return -1;
        } else {
            L = &a->l[i];
            if (asprintf(&L->bresolve_error, "%s", e.message[0] ? e.message :
                         "its backing file name resolves to no registered "
                         "volume") < 0) {
                L->bresolve_error = NULL;
                return gvm_error_oom(err);
            }
        }
    }
    L = &a->l[i];               /* audit_layer_visit() may have moved the array */
    if (L->catalogued && L->row.backing_id > 0) {
        if (audit_layer_visit_id(a, L->row.backing_id, &cbidx, err) < 0)
            return -1;
    }
    L = &a->l[i];
    L->bidx = bidx;
    L->cbidx = cbidx;
    return 0;
}

/* {"image", "filename", "format"} of a backing as one side sees it. */
static json_t *backing_json(const struct audit *a, size_t j,
                            const char *filename, const char *format)
{
    return json_pack("{s:o, s:o, s:o}",
                     "image", j != NONE ? audit_layer_ref(&a->l[j]) : json_null(),
                     "filename", gvm_json_str_or_null(filename),
                     "format", gvm_json_str_or_null(format));
}

/*
 * Differences of a layer the catalog lacks: an overlay found beside a
 * catalogued layer, a layer on storage in a chain, or a missing one.
 * *done tells whether the layer was reported here.
 */
static int compare_uncatalogued(struct audit *a, struct layer *L, bool *done,
                                struct gvm_error *err)
{
    const struct img_info *in = &L->info;

    *done = true;
    if (L->state == L_PRESENT && L->overlay) {
        L->diffs |= D_NOTCAT;
        return audit_layer_diff(a->diffs, "not-catalogued", audit_layer_ref(L), NULL, NULL,
                          json_pack("{s:s, s:I, s:o, s:o}", "format",
                                    img_format_name(L->info.format), "virtual-size",
                                    (json_int_t)L->info.virtual_size,
                                    "backing-filename",
                                    gvm_json_str_or_null(L->info.backing_filename),
                                    "backing", L->bidx != NONE
                                        ? audit_layer_ref(&a->l[L->bidx]) : json_null()),
                          NULL, err, "%s is an overlay on storage whose backing "
                          "file is %s, but it is not in the catalog: a commit "
                          "or snapshot-delete that changes or removes its "
                          "backing file is refused until it is catalogued "
                          "(image-import).", L->name, audit_layer_name(a, L->bidx));
    }
    if (L->state == L_PRESENT) {
        L->diffs |= D_NOTCAT;
        return audit_layer_diff(a->diffs, "not-catalogued", audit_layer_ref(L), NULL, NULL,
                          json_pack("{s:s, s:I, s:o}", "format",
                                    img_format_name(in->format), "virtual-size",
                                    (json_int_t)in->virtual_size,
                                    "backing-filename",
                                    gvm_json_str_or_null(in->backing_filename)),
                          NULL, err, "%s is on storage in the chain of a "
                          "catalogued image or disk but not in the catalog.",
                          L->name);
    }
    if (L->state == L_MISSING) {
        L->diffs |= D_MISSING;
        return audit_layer_diff(a->diffs, "missing", audit_layer_ref(L), NULL, NULL, NULL,
                          NULL, err, "%s is named as a backing file or disk "
                          "source but does not exist on storage.", L->name);
    }
    *done = false;
    return 0;
}

/* Format (and a raw layer holding a qcow2 header), virtual size, cluster
 * size: the catalog's against the header's. */
static int compare_header(struct audit *a, struct layer *L,
                          struct gvm_error *err)
{
    const struct catalog_image *row = &L->row;
    const struct img_info *in = &L->info;

    if (L->qcow2_in_raw &&
        audit_layer_diff(a->diffs, "format-hazard", audit_layer_ref(L), NULL,
                   json_string(row->format), json_string("qcow2"), NULL, err,
                   "%s is catalogued as raw but its content starts with a "
                   "qcow2 header, which whoever writes the disk (its guest) "
                   "can put there: gvmd keeps reading it as raw and never "
                   "records it as qcow2; make sure nothing opens it with "
                   "its format probed.", L->name) < 0)
        return -1;
    const char *sfmt = img_format_name(in->format);
    if (strcmp(row->format, sfmt) != 0) {
        L->diffs |= D_FORMAT;
        if (audit_layer_diff(a->diffs, "format", audit_layer_ref(L), NULL,
                       json_string(row->format), json_string(sfmt), NULL, err,
                       "The catalog records %s as %s but storage holds a %s "
                       "image.", L->name, row->format, sfmt) < 0)
            return -1;
    }
    if (row->virtual_size != in->virtual_size) {
        L->diffs |= D_VSIZE;
        if (audit_layer_diff(a->diffs, "virtual-size", audit_layer_ref(L), NULL,
                       json_integer((json_int_t)row->virtual_size),
                       json_integer((json_int_t)in->virtual_size), NULL, err,
                       "The catalog records a virtual size of %" PRIu64 " bytes "
                       "for %s but its header says %" PRIu64 ".",
                       row->virtual_size, L->name, in->virtual_size) < 0)
            return -1;
    }
    if (row->cluster_size != in->cluster_size) {
        L->diffs |= D_CSIZE;
        if (audit_layer_diff(a->diffs, "cluster-size", audit_layer_ref(L), NULL,
                       row->cluster_size ? json_integer(row->cluster_size) : NULL,
                       in->cluster_size ? json_integer(in->cluster_size) : NULL,
                       NULL, err, "The catalog records a cluster size of %u for "
                       "%s but its header says %u.", row->cluster_size, L->name,
                       in->cluster_size) < 0)
            return -1;
    }
    return 0;
}

/* The backing edge: the catalog's against the header's. */
static int compare_backing(struct audit *a, struct layer *L,
                           struct gvm_error *err)
{
    const struct catalog_image *row = &L->row;
    const struct img_info *in = &L->info;
    int64_t sid = audit_layer_id(a, L->bidx);

    if (row->backing_id == sid &&
        gvm_streq0(row->backing_filename, in->backing_filename) &&
        gvm_streq0(row->backing_format, in->backing_format))
        return 0;
    /* A catalog row without an edge above an uncatalogued backing file
     * it names correctly is the not-catalogued difference of that
     * file, reported there. */
    if (row->backing_id == 0 && sid == 0 && L->bidx != NONE &&
        gvm_streq0(row->backing_filename, in->backing_filename) &&
        gvm_streq0(row->backing_format, in->backing_format))
        return 0;
    L->diffs |= D_BACKING;
    char detail[256] = "";
    if (in->backing_filename && L->bidx == NONE)
        snprintf(detail, sizeof(detail), " (%s)",
                 L->bresolve_error ? L->bresolve_error : "unresolved");
    json_t *st = backing_json(a, L->bidx, in->backing_filename,
                              in->backing_format);
    if (st && L->bresolve_error &&
        gvm_json_set(st, "error", json_string(L->bresolve_error)) < 0) {
        json_decref(st);
        return gvm_error_oom(err);
    }

    char cat_side[1024], st_side[1024];
    if (row->backing_id > 0 || row->backing_filename)
        snprintf(cat_side, sizeof(cat_side), "on backing %s (file '%s', "
                 "format %s)", audit_layer_name(a, L->cbidx),
                 gvm_str_or_none(row->backing_filename),
                 gvm_str_or_none(row->backing_format));
    else
        snprintf(cat_side, sizeof(cat_side), "without a backing file");
    if (in->backing_filename)
        snprintf(st_side, sizeof(st_side), "names '%s' (format %s), which "
                 "is %s%s", in->backing_filename,
                 gvm_str_or_none(in->backing_format),
                 audit_layer_name(a, L->bidx), detail);
    else
        snprintf(st_side, sizeof(st_side), "names no backing file");
    return audit_layer_diff(a->diffs, "backing", audit_layer_ref(L), NULL,
                      backing_json(a, L->cbidx, row->backing_filename,
                                   row->backing_format),
                      st, NULL, err, "The catalog records %s %s but its "
                      "header %s.", L->name, cat_side, st_side);
}

/* Differences between a layer's catalog row and its header. */
static int compare_layer(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    const struct catalog_image *row = &L->row;

    if (!L->catalogued) {
        bool done;
        int r = compare_uncatalogued(a, L, &done, err);
        if (done)
            return r;
    }
    if (L->state == L_MISSING) {
        L->diffs |= D_MISSING;
        return audit_layer_diff(a->diffs, "missing", audit_layer_ref(L), NULL,
                          json_string(L->name), NULL, NULL, err,
                          "%s (id %" PRId64 ") is in the catalog but its file "
                          "does not exist on storage.", L->name, row->id);
    }
    if (L->state == L_UNREADABLE) {
        L->diffs |= D_UNREADABLE;
        return audit_layer_diff(a->diffs, "unreadable", audit_layer_ref(L), NULL,
                          L->catalogued ? json_string(row->format) : NULL, NULL,
                          NULL, err, "The header of %s cannot be read: %s",
                          L->name, L->read_error);
    }
    if (L->state != L_PRESENT)
        return 0;
    if (compare_header(a, L, err) < 0)
        return -1;
    return compare_backing(a, L, err);
}

/* ---- the whole audit ------------------------------------------------------------- */

/* Overlays on storage the catalog does not know, backing onto a catalogued
 * layer (a bounded search of its directory, chain-check.h): they become
 * layers (examined, so the layers below are known) reported as
 * not-catalogued. */
static int scan_overlays(struct audit *a, struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = calloc(a->n + 1, sizeof(*ids));
    _cleanup_json_ json_t *found = NULL;
    size_t n = 0, i, first = a->n;
    json_t *o;

    if (!ids)
        return gvm_error_oom(err);
    for (i = 0; i < a->n; i++)
        if (a->l[i].catalogued && a->l[i].state == L_PRESENT)
            ids[n++] = a->l[i].row.id;
    if (chain_check_uncatalogued(a->d, ids, n, &found, NULL, err) < 0)
        return -1;
    json_array_foreach(found, i, o) {
        const char *vol = json_string_value(json_object_get(o, "volume"));
        const char *path = json_string_value(json_object_get(o, "path"));
        size_t idx;

        if (!vol || !path)
            continue;
        if (audit_layer_visit(a, vol, path, &idx, err) < 0)
            return -1;
        if (idx >= first)
            a->l[idx].overlay = true;
    }
    for (i = first; i < a->n; i++)
        if (examine(a, i, err) < 0)
            return -1;
    return 0;
}

static int roots(struct audit *a, const struct audit_scope *s,
                 struct gvm_error *err)
{
    size_t idx;

    if (s->image_id > 0)
        return audit_layer_visit_id(a, s->image_id, &idx, err);
    if (s->domain) {
        struct catalog_domain dom = { 0 };
        if (catalog_domain_find(a->d->cat, s->domain, &dom, err) < 0)
            return -1;
        int r = audit_domain_visit(a, &dom, err);
        catalog_domain_clear(&dom);
        return r;
    }
    struct catalog_image *imgs = NULL;
    size_t n = 0;
    if (catalog_image_list(a->d->cat, 0, &imgs, &n, err) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = audit_layer_visit(a, imgs[i].volume, imgs[i].path, &idx, err);
    catalog_images_free(imgs, n);
    if (r < 0)
        return -1;
    struct catalog_domain *doms = NULL;
    if (catalog_domain_list(a->d->cat, &doms, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n && r == 0; i++)
        r = audit_domain_visit(a, &doms[i], err);
    catalog_domains_free(doms, n);
    return r;
}

int audit_run(struct gvmd *d, const struct audit_scope *s, json_t **result,
              struct gvm_error *err)
{
    struct audit a = { .d = d };
    int ret = -1;

    resolve_ctx_init(&a.ctx, d);
    a.diffs = json_array();
    a.domains = json_array();
    a.fixed = json_array();
    a.unfixed = json_array();
    if (!a.diffs || !a.domains || !a.fixed || !a.unfixed) {
        gvm_error_oom(err);
        goto out;
    }
    if (roots(&a, s, err) < 0)
        goto out;
    /* Examining a layer may add the layers below it: walk until none is
     * left unread. */
    for (size_t i = 0; i < a.n; i++)
        if (examine(&a, i, err) < 0)
            goto out;
    if (scan_overlays(&a, err) < 0)
        goto out;
    for (size_t i = 0; i < a.n; i++)
        if (compare_layer(&a, i, err) < 0)
            goto out;
    for (size_t i = 0; i < a.ndisks; i++)
        if (audit_domain_compare(&a, &a.disks[i], err) < 0)
            goto out;
    if (s->adopt_storage && json_array_size(a.diffs) > 0) {
        if (audit_fix_adopt(&a, err) < 0)
            goto out;
        log_info("chain-audit adopt-storage: %zu difference(s), %zu fixed, "
                 "%zu not fixable.", json_array_size(a.diffs),
                 json_array_size(a.fixed), json_array_size(a.unfixed));
    }
    *result = json_pack("{s:O, s:{s:I, s:I, s:I}, s:O, s:O, s:O}",
                        "differences", a.diffs,
                        "checked", "images", (json_int_t)a.n,
                        "disks", (json_int_t)a.ndisks,
                        "domains", (json_int_t)json_array_size(a.domains),
                        "domains", a.domains, "fixed", a.fixed,
                        "unfixed", a.unfixed);
    ret = *result ? 0 : gvm_error_oom(err);
out:
    audit_clear(&a);
    return ret;
}
