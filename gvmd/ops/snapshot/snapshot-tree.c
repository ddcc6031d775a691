/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-tree.c — reading the snapshot tree (snapshot-tree.h).
 *
 * Model.  A snapshot records per disk the image it froze (snapshot_disks
 * image_id) and the overlay that became active on top of it.  The tree
 * goes through parent_id.  A domain's *current* snapshot is found from
 * storage's point of view: walking down the backing chain of the domain's
 * (first) active image, the first image frozen by one of its snapshots.
 * So after a revert to S (new overlays on S's frozen images) S is current,
 * and the next snapshot becomes a new child of S: a branch beside S's
 * older children, whose images stay untouched.  A snapshot of bare images
 * is current while its overlays are still the tops of their chains.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "jsonutil.h"
#include "resolve.h"
#include "snapshot-tree.h"


static char *image_name(const struct catalog_image *row)
{
    return resolve_name(row->volume, row->path);
}

const char *snapshot_tree_key(json_t *key, char buf[32], struct gvm_error *err)
{
    const char *k = json_string_value(key);

    if (json_is_integer(key)) {
        snprintf(buf, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(key));
        k = buf;
    }
    if (!k)
        gvm_error_param(err, "snapshot", "Parameter 'snapshot' must be a name or an id.");
    return k;
}

int64_t snapshot_tree_find_below(struct gvmd *d, int64_t image_id,
                                 bool include_self, int64_t domain_id,
                                 struct gvm_error *err)
{
    int64_t id = image_id;

    for (unsigned depth = 0; id > 0 && depth <= IMG_MAX_CHAIN_DEPTH; depth++) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        int64_t sid = 0;
        int r;

        if (depth > 0 || include_self) {
            r = catalog_snapshot_frozen_by(d->cat, id, &sid, err);
            if (r < 0)
                return -1;
            if (r > 0) {
                _cleanup_catsnap_ struct catalog_snapshot s = { 0 };
                if (catalog_snapshot_get(d->cat, sid, &s, err) < 0)
                    return -1;
                if (s.domain_id == domain_id)
                    return sid;
            }
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        id = row.backing_id;
    }
    return 0;
}

int64_t snapshot_tree_current(struct gvmd *d, int64_t domain_id,
                              struct gvm_error *err)
{
    _cleanup_catdom_ struct catalog_domain dom = { 0 };

    if (catalog_domain_get(d->cat, domain_id, &dom, err) < 0)
        return -1;
    if (dom.ndisks == 0)
        return 0;
    return snapshot_tree_find_below(d, dom.disks[0].image_id, false, domain_id,
                                    err);
}

static json_t *image_ref_json(struct gvmd *d, int64_t id)
{
    struct gvm_error e = { 0 };
    _cleanup_catimg_ struct catalog_image row = { 0 };

    if (id <= 0 || catalog_image_get(d->cat, id, &row, &e) < 0)
        return json_null();
    char *n = image_name(&row);
    json_t *s = n ? json_string(n) : json_null();
    free(n);
    return s;
}

/* SNAPSHOT.  all: every snapshot (for parent/children names). */
static json_t *snap_json(struct gvmd *d, const struct catalog_snapshot *s,
                         const struct catalog_snapshot *all, size_t nall,
                         struct gvm_error *err)
{
    _cleanup_json_ json_t *o = json_object();
    json_t *children = json_array(), *disks = json_array();
    bool current = false;
    int bad;

    if (!o || !children || !disks) {
        json_decref(children);
        json_decref(disks);
        gvm_error_oom(err);
        return NULL;
    }
    /* o owns them now, or they are freed: not used after a failure. */
    bad = gvm_json_set(o, "children", children);
    bad |= gvm_json_set(o, "disks", disks);
    if (bad) {
        gvm_error_oom(err);
        return NULL;
    }
    bad |= gvm_json_set(o, "id", json_integer(s->id));
    bad |= gvm_json_set(o, "name", json_string(s->name));
    bad |= gvm_json_set(o, "description", s->description
                        ? json_string(s->description) : json_null());
    bad |= gvm_json_set(o, "state", json_string(s->state));
    bad |= gvm_json_set(o, "created", json_integer(s->created));
    bad |= gvm_json_set(o, "parent", json_null());
    for (size_t i = 0; i < nall; i++) {
        if (all[i].id == s->parent_id)
            bad |= gvm_json_set(o, "parent", json_string(all[i].name));
        if (all[i].parent_id == s->id)
            bad |= gvm_json_append(children, json_string(all[i].name));
    }
    if (s->domain_id > 0) {
        _cleanup_catdom_ struct catalog_domain dom = { 0 };
        if (catalog_domain_get(d->cat, s->domain_id, &dom, err) < 0)
            return NULL;
        bad |= gvm_json_set(o, "domain", json_string(dom.name));
        bad |= gvm_json_set(o, "domain-uuid", json_string(dom.uuid));
        int64_t cur = snapshot_tree_current(d, s->domain_id, err);
        if (cur < 0)
            return NULL;
        current = cur == s->id;
    } else {
        /* Bare images: current while its overlays are still the tops. */
        bad |= gvm_json_set(o, "domain", json_null());
        current = s->ndisks > 0;
        for (size_t i = 0; i < s->ndisks && current; i++) {
            _cleanup_free_ int64_t *ids = NULL;
            size_t n = 0;
            if (s->disks[i].overlay_id <= 0) {
                current = false;
                break;
            }
            if (catalog_image_children(d->cat, s->disks[i].overlay_id, &ids,
                                       &n, err) < 0)
                return NULL;
            current = n == 0;
        }
    }
    bad |= gvm_json_set(o, "current", json_boolean(current));
    for (size_t i = 0; i < s->ndisks; i++) {
        const struct catalog_snapshot_disk *k = &s->disks[i];
        json_t *dj = json_pack("{s:s, s:I, s:o, s:o, s:o}",
                               "target", k->target,
                               "image", (json_int_t)k->image_id,
                               "image-name", image_ref_json(d, k->image_id),
                               "overlay", k->overlay_id > 0
                                   ? json_integer(k->overlay_id) : json_null(),
                               "overlay-name", image_ref_json(d, k->overlay_id));
        if (gvm_json_append(disks, dj) < 0) {
            gvm_error_oom(err);
            return NULL;
        }
    }
    if (bad) {
        gvm_error_oom(err);
        return NULL;
    }
    return steal_pointer(&o);
}

json_t *snapshot_tree_json_by_id(struct gvmd *d, int64_t id,
                                 struct gvm_error *err)
{
    struct catalog_snapshot *all = NULL;
    size_t n = 0;
    json_t *r = NULL;

    if (catalog_snapshot_list(d->cat, &all, &n, err) < 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (all[i].id == id)
            r = snap_json(d, &all[i], all, n, err);
    }
    if (!r && !gvm_error_isset(err))
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "Snapshot %" PRId64 " is no longer in the catalog (deleted meanwhile).", id);
    catalog_snapshots_free(all, n);
    return r;
}

