/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-commit.c — offline block-commit as a job.
 *
 * block-commit {top, base?}: chain  base <- i1 <- ... <- top <- children.
 * The "removed" images are top and every image between it and base.
 *   1. copy: for every range top reads from a removed layer, write what top
 *      reads there into base (zeros as zeros); ranges top reads as zeros
 *      because a removed layer is shorter than base get zeros in base too.
 *      From then on base reads what top reads; top and its children read as
 *      before (they hide base wherever it changed); the intermediates do
 *      not, but they go away.
 *   2. switch: the header of every child of top names base.
 *   3. remove: in one catalog transaction the children's edges move to
 *      base, a domain disk on top moves to base (offline active commit),
 *      the removed images' rows go; then their files are deleted.
 *
 * Journal and recovery:
 *   step "grow" {old-size, new-size}  pending while a base smaller than
 *     top grows to top's size (img_resize), before any data moves.  The
 *     new range reads zeros, as every image above base read there (past
 *     base's old end), so nothing above base reads differently.  R0: the
 *     image reads as the old or the new size; write those zeros again
 *     (img_resize cannot promise them across a crash when base has a
 *     longer backing file), record base's size in the catalog, then R1.
 *   step "copying"  pending while data is copied.  R1: nothing that any
 *     image the commit keeps visible (top and above) reads has changed:
 *     roll back (repair leaks in base) and run again, or conclude
 *     cancelled.  Copying again writes the same bytes.
 *   step "switch"   pending from before the first child header write.  The
 *     copy was complete and flushed.  R2: roll forward: every child header
 *     naming the old backing is rewritten (one naming base already landed;
 *     anything else is a Conflict), then step 3.
 *   step "remove"   recorded in the same transaction as the catalog change,
 *     so pending means the catalog is done.  R3: delete the files left
 *     (missing ones are fine) and conclude done.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "chain-check.h"
#include "chain-ops.h"
#include "chain.h"
#include "jsonutil.h"
#include "resolve.h"
#include "virt-define.h"
#include "volume.h"

#define RUN (8u << 20)           /* bytes read/written per call */
#define MAP_SPAN (1ull << 30)    /* bytes mapped per img_map call */
/* Bytes per store-side copy call (img_write_copy): one write batch of the
 * engine each, so the flushes of a batch are paid once per GiB; progress
 * and cancellation are looked at in between. */
#define COPY_RUN (1ull << 30)

/* For chain_commit_only_child() in this file's messages. */
#define COMMITTED "the committed chain"

int chain_commit_only_child(struct gvmd *d, int64_t id, int64_t allowed,
                            const char *chain, const char *why,
                            struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = NULL;
    _cleanup_free_ char *me = NULL;
    size_t n = 0;

    if (catalog_image_children(d->cat, id, &ids, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *other = NULL;
        if (ids[i] == allowed)
            continue;
        other = resolve_image_name(d, ids[i]);
        me = resolve_image_name(d, id);
        gvm_error_set(err, GVM_ERR_IN_USE, "The image %s is also the backing "
                      "file of %s (id %" PRId64 "), outside %s: %s",
                      me ? me : "?", other ? other : "?", ids[i], chain, why);
        return -1;
    }
    return 0;
}

int chain_commit_check(struct gvmd *d, int64_t top_id, int64_t base_id,
                       const int64_t *chain, size_t k, struct gvm_error *err)
{
    _cleanup_free_ char *tn = resolve_image_name(d, top_id);
    _cleanup_free_ char *bn = resolve_image_name(d, base_id);
    char what[1024];

    snprintf(what, sizeof(what), "Committing %s into %s", tn ? tn : "?",
             bn ? bn : "?");
    /* base reads what top read; top and everything down to base go; a
     * domain disk on top moves to base (reading the same). */
    return chain_check_preconditions(d, what, &base_id, 1, chain, k, top_id,
                                     err);
}

int chain_commit_start(struct gvmd *d, const struct chain_commit_req *req,
                       json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved top = { 0 };
    _cleanup_resolved_ struct resolved base = { 0 };
    _cleanup_json_ json_t *params = NULL, *images = NULL, *removed = NULL,
                          *children = NULL;
    _cleanup_free_ int64_t *kids = NULL;
    struct catalog_job_lock locks[3 * IMG_MAX_CHAIN_DEPTH + 2];
    size_t nlocks = 0, nkids = 0;
    int64_t chain[IMG_MAX_CHAIN_DEPTH];
    size_t k = 0;
    int64_t id, base_id;

    if (resolve_catalogued(d, req->top, "top", &top, err) < 0)
        return -1;
    if (strcmp(top.row.format, "qcow2") != 0 || top.row.backing_id <= 0) {
        gvm_error_param(err, "top", "The image %s:%s has no catalogued backing "
                        "file to commit into.", top.vol.name, top.path);
        return -1;
    }
    if (req->base && !json_is_null(req->base)) {
        if (resolve_catalogued(d, req->base, "base", &base, err) < 0)
            return -1;
    } else {
        if (catalog_image_get(d->cat, top.row.backing_id, &base.row, err) < 0)
            return -1;
        base.catalogued = true;
    }
    base_id = base.row.id;
    if (base_id == top.row.id) {
        gvm_error_param(err, "base", "The base of a commit cannot be the top "
                        "image itself.");
        return -1;
    }

    /* top .. the image above base, from the catalog. */
    for (id = top.row.id; id > 0 && id != base_id;) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        if (k >= IMG_MAX_CHAIN_DEPTH) {
            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below "
                          "%s:%s is deeper than %d images.", top.vol.name,
                          top.path, IMG_MAX_CHAIN_DEPTH);
            return -1;
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        chain[k++] = id;
        id = row.backing_id;
    }
    if (id != base_id) {
        _cleanup_free_ char *bn = resolve_image_name(d, base_id);
        gvm_error_param(err, "base", "The image %s is not in the backing chain "
                        "of %s:%s.", bn ? bn : "?", top.vol.name, top.path);
        return -1;
    }
    /* A base smaller than top grows to top's size (step "grow"). */
    if (!req->pivot && catalog_image_children(d->cat, top.row.id, &kids,
                                              &nkids, err) == 0 && nkids == 0) {
        gvm_error_param(err, "pivot", "An offline active commit of %s:%s "
                        "always pivots to the base; pivot false is only for "
                        "a running domain.", top.vol.name, top.path);
        return -1;
    }
    free(steal_pointer(&kids));
    nkids = 0;

    /* Committing changes what base (and every intermediate) reads: nothing
     * outside the chain may depend on them. */
    if (chain_commit_only_child(d, base_id, chain[k - 1], COMMITTED,
                                "committing into it would change what that "
                                "image reads.", err) < 0)
        return -1;
    for (size_t i = 1; i < k; i++) {
        if (chain_commit_only_child(d, chain[i], chain[i - 1], COMMITTED,
                                    "the commit removes it from the chain.",
                                    err) < 0)
            return -1;
    }
    /* Snapshots, domain disks and overlays the catalog does not know. */
    if (chain_commit_check(d, top.row.id, base_id, chain, k, err) < 0)
        return -1;
    if (catalog_image_children(d->cat, top.row.id, &kids, &nkids, err) < 0)
        return -1;

    removed = json_array();
    children = json_array();
    images = json_array();
    if (!removed || !children || !images)
        return gvm_error_oom(err);
    if (chain_commit_plan_removed(d, chain, k, removed, images, locks,
                                  &nlocks, err) < 0)
        return -1;
    json_array_append_new(images, json_integer(base_id));
    locks[nlocks++] = (struct catalog_job_lock){ .image_id = base_id, .write = true };
    for (size_t i = 0; i < nkids; i++) {
        json_array_append_new(children, json_integer(kids[i]));
        locks[nlocks++] = (struct catalog_job_lock){ .image_id = kids[i], .write = true };
    }
    /* Below base: read only, must not change under the copy. */
    for (id = base.row.backing_id; id > 0;) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        if (nlocks >= GVM_ARRAY_SIZE(locks)) {
            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below "
                          "the base is deeper than %d images.", IMG_MAX_CHAIN_DEPTH);
            return -1;
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        locks[nlocks++] = (struct catalog_job_lock){ .image_id = id, .write = false };
        id = row.backing_id;
    }

    params = json_pack("{s:I, s:I, s:I, s:O, s:O}",
                       "top", (json_int_t)top.row.id,
                       "base", (json_int_t)base_id,
                       "speed", (json_int_t)req->speed,
                       "removed", removed, "children", children);
    if (!params)
        return gvm_error_oom(err);
    return chain_job_start(d, &chain_commit_job, params, images, locks, nlocks, req->op_id,
                           "commit", &top, result, err);
}

