/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot.c — external disk-only snapshots, offline path.
 *
 * Model.  A snapshot records per disk the image it froze (snapshot_disks
 * image_id) and the overlay that became active on top of it.  The tree
 * goes through parent_id.  A domain's *current* snapshot is found from
 * storage's point of view: walking down the backing chain of the domain's
 * (first) active image, the first image frozen by one of its snapshots.
 * So after a revert to S (new overlays on S's frozen images) S is current,
 * and the next snapshot becomes a new child of S: a branch beside S's
 * older children, whose images stay untouched.
 *
 * A domain libvirt runs takes the live path (snapshot-live.c): snapshot_create
 * plans it the same way and runs the same internal job with "live" in its
 * params; the job's run/recover hand it to snapshot-live.c, which reuses
 * the overlay helpers exported in snapshot.h.
 *
 * Decisions on the offline path:
 *   - quiesce: true is refused (Unsupported): nothing runs inside an offline
 *     domain, its disks are quiescent already.  atomic: always all or none.
 *   - overlay paths default to "<dir of the active image>/<stem of the
 *     chain's bottom image>.<snapshot>.qcow2" (revert: ".<snapshot>-rN").
 *   - snapshot-revert {snapshot, branch?}: new overlays on the snapshot's
 *     frozen images become active and the snapshot becomes current; with
 *     `branch`, a snapshot named `branch` of those fresh overlays is taken
 *     at once, so the new line of history has a name in the tree (its
 *     parent is the reverted snapshot).  Only domain snapshots revert.
 *   - a snapshot without `domain` freezes bare catalogued images (targets
 *     "disk0".. unless given); its parent is the snapshot freezing an image
 *     below them.
 *
 * snapshot-create / snapshot-revert (internal jobs, see snapshot.h):
 *   step 0 "snapshot-create"|"snapshot-revert"   the plan (params)
 *   step "create-overlay" {index}   pending while overlay `index` is made
 *   step "commit-catalog"  recorded in the same transaction as the catalog
 *                          change (overlay rows, snapshot, active disks)
 *   Recovery: "commit-catalog" present → the catalog change is committed
 *   (the row exists only if it is): done.  Otherwise unlink every overlay a
 *   "create-overlay" step names that is not catalogued, and conclude with an
 *   error saying nothing was recorded.  All or none, never half.
 *
 * snapshot-delete (job), per disk whose frozen image F only this snapshot
 * freezes: every child C of F is made independent of F without changing
 * what it reads: the data C reads through F and would not read through F's
 * backing P is copied into C ("pull"), then C's header is switched to P
 * ("switch-backing").  Then, in one transaction with the step "forget",
 * the snapshot goes (its children get its parent), snapshots whose overlay
 * was F now name C, and F's row goes; then F's file is unlinked.
 *   When P has no other user — F is its only child, no snapshot froze it
 *   and no domain uses it — nothing but F needs what P reads, so F is
 *   committed into P instead (chain_commit_merge, chain-commit.c: P grows
 *   to F's size if smaller, F's data goes into P, F's children are
 *   repointed to P; the steps "commit", "grow", "copying", "switch" in
 *   this job's journal): one copy of F's data instead of one per child,
 *   and P then reads what F read (P's own old content was nobody's).  The
 *   choice is made when the job is created (P is then locked for writing)
 *   and checked again when it runs (if P gained a user, F is pulled).
 *   Recovery: "forget" recorded → unlink the files it names: done.
 *   "switch-backing" pending → if C's header names P the catalog edge is
 *   made to agree; "pull" pending → leaks a kill mid-write left are
 *   repaired; a commit step pending → chain_commit_merge_recover (rolls
 *   "switch" forward, the others back).  Then the run starts over: C's
 *   that already moved are no longer F's children, and pulling again
 *   copies nothing already copied.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "chain-check.h"
#include "chain-ops.h"
#include "jsonutil.h"
#include "resolve.h"
#include "live.h"
#include "snapshot-live.h"
#include "snapshot.h"
#include "virt-define.h"
#include "volume.h"

#define COPY_CHUNK (4u << 20)

static void snap_clearp(struct catalog_snapshot *s) { catalog_snapshot_clear(s); }
#define _cleanup_snap_ _cleanup_(snap_clearp)
static void dom_clearp(struct catalog_domain *d) { catalog_domain_clear(d); }
#define _cleanup_dom_ _cleanup_(dom_clearp)
static void vol_clearp(struct catalog_volume *v) { catalog_volume_clear(v); }
#define _cleanup_vol_ _cleanup_(vol_clearp)

static char *image_name(const struct catalog_image *row)
{
    return resolve_name(row->volume, row->path);
}

/* Snapshot (and branch) names end up in file names: keep them plain. */
static int check_name(const char *name, const char *param, struct gvm_error *err)
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

/* ---- the tree ------------------------------------------------------------------ */

/* The first snapshot (of domain_id; 0: of bare images) freezing an image
 * of the catalogued chain below image_id (image_id itself excluded unless
 * include_self). */
static int64_t find_below(struct gvmd *d, int64_t image_id, bool include_self,
                          int64_t domain_id, struct gvm_error *err)
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
                _cleanup_snap_ struct catalog_snapshot s = { 0 };
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

int64_t snapshot_domain_current(struct gvmd *d, int64_t domain_id,
                                struct gvm_error *err)
{
    _cleanup_dom_ struct catalog_domain dom = { 0 };

    if (catalog_domain_get(d->cat, domain_id, &dom, err) < 0)
        return -1;
    if (dom.ndisks == 0)
        return 0;
    return find_below(d, dom.disks[0].image_id, false, domain_id, err);
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

    if (!o || !children || !disks) {
        json_decref(children);
        json_decref(disks);
        gvm_error_oom(err);
        return NULL;
    }
    json_object_set_new(o, "children", children);
    json_object_set_new(o, "disks", disks);
    json_object_set_new(o, "id", json_integer(s->id));
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "description", s->description
                        ? json_string(s->description) : json_null());
    json_object_set_new(o, "state", json_string(s->state));
    json_object_set_new(o, "created", json_integer(s->created));
    json_object_set_new(o, "parent", json_null());
    for (size_t i = 0; i < nall; i++) {
        if (all[i].id == s->parent_id)
            json_object_set_new(o, "parent", json_string(all[i].name));
        if (all[i].parent_id == s->id)
            json_array_append_new(children, json_string(all[i].name));
    }
    if (s->domain_id > 0) {
        _cleanup_dom_ struct catalog_domain dom = { 0 };
        if (catalog_domain_get(d->cat, s->domain_id, &dom, err) < 0)
            return NULL;
        json_object_set_new(o, "domain", json_string(dom.name));
        json_object_set_new(o, "domain-uuid", json_string(dom.uuid));
        int64_t cur = snapshot_domain_current(d, s->domain_id, err);
        if (cur < 0)
            return NULL;
        current = cur == s->id;
    } else {
        /* Bare images: current while its overlays are still the tops. */
        json_object_set_new(o, "domain", json_null());
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
    json_object_set_new(o, "current", json_boolean(current));
    for (size_t i = 0; i < s->ndisks; i++) {
        const struct catalog_snapshot_disk *k = &s->disks[i];
        json_t *dj = json_pack("{s:s, s:I, s:o, s:o, s:o}",
                               "target", k->target,
                               "image", (json_int_t)k->image_id,
                               "image-name", image_ref_json(d, k->image_id),
                               "overlay", k->overlay_id > 0
                                   ? json_integer(k->overlay_id) : json_null(),
                               "overlay-name", image_ref_json(d, k->overlay_id));
        if (!dj) {
            gvm_error_oom(err);
            return NULL;
        }
        json_array_append_new(disks, dj);
    }
    return steal_pointer(&o);
}

static json_t *snap_json_by_id(struct gvmd *d, int64_t id, struct gvm_error *err)
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
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "No snapshot has id %" PRId64 ".", id);
    catalog_snapshots_free(all, n);
    return r;
}

