/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-write.c — guest writes into the top qcow2 layer (img_write,
 * img_write_zeroes) and growth of the active L1 table.
 *
 * Declared write ordering for a request that changes metadata; a crash
 * between any two steps leaves at worst leaked clusters, never a table
 * pointing at a cluster whose refcount does not account for it:
 *
 *   0. a missing or shared L2 table is made private first
 *      (qcow2_cluster_prepare_l2: table allocated with its refcount
 *      durable, table written, flush, then the L1 entry);
 *   1. guest data: written in place into clusters this image alone owns
 *      (refcount 1, COPIED), else into newly allocated clusters, merged
 *      with what the guest currently reads for partial clusters
 *      (copy-on-write from the old cluster, a compressed cluster or the
 *      backing chain), in large host-contiguous runs                → flush
 *   2. refcount increments of the new clusters (write-back refcount-block
 *      cache written out)                                            → flush
 *   3. the L2 entries pointing at the new clusters, with COPIED      → flush
 *   4. refcount decrements of what the L2 entries stopped pointing at
 *      (shared clusters, compressed sectors, deallocated clusters); they
 *      reach the disk with the next refcount flush.
 *
 * L1 growth: new table allocated (refcount durable) and written → flush →
 * header switch (qcow2_header_write flushes) → old table freed.
 *
 * Lazy refcounts: an image with the lazy_refcounts compatible bit is
 * written with the same eager ordering and the dirty bit is never set:
 * simpler, and such an image is consistent at every flush point like any
 * other.  (A dirty image is repaired when opened for writing, qcow2.c.)
 */
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
    if (l1i >= q->hdr.l1_size || !(q->l1[l1i] & QCOW2_OFFSET_MASK))
        return 0;
    uint64_t *t;
    int r = qcow2_l2_get(q, q->l1[l1i] & QCOW2_OFFSET_MASK, &t);
    if (r < 0)
        return r;
    memcpy(ent, t + idx, (size_t)n * 8);
    *owned = q->l1[l1i] & QCOW2_OFLAG_COPIED;
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
    return qcow2_cluster_prepare_l2(q, first << q->hdr.cluster_bits, &l2_off);
}

/* ---- coalesced data writes ---------------------------------------------- */

struct run {
    uint64_t host;
    const uint8_t *src;
    size_t len;
};

static int run_flush(struct qcow2 *q, struct run *w)
{
    if (w->len == 0)
        return 0;
    int r = q->st->ops->pwrite(q->file, w->src, w->len, w->host);
    w->len = 0;
    return r;
}

