/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * audit-fix.c — chain-audit's adopt-storage: the catalog brought into line
 * with storage and with the domain XML in one catalog transaction, in an
 * order that keeps every step valid (audit.c's header comment), and what
 * it does not change listed as unfixed (audit-int.h).
 */
#include <inttypes.h>

#include "audit-int.h"
#include "catalog-job.h"
#include "catalog.h"
#include "image-catalogue.h"

/* Catalogue layer i (NOBACKING: its own row; edges come afterwards). */
static int import_layer(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    _cleanup_img_ struct img *img = NULL;
    struct img_resolver res = resolve_img_resolver(&a->ctx);
    int64_t id;

    int r = img_open(L->store, L->path, L->info.format, IMG_OPEN_NOBACKING,
                     &res, 0, &img, err);
    if (r < 0) {
        if (!gvm_error_isset(err))
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "Opening %s to import it failed", L->name);
        return -1;
    }
    if (image_catalogue(a->d, &a->ctx, img, &id, err) < 0)
        return -1;
    catalog_image_clear(&L->row);
    if (catalog_image_get(a->d->cat, id, &L->row, err) < 0)
        return -1;
    L->catalogued = true;
    L->imported = true;
    return audit_layer_action(a->fixed, "not-catalogued", audit_layer_ref(L), NULL, err,
                        "Imported %s as image %" PRId64 ".", L->name, id);
}

static int fix_backing(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    const struct img_info *in = &L->info;
    int64_t sid = audit_layer_id(a, L->bidx);

    if (L->row.backing_id == sid &&
        gvm_streq0(L->row.backing_filename, in->backing_filename) &&
        gvm_streq0(L->row.backing_format, in->backing_format))
        return 0;
    if (catalog_image_set_backing(a->d->cat, L->row.id, sid, in->backing_filename,
                                  in->backing_format, err) < 0)
        return -1;
    L->row.backing_id = sid;
    return audit_layer_action(a->fixed, "backing", audit_layer_ref(L), NULL, err,
                        "Recorded %s on backing %s ('%s', format %s) as its "
                        "header says.", L->name,
                        in->backing_filename ? audit_layer_name(a, L->bidx) : "none",
                        gvm_str_or_none(in->backing_filename),
                        gvm_str_or_none(in->backing_format));
}

static int fix_header(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    const struct img_info *in = &L->info;
    const char *fmt = img_format_name(in->format);

    if (catalog_image_set_header(a->d->cat, L->row.id, fmt, in->virtual_size,
                                 in->cluster_size, err) < 0)
        return -1;
    return audit_layer_action(a->fixed, (L->diffs & D_FORMAT) ? "format" :
                        (L->diffs & D_VSIZE) ? "virtual-size" : "cluster-size",
                        audit_layer_ref(L), NULL, err, "Recorded %s as %s, %" PRIu64
                        " bytes, cluster size %u, as its header says.", L->name,
                        fmt, in->virtual_size, in->cluster_size);
}

static int fix_missing(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    struct gvm_error e = { 0 };

    if (catalog_image_delete(a->d->cat, L->row.id, &e) == 0)
        return audit_layer_action(a->fixed, "missing", audit_layer_ref(L), NULL, err,
                            "Removed %s (id %" PRId64 "), whose file is gone, "
                            "from the catalog.", L->name, L->row.id);
    if (e.cls != GVM_ERR_IN_USE) {
        *err = e;
        return -1;
    }
    return audit_layer_action(a->unfixed, "missing", audit_layer_ref(L), NULL, err,
                        "%s (id %" PRId64 ") stays in the catalog although its "
                        "file is gone: %s", L->name, L->row.id, e.message);
}

/* Refuse to adopt storage under a job that is rewriting it. */
static int check_locks(struct audit *a, struct gvm_error *err)
{
    for (size_t i = 0; i < a->n; i++) {
        if (!a->l[i].catalogued || !a->l[i].diffs)
            continue;
        int64_t job = catalog_job_lock_holder(a->d->cat, a->l[i].row.id, err);
        if (job < 0)
            return -1;
        if (job > 0) {
            gvm_error_set(err, GVM_ERR_BUSY, "Cannot adopt storage for %s: "
                          "job %" PRId64 " holds it and may be changing its "
                          "header; wait for the job to conclude and audit "
                          "again.", a->l[i].name, job);
            return -1;
        }
    }
    return 0;
}

