/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-pull.c — offline block-pull as a job.
 *
 * block-pull {image, base?}: chain  [below] <- base <- l1 <- ... <- image.
 *   1. copy: every range the image reads from l1..ln (the layers between it
 *      and base, or the whole chain when flattening) is written into the
 *      image: data as data, zeros as zeros (a zero flag on v3).  A range
 *      the image reads as zeros only because a layer above base ends before
 *      it gets real zeros if base would show something there.  The image
 *      reads the same throughout: it only stores what it already read.
 *   2. switch-header: the image's header names base (or nothing), then the
 *      catalog edge follows.  The intermediates are not touched.
 *
 * Journal and recovery (as image-rebase, chain.c):
 *   "copying"        R1: the header is unchanged and the image reads as
 *                    before: roll back (repair leaks), run again or
 *                    conclude cancelled.
 *   "switch-header"  R2: the header names base already (make the catalog
 *                    agree) or still the old backing (the copy was flushed
 *                    before the step: write it, then the catalog); anything
 *                    else is a Conflict.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "catalog-image.h"
#include "chain-job.h"
#include "chain-ops.h"
#include "chain.h"
#include "jsonutil.h"
#include "resolve.h"
#include "virt-define.h"
#include "volume.h"

#define MAP_SPAN (1ull << 30)

int chain_pull_start(struct gvmd *d, const struct chain_pull_req *req,
                     json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved top = { 0 };
    _cleanup_resolved_ struct resolved nb = { 0 };
    _cleanup_free_ char *bname = NULL;
    _cleanup_json_ json_t *params = NULL, *images = NULL;
    struct catalog_job_lock locks[IMG_MAX_CHAIN_DEPTH + 2];
    size_t nlocks = 0;
    bool has_base = req->base && !json_is_null(req->base);
    int64_t id;
    bool found = !has_base;

    if (resolve_catalogued(d, req->image, "image", &top, err) < 0)
        return -1;
    if (strcmp(top.row.format, "qcow2") != 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "The image %s:%s is %s; only a "
                      "qcow2 image has a backing chain to pull from.",
                      top.vol.name, top.path, top.row.format);
        return -1;
    }
    if (has_base && resolve_catalogued(d, req->base, "base", &nb, err) < 0)
        return -1;
    locks[nlocks++] = (struct catalog_job_lock){ .image_id = top.row.id, .write = true };
    images = json_array();
    if (!images)
        return gvm_error_oom(err);
    if (gvm_json_append(images, json_integer(top.row.id)) < 0)
        return gvm_error_oom(err);
    for (id = top.row.backing_id; id > 0;) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        if (nlocks >= GVM_ARRAY_SIZE(locks)) {
            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below "
                          "%s:%s is deeper than %d images.", top.vol.name,
                          top.path, IMG_MAX_CHAIN_DEPTH);
            return -1;
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        locks[nlocks++] = (struct catalog_job_lock){ .image_id = id, .write = false };
        if (gvm_json_append(images, json_integer(id)) < 0)
            return gvm_error_oom(err);
        if (has_base && id == nb.row.id)
            found = true;
        id = row.backing_id;
    }
    if (!found) {
        gvm_error_param(err, "base", "The image %s:%s is not in the backing "
                        "chain of %s:%s.", nb.vol.name, nb.path, top.vol.name,
                        top.path);
        return -1;
    }
    if (has_base) {
        bname = resolve_backing_name(d->vols, &top.vol, top.path, &nb.vol, nb.path);
        if (!bname)
            return gvm_error_oom(err);
    }
    params = json_pack("{s:I, s:s?, s:s?, s:I}",
                       "image", (json_int_t)top.row.id,
                       "base-name", bname,
                       "base-format", has_base ? nb.row.format : NULL,
                       "speed", (json_int_t)req->speed);
    if (!params ||
        gvm_json_set(params, "base",
                     has_base ? json_integer(nb.row.id) : json_null()) < 0)
        return gvm_error_oom(err);

    return chain_job_start(d, &chain_pull_job, params, images, locks, nlocks, req->op_id,
                           "pull into", &top, result, err);
}

/* ---- the job ------------------------------------------------------------------ */

struct pull {
    struct job *job;
    struct gvmd *d;
    int64_t id, base_id;
    uint64_t speed;
    const char *base_name, *base_fmt;   /* borrowed from the params */
    struct catalog_image row;
    char *name;
    struct chain_job_backing sw;        /* to base (or none) */
    struct resolve_ctx ctx;
};

