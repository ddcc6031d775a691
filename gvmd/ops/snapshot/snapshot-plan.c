/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-plan.c — planning snapshot-create and snapshot-revert
 * (snapshot-plan.h).  Nothing here writes: a plan is checked whole before
 * the overlay job starts, so a refused snapshot changes nothing.
 *
 * Overlay paths default to "<dir of the active image>/<BASE>.<snapshot>.qcow2"
 * (revert: "<BASE>.<snapshot>-revert.qcow2"), where BASE is the file name of
 * the chain's bottom image without its extension and without the
 * ".<snapshot>" parts an earlier default name added (names of the chain's or
 * its domain's snapshots only: a user's dotted name is kept), so names do not
 * grow with each snapshot.  A name taken (on storage, in the catalog or by
 * another disk of the plan) gets "-2", "-3".. before ".qcow2"; a path the
 * caller gives is refused when taken.  A snapshot
 * without a domain freezes bare catalogued images (targets "disk0".. unless
 * given) that no domain uses and no snapshot froze.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imageref.h"
#include "jsonutil.h"
#include "resolve.h"
#include "snapshot-plan.h"
#include "snapshot-run.h"
#include "volume.h"

int snapshot_plan_check_name(const char *name, const char *param,
                             struct gvm_error *err)
{
    size_t len = strlen(name);

    if (len == 0 || len > 64 || name[0] == '.' || name[0] == '-') {
        gvm_error_param(err, param, "The snapshot name '%s' must be 1 to 64 "
                        "characters and not start with '.' or '-'.", name);
        return -1;
    }
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) {
            gvm_error_param(err, param, "The snapshot name '%s' may hold only "
                            "letters, digits, '.', '_' and '-'.", name);
            return -1;
        }
    }
    return 0;
}

void snapshot_plan_clear(struct snapshot_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].target);
        catalog_image_clear(&p->v[i].active);
        catalog_volume_clear(&p->v[i].vol);
        free(p->v[i].overlay);
    }
    free(p->v);
    memset(p, 0, sizeof(*p));
}

static struct snapshot_plan_disk *plan_add(struct snapshot_plan *p)
{
    struct snapshot_plan_disk *n = realloc(p->v, (p->n + 1) * sizeof(*n));
    if (!n)
        return NULL;
    p->v = n;
    memset(&n[p->n], 0, sizeof(n[0]));
    return &n[p->n++];
}

/* Does tail (not NUL-terminated, len bytes) read "<name>", "<name>-revert",
 * or either with "-N" after it: a name this file gave? */
static bool tail_is_ours(const char *tail, size_t len, const char *name)
{
    size_t nl = strlen(name);

    if (len < nl || memcmp(tail, name, nl) != 0)
        return false;
    tail += nl;
    len -= nl;
    if (len >= 7 && memcmp(tail, "-revert", 7) == 0) {
        tail += 7;
        len -= 7;
    }
    if (len == 0)
        return true;
    if (len < 2 || tail[0] != '-')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isdigit((unsigned char)tail[i]))
            return false;
    return true;
}

/* Is snapshot s one of the chain's (ids[0..n)) or of its domain dom_id? */
static bool snapshot_of_chain(const struct catalog_snapshot *s, int64_t dom_id,
                              const int64_t *ids, size_t n)
{
    if (dom_id > 0 && s->domain_id == dom_id)
        return true;
    for (size_t k = 0; k < s->ndisks; k++)
        for (size_t i = 0; i < n; i++)
            if (s->disks[k].image_id == ids[i] || s->disks[k].overlay_id == ids[i])
                return true;
    return false;
}

/* Cut from stem every ".<snapshot>" (with its "-revert" and "-N") that an
 * earlier overlay name added, so that names do not grow with each snapshot:
 * only names of the chain's snapshots count, a user's dotted name stays. */
static int strip_snapshot_names(struct gvmd *d, char *stem, int64_t dom_id,
                                const int64_t *ids, size_t nids,
                                struct gvm_error *err)
{
    struct catalog_snapshot *all = NULL;
    size_t nall = 0;
    bool cut = true;

    if (catalog_snapshot_list(d->cat, &all, &nall, err) < 0)
        return -1;
    while (cut) {
        cut = false;
        size_t len = strlen(stem);
        for (char *dot = strrchr(stem, '.'); dot && dot > stem && !cut;) {
            for (size_t j = 0; j < nall && !cut; j++) {
                if (tail_is_ours(dot + 1, len - (size_t)(dot + 1 - stem), all[j].name) &&
                    snapshot_of_chain(&all[j], dom_id, ids, nids)) {
                    *dot = '\0';
                    cut = true;
                }
            }
            /* The previous dot, for snapshot names that hold one. */
            while (!cut && --dot > stem && *dot != '.')
                ;
        }
    }
    catalog_snapshots_free(all, nall);
    return 0;
}