int snapshot_tree_info(struct gvmd *d, json_t *params, json_t **result,
                       struct gvm_error *err)
{
    _cleanup_catsnap_ struct catalog_snapshot s = { 0 };
    char buf[32];
    const char *k = snapshot_tree_key(json_object_get(params, "snapshot"), buf, err);

    if (!k)
        return -1;
    if (catalog_snapshot_find(d->cat, k, &s, err) < 0)
        return -1;
    *result = snapshot_tree_json_by_id(d, s.id, err);
    return *result ? 0 : -1;
}

/* Ids of the catalogued chain of image id (id first). */
static int chain_ids(struct gvmd *d, int64_t id, int64_t *ids, size_t *n,
                     struct gvm_error *err)
{
    *n = 0;
    while (id > 0 && *n < IMG_MAX_CHAIN_DEPTH + 1) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        ids[(*n)++] = id;
        id = row.backing_id;
    }
    return 0;
}

int snapshot_tree_list(struct gvmd *d, json_t *params, json_t **result,
                       struct gvm_error *err)
{
    const char *domain = json_string_value(json_object_get(params, "domain"));
    json_t *image = json_object_get(params, "image");
    struct catalog_snapshot *all = NULL;
    size_t n = 0, nchain = 0;
    int64_t dom_id = -1, chain[IMG_MAX_CHAIN_DEPTH + 1];
    _cleanup_json_ json_t *a = json_array();
    int ret = -1;

    if (!a)
        return gvm_error_oom(err);
    if (domain && image) {
        gvm_error_param(err, "image", "Give either 'domain' or 'image' to "
                        "snapshot-list, not both.");
        return -1;
    }
    if (domain) {
        _cleanup_catdom_ struct catalog_domain dom = { 0 };
        if (catalog_domain_find(d->cat, domain, &dom, err) < 0)
            return -1;
        dom_id = dom.id;
    }
    if (image) {
        struct resolved r = { 0 };
        if (resolve_param(d, params, "image", &r, err) < 0)
            return -1;
        if (!r.catalogued) {
            gvm_error_set(err, GVM_ERR_NOT_FOUND, "The image %s:%s is not in "
                          "the catalog.", r.vol.name, r.path);
            resolved_clear(&r);
            return -1;
        }
        int64_t top = r.row.id;
        resolved_clear(&r);
        if (chain_ids(d, top, chain, &nchain, err) < 0)
            return -1;
    }
    if (catalog_snapshot_list(d->cat, &all, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool want = dom_id < 0 || all[i].domain_id == dom_id;
        if (image) {
            want = false;
            for (size_t j = 0; j < all[i].ndisks; j++) {
                for (size_t c = 0; c < nchain; c++) {
                    if (all[i].disks[j].image_id == chain[c] ||
                        all[i].disks[j].overlay_id == chain[c])
                        want = true;
                }
            }
        }
        if (!want)
            continue;
        json_t *o = snap_json(d, &all[i], all, n, err);
        if (!o)
            goto out;
        if (gvm_json_append(a, o) < 0) {
            gvm_error_oom(err);
            goto out;
        }
    }

    *result = steal_pointer(&a);
    ret = 0;
out:
    catalog_snapshots_free(all, n);
    return ret;
}