static void pull_clear(struct pull *p)
{
    catalog_image_clear(&p->row);
    free(p->name);
    resolve_ctx_clear(&p->ctx);
}

static int pull_init(struct pull *p, struct job *job, struct gvm_error *err)
{
    json_t *pa = job_params(job);
    json_t *b = json_object_get(pa, "base");

    memset(p, 0, sizeof(*p));
    p->job = job;
    p->d = job_daemon(job);
    resolve_ctx_init(&p->ctx, p->d);
    p->id = json_integer_value(json_object_get(pa, "image"));
    p->base_id = json_is_integer(b) ? json_integer_value(b) : 0;
    p->speed = (uint64_t)json_integer_value(json_object_get(pa, "speed"));
    p->base_name = json_string_value(json_object_get(pa, "base-name"));
    p->base_fmt = json_string_value(json_object_get(pa, "base-format"));
    if (p->id <= 0 || (p->base_id > 0 && (!p->base_name || !p->base_fmt))) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Job %" PRId64 " has unusable "
                      "parameters; nothing was changed.", job_id(job));
        return -1;
    }
    if (catalog_image_get(p->d->cat, p->id, &p->row, err) < 0)
        return -1;
    p->name = resolve_name(p->row.volume, p->row.path);
    p->sw = (struct chain_job_backing){ .id = p->id, .name = p->name,
                                        .new_id = p->base_id,
                                        .new_name = p->base_name,
                                        .new_fmt = p->base_fmt };
    return p->name ? 0 : gvm_error_oom(err);
}

static int open_image(struct pull *p, unsigned flags, struct img **out,
                      struct gvm_error *err)
{
    return chain_job_open_row(p->d, &p->ctx, &p->row, flags, out, err);
}

enum act { ACT_NONE, ACT_DATA, ACT_ZERO, ACT_REALZERO };

/* k: depth of base in the opened chain (chain length when flattening);
 * nbsize: base's size (0 when flattening). */
static enum act classify(const struct img_extent *e, int k, uint64_t nbsize)
{
    if (e->present && e->depth > 0 && e->depth < k)
        return e->zero ? ACT_ZERO : ACT_DATA;
    /* Zeros because a layer above base ends here: base may show data. */
    if (!e->present && e->zero && e->depth < k && e->start < nbsize)
        return ACT_REALZERO;
    return ACT_NONE;
}

struct copier {
    struct chain_job_copy cp;           /* from and to: the image */
    int k;
    uint64_t nbsize;
    bool counting;                      /* plan_pull: count, copy nothing */
};

static int do_range(struct copier *c, enum act a, uint64_t off, uint64_t len,
                    const struct img_extent *e)
{
    static const enum chain_job_copy_act how[] = {
        [ACT_DATA] = CHAIN_JOB_COPY_DATA,
        [ACT_ZERO] = CHAIN_JOB_COPY_ZERO,
        [ACT_REALZERO] = CHAIN_JOB_COPY_REALZERO,
    };

    if (c->counting) {
        c->cp.total += len;
        if (a == ACT_DATA)
            c->cp.done += len;    /* data bytes, for the space check */
        return 0;
    }
    return chain_job_copy_run(&c->cp, how[a], off, len, e);
}

static int walk(struct copier *cp, uint64_t end)
{
    for (uint64_t off = 0; off < end;) {
        uint64_t span = end - off < MAP_SPAN ? end - off : MAP_SPAN;
        struct img_extent *ext = NULL;
        size_t n = 0;
        int r = img_map(cp->cp.from, off, span, &ext, &n);

        if (r < 0)
            return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
            enum act a = classify(&ext[i], cp->k, cp->nbsize);
            uint64_t s = ext[i].start, e = s + ext[i].length;

            if (a == ACT_REALZERO && e > cp->nbsize)
                e = cp->nbsize;
            if (a != ACT_NONE)
                r = do_range(cp, a, s, e - s, &ext[i]);
        }
        free(ext);
        if (r < 0)
            return r;
        off += span;
    }
    return 0;
}

/*
 * Before the journal and any write: find base in the opened chain (the
 * catalog's chain must be the one on storage), count what the copy moves
 * and check the volume has room for it.  Fills cp for copy_into_image.
 * 0, or -1 with err set (nothing was changed).
 */
static int plan_pull(struct pull *p, struct img *img, struct copier *cp,
                     struct gvm_error *err)
{
    struct img *l = img;
    uint64_t free_b = 0, total_b = 0;
    int r, k = 0;