static int run_add(struct qcow2 *q, struct run *w, uint64_t host,
                   const uint8_t *src, size_t len)
{
    if (w->len && w->host + w->len == host && w->src + w->len == src &&
        w->len + len <= MAX_RUN) {
        w->len += len;
        return 0;
    }
    int r = run_flush(q, w);
    if (r < 0)
        return r;
    w->host = host;
    w->src = src;
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

static int write_chunk(struct qcow2 *q, const uint8_t *buf, uint64_t off,
                       uint64_t len)
{
    const uint32_t cb = q->hdr.cluster_bits;
    const uint64_t cs = q->cluster_size;
    const uint64_t first = off >> cb, last = (off + len - 1) >> cb;
    const unsigned nc = (unsigned)(last - first + 1);
    const uint64_t cstart = first << cb;
    int r;

    _cleanup_free_ uint64_t *ent = malloc((size_t)nc * 8);
    _cleanup_free_ uint64_t *nent = malloc((size_t)nc * 8);
    _cleanup_free_ uint64_t *target = malloc((size_t)nc * 8);
    _cleanup_free_ uint8_t *act = malloc(nc);
    _cleanup_free_ bool *drop = calloc(nc, sizeof(bool));
    _cleanup_free_ uint8_t *head = NULL;
    _cleanup_free_ uint8_t *tail = NULL;
    if (!ent || !nent || !target || !act || !drop)
        return -ENOMEM;

    r = validate_range(q, cstart, (uint64_t)nc << cb);
    if (r < 0)
        return r;
    bool owned;
    r = read_entries(q, first, nc, ent, &owned);
    if (r < 0)
        return r;

    bool change = false;
    unsigned nalloc = 0;
    for (unsigned i = 0; i < nc; i++) {
        uint64_t e = ent[i], host = e & QCOW2_OFFSET_MASK;
        act[i] = A_ALLOC;
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
                    act[i] = A_INPLACE_ZERO;
                else if (!(e & QCOW2_OFLAG_COPIED))
                    act[i] = A_INPLACE_FLAG;
                else
                    act[i] = A_INPLACE;
            }
        }
        if (act[i] == A_ALLOC)
            nalloc++;
        if (act[i] != A_INPLACE)
            change = true;
    }

    /* Partial first/last clusters that do not keep their data in place
     * merge with what the guest reads now (before anything changes). */
    uint64_t end = off + len;
    bool head_partial = (off & (cs - 1)) || (nc == 1 && (end & (cs - 1)));
    bool tail_partial = nc > 1 && (end & (cs - 1));
    if (head_partial && act[0] != A_INPLACE && act[0] != A_INPLACE_FLAG) {
        head = malloc(cs);
        if (!head)
            return -ENOMEM;
        r = read_cluster(q, cstart, head);
        if (r < 0)
            return r;
        memcpy(head + (off - cstart), buf,
               (size_t)((nc == 1 ? end : cstart + cs) - off));
    }
    if (tail_partial && act[nc - 1] != A_INPLACE &&
        act[nc - 1] != A_INPLACE_FLAG) {
        uint64_t tg = last << cb;
        tail = malloc(cs);
        if (!tail)
            return -ENOMEM;
        r = read_cluster(q, tg, tail);
        if (r < 0)
            return r;
        memcpy(tail, buf + (tg - off), (size_t)(end - tg));
    }

    if (change) {
        r = prepare_table(q, first);
        if (r < 0)
            return r;
        /* The table may be a fresh copy now: take its entries. */
        r = read_entries(q, first, nc, ent, &owned);
        if (r < 0)
            return r;
    }
    if (nalloc) {
        int64_t h = qcow2_alloc_clusters_deferred(q, nalloc);
        if (h < 0)
            return (int)h;
        for (unsigned i = 0; i < nc; i++)
            if (act[i] == A_ALLOC) {
                target[i] = (uint64_t)h;
                h += (int64_t)cs;
            }
    }
    for (unsigned i = 0; i < nc; i++)
        if (act[i] != A_ALLOC)
            target[i] = ent[i] & QCOW2_OFFSET_MASK;

    /* 1. data */
    struct run w = { 0 };
    for (unsigned i = 0; i < nc; i++) {
        uint64_t cg = (first + i) << cb;
        uint64_t a = off > cg ? off : cg;
        uint64_t b = end < cg + cs ? end : cg + cs;
        if (i == 0 && head)
            r = run_add(q, &w, target[i], head, cs);
        else if (i == nc - 1 && tail)
            r = run_add(q, &w, target[i], tail, cs);
        else
            r = run_add(q, &w, target[i] + (a - cg), buf + (a - off),
                        (size_t)(b - a));
        if (r < 0)
            return r;
    }
    r = run_flush(q, &w);
    if (r < 0)
        return r;
    if (!change)
        return 0;

    /* 2. refcounts, after the data is durable */
    r = q->st->ops->flush(q->file);
    if (r < 0)
        return r;
    r = qcow2_refcount_flush(q);
    if (r < 0)
        return r;

    /* 3. L2 entries */
    for (unsigned i = 0; i < nc; i++) {
        switch (act[i]) {
        case A_INPLACE:
            nent[i] = ent[i];
            break;
        case A_INPLACE_FLAG:
        case A_INPLACE_ZERO:
            nent[i] = target[i] | QCOW2_OFLAG_COPIED;
            break;
        default:
            nent[i] = target[i] | QCOW2_OFLAG_COPIED;
            drop[i] = (ent[i] & QCOW2_OFLAG_COMPRESSED) ||
                      (ent[i] & QCOW2_OFFSET_MASK);
            break;
        }
    }
    r = qcow2_cluster_set_entries(q, cstart, nc, nent, NULL);
    if (r < 0)
        return r;
    /* 4. drop what is no longer referenced */
    return free_entries(q, ent, drop, nc);
}

int qcow2_write(struct qcow2 *q, const void *buf, uint64_t off, size_t len)
{
    const uint8_t *b = buf;
    if (!q->writable)
        return -EROFS;
    if (off > q->hdr.size || len > q->hdr.size - off)
        return -EINVAL;
    while (len > 0) {
        uint64_t cbase = off & ~((uint64_t)q->cluster_size - 1);
        uint64_t chunk_end = cbase +
            ((uint64_t)qcow2_l2_remaining(q, off) << q->hdr.cluster_bits);
        uint64_t n = chunk_end - off;
        if (n > len)
            n = len;
        int r = write_chunk(q, b, off, n);
        if (r < 0)
            return r;
        b += n;
        off += n;
        len -= n;
    }
    return 0;
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
    if (full_lo >= full_hi)
        return zero_partial(q, off, len);
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

    uint64_t *l1 = realloc(q->l1, size * 8);
    if (!l1)
        return -ENOMEM;
    q->l1 = l1;
    memset(l1 + old_size, 0, (size - old_size) * 8);

    _cleanup_free_ uint8_t *buf = calloc(clusters, cs);
    if (!buf)
        return -ENOMEM;
    for (uint64_t i = 0; i < size; i++)
        qcow2_put64(buf + 8 * i, l1[i]);
    int64_t noff = qcow2_alloc_clusters(q, clusters);
    if (noff < 0)
        return (int)noff;
    r = q->st->ops->pwrite(q->file, buf, clusters * cs, (uint64_t)noff);
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