/* ---- the job ------------------------------------------------------------------ */

struct plan { uint64_t data, total; };

struct commit {
    struct job *job;
    struct gvmd *d;
    int64_t top_id, base_id;
    uint64_t speed;
    json_t *removed, *children;         /* borrowed from the params */
    struct catalog_image base;          /* base's catalog row       */
    char *name, *base_name;             /* "VOLUME:PATH"            */
    struct resolve_ctx ctx;
    uint64_t cut;                       /* end of the shortest removed layer */
    struct plan plan;                   /* of [0, top's size): commit_plan */
    bool planned;
};

static void commit_clear(struct commit *c)
{
    catalog_image_clear(&c->base);
    free(c->name);
    free(c->base_name);
    resolve_ctx_clear(&c->ctx);
}

/* p: the job's params (or chain_commit_merge's, which have the same form). */
static int commit_init(struct commit *c, struct job *job, json_t *p,
                       struct gvm_error *err)
{
    json_t *t;

    memset(c, 0, sizeof(*c));
    c->job = job;
    c->d = job_daemon(job);
    resolve_ctx_init(&c->ctx, c->d);
    c->top_id = json_integer_value(json_object_get(p, "top"));
    c->base_id = json_integer_value(json_object_get(p, "base"));
    c->speed = (uint64_t)json_integer_value(json_object_get(p, "speed"));
    c->removed = json_object_get(p, "removed");
    c->children = json_object_get(p, "children");
    if (c->top_id <= 0 || c->base_id <= 0 || !json_is_array(c->removed) ||
        json_array_size(c->removed) == 0 || !json_is_array(c->children)) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Job %" PRId64 " has unusable "
                      "parameters; nothing was changed.", job_id(job));
        return -1;
    }
    t = json_array_get(c->removed, 0);
    c->name = resolve_name(json_string_value(json_object_get(t, "volume")),
                           json_string_value(json_object_get(t, "path")));
    if (catalog_image_get(c->d->cat, c->base_id, &c->base, err) < 0)
        return -1;
    c->base_name = resolve_name(c->base.volume, c->base.path);
    return c->name && c->base_name ? 0 : gvm_error_oom(err);
}

