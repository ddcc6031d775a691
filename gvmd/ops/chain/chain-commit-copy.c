/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-commit-copy.c — block-commit's data steps (chain-commit.c has the
 * job, its journal and recovery): checking that the chain on storage is
 * the catalogued one and planning the copy, growing a smaller base to
 * top's size (step "grow", R0), and copying into base what top reads from
 * the removed layers (step "copying").
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "catalog-image.h"
#include "chain-commit.h"
#include "chain-job.h"
#include "jsonutil.h"
#include "volume.h"

int chain_commit_copy_open_id(struct chain_commit *c, int64_t id, unsigned flags,
                         struct img **out, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };

    if (catalog_image_get(c->d->cat, id, &row, err) < 0)
        return -1;
    return chain_job_open_row(c->d, &c->ctx, &row, flags, out, err);
}

void chain_commit_copy_repair_leaks(struct chain_commit *c)
{
    chain_job_repair_leaks(c->d, &c->ctx, &c->base, NULL, "Commit into %s",
                           c->base_name);
}

#define MAP_SPAN (1ull << 30)    /* bytes mapped per img_map call */

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
    struct chain_commit_plan *p = opaque;
    (void)off;
    (void)e;
    if (a == ACT_DATA)
        p->data += len;
    p->total += len;
    return 0;
}

/* The copy's ranges (range_fn) as runs of chain_job_copy_run. */
static int copy_fn(void *opaque, enum act a, uint64_t off, uint64_t len,
                   const struct img_extent *e)
{
    return chain_job_copy_run(opaque, a == ACT_DATA ? CHAIN_JOB_COPY_DATA
                                                    : CHAIN_JOB_COPY_ZERO,
                              off, len, e);
}

/* Grow a raw base to size (zeros at the end). */
static int grow_raw(struct chain_commit *c, uint64_t size, struct gvm_error *err)
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
static uint64_t children_end(struct chain_commit *c, uint64_t base_size)
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
static int check_storage_chain(struct chain_commit *c, struct img *top,
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

int chain_commit_copy_plan(struct chain_commit *c, struct gvm_error *err)
{
    _cleanup_img_ struct img *top = NULL;
    struct gvm_store *st = NULL;
    uint64_t free_b = 0, total_b = 0;
    int r;

    if (chain_commit_copy_open_id(c, c->top_id, 0, &top, err) < 0 ||
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
int chain_commit_copy_run(struct chain_commit *c, struct gvm_error *err)
{
    _cleanup_img_ struct img *top = NULL;
    _cleanup_img_ struct img *base = NULL;
    _cleanup_free_ uint8_t *buf = NULL;
    struct chain_job_copy cp = { .job = c->job, .speed = c->speed,
                                 .fault = "block-commit.run" };
    struct chain_commit_plan plan = c->plan;
    uint64_t end, zend;
    size_t k = json_array_size(c->removed);
    int r;

    if (chain_commit_copy_open_id(c, c->top_id, 0, &top, err) < 0 ||
        check_storage_chain(c, top, err) < 0)
        return -1;
    end = img_virtual_size(top);
    if (strcmp(c->base.format, "raw") == 0 &&
        grow_raw(c, end, err) < 0)
        return -1;
    if (chain_job_open_row(c->d, &c->ctx, &c->base, IMG_OPEN_RW, &base, err) < 0)
        return -1;
    if (img_virtual_size(base) < end || !c->planned) {
        /* Not the range chain_commit_copy_plan mapped (a resumed job plans here). */
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
    buf = malloc(CHAIN_JOB_COPY_BUF);
    if (!buf)
        return gvm_error_oom(err);
    cp.from = top;
    cp.to = base;
    cp.buf = buf;
    cp.total = plan.total;
    clock_gettime(CLOCK_MONOTONIC, &cp.t0);
    job_set_progress(c->job, 0, plan.total);
    r = walk(top, (int)k, c->cut, end, copy_fn, &cp);
    /* A child larger than top read zeros past top's end; once it sits on
     * base it must still read zeros there. */
    if (r == 0 && zend > end)
        r = chain_job_copy_run(&cp, CHAIN_JOB_COPY_ZERO, end, zend - end, NULL);
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

/* Record base's size as storage has it now (after a grow). */
static int record_base_size(struct chain_commit *c, uint64_t size,
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
int chain_commit_copy_grow(struct chain_commit *c, struct journal_op *op,
                           struct gvm_error *err)
{
    _cleanup_img_ struct img *top = NULL;
    _cleanup_img_ struct img *base = NULL;
    _cleanup_json_ json_t *pl = NULL;
    uint64_t want, have;
    int r;

    if (chain_commit_copy_open_id(c, c->top_id, IMG_OPEN_NOBACKING, &top, err) < 0)
        return -1;
    want = img_virtual_size(top);
    /* With its backing chain: img_resize must see what would show through. */
    if (chain_job_open_row(c->d, &c->ctx, &c->base, IMG_OPEN_RW, &base, err) < 0)
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
int chain_commit_copy_grow_recover(struct chain_commit *c, json_t *pl,
                                   struct gvm_error *err)
{
    _cleanup_img_ struct img *base = NULL;
    uint64_t old = (uint64_t)json_integer_value(json_object_get(pl, "old-size"));
    uint64_t now;
    int r = 0;

    /* A write-open repairs what a v3 image's dirty bit covers. */
    if (chain_job_open_row(c->d, &c->ctx, &c->base, IMG_OPEN_RW, &base, err) < 0)
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
    chain_commit_copy_repair_leaks(c);  /* v2: no dirty bit */
    return record_base_size(c, now, err);
}

