/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-job-copy.c — copying data into an image for the chain surgery
 * jobs (chain-job.h): runs of ranges from what one image reads into
 * another (block-commit into base, block-pull into the image itself), and
 * the copy of every range where two backing chains read differently
 * (image-rebase safe, snapshot-delete's pull into a child).
 *
 * Data goes as store-side copies (img_write_copy) from the layer that
 * holds it whenever the store can, else through a buffer that reads what
 * the image reads (zeros past a file's end).  Zeros are written as zeros
 * (a zero flag on v3) so nothing is allocated for them, except where the
 * image's future backing could show data there.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "chain-job.h"

#define RUN CHAIN_JOB_COPY_BUF      /* bytes read/written per buffered call */
/* Bytes per store-side copy call (img_write_copy): one write batch of the
 * engine each, so its flushes are paid once per GiB; progress and
 * cancellation are looked at in between. */
#define COPY_RUN (1ull << 30)
#define COPY_CHUNK (4u << 20)       /* bytes compared per read */

/* ---- runs of ranges ---------------------------------------------------------- */

struct img *chain_job_copy_source(struct img *from, const struct img_extent *e)
{
    struct img *l = from;

    if (!e || !e->data || e->zero || !e->has_offset)
        return NULL;
    for (int i = 0; l && i < e->depth; i++)
        l = img_backing(l);
    return l;
}

int chain_job_copy_run(struct chain_job_copy *cp, enum chain_job_copy_act act,
                       uint64_t off, uint64_t len, const struct img_extent *e)
{
    struct img *src = act == CHAIN_JOB_COPY_DATA
                      ? chain_job_copy_source(cp->from, e) : NULL;
    int r;

    while (len > 0) {
        /* Store-side copies in large runs, unless a speed limit wants
         * small steps. */
        uint64_t step = src && !cp->speed ? COPY_RUN : RUN;
        size_t n = len < step ? (size_t)len : (size_t)step;

        if (job_should_stop(cp->job))
            return JOB_STOPPED;
        cp->fail_off = off;
        r = cp->fault ? journal_fault_point(cp->fault) : 0;
        if (r < 0)
            return r;
        r = -EXDEV;
        if (src)
            r = img_write_copy(cp->to, off, n, src, e->offset + (off - e->start));
        if (r == -EXDEV || r == -ENODATA || r == -EOPNOTSUPP) {
            /* No store-side copy (another store, or a source file shorter
             * than its map): through the buffer, which reads what `from`
             * reads (zeros past a file's end). */
            if (src && n > RUN)
                n = RUN;
            src = NULL;
            if (act == CHAIN_JOB_COPY_DATA) {
                r = img_read(cp->from, cp->buf, off, n);
                if (r == 0)
                    r = img_write(cp->to, cp->buf, off, n);
            } else if (act == CHAIN_JOB_COPY_ZERO) {
                r = img_write_zeroes(cp->to, off, n);
            } else {
                r = img_write(cp->to, cp->zbuf, off, n);
            }
        }
        if (r < 0)
            return r;
        cp->done += n;
        job_set_progress(cp->job, cp->done, cp->total);
        chain_job_throttle(cp->job, cp->speed, &cp->t0, cp->done);
        off += n;
        len -= n;
    }
    return 0;
}

/* ---- where two chains differ ---------------------------------------------------- */

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

/* What one chain_job_copy_if_differs works with. */
struct differ {
    struct img *top, *nb;
    unsigned flags;
    uint32_t csize;
    uint8_t *obuf, *nbuf;           /* COPY_CHUNK bytes each */
    uint64_t *fail_off;
    struct pending pend;
};

/* Write [off, off+len) of obuf, a run of clusters where the chains
 * differ; src/src_off: the layer holding that data, or NULL. */
static int write_run(struct differ *df, uint64_t off, size_t len,
                     const uint8_t *data, struct img *src, uint64_t src_off)
{
    int r;

    *df->fail_off = off;
    if (df->flags & CHAIN_JOB_DIFF_ZEROS_AS_DATA)
        return img_write(df->top, data, off, len);
    if (all_zero(data, len)) {
        r = pending_flush(df->top, &df->pend, df->fail_off);
        return r == 0 ? write_zeroes(df->top, off, len, df->csize, data) : r;
    }
    r = pending_add(df->top, &df->pend, src, off, len, src_off, df->fail_off);
    return r == -EXDEV ? img_write(df->top, data, off, len) : r;
}

/*
 * Copy [off, off+len), a range the image does not allocate, wherever the
 * old chain (read through the image) and the new backing differ, cluster by
 * cluster, keeping runs of differing clusters together.  Zeros are written
 * as zeros (a zero flag on v3) so nothing is allocated for them.  Data
 * that layer src holds at src_off (the range's extent, NULL if none)
 * goes through the pending run and is moved by the store, not from obuf.
 */
static int copy_range(struct differ *df, uint64_t off, uint64_t len,
                      struct img *src, uint64_t src_off)
{
    uint8_t *obuf = df->obuf, *nbuf = df->nbuf;
    uint32_t csize = df->csize;

    while (len > 0) {
        size_t n = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
        int r;

        *df->fail_off = off;
        r = img_read(df->top, obuf, off, n);
        if (r == 0)
            r = read_new(df->nb, nbuf, off, n);
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
            r = write_run(df, off + i, j - i, obuf + i, src, src_off + i);
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

/* One chunk [off, off+len) of the image: its extents that may differ. */
static int differ_chunk(struct differ *df, uint64_t off, uint64_t len,
                        int nb_depth)
{
    struct img_extent *ext = NULL;
    size_t n = 0;
    int r = img_map(df->top, off, len, &ext, &n);

    for (size_t i = 0; r == 0 && i < n; i++) {
        /* Allocated in the image itself (data or zero flag): it hides
         * both backing chains there. */
        if (ext[i].present && ext[i].depth == 0)
            continue;
        /* Read from the new backing file or below it: the same either
         * way. */
        if (ext[i].depth >= nb_depth)
            continue;
        r = copy_range(df, ext[i].start, ext[i].length,
                       chain_job_copy_source(df->top, &ext[i]), ext[i].offset);
    }
    free(ext);
    return r;
}

int chain_job_copy_if_differs(struct job *job, struct img *top, struct img *nb,
                              unsigned flags, const char *fault,
                              uint64_t *fail_off)
{
    uint64_t size = img_virtual_size(top), off = 0;
    _cleanup_free_ uint8_t *obuf = malloc(COPY_CHUNK);
    _cleanup_free_ uint8_t *nbuf = malloc(COPY_CHUNK);
    struct differ df = { .top = top, .nb = nb, .flags = flags, .obuf = obuf,
                         .nbuf = nbuf, .fail_off = fail_off };
    int nb_depth = new_backing_depth(top, nb);
    struct img_info info;
    int r;

    if (!obuf || !nbuf)
        return -ENOMEM;
    if (img_get_info(top, &info) < 0)
        return -EIO;
    df.csize = info.cluster_size ? info.cluster_size : 65536;
    img_info_clear(&info);

    if (!(flags & CHAIN_JOB_DIFF_ADD_PROGRESS))
        job_set_progress(job, 0, size);
    while (off < size) {
        uint64_t len = size - off < COPY_CHUNK ? size - off : COPY_CHUNK;

        if (job_should_stop(job))
            return JOB_STOPPED;
        *fail_off = off;
        r = fault ? journal_fault_point(fault) : 0;
        if (r == 0)
            r = differ_chunk(&df, off, len, nb_depth);
        if (r < 0)
            return r;
        off += len;
        if (flags & CHAIN_JOB_DIFF_ADD_PROGRESS)
            job_add_progress(job, len);
        else
            job_set_progress(job, off, size);
    }
    r = pending_flush(top, &df.pend, fail_off);
    if (r < 0)
        return r;
    *fail_off = size;
    return img_flush(top);
}