/* Open a catalogued image (by row) through the context. */
static int open_row(struct commit *c, const struct catalog_image *row,
                    unsigned flags, struct img **out, struct gvm_error *err)
{
    _cleanup_free_ char *name = resolve_name(row->volume, row->path);
    struct gvm_store *st = NULL;
    struct img_resolver res;
    enum img_format fmt;
    int r;

    if (img_format_parse(row->format, &fmt) < 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "The image %s has format "
                      "'%s'.", name ? name : "?", row->format);
        return -1;
    }
    if (volumes_store_by_id(c->d->vols, row->volume_id, &st, err) < 0)
        return -1;
    if (resolve_ctx_add(&c->ctx, st, row->volume_id, row->volume) < 0)
        return gvm_error_oom(err);
    res = resolve_img_resolver(&c->ctx);
    r = img_open_hint(st, row->path, fmt, flags, &res, 0, row->backing_format,
                      out, err);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Opening %s failed", name ? name : "?");
        return -1;
    }
    return 0;
}

static int open_id(struct commit *c, int64_t id, unsigned flags,
                   struct img **out, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };

    if (catalog_image_get(c->d->cat, id, &row, err) < 0)
        return -1;
    return open_row(c, &row, flags, out, err);
}

/* Sleep as long as needed to keep to speed bytes/s since start. */
static void throttle(struct job *job, uint64_t speed, const struct timespec *t0,
                     uint64_t done)
{
    struct timespec now;
    double want, el;

    if (!speed)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    el = (double)(now.tv_sec - t0->tv_sec) + (now.tv_nsec - t0->tv_nsec) / 1e9;
    want = (double)done / (double)speed;
    while (want > el && !job_should_stop(job)) {
        double s = want - el > 0.1 ? 0.1 : want - el;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)(s * 1e9) };
        nanosleep(&ts, NULL);
        el += s;
    }
}

/* What one range of top needs in base. */
enum act { ACT_NONE, ACT_DATA, ACT_ZERO };

static enum act classify(const struct img_extent *e, int k)
{
    if (e->present && e->depth < k)
        return e->zero ? ACT_ZERO : ACT_DATA;
    return ACT_NONE;
}

/*
 * Walk top's map over [0, end) and call fn for each range needing work in
 * base: ACT_DATA / ACT_ZERO as classify() says, and ACT_ZERO for ranges
 * past `cut` (the end of the shortest removed layer) that no removed layer
 * allocates: top reads zeros there although base may hold data.
 */
typedef int (*range_fn)(void *opaque, enum act a, uint64_t off, uint64_t len,
                        const struct img_extent *e);

static int walk(struct img *top, int k, uint64_t cut, uint64_t end,
                range_fn fn, void *opaque)
{
    for (uint64_t off = 0; off < end;) {
        uint64_t span = end - off < MAP_SPAN ? end - off : MAP_SPAN;
        struct img_extent *ext = NULL;
        size_t n = 0;
        int r = img_map(top, off, span, &ext, &n);

        if (r < 0)
            return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
            uint64_t s = ext[i].start, e = s + ext[i].length;
            enum act a = classify(&ext[i], k);

            if (e > end)
                e = end;
            if (a != ACT_NONE) {
                r = fn(opaque, a, s, e - s, &ext[i]);
            } else if (e > cut) {
                uint64_t s2 = s > cut ? s : cut;
                r = fn(opaque, ACT_ZERO, s2, e - s2, NULL);
            }
        }
        free(ext);
        if (r < 0)
            return r;
        off += span;
    }
    return 0;
}

static int plan_fn(void *opaque, enum act a, uint64_t off, uint64_t len,
                   const struct img_extent *e)
{
    struct plan *p = opaque;
    (void)off;
    (void)e;
    if (a == ACT_DATA)
        p->data += len;
    p->total += len;
    return 0;
}

struct copier {
    struct commit *c;
    struct img *top, *base;
    uint8_t *buf;
    uint64_t done, total, fail_off;
    struct timespec t0;
};

/* The layer of top's chain that holds a data extent's bytes at its
 * offset, or NULL when the bytes must be read through top (compressed,
 * or no offset to copy from). */
static struct img *source_layer(struct img *top, const struct img_extent *e)
{
    struct img *l = top;

    if (!e || !e->data || e->zero || !e->has_offset)
        return NULL;
    for (int i = 0; l && i < e->depth; i++)
        l = img_backing(l);
    return l;
}

static int copy_fn(void *opaque, enum act a, uint64_t off, uint64_t len,
                   const struct img_extent *e)
{
    struct copier *cp = opaque;
    struct img *src = a == ACT_DATA ? source_layer(cp->top, e) : NULL;
    int r;

    while (len > 0) {
        /* Store-side copies in large runs, unless a speed limit wants
         * small steps. */
        uint64_t step = src && !cp->c->speed ? COPY_RUN : RUN;
        size_t n = len < step ? (size_t)len : (size_t)step;

        if (job_should_stop(cp->c->job))
            return JOB_STOPPED;
        cp->fail_off = off;
        r = journal_fault_point("block-commit.run");
        if (r < 0)
            return r;
        r = -EXDEV;
        if (src)
            r = img_write_copy(cp->base, off, n, src,
                               e->offset + (off - e->start));
        if (r == -EXDEV || r == -ENODATA || r == -EOPNOTSUPP) {
            /* No store-side copy (another store, or a source file shorter
             * than its map): through the buffer, which reads what top
             * reads (zeros past a file's end). */
            if (src && n > RUN)
                n = RUN;
            src = NULL;
            if (a == ACT_DATA) {
                r = img_read(cp->top, cp->buf, off, n);
                if (r == 0)
                    r = img_write(cp->base, cp->buf, off, n);
            } else {
                r = img_write_zeroes(cp->base, off, n);
            }
        }
        if (r < 0)
            return r;
        cp->done += n;
        job_set_progress(cp->c->job, cp->done, cp->total);
        throttle(cp->c->job, cp->c->speed, &cp->t0, cp->done);
        off += n;
        len -= n;
    }
    return 0;
}

