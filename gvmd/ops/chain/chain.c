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
#include <limits.h>
#include <string.h>

#include "catalog-image.h"
#include "chain-check.h"
#include "chain.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "virt-define.h"
#include "volume.h"

#define COPY_CHUNK (4u << 20)       /* bytes compared per read */

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
            gvm_error_param(err, "backing", "The new backing file has image "
                            "%" PRId64 " (the image being rebased) in its own "
                            "chain: the rebase would make a loop.", avoid);
            return -1;
        }
        if (depth >= IMG_MAX_CHAIN_DEPTH || *n >= max) {
            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below "
                          "image %" PRId64 " is deeper than %d images.", id,
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
    if (!images || !params)
        return gvm_error_oom(err);
    json_object_set_new(params, "backing",
                        has_new ? json_integer(nb.row.id) : json_null());
    json_array_append_new(images, json_integer(top.row.id));
    if (top.row.backing_id > 0)
        json_array_append_new(images, json_integer(top.row.backing_id));
    if (has_new && nb.row.id != top.row.backing_id)
        json_array_append_new(images, json_integer(nb.row.id));

    return chain_job_start(d, &chain_rebase_job, params, images, locks, nlocks, req->op_id,
                           "rebase", &top, result, err);
}

struct chain_hold {
    size_t n;
    struct img_lock *locks[];
};

void chain_hold_release(struct chain_hold *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        img_lock_drop(h->locks[i]);
    free(h);
}

/* Write-lock the images ids (a JSON array of image ids) into *out. */
static int hold_ids(struct gvmd *d, json_t *ids, struct chain_hold **out,
                    struct gvm_error *err)
{
    size_t i, n = json_array_size(ids);
    struct chain_hold *h = calloc(1, sizeof(*h) + (n ? n : 1) * sizeof(h->locks[0]));
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
    chain_hold_release(h);
    return -1;
}

int chain_hold_take(struct job *job, struct chain_hold **out,
                    struct gvm_error *err)
{
    return hold_ids(job_daemon(job), json_object_get(job_params(job), "hold"),
                    out, err);
}

int chain_job_start(struct gvmd *d, const struct job_type *type,
                    json_t *params, json_t *images,
                    const struct catalog_job_lock *locks, size_t nlocks,
                    const char *op_id, const char *what,
                    const struct resolved *top, json_t **result,
                    struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;
    _cleanup_free_ int64_t *ids = calloc(nlocks ? nlocks : 1, sizeof(*ids));
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
     * the job holds them again while it writes (chain_hold_take). */
    {
        struct chain_hold *h = NULL;
        _cleanup_json_ json_t *hold = json_array();

        for (size_t i = 0; hold && i < nids; i++)
            if (json_array_append_new(hold, json_integer(ids[i])) < 0)
                return gvm_error_oom(err);
        if (!hold || json_object_set(params, "hold", hold) < 0)
            return gvm_error_oom(err);
        if (hold_ids(d, hold, &h, err) < 0)
            return -1;
        chain_hold_release(h);
    }
    if (jobs_create(d->jobs, type, params, images, locks, nlocks, op_id,
                    &job, err) < 0) {
        if (err->cls == GVM_ERR_IN_USE) {
            struct gvm_error e2 = { 0 };
            gvm_error_set(&e2, GVM_ERR_IN_USE, "Cannot %s %s:%s now. %s",
                          what, top->vol.name, top->path, err->message);
            *err = e2;
        }
        return -1;
    }
    *result = job_to_json(job);
    return *result ? 0 : gvm_error_oom(err);
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
    return rb->name ? 0 : gvm_error_oom(err);
}

/* Open the image being rebased (flags: IMG_OPEN_*). */
static int open_top(struct rebase *rb, unsigned flags, struct img **out,
                    struct gvm_error *err)
{
    struct gvm_store *st = NULL;
    struct img_resolver res;
    int r;

    if (volumes_store_by_id(rb->d->vols, rb->row.volume_id, &st, err) < 0)
        return -1;
    if (resolve_ctx_add(&rb->ctx, st, rb->row.volume_id, rb->row.volume) < 0)
        return gvm_error_oom(err);
    res = resolve_img_resolver(&rb->ctx);
    r = img_open_hint(st, rb->row.path, IMG_FMT_QCOW2, flags, &res, 0,
                      rb->row.backing_format, out, err);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Opening %s failed", rb->name);
        return -1;
    }
    return 0;
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