int snapshot_info(struct gvmd *d, json_t *params, json_t **result,
                  struct gvm_error *err)
{
    _cleanup_snap_ struct catalog_snapshot s = { 0 };
    json_t *key = json_object_get(params, "snapshot");
    char buf[32];
    const char *k = json_string_value(key);

    if (json_is_integer(key)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(key));
        k = buf;
    }
    if (!k) {
        gvm_error_param(err, "snapshot", "Parameter 'snapshot' must be a name or an id.");
        return -1;
    }
    if (catalog_snapshot_find(d->cat, k, &s, err) < 0)
        return -1;
    *result = snap_json_by_id(d, s.id, err);
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

int snapshot_list(struct gvmd *d, json_t *params, json_t **result,
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
        _cleanup_dom_ struct catalog_domain dom = { 0 };
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
        json_array_append_new(a, o);
    }
    *result = steal_pointer(&a);
    ret = 0;
out:
    catalog_snapshots_free(all, n);
    return ret;
}

/* ---- running an internal job and waiting for it ----------------------------------------- */

static enum gvm_error_class class_parse(const char *name)
{
    for (int c = 0; c < GVM_ERR__COUNT; c++) {
        if (name && strcmp(gvm_error_class_name((enum gvm_error_class)c), name) == 0)
            return (enum gvm_error_class)c;
    }
    return GVM_ERR_INTERNAL;
}

/* Run a job of type with params to its end; its error becomes ours.  The
 * job is dismissed afterwards: the call's result stands for it. */
static int run_internal(struct gvmd *d, const struct job_type *type,
                        json_t *params, json_t *images,
                        const struct catalog_job_lock *locks, size_t nlocks,
                        struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    _cleanup_json_ json_t *res = NULL;
    struct gvm_error e2 = { 0 };
    int64_t id;

    if (jobs_create(d->jobs, type, params, images, locks, nlocks, NULL, &job,
                    err) < 0)
        return -1;
    id = job_id(job);
    if (jobs_wait(d->jobs, id, -1, &res, err) < 0)
        return -1;
    if (strcmp(json_string_value(json_object_get(res, "status")) ?: "", "concluded") != 0) {
        gvm_error_set(err, GVM_ERR_BUSY, "gvmd is shutting down; the %s "
                      "operation (job %" PRId64 ") resumes at the next start.",
                      type->name, id);
        return -1;
    }
    json_t *je = json_object_get(res, "error");
    if (json_is_object(je)) {
        const char *msg = json_string_value(json_object_get(je, "message"));
        json_t *data = json_object_get(je, "data");
        gvm_error_set(err, class_parse(json_string_value(json_object_get(data, "class"))),
                      "%s", msg ? msg : "The operation failed.");
        jobs_dismiss(d->jobs, id, &e2);
        return -1;
    }
    if (json_is_true(json_object_get(res, "cancelled"))) {
        gvm_error_set(err, GVM_ERR_BUSY, "The %s operation was cancelled; "
                      "nothing was changed.", type->name);
        jobs_dismiss(d->jobs, id, &e2);
        return -1;
    }
    jobs_dismiss(d->jobs, id, &e2);
    return 0;
}

/* ---- snapshot-create / snapshot-revert: planning ----------------------------------------- */

struct plan_disk {
    char *target;
    struct catalog_image active;    /* becomes the frozen image / backing */
    struct catalog_volume vol;      /* active's volume (overlay goes there) */
    char *overlay;                  /* path in vol                        */
};

struct plan {
    struct plan_disk *v;
    size_t n;
};

static void plan_clear(struct plan *p)
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
#define _cleanup_plan_ _cleanup_(plan_clear)

static struct plan_disk *plan_add(struct plan *p)
{
    struct plan_disk *n = realloc(p->v, (p->n + 1) * sizeof(*n));
    if (!n)
        return NULL;
    p->v = n;
    memset(&n[p->n], 0, sizeof(n[0]));
    return &n[p->n++];
}

/* "<dir>/<stem>.<tag>.qcow2": stem of the bottom image of the chain. */
static char *default_overlay(struct gvmd *d, const struct catalog_image *active,
                             const char *tag, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image bottom = { 0 };
    int64_t id = active->id;
    char *out = NULL;

    for (unsigned depth = 0; id > 0 && depth <= IMG_MAX_CHAIN_DEPTH; depth++) {
        catalog_image_clear(&bottom);
        if (catalog_image_get(d->cat, id, &bottom, err) < 0)
            return NULL;
        id = bottom.backing_id;
    }
    const char *slash = strrchr(active->path, '/');
    const char *base = strrchr(bottom.path, '/');
    base = base ? base + 1 : bottom.path;
    const char *dot = strrchr(base, '.');
    int stemlen = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    int dirlen = slash ? (int)(slash - active->path) + 1 : 0;
    if (asprintf(&out, "%.*s%.*s.%s.qcow2", dirlen, active->path, stemlen,
                 base, tag) < 0) {
        gvm_error_oom(err);
        return NULL;
    }
    return out;
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

/* Fill a plan disk's active image, volume and overlay path. */
static int plan_fill(struct gvmd *d, struct plan_disk *pd, int64_t image_id,
                     const char *overlay, const char *tag, const char *param,
                     struct gvm_error *err)
{
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
        pd->overlay = default_overlay(d, &pd->active, tag, err);
        if (!pd->overlay)
            return -1;
    }
    return pd->overlay ? 0 : gvm_error_oom(err);
}

/* Checks every plan needs: overlay paths free and distinct. */
static int plan_check_paths(struct gvmd *d, struct plan *p, struct gvm_error *err)
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

