/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-write.c — guest writes into the top qcow2 layer (img_write,
 * img_write_zeroes) and growth of the active L1 table.
 *
 * Declared write ordering for a request that changes metadata (requests
 * are handled in batches of up to 256 L2 tables / 32768 clusters, each
 * batch going through every step once); a crash between any two steps
 * leaves at worst leaked clusters, never a table pointing at a cluster
 * whose refcount does not account for it or at data not yet written:
 *
 *   0. an existing L2 table that may be shared is made private first
 *      (qcow2_cluster_prepare_l2: copy allocated with its refcount
 *      durable, written, flush, then the L1 entry); new clusters and new
 *      L2 tables are allocated in the write-back refcount-block cache;
 *   1. guest data: written in place into clusters this image alone owns
 *      (refcount 1, COPIED), else into the new clusters, merged with what
 *      the guest currently reads for partial clusters (copy-on-write from
 *      the old cluster, a compressed cluster or the backing chain), in
 *      host-contiguous runs of up to 8 MiB (qcow2_write_copy: moved by the
 *      store's copy, copy_file_range(2) on a dir volume, in runs as long
 *      as the batch);
 *   2. new L2 tables written whole (nothing points at them yet);
 *   3. refcount increments (refcount blocks written, then new refcount-
 *      table entries, qcow2_refcount_write)                           → flush
 *      Steps 1-3 only write where nothing on disk points yet: whatever
 *      subset of them a crash keeps, the worst is a leaked cluster.
 *   4. L2 entries of existing tables (qcow2_cluster_set_entries) and L1
 *      entries of the new tables: each points at data and refcounts made
 *      durable by the flush above;
 *   5. only when something is freed: flush, then the refcount decrements
 *      of what the old L2 entries pointed at (shared clusters, compressed
 *      sectors); they reach the disk with the next refcount flush, and a
 *      cluster freed this way may be reused at once because nothing on
 *      disk points at it any more.
 * Step 4 is not flushed when nothing is freed: losing it loses only
 * pointers (leaks), and the next batch's flush or img_flush() makes it
 * durable.  Two flushes per batch at most, one for a plain copy.
 * Zero writes: L2 entries (zero flag / unallocated) → flush → decrements.
 * tests/integration/test-qcow2-write.sh kills the writer before each of
 * its writes and checks that no prefix leaves a corruption.
 *
 * L1 growth: new table allocated (refcount durable) and written → flush →
 * header switch (qcow2_header_write flushes) → old table freed.
 *
 * Lazy refcounts: an image with the lazy_refcounts compatible bit is
 * written with the same eager ordering and the dirty bit is never set:
 * simpler, and such an image is consistent at every flush point like any
 * other.  (A dirty image is repaired when opened for writing, qcow2.c.)
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* Largest single pwrite of guest data. */
#define MAX_RUN (8u << 20)
/* Zero buffer for v2 zero writes over backing data. */
#define ZERO_CHUNK (1u << 20)

enum action {
    A_INPLACE,        /* owned data cluster, entry unchanged           */
    A_INPLACE_FLAG,   /* owned data cluster lacking COPIED: set it     */
    A_INPLACE_ZERO,   /* owned preallocated zero cluster: clear ZERO   */
    A_ALLOC,          /* new cluster (copy-on-write)                   */
};

/* Refcount range an L2 entry holds (0 length: none). */
static void entry_extent(const struct qcow2 *q, uint64_t e, uint64_t *off,
                         uint64_t *len)
{
    *off = *len = 0;
    if (e & QCOW2_OFLAG_COMPRESSED) {
        uint64_t coff = e & q->coffset_mask;
        uint64_t nsec = ((e >> q->csize_shift) & q->csize_mask) + 1;
        *off = coff;
        *len = nsec * 512 - (coff & 511);
    } else if (e & QCOW2_OFFSET_MASK) {
        *off = e & QCOW2_OFFSET_MASK;
        *len = q->cluster_size;
    }
}

