/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-job.c — what every chain surgery job does the same way: start
 * (running guests, image locks, the job), hold its images, open catalogued
 * images, throttle, repair leaks, close an abandoned record, and decide
 * how an interrupted operation is recovered (chain-job.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chain-job.h"
#include "jsonutil.h"
#include "live.h"
#include "volume.h"

/* ---- start ------------------------------------------------------------------ */

struct chain_job_hold {
    size_t n;
    struct img_lock *locks[];
};

void chain_job_hold_release(struct chain_job_hold *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        img_lock_drop(h->locks[i]);
    free(h);
}

/* Write-lock the images ids (a JSON array of image ids) into *out. */
static int hold_ids(struct gvmd *d, json_t *ids, struct chain_job_hold **out,
                    struct gvm_error *err)
{
    size_t i, n = json_array_size(ids);
    struct chain_job_hold *h = calloc(1, sizeof(*h) + (n ? n : 1) * sizeof(h->locks[0]));
    json_t *e;

    *out = NULL;
    if (!h)
        return gvm_error_oom(err);
    json_array_foreach(ids, i, e) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        _cleanup_free_ char *name = NULL;
        struct gvm_error e2 = { 0 };
        struct gvm_store *st = NULL;
        int r;

        if (catalog_image_get(d->cat, json_integer_value(e), &row, &e2) < 0)
            continue;       /* gone (a finished step removed it) */
        if (volumes_store_by_id(d->vols, row.volume_id, &st, err) < 0)
            goto fail;
        name = resolve_name(row.volume, row.path);
        r = img_lock_take(st, row.path, true, name, &h->locks[h->n], &e2);
        if (r == -ENOENT)
            continue;
        if (r < 0) {
            *err = e2;
            goto fail;
        }
        h->n++;
    }
    *out = h;
    return 0;
fail:
    chain_job_hold_release(h);
    return -1;
}

int chain_job_hold_take(struct job *job, struct chain_job_hold **out,
                        struct gvm_error *err)
{
    return hold_ids(job_daemon(job), json_object_get(job_params(job), "hold"),
                    out, err);
}

int chain_job_create(struct gvmd *d, const struct job_type *type,
                     json_t *params, json_t *images,
                     const struct catalog_job_lock *locks, size_t nlocks,
                     const char *op_id, const char *what, const char *name,
                     json_t **result, struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;

    if (jobs_create(d->jobs, type, params, images, locks, nlocks, op_id,
                    &job, err) < 0) {
        if (err->cls == GVM_ERR_IN_USE)
            gvm_error_prepend(err, "Cannot %s %s now. ", what, name);
        return -1;
    }
    *result = job_to_json(job);
    return *result ? 0 : gvm_error_oom(err);
}

int chain_job_start(struct gvmd *d, const struct job_type *type,
                    json_t *params, json_t *images,
                    const struct catalog_job_lock *locks, size_t nlocks,
                    const char *op_id, const char *what,
                    const struct resolved *top, json_t **result,
                    struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = calloc(nlocks ? nlocks : 1, sizeof(*ids));
    _cleanup_free_ char *name = NULL;
    size_t nids = 0;

    /* The offline path never writes an image a running guest uses (the
     * live path, routed before this, handles those it can).  Images only
     * read (read locks) may be shared with running guests: reading a
     * backing file QEMU also only reads is safe. */
    if (!ids)
        return gvm_error_oom(err);
    for (size_t i = 0; i < nlocks; i++)
        if (locks[i].write)
            ids[nids++] = locks[i].image_id;
    if (live_refuse_running_ids(d, ids, nids, what, err) < 0)
        return -1;
    /* Nor one another process (a QEMU gvmd does not know of, qemu-io)
     * holds: checked now, so the request is refused before a job exists;
     * the job holds them again while it writes (chain_job_hold_take). */
    {
        struct chain_job_hold *h = NULL;
        _cleanup_json_ json_t *hold = json_array();

        for (size_t i = 0; hold && i < nids; i++)
            if (gvm_json_append(hold, json_integer(ids[i])) < 0)
                return gvm_error_oom(err);
        if (!hold || json_object_set(params, "hold", hold) < 0)
            return gvm_error_oom(err);
        if (hold_ids(d, hold, &h, err) < 0)
            return -1;
        chain_job_hold_release(h);
    }
    name = resolve_name(top->vol.name, top->path);
    if (!name)
        return gvm_error_oom(err);
    return chain_job_create(d, type, params, images, locks, nlocks, op_id,
                            what, name, result, err);
}

/* ---- steps -------------------------------------------------------------------- */