/* The JSON the overlay job runs from (see overlay_run). */
static json_t *plan_json(struct gvmd *d, const struct plan *p)
{
    json_t *a = json_array();

    for (size_t i = 0; a && i < p->n; i++) {
        const struct plan_disk *pd = &p->v[i];
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
        if (!o || json_array_append_new(a, o) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Start the overlay job for the plan and wait for it. */
static int plan_run(struct gvmd *d, const struct job_type *type, json_t *params,
                    const struct plan *p, struct gvm_error *err)
{
    _cleanup_json_ json_t *images = json_array();
    _cleanup_free_ struct catalog_job_lock *locks = calloc(p->n + 1, sizeof(*locks));

    if (!images || !locks)
        return gvm_error_oom(err);
    for (size_t i = 0; i < p->n; i++) {
        locks[i] = (struct catalog_job_lock){ .image_id = p->v[i].active.id,
                                              .write = true };
        json_array_append_new(images, json_integer(p->v[i].active.id));
    }
    return run_internal(d, type, params, images, locks, p->n, err);
}

int snapshot_create(struct gvmd *d, json_t *params, json_t **result,
                    struct gvm_error *err)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const char *domain = json_string_value(json_object_get(params, "domain"));
    const char *desc = json_string_value(json_object_get(params, "description"));
    json_t *disks = json_object_get(params, "disks");
    _cleanup_dom_ struct catalog_domain dom = { 0 };
    _cleanup_plan_ struct plan p = { 0 };
    _cleanup_json_ json_t *jp = NULL;
    struct catalog_snapshot existing = { 0 };
    struct gvm_error e2 = { 0 };
    int64_t parent = 0;
    _cleanup_free_ char *live = NULL;   /* libvirt's name of a running domain */

    if (!name || check_name(name, "name", err) < 0)
        return -1;
    if (catalog_snapshot_find(d->cat, name, &existing, &e2) == 0) {
        catalog_snapshot_clear(&existing);
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "A snapshot named '%s' "
                      "exists already.", name);
        return -1;
    }
    /* A domain libvirt runs takes the live path (snapshot-live.c). */
    if (domain && snapshot_live_domain(d, domain, &dom, &live, err) < 0)
        return -1;
    if (!live && json_is_true(json_object_get(params, "quiesce"))) {
        /* Nothing runs inside an offline domain to be quiesced. */
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "quiesce needs a running "
                      "domain with a guest agent; this snapshot is taken "
                      "offline, where the disks are quiescent already: leave "
                      "quiesce out.");
        return -1;
    }
    if (!domain && (!json_is_array(disks) || json_array_size(disks) == 0)) {
        gvm_error_param(err, "disks", "A snapshot without 'domain' needs "
                        "'disks' listing the images to snapshot.");
        return -1;
    }
    if (domain && dom.ndisks == 0) {
        gvm_error_set(err, GVM_ERR_INVALID_PARAMS, "Domain %s has no disks.",
                      dom.name);
        return -1;
    }

    size_t nd = disks ? json_array_size(disks) : dom.ndisks;
    for (size_t i = 0; i < nd; i++) {
        json_t *dj = disks ? json_array_get(disks, i) : NULL;
        const char *target = dj ? json_string_value(json_object_get(dj, "target")) : dom.disks[i].target;
        const char *overlay = dj ? json_string_value(json_object_get(dj, "overlay")) : NULL;
        json_t *iref = dj ? json_object_get(dj, "image") : NULL;
        struct plan_disk *pd = plan_add(&p);
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
        if (domain) {
            size_t k;
            for (k = 0; k < dom.ndisks; k++) {
                if (target ? strcmp(dom.disks[k].target, target) == 0
                           : dom.disks[k].image_id == image_id)
                    break;
            }
            if (k == dom.ndisks) {
                gvm_error_param(err, "disks", "Domain %s has no disk %s%s.",
                                dom.name, target ? target : "using image ",
                                target ? "" : "given");
                return -1;
            }
            if (image_id && image_id != dom.disks[k].image_id) {
                gvm_error_param(err, "disks", "Image %" PRId64 " is not the "
                                "active image of disk %s of domain %s.",
                                image_id, dom.disks[k].target, dom.name);
                return -1;
            }
            image_id = dom.disks[k].image_id;
            target = dom.disks[k].target;
        } else {
            int64_t other = 0, sid = 0;
            int r = catalog_domain_of_image(d->cat, image_id, &other, NULL, err);
            if (r < 0)
                return -1;
            if (r > 0) {
                gvm_error_param(err, "disks", "Image %" PRId64 " is a disk of "
                                "domain %" PRId64 "; snapshot it through "
                                "'domain'.", image_id, other);
                return -1;
            }
            r = catalog_snapshot_frozen_by(d->cat, image_id, &sid, err);
            if (r < 0)
                return -1;
            if (r > 0) {
                gvm_error_set(err, GVM_ERR_IN_USE, "Image %" PRId64 " is "
                              "frozen by snapshot %" PRId64 "; snapshot the "
                              "overlay on top of it instead.", image_id, sid);
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
        if (plan_fill(d, pd, image_id, overlay, name, "disks", err) < 0)
            return -1;
    }
    if (plan_check_paths(d, &p, err) < 0)
        return -1;
    parent = find_below(d, p.v[0].active.id, true, domain ? dom.id : 0, err);
    if (parent < 0)
        return -1;

    json_t *pj = plan_json(d, &p);
    jp = pj ? json_pack("{s:s, s:s, s:o, s:s?, s:I, s:I}", "kind", "create",
                        "name", name, "disks", pj, "description", desc,
                        "domain", (json_int_t)(domain ? dom.id : 0),
                        "parent", (json_int_t)parent) : NULL;
    if (!jp)
        return gvm_error_oom(err);
    if (live) {
        if (json_object_set_new(jp, "live", json_string(live)) < 0 ||
            json_object_set_new(jp, "atomic", json_boolean(
                !json_is_false(json_object_get(params, "atomic")))) < 0 ||
            json_object_set_new(jp, "quiesce", json_boolean(
                json_is_true(json_object_get(params, "quiesce")))) < 0)
            return gvm_error_oom(err);
    } else {
        /* The offline path never writes under a running guest. */
        _cleanup_free_ int64_t *ids = calloc(p.n, sizeof(*ids));
        if (!ids)
            return gvm_error_oom(err);
        for (size_t i = 0; i < p.n; i++)
            ids[i] = p.v[i].active.id;
        if (live_refuse_running_ids(d, ids, p.n, "snapshot offline", err) < 0)
            return -1;
    }
    if (plan_run(d, &snapshot_create_job, jp, &p, err) < 0)
        return -1;
    /* libvirt's definition must name the new overlays (virt-define.h). */
    _cleanup_free_ char *warn = !live && domain ? virt_define_sync_id(d, dom.id) : NULL;
    if (catalog_snapshot_find(d->cat, name, &existing, err) < 0)
        return -1;
    *result = snap_json_by_id(d, existing.id, err);
    catalog_snapshot_clear(&existing);
    virt_define_warn(*result, warn);
    return *result ? 0 : -1;
}

int snapshot_revert(struct gvmd *d, json_t *params, json_t **result,
                    struct gvm_error *err)
{
    json_t *key = json_object_get(params, "snapshot");
    const char *branch = json_string_value(json_object_get(params, "branch"));
    _cleanup_snap_ struct catalog_snapshot s = { 0 };
    _cleanup_dom_ struct catalog_domain dom = { 0 };
    _cleanup_plan_ struct plan p = { 0 };
    _cleanup_json_ json_t *jp = NULL;
    struct catalog_snapshot other = { 0 };
    struct gvm_error e2 = { 0 };
    char buf[32];
    const char *k = json_string_value(key);

    if (json_is_integer(key)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(key));
        k = buf;
    }
    if (!k) {
        gvm_error_param(err, "snapshot", "Parameter 'snapshot' must be a name or an id.");
        return -1;
    }
    if (branch && check_name(branch, "branch", err) < 0)
        return -1;
    if (branch && catalog_snapshot_find(d->cat, branch, &other, &e2) == 0) {
        catalog_snapshot_clear(&other);
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "A snapshot named '%s' "
                      "exists already; choose another branch name.", branch);
        return -1;
    }
    if (catalog_snapshot_find(d->cat, k, &s, err) < 0)
        return -1;
    if (s.domain_id <= 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "Snapshot %s is of bare images, "
                      "not of a domain: there are no disks to switch. Create an "
                      "image on its frozen images with image-create instead.",
                      s.name);
        return -1;
    }
    if (catalog_domain_get(d->cat, s.domain_id, &dom, err) < 0)
        return -1;
    if (snapshot_live_domain_runs(d, &dom)) {
        gvm_error_set(err, GVM_ERR_IN_USE, "snapshot-revert needs domain %s "
                      "shut off; it is running.", dom.name);
        return -1;
    }
    for (size_t i = 0; i < s.ndisks; i++) {
        struct plan_disk *pd = plan_add(&p);
        char tag[160];
        bool known = false;

        if (!pd)
            return gvm_error_oom(err);
        for (size_t j = 0; j < dom.ndisks; j++)
            known = known || strcmp(dom.disks[j].target, s.disks[i].target) == 0;
        if (!known) {
            gvm_error_set(err, GVM_ERR_CONFLICT, "Snapshot %s has disk %s, "
                          "which domain %s no longer has.", s.name,
                          s.disks[i].target, dom.name);
            return -1;
        }
        pd->target = strdup(s.disks[i].target);
        if (!pd->target)
            return gvm_error_oom(err);
        /* A free name: <stem>.<snapshot>-rN.qcow2 */
        for (int n = 1;; n++) {
            snprintf(tag, sizeof(tag), "%s-r%d", s.name, n);
            catalog_image_clear(&pd->active);
            catalog_volume_clear(&pd->vol);
            free(pd->overlay);
            pd->overlay = NULL;
            if (plan_fill(d, pd, s.disks[i].image_id, NULL, tag, "snapshot", err) < 0)
                return -1;
            int r = path_taken(d, &pd->vol, pd->overlay, err);
            if (r < 0)
                return -1;
            if (r == 0)
                break;
            if (n > 1000) {
                gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "No free overlay "
                              "name for reverting %s.", s.name);
                return -1;
            }
        }
    }
    if (plan_check_paths(d, &p, err) < 0)
        return -1;
    json_t *pj = plan_json(d, &p);
    jp = pj ? json_pack("{s:s, s:s, s:o, s:I, s:I}", "kind", "revert",
                        "name", s.name, "disks", pj,
                        "domain", (json_int_t)dom.id,
                        "parent", (json_int_t)s.id) : NULL;
    if (!jp)
        return gvm_error_oom(err);
    if (plan_run(d, &snapshot_revert_job, jp, &p, err) < 0)
        return -1;
    /* libvirt's definition must name the revert overlays (virt-define.h). */
    _cleanup_free_ char *warn = virt_define_sync_id(d, dom.id);
    if (branch) {
        /* The branch gets a name in the tree: a snapshot of the fresh
         * overlays, child of the reverted snapshot. */
        _cleanup_json_ json_t *cp = json_pack("{s:s, s:s}", "name", branch,
                                              "domain", dom.uuid);
        if (!cp)
            return gvm_error_oom(err);
        if (snapshot_create(d, cp, result, err) < 0) {
            struct gvm_error e3 = { 0 };
            gvm_error_set(&e3, err->cls, "Reverted to %s, but recording the "
                          "branch %s failed: %s", s.name, branch, err->message);
            *err = e3;
            return -1;
        }
        return 0;
    }
    *result = snap_json_by_id(d, s.id, err);
    virt_define_warn(*result, warn);
    return *result ? 0 : -1;
}