/* Repair leaks in base after an interrupted copy (best effort). */
static void repair_leaks(struct commit *c)
{
    _cleanup_img_ struct img *b = NULL;
    struct gvm_error err = { 0 };
    struct img_check_result res;

    if (strcmp(c->base.format, "qcow2") != 0)
        return;
    if (open_row(c, &c->base, IMG_OPEN_RW | IMG_OPEN_NOBACKING, &b, &err) < 0 ||
        img_check(b, IMG_REPAIR_LEAKS, &res, &err) < 0)
        log_warn("Commit into %s: leak check after the interrupted copy "
                 "failed: %s", c->base_name, err.message);
}

/* Grow a raw base to size (zeros at the end). */
static int grow_raw(struct commit *c, uint64_t size, struct gvm_error *err)
{
    struct gvm_store *st = NULL;
    struct gvm_file *f = NULL;
    uint64_t cur = 0;
    int r;

    if (volumes_store_by_id(c->d->vols, c->base.volume_id, &st, err) < 0)
        return -1;
    r = st->ops->open(st, c->base.path, GVM_O_RDWR, &f);
    if (r == 0) {
        r = st->ops->getsize(f, &cur);
        /* Called for every commit into a raw base: big enough already
         * is nothing to write and nothing to flush. */
        if (r == 0 && cur < size) {
            r = st->ops->truncate(f, size);
            if (r == 0)
                r = st->ops->flush(f);
        }
        st->ops->close(f);
    }
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Growing the raw base %s to %" PRIu64 " bytes "
                            "failed", c->base_name, size);
        return -1;
    }
    return 0;
}

/* How far top's children reach into base (at most base_size). */
static uint64_t children_end(struct commit *c, uint64_t base_size)
{
    uint64_t m = 0;
    size_t i;
    json_t *e;

    json_array_foreach(c->children, i, e) {
        struct catalog_image row = { 0 };
        struct gvm_error err = { 0 };
        if (catalog_image_get(c->d->cat, json_integer_value(e), &row, &err) == 0 &&
            row.virtual_size > m)
            m = row.virtual_size;
        catalog_image_clear(&row);
    }
    return m < base_size ? m : base_size;
}

/*
 * The chain on storage must be the catalogued one from top down to base:
 * 0 with c->cut set (the end of the shortest removed layer), or -1 with
 * err set.  top: opened with its backing chain.
 */
static int check_storage_chain(struct commit *c, struct img *top,
                               struct gvm_error *err)
{
    struct img *l = top;
    size_t k = json_array_size(c->removed);

    c->cut = UINT64_MAX;
    for (size_t i = 0; i < k; i++) {
        json_t *e = json_array_get(c->removed, i);
        if (!l || strcmp(img_path(l), json_string_value(json_object_get(e, "path"))) != 0)
            break;
        if (img_virtual_size(l) < c->cut)
            c->cut = img_virtual_size(l);
        l = img_backing(l);
    }
    if (!l || strcmp(img_path(l), c->base.path) != 0) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The backing chain of %s on "
                      "storage does not reach the base %s through the images "
                      "the catalog lists; nothing was changed: check it with "
                      "chain-audit.", c->name, c->base_name);
        return -1;
    }
    return 0;
}

/*
 * The storage preconditions, before the journal and the first write: the
 * chain on storage is the catalogued one, and base's volume has room for
 * every data byte the commit may write.  Sets c->plan over [0, top's
 * size), the range the copy covers once step "grow" made base as large.
 * 0, or -1 with err set.
 */
static int commit_plan(struct commit *c, struct gvm_error *err)
{
    _cleanup_img_ struct img *top = NULL;
    struct gvm_store *st = NULL;
    uint64_t free_b = 0, total_b = 0;
    int r;

    if (open_id(c, c->top_id, 0, &top, err) < 0 ||
        check_storage_chain(c, top, err) < 0)
        return -1;
    memset(&c->plan, 0, sizeof(c->plan));
    r = walk(top, (int)json_array_size(c->removed), c->cut,
             img_virtual_size(top), plan_fn, &c->plan);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Mapping %s failed; nothing was changed", c->name);
        return -1;
    }
    if (volumes_store_by_id(c->d->vols, c->base.volume_id, &st, err) < 0)
        return -1;
    /* No answer from statvfs is no reason to refuse: the copy then
     * reports ENOSPC itself, before the point of no return. */
    if (st->ops->statvfs(st, &free_b, &total_b) == 0 && free_b < c->plan.data) {
        gvm_error_set(err, GVM_ERR_NO_SPACE, "Committing %s into %s needs up "
                      "to %" PRIu64 " bytes but its volume has %" PRIu64 " "
                      "free; nothing was changed.", c->name, c->base_name,
                      c->plan.data, free_b);
        return -1;
    }
    c->planned = true;
    return 0;
}

