/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-overlay.c — the overlays of a snapshot job (snapshot-overlay.h):
 * reading them from the job's params, creating them on storage under the
 * journal, removing the uncatalogued ones of an unfinished job, and the
 * catalog change that records them.  Both snapshot jobs use these, the
 * offline one (snapshot.c) and the live one (snapshot-live.c); this file
 * calls neither, so the snapshot files call down to it and never back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "jsonutil.h"
#include "resolve.h"
#include "snapshot-overlay.h"
#include "volume.h"


int snapshot_overlays_parse(json_t *p, struct snapshot_overlay **out, size_t *n,
                            struct gvm_error *err)
{
    json_t *a = json_object_get(p, "disks");
    size_t cnt = json_array_size(a);
    struct snapshot_overlay *v = calloc(cnt ? cnt : 1, sizeof(*v));

    if (!v)
        return gvm_error_oom(err);
    for (size_t i = 0; i < cnt; i++) {
        json_t *o = json_array_get(a, i);
        v[i].target = json_string_value(json_object_get(o, "target"));
        v[i].path = json_string_value(json_object_get(o, "path"));
        v[i].bname = json_string_value(json_object_get(o, "backing-name"));
        v[i].bfmt = json_string_value(json_object_get(o, "backing-format"));
        v[i].image = json_integer_value(json_object_get(o, "image"));
        v[i].volume = json_integer_value(json_object_get(o, "volume"));
        v[i].size = (uint64_t)json_integer_value(json_object_get(o, "size"));
        if (!v[i].target || !v[i].path || !v[i].bname || !v[i].bfmt) {
            free(v);
            gvm_error_set(err, GVM_ERR_INTERNAL, "A snapshot job has unusable "
                          "parameters; nothing was changed.");
            return -1;
        }
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* Unlink the overlays [0, n) that are not catalogued. */
void snapshot_overlays_remove(struct gvmd *d, const struct snapshot_overlay *v,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        struct gvm_error e = { 0 };
        struct gvm_store *st = NULL;
        int r = catalog_image_find(d->cat, v[i].volume, v[i].path, &row, &e);

        if (r != 0 || volumes_store_by_id(d->vols, v[i].volume, &st, &e) < 0)
            continue;
        r = st->ops->unlink(st, v[i].path);
        if (r < 0 && r != -ENOENT)
            log_warn("Removing the overlay %s of an unfinished snapshot "
                     "failed: %s", v[i].path, strerror(-r));
    }
}

int snapshot_overlay_create(struct gvmd *d, const struct snapshot_overlay *o,
                            struct gvm_error *err)
{
    _cleanup_catvol_ struct catalog_volume vol = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    struct gvm_store *st = NULL;
    struct img_resolver res;
    struct img_create_opts opts = {
        .format = IMG_FMT_QCOW2, .size = o->size,
        .backing_name = o->bname, .backing_format = o->bfmt,
    };
    int r;

    resolve_ctx_init(&ctx, d);
    if (catalog_volume_get_by_id(d->cat, o->volume, &vol, err) < 0 ||
        volumes_store_by_id(d->vols, o->volume, &st, err) < 0)
        return -1;
    if (resolve_ctx_add(&ctx, st, vol.id, vol.name) < 0)
        return gvm_error_oom(err);
    r = store_mkdir_parents(st, o->path);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Creating the directories of %s:%s failed",
                            vol.name, o->path);
        return -1;
    }
    res = resolve_img_resolver(&ctx);
    r = img_create(st, o->path, &opts, &res, err);
    if (r < 0) {
        struct gvm_error e2 = { 0 };
        if (r != -EEXIST)
            st->ops->unlink(st, o->path);
        gvm_error_set_errno(&e2, r == -EEXIST ? GVM_ERR_ALREADY_EXISTS
                            : gvm_error_class_from_errno(r), r,
                            "Creating the overlay %s:%s for disk %s failed%s%s",
                            vol.name, o->path, o->target,
                            gvm_error_isset(err) ? ": " : "",
                            gvm_error_isset(err) ? err->message : "");
        *err = e2;
        return r == -EEXIST ? -2 : -1;
    }
    return 0;
}

/* The catalog change of a finished overlay job, in the caller's txn. */
static int overlays_commit(struct gvmd *d, json_t *p,
                           const struct snapshot_overlay *v, size_t n,
                           struct gvm_error *err)
{
    const char *kind = json_string_value(json_object_get(p, "kind"));
    int64_t domain = json_integer_value(json_object_get(p, "domain"));
    struct catalog_snapshot s = {
        .name = (char *)json_string_value(json_object_get(p, "name")),
        .domain_id = domain,
        .parent_id = json_integer_value(json_object_get(p, "parent")),
        .description = (char *)json_string_value(json_object_get(p, "description")),
    };
    _cleanup_free_ struct catalog_snapshot_disk *sd = calloc(n ? n : 1, sizeof(*sd));
    int ret = -1;

    if (!sd)
        return gvm_error_oom(err);
    for (size_t i = 0; i < n; i++) {
        struct catalog_image row = {
            .volume_id = v[i].volume, .path = (char *)v[i].path,
            .format = (char *)"qcow2", .virtual_size = v[i].size,
            .cluster_size = 65536, .backing_id = v[i].image,
            .backing_filename = (char *)v[i].bname,
            .backing_format = (char *)v[i].bfmt,
        };
        if (catalog_image_add(d->cat, &row, err) < 0)
            goto out;
        sd[i] = (struct catalog_snapshot_disk){ .target = (char *)v[i].target,
                                                .image_id = v[i].image,
                                                .overlay_id = row.id };
        if (domain > 0 && catalog_domain_set_disk(d->cat, domain, v[i].target,
                                                  row.id, err) < 0)
            goto out;
    }
    if (strcmp(kind, "create") == 0) {
        s.disks = sd;
        s.ndisks = n;
        if (catalog_snapshot_add(d->cat, &s, err) < 0)
            goto out;
    }
    ret = 0;
out:
    return ret;
}

int snapshot_overlays_create_all(struct gvmd *d, struct journal_op *op,
                                 const struct snapshot_overlay *v, size_t n,
                                 const char *fault, const char *name,
                                 size_t *made, struct gvm_error *err)
{
    int r;

    *made = 0;
    for (size_t i = 0; i < n; i++) {
        _cleanup_json_ json_t *sp = json_pack("{s:i}", "index", (int)i);

        if (!sp)
            return gvm_error_oom(err);
        if (journal_step(op, "create-overlay", sp, err) < 0)
            return -1;
        r = snapshot_overlay_create(d, &v[i], err);
        if (r == -1)
            *made = i + 1;     /* a half-made file may be left: remove it */
        if (r < 0)
            return -1;
        *made = i + 1;
    }
    r = journal_fault_point(fault);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Fault injected after "
                            "creating the overlays of %s", name);
        return -1;
    }
    return 0;
}

int snapshot_overlays_record(struct gvmd *d, struct journal_op *op, json_t *p,
                             const struct snapshot_overlay *v, size_t n,
                             struct gvm_error *err)
{
    if (catalog_begin(d->cat, err) < 0)
        return -1;
    if (journal_step(op, "commit-catalog", NULL, err) < 0 ||
        overlays_commit(d, p, v, n, err) < 0) {
        catalog_rollback(d->cat);
        return -1;
    }
    return catalog_commit(d->cat, err);
}