/* ---- the overlay job (create and revert) ------------------------------------------------ */

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
    _cleanup_vol_ struct catalog_volume vol = { 0 };
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
int snapshot_overlays_commit(struct gvmd *d, json_t *p,
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

static int overlay_run(struct job *job, struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    const char *name = json_string_value(json_object_get(p, "name"));
    const char *kind = json_string_value(json_object_get(p, "kind"));
    bool create = kind && strcmp(kind, "create") == 0;
    _cleanup_free_ struct snapshot_overlay *v = NULL;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    size_t n = 0, made = 0;

    if (json_object_get(p, "live"))
        return snapshot_live_run(job, err);     /* a running domain's */
    if (!name || !kind || snapshot_overlays_parse(p, &v, &n, err) < 0)
        return -1;
    if (journal_begin(d->cat, create ? "snapshot-create" : "snapshot-revert",
                      job_id(job), p, &op, err) < 0)
        return -1;
    if (snapshot_overlays_create_all(d, op, v, n,
                                     "snapshot-create.overlays-created", name,
                                     &made, err) < 0)
        goto undo;
    if (catalog_begin(d->cat, err) < 0)
        goto undo;
    if (journal_step(op, "commit-catalog", NULL, err) < 0 ||
        snapshot_overlays_commit(d, p, v, n, err) < 0) {
        catalog_rollback(d->cat);
        goto undo;
    }
    if (catalog_commit(d->cat, err) < 0)
        goto undo;
    journal_fault_point("snapshot-create.committed");
    if (journal_done(op, err) < 0)
        return -1;
    return 0;

undo:
    snapshot_overlays_remove(d, v, made);
    {
        struct gvm_error e2 = { 0 };
        if (journal_undone(op, &e2) < 0)
            log_error("Snapshot %s: closing its journal record failed: %s",
                      name, e2.message);
    }
    if (gvm_error_isset(err)) {
        struct gvm_error e3 = { 0 };
        gvm_error_set(&e3, err->cls, "%s %s failed; every overlay it had "
                      "created was removed and nothing was recorded: %s",
                      create ? "Snapshot" : "Revert to", name, err->message);
        *err = e3;
    }
    return -1;
}

static int overlay_recover(struct job *job, struct journal_op *op,
                           const struct journal_entry *e, size_t n,
                           struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    const char *name = json_string_value(json_object_get(p, "name"));
    _cleanup_free_ struct snapshot_overlay *v = NULL;
    size_t nv = 0, made = 0;
    bool committed = false;

    if (json_object_get(p, "live"))
        return snapshot_live_recover(job, op, e, n, err);
    if (!op)
        /* Nothing was journaled, so nothing was touched: run it now. */
        return job_cancel_requested(job) ? JOB_RECOVERED_CANCELLED
                                         : JOB_RECOVERED_RESUME;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].kind, "commit-catalog") == 0 && !e[i].undone)
            committed = true;
        if (strcmp(e[i].kind, "create-overlay") == 0 && !e[i].undone)
            made = (size_t)json_integer_value(json_object_get(e[i].payload, "index")) + 1;
    }
    if (committed) {
        if (journal_done(op, err) < 0)
            return -1;
        log_info("Snapshot operation on %s: the catalog change had been "
                 "committed before the restart: finished.", name ? name : "?");
        return JOB_RECOVERED_DONE;
    }
    if (snapshot_overlays_parse(p, &v, &nv, err) < 0)
        return -1;
    snapshot_overlays_remove(d, v, made < nv ? made : nv);
    if (journal_undone(op, err) < 0)
        return -1;
    gvm_error_set(err, GVM_ERR_STORAGE, "gvmd stopped while %s %s; the %zu "
                  "overlay(s) made so far were removed and nothing was "
                  "recorded: run it again.",
                  strcmp(json_string_value(json_object_get(p, "kind")) ?: "", "create") == 0
                      ? "creating snapshot" : "reverting to",
                  name ? name : "?", made);
    return -1;
}