int audit_fix_adopt(struct audit *a, struct gvm_error *err)
{
    struct catalog *cat = a->d->cat;

    if (check_locks(a, err) < 0)
        return -1;
    if (catalog_begin(cat, err) < 0)
        return -1;
    /* 1. Rows for the layers storage has and the catalog lacks. */
    for (size_t i = 0; i < a->n; i++)
        if ((a->l[i].diffs & D_NOTCAT) && import_layer(a, i, err) < 0)
            goto fail;
    /* 2. Backing edges and header fields as the headers say. */
    for (size_t i = 0; i < a->n; i++) {
        struct layer *L = &a->l[i];
        if (!L->catalogued || L->state != L_PRESENT)
            continue;
        if (fix_backing(a, i, err) < 0)
            goto fail;
        if ((L->diffs & (D_FORMAT | D_VSIZE | D_CSIZE)) && fix_header(a, i, err) < 0)
            goto fail;
    }
    /* 3. Disks follow the domain XML. */
    for (size_t i = 0; i < a->ndisks; i++) {
        struct disk *k = &a->disks[i];
        if (!k->adoptable)
            continue;
        const struct layer *X = &a->l[k->xml_idx];
        if (catalog_domain_set_disk(cat, k->domain_id, k->target, X->row.id,
                                    err) < 0)
            goto fail;
        if (audit_layer_action(a->fixed, k->cat_image ? "active-layer" : "disk",
                         audit_layer_ref(X), audit_layer_disk_ref(k), err, "Recorded %s as the "
                         "active layer of disk %s of domain %s, as its XML says.",
                         X->name, k->target, k->domain) < 0)
            goto fail;
    }
    /* 4. Rows of files gone, top first so a missing child frees its
     *    missing parent; a row something still needs stays. */
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].catalogued && (a->l[i].diffs & D_MISSING) &&
            fix_missing(a, i, err) < 0)
            goto fail;
    /* What adopt-storage does not change. */
    for (size_t i = 0; i < a->n; i++)
        if (!a->l[i].catalogued && (a->l[i].diffs & D_MISSING) &&
            audit_layer_action(a->unfixed, "missing", audit_layer_ref(&a->l[i]), NULL, err,
                         "%s does not exist; restore it, or rebase the images "
                         "naming it as their backing file.", a->l[i].name) < 0)
            goto fail;
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].qcow2_in_raw &&
            audit_layer_action(a->unfixed, "format-hazard", audit_layer_ref(&a->l[i]), NULL,
                         err, "%s stays raw: a format is never taken from "
                         "what a guest can write.", a->l[i].name) < 0)
            goto fail;
    for (size_t i = 0; i < a->n; i++)
        if ((a->l[i].diffs & D_UNREADABLE) &&
            audit_layer_action(a->unfixed, "unreadable", audit_layer_ref(&a->l[i]), NULL, err,
                         "%s cannot be read; repair or restore it first.",
                         a->l[i].name) < 0)
            goto fail;
    for (size_t i = 0; i < a->ndisks; i++) {
        struct disk *k = &a->disks[i];
        if (k->in_xml && !k->adoptable && (k->cat_image == 0 ||
            k->xml_idx == NONE || !a->l[k->xml_idx].catalogued ||
            a->l[k->xml_idx].row.id != k->cat_image) &&
            audit_layer_action(a->unfixed, k->cat_image ? "active-layer" : "disk",
                         NULL, audit_layer_disk_ref(k), err, "Disk %s of domain %s "
                         "uses %s, which is not an image gvmd can catalogue.",
                         k->target, k->domain, k->xml_desc) < 0)
            goto fail;
    }
    if (catalog_commit(cat, err) < 0)
        return -1;
    return 0;
fail:
    catalog_rollback(cat);
    return -1;
}