/* What the image would read from the new backing: zeros past its end. */
static int read_new(struct img *nb, uint8_t *buf, uint64_t off, size_t len)
{
    uint64_t size = nb ? img_virtual_size(nb) : 0;
    size_t n = off >= size ? 0 : (size - off < len ? (size_t)(size - off) : len);
    int r = 0;

    if (n)
        r = img_read(nb, buf, off, n);
    memset(buf + n, 0, len - n);
    return r;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i])
            return false;
    }
    return true;
}

/*
 * Make [off, off+len) of the image read as zeros whatever its backing file
 * will be.  img_write_zeroes() may leave alone a cluster through which the
 * *current* chain shows nothing (past the old backing's end, or no backing
 * at all): right for the engine, but the new backing may show data there,
 * so such clusters get real zeros (zbuf: len zero bytes).
 */
static int write_zeroes(struct img *top, uint64_t off, uint64_t len,
                        uint32_t csize, const uint8_t *zbuf)
{
    struct img *old = img_backing(top);
    uint64_t covered = old ? img_virtual_size(old) : 0;
    uint64_t split, end = off + len;
    int r;

    /* A cluster that starts below the old backing's end shows it. */
    covered = (covered + csize - 1) / csize * csize;
    split = covered < off ? off : covered > end ? end : covered;
    if (split > off) {
        r = img_write_zeroes(top, off, split - off);
        if (r < 0)
            return r;
    }
    return split < end ? img_write(top, zbuf + (split - off), split, end - split) : 0;
}

/*
 * A run of differing data waiting to be written with one img_write_copy
 * (one write batch, one flush) from a layer of the old chain: runs that
 * continue each other across chunks are merged up to PEND_MAX.
 */
#define PEND_MAX (1ull << 30)
struct pending {
    struct img *src;         /* NULL: nothing pending */
    uint64_t off, len, src_off;
};

static int pending_flush(struct img *top, struct pending *p, uint64_t *fail_off)
{
    int r = 0;

    if (p->src && p->len) {
        *fail_off = p->off;
        r = img_write_copy(top, p->off, p->len, p->src, p->src_off);
    }
    if (r == -ENODATA || r == -EOPNOTSUPP) {
        /* The layer's file ends before its map says: what the image reads
         * there (zeros past the end), through a buffer. */
        _cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK);
        r = buf ? 0 : -ENOMEM;
        for (uint64_t o = 0; r == 0 && o < p->len; o += COPY_CHUNK) {
            size_t n = p->len - o < COPY_CHUNK ? (size_t)(p->len - o) : COPY_CHUNK;
            *fail_off = p->off + o;
            r = img_read(top, buf, p->off + o, n);
            if (r == 0)
                r = img_write(top, buf, p->off + o, n);
        }
    }
    p->src = NULL;
    p->len = 0;
    return r;
}

/* Queue [off, off+len) to be copied from src at src_off.  -EXDEV if it
 * cannot be (the caller writes its buffer instead). */
static int pending_add(struct img *top, struct pending *p, struct img *src,
                       uint64_t off, uint64_t len, uint64_t src_off,
                       uint64_t *fail_off)
{
    int r;

    if (!src || img_store(src) != img_store(top))
        return -EXDEV;
    if (p->src == src && p->off + p->len == off &&
        p->src_off + p->len == src_off && p->len + len <= PEND_MAX) {
        p->len += len;
        return 0;
    }
    r = pending_flush(top, p, fail_off);
    if (r < 0)
        return r;
    *p = (struct pending){ .src = src, .off = off, .len = len, .src_off = src_off };
    return 0;
}

/*
 * Copy [off, off+len), a range the image does not allocate, wherever the
 * old chain (read through the image) and the new backing differ, cluster by
 * cluster, keeping runs of differing clusters together.  Zeros are written
 * as zeros (a zero flag on v3) so nothing is allocated for them.  Data
 * that layer src holds at src_off (the range's extent, NULL if none)
 * goes through `pend` and is moved by the store, not from obuf.
 */