static int free_entries(struct qcow2 *q, const uint64_t *old,
                        const bool *drop, unsigned n)
{
    bool any = false;
    for (unsigned i = 0; i < n; i++)
        any |= drop[i];
    if (!any)
        return 0;
    /* The L2 table that stopped pointing at them must be durable first. */
    int r = q->st->ops->flush(q->file);
    if (r < 0)
        return r;
    for (unsigned i = 0; i < n; i++) {
        uint64_t off, len;
        if (!drop[i])
            continue;
        entry_extent(q, old[i], &off, &len);
        if (len) {
            r = qcow2_refcount_update(q, off, len, -1);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

/* Current L2 entries of n clusters from guest cluster `first` (0 for
 * clusters without a table); *owned: the table has COPIED in the L1. */
static int read_entries(struct qcow2 *q, uint64_t first, unsigned n,
                        uint64_t *ent, bool *owned)
{
    uint64_t l1i = first >> q->l2_bits;
    unsigned idx = (unsigned)(first & (q->l2_entries - 1));

    memset(ent, 0, (size_t)n * 8);
    *owned = false;
    uint64_t l1e;
    int r = qcow2_table_get(q, &q->l1, l1i, &l1e);
    if (r < 0 || !(l1e & QCOW2_OFFSET_MASK))
        return r;
    uint64_t *t;
    r = qcow2_l2_get(q, l1e & QCOW2_OFFSET_MASK, &t);
    if (r < 0)
        return r;
    memcpy(ent, t + idx, (size_t)n * 8);
    *owned = l1e & QCOW2_OFLAG_COPIED;
    return 0;
}

/* Validate the mapping of [g, g+len) (qcow2_cluster_get checks every entry:
 * alignment, end of file, metadata overlap, reserved bits). */
static int validate_range(struct qcow2 *q, uint64_t g, uint64_t len)
{
    if (g >= q->hdr.size)
        return 0;
    if (len > q->hdr.size - g)
        len = q->hdr.size - g;
    while (len > 0) {
        struct qcow2_mapping m;
        int r = qcow2_cluster_get(q, g, len, &m);
        if (r < 0)
            return r;
        if (m.bytes == 0)
            return -EIO;
        g += m.bytes;
        len -= m.bytes;
    }
    return 0;
}

/* Make sure the L2 table for guest cluster `first` is private: L1 large
 * enough, table prepared. */
static int prepare_table(struct qcow2 *q, uint64_t first)
{
    uint64_t l1i = first >> q->l2_bits;
    uint64_t l2_off;
    if (l1i >= q->hdr.l1_size) {
        int r = qcow2_l1_grow(q, l1i + 1);
        if (r < 0)
            return r;
    }
    uint64_t before, after;
    int r = qcow2_table_get(q, &q->l1, l1i, &before);
    if (r < 0)
        return r;
    r = qcow2_cluster_prepare_l2(q, first << q->hdr.cluster_bits, &l2_off);
    if (r < 0)
        return r;
    r = qcow2_table_get(q, &q->l1, l1i, &after);
    if (r < 0 || after == before)
        return r;
    /* The L1 entry changed and the refcount of a table it replaced may
     * have dropped (in the refcount cache): make the L1 entry durable now,
     * before anything (a cache eviction) can write that decrement. */
    return q->st->ops->flush(q->file);
}

/* ---- where the guest data comes from ------------------------------------ */

/* The bytes of a request starting at guest offset g0: in memory (buf), or
 * at offset base of a file on the image's own store (copy). */
struct wsrc {
    uint64_t g0;
    const uint8_t *buf;
    struct gvm_file *file;
    uint64_t base;
};

/* Copy n request bytes from guest offset g into dst. */
static int src_read(struct qcow2 *q, const struct wsrc *src, uint64_t g,
                    uint8_t *dst, size_t n)
{
    if (src->buf) {
        memcpy(dst, src->buf + (g - src->g0), n);
        return 0;
    }
    ssize_t r = q->st->ops->pread(src->file, dst, n, src->base + (g - src->g0));
    if (r < 0)
        return (int)r;
    return (size_t)r == n ? 0 : -ENODATA;
}

/* ---- coalesced data writes ---------------------------------------------- */

/* A host-contiguous run of data: from memory (mem: a merged partial
 * cluster) or from the request at guest offset g. */
struct run {
    uint64_t host;
    const uint8_t *mem;
    uint64_t g;
    uint64_t len;
};

static int run_flush(struct qcow2 *q, const struct wsrc *src, struct run *w)
{
    int r;

    if (w->len == 0)
        return 0;
    if (w->mem)
        r = q->st->ops->pwrite(q->file, w->mem, (size_t)w->len, w->host);
    else if (src->buf)
        r = q->st->ops->pwrite(q->file, src->buf + (w->g - src->g0),
                               (size_t)w->len, w->host);
    else
        r = store_copy(q->st, src->file, src->base + (w->g - src->g0),
                       q->file, w->host, w->len);
    w->len = 0;
    return r;
}

/* Add len bytes for host offset host: from mem if not NULL, else from the
 * request at guest offset g. */
static int run_add(struct qcow2 *q, const struct wsrc *src, struct run *w,
                   uint64_t host, const uint8_t *mem, uint64_t g, uint64_t len)
{
    /* Buffer writes stay bounded; copies are done by the store, in its own
     * pieces, and only end where host or source stop being contiguous. */
    uint64_t max = (mem || src->buf) ? MAX_RUN : UINT64_MAX;
    if (w->len && w->host + w->len == host && w->len + len <= max &&
        (mem ? (w->mem && w->mem + w->len == mem)
             : (!w->mem && w->g + w->len == g))) {
        w->len += len;
        return 0;
    }
    int r = run_flush(q, src, w);
    if (r < 0)
        return r;
    w->host = host;
    w->mem = mem;
    w->g = g;
    w->len = len;
    return 0;
}

/* ---- writes inside one L2 table ------------------------------------------ */

/* What the guest reads in the cluster at guest offset cg (zeros past the
 * virtual size), into mbuf. */
static int read_cluster(struct qcow2 *q, uint64_t cg, uint8_t *mbuf)
{
    uint64_t n = q->cluster_size;
    if (n > q->hdr.size - cg)
        n = q->hdr.size - cg;
    memset(mbuf + n, 0, q->cluster_size - n);
    return qcow2_read(q, mbuf, cg, n);
}

/* One L2 table's share of a write request. */
struct chunk {
    uint64_t off, len;        /* guest range                               */
    uint64_t first;           /* first guest cluster                       */
    unsigned nc;              /* clusters                                  */
    bool change;              /* L2 entries change                         */
    bool fresh;               /* no L2 table yet: a new one is made here   */
    uint64_t l2_off;          /* fresh: the new table's host offset        */
    uint64_t *ent;            /* current entries                           */
    uint64_t *target;         /* host offset of each cluster               */
    uint8_t *act;             /* enum action                               */
    uint8_t *head, *tail;     /* merged partial clusters, or NULL          */
};

static void chunk_clear(struct chunk *c)
{
    free(c->ent);
    free(c->target);
    free(c->act);
    free(c->head);
    free(c->tail);
    memset(c, 0, sizeof(*c));
}

/* Classify the clusters of one chunk and read what partial clusters that
 * move must keep (before anything changes). */
static int chunk_plan(struct qcow2 *q, struct chunk *c, const struct wsrc *src)
{
    const uint32_t cb = q->hdr.cluster_bits;
    const uint64_t cs = q->cluster_size;
    const uint64_t end = c->off + c->len;
    const uint64_t last = (end - 1) >> cb;
    int r;

    c->first = c->off >> cb;
    c->nc = (unsigned)(last - c->first + 1);
    c->ent = malloc((size_t)c->nc * 8);
    c->target = malloc((size_t)c->nc * 8);
    c->act = malloc(c->nc);
    if (!c->ent || !c->target || !c->act)
        return -ENOMEM;
    const uint64_t cstart = c->first << cb;
    r = validate_range(q, cstart, (uint64_t)c->nc << cb);
    if (r < 0)
        return r;
    bool owned;
    r = read_entries(q, c->first, c->nc, c->ent, &owned);
    if (r < 0)
        return r;
    uint64_t l1e;
    r = qcow2_table_get(q, &q->l1, c->first >> q->l2_bits, &l1e);
    if (r < 0)
        return r;
    c->fresh = !(l1e & QCOW2_OFFSET_MASK);

    for (unsigned i = 0; i < c->nc; i++) {
        uint64_t e = c->ent[i], host = e & QCOW2_OFFSET_MASK;
        c->act[i] = A_ALLOC;
        if (!(e & QCOW2_OFLAG_COMPRESSED) && host && owned) {
            bool mine = e & QCOW2_OFLAG_COPIED;
            if (!mine) {
                uint64_t rc;
                r = qcow2_refcount_get(q, host, &rc);
                if (r < 0)
                    return r;
                mine = rc == 1;
            }
            if (mine) {
                if (e & QCOW2_OFLAG_ZERO)
                    c->act[i] = A_INPLACE_ZERO;
                else if (!(e & QCOW2_OFLAG_COPIED))
                    c->act[i] = A_INPLACE_FLAG;
                else
                    c->act[i] = A_INPLACE;
            }
        }
        if (c->act[i] != A_INPLACE)
            c->change = true;
    }

    bool head_partial = (c->off & (cs - 1)) || (c->nc == 1 && (end & (cs - 1)));
    bool tail_partial = c->nc > 1 && (end & (cs - 1));
    if (head_partial && c->act[0] != A_INPLACE && c->act[0] != A_INPLACE_FLAG) {
        c->head = malloc(cs);
        if (!c->head)
            return -ENOMEM;
        r = read_cluster(q, cstart, c->head);
        if (r < 0)
            return r;
        r = src_read(q, src, c->off, c->head + (c->off - cstart),
                     (size_t)((c->nc == 1 ? end : cstart + cs) - c->off));
        if (r < 0)
            return r;
    }
    if (tail_partial && c->act[c->nc - 1] != A_INPLACE &&
        c->act[c->nc - 1] != A_INPLACE_FLAG) {
        uint64_t tg = last << cb;
        c->tail = malloc(cs);
        if (!c->tail)
            return -ENOMEM;
        r = read_cluster(q, tg, c->tail);
        if (r < 0)
            return r;
        r = src_read(q, src, tg, c->tail, (size_t)(end - tg));
        if (r < 0)
            return r;
    }
    return 0;
}

/* New entry of cluster i of a chunk after the data is written. */
static uint64_t new_entry(const struct chunk *c, unsigned i)
{
    if (c->act[i] == A_INPLACE)
        return c->ent[i];
    return c->target[i] | QCOW2_OFLAG_COPIED;
}

/* Write one L2 table made here: zeros but for the chunk's entries. */
static int write_fresh_table(struct qcow2 *q, const struct chunk *c)
{
    _cleanup_free_ uint8_t *t = calloc(1, q->cluster_size);
    if (!t)
        return -ENOMEM;
    unsigned idx = (unsigned)(c->first & (q->l2_entries - 1));
    for (unsigned i = 0; i < c->nc; i++)
        qcow2_put64(t + 8 * (size_t)(idx + i), new_entry(c, i));
    return q->st->ops->pwrite(q->file, t, q->cluster_size, c->l2_off);
}

/* Most clusters one batch plans at once (bounds the memory of a batch). */
#define BATCH_CLUSTERS 32768u
#define BATCH_CHUNKS 256u

/* Plan every chunk of a batch; an existing table that may be shared is
 * made private on the way (step 0).  Counts the chunks that need a new L2
 * table and says whether any metadata changes at all. */
static int plan_batch(struct qcow2 *q, struct chunk *cv, unsigned nch,
                      const struct wsrc *src, unsigned *nfresh, bool *change)
{
    int r;

    for (unsigned k = 0; k < nch; k++) {
        struct chunk *c = &cv[k];
        r = chunk_plan(q, c, src);
        if (r < 0)
            return r;
        if (!c->change)
            continue;
        *change = true;
        if (c->fresh) {
            (*nfresh)++;
            continue;
        }
        /* An existing table that may be shared: qcow2-cluster.c makes it
         * ours (copy + L1 switch), then its entries are re-read. */
        r = prepare_table(q, c->first);
        if (r < 0)
            return r;
        bool owned;
        r = read_entries(q, c->first, c->nc, c->ent, &owned);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Allocate in the refcount cache: the new L2 tables in one run, then data
 * clusters chunk by chunk in guest order (host-contiguous across tables).
 * *drops says whether an old entry of an existing table is replaced, which
 * means references to drop in step 5. */
static int allocate_batch(struct qcow2 *q, struct chunk *cv, unsigned nch,
                          unsigned nfresh, bool *drops)
{
    const uint64_t cs = q->cluster_size;

    if (nfresh) {
        int64_t t = qcow2_alloc_clusters_deferred(q, nfresh);
        if (t < 0)
            return (int)t;
        for (unsigned k = 0; k < nch; k++)
            if (cv[k].change && cv[k].fresh) {
                cv[k].l2_off = (uint64_t)t;
                t += (int64_t)cs;
            }
    }
    for (unsigned k = 0; k < nch; k++) {
        struct chunk *c = &cv[k];
        unsigned nalloc = 0;
        for (unsigned i = 0; i < c->nc; i++)
            nalloc += c->act[i] == A_ALLOC;
        int64_t h = 0;
        if (nalloc) {
            h = qcow2_alloc_clusters_deferred(q, nalloc);
            if (h < 0)
                return (int)h;
        }
        for (unsigned i = 0; i < c->nc; i++) {
            if (c->act[i] == A_ALLOC) {
                c->target[i] = (uint64_t)h;
                h += (int64_t)cs;
                if (!c->fresh)
                    *drops |= (c->ent[i] & QCOW2_OFLAG_COMPRESSED) ||
                              (c->ent[i] & QCOW2_OFFSET_MASK);
            } else {
                c->target[i] = c->ent[i] & QCOW2_OFFSET_MASK;
            }
        }
    }
    return 0;
}

/* Step 1: the guest data of every chunk, in host-contiguous runs. */
static int write_batch_data(struct qcow2 *q, struct chunk *cv, unsigned nch,
                            const struct wsrc *src)
{
    const uint32_t cb = q->hdr.cluster_bits;
    const uint64_t cs = q->cluster_size;
    struct run w = { 0 };
    int r;

    for (unsigned k = 0; k < nch; k++) {
        struct chunk *c = &cv[k];
        uint64_t end = c->off + c->len;
        for (unsigned i = 0; i < c->nc; i++) {
            uint64_t cg = (c->first + i) << cb;
            uint64_t a = c->off > cg ? c->off : cg;
            uint64_t e = end < cg + cs ? end : cg + cs;
            if (i == 0 && c->head)
                r = run_add(q, src, &w, c->target[i], c->head, 0, cs);
            else if (i == c->nc - 1 && c->tail)
                r = run_add(q, src, &w, c->target[i], c->tail, 0, cs);
            else
                r = run_add(q, src, &w, c->target[i] + (a - cg), NULL, a,
                            e - a);
            if (r < 0)
                return r;
        }
    }
    return run_flush(q, src, &w);
}

/* Steps 2 and 3: new tables whole, then refcounts; then everything so far
 * is made durable at once. */
static int write_batch_tables(struct qcow2 *q, struct chunk *cv, unsigned nch)
{
    int r;

    for (unsigned k = 0; k < nch; k++) {
        if (cv[k].change && cv[k].fresh) {
            r = write_fresh_table(q, &cv[k]);
            if (r < 0)
                return r;
        }
    }
    r = qcow2_refcount_write(q);
    if (r < 0)
        return r;
    return q->st->ops->flush(q->file);
}

/* Step 4: pointers: entries of existing tables, L1 entries of new ones. */
static int write_batch_pointers(struct qcow2 *q, struct chunk *cv,
                                unsigned nch)
{
    const uint32_t cb = q->hdr.cluster_bits;
    _cleanup_free_ uint64_t *nent = NULL;
    int r;

    for (unsigned k = 0; k < nch; k++) {
        struct chunk *c = &cv[k];
        if (!c->change)
            continue;
        if (c->fresh) {
            r = qcow2_table_write(q, &q->l1, c->first >> q->l2_bits,
                                  c->l2_off | QCOW2_OFLAG_COPIED);
            if (r < 0)
                return r;
            continue;
        }
        free(nent);
        nent = malloc((size_t)c->nc * 8);
        if (!nent)
            return -ENOMEM;
        for (unsigned i = 0; i < c->nc; i++)
            nent[i] = new_entry(c, i);
        r = qcow2_cluster_set_entries(q, c->first << cb, c->nc, nent, NULL);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Step 5: drop what the old entries of existing tables pointed at, once
 * the tables that stopped pointing there are durable. */
static int write_batch_drops(struct qcow2 *q, struct chunk *cv, unsigned nch)
{
    int r = q->st->ops->flush(q->file);
    if (r < 0)
        return r;
    for (unsigned k = 0; k < nch; k++) {
        struct chunk *c = &cv[k];
        if (!c->change || c->fresh)
            continue;
        for (unsigned i = 0; i < c->nc; i++) {
            uint64_t o, l;
            if (c->act[i] != A_ALLOC)
                continue;
            entry_extent(q, c->ent[i], &o, &l);
            if (l) {
                r = qcow2_refcount_update(q, o, l, -1);
                if (r < 0)
                    return r;
            }
        }
    }
    return 0;
}

/*
 * One batch of consecutive chunks: plan all, make shared tables private,
 * allocate (new L2 tables in one run, then data in guest order so it is
 * host-contiguous across tables), then the declared order: data, new
 * tables, refcounts, flush, L2 entries of existing tables and L1 entries
 * of new tables, and only if something is freed: flush, decrements.
 */
static int write_batch(struct qcow2 *q, struct chunk *cv, unsigned nch,
                       const struct wsrc *src)
{
    unsigned nfresh = 0;
    bool change = false, drops = false;
    int r;

    r = plan_batch(q, cv, nch, src, &nfresh, &change);
    if (r < 0)
        return r;
    r = allocate_batch(q, cv, nch, nfresh, &drops);
    if (r < 0)
        return r;
    r = write_batch_data(q, cv, nch, src);
    if (r < 0 || !change)
        return r;
    r = write_batch_tables(q, cv, nch);
    if (r < 0)
        return r;
    r = write_batch_pointers(q, cv, nch);
    if (r < 0)
        return r;
    if (!drops)
        return 0;
    return write_batch_drops(q, cv, nch);
}

/* Write [off, off+len) from src in batches of consecutive L2-table chunks. */
static int write_from(struct qcow2 *q, const struct wsrc *src, uint64_t off,
                      uint64_t len)
{
    const uint32_t cb = q->hdr.cluster_bits;
    int r;

    if (!q->writable)
        return -EROFS;
    if (off > q->hdr.size || len > q->hdr.size - off)
        return -EINVAL;
    if (len == 0)
        return 0;
    uint64_t last_l1 = ((off + len - 1) >> cb) >> q->l2_bits;
    if (last_l1 >= q->hdr.l1_size) {
        r = qcow2_l1_grow(q, last_l1 + 1);
        if (r < 0)
            return r;
    }
    _cleanup_free_ struct chunk *cv = calloc(BATCH_CHUNKS, sizeof(*cv));
    if (!cv)
        return -ENOMEM;
    while (len > 0) {
        unsigned nch = 0;
        uint64_t clusters = 0;
        while (len > 0 && nch < BATCH_CHUNKS && clusters < BATCH_CLUSTERS) {
            uint64_t cbase = off & ~((uint64_t)q->cluster_size - 1);
            uint64_t chunk_end = cbase +
                ((uint64_t)qcow2_l2_remaining(q, off) << cb);
            uint64_t n = chunk_end - off;
            if (n > len)
                n = len;
            cv[nch].off = off;
            cv[nch].len = n;
            nch++;
            clusters += ((off + n - 1) >> cb) - (off >> cb) + 1;
            off += n;
            len -= n;
        }
        r = write_batch(q, cv, nch, src);
        for (unsigned k = 0; k < nch; k++)
            chunk_clear(&cv[k]);
        if (r < 0)
            return r;
    }
    return 0;
}

int qcow2_write(struct qcow2 *q, const void *buf, uint64_t off, size_t len)
{
    /* img_write checked the image is writable and the range inside it. */
    assert(q && q->writable && (buf || len == 0));
    assert(off <= q->hdr.size && len <= q->hdr.size - off);
    struct wsrc src = { .g0 = off, .buf = buf };
    return write_from(q, &src, off, len);
}

int qcow2_write_copy(struct qcow2 *q, struct gvm_file *file, uint64_t src_off,
                     uint64_t off, uint64_t len)
{
    /* img_write_copy checked likewise, and that file is on q's store. */
    assert(q && q->writable && file);
    assert(off <= q->hdr.size && len <= q->hdr.size - off);
    struct wsrc src = { .g0 = off, .file = file, .base = src_off };
    return write_from(q, &src, off, len);
}

/* ---- zero writes ----------------------------------------------------------- */

static bool backing_has(const struct qcow2 *q, uint64_t g)
{
    return q->backing && g < q->backing_size;
}

/* Write real zeros over [off, off+len). */
static int write_zero_data(struct qcow2 *q, uint64_t off, uint64_t len)
{
    size_t chunk = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;
    _cleanup_free_ uint8_t *z = calloc(1, chunk);
    if (!z)
        return -ENOMEM;
    while (len > 0) {
        size_t n = len < chunk ? (size_t)len : chunk;
        int r = qcow2_write(q, z, off, n);
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}

/* A partial cluster [off, off+len): nothing to do if it reads as zeros
 * already, else real zeros merged into it. */
static int zero_partial(struct qcow2 *q, uint64_t off, uint64_t len)
{
    struct qcow2_mapping m;
    uint64_t cg = off & ~((uint64_t)q->cluster_size - 1);
    int r = qcow2_cluster_get(q, cg, q->cluster_size, &m);
    if (r < 0)
        return r;
    if (m.type == QCOW2_C_ZERO_PLAIN ||
        (m.type == QCOW2_C_UNALLOCATED && !backing_has(q, cg)))
        return 0;
    return write_zero_data(q, off, len);
}

/* Whole clusters [first, first+nc) inside one L2 table.  v3: zero flag,
 * freeing the clusters; v2: unallocate where nothing shows through from a
 * backing file, real zeros elsewhere. */
static int zero_clusters(struct qcow2 *q, uint64_t first, unsigned nc)
{
    const uint32_t cb = q->hdr.cluster_bits;
    const bool v3 = q->hdr.version >= 3;
    int r;
    _cleanup_free_ uint64_t *ent = malloc((size_t)nc * 8);
    _cleanup_free_ uint64_t *nent = malloc((size_t)nc * 8);
    _cleanup_free_ bool *drop = calloc(nc, sizeof(bool));
    _cleanup_free_ bool *data = calloc(nc, sizeof(bool));
    if (!ent || !nent || !drop || !data)
        return -ENOMEM;

    r = validate_range(q, first << cb, (uint64_t)nc << cb);
    if (r < 0)
        return r;
    bool owned;
    r = read_entries(q, first, nc, ent, &owned);
    if (r < 0)
        return r;

    bool change = false;
    for (unsigned i = 0; i < nc; i++) {
        uint64_t e = ent[i];
        bool alloc = (e & QCOW2_OFLAG_COMPRESSED) || (e & QCOW2_OFFSET_MASK);
        bool below = backing_has(q, (first + i) << cb);
        if (v3) {
            if (e == QCOW2_OFLAG_ZERO || (!alloc && (e & QCOW2_OFLAG_ZERO)))
                continue;                     /* reads zeros already */
            if (!alloc && !below)
                continue;                     /* nothing shows through */
            change = true;
        } else {
            if (!alloc && !below)
                continue;
            if (below)
                data[i] = true;               /* needs real zeros */
            else
                change = true;
        }
    }

    if (change) {
        r = prepare_table(q, first);
        if (r < 0)
            return r;
        r = read_entries(q, first, nc, ent, &owned);
        if (r < 0)
            return r;
        for (unsigned i = 0; i < nc; i++) {
            uint64_t e = ent[i];
            bool alloc = (e & QCOW2_OFLAG_COMPRESSED) ||
                         (e & QCOW2_OFFSET_MASK);
            bool below = backing_has(q, (first + i) << cb);
            nent[i] = e;
            if (v3) {
                if (alloc || below || (e & QCOW2_OFLAG_ZERO))
                    nent[i] = QCOW2_OFLAG_ZERO;
            } else if (!below) {
                nent[i] = 0;
            }
            drop[i] = alloc && nent[i] != e;
        }
        r = qcow2_cluster_set_entries(q, first << cb, nc, nent, NULL);
        if (r < 0)
            return r;
        r = free_entries(q, ent, drop, nc);
        if (r < 0)
            return r;
    }

    /* v2 over backing data: real zeros, in runs. */
    for (unsigned i = 0; i < nc;) {
        if (!data[i]) {
            i++;
            continue;
        }
        unsigned j = i;
        while (j < nc && data[j])
            j++;
        r = write_zero_data(q, (first + i) << cb, (uint64_t)(j - i) << cb);
        if (r < 0)
            return r;
        i = j;
    }
    return 0;
}

int qcow2_write_zeroes(struct qcow2 *q, uint64_t off, uint64_t len)
{
    assert(q);
    const uint64_t cs = q->cluster_size;
    const uint32_t cb = q->hdr.cluster_bits;
    int r;

    if (!q->writable)
        return -EROFS;
    if (off > q->hdr.size || len > q->hdr.size - off)
        return -EINVAL;
    if (len == 0)
        return 0;

    uint64_t end = off + len;
    /* The last cluster counts as whole when the request reaches the end of
     * the disk (its bytes past the virtual size are not the guest's). */
    uint64_t full_lo = (off + cs - 1) & ~(cs - 1);
    uint64_t full_hi = end == q->hdr.size ? ((end + cs - 1) & ~(cs - 1))
                                          : (end & ~(cs - 1));
    if (full_lo >= full_hi) {
        /* No whole cluster: at most the tail of one and the head of the
         * next. */
        uint64_t split = (off + cs) & ~(cs - 1);
        if (split >= end)
            return zero_partial(q, off, len);
        r = zero_partial(q, off, split - off);
        if (r < 0)
            return r;
        return zero_partial(q, split, end - split);
    }
    if (off < full_lo) {
        r = zero_partial(q, off, full_lo - off);
        if (r < 0)
            return r;
    }
    for (uint64_t g = full_lo; g < full_hi;) {
        unsigned n = qcow2_l2_remaining(q, g);
        if ((uint64_t)n > (full_hi - g) >> cb)
            n = (unsigned)((full_hi - g) >> cb);
        r = zero_clusters(q, g >> cb, n);
        if (r < 0)
            return r;
        g += (uint64_t)n << cb;
    }
    if (full_hi < end)
        return zero_partial(q, full_hi, end - full_hi);
    return 0;
}

/* ---- L1 growth --------------------------------------------------------------- */

int qcow2_l1_grow(struct qcow2 *q, uint64_t min_entries)
{
    assert(q);
    const uint64_t cs = q->cluster_size;
    uint64_t old_size = q->hdr.l1_size;
    uint64_t old_off = q->hdr.l1_table_offset;
    int r;

    if (!q->writable)
        return -EROFS;
    if (min_entries <= old_size)
        return 0;
    /* Room to grow again without another switch soon. */
    uint64_t size = old_size + old_size / 2;
    if (size < min_entries)
        size = min_entries;
    if (size * 8 > QCOW2_MAX_L1_BYTES) {
        size = QCOW2_MAX_L1_BYTES / 8;
        if (size < min_entries)
            return -EFBIG;
    }
    uint64_t clusters = (size * 8 + cs - 1) / cs;
    size = clusters * cs / 8 < QCOW2_MAX_L1_BYTES / 8 ? clusters * cs / 8
                                                      : QCOW2_MAX_L1_BYTES / 8;

    int64_t noff = qcow2_alloc_clusters(q, clusters);
    if (noff < 0)
        return (int)noff;
    /* The entries, then zeros to the end of the last cluster (the
     * allocator's clusters may hold anything). */
    r = qcow2_table_copy(q, &q->l1, (uint64_t)noff, clusters * cs / 8);
    if (r < 0)
        return r;
    r = q->st->ops->flush(q->file);
    if (r < 0)
        return r;

    q->hdr.l1_table_offset = (uint64_t)noff;
    q->hdr.l1_size = (uint32_t)size;
    r = qcow2_header_write(q);
    if (r < 0) {
        /* The old header may still be the one on disk: use the old table
         * (the new one leaks). */
        q->hdr.l1_table_offset = old_off;
        q->hdr.l1_size = (uint32_t)old_size;
        return r;
    }
    if (old_off && old_size)
        return qcow2_refcount_update(q, old_off,
                                     (old_size * 8 + cs - 1) / cs * cs, -1);
    return 0;
}