/* The copy (step "copying"): 0, JOB_STOPPED, or -1 with err set. */
static int copy_into_base(struct commit *c, struct gvm_error *err)
{
    _cleanup_img_ struct img *top = NULL;
    _cleanup_img_ struct img *base = NULL;
    _cleanup_free_ uint8_t *buf = NULL;
    struct copier cp = { .c = c };
    struct plan plan = c->plan;
    uint64_t end, zend;
    size_t k = json_array_size(c->removed);
    int r;

    if (open_id(c, c->top_id, 0, &top, err) < 0 ||
        check_storage_chain(c, top, err) < 0)
        return -1;
    end = img_virtual_size(top);
    if (strcmp(c->base.format, "raw") == 0 &&
        grow_raw(c, end, err) < 0)
        return -1;
    if (open_row(c, &c->base, IMG_OPEN_RW, &base, err) < 0)
        return -1;
    if (img_virtual_size(base) < end || !c->planned) {
        /* Not the range commit_plan mapped (a resumed job plans here). */
        if (img_virtual_size(base) < end)
            end = img_virtual_size(base);
        memset(&plan, 0, sizeof(plan));
        r = walk(top, (int)k, c->cut, end, plan_fn, &plan);
        if (r < 0) {
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "Mapping %s failed", c->name);
            return -1;
        }
    }
    zend = children_end(c, img_virtual_size(base));
    if (zend > end)
        plan.total += zend - end;
    buf = malloc(RUN);
    if (!buf)
        return gvm_error_oom(err);
    cp.top = top;
    cp.base = base;
    cp.buf = buf;
    cp.total = plan.total;
    clock_gettime(CLOCK_MONOTONIC, &cp.t0);
    job_set_progress(c->job, 0, plan.total);
    r = walk(top, (int)k, c->cut, end, copy_fn, &cp);
    /* A child larger than top read zeros past top's end; once it sits on
     * base it must still read zeros there. */
    if (r == 0 && zend > end)
        r = copy_fn(&cp, ACT_ZERO, end, zend - end, NULL);
    if (r == 0)
        r = img_flush(base);
    if (r == JOB_STOPPED)
        return JOB_STOPPED;
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Committing %s into %s failed near offset %" PRIu64
                            "; %s and the images above it still read as "
                            "before, the chain is unchanged", c->name,
                            c->base_name, cp.fail_off, c->name);
        return -1;
    }
    job_set_progress(c->job, plan.total, plan.total);
    return 0;
}

/* The new header fields of child id: {id, old-name, old-format, new-name}. */
static json_t *child_switch(struct commit *c, int64_t id, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    struct catalog_volume cv = { 0 }, bv = { 0 };
    _cleanup_free_ char *nn = NULL;
    json_t *o = NULL;

    if (catalog_image_get(c->d->cat, id, &row, err) < 0)
        return NULL;
    if (catalog_volume_get_by_id(c->d->cat, row.volume_id, &cv, err) < 0)
        return NULL;
    if (catalog_volume_get_by_id(c->d->cat, c->base.volume_id, &bv, err) < 0) {
        catalog_volume_clear(&cv);
        return NULL;
    }
    nn = resolve_backing_name(c->d->vols, &cv, row.path, &bv, c->base.path);
    catalog_volume_clear(&cv);
    catalog_volume_clear(&bv);
    if (nn)
        o = json_pack("{s:I, s:s?, s:s?, s:s}", "id", (json_int_t)id,
                      "old-name", row.backing_filename,
                      "old-format", row.backing_format, "new-name", nn);
    if (!o)
        gvm_error_oom(err);
    return o;
}

/* R2 for one child: make its header name base. */
static int switch_child(struct commit *c, json_t *sw, struct gvm_error *err)
{
    _cleanup_img_ struct img *ch = NULL;
    _cleanup_info_ struct img_info info = { 0 };
    int64_t id = json_integer_value(json_object_get(sw, "id"));
    const char *old_name = json_string_value(json_object_get(sw, "old-name"));
    const char *old_fmt = json_string_value(json_object_get(sw, "old-format"));
    const char *new_name = json_string_value(json_object_get(sw, "new-name"));
    _cleanup_free_ char *cn = resolve_image_name(c->d, id);
    int r;

    if (open_id(c, id, IMG_OPEN_RW | IMG_OPEN_NOBACKING, &ch, err) < 0)
        return -1;
    if (img_get_info(ch, &info) < 0)
        return gvm_error_oom(err);
    if (gvm_streq0(info.backing_filename, new_name) &&
        gvm_streq0(info.backing_format, c->base.format))
        return 0;
    if (!gvm_streq0(info.backing_filename, old_name) ||
        !gvm_streq0(info.backing_format, old_fmt)) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The header of %s names the "
                      "backing file %s, neither %s nor the commit's base %s; "
                      "check it with chain-audit.", cn ? cn : "?",
                      gvm_str_or_none(info.backing_filename), gvm_str_or_none(old_name),
                      new_name);
        return -1;
    }
    r = img_set_backing(ch, new_name, c->base.format, err);
    if (r == 0)
        r = img_flush(ch);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Writing the backing file name %s into the header "
                            "of %s failed", new_name, cn ? cn : "?");
        return -1;
    }
    return 0;
}

int chain_commit_plan_removed(struct gvmd *d, const int64_t *chain, size_t k,
                              json_t *removed, json_t *images,
                              struct catalog_job_lock *locks, size_t *nlocks,
                              struct gvm_error *err)
{
    for (size_t i = 0; i < k; i++) {
        _cleanup_catimg_ struct catalog_image row = { 0 };

        if (catalog_image_get(d->cat, chain[i], &row, err) < 0)
            return -1;
        if (json_array_append_new(removed, json_pack("{s:I, s:I, s:s, s:s}",
                                  "id", (json_int_t)row.id,
                                  "volume-id", (json_int_t)row.volume_id,
                                  "volume", row.volume, "path", row.path)) < 0 ||
            json_array_append_new(images, json_integer(row.id)) < 0)
            return gvm_error_oom(err);
        locks[(*nlocks)++] = (struct catalog_job_lock){ .image_id = row.id,
                                                        .write = true };
    }
    return 0;
}

