/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-delete.c — snapshot-delete (snapshot-delete.h).
 *
 * The job, per disk whose frozen image F only this snapshot freezes:
 * every child C of F is made independent of F without changing what it
 * reads: the data C reads through F and would not read through F's
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
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "chain-check.h"
#include "chain-job.h"
#include "chain-ops.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "snapshot-delete.h"
#include "snapshot-tree.h"
#include "virt-define.h"
#include "volume.h"


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
    bool meta = json_is_true(json_object_get(params, "metadata-only"));
    _cleanup_catsnap_ struct catalog_snapshot s = { 0 };
    _cleanup_json_ json_t *jp = NULL, *images = json_array();
    _cleanup_json_ json_t *commits = json_array();
    _cleanup_job_ struct job *job = NULL;
    struct catalog_job_lock *locks = NULL;
    size_t nlocks = 0, max = 0;
    char buf[32];
    const char *k = snapshot_tree_key(json_object_get(params, "snapshot"), buf, err);
    int ret = -1;

    if (!k)
        return -1;
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
        int bad = gvm_json_append(images, json_integer(f.id));
        for (size_t c = 0; c < nk; c++) {
            locks[nlocks++] = (struct catalog_job_lock){ .image_id = kids[c], .write = true };
            bad |= gvm_json_append(images, json_integer(kids[c]));
        }
        if (bad) {
            gvm_error_oom(err);
            goto out;
        }
        if (f.backing_id > 0) {
            /* Read, or write when f is to be committed into it. */
            int priv = nk > 0 ? parent_private(d, &f, err) : 0;
            bool dup = false;
            if (priv < 0)
                goto out;
            if (priv && gvm_json_append(commits, json_integer(f.id)) < 0) {
                gvm_error_oom(err);
                goto out;
            }
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
        if (err->cls == GVM_ERR_IN_USE)
            gvm_error_prepend(err, "Cannot delete snapshot %s now. ", s.name);
        goto out;
    }
    *result = job_to_json(job);
    ret = *result ? 0 : gvm_error_oom(err);
out:
    free(locks);
    return ret;
}

/* After an interrupted copy into catalogued image image_id. */
static void repair_leaks(struct gvmd *d, int64_t image_id)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    struct gvm_error e = { 0 };

    if (catalog_image_get(d->cat, image_id, &row, &e) < 0) {
        log_warn("Leak check of image %" PRId64 " failed: %s", image_id, e.message);
        return;
    }
    chain_job_repair_leaks(d, NULL, &row, NULL, "Snapshot delete into %s:%s",
                           row.volume, row.path);
}

/* Make child c (catalogued) read through p (0: nothing) what it reads
 * through its backing f now, then point its header and catalog edge at p. */
static int move_child(struct job *job, struct journal_op *op, int64_t cid,
                      const struct catalog_image *f, struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    _cleanup_catimg_ struct catalog_image c = { 0 }, p = { 0 };
    _cleanup_catvol_ struct catalog_volume cvol = { 0 }, pvol = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_free_ char *bname = NULL;
    _cleanup_json_ json_t *pl = NULL;
    struct img *ci = NULL, *pi = NULL;
    uint64_t fail_off = 0;
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
    if (chain_job_open_row(d, &ctx, &c, IMG_OPEN_RW, &ci, err) < 0)
        goto out;
    if (p.id > 0 && chain_job_open_row(d, &ctx, &p, 0, &pi, err) < 0)
        goto out;
    /* Several children in one job: progress adds up; zeros are written as
     * data (the new backing may show something there, and a plain write is
     * right whatever the image version). */
    r = chain_job_copy_if_differs(job, ci, pi, CHAIN_JOB_DIFF_ADD_PROGRESS |
                                  CHAIN_JOB_DIFF_ZEROS_AS_DATA, NULL, &fail_off);
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

/* Disk i of snapshot s, in the delete job: when s alone freezes its image
 * (*f) and no domain runs on it, make every child of *f independent of it
 * (committed into its backing, or pulled) and say *freed.  0, JOB_STOPPED
 * or -1 with err. */
static int free_frozen(struct job *job, struct journal_op *op,
                       const struct catalog_snapshot *s, size_t i,
                       struct catalog_image *f, bool *freed,
                       struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    const char *name = json_string_value(json_object_get(p, "name"));
    _cleanup_free_ int64_t *kids = NULL;
    size_t nk = 0;
    int64_t other = 0, dom = 0;
    int r;

    *freed = false;
    if (catalog_image_get(d->cat, s->disks[i].image_id, f, err) < 0)
        return -1;
    /* Frozen by another snapshot too, or somebody's active disk: the
     * file stays; only this record goes. */
    {
        CATALOG_LOCK_GUARD(d->cat);
        r = catalog_snapshot_frozen_by(d->cat, f->id, &other, err);
    }
    if (r < 0)
        return -1;
    if (other != s->id) {
        log_info("Deleting snapshot %s: image %s:%s is frozen by snapshot "
                 "%" PRId64 " as well and stays.", name, f->volume, f->path, other);
        return 0;
    }
    r = catalog_domain_of_image(d->cat, f->id, &dom, NULL, err);
    if (r < 0)
        return -1;
    if (r > 0) {
        log_info("Deleting snapshot %s: image %s:%s is a disk of domain "
                 "%" PRId64 " and stays.", name, f->volume, f->path, dom);
        return 0;
    }
    if (catalog_image_children(d->cat, f->id, &kids, &nk, err) < 0)
        return -1;
    r = nk > 0 && planned_commit(p, f->id) ? parent_private(d, f, err) : 0;
    if (r < 0)
        return -1;
    if (r > 0) {
        log_info("Deleting snapshot %s: committing %s:%s into its "
                 "backing file, which nothing else uses.", name, f->volume,
                 f->path);
        r = chain_commit_merge(job, op, f->id, err);
        if (r == JOB_STOPPED)
            return JOB_STOPPED;
        if (r < 0)
            return -1;
        nk = 0;             /* every child now sits on F's backing */
    } else {
        job_set_progress(job, 0, nk * f->virtual_size);
    }
    for (size_t c = 0; c < nk; c++) {
        r = move_child(job, op, kids[c], f, err);
        if (r == JOB_STOPPED)
            return JOB_STOPPED;
        if (r < 0)
            return -1;
    }
    *freed = true;
    return 0;
}

static int delete_run(struct job *job, struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    int64_t sid = json_integer_value(json_object_get(p, "snapshot"));
    const char *name = json_string_value(json_object_get(p, "name"));
    bool meta = json_is_true(json_object_get(p, "metadata-only"));
    _cleanup_catsnap_ struct catalog_snapshot s = { 0 };
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
        bool gone = false;

        r = free_frozen(job, op, &s, i, &f, &gone, err);
        if (r == JOB_STOPPED) {
            struct gvm_error e2 = { 0 };
            journal_undone(op, &e2);
            return JOB_STOPPED;
        }
        if (r < 0)
            goto undo;
        if (!gone)
            continue;
        freed[nfreed++] = f.id;
        if (gvm_json_append(files, json_pack("{s:I, s:s}", "volume",
                                             (json_int_t)f.volume_id,
                                             "path", f.path)) < 0) {
            gvm_error_oom(err);
            goto undo;
        }
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
        struct gvm_error e2 = { 0 };
        journal_undone(op, &e2);
        gvm_error_prepend(err, "Deleting snapshot %s failed; every image "
                          "still reads as before and the snapshot is kept: ",
                          name);
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
                chain_job_open_row(d, &ctx, &c, IMG_OPEN_NOBACKING, &ci, err) < 0)
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