const struct job_type snapshot_create_job = {
    .name = "snapshot-create",
    .run = overlay_run,
    .recover = overlay_recover,
};

const struct job_type snapshot_revert_job = {
    .name = "snapshot-revert",
    .run = overlay_run,
    .recover = overlay_recover,
};

/* ---- snapshot-delete ------------------------------------------------------------------ */

/* Does nothing but frozen image f depend on its backing P, so that f can
 * be committed into P?  1 yes, 0 no, -1 error. */
static int parent_private(struct gvmd *d, const struct catalog_image *f,
                          struct gvm_error *err)
{
    _cleanup_free_ int64_t *kids = NULL;
    int64_t other = 0;
    size_t n = 0;
    int r;

    if (f->backing_id <= 0)
        return 0;
    if (catalog_image_children(d->cat, f->backing_id, &kids, &n, err) < 0)
        return -1;
    if (n != 1 || kids[0] != f->id)
        return 0;
    {
        CATALOG_LOCK_GUARD(d->cat);
        r = catalog_snapshot_frozen_by(d->cat, f->backing_id, &other, err);
    }
    if (r != 0)
        return r < 0 ? -1 : 0;
    r = catalog_domain_of_image(d->cat, f->backing_id, &other, NULL, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return 1;
}

/*
 * Before snapshot s's delete journals or writes anything: the frozen images
 * it would free (frozen by s alone, no domain's disk) lose their file, and
 * a backing file they are committed into (parent_private) changes what it
 * reads; an overlay on storage the catalog does not know (chain-check.h)
 * must not back onto either.  0, or -1 with err (InUse).
 */
static int delete_check_overlays(struct gvmd *d, const struct catalog_snapshot *s,
                                 struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = calloc(2 * s->ndisks + 1, sizeof(*ids));
    _cleanup_json_ json_t *found = NULL;
    _cleanup_free_ char *items = NULL;
    size_t n = 0, i;
    json_t *o;

    if (!ids)
        return gvm_error_oom(err);
    for (i = 0; i < s->ndisks; i++) {
        _cleanup_catimg_ struct catalog_image f = { 0 };
        _cleanup_free_ int64_t *kids = NULL;
        int64_t other = 0, dom = 0;
        size_t nk = 0;
        int r;

        if (catalog_image_get(d->cat, s->disks[i].image_id, &f, err) < 0)
            return -1;
        {
            CATALOG_LOCK_GUARD(d->cat);
            r = catalog_snapshot_frozen_by(d->cat, f.id, &other, err);
        }
        if (r < 0)
            return -1;
        if (other != s->id)
            continue;           /* stays: another snapshot froze it too */
        r = catalog_domain_of_image(d->cat, f.id, &dom, NULL, err);
        if (r < 0)
            return -1;
        if (r > 0)
            continue;           /* stays: a domain's disk */
        ids[n++] = f.id;
        if (catalog_image_children(d->cat, f.id, &kids, &nk, err) < 0)
            return -1;
        r = nk > 0 ? parent_private(d, &f, err) : 0;
        if (r < 0)
            return -1;
        if (r > 0)
            ids[n++] = f.backing_id;
    }
    if (chain_check_uncatalogued(d, ids, n, &found, NULL, err) < 0)
        return -1;
    if (json_array_size(found) == 0)
        return 0;
    json_array_foreach(found, i, o) {
        char *nx = NULL;
        if (asprintf(&nx, "%s%s%s (on %s)", items ? items : "", i ? ", " : "",
                     json_string_value(json_object_get(o, "image")),
                     json_string_value(json_object_get(o, "backing"))) < 0)
            return gvm_error_oom(err);
        free(items);
        items = nx;
    }
    gvm_error_set(err, GVM_ERR_IN_USE, "Deleting snapshot %s would remove or "
                  "change the backing file of overlays the catalog does not "
                  "know: %s; they would no longer read what they read now, and "
                  "nothing was changed. image-import them first (gvmd then "
                  "keeps them readable), or remove them; or drop only the "
                  "snapshot's record with `snapshot-delete --snapshot %s "
                  "--metadata-only true`.", s->name, items, s->name);
    return -1;
}

int snapshot_delete_start(struct gvmd *d, json_t *params, const char *op_id,
                          json_t **result, struct gvm_error *err)
{
    json_t *key = json_object_get(params, "snapshot");
    bool meta = json_is_true(json_object_get(params, "metadata-only"));
    _cleanup_snap_ struct catalog_snapshot s = { 0 };
    _cleanup_json_ json_t *jp = NULL, *images = json_array();
    _cleanup_json_ json_t *commits = json_array();
    _cleanup_job_ struct job *job = NULL;
    struct catalog_job_lock *locks = NULL;
    size_t nlocks = 0, max = 0;
    char buf[32];
    const char *k = json_string_value(key);
    int ret = -1;

    if (json_is_integer(key)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(key));
        k = buf;
    }
    if (!k) {
        gvm_error_param(err, "snapshot", "Parameter 'snapshot' must be a name or an id.");
        return -1;
    }
    if (!images || !commits)
        return gvm_error_oom(err);
    if (catalog_snapshot_find(d->cat, k, &s, err) < 0)
        return -1;
    /* Lock the frozen images (write), their children (write: data is
     * pulled into them) and their backing images (read). */
    for (size_t i = 0; !meta && i < s.ndisks; i++) {
        _cleanup_catimg_ struct catalog_image f = { 0 };
        _cleanup_free_ int64_t *kids = NULL;
        size_t nk = 0;

        if (catalog_image_get(d->cat, s.disks[i].image_id, &f, err) < 0 ||
            catalog_image_children(d->cat, f.id, &kids, &nk, err) < 0)
            goto out;
        struct catalog_job_lock *nl = realloc(locks, (max + nk + 2) * sizeof(*nl));
        if (!nl) {
            gvm_error_oom(err);
            goto out;
        }
        locks = nl;
        max += nk + 2;
        locks[nlocks++] = (struct catalog_job_lock){ .image_id = f.id, .write = true };
        json_array_append_new(images, json_integer(f.id));
        for (size_t c = 0; c < nk; c++) {
            locks[nlocks++] = (struct catalog_job_lock){ .image_id = kids[c], .write = true };
            json_array_append_new(images, json_integer(kids[c]));
        }
        if (f.backing_id > 0) {
            /* Read, or write when f is to be committed into it. */
            int priv = nk > 0 ? parent_private(d, &f, err) : 0;
            bool dup = false;
            if (priv < 0)
                goto out;
            if (priv)
                json_array_append_new(commits, json_integer(f.id));
            for (size_t j = 0; j < nlocks; j++) {
                if (locks[j].image_id == f.backing_id) {
                    dup = true;
                    locks[j].write = locks[j].write || priv;
                }
            }
            if (!dup)
                locks[nlocks++] = (struct catalog_job_lock){ .image_id = f.backing_id,
                                                             .write = priv };
        } else if (f.backing_filename) {
            gvm_error_set(err, GVM_ERR_CONFLICT, "The frozen image %s:%s of "
                          "snapshot %s has a backing file (%s) that is not in "
                          "the catalog; catalogue it with image-import first.",
                          f.volume, f.path, s.name, f.backing_filename);
            goto out;
        }
    }
    {
        /* Offline surgery: no running domain may use an image it writes. */
        _cleanup_free_ int64_t *ids = calloc(nlocks ? nlocks : 1, sizeof(*ids));
        size_t nids = 0;
        char what[160];

        if (!ids) {
            gvm_error_oom(err);
            goto out;
        }
        for (size_t j = 0; j < nlocks; j++)
            if (locks[j].write)
                ids[nids++] = locks[j].image_id;
        snprintf(what, sizeof(what), "delete snapshot %s, which writes", s.name);
        if (live_refuse_running_ids(d, ids, nids, what, err) < 0)
            goto out;
    }
    if (!meta && delete_check_overlays(d, &s, err) < 0)
        goto out;
    jp = json_pack("{s:I, s:s, s:b, s:O}", "snapshot", (json_int_t)s.id,
                   "name", s.name, "metadata-only", meta, "commit", commits);
    if (!jp) {
        gvm_error_oom(err);
        goto out;
    }
    if (jobs_create(d->jobs, &snapshot_delete_job, jp, images, locks, nlocks,
                    op_id, &job, err) < 0) {
        if (err->cls == GVM_ERR_IN_USE) {
            struct gvm_error e2 = { 0 };
            gvm_error_set(&e2, GVM_ERR_IN_USE, "Cannot delete snapshot %s now. "
                          "%s", s.name, err->message);
            *err = e2;
        }
        goto out;
    }
    *result = job_to_json(job);
    ret = *result ? 0 : gvm_error_oom(err);
out:
    free(locks);
    return ret;
}