int chain_commit_drop_removed(struct catalog *cat, int64_t job_id,
                              json_t *removed, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(removed, i, e) {
        int64_t id = json_integer_value(json_object_get(e, "id"));
        struct catalog_image row = { 0 };
        struct gvm_error e2 = { 0 };

        if (catalog_image_get(cat, id, &row, &e2) < 0)
            continue;           /* already gone */
        catalog_image_clear(&row);
        /* Our own lock goes with the image. */
        if (catalog_job_unlock_image(cat, job_id, id, err) < 0 ||
            catalog_image_delete(cat, id, err) < 0)
            return -1;
    }
    return 0;
}

/* Step 3 in the catalog: one transaction with the "remove" journal step. */
static int catalog_remove(struct commit *c, struct journal_op *op,
                          json_t *sws, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    if (catalog_begin(c->d->cat, err) < 0)
        return -1;
    if (journal_step(op, "remove", c->removed, err) < 0)
        goto fail;
    json_array_foreach(sws, i, e) {
        if (catalog_image_set_backing(c->d->cat,
                json_integer_value(json_object_get(e, "id")), c->base_id,
                json_string_value(json_object_get(e, "new-name")),
                c->base.format, err) < 0)
            goto fail;
    }
    /* An offline active commit: a domain's disk on top now is base. */
    if (catalog_domain_move_disks(c->d->cat, c->top_id, c->base_id, err) < 0 ||
        chain_commit_drop_removed(c->d->cat, job_id(c->job), c->removed, err) < 0)
        goto fail;
    return catalog_commit(c->d->cat, err);
fail:
    catalog_rollback(c->d->cat);
    return -1;
}

/* Delete the removed images' files (missing is fine). */
static int delete_files(struct commit *c, json_t *removed, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(removed, i, e) {
        struct gvm_store *st = NULL;
        const char *path = json_string_value(json_object_get(e, "path"));
        int r;

        if (volumes_store_by_id(c->d->vols,
                json_integer_value(json_object_get(e, "volume-id")), &st, err) < 0)
            return -1;
        r = journal_fault_point("block-commit.unlink");
        if (r == 0)
            r = st->ops->unlink(st, path);
        if (r < 0 && r != -ENOENT) {
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "The commit into %s is complete, but deleting "
                                "the file %s failed", c->base_name, path);
            return -1;
        }
    }
    return 0;
}

/* Steps 2 and 3 (roll forward from "switch"). */
static int finish(struct commit *c, struct journal_op *op, json_t *sws,
                  struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(sws, i, e) {
        if (switch_child(c, e, err) < 0)
            return -1;
        if (journal_fault_point("block-commit.child-switched") < 0) {
            gvm_error_set(err, GVM_ERR_STORAGE, "Fault injected after a "
                          "header switch of the commit into %s.", c->base_name);
            return -1;
        }
    }
    if (catalog_remove(c, op, sws, err) < 0)
        return -1;
    if (delete_files(c, c->removed, err) < 0)
        return -1;
    return journal_done(op, err);
}

/* Record base's size as storage has it now (after a grow). */
static int record_base_size(struct commit *c, uint64_t size,
                            struct gvm_error *err)
{
    if (c->base.virtual_size == size)
        return 0;
    if (catalog_image_set_header(c->d->cat, c->base_id, c->base.format, size,
                                 c->base.cluster_size, err) < 0)
        return -1;
    c->base.virtual_size = size;
    return 0;
}

/* Step "grow": 0 (also when base is big enough), or -1 with err set. */
static int grow_base(struct commit *c, struct journal_op *op,
                     struct gvm_error *err)
{
    _cleanup_img_ struct img *top = NULL;
    _cleanup_img_ struct img *base = NULL;
    _cleanup_json_ json_t *pl = NULL;
    uint64_t want, have;
    int r;

    if (open_id(c, c->top_id, IMG_OPEN_NOBACKING, &top, err) < 0)
        return -1;
    want = img_virtual_size(top);
    /* With its backing chain: img_resize must see what would show through. */
    if (open_row(c, &c->base, IMG_OPEN_RW, &base, err) < 0)
        return -1;
    have = img_virtual_size(base);
    if (have >= want)
        return record_base_size(c, have, err);
    pl = json_pack("{s:I, s:I}", "old-size", (json_int_t)have,
                   "new-size", (json_int_t)want);
    if (!pl)
        return gvm_error_oom(err);
    if (journal_step(op, "grow", pl, err) < 0)
        return -1;
    r = img_resize(base, want);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Growing the base %s from %" PRIu64 " to %" PRIu64
                            " bytes before the commit of %s failed; every "
                            "image above it still reads as before", c->base_name,
                            have, want, c->name);
        return -1;
    }
    log_info("Commit of %s: grew the base %s from %" PRIu64 " to %" PRIu64
             " bytes.", c->name, c->base_name, have, want);
    return record_base_size(c, want, err);
}

