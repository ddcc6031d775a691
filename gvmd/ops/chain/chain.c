/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain.c — offline chain surgery as jobs.  So far: image-rebase.
 *
 * image-rebase {image, backing, mode}
 *   unsafe: rewrite the backing file name and format in the image's header,
 *           then the catalog edge.  What the image reads may change: that
 *           is what the caller asked for.
 *   safe:   first copy into the image every cluster where its old backing
 *           chain and the new one read differently (ranges the image
 *           allocates itself are skipped: they hide both), then switch the
 *           header, then the catalog.  Never the other way round: until the
 *           header switches, the copied clusters hold exactly what the old
 *           chain showed there, so the image reads the same throughout.
 *
 * Journal (journal.h) and recovery rules:
 *   step "copying"        pending while data is copied (safe only).
 *     R1: the header still names the old backing, and every write made so
 *         far only stored what the image already read through it, so the
 *         image reads as before.  Roll back (mark the step undone, repair
 *         cluster leaks a kill during allocation may have left) and run the
 *         job again from the start (or conclude it cancelled if a cancel was
 *         requested): copying again is safe for the same reason.
 *   step "switch-header"  pending from just before the header write until
 *                         the catalog agrees with it.
 *     R2: read the header.  If it names the new backing, the write landed:
 *         make the catalog edge agree and conclude done.  If it still names
 *         the old one, the copy had been completed and flushed before this
 *         step was recorded, so roll forward: write the header, then the
 *         catalog, conclude done.  Anything else is a Conflict for an
 *         operator (the job concludes with an error saying what the header
 *         holds).
 *   no pending step: the operation either finished (all rows done: conclude
 *   done) or was rolled back by a cancel or shutdown (rows undone: run
 *   again, or conclude cancelled if that was asked).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "catalog-image.h"
#include "chain-check.h"
#include "chain-job.h"
#include "chain.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "virt-define.h"
#include "volume.h"

/* ---- start: checks, locks, job ---------------------------------------------- */

/* Add read locks on id and every catalogued image below it.  If `avoid`
 * is met, the new chain would contain the image itself. */
static int lock_chain(struct gvmd *d, int64_t id, int64_t avoid,
                      struct catalog_job_lock *locks, size_t *n, size_t max,
                      struct gvm_error *err)
{
    for (unsigned depth = 0; id > 0; depth++) {
        _cleanup_catimg_ struct catalog_image row = { 0 };

        if (id == avoid) {
            _cleanup_free_ char *name = resolve_image_name(d, avoid);

            gvm_error_param(err, "backing", "The new backing file has %s "
                            "(the image being rebased) in its own chain: the "
                            "rebase would make a loop.", name ? name : "?");
            return -1;
        }
        if (depth >= IMG_MAX_CHAIN_DEPTH || *n >= max) {
            _cleanup_free_ char *name = resolve_image_name(d, id);

            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below "
                          "%s is deeper than %d images.", name ? name : "?",
                          IMG_MAX_CHAIN_DEPTH);
            return -1;
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        locks[(*n)++] = (struct catalog_job_lock){ .image_id = id, .write = false };
        id = row.backing_id;
    }
    return 0;
}