static int copy_range(struct img *top, struct img *nb, uint64_t off,
                      uint64_t len, uint32_t csize, uint8_t *obuf,
                      uint8_t *nbuf, uint64_t *fail_off, struct img *src,
                      uint64_t src_off, struct pending *pend)
{
    while (len > 0) {
        size_t n = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
        int r;

        *fail_off = off;
        r = img_read(top, obuf, off, n);
        if (r == 0)
            r = read_new(nb, nbuf, off, n);
        if (r < 0)
            return r;
        for (size_t i = 0; i < n;) {
            /* Cluster-aligned pieces (the range itself may start mid-way
             * only at the image's end, which is fine). */
            size_t step = csize - (size_t)((off + i) % csize);
            size_t j;

            if (step > n - i)
                step = n - i;
            if (memcmp(obuf + i, nbuf + i, step) == 0) {
                i += step;
                continue;
            }
            /* Extend the run over following differing clusters. */
            j = i + step;
            while (j < n) {
                size_t s2 = csize < n - j ? csize : n - j;
                if (memcmp(obuf + j, nbuf + j, s2) == 0)
                    break;
                j += s2;
            }
            *fail_off = off + i;
            if (all_zero(obuf + i, j - i)) {
                r = pending_flush(top, pend, fail_off);
                if (r == 0)
                    r = write_zeroes(top, off + i, j - i, csize, obuf + i);
            } else {
                r = pending_add(top, pend, src, off + i, j - i,
                                src_off + i, fail_off);
                if (r == -EXDEV)
                    r = img_write(top, obuf + i, off + i, j - i);
            }
            if (r < 0)
                return r;
            i = j;
        }
        off += n;
        len -= n;
        src_off += n;
    }
    return 0;
}

/* Depth of the new backing nb in the image's current chain (1: its
 * backing file), or INT_MAX when it is not in it.  Where the image reads
 * from that depth or deeper, the old and the new chain read the same. */
static int new_backing_depth(struct img *top, struct img *nb)
{
    int depth = 1;

    if (!nb)
        return INT_MAX;
    for (struct img *l = img_backing(top); l; l = img_backing(l), depth++) {
        if (img_store(l) == img_store(nb) &&
            strcmp(img_path(l), img_path(nb)) == 0)
            return depth;
    }
    return INT_MAX;
}

/* The layer holding a data extent's bytes at its offset, or NULL. */
static struct img *extent_layer(struct img *top, const struct img_extent *e)
{
    struct img *l = top;

    if (!e->data || e->zero || !e->has_offset)
        return NULL;
    for (int i = 0; l && i < e->depth; i++)
        l = img_backing(l);
    return l;
}

/* The safe part: 0, JOB_STOPPED, or -errno with *fail_off set. */
static int copy_differences(struct rebase *rb, struct img *top, struct img *nb,
                            uint64_t *fail_off)
{
    uint64_t size = img_virtual_size(top), off = 0;
    _cleanup_free_ uint8_t *obuf = malloc(COPY_CHUNK);
    _cleanup_free_ uint8_t *nbuf = malloc(COPY_CHUNK);
    struct pending pend = { 0 };
    int nb_depth = new_backing_depth(top, nb);
    struct img_info info;
    uint32_t csize;

    if (!obuf || !nbuf)
        return -ENOMEM;
    if (img_get_info(top, &info) < 0)
        return -EIO;
    csize = info.cluster_size ? info.cluster_size : 65536;
    img_info_clear(&info);

    job_set_progress(rb->job, 0, size);
    while (off < size) {
        uint64_t len = size - off < COPY_CHUNK ? size - off : COPY_CHUNK;
        struct img_extent *ext = NULL;
        size_t n = 0;
        int r;

        if (job_should_stop(rb->job))
            return JOB_STOPPED;
        *fail_off = off;
        r = journal_fault_point("image-rebase.chunk");
        if (r < 0)
            return r;
        r = img_map(top, off, len, &ext, &n);
        if (r < 0)
            return r;
        for (size_t i = 0; i < n; i++) {
            struct img *src = extent_layer(top, &ext[i]);

            /* Allocated in the image itself (data or zero flag): it hides
             * both backing chains there. */
            if (ext[i].present && ext[i].depth == 0)
                continue;
            /* Read from the new backing file or below it: the same either
             * way. */
            if (ext[i].depth >= nb_depth)
                continue;
            r = copy_range(top, nb, ext[i].start, ext[i].length, csize,
                           obuf, nbuf, fail_off, src, ext[i].offset, &pend);
            if (r < 0) {
                free(ext);
                return r;
            }
        }
        free(ext);
        off += len;
        job_set_progress(rb->job, off, size);
    }
    int r = pending_flush(top, &pend, fail_off);
    if (r < 0)
        return r;
    *fail_off = size;
    return img_flush(top);
}

