/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-delete.c — image-delete as a service: a catalogued image that no
 * running domain, snapshot or other image uses and no other process holds
 * open for writing leaves the catalog and storage together, journaled so
 * that no failure or crash leaves one without the other.
 */
#include <errno.h>
#include <string.h>

#include "catalog.h"
#include "image-delete.h"
#include "image-open.h"
#include "jsonutil.h"
#include "live.h"
#include "volume.h"

/*
 * Row first, file second, as a journaled operation (journal.h), so that no
 * failure and no crash leaves a row for a file that is gone:
 *   step 0 "image-delete"  the whole row (enough to put it back);
 *   step 1 "unlink-file"   recorded in the transaction that removes the
 *                          row: once it is committed, the row is gone and
 *                          the file must follow.
 * Then the unlink.  If the unlink fails, the row is put back (same id) and
 * the operation is undone.  After a crash, image_delete_recover() finishes
 * what step 1 promised (unlinks; ENOENT means it had been done) or, with
 * only step 0 recorded, finds nothing changed.
 *
 * The catalog lock is held from the row's removal to the unlink: no other
 * call can catalogue a new image at that path in between and then lose its
 * file to our unlink.
 */
#define IMAGE_DELETE_OP "image-delete"
#define IMAGE_DELETE_STEP "unlink-file"

static json_t *row_payload(const struct catalog_image *row)
{
    return json_pack("{sI sI ss ss ss sI sI sI s:s* s:s* ss sI}",
        "id", (json_int_t)row->id, "volume-id", (json_int_t)row->volume_id,
        "volume", row->volume ? row->volume : "", "path", row->path,
        "format", row->format, "virtual-size", (json_int_t)row->virtual_size,
        "cluster-size", (json_int_t)row->cluster_size,
        "backing-id", (json_int_t)row->backing_id,
        "backing-filename", row->backing_filename,
        "backing-format", row->backing_format,
        "state", row->state ? row->state : "ready",
        "created", (json_int_t)row->created);
}

/* The row back from a step 0 payload (borrowed strings). */
static int payload_row(json_t *pl, struct catalog_image *row)
{
    json_int_t id = 0, vid = 0, vs = 0, cs = 0, bid = 0, created = 0;
    const char *vol = NULL, *path = NULL, *fmt = NULL, *state = NULL;
    const char *bfile = NULL, *bfmt = NULL;

    memset(row, 0, sizeof(*row));
    if (json_unpack(pl, "{sI sI ss ss ss sI sI sI s?s s?s ss sI}",
                    "id", &id, "volume-id", &vid, "volume", &vol, "path", &path,
                    "format", &fmt, "virtual-size", &vs, "cluster-size", &cs,
                    "backing-id", &bid, "backing-filename", &bfile,
                    "backing-format", &bfmt, "state", &state,
                    "created", &created) < 0)
        return -1;
    row->id = id;
    row->volume_id = vid;
    row->volume = (char *)vol;
    row->path = (char *)path;
    row->format = (char *)fmt;
    row->virtual_size = (uint64_t)vs;
    row->cluster_size = (uint32_t)cs;
    row->backing_id = bid;
    row->backing_filename = (char *)bfile;
    row->backing_format = (char *)bfmt;
    row->state = (char *)state;
    row->created = created;
    return 0;
}

/* Put the row back and end the operation as undone, in one transaction. */
static int put_back(struct catalog *cat, struct journal_op *op,
                    const struct catalog_image *row, struct gvm_error *err)
{
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (catalog_image_restore(cat, row, err) < 0 || journal_undone(op, err) < 0) {
        catalog_rollback(cat);
        return -1;
    }
    return catalog_commit(cat, err);
}

/* Remove the row and record the pending unlink, in one transaction. */
static int remove_row(struct catalog *cat, struct journal_op *op,
                      const struct catalog_image *row, struct gvm_error *err)
{
    _cleanup_json_ json_t *pl = json_pack("{sI ss}", "volume-id",
                                          (json_int_t)row->volume_id,
                                          "path", row->path);
    if (!pl)
        return gvm_error_oom(err);
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (catalog_image_delete(cat, row->id, err) < 0 ||
        journal_step(op, IMAGE_DELETE_STEP, pl, err) < 0) {
        catalog_rollback(cat);
        return -1;
    }
    return catalog_commit(cat, err);
}

static int delete_locked(struct gvmd *d, struct resolved *r,
                         struct gvm_error *err)
{
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_json_ json_t *pl = row_payload(&r->row);
    struct gvm_error e2 = { 0 };