int chain_job_open_row(struct gvmd *d, struct resolve_ctx *ctx,
                       const struct catalog_image *row, unsigned flags,
                       struct img **out, struct gvm_error *err)
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
    if (volumes_store_by_id(d->vols, row->volume_id, &st, err) < 0)
        return -1;
    if (resolve_ctx_add(ctx, st, row->volume_id, row->volume) < 0)
        return gvm_error_oom(err);
    res = resolve_img_resolver(ctx);
    r = img_open_hint(st, row->path, fmt, flags, &res, 0, row->backing_format,
                      out, err);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Opening %s failed", name ? name : "?");
        return -1;
    }
    return 0;
}

void chain_job_throttle(struct job *job, uint64_t speed,
                        const struct timespec *t0, uint64_t done)
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

void chain_job_repair_leaks(struct gvmd *d, struct resolve_ctx *ctx,
                            const struct catalog_image *row, struct img *img,
                            const char *fmt, ...)
{
    _cleanup_rctx_ struct resolve_ctx own_ctx;
    struct img *own = NULL;
    struct gvm_error err = { 0 };
    struct img_check_result res;
    char who[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(who, sizeof(who), fmt, ap);
    va_end(ap);
    resolve_ctx_init(&own_ctx, d);
    if (!img && strcmp(row->format, "qcow2") != 0)
        return;
    if (!img && chain_job_open_row(d, ctx ? ctx : &own_ctx, row,
                                   IMG_OPEN_RW | IMG_OPEN_NOBACKING, &own,
                                   &err) < 0) {
        log_warn("%s: leak check after the interrupted copy failed: %s", who,
                 err.message);
        return;
    }
    if (img_check(img ? img : own, IMG_REPAIR_LEAKS, &res, &err) < 0)
        log_warn("%s: leak check after the interrupted copy failed: %s", who,
                 err.message);
    else if (res.leaks || res.corruptions)
        log_info("%s: after the interrupted copy, %" PRIu64 " leaked "
                 "clusters (%" PRIu64 " fixed), %" PRIu64 " corruptions.",
                 who, res.leaks, res.leaks_fixed, res.corruptions);
    if (own)
        img_close(own);
}

void chain_job_abandon(struct journal_op *op, const char *fmt, ...)
{
    struct gvm_error e = { 0 };
    char who[512];
    va_list ap;

    if (!op || journal_undone(op, &e) == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(who, sizeof(who), fmt, ap);
    va_end(ap);
    log_error("%s: closing its journal record failed: %s", who, e.message);
}

int chain_job_backing_write(const struct chain_job_backing *b, struct img *img,
                            struct gvm_error *err)
{
    int r = img_set_backing(img, b->new_name, b->new_fmt, err);

    if (r == 0)
        r = img_flush(img);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Writing the backing file name into the header of "
                            "%s failed", b->name);
        return -1;
    }
    return 0;
}

int chain_job_backing_record(struct gvmd *d, const struct chain_job_backing *b,
                             struct gvm_error *err)
{
    if (catalog_image_set_backing(d->cat, b->id, b->new_id, b->new_name,
                                  b->new_fmt, err) < 0) {
        gvm_error_prepend(err, "The header of %s now names the backing file "
                          "%s, but recording that in the catalog failed: ",
                          b->name, gvm_str_or_none(b->new_name));
        return -1;
    }
    return 0;
}

/* ---- crash recovery ------------------------------------------------------------- */

static bool is_forward(const struct chain_job_recovery *rec, const char *kind)
{
    for (const char *const *k = rec->forward; k && *k; k++)
        if (strcmp(*k, kind) == 0)
            return true;
    return false;
}

/* The job runs again, or concludes cancelled if that was asked. */
static int run_again(struct job *job, const struct chain_job_recovery *rec)
{
    if (!rec->run_settles_cancel && job_cancel_requested(job))
        return JOB_RECOVERED_CANCELLED;
    return JOB_RECOVERED_RESUME;
}

int chain_job_recover(struct job *job, struct journal_op *op,
                      const struct journal_entry *e, size_t n,
                      const struct chain_job_recovery *rec, void *opaque,
                      struct gvm_error *err)
{
    const struct journal_entry *last = op ? journal_last_pending(e, n) : NULL;

    if (last && is_forward(rec, last->kind))
        return rec->roll_forward(opaque, op, last, err) < 0
               ? -1 : JOB_RECOVERED_DONE;
    if (!last) {
        /* Never journaled anything, or the operation was settled: all done
         * (finished before the job could conclude) or all undone (stopped
         * by a cancel or shutdown). */
        if (op && n > 0 && !e[n - 1].undone)
            return JOB_RECOVERED_DONE;
        return run_again(job, rec);
    }
    /* Before the point of no return: nothing guest-visible changed. */
    if (rec->roll_back && rec->roll_back(opaque, last, err) < 0)
        return -1;
    if (journal_undone(op, err) < 0)
        return -1;
    return run_again(job, rec);
}