/* Repair cluster leaks an interrupted or failed copy may have left (never
 * corruption: the engine's write ordering sees to that).  Best effort: a
 * leak wastes space, nothing else.  top: the image opened read-write, or
 * NULL to open it here. */
static void repair_leaks(struct rebase *rb, struct img *top)
{
    struct img *own = NULL;
    struct gvm_error err = { 0 };
    struct img_check_result res;

    if (!top && open_top(rb, IMG_OPEN_RW | IMG_OPEN_NOBACKING, &own, &err) < 0) {
        log_warn("Rebase of %s: leak check after the interrupted copy failed: %s",
                 rb->name, err.message);
        return;
    }
    if (img_check(top ? top : own, IMG_REPAIR_LEAKS, &res, &err) < 0)
        log_warn("Rebase of %s: leak check after the interrupted copy failed: %s",
                 rb->name, err.message);
    else if (res.leaks || res.corruptions)
        log_info("Rebase of %s: after the interrupted copy, %" PRIu64 " leaked "
                 "clusters (%" PRIu64 " fixed), %" PRIu64 " corruptions.",
                 rb->name, res.leaks, res.leaks_fixed, res.corruptions);
    if (own)
        img_close(own);
}

/* Make the catalog edge say what the header now says (the new backing). */
static int catalog_switch(struct rebase *rb, struct gvm_error *err)
{
    if (catalog_image_set_backing(rb->d->cat, rb->top_id, rb->new_id,
                                  rb->new_name, rb->new_fmt, err) < 0) {
        struct gvm_error e2 = { 0 };
        gvm_error_set(&e2, err->cls, "The header of %s now names the backing "
                      "file %s, but recording that in the catalog failed: %s",
                      rb->name, gvm_str_or_none(rb->new_name), err->message);
        *err = e2;
        return -1;
    }
    return 0;
}

/* Write the new backing name into the header and make it durable. */
static int write_header(struct rebase *rb, struct img *top, struct gvm_error *err)
{
    int r = img_set_backing(top, rb->new_name, rb->new_fmt, err);

    if (r == 0)
        r = img_flush(top);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Writing the backing file name into the header of "
                            "%s failed", rb->name);
        return -1;
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
        if (write_header(rb, top, err) < 0)
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
    return catalog_switch(rb, err);
}

static int rebase_run(struct job *job, struct gvm_error *err)
{
    struct rebase rb;
    _cleanup_img_ struct img *top = NULL;
    _cleanup_img_ struct img *nb = NULL;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_info_ struct img_info info = { 0 };
    _cleanup_json_ json_t *sw = NULL;
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
        ret = catalog_switch(&rb, err);
        goto out;
    }
    /* The new backing (and its chain, which must not hold the image) is
     * checked before the journal and the first write. */
    if (rb.safe && rb.new_id > 0 && open_new_backing(&rb, top, &nb, err) < 0)
        goto out;
    if (journal_begin(rb.d->cat, chain_rebase_job.name, job_id(job),
                      job_params(job), &op, err) < 0)
        goto out;

    if (rb.safe) {
        _cleanup_json_ json_t *cp = json_pack("{s:s?, s:s?}",
                                              "old-name", info.backing_filename,
                                              "old-format", info.backing_format);
        uint64_t fail_off = 0;

        if (!cp || journal_step(op, "copying", cp, err) < 0)
            goto undo;
        r = copy_differences(&rb, top, nb, &fail_off);
        if (r == JOB_STOPPED) {
            ret = JOB_STOPPED;
            goto undo;
        }
        if (r < 0) {
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "Safe rebase of %s failed while copying data "
                                "near offset %" PRIu64 "; the image still reads "
                                "as before and keeps its backing file %s",
                                rb.name, fail_off,
                                gvm_str_or_none(info.backing_filename));
            /* A write that failed half-way may have left an allocated
             * cluster nothing points to: give it back if storage lets us. */
            repair_leaks(&rb, top);
            goto undo;
        }
    }
    if (job_should_stop(job)) {
        ret = JOB_STOPPED;
        goto undo;
    }

    sw = json_pack("{s:s?, s:s?, s:I, s:s?, s:s?, s:I}",
                   "old-name", info.backing_filename,
                   "old-format", info.backing_format,
                   "old-id", (json_int_t)rb.row.backing_id,
                   "new-name", rb.new_name, "new-format", rb.new_fmt,
                   "new-id", (json_int_t)rb.new_id);
    if (!sw) {
        gvm_error_oom(err);
        goto undo;
    }
    if (journal_step(op, "switch-header", sw, err) < 0)
        goto undo;
    if (write_header(&rb, top, err) < 0) {
        /* Did the header land?  Settle from what it says now. */
        struct gvm_error e2 = { 0 };
        img_close(steal_pointer(&top));
        if (settle_switch(&rb, sw, &e2) == 0 && journal_done(op, &e2) == 0) {
            log_warn("Rebase of %s: the header write reported an error but "
                     "landed: %s", rb.name, err->message);
            gvm_error_clear(err);
            ret = 0;
        }
        goto out;
    }
    r = journal_fault_point("image-rebase.header-written");
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Fault injected after "
                            "the header of %s was switched; the next start of "
                            "gvmd brings the catalog in line", rb.name);
        goto out;
    }
    if (catalog_switch(&rb, err) < 0 || journal_done(op, err) < 0)
        goto out;
    /* A stopped domain's definition must not give the old chain. */
    if (virt_define_sync_image(rb.d, rb.top_id, "The rebase is complete and "
                               "recorded in the catalog", err) < 0)
        goto out;
    ret = 0;
    goto out;