    if (!pl)
        return gvm_error_oom(err);
    if (journal_begin(d->cat, IMAGE_DELETE_OP, 0, pl, &op, err) < 0)
        return -1;
    if (remove_row(d->cat, op, &r->row, err) < 0) {
        /* Rolled back: the row and the file are as they were. */
        if (journal_undone(op, &e2) < 0 || journal_forget(op, &e2) < 0)
            log_warn("image-delete of %s:%s: %s", r->vol.name, r->path,
                     e2.message);
        return -1;
    }
    /* Test builds: a crash between the row's removal and the unlink. */
    int ret = journal_fault_point("image-delete.removed");
    if (ret == 0)
        ret = r->store->ops->unlink(r->store, r->path);
    if (ret < 0 && ret != -ENOENT) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(ret), ret,
                            "Deleting the file of %s:%s failed; the image "
                            "stays in the catalog", r->vol.name, r->path);
        if (put_back(d->cat, op, &r->row, &e2) < 0)
            log_error("image-delete of %s:%s: the row of a file that could "
                      "not be removed cannot be put back (%s); the next "
                      "start retries the removal.", r->vol.name, r->path,
                      e2.message);
        else if (journal_forget(op, &e2) < 0)
            log_warn("image-delete of %s:%s: %s", r->vol.name, r->path,
                     e2.message);
        return -1;
    }
    /* The record of an operation that ended is of no further use; until it
     * is gone, a restart would only find the file gone (ENOENT) again. */
    if (journal_done(op, &e2) < 0 || journal_forget(op, &e2) < 0)
        log_warn("image-delete of %s:%s is done but its journal record "
                 "stays (%s); the next start finds the file gone.",
                 r->vol.name, r->path, e2.message);
    return 0;
}

int image_delete(struct gvmd *d, struct resolved *r, struct gvm_error *err)
{
    if (!r->catalogued) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND,
                      "The image %s:%s is not in the catalog.", r->vol.name, r->path);
        return -1;
    }
    if (live_refuse_running(d, r->row.id, "delete", err) < 0)
        return -1;
    /* Nor a file another process has open for writing (image-lock.c):
     * held across the unlink so nobody opens it in between. */
    _cleanup_img_lock_ struct img_lock *lock = NULL;
    if (image_open_lock(r, &lock, err) < 0)
        return -1;
    catalog_lock(d->cat);
    int ret = delete_locked(d, r, err);
    catalog_unlock(d->cat);
    /* An image still in use is refused by the catalog, which names it
     * and its users (catalog_image_delete). */
    return ret < 0 ? -1 : 0;
}

static int image_delete_recover(void *opaque, struct journal_op *op,
                                const struct journal_entry *e, size_t n,
                                struct gvm_error *err)
{
    struct gvmd *d = opaque;
    const struct journal_entry *last = journal_last_pending(e, n);
    struct catalog_image row;
    struct gvm_store *st = NULL;

    (void)op;
    /* Only step 0: the row's removal never committed; nothing changed. */
    if (!last || strcmp(last->kind, IMAGE_DELETE_STEP) != 0)
        return 1;
    if (payload_row(e[0].payload, &row) < 0) {
        gvm_error_set(err, GVM_ERR_CORRUPT, "The journal record of an "
                      "image-delete does not say which image.");
        return -1;
    }
    /* Someone catalogued the path again (impossible while gvmd ran; an
     * operator's hand in the catalog): that row owns the file now. */
    struct catalog_image other = { 0 };
    int f = catalog_image_find(d->cat, row.volume_id, row.path, &other, err);
    catalog_image_clear(&other);
    if (f < 0)
        return -1;
    if (f > 0) {
        log_warn("image-delete of %s:%s (id %lld) was interrupted, but the "
                 "path is catalogued again: its file is left alone.",
                 row.volume, row.path, (long long)row.id);
        return 0;
    }
    if (volumes_store_by_id(d->vols, row.volume_id, &st, err) < 0)
        return -1;
    int r = st->ops->unlink(st, row.path);
    if (r == 0 || r == -ENOENT) {
        log_info("image-delete of %s:%s (id %lld): finished the removal of "
                 "its file after a restart.", row.volume, row.path,
                 (long long)row.id);
        return 0;
    }
    /* The file stays: so does the row. */
    gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                        "Removing the file of %s:%s failed", row.volume, row.path);
    struct gvm_error e2 = { 0 };
    if (catalog_image_restore(d->cat, &row, &e2) < 0) {
        log_error("image-delete of %s:%s: %s", row.volume, row.path, e2.message);
        return -1;
    }
    gvm_error_clear(err);
    log_warn("image-delete of %s:%s (id %lld): the file could not be removed "
             "(%s); the image is back in the catalog.", row.volume, row.path,
             (long long)row.id, strerror(-r));
    return 1;
}

const struct journal_type image_delete_journal_types[] = {
    { .name = IMAGE_DELETE_OP, .recover = image_delete_recover },
};
const size_t image_delete_journal_ntypes = GVM_ARRAY_SIZE(image_delete_journal_types);