/* R0: a crash while base grew (payload: the "grow" step's). */
static int grow_recover(struct commit *c, json_t *pl, struct gvm_error *err)
{
    _cleanup_img_ struct img *base = NULL;
    uint64_t old = (uint64_t)json_integer_value(json_object_get(pl, "old-size"));
    uint64_t now;
    int r = 0;

    /* A write-open repairs what a v3 image's dirty bit covers. */
    if (open_row(c, &c->base, IMG_OPEN_RW, &base, err) < 0)
        return -1;
    now = img_virtual_size(base);
    if (now > old) {
        r = img_write_zeroes(base, old, now - old);
        if (r == 0)
            r = img_flush(base);
    }
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Zeroing the grown part of the base %s failed",
                            c->base_name);
        return -1;
    }
    img_close(steal_pointer(&base));
    repair_leaks(c);        /* v2: no dirty bit */
    return record_base_size(c, now, err);
}

/*
 * The catalog preconditions again (chain_commit_check), before the journal
 * and the first write: the job may have waited in the queue while
 * snapshots, disks or overlays appeared.  commit_plan then checks storage.
 * 0, or -1 with err set.
 */
static int commit_precheck(struct commit *c, struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = calloc(json_array_size(c->removed) + 1,
                                         sizeof(*ids));
    size_t i;
    json_t *e;

    if (!ids)
        return gvm_error_oom(err);
    json_array_foreach(c->removed, i, e)
        ids[i] = json_integer_value(json_object_get(e, "id"));
    return chain_commit_check(c->d, c->top_id, c->base_id, ids,
                              json_array_size(c->removed), err);
}

/*
 * Steps "grow" and "copying", then the header changes planned and the step
 * "switch" recorded (the point of no return): 0 with *sws set (the
 * children's switches), JOB_STOPPED, or -1 (err set; leaks in base
 * repaired).  The caller marks op undone unless this returned 0.
 */
static int copy_and_plan(struct commit *c, struct journal_op *op, json_t **sws,
                         struct gvm_error *err)
{
    _cleanup_json_ json_t *list = NULL, *payload = NULL;
    size_t i;
    json_t *e;
    int r;

    if (grow_base(c, op, err) < 0)
        return -1;
    if (journal_step(op, "copying", NULL, err) < 0)
        return -1;
    r = copy_into_base(c, err);
    if (r == JOB_STOPPED)
        return JOB_STOPPED;
    if (r < 0) {
        if (err->cls != GVM_ERR_NO_SPACE && err->cls != GVM_ERR_CONFLICT)
            repair_leaks(c);
        return -1;
    }
    if (job_should_stop(c->job))
        return JOB_STOPPED;
    list = json_array();
    if (!list)
        return gvm_error_oom(err);
    json_array_foreach(c->children, i, e) {
        json_t *s = child_switch(c, json_integer_value(e), err);
        if (!s)
            return -1;
        json_array_append_new(list, s);
    }
    payload = json_pack("{s:O}", "children", list);
    if (!payload)
        return gvm_error_oom(err);
    /* The point of no return. */
    if (journal_step(op, "switch", payload, err) < 0)
        return -1;
    *sws = steal_pointer(&list);
    return 0;
}

static int commit_run(struct job *job, struct gvm_error *err)
{
    struct commit c;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_json_ json_t *sws = NULL;
    struct chain_hold *hold = NULL;
    int ret = -1, r;

    if (commit_init(&c, job, job_params(job), err) < 0)
        goto out;
    /* The steps open base, top and the children one after the other: hold
     * them all from here to the end, so nobody opens one in between. */
    if (chain_hold_take(job, &hold, err) < 0)
        goto out;
    /* Every precondition before the journal and the first write. */
    if (commit_precheck(&c, err) < 0 || commit_plan(&c, err) < 0)
        goto out;
    if (journal_begin(c.d->cat, chain_commit_job.name, job_id(job),
                      job_params(job), &op, err) < 0)
        goto out;
    r = copy_and_plan(&c, op, &sws, err);
    if (r != 0) {
        if (r == JOB_STOPPED)
            ret = JOB_STOPPED;
        goto undo;
    }
    if (finish(&c, op, sws, err) < 0)
        goto out;
    /* An active commit: libvirt's definition must name base (virt-define.h). */
    if (virt_define_sync_image(c.d, c.base_id, "The commit is complete and "
                               "recorded in the catalog", err) < 0)
        goto out;
    ret = 0;
    goto out;

undo:
    if (op) {
        struct gvm_error e2 = { 0 };
        if (journal_undone(op, &e2) < 0)
            log_error("Commit of %s: closing its journal record failed: %s",
                      c.name ? c.name : "?", e2.message);
    }
out:
    chain_hold_release(hold);
    commit_clear(&c);
    return ret;
}

static int commit_recover(struct job *job, struct journal_op *op,
                          const struct journal_entry *e, size_t n,
                          struct gvm_error *err)
{
    struct commit c;
    const struct journal_entry *last = op ? journal_last_pending(e, n) : NULL;
    int ret = -1;