int chain_rebase_start(struct gvmd *d, const struct chain_rebase_req *req,
                       json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved top = { 0 };
    _cleanup_resolved_ struct resolved nb = { 0 };
    _cleanup_free_ char *bname = NULL;
    _cleanup_json_ json_t *params = NULL, *images = NULL;
    struct catalog_job_lock locks[2 * IMG_MAX_CHAIN_DEPTH + 2];
    size_t nlocks = 0;
    bool has_new = req->backing && !json_is_null(req->backing);

    if (resolve_catalogued(d, req->image, "image", &top, err) < 0)
        return -1;
    if (strcmp(top.row.format, "qcow2") != 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "The image %s:%s is %s; only a "
                      "qcow2 image has a backing file to rebase.",
                      top.vol.name, top.path, top.row.format);
        return -1;
    }
    locks[nlocks++] = (struct catalog_job_lock){ .image_id = top.row.id, .write = true };
    if (has_new) {
        if (resolve_catalogued(d, req->backing, "backing", &nb, err) < 0)
            return -1;
        if (nb.row.id == top.row.id) {
            gvm_error_param(err, "backing", "An image cannot be its own "
                            "backing file (%s:%s).", top.vol.name, top.path);
            return -1;
        }
        if (lock_chain(d, nb.row.id, top.row.id, locks, &nlocks,
                       GVM_ARRAY_SIZE(locks), err) < 0)
            return -1;
        bname = resolve_backing_name(d->vols, &top.vol, top.path, &nb.vol, nb.path);
        if (!bname)
            return gvm_error_oom(err);
    }
    /* The old chain is read (safe) and must not change under the copy. */
    if (lock_chain(d, top.row.backing_id, 0, locks, &nlocks,
                   GVM_ARRAY_SIZE(locks), err) < 0)
        return -1;
    if (!req->safe) {
        /* What the image reads changes (the caller's wish, also for a
         * domain's disk), but not a snapshot's frozen content, nor under
         * an overlay the catalog does not know (chain-check.h). */
        char what[1024];
        snprintf(what, sizeof(what), "Rebasing %s:%s unsafely", top.vol.name,
                 top.path);
        /* A running guest's image is refused first, as chain_job_start
         * would: that is the more basic reason. */
        if (live_refuse_running_ids(d, &top.row.id, 1, "rebase", err) < 0)
            return -1;
        if (chain_check_preconditions(d, what, &top.row.id, 1, NULL, 0,
                                      top.row.id, err) < 0)
            return -1;
    }

    images = json_array();
    params = json_pack("{s:I, s:s, s:s?, s:s?}",
                       "image", (json_int_t)top.row.id,
                       "mode", req->safe ? "safe" : "unsafe",
                       "backing-name", bname,
                       "backing-format", has_new ? nb.row.format : NULL);
    if (!images || !params ||
        gvm_json_set(params, "backing",
                     has_new ? json_integer(nb.row.id) : json_null()) < 0 ||
        gvm_json_append(images, json_integer(top.row.id)) < 0 ||
        (top.row.backing_id > 0 &&
         gvm_json_append(images, json_integer(top.row.backing_id)) < 0) ||
        (has_new && nb.row.id != top.row.backing_id &&
         gvm_json_append(images, json_integer(nb.row.id)) < 0))
        return gvm_error_oom(err);

    return chain_job_start(d, &chain_rebase_job, params, images, locks, nlocks, req->op_id,
                           "rebase", &top, result, err);
}

/* ---- the job ------------------------------------------------------------------ */

/* What one run of the job works with. */
struct rebase {
    struct job *job;
    struct gvmd *d;
    int64_t top_id, new_id;
    bool safe;
    const char *new_name, *new_fmt;       /* borrowed from the params */
    struct catalog_image row;             /* the image's catalog row  */
    char *name;                           /* "VOLUME:PATH"            */
    struct chain_job_backing sw;          /* the switch to new_*      */
    struct resolve_ctx ctx;
};

static void rebase_clear(struct rebase *rb)
{
    catalog_image_clear(&rb->row);
    free(rb->name);
    resolve_ctx_clear(&rb->ctx);
}

static int rebase_init(struct rebase *rb, struct job *job, struct gvm_error *err)
{
    json_t *p = job_params(job);
    json_t *b = json_object_get(p, "backing");
    const char *mode = json_string_value(json_object_get(p, "mode"));

    memset(rb, 0, sizeof(*rb));
    rb->job = job;
    rb->d = job_daemon(job);
    resolve_ctx_init(&rb->ctx, rb->d);
    rb->top_id = json_integer_value(json_object_get(p, "image"));
    rb->new_id = json_is_integer(b) ? json_integer_value(b) : 0;
    rb->safe = mode && strcmp(mode, "safe") == 0;
    rb->new_name = json_string_value(json_object_get(p, "backing-name"));
    rb->new_fmt = json_string_value(json_object_get(p, "backing-format"));
    if (rb->top_id <= 0 || !mode || (rb->new_id > 0 && (!rb->new_name || !rb->new_fmt))) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Job %" PRId64 " has unusable "
                      "parameters; nothing was changed.", job_id(job));
        return -1;
    }
    if (catalog_image_get(rb->d->cat, rb->top_id, &rb->row, err) < 0)
        return -1;
    rb->name = resolve_name(rb->row.volume, rb->row.path);
    rb->sw = (struct chain_job_backing){ .id = rb->top_id, .name = rb->name,
                                         .new_id = rb->new_id,
                                         .new_name = rb->new_name,
                                         .new_fmt = rb->new_fmt };
    return rb->name ? 0 : gvm_error_oom(err);
}