/* Open a catalogued image (and its chain unless NOBACKING). */
static int open_row(struct gvmd *d, struct resolve_ctx *ctx,
                    const struct catalog_image *row, unsigned flags,
                    struct img **out, struct gvm_error *err)
{
    struct gvm_store *st = NULL;
    struct img_resolver res;
    enum img_format fmt;
    int r;

    if (img_format_parse(row->format, &fmt) < 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "Image %s:%s has format '%s'.",
                      row->volume, row->path, row->format);
        return -1;
    }
    if (volumes_store_by_id(d->vols, row->volume_id, &st, err) < 0)
        return -1;
    if (resolve_ctx_add(ctx, st, row->volume_id, row->volume) < 0)
        return gvm_error_oom(err);
    res = resolve_img_resolver(ctx);
    r = img_open_hint(st, row->path, fmt, flags, &res, 0, row->backing_format,
                      out, err);
    if (r < 0) {
        if (!gvm_error_isset(err))
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "Opening %s:%s failed", row->volume, row->path);
        return -1;
    }
    return 0;
}

/*
 * Copy into c every cluster it does not allocate itself where what it
 * reads now (through its backing F) differs from what it would read
 * through nb (F's backing, or nothing).  0, JOB_STOPPED or -errno.
 */
static int pull_into(struct job *job, struct img *c, struct img *nb,
                     uint32_t csize)
{
    uint64_t size = img_virtual_size(c), nbsize = nb ? img_virtual_size(nb) : 0;
    _cleanup_free_ uint8_t *obuf = malloc(COPY_CHUNK);
    _cleanup_free_ uint8_t *nbuf = malloc(COPY_CHUNK);

    if (!obuf || !nbuf)
        return -ENOMEM;
    for (uint64_t off = 0; off < size;) {
        uint64_t len = size - off < COPY_CHUNK ? size - off : COPY_CHUNK;
        struct img_extent *ext = NULL;
        size_t n = 0;
        int r;

        if (job_should_stop(job))
            return JOB_STOPPED;
        r = img_map(c, off, len, &ext, &n);
        if (r < 0)
            return r;
        for (size_t i = 0; i < n && r == 0; i++) {
            uint64_t eo = ext[i].start, el = ext[i].length;
            if (ext[i].present && ext[i].depth == 0)
                continue;
            r = img_read(c, obuf, eo, (size_t)el);
            if (r == 0) {
                size_t have = eo >= nbsize ? 0 : (size_t)(nbsize - eo < el ? nbsize - eo : el);
                if (have)
                    r = img_read(nb, nbuf, eo, have);
                memset(nbuf + have, 0, (size_t)el - have);
            }
            for (uint64_t j = 0; r == 0 && j < el;) {
                uint64_t step = csize - ((eo + j) % csize);
                if (step > el - j)
                    step = el - j;
                if (memcmp(obuf + j, nbuf + j, (size_t)step) != 0) {
                    /* Zeros too are written as data: the new backing may
                     * show something there, and a plain write is right
                     * whatever the image version. */
                    r = img_write(c, obuf + j, eo + j, (size_t)step);
                }
                j += step;
            }
        }
        free(ext);
        if (r < 0)
            return r;
        off += len;
        job_add_progress(job, len);
    }
    return img_flush(c);
}