undo:
    /* Nothing guest-visible changed (R1): close the operation as undone. */
    if (op) {
        struct gvm_error e2 = { 0 };
        if (journal_undone(op, &e2) < 0)
            log_error("Rebase of %s: closing its journal record failed: %s",
                      rb.name ? rb.name : "?", e2.message);
    }
out:
    /* The images before the resolver context they were opened through. */
    if (nb)
        img_close(steal_pointer(&nb));
    if (top)
        img_close(steal_pointer(&top));
    rebase_clear(&rb);
    return ret;
}

static int rebase_recover(struct job *job, struct journal_op *op,
                          const struct journal_entry *e, size_t n,
                          struct gvm_error *err)
{
    struct rebase rb;
    const struct journal_entry *last = op ? journal_last_pending(e, n) : NULL;
    int ret = -1;

    if (rebase_init(&rb, job, err) < 0)
        goto out;
    if (!op || !last) {
        /* Never journaled anything, or the operation was settled: all done
         * (finished before the job could conclude) or all undone (stopped
         * by a cancel or shutdown). */
        if (op && n > 0 && !e[n - 1].undone)
            ret = JOB_RECOVERED_DONE;
        else
            ret = job_cancel_requested(job) ? JOB_RECOVERED_CANCELLED
                                            : JOB_RECOVERED_RESUME;
        goto out;
    }
    if (strcmp(last->kind, "switch-header") == 0) {
        /* R2 */
        if (settle_switch(&rb, last->payload, err) < 0 ||
            journal_done(op, err) < 0) {
            struct gvm_error e2 = { 0 };
            gvm_error_set(&e2, err->cls, "Recovery of the interrupted rebase "
                          "of %s failed: %s %sIts header may name the old "
                          "backing file %s or the new %s and the catalog may "
                          "disagree: check it with chain-audit.", rb.name,
                          err->message, rb.safe ? "The image reads as before "
                          "either way (the copy was complete). " : "",
                          gvm_str_or_none(json_string_value(json_object_get(
                              last->payload, "old-name"))),
                          gvm_str_or_none(rb.new_name));
            *err = e2;
            goto out;
        }
        ret = JOB_RECOVERED_DONE;
        goto out;
    }
    /* R1: step 0 or "copying": the header was not touched. */
    if (rb.safe)
        repair_leaks(&rb, NULL);
    if (journal_undone(op, err) < 0)
        goto out;
    ret = job_cancel_requested(job) ? JOB_RECOVERED_CANCELLED
                                    : JOB_RECOVERED_RESUME;
out:
    rebase_clear(&rb);
    return ret;
}

const struct job_type chain_rebase_job = {
    .name = "image-rebase",
    .run = rebase_run,
    .recover = rebase_recover,
};