    memset(cp, 0, sizeof(*cp));
    cp->cp = (struct chain_job_copy){ .job = p->job, .speed = p->speed,
                                      .fault = "block-pull.run",
                                      .from = img, .to = img };

    /* Find base in the opened chain (by path on its store). */
    while (l) {
        if (p->base_id > 0 && k > 0) {
            _cleanup_catimg_ struct catalog_image b = { 0 };
            if (catalog_image_get(p->d->cat, p->base_id, &b, err) < 0)
                return -1;
            if (strcmp(img_path(l), b.path) == 0) {
                cp->nbsize = img_virtual_size(l);
                break;
            }
        }
        l = img_backing(l);
        k++;
    }
    if (p->base_id > 0 && !l) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The backing chain of %s on "
                      "storage does not contain the base %s the catalog "
                      "lists; nothing was changed: check it with chain-audit.",
                      p->name, p->base_name);
        return -1;
    }
    cp->k = k;
    cp->counting = true;
    r = walk(cp, img_virtual_size(img));
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Mapping %s failed; nothing was changed", p->name);
        return -1;
    }
    r = img_store(img)->ops->statvfs(img_store(img), &free_b, &total_b);
    if (r == 0 && free_b < cp->cp.done) {
        gvm_error_set(err, GVM_ERR_NO_SPACE, "Pulling into %s needs up to %"
                      PRIu64 " bytes but its volume has %" PRIu64 " free; "
                      "nothing was changed.", p->name, cp->cp.done, free_b);
        return -1;
    }
    return 0;
}

/* Step 1 as plan_pull planned it: 0, JOB_STOPPED, or -1 with err. */
static int copy_into_image(struct pull *p, struct img *img, struct copier *plan,
                           struct gvm_error *err)
{
    _cleanup_free_ uint8_t *buf = NULL, *zbuf = NULL;
    struct copier cp = *plan;
    int r;

    buf = malloc(CHAIN_JOB_COPY_BUF);
    zbuf = calloc(1, CHAIN_JOB_COPY_BUF);
    if (!buf || !zbuf)
        return gvm_error_oom(err);
    cp.cp.buf = buf;
    cp.cp.zbuf = zbuf;
    cp.counting = false;
    cp.cp.done = 0;
    clock_gettime(CLOCK_MONOTONIC, &cp.cp.t0);
    job_set_progress(p->job, 0, cp.cp.total);
    r = walk(&cp, img_virtual_size(img));
    if (r == 0)
        r = img_flush(img);
    if (r == JOB_STOPPED)
        return JOB_STOPPED;
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Pulling into %s failed near offset %" PRIu64
                            "; the image still reads as before and keeps its "
                            "backing file", p->name, cp.cp.fail_off);
        return -1;
    }
    job_set_progress(p->job, cp.cp.total, cp.cp.total);
    return 0;
}

static void repair_leaks(struct pull *p, struct img *img)
{
    chain_job_repair_leaks(p->d, &p->ctx, &p->row, img, "Pull into %s",
                           p->name);
}

/* R2. */
static int settle_switch(struct pull *p, json_t *payload, struct gvm_error *err)
{
    struct img *img = NULL;
    _cleanup_info_ struct img_info info = { 0 };
    const char *old_name = json_string_value(json_object_get(payload, "old-name"));
    const char *old_fmt = json_string_value(json_object_get(payload, "old-format"));
    int ret = -1;

    if (open_image(p, IMG_OPEN_RW | IMG_OPEN_NOBACKING, &img, err) < 0)
        return -1;
    if (img_get_info(img, &info) < 0) {
        gvm_error_oom(err);
        goto out;
    }
    if (gvm_streq0(info.backing_filename, p->base_name) &&
        gvm_streq0(info.backing_format, p->base_fmt)) {
        log_info("Pull into %s: the header already names %s.", p->name,
                 gvm_str_or_none(p->base_name));
    } else if (gvm_streq0(info.backing_filename, old_name) &&
               gvm_streq0(info.backing_format, old_fmt)) {
        log_info("Pull into %s: the copy was complete; switching the header "
                 "now.", p->name);
        if (chain_job_backing_write(&p->sw, img, err) < 0)
            goto out;
    } else {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The header of %s names the "
                      "backing file %s, neither the old %s nor the new %s of "
                      "the interrupted pull; check it with chain-audit.",
                      p->name, gvm_str_or_none(info.backing_filename),
                      gvm_str_or_none(old_name), gvm_str_or_none(p->base_name));
        goto out;
    }
    ret = chain_job_backing_record(p->d, &p->sw, err);