static void repair_leaks(struct gvmd *d, int64_t image_id)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    struct gvm_error e = { 0 };
    struct img_check_result res;
    struct img *img = NULL;

    resolve_ctx_init(&ctx, d);
    if (catalog_image_get(d->cat, image_id, &row, &e) < 0 ||
        strcmp(row.format, "qcow2") != 0 ||
        open_row(d, &ctx, &row, IMG_OPEN_RW | IMG_OPEN_NOBACKING, &img, &e) < 0) {
        if (gvm_error_isset(&e))
            log_warn("Leak check of image %" PRId64 " failed: %s", image_id, e.message);
        return;
    }
    if (img_check(img, IMG_REPAIR_LEAKS, &res, &e) < 0)
        log_warn("Leak check of %s:%s failed: %s", row.volume, row.path, e.message);
    else if (res.leaks)
        log_info("%s:%s: %" PRIu64 " leaked clusters after the interrupted "
                 "copy, %" PRIu64 " fixed.", row.volume, row.path, res.leaks,
                 res.leaks_fixed);
    img_close(img);
}

/* Make child c (catalogued) read through p (0: nothing) what it reads
 * through its backing f now, then point its header and catalog edge at p. */
static int move_child(struct job *job, struct journal_op *op, int64_t cid,
                      const struct catalog_image *f, struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    _cleanup_catimg_ struct catalog_image c = { 0 }, p = { 0 };
    _cleanup_vol_ struct catalog_volume cvol = { 0 }, pvol = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_free_ char *bname = NULL;
    _cleanup_json_ json_t *pl = NULL;
    struct img *ci = NULL, *pi = NULL;
    struct img_info info = { 0 };
    int ret = -1, r;

    resolve_ctx_init(&ctx, d);
    if (catalog_image_get(d->cat, cid, &c, err) < 0)
        return -1;
    if (strcmp(c.format, "qcow2") != 0) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "Image %s:%s is raw but has a "
                      "backing edge in the catalog.", c.volume, c.path);
        return -1;
    }
    if (f->backing_id > 0) {
        if (catalog_image_get(d->cat, f->backing_id, &p, err) < 0 ||
            catalog_volume_get_by_id(d->cat, c.volume_id, &cvol, err) < 0 ||
            catalog_volume_get_by_id(d->cat, p.volume_id, &pvol, err) < 0)
            return -1;
        bname = resolve_backing_name(d->vols, &cvol, c.path, &pvol, p.path);
        if (!bname)
            return gvm_error_oom(err);
    }
    pl = json_pack("{s:I, s:I, s:I, s:s?, s:s?}", "child", (json_int_t)cid,
                   "from", (json_int_t)f->id, "to", (json_int_t)f->backing_id,
                   "new-name", bname, "new-format", p.format);
    if (!pl)
        return gvm_error_oom(err);
    if (journal_step(op, "pull", pl, err) < 0)
        return -1;
    if (open_row(d, &ctx, &c, IMG_OPEN_RW, &ci, err) < 0)
        goto out;
    if (p.id > 0 && open_row(d, &ctx, &p, 0, &pi, err) < 0)
        goto out;
    if (img_get_info(ci, &info) < 0) {
        gvm_error_oom(err);
        goto out;
    }
    r = pull_into(job, ci, pi, info.cluster_size ? info.cluster_size : 65536);
    if (r == JOB_STOPPED) {
        ret = JOB_STOPPED;
        goto out;
    }
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Copying the data of %s:%s into %s:%s failed; "
                            "%s:%s still reads as before", f->volume, f->path,
                            c.volume, c.path, c.volume, c.path);
        goto out;
    }
    if (journal_step(op, "switch-backing", pl, err) < 0)
        goto out;
    r = img_set_backing(ci, bname, p.id > 0 ? p.format : NULL, err);
    if (r == 0)
        r = img_flush(ci);
    if (r < 0) {
        if (!gvm_error_isset(err))
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "Switching the backing file of %s:%s failed",
                                c.volume, c.path);
        goto out;
    }
    if (catalog_image_set_backing(d->cat, cid, f->backing_id, bname,
                                  p.id > 0 ? p.format : NULL, err) < 0)
        goto out;
    ret = 0;
out:
    img_info_clear(&info);
    if (pi)
        img_close(pi);
    if (ci)
        img_close(ci);
    return ret;
}

struct forget {
    struct job *job;
    struct journal_op *op;
    const struct catalog_snapshot *s;
    int64_t *freed;
    size_t nfreed;
    json_t *payload;
};

static int forget_txn(struct catalog *cat, void *opaque, struct gvm_error *err)
{
    struct forget *fg = opaque;

    if (fg->op && journal_step(fg->op, "forget", fg->payload, err) < 0)
        return -1;
    for (size_t i = 0; i < fg->s->ndisks; i++) {
        for (size_t j = 0; j < fg->nfreed; j++) {
            if (fg->freed[j] == fg->s->disks[i].image_id &&
                catalog_snapshot_replace_overlay(cat, fg->freed[j],
                                                 fg->s->disks[i].overlay_id, err) < 0)
                return -1;
        }
    }
    if (catalog_snapshot_delete(cat, fg->s->id, err) < 0)
        return -1;
    for (size_t j = 0; j < fg->nfreed; j++) {
        if (catalog_snapshot_drop_image(cat, job_id(fg->job), fg->freed[j], err) < 0)
            return -1;
    }
    return 0;
}

static void unlink_files(struct gvmd *d, json_t *files)
{
    size_t i;
    json_t *f;

    json_array_foreach(files, i, f) {
        struct gvm_store *st = NULL;
        struct gvm_error e = { 0 };
        const char *path = json_string_value(json_object_get(f, "path"));
        int64_t vol = json_integer_value(json_object_get(f, "volume"));
        int r;

        if (!path || volumes_store_by_id(d->vols, vol, &st, &e) < 0) {
            log_warn("Cannot delete a freed image file: %s", e.message);
            continue;
        }
        r = st->ops->unlink(st, path);
        if (r < 0 && r != -ENOENT)
            log_warn("Deleting the freed image file %s failed: %s", path,
                     strerror(-r));
    }
}

/* Was f chosen at creation to be committed into its backing? */
static bool planned_commit(json_t *p, int64_t f)
{
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(p, "commit"), i, e)
        if (json_integer_value(e) == f)
            return true;
    return false;
}