/* Open the image being rebased (flags: IMG_OPEN_*). */
static int open_top(struct rebase *rb, unsigned flags, struct img **out,
                    struct gvm_error *err)
{
    return chain_job_open_row(rb->d, &rb->ctx, &rb->row, flags, out, err);
}

static int open_new_backing(struct rebase *rb, struct img *top,
                            struct img **out, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    _cleanup_free_ char *name = NULL;
    struct gvm_store *st = NULL, *top_st = img_store(top);
    struct img_resolver res;
    enum img_format fmt;
    int r;

    if (catalog_image_get(rb->d->cat, rb->new_id, &row, err) < 0)
        return -1;
    name = resolve_name(row.volume, row.path);
    if (!name)
        return gvm_error_oom(err);
    if (img_format_parse(row.format, &fmt) < 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "The new backing file %s has "
                      "format '%s'.", name, row.format);
        return -1;
    }
    if (volumes_store_by_id(rb->d->vols, row.volume_id, &st, err) < 0)
        return -1;
    if (resolve_ctx_add(&rb->ctx, st, row.volume_id, row.volume) < 0)
        return gvm_error_oom(err);
    res = resolve_img_resolver(&rb->ctx);
    r = img_open_hint(st, row.path, fmt, 0, &res, 0, row.backing_format, out, err);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Opening the new backing file %s failed", name);
        return -1;
    }
    /* The catalog said no loop; the headers must agree. */
    for (struct img *l = *out; l; l = img_backing(l)) {
        if (img_store(l) == top_st && strcmp(img_path(l), img_path(top)) == 0) {
            img_close(steal_pointer(out));
            gvm_error_set(err, GVM_ERR_CONFLICT, "The chain of the new backing "
                          "file %s contains %s itself on storage, although the "
                          "catalog says otherwise; nothing was changed.",
                          name, rb->name);
            return -1;
        }
    }
    return 0;
}

/*
 * R2 (see the top of the file): settle a "switch-header" step from what the
 * header says.  Used by recovery, and by the run itself when the header
 * write failed (the write may or may not have landed).
 */
static int settle_switch(struct rebase *rb, json_t *payload,
                         struct gvm_error *err)
{
    _cleanup_img_ struct img *top = NULL;
    _cleanup_info_ struct img_info info = { 0 };
    const char *old_name = json_string_value(json_object_get(payload, "old-name"));
    const char *old_fmt = json_string_value(json_object_get(payload, "old-format"));

    if (open_top(rb, IMG_OPEN_RW | IMG_OPEN_NOBACKING, &top, err) < 0)
        return -1;
    if (img_get_info(top, &info) < 0)
        return gvm_error_oom(err);
    if (gvm_streq0(info.backing_filename, rb->new_name) &&
        gvm_streq0(info.backing_format, rb->new_fmt)) {
        log_info("Rebase of %s: the header already names %s; recording it in "
                 "the catalog.", rb->name, gvm_str_or_none(rb->new_name));
    } else if (gvm_streq0(info.backing_filename, old_name) &&
               gvm_streq0(info.backing_format, old_fmt)) {
        log_info("Rebase of %s: the header still names %s; the data copy was "
                 "complete, so switching it now.", rb->name,
                 gvm_str_or_none(old_name));
        if (chain_job_backing_write(&rb->sw, top, err) < 0)
            return -1;
    } else {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The header of %s names the "
                      "backing file %s (format %s), neither the old %s nor the "
                      "new %s of the interrupted rebase; the catalog was left "
                      "as it was: check the image with chain-audit.",
                      rb->name, gvm_str_or_none(info.backing_filename),
                      gvm_str_or_none(info.backing_format), gvm_str_or_none(old_name),
                      gvm_str_or_none(rb->new_name));
        return -1;
    }
    return chain_job_backing_record(rb->d, &rb->sw, err);
}