/* The stem overlay names start with: the chain's bottom image's file name
 * without its extension and without the snapshot names gvmd added. */
static char *overlay_stem(struct gvmd *d, const struct catalog_image *active,
                          int64_t dom_id, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image bottom = { 0 };
    int64_t ids[IMG_MAX_CHAIN_DEPTH + 1];
    size_t nids = 0;
    int64_t id = active->id;

    for (; id > 0 && nids <= IMG_MAX_CHAIN_DEPTH; nids++) {
        catalog_image_clear(&bottom);
        if (catalog_image_get(d->cat, id, &bottom, err) < 0)
            return NULL;
        ids[nids] = id;
        id = bottom.backing_id;
    }
    const char *base = strrchr(bottom.path, '/');
    base = base ? base + 1 : bottom.path;
    const char *dot = strrchr(base, '.');
    char *stem = strndup(base, dot && dot != base ? (size_t)(dot - base) : strlen(base));
    if (!stem) {
        gvm_error_oom(err);
        return NULL;
    }
    if (strip_snapshot_names(d, stem, dom_id, ids, nids, err) < 0) {
        free(stem);
        return NULL;
    }
    return stem;
}

static int path_taken(struct gvmd *d, const struct catalog_volume *vol,
                      const char *path, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    struct gvm_store *st = NULL;
    struct gvm_stat sb;
    int r = catalog_image_find(d->cat, vol->id, path, &row, err);

    if (r != 0)
        return r;
    if (volumes_store_by_id(d->vols, vol->id, &st, err) < 0)
        return -1;
    r = st->ops->stat(st, path, &sb);
    if (r == 0)
        return 1;
    if (r != -ENOENT) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Looking up %s:%s failed", vol->name, path);
        return -1;
    }
    return 0;
}

/* Taken on storage, in the catalog, or by an earlier disk of the plan? */
static int plan_path_taken(struct gvmd *d, const struct snapshot_plan *p,
                           const struct snapshot_plan_disk *pd, const char *path,
                           struct gvm_error *err)
{
    for (const struct snapshot_plan_disk *o = p->v; o < pd; o++)
        if (o->vol.id == pd->vol.id && strcmp(o->overlay, path) == 0)
            return 1;
    return path_taken(d, &pd->vol, path, err);
}

/* "<dir of the active image>/<stem>.<tag>.qcow2", or the first of
 * "<stem>.<tag>-2.qcow2", "-3".. that is free. */
static char *default_overlay(struct gvmd *d, const struct snapshot_plan *p,
                             const struct snapshot_plan_disk *pd, int64_t dom_id,
                             const char *tag, struct gvm_error *err)
{
    _cleanup_free_ char *stem = overlay_stem(d, &pd->active, dom_id, err);
    const char *slash = strrchr(pd->active.path, '/');
    int dirlen = slash ? (int)(slash - pd->active.path) + 1 : 0;

    if (!stem)
        return NULL;
    for (int n = 1; n <= 1000; n++) {
        char *out = NULL;
        char num[16] = "";
        if (n > 1)
            snprintf(num, sizeof(num), "-%d", n);
        if (asprintf(&out, "%.*s%s.%s%s.qcow2", dirlen, pd->active.path,
                     stem, tag, num) < 0) {
            gvm_error_oom(err);
            return NULL;
        }
        int r = plan_path_taken(d, p, pd, out, err);
        if (r == 0)
            return out;
        free(out);
        if (r < 0)
            return NULL;
    }
    gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "No free overlay name "
                  "%s.%s-N.qcow2 beside %s:%s.", stem, tag, pd->vol.name,
                  pd->active.path);
    return NULL;
}

/* Fill the last disk of p: its active image, volume and overlay path (the
 * given one, else the default for tag). */