static int delete_run(struct job *job, struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    int64_t sid = json_integer_value(json_object_get(p, "snapshot"));
    const char *name = json_string_value(json_object_get(p, "name"));
    bool meta = json_is_true(json_object_get(p, "metadata-only"));
    _cleanup_snap_ struct catalog_snapshot s = { 0 };
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_free_ int64_t *freed = NULL;
    _cleanup_json_ json_t *files = json_array();
    size_t nfreed = 0;
    int r;

    if (!files)
        return gvm_error_oom(err);
    if (catalog_snapshot_get(d->cat, sid, &s, err) < 0)
        return -1;
    if (meta) {
        struct forget fg = { .job = job, .s = &s };
        return catalog_txn(d->cat, forget_txn, &fg, err) < 0 ? -1 : 0;
    }
    freed = calloc(s.ndisks ? s.ndisks : 1, sizeof(*freed));
    if (!freed)
        return gvm_error_oom(err);
    /* Checked at the start; again now, before the journal and any write. */
    if (delete_check_overlays(d, &s, err) < 0)
        return -1;
    if (journal_begin(d->cat, "snapshot-delete", job_id(job), p, &op, err) < 0)
        return -1;
    for (size_t i = 0; i < s.ndisks; i++) {
        _cleanup_catimg_ struct catalog_image f = { 0 };
        _cleanup_free_ int64_t *kids = NULL;
        size_t nk = 0;
        int64_t other = 0, dom = 0;

        if (catalog_image_get(d->cat, s.disks[i].image_id, &f, err) < 0)
            goto undo;
        /* Frozen by another snapshot too, or somebody's active disk: the
         * file stays; only this record goes. */
        {
            CATALOG_LOCK_GUARD(d->cat);
            r = catalog_snapshot_frozen_by(d->cat, f.id, &other, err);
        }
        if (r < 0)
            goto undo;
        if (other != s.id) {
            log_info("Deleting snapshot %s: image %s:%s is frozen by snapshot "
                     "%" PRId64 " as well and stays.", name, f.volume, f.path, other);
            continue;
        }
        r = catalog_domain_of_image(d->cat, f.id, &dom, NULL, err);
        if (r < 0)
            goto undo;
        if (r > 0) {
            log_info("Deleting snapshot %s: image %s:%s is a disk of domain "
                     "%" PRId64 " and stays.", name, f.volume, f.path, dom);
            continue;
        }
        if (catalog_image_children(d->cat, f.id, &kids, &nk, err) < 0)
            goto undo;
        r = nk > 0 && planned_commit(p, f.id) ? parent_private(d, &f, err) : 0;
        if (r < 0)
            goto undo;
        if (r > 0) {
            log_info("Deleting snapshot %s: committing %s:%s into its "
                     "backing file, which nothing else uses.", name, f.volume,
                     f.path);
            r = chain_commit_merge(job, op, f.id, err);
            if (r == JOB_STOPPED) {
                struct gvm_error e2 = { 0 };
                journal_undone(op, &e2);
                return JOB_STOPPED;
            }
            if (r < 0)
                goto undo;
            nk = 0;             /* every child now sits on F's backing */
        } else {
            job_set_progress(job, 0, nk * f.virtual_size);
        }
        for (size_t c = 0; c < nk; c++) {
            r = move_child(job, op, kids[c], &f, err);
            if (r == JOB_STOPPED) {
                struct gvm_error e2 = { 0 };
                journal_undone(op, &e2);
                return JOB_STOPPED;
            }
            if (r < 0)
                goto undo;
        }
        freed[nfreed++] = f.id;
        json_array_append_new(files, json_pack("{s:I, s:s}", "volume",
                                               (json_int_t)f.volume_id,
                                               "path", f.path));
    }
    {
        _cleanup_json_ json_t *pl = json_pack("{s:O}", "files", files);
        struct forget fg = { .job = job, .op = op, .s = &s, .freed = freed,
                             .nfreed = nfreed, .payload = pl };
        if (!pl) {
            gvm_error_oom(err);
            goto undo;
        }
        if (catalog_txn(d->cat, forget_txn, &fg, err) < 0)
            goto undo;
    }
    r = journal_fault_point("snapshot-delete.forgotten");
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Fault injected after "
                            "snapshot %s was removed from the catalog", name);
        return -1;
    }
    unlink_files(d, files);
    if (journal_done(op, err) < 0)
        return -1;
    /* A stopped domain's definition must not give the old chains. */
    if (s.domain_id > 0 &&
        virt_define_sync_domain(d, s.domain_id, "The snapshot is deleted and "
                                "the catalog records it", err) < 0)
        return -1;
    return 0;

undo:
    {
        /* Every child moved so far reads as before, and the catalog says
         * where it points: consistent, whatever step failed. */
        struct gvm_error e2 = { 0 }, e3 = { 0 };
        journal_undone(op, &e2);
        gvm_error_set(&e3, err->cls, "Deleting snapshot %s failed; every "
                      "image still reads as before and the snapshot is kept: "
                      "%s", name, err->message);
        *err = e3;
    }
    return -1;
}

static int delete_recover(struct job *job, struct journal_op *op,
                          const struct journal_entry *e, size_t n,
                          struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    const struct journal_entry *last = op ? journal_last_pending(e, n) : NULL;

    for (size_t i = 0; op && i < n; i++) {
        if (strcmp(e[i].kind, "forget") == 0 && !e[i].undone) {
            /* The catalog change is committed: only files may be left. */
            unlink_files(d, json_object_get(e[i].payload, "files"));
            if (journal_done(op, err) < 0)
                return -1;
            return JOB_RECOVERED_DONE;
        }
    }
    if (op && !last && n > 0 && !e[n - 1].undone)
        return JOB_RECOVERED_DONE;
    if (op && chain_commit_merge_recover(job, e, n, err) < 0)
        return -1;
    if (last && (strcmp(last->kind, "pull") == 0 ||
                 strcmp(last->kind, "switch-backing") == 0)) {
        int64_t cid = json_integer_value(json_object_get(last->payload, "child"));
        int64_t to = json_integer_value(json_object_get(last->payload, "to"));
        const char *nn = json_string_value(json_object_get(last->payload, "new-name"));
        const char *nf = json_string_value(json_object_get(last->payload, "new-format"));

        repair_leaks(d, cid);
        if (strcmp(last->kind, "switch-backing") == 0) {
            _cleanup_catimg_ struct catalog_image c = { 0 };
            _cleanup_rctx_ struct resolve_ctx ctx;
            struct img *ci = NULL;
            struct img_info info = { 0 };

            resolve_ctx_init(&ctx, d);
            if (catalog_image_get(d->cat, cid, &c, err) < 0 ||
                open_row(d, &ctx, &c, IMG_OPEN_NOBACKING, &ci, err) < 0)
                return -1;
            if (img_get_info(ci, &info) == 0 &&
                gvm_streq0(info.backing_filename, nn) && gvm_streq0(info.backing_format, nf)) {
                log_info("Snapshot delete: the header of %s:%s already names "
                         "%s; recording it.", c.volume, c.path, nn ? nn : "nothing");
                if (catalog_image_set_backing(d->cat, cid, to, nn, nf, err) < 0) {
                    img_info_clear(&info);
                    img_close(ci);
                    return -1;
                }
            }
            img_info_clear(&info);
            img_close(ci);
        }
    }
    if (op && journal_undone(op, err) < 0)
        return -1;
    return job_cancel_requested(job) ? JOB_RECOVERED_CANCELLED
                                     : JOB_RECOVERED_RESUME;
}

const struct job_type snapshot_delete_job = {
    .name = "snapshot-delete",
    .run = delete_run,
    .recover = delete_recover,
};