/* Repair leaks the copy may have left in the image (img: open, or NULL). */
static void repair_leaks(struct rebase *rb, struct img *img)
{
    chain_job_repair_leaks(rb->d, &rb->ctx, &rb->row, img, "Rebase of %s",
                           rb->name);
}

/*
 * The safe part (R1: the header still names the old backing): copy into
 * the image what its old chain and the new one read differently.  0,
 * JOB_STOPPED, or -1 with err set (leaks repaired).
 */
static int copy_step(struct rebase *rb, struct journal_op *op, struct img *top,
                     struct img *nb, const struct img_info *info,
                     struct gvm_error *err)
{
    _cleanup_json_ json_t *cp = json_pack("{s:s?, s:s?}",
                                          "old-name", info->backing_filename,
                                          "old-format", info->backing_format);
    uint64_t fail_off = 0;
    int r;

    if (!cp || journal_step(op, "copying", cp, err) < 0)
        return -1;
    r = chain_job_copy_if_differs(rb->job, top, nb, 0, "image-rebase.chunk",
                                  &fail_off);
    if (r == JOB_STOPPED)
        return JOB_STOPPED;
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Safe rebase of %s failed while copying data "
                            "near offset %" PRIu64 "; the image still reads "
                            "as before and keeps its backing file %s",
                            rb->name, fail_off,
                            gvm_str_or_none(info->backing_filename));
        /* A write that failed half-way may have left an allocated
         * cluster nothing points to: give it back if storage lets us. */
        repair_leaks(rb, top);
        return -1;
    }
    return 0;
}

/*
 * R2's way forward: record the step "switch-header", write the header,
 * then the catalog.  A failed header write is settled from what the header
 * says (it may have landed).  0, or -1 with err set (op closed undone if
 * the step could not be recorded).
 */
static int switch_step(struct rebase *rb, struct journal_op *op,
                       struct img **top, const struct img_info *info,
                       struct gvm_error *err)
{
    _cleanup_json_ json_t *sw = NULL;
    int r;

    sw = json_pack("{s:s?, s:s?, s:I, s:s?, s:s?, s:I}",
                   "old-name", info->backing_filename,
                   "old-format", info->backing_format,
                   "old-id", (json_int_t)rb->row.backing_id,
                   "new-name", rb->new_name, "new-format", rb->new_fmt,
                   "new-id", (json_int_t)rb->new_id);
    if (!sw)
        gvm_error_oom(err);
    if (!sw || journal_step(op, "switch-header", sw, err) < 0) {
        /* Not recorded: as R1, nothing changed. */
        chain_job_abandon(op, "Rebase of %s", rb->name);
        return -1;
    }
    if (chain_job_backing_write(&rb->sw, *top, err) < 0) {
        /* Did the header land?  Settle from what it says now. */
        struct gvm_error e2 = { 0 };
        img_close(steal_pointer(top));
        if (settle_switch(rb, sw, &e2) == 0 && journal_done(op, &e2) == 0) {
            log_warn("Rebase of %s: the header write reported an error but "
                     "landed: %s", rb->name, err->message);
            gvm_error_clear(err);
            return 0;
        }
        return -1;
    }
    r = journal_fault_point("image-rebase.header-written");
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Fault injected after "
                            "the header of %s was switched; the next start of "
                            "gvmd brings the catalog in line", rb->name);
        return -1;
    }
    if (chain_job_backing_record(rb->d, &rb->sw, err) < 0 ||
        journal_done(op, err) < 0)
        return -1;
    /* A stopped domain's definition must not give the old chain. */
    return virt_define_sync_image(rb->d, rb->top_id, "The rebase is complete "
                                  "and recorded in the catalog", err);
}