    memset(&c, 0, sizeof(c));
    if (last && strcmp(last->kind, "remove") == 0) {
        /* R3: the catalog is done; base's row still exists. */
        if (commit_init(&c, job, job_params(job), err) < 0 ||
            delete_files(&c, c.removed, err) < 0 || journal_done(op, err) < 0)
            goto out;
        log_info("Commit of %s: recovered after the catalog change; files "
                 "removed.", c.name);
        ret = JOB_RECOVERED_DONE;
        goto out;
    }
    if (commit_init(&c, job, job_params(job), err) < 0)
        goto out;
    if (!op || !last) {
        if (op && n > 0 && !e[n - 1].undone)
            ret = JOB_RECOVERED_DONE;
        else
            ret = job_cancel_requested(job) ? JOB_RECOVERED_CANCELLED
                                            : JOB_RECOVERED_RESUME;
        goto out;
    }
    if (strcmp(last->kind, "switch") == 0) {
        /* R2 */
        json_t *sws = json_object_get(last->payload, "children");
        log_info("Commit of %s: the copy into %s was complete; rolling "
                 "forward.", c.name, c.base_name);
        if (finish(&c, op, sws, err) < 0)
            goto out;
        ret = JOB_RECOVERED_DONE;
        goto out;
    }
    if (strcmp(last->kind, "grow") == 0) {
        log_info("Commit of %s: interrupted while growing the base %s.",
                 c.name, c.base_name);
        if (grow_recover(&c, last->payload, err) < 0)
            goto out;
    }
    /* R1 */
    log_info("Commit of %s: interrupted while copying into %s; rolled back, "
             "running it again.", c.name, c.base_name);
    repair_leaks(&c);
    if (journal_undone(op, err) < 0)
        goto out;
    ret = job_cancel_requested(job) ? JOB_RECOVERED_CANCELLED
                                    : JOB_RECOVERED_RESUME;
out:
    commit_clear(&c);
    return ret;
}

/* ---- a commit inside another job (snapshot-delete) ------------------------------ */

/* The children's headers, each followed by its catalog edge (top stays
 * catalogued, so the edges cannot wait for a "remove" transaction). */
static int merge_switch(struct commit *c, json_t *sws, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(sws, i, e) {
        if (switch_child(c, e, err) < 0)
            return -1;
        if (catalog_image_set_backing(c->d->cat,
                json_integer_value(json_object_get(e, "id")), c->base_id,
                json_string_value(json_object_get(e, "new-name")),
                c->base.format, err) < 0)
            return -1;
        if (journal_fault_point("block-commit.child-switched") < 0) {
            gvm_error_set(err, GVM_ERR_STORAGE, "Fault injected after a "
                          "header switch of the commit into %s.", c->base_name);
            return -1;
        }
    }
    return 0;
}

int chain_commit_merge(struct job *job, struct journal_op *op, int64_t top_id,
                       struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    _cleanup_catimg_ struct catalog_image top = { 0 };
    _cleanup_free_ int64_t *kids = NULL;
    _cleanup_json_ json_t *params = NULL, *children = NULL, *sws = NULL;
    struct commit c;
    size_t nk = 0;
    int ret = -1, r;

    memset(&c, 0, sizeof(c));
    if (catalog_image_get(d->cat, top_id, &top, err) < 0)
        return -1;
    if (strcmp(top.format, "qcow2") != 0 || top.backing_id <= 0) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The image %s:%s has no "
                      "catalogued backing file to commit into.", top.volume,
                      top.path);
        return -1;
    }
    if (chain_commit_only_child(d, top.backing_id, top_id, COMMITTED,
                                "committing into it would change what that "
                                "image reads.", err) < 0 ||
        catalog_image_children(d->cat, top_id, &kids, &nk, err) < 0)
        return -1;
    children = json_array();
    if (!children)
        return gvm_error_oom(err);
    for (size_t i = 0; i < nk; i++)
        json_array_append_new(children, json_integer(kids[i]));
    params = json_pack("{s:I, s:I, s:I, s:[{s:I, s:I, s:s, s:s}], s:O}",
                       "top", (json_int_t)top_id,
                       "base", (json_int_t)top.backing_id, "speed", (json_int_t)0,
                       "removed", "id", (json_int_t)top_id,
                       "volume-id", (json_int_t)top.volume_id,
                       "volume", top.volume, "path", top.path,
                       "children", children);
    if (!params)
        return gvm_error_oom(err);
    if (commit_init(&c, job, params, err) < 0 || commit_plan(&c, err) < 0)
        goto out;
    /* What recovery needs: the steps after it carry no parameters. */
    if (journal_step(op, "commit", params, err) < 0)
        goto out;
    r = copy_and_plan(&c, op, &sws, err);
    if (r != 0) {
        ret = r == JOB_STOPPED ? JOB_STOPPED : -1;
        goto out;
    }
    ret = merge_switch(&c, sws, err);
out:
    commit_clear(&c);
    return ret;
}

int chain_commit_merge_recover(struct job *job, const struct journal_entry *e,
                               size_t n, struct gvm_error *err)
{
    const struct journal_entry *last = journal_last_pending(e, n);
    json_t *params = NULL;
    struct commit c;
    int ret = -1;

    if (!last || (strcmp(last->kind, "grow") != 0 &&
                  strcmp(last->kind, "copying") != 0 &&
                  strcmp(last->kind, "switch") != 0))
        return 0;
    for (size_t i = n; i-- > 0 && !params;)
        if (strcmp(e[i].kind, "commit") == 0)
            params = e[i].payload;
    if (!params)
        return 0;
    memset(&c, 0, sizeof(c));
    if (commit_init(&c, job, params, err) < 0)
        goto out;
    if (strcmp(last->kind, "switch") == 0) {
        /* R2 without R3: the caller removes top. */
        log_info("Commit of %s into %s: the copy was complete; switching "
                 "the images above it.", c.name, c.base_name);
        if (merge_switch(&c, json_object_get(last->payload, "children"), err) < 0)
            goto out;
    } else {
        if (strcmp(last->kind, "grow") == 0 &&
            grow_recover(&c, last->payload, err) < 0)
            goto out;
        log_info("Commit of %s into %s: interrupted before the switch; "
                 "rolled back.", c.name, c.base_name);
        repair_leaks(&c);
    }
    ret = 1;
out:
    commit_clear(&c);
    return ret;
}

const struct job_type chain_commit_job = {
    .name = "block-commit",
    .run = commit_run,
    .recover = commit_recover,
};