out:
    img_close(img);
    return ret;
}

static int pull_run(struct job *job, struct gvm_error *err)
{
    struct pull p;
    _cleanup_img_ struct img *img = NULL;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_info_ struct img_info info = { 0 };
    _cleanup_json_ json_t *sw = NULL;
    struct copier plan;
    int ret = -1, r;

    if (pull_init(&p, job, err) < 0)
        goto out;
    if (open_image(&p, IMG_OPEN_RW, &img, err) < 0)
        goto out;
    if (img_get_info(img, &info) < 0) {
        gvm_error_oom(err);
        goto out;
    }
    if (gvm_streq0(info.backing_filename, p.base_name) &&
        gvm_streq0(info.backing_format, p.base_fmt)) {
        ret = chain_job_backing_record(p.d, &p.sw, err);   /* a no-op */
        goto out;
    }
    /* Every check before the journal and the first write. */
    if (plan_pull(&p, img, &plan, err) < 0)
        goto out;
    if (journal_begin(p.d->cat, chain_pull_job.name, job_id(job),
                      job_params(job), &op, err) < 0)
        goto out;
    if (journal_step(op, "copying", NULL, err) < 0)
        goto undo;
    r = copy_into_image(&p, img, &plan, err);
    if (r == JOB_STOPPED) {
        ret = JOB_STOPPED;
        goto undo;
    }
    if (r < 0) {
        if (err->cls != GVM_ERR_NO_SPACE && err->cls != GVM_ERR_CONFLICT)
            repair_leaks(&p, img);
        goto undo;
    }
    if (job_should_stop(job)) {
        ret = JOB_STOPPED;
        goto undo;
    }
    sw = json_pack("{s:s?, s:s?}", "old-name", info.backing_filename,
                   "old-format", info.backing_format);
    if (!sw) {
        gvm_error_oom(err);
        goto undo;
    }
    if (journal_step(op, "switch-header", sw, err) < 0)
        goto undo;
    if (chain_job_backing_write(&p.sw, img, err) < 0) {
        struct gvm_error e2 = { 0 };
        img_close(steal_pointer(&img));
        if (settle_switch(&p, sw, &e2) == 0 && journal_done(op, &e2) == 0) {
            gvm_error_clear(err);
            ret = 0;
        }
        goto out;
    }
    r = journal_fault_point("block-pull.header-written");
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Fault injected after "
                            "the header of %s was switched", p.name);
        goto out;
    }
    if (chain_job_backing_record(p.d, &p.sw, err) < 0 ||
        journal_done(op, err) < 0)
        goto out;
    /* A stopped domain's definition must not give the old chain. */
    if (virt_define_sync_image(p.d, p.id, "The pull is complete and "
                               "recorded in the catalog", err) < 0)
        goto out;
    ret = 0;
    goto out;

undo:
    chain_job_abandon(op, "Pull into %s", p.name ? p.name : "?");
out:
    if (img)
        img_close(steal_pointer(&img));
    pull_clear(&p);
    return ret;
}

/* R2: the header names base already, or the copy was complete. */
static int pull_forward(void *opaque, struct journal_op *op,
                        const struct journal_entry *last, struct gvm_error *err)
{
    struct pull *p = opaque;

    if (settle_switch(p, last->payload, err) < 0)
        return -1;
    return journal_done(op, err);
}

/* R1: interrupted while copying: the header is unchanged. */
static int pull_back(void *opaque, const struct journal_entry *last,
                     struct gvm_error *err)
{
    struct pull *p = opaque;

    (void)last;
    (void)err;
    log_info("Pull into %s: interrupted while copying; rolled back, running "
             "it again.", p->name);
    repair_leaks(p, NULL);
    return 0;
}

static int pull_recover(struct job *job, struct journal_op *op,
                        const struct journal_entry *e, size_t n,
                        struct gvm_error *err)
{
    static const char *const forward[] = { "switch-header", NULL };
    static const struct chain_job_recovery rec = {
        .forward = forward,
        .roll_forward = pull_forward,
        .roll_back = pull_back,
    };
    struct pull p;
    int ret = -1;

    if (pull_init(&p, job, err) == 0)
        ret = chain_job_recover(job, op, e, n, &rec, &p, err);
    pull_clear(&p);
    return ret;
}

const struct job_type chain_pull_job = {
    .name = "block-pull",
    .run = pull_run,
    .recover = pull_recover,
};