static int rebase_run(struct job *job, struct gvm_error *err)
{
    struct rebase rb;
    _cleanup_img_ struct img *top = NULL;
    _cleanup_img_ struct img *nb = NULL;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_info_ struct img_info info = { 0 };
    int ret = -1, r;

    if (rebase_init(&rb, job, err) < 0)
        goto out;
    /* Unsafe reads no data: the old chain need not even open. */
    if (open_top(&rb, IMG_OPEN_RW | (rb.safe ? 0 : IMG_OPEN_NOBACKING), &top,
                 err) < 0)
        goto out;
    if (img_get_info(top, &info) < 0) {
        gvm_error_oom(err);
        goto out;
    }
    if (gvm_streq0(info.backing_filename, rb.new_name) &&
        gvm_streq0(info.backing_format, rb.new_fmt)) {
        /* Already there (a no-op request): only the catalog may lag. */
        ret = chain_job_backing_record(rb.d, &rb.sw, err);
        goto out;
    }
    /* The new backing (and its chain, which must not hold the image) is
     * checked before the journal and the first write. */
    if (rb.safe && rb.new_id > 0 && open_new_backing(&rb, top, &nb, err) < 0)
        goto out;
    if (journal_begin(rb.d->cat, chain_rebase_job.name, job_id(job),
                      job_params(job), &op, err) < 0)
        goto out;
    r = rb.safe ? copy_step(&rb, op, top, nb, &info, err) : 0;
    if (r == 0 && job_should_stop(job))
        r = JOB_STOPPED;
    if (r != 0) {
        /* Nothing guest-visible changed (R1): close the operation as undone. */
        chain_job_abandon(op, "Rebase of %s", rb.name ? rb.name : "?");
        ret = r == JOB_STOPPED ? JOB_STOPPED : -1;
        goto out;
    }
    ret = switch_step(&rb, op, &top, &info, err);
out:
    /* The images before the resolver context they were opened through. */
    if (nb)
        img_close(steal_pointer(&nb));
    if (top)
        img_close(steal_pointer(&top));
    rebase_clear(&rb);
    return ret;
}

/* R2: the header switch had begun; settle it from what the header says. */
static int rebase_forward(void *opaque, struct journal_op *op,
                          const struct journal_entry *last,
                          struct gvm_error *err)
{
    struct rebase *rb = opaque;
    struct gvm_error e2 = { 0 };

    if (settle_switch(rb, last->payload, err) == 0 && journal_done(op, err) == 0)
        return 0;
    gvm_error_set(&e2, err->cls, "Recovery of the interrupted rebase of %s "
                  "failed: %s %sIts header may name the old backing file %s "
                  "or the new %s and the catalog may disagree: check it with "
                  "chain-audit.", rb->name, err->message, rb->safe ? "The "
                  "image reads as before either way (the copy was complete). "
                  : "", gvm_str_or_none(json_string_value(json_object_get(
                      last->payload, "old-name"))),
                  gvm_str_or_none(rb->new_name));
    *err = e2;
    return -1;
}

/* R1: step 0 or "copying": the header was not touched. */
static int rebase_back(void *opaque, const struct journal_entry *last,
                       struct gvm_error *err)
{
    struct rebase *rb = opaque;

    (void)last;
    (void)err;
    if (rb->safe)
        repair_leaks(rb, NULL);
    return 0;
}

static int rebase_recover(struct job *job, struct journal_op *op,
                          const struct journal_entry *e, size_t n,
                          struct gvm_error *err)
{
    static const char *const forward[] = { "switch-header", NULL };
    static const struct chain_job_recovery rec = {
        .forward = forward,
        .roll_forward = rebase_forward,
        .roll_back = rebase_back,
    };
    struct rebase rb;
    int ret = -1;

    if (rebase_init(&rb, job, err) == 0)
        ret = chain_job_recover(job, op, e, n, &rec, &rb, err);
    rebase_clear(&rb);
    return ret;
}

const struct job_type chain_rebase_job = {
    .name = "image-rebase",
    .run = rebase_run,
    .recover = rebase_recover,
};