static int plan_fill(struct gvmd *d, struct snapshot_plan *p, int64_t image_id,
                     int64_t dom_id, const char *overlay, const char *tag,
                     const char *param, struct gvm_error *err)
{
    struct snapshot_plan_disk *pd = &p->v[p->n - 1];

    if (catalog_image_get(d->cat, image_id, &pd->active, err) < 0)
        return -1;
    if (catalog_volume_get_by_id(d->cat, pd->active.volume_id, &pd->vol, err) < 0)
        return -1;
    if (strcmp(pd->active.state, "ready") != 0) {
        gvm_error_set(err, GVM_ERR_IN_USE, "The image %s:%s is %s.",
                      pd->vol.name, pd->active.path, pd->active.state);
        return -1;
    }
    if (overlay) {
        if (path_check(overlay, param, err) < 0)
            return -1;
        pd->overlay = strdup(overlay);
    } else {
        pd->overlay = default_overlay(d, p, pd, dom_id, tag, err);
        if (!pd->overlay)
            return -1;
    }
    return pd->overlay ? 0 : gvm_error_oom(err);
}

int snapshot_plan_create_disk(struct gvmd *d, struct snapshot_plan *p,
                              json_t *dj, const struct catalog_domain *dom,
                              size_t i, const char *name, struct gvm_error *err)
{
    const char *target = dj ? json_string_value(json_object_get(dj, "target")) : dom->disks[i].target;
    const char *overlay = dj ? json_string_value(json_object_get(dj, "overlay")) : NULL;
    json_t *iref = dj ? json_object_get(dj, "image") : NULL;
    struct snapshot_plan_disk *pd = plan_add(p);
    int64_t image_id = 0;
    char tbuf[32];

    if (!pd)
        return gvm_error_oom(err);
    if (dj && (!json_is_object(dj) || (!target && !iref) ||
               (json_object_get(dj, "overlay") && !overlay))) {
        gvm_error_param(err, "disks", "Each entry of 'disks' must be an "
                        "object with 'image' or 'target' and optionally an "
                        "'overlay' path.");
        return -1;
    }
    if (iref) {
        struct imageref ref = { 0 };
        struct resolved r = { 0 };
        if (imageref_parse_json(iref, "disks", &ref, err) < 0)
            return -1;
        int rr = resolve_imageref(d, &ref, &r, err);
        imageref_clear(&ref);
        if (rr < 0)
            return -1;
        if (!r.catalogued) {
            gvm_error_set(err, GVM_ERR_NOT_FOUND, "The image %s:%s is not "
                          "in the catalog; catalogue it with image-import "
                          "first.", r.vol.name, r.path);
            resolved_clear(&r);
            return -1;
        }
        image_id = r.row.id;
        resolved_clear(&r);
    }
    if (dom) {
        size_t k;
        for (k = 0; k < dom->ndisks; k++) {
            if (target ? strcmp(dom->disks[k].target, target) == 0
                       : dom->disks[k].image_id == image_id)
                break;
        }
        if (k == dom->ndisks) {
            gvm_error_param(err, "disks", "Domain %s has no disk %s%s.",
                            dom->name, target ? target : "using image ",
                            target ? "" : "given");
            return -1;
        }
        if (image_id && image_id != dom->disks[k].image_id) {
            _cleanup_free_ char *img = resolve_image_name(d, image_id);
            _cleanup_free_ char *act = resolve_image_name(d, dom->disks[k].image_id);

            gvm_error_param(err, "disks", "Image %s is not the active image "
                            "of disk %s of domain %s (%s is); snapshot the "
                            "disk by its target.", img ? img : "?",
                            dom->disks[k].target, dom->name, act ? act : "?");
            return -1;
        }
        image_id = dom->disks[k].image_id;
        target = dom->disks[k].target;
    } else {
        int64_t other = 0, sid = 0;
        int r = catalog_domain_of_image(d->cat, image_id, &other, NULL, err);
        if (r < 0)
            return -1;
        if (r > 0) {
            _cleanup_free_ char *img = resolve_image_name(d, image_id);
            _cleanup_catdom_ struct catalog_domain od = { 0 };

            if (catalog_domain_get(d->cat, other, &od, err) < 0)
                return -1;
            gvm_error_param(err, "disks", "Image %s is a disk of domain %s; "
                            "snapshot it through 'domain'.", img ? img : "?",
                            od.name);
            return -1;
        }
        r = catalog_snapshot_frozen_by(d->cat, image_id, &sid, err);
        if (r < 0)
            return -1;
        if (r > 0) {
            _cleanup_free_ char *img = resolve_image_name(d, image_id);
            _cleanup_catsnap_ struct catalog_snapshot s = { 0 };

            if (catalog_snapshot_get(d->cat, sid, &s, err) < 0)
                return -1;
            gvm_error_set(err, GVM_ERR_IN_USE, "Image %s is frozen by "
                          "snapshot '%s'; snapshot the overlay on top of it "
                          "instead.", img ? img : "?", s.name);
            return -1;
        }
        if (!target) {
            snprintf(tbuf, sizeof(tbuf), "disk%zu", i);
            target = tbuf;
        }
    }
    pd->target = strdup(target);
    if (!pd->target)
        return gvm_error_oom(err);
    return plan_fill(d, p, image_id, dom ? dom->id : 0, overlay, name,
                     "disks", err);
}

