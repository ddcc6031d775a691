/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * audit-layer.c — the layers chain-audit visits and the JSON of its
 * report: a layer is visited once (by VOLUME:PATH or catalog id), read
 * from storage as it is (header, backing name and what it resolves to),
 * and named in findings.  audit.c (the run and the comparison with the
 * catalog), audit-domain.c and audit-fix.c build on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-int.h"
#include "jsonutil.h"

/* ---- JSON pieces ------------------------------------------------------------ */

json_t *audit_layer_ref(const struct layer *L)
{
    return json_pack("{s:o, s:s}", "id", L->catalogued ? json_integer(L->row.id)
                                                      : json_null(),
                     "name", L->name);
}

json_t *audit_layer_disk_ref(const struct disk *k)
{
    return json_pack("{s:s, s:s}", "domain", k->domain, "target", k->target);
}

int audit_layer_diff(json_t *list, const char *what, json_t *image,
               json_t *disk, json_t *catalog, json_t *storage,
               json_t *domain, struct gvm_error *err, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    if (r < 0 || !o) {
        free(r < 0 ? NULL : msg);
        json_decref(o);
        json_decref(image);
        json_decref(disk);
        json_decref(catalog);
        json_decref(storage);
        json_decref(domain);
        return gvm_error_oom(err);
    }
    /* Every set runs, so each member is owned by o or freed. */
    int bad = gvm_json_set(o, "what", json_string(what));
    bad |= gvm_json_set(o, "image", image ? image : json_null());
    bad |= gvm_json_set(o, "disk", disk ? disk : json_null());
    bad |= gvm_json_set(o, "catalog", catalog ? catalog : json_null());
    bad |= gvm_json_set(o, "storage", storage ? storage : json_null());
    bad |= gvm_json_set(o, "domain", domain ? domain : json_null());
    bad |= gvm_json_set(o, "message", json_string(msg));
    free(msg);
    if (bad) {
        json_decref(o);
        return gvm_error_oom(err);
    }
    if (gvm_json_append(list, o) < 0)
        return gvm_error_oom(err);
    return 0;
}

int audit_layer_action(json_t *list, const char *what, json_t *image,
                 json_t *disk, struct gvm_error *err, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    json_t *o = r < 0 ? NULL : json_pack("{s:s, s:o, s:o, s:s}", "what", what,
                                         "image", image ? image : json_null(),
                                         "disk", disk ? disk : json_null(),
                                         "action", msg);
    if (r >= 0)
        free(msg);
    if (gvm_json_append(list, o) < 0)
        return gvm_error_oom(err);
    return 0;
}

/* ---- layers ------------------------------------------------------------------- */

static size_t find_layer(const struct audit *a, int64_t volume_id,
                         const char *path)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].volume_id == volume_id && strcmp(a->l[i].path, path) == 0)
            return i;
    return NONE;
}

int audit_layer_visit(struct audit *a, const char *volume, const char *path,
                size_t *idx, struct gvm_error *err)
{
    struct catalog_volume vol = { 0 };
    struct gvm_store *st = NULL;

    if (resolve_volume(a->d, volume, &vol, &st, err) < 0)
        return -1;
    size_t i = find_layer(a, vol.id, path);
    if (i != NONE) {
        catalog_volume_clear(&vol);
        *idx = i;
        return 0;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct layer *l = realloc(a->l, cap * sizeof(*l));
        if (!l) {
            catalog_volume_clear(&vol);
            return gvm_error_oom(err);
        }
        a->l = l;
        a->cap = cap;
    }
    struct layer *L = &a->l[a->n];
    memset(L, 0, sizeof(*L));
    L->volume_id = vol.id;
    L->volume = strdup(vol.name);
    L->path = strdup(path);
    L->name = resolve_name(vol.name, path);
    L->store = st;
    L->bidx = L->cbidx = NONE;
    int r = resolve_ctx_add(&a->ctx, st, vol.id, vol.name);
    catalog_volume_clear(&vol);
    a->n++;                     /* owned by a from here on */
    if (!L->volume || !L->path || !L->name || r < 0)
        return gvm_error_oom(err);
    r = catalog_image_find(a->d->cat, L->volume_id, L->path, &L->row, err);
    if (r < 0)
        return -1;
    L->catalogued = r > 0;
    *idx = a->n - 1;
    return 0;
}

int audit_layer_visit_id(struct audit *a, int64_t id, size_t *idx,
                   struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    if (catalog_image_get(a->d->cat, id, &row, err) < 0)
        return -1;
    return audit_layer_visit(a, row.volume, row.path, idx, err);
}

int64_t audit_layer_id(const struct audit *a, size_t j)
{
    return j != NONE && a->l[j].catalogued ? a->l[j].row.id : 0;
}

const char *audit_layer_name(const struct audit *a, size_t j)
{
    return j != NONE ? a->l[j].name : "no image";
}