int snapshot_plan_revert_disk(struct gvmd *d, struct snapshot_plan *p,
                              const struct catalog_snapshot *s,
                              const struct catalog_domain *dom, size_t i,
                              struct gvm_error *err)
{
    struct snapshot_plan_disk *pd = plan_add(p);
    char tag[160];
    bool known = false;

    if (!pd)
        return gvm_error_oom(err);
    for (size_t j = 0; j < dom->ndisks; j++)
        known = known || strcmp(dom->disks[j].target, s->disks[i].target) == 0;
    if (!known) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "Snapshot %s has disk %s, "
                      "which domain %s no longer has.", s->name,
                      s->disks[i].target, dom->name);
        return -1;
    }
    pd->target = strdup(s->disks[i].target);
    if (!pd->target)
        return gvm_error_oom(err);
    snprintf(tag, sizeof(tag), "%s-revert", s->name);
    return plan_fill(d, p, s->disks[i].image_id, dom->id, NULL, tag,
                     "snapshot", err);
}

int snapshot_plan_check_paths(struct gvmd *d, struct snapshot_plan *p,
                              struct gvm_error *err)
{
    for (size_t i = 0; i < p->n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (p->v[i].vol.id == p->v[j].vol.id &&
                strcmp(p->v[i].overlay, p->v[j].overlay) == 0) {
                gvm_error_param(err, "disks", "Two disks would get the same "
                                "overlay %s:%s.", p->v[i].vol.name, p->v[i].overlay);
                return -1;
            }
            if (strcmp(p->v[i].target, p->v[j].target) == 0 ||
                p->v[i].active.id == p->v[j].active.id) {
                gvm_error_param(err, "disks", "The disk %s is listed twice.",
                                p->v[i].target);
                return -1;
            }
        }
        int r = path_taken(d, &p->v[i].vol, p->v[i].overlay, err);
        if (r < 0)
            return -1;
        if (r > 0) {
            gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "The overlay %s:%s for "
                          "disk %s exists already; nothing was created.",
                          p->v[i].vol.name, p->v[i].overlay, p->v[i].target);
            return -1;
        }
    }
    return 0;
}

json_t *snapshot_plan_json(struct gvmd *d, const struct snapshot_plan *p)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < p->n; i++) {
        const struct snapshot_plan_disk *pd = &p->v[i];
        char *bname = resolve_backing_name(d->vols, &pd->vol, pd->overlay, &pd->vol,
                                           pd->active.path);
        json_t *o = bname ? json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:I}",
                                      "target", pd->target,
                                      "image", (json_int_t)pd->active.id,
                                      "volume", (json_int_t)pd->vol.id,
                                      "path", pd->overlay,
                                      "backing-name", bname,
                                      "backing-format", pd->active.format,
                                      "size", (json_int_t)pd->active.virtual_size)
                          : NULL;
        free(bname);
        if (gvm_json_append(a, o) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int snapshot_plan_add_active(const struct snapshot_plan *p, json_t *result,
                              struct gvm_error *err)
{
    json_t *a = json_array();

    if (gvm_json_set(result, "active", a) < 0)
        return gvm_error_oom(err);
    for (size_t i = 0; i < p->n; i++) {
        _cleanup_free_ char *name = resolve_name(p->v[i].vol.name, p->v[i].overlay);
        if (!name || gvm_json_append(a, json_pack("{s:s, s:s}", "target",
                                                  p->v[i].target, "image-name",
                                                  name)) < 0)
            return gvm_error_oom(err);
    }
    return 0;
}

int snapshot_plan_run(struct gvmd *d, const struct job_type *type,
                      json_t *params, const struct snapshot_plan *p,
                      struct gvm_error *err)
{
    _cleanup_json_ json_t *images = json_array();
    _cleanup_free_ struct catalog_job_lock *locks = calloc(p->n + 1, sizeof(*locks));

    if (!images || !locks)
        return gvm_error_oom(err);
    for (size_t i = 0; i < p->n; i++) {
        locks[i] = (struct catalog_job_lock){ .image_id = p->v[i].active.id,
                                              .write = true };
        if (gvm_json_append(images, json_integer(p->v[i].active.id)) < 0)
            return gvm_error_oom(err);
    }

    return snapshot_run_job(d, type, params, images, locks, p->n, err);
}
