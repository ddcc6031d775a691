/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-refcount.c — reference counts of host clusters: the refcount table
 * and refcount blocks (entries of 1 to 64 bits), a write-back cache of
 * refcount blocks, cluster allocation, refcount-table growth and freeing.
 *
 * Allocation policy: a free run is first looked for from the lowest
 * cluster that may be free (holes left by freed clusters are reused) but
 * only over a few refcount blocks; past that it goes to the end of the
 * file.  The allocator keeps q->file_size at the end of what it handed
 * out, so "end of file" also covers clusters allocated but not written yet.
 *
 * Write ordering (see also qcow2.h and qcow2-write.c):
 *  - refcount blocks an allocation needs are placed right after the
 *    allocated run, in the same free area, and count themselves and the
 *    run, so creating one never needs another; a block is written before
 *    the refcount-table entry that points at it, with a flush in between
 *    (qcow2_refcount_flush does: blocks, flush, table entries, flush);
 *  - refcount increments may reach the disk early (a crash then leaks the
 *    cluster, which check repairs); callers make them durable with
 *    qcow2_refcount_flush before writing any table that points at the
 *    clusters;
 *  - callers decrement only after the table that stopped pointing at a
 *    cluster is durable, so a freed cluster may be reused at once;
 *  - refcount-table growth writes the new table and the blocks that count
 *    it elsewhere, flushes, switches the header, and only then frees the
 *    old table.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* Refcount blocks kept in memory.  32 blocks of 64 KiB with 16-bit
 * refcounts describe 64 GiB of host clusters: a large copy touches each
 * block once per flush cycle. */
#define RB_CACHE_SLOTS 32

struct rb_slot {
    uint64_t offset;     /* host offset of the block; 0 = empty slot   */
    uint64_t lru;
    bool dirty;
    uint8_t *data;       /* cluster_size bytes, on-disk format          */
};

struct rc_state {
    struct rb_slot slots[RB_CACHE_SLOTS];
    uint64_t tick;
    unsigned last;               /* slot of the last block_get: tried first */
    uint64_t free_hint;          /* no free cluster below this index      */
    uint64_t floor;              /* check repair: allocate from here on   */
};

static struct rc_state *rcs(struct qcow2 *q) { return q->rc; }

static uint64_t cluster_of(const struct qcow2 *q, uint64_t off)
{
    return off >> q->hdr.cluster_bits;
}

/* ---- entries inside one block ----------------------------------------- */

static uint64_t entry_get(const struct qcow2 *q, const uint8_t *b, uint32_t i)
{
    switch (q->refcount_bits) {
    case 8:  return b[i];
    case 16: return qcow2_get16(b + 2 * (size_t)i);
    case 32: return qcow2_get32(b + 4 * (size_t)i);
    case 64: return qcow2_get64(b + 8 * (size_t)i);
    default: {
        /* Sub-byte widths: bit 0 of an entry is the least significant bit
         * of its byte position. */
        uint64_t bit = (uint64_t)i * q->refcount_bits;
        return (uint64_t)(b[bit / 8] >> (bit % 8)) &
               ((1u << q->refcount_bits) - 1);
    }
    }
}

static void entry_set(const struct qcow2 *q, uint8_t *b, uint32_t i,
                      uint64_t v)
{
    switch (q->refcount_bits) {
    case 8:  b[i] = (uint8_t)v; break;
    case 16: qcow2_put16(b + 2 * (size_t)i, (uint16_t)v); break;
    case 32: qcow2_put32(b + 4 * (size_t)i, (uint32_t)v); break;
    case 64: qcow2_put64(b + 8 * (size_t)i, v); break;
    default: {
        uint64_t bit = (uint64_t)i * q->refcount_bits;
        unsigned mask = ((1u << q->refcount_bits) - 1) << (bit % 8);
        b[bit / 8] = (uint8_t)((b[bit / 8] & ~mask) |
                               (((unsigned)v << (bit % 8)) & mask));
        break;
    }
    }
}

/* ---- the block cache ---------------------------------------------------- */

static int slot_writeback(struct qcow2 *q, struct rb_slot *s)
{
    if (!s->dirty)
        return 0;
    int r = q->st->ops->pwrite(q->file, s->data, q->cluster_size, s->offset);
    if (r < 0)
        return r;
    s->dirty = false;
    return 0;
}

/* Borrow the refcount block at host offset `off`; `fresh`: a block being
 * created (zero-filled, dirty, not read). */
static int block_get(struct qcow2 *q, uint64_t off, bool fresh,
                     struct rb_slot **out)
{
    struct rc_state *rc = rcs(q);
    struct rb_slot *victim = NULL;

    /* Consecutive clusters share a block (check and copies go through
     * every cluster in order): the last one is tried first. */
    for (size_t k = 0; k <= RB_CACHE_SLOTS; k++) {
        size_t i = k == 0 ? rc->last : k - 1;
        struct rb_slot *s = &rc->slots[i];
        if (s->offset == off && s->data) {
            rc->last = (unsigned)i;
            s->lru = ++rc->tick;
            if (fresh) {
                memset(s->data, 0, q->cluster_size);
                s->dirty = true;
            }
            *out = s;
            return 0;
        }
    }
    /* An unused slot, else the least recently used one. */
    for (size_t i = 0; i < RB_CACHE_SLOTS; i++) {
        struct rb_slot *s = &rc->slots[i];
        if (!s->data || s->offset == 0) {
            victim = s;
            break;
        }
        if (!victim || s->lru < victim->lru)
            victim = s;
    }
    int r = slot_writeback(q, victim);
    if (r < 0)
        return r;
    if (!victim->data) {
        victim->data = malloc(q->cluster_size);
        if (!victim->data)
            return -ENOMEM;
    }
    victim->offset = 0;
    if (fresh) {
        memset(victim->data, 0, q->cluster_size);
        victim->dirty = true;
    } else {
        ssize_t n = q->st->ops->pread(q->file, victim->data, q->cluster_size,
                                      off);
        if (n < 0)
            return (int)n;
        if ((size_t)n < q->cluster_size)
            return qcow2_corrupt(q, "Refcount block at offset %llu of '%s' "
                                 "lies past the end of the file.",
                                 (unsigned long long)off, q->path);
        victim->dirty = false;
    }
    victim->offset = off;
    victim->lru = ++rc->tick;
    rc->last = (unsigned)(victim - rc->slots);
    *out = victim;
    return 0;
}

/* The block offset for refcount-table index i, validated; 0 if none. */
static int block_offset(struct qcow2 *q, uint64_t ti, uint64_t *off)
{
    uint64_t e;
    int r = qcow2_table_get(q, &q->reftable, ti, &e);  /* 0 past the end */
    if (r < 0)
        return r;
    if ((e & QCOW2_RTE_RESERVED) || (e & (q->cluster_size - 1)))
        return qcow2_corrupt(q, "Refcount table entry %llu of '%s' (0x%llx) "
                             "is not a cluster-aligned offset.",
                             (unsigned long long)ti, q->path,
                             (unsigned long long)e);
    *off = e;
    return 0;
}

/* ---- life cycle --------------------------------------------------------- */

int qcow2_refcount_init(struct qcow2 *q)
{
    assert(q && !q->rc);
    struct rc_state *rc = calloc(1, sizeof *rc);
    if (!rc)
        return -ENOMEM;
    q->rc = rc;
    return 0;
}

void qcow2_refcount_fini(struct qcow2 *q)
{
    assert(q);
    struct rc_state *rc = q->rc;
    if (!rc)
        return;
    for (size_t i = 0; i < RB_CACHE_SLOTS; i++)
        free(rc->slots[i].data);
    free(rc);
    q->rc = NULL;
}

void qcow2_refcount_set_alloc_floor(struct qcow2 *q, uint64_t cluster_index)
{
    assert(q && q->rc);
    rcs(q)->floor = cluster_index;
}

/* Write dirty refcount blocks, then (after a flush) new table entries;
 * *wrote says whether anything was written. */
static int writeback(struct qcow2 *q, bool *wrote_out)
{
    struct rc_state *rc = rcs(q);
    bool wrote = false;
    int r;

    *wrote_out = false;
    if (!rc)
        return 0;
    for (size_t i = 0; i < RB_CACHE_SLOTS; i++) {
        if (rc->slots[i].dirty) {
            r = slot_writeback(q, &rc->slots[i]);
            if (r < 0)
                return r;
            wrote = true;
        }
    }
    if (qcow2_table_dirty(&q->reftable)) {
        /* New blocks must be durable before the table points at them. */
        r = q->st->ops->flush(q->file);
        if (r < 0)
            return r;
        r = qcow2_table_writeback(q, &q->reftable);
        if (r < 0)
            return r;
        wrote = true;
    }
    *wrote_out = wrote;
    return 0;
}

int qcow2_refcount_write(struct qcow2 *q)
{
    assert(q);
    bool wrote;
    return writeback(q, &wrote);
}

int qcow2_refcount_flush(struct qcow2 *q)
{
    assert(q);
    bool wrote;
    int r = writeback(q, &wrote);
    if (r < 0 || !wrote)
        return r;
    return q->st->ops->flush(q->file);
}

/* ---- reading and writing one refcount ------------------------------------ */

static int get_cluster(struct qcow2 *q, uint64_t ci, uint64_t *out)
{
    uint64_t boff = 0;
    struct rb_slot *s;
    int r = block_offset(q, ci / q->rb_entries, &boff);
    if (r < 0)
        return r;
    if (!boff) {
        *out = 0;
        return 0;
    }
    r = block_get(q, boff, false, &s);
    if (r < 0)
        return r;
    *out = entry_get(q, s->data, (uint32_t)(ci % q->rb_entries));
    return 0;
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t off, uint64_t *rc)
{
    assert(q && rc);
    return get_cluster(q, cluster_of(q, off), rc);
}

static int ensure_block(struct qcow2 *q, uint64_t ti);

static int set_cluster(struct qcow2 *q, uint64_t ci, uint64_t v)
{
    uint64_t ti = ci / q->rb_entries, boff = 0;
    struct rb_slot *s;
    int r = block_offset(q, ti, &boff);
    if (r < 0)
        return r;
    if (!boff) {
        if (v == 0)
            return 0;
        r = ensure_block(q, ti);
        if (r < 0)
            return r;
        r = qcow2_table_get(q, &q->reftable, ti, &boff);
        if (r < 0)
            return r;
    }
    r = block_get(q, boff, false, &s);
    if (r < 0)
        return r;
    entry_set(q, s->data, (uint32_t)(ci % q->rb_entries), v);
    s->dirty = true;
    if (v == 0 && ci < rcs(q)->free_hint)
        rcs(q)->free_hint = ci;
    return 0;
}

int qcow2_refcount_set(struct qcow2 *q, uint64_t off, uint64_t value)
{
    /* Changing refcounts is a write: img_* refused a read-only image with
     * -EROFS before getting here. */
    assert(q && q->writable);
    if (value > qcow2_refcount_max(q))
        return -ERANGE;
    return set_cluster(q, cluster_of(q, off), value);
}

int qcow2_refcount_update(struct qcow2 *q, uint64_t off, uint64_t len,
                          int delta)
{
    assert(q && q->writable);
    assert(delta != 0);
    if (len == 0)
        return 0;
    uint64_t first = cluster_of(q, off);
    uint64_t last = cluster_of(q, off + len - 1);
    uint64_t max = qcow2_refcount_max(q);

    for (uint64_t ci = first; ci <= last; ci++) {
        uint64_t v;
        int r = get_cluster(q, ci, &v);
        if (r < 0)
            return r;
        if (delta < 0 && v < (uint64_t)-(int64_t)delta)
            return qcow2_corrupt(q, "Refcount of cluster at offset %llu of "
                                 "'%s' would drop below zero (it is %llu).",
                                 (unsigned long long)(ci << q->hdr.cluster_bits),
                                 q->path, (unsigned long long)v);
        if (delta > 0 && max - v < (uint64_t)delta)
            return -ERANGE;   /* too many references for refcount_bits */
        r = set_cluster(q, ci, v + (uint64_t)(int64_t)delta);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ---- free space ---------------------------------------------------------- */

/* Holes inside the file are reused when the scan for them stays this
 * short (in refcount blocks looked at); past that, allocation goes to the
 * end of the file, so a fragmented image does not cost a long scan on
 * every allocation. */
#define HOLE_SCAN_BLOCKS 4

/* First run of n clusters with refcount 0 from cluster `from` (clusters
 * past the refcount table or without a block count as free).  max_blocks:
 * give up (*found false) after looking at that many blocks; 0: no limit. */
static int scan_free(struct qcow2 *q, uint64_t from, uint64_t n,
                     unsigned max_blocks, uint64_t *out, bool *found)
{
    struct rc_state *rc = rcs(q);
    uint64_t ci = from;
    uint64_t covered = (uint64_t)q->reftable_entries * q->rb_entries;
    uint64_t run_start = 0, run = 0;
    bool all_used = ci == rc->free_hint && rc->floor == 0;
    unsigned blocks = 0;

    *found = false;
    if (ci == 0)
        ci = 1;             /* cluster 0 is the header, always used */
    while (run < n) {
        if (ci >= covered) {
            /* Nothing past the table is counted: all of it is free. */
            if (run == 0)
                run_start = ci;
            run = n;
            break;
        }
        if (max_blocks && blocks++ >= max_blocks)
            return 0;
        uint64_t ti = ci / q->rb_entries, boff = 0;
        uint64_t end = (ti + 1) * q->rb_entries;
        int r = block_offset(q, ti, &boff);
        if (r < 0)
            return r;
        if (!boff) {
            if (run == 0)
                run_start = ci;
            run += end - ci;
            ci = end;
            all_used = false;
            continue;
        }
        struct rb_slot *s;
        r = block_get(q, boff, false, &s);
        if (r < 0)
            return r;
        for (; ci < end && run < n; ci++) {
            if (entry_get(q, s->data, (uint32_t)(ci % q->rb_entries)) == 0) {
                if (run++ == 0)
                    run_start = ci;
                all_used = false;
            } else {
                run = 0;
                if (all_used)
                    rc->free_hint = ci + 1;   /* nothing free below */
            }
        }
    }
    *out = run_start;
    *found = true;
    return 0;
}

/* A free run of n clusters: a hole found by a short scan from the free
 * hint, else from the end of the file on. */
static int find_free(struct qcow2 *q, uint64_t n, uint64_t *out)
{
    struct rc_state *rc = rcs(q);
    uint64_t from = rc->free_hint > rc->floor ? rc->free_hint : rc->floor;
    uint64_t eof = (q->file_size + q->cluster_size - 1) >> q->hdr.cluster_bits;
    bool found;
    int r;

    if (from < eof) {
        r = scan_free(q, from, n, HOLE_SCAN_BLOCKS, out, &found);
        if (r < 0 || found)
            return r;
        from = eof;
    }
    r = scan_free(q, from, n, 0, out, &found);
    return r;
}

static int grow_reftable(struct qcow2 *q, uint64_t need_ti);

/*
 * Allocate n contiguous clusters.  Refcount blocks missing for the ranges
 * the run falls into are placed right after the run, in the same free
 * area, so they count themselves and the run: a run of any length can be
 * had in fresh territory, and creating a block never needs another one.
 */
int64_t qcow2_alloc_clusters_deferred(struct qcow2 *q, uint64_t n)
{
    assert(q && q->writable);
    const uint64_t rbe = q->rb_entries;
    uint64_t k = 0;   /* blocks to make room for */

    if (n == 0 || n > (1ull << 40))
        return -EINVAL;
    for (int iter = 0; iter < 1000; iter++) {
        uint64_t start = 0;
        int r = find_free(q, n + k, &start);
        if (r < 0)
            return r;
        uint64_t tf = start / rbe, tl = (start + n + k - 1) / rbe;
        if (tl >= q->reftable_entries) {
            r = grow_reftable(q, tl);
            if (r < 0)
                return r;
            continue;
        }
        uint64_t m = 0;
        for (uint64_t ti = tf; ti <= tl; ti++) {
            uint64_t boff = 0;
            r = block_offset(q, ti, &boff);
            if (r < 0)
                return r;
            if (!boff)
                m++;
        }
        if (m > k) {
            k = m;
            continue;
        }
        uint64_t next = start + n;
        for (uint64_t ti = tf; ti <= tl; ti++) {
            uint64_t boff = 0;
            r = block_offset(q, ti, &boff);
            if (r < 0)
                return r;
            if (boff)
                continue;
            struct rb_slot *s;
            boff = next++ << q->hdr.cluster_bits;
            r = block_get(q, boff, true, &s);
            if (r < 0)
                return r;
            r = qcow2_table_set(q, &q->reftable, ti, boff);
            if (r < 0)
                return r;
        }
        for (uint64_t ci = start; ci < start + n + m; ci++) {
            r = set_cluster(q, ci, 1);
            if (r < 0)
                return r;
        }
        struct rc_state *rc = rcs(q);
        if (rc->free_hint >= start && rc->free_hint < start + n + m)
            rc->free_hint = start + n + m;
        uint64_t end = (start + n + m) << q->hdr.cluster_bits;
        if (end > q->file_size)
            q->file_size = end;
        return (int64_t)(start << q->hdr.cluster_bits);
    }
    return -EIO;   /* no convergence: should not happen */
}

/* Make refcount-table index ti point at a block (check's repair raising a
 * refcount in a range without one). */
static int ensure_block(struct qcow2 *q, uint64_t ti)
{
    int r;
    uint64_t boff;
    if (ti >= q->reftable_entries) {
        r = grow_reftable(q, ti);
        if (r < 0)
            return r;
    }
    r = block_offset(q, ti, &boff);
    if (r < 0 || boff)
        return r;
    int64_t off = qcow2_alloc_clusters_deferred(q, 1);
    if (off < 0)
        return (int)off;
    r = block_offset(q, ti, &boff);
    if (r < 0)
        return r;
    if (boff) {
        /* The allocation fell into range ti and made its block. */
        return set_cluster(q, cluster_of(q, (uint64_t)off), 0);
    }
    struct rb_slot *s;
    r = block_get(q, (uint64_t)off, true, &s);
    if (r < 0)
        return r;
    return qcow2_table_set(q, &q->reftable, ti, (uint64_t)off);
}

int64_t qcow2_alloc_clusters(struct qcow2 *q, uint64_t n)
{
    assert(q && q->writable);
    int64_t off = qcow2_alloc_clusters_deferred(q, n);
    if (off < 0)
        return off;
    int r = qcow2_refcount_flush(q);
    if (r < 0)
        return r;
    return off;
}

/* ---- refcount-table growth ----------------------------------------------- */

/*
 * Grow the refcount table so that index need_ti exists.  The new table and
 * the refcount blocks for any of its clusters that no block counts yet go
 * past the end of the file, blocks right after the table; the blocks count
 * themselves and the table.  Write blocks and table (the old entries as
 * the table cache sees them, entries not written back yet included),
 * flush the refcount cache (the table's clusters in existing blocks),
 * switch the header, then free the old table.  The entries are the same
 * in both tables, so what the cache holds stays right; it is emptied only
 * because the new blocks' entries are on disk alone.
 */
static int grow_reftable(struct qcow2 *q, uint64_t need_ti)
{
    uint64_t cs = q->cluster_size;
    uint64_t rbe = q->rb_entries;
    uint64_t old_entries = q->reftable_entries;
    uint64_t old_off = q->hdr.refcount_table_offset;
    uint64_t old_clusters = q->hdr.refcount_table_clusters;
    uint64_t s = (q->file_size + cs - 1) / cs;
    struct rc_state *rc = rcs(q);
    uint64_t boff;
    int r;

    if (s < rc->floor)
        s = rc->floor;
    uint64_t want = need_ti + 1;
    if (want < old_entries * 2)
        want = old_entries * 2;
    uint64_t tclusters = (want * 8 + cs - 1) / cs;
    uint64_t nblocks = 0;
    for (int iter = 0; iter < 64; iter++) {
        uint64_t total = tclusters + nblocks;
        uint64_t tf = s / rbe, tl = (s + total - 1) / rbe;
        uint64_t need_entries = tl + 1 > want ? tl + 1 : want;
        uint64_t tc = (need_entries * 8 + cs - 1) / cs;
        uint64_t cnt = 0;
        for (uint64_t ti = tf; ti <= tl; ti++) {
            if ((r = block_offset(q, ti, &boff)) < 0)   /* 0 past the end */
                return r;
            if (!boff)
                cnt++;
        }
        if (cnt == nblocks && tc <= tclusters)
            break;
        nblocks = cnt;
        if (tc > tclusters)
            tclusters = tc;
    }
    if (tclusters * cs > QCOW2_MAX_REFTABLE_BYTES)
        return -EFBIG;

    uint64_t new_entries = tclusters * cs / 8;
    uint64_t total = tclusters + nblocks;
    uint64_t tf = s / rbe, tl = (s + total - 1) / rbe;
    /* The new blocks: table index and host offset of each. */
    _cleanup_free_ uint64_t *bti = calloc(tl - tf + 1, 8);
    _cleanup_free_ uint64_t *boffs = calloc(tl - tf + 1, 8);
    _cleanup_free_ uint8_t *bbuf = calloc(1, cs);
    if (!bti || !boffs || !bbuf)
        return -ENOMEM;
    uint64_t nb = 0, next_block = s + tclusters;
    for (uint64_t ti = tf; ti <= tl; ti++) {
        if ((r = block_offset(q, ti, &boff)) < 0)
            return r;
        if (boff)
            continue;
        bti[nb] = ti;
        boffs[nb++] = next_block++ << q->hdr.cluster_bits;
    }

    /* Write each new block: 1 for every cluster of [s, s+total) it counts. */
    for (uint64_t k = 0; k < nb; k++) {
        memset(bbuf, 0, cs);
        uint64_t lo = bti[k] * rbe, hi = lo + rbe;
        for (uint64_t ci = lo < s ? s : lo; ci < hi && ci < s + total; ci++)
            entry_set(q, bbuf, (uint32_t)(ci - lo), 1);
        r = q->st->ops->pwrite(q->file, bbuf, cs, boffs[k]);
        if (r < 0)
            return r;
    }
    /* Clusters of the new area counted by blocks that already exist. */
    for (uint64_t ci = s; ci < s + total; ci++) {
        if ((r = block_offset(q, ci / rbe, &boff)) < 0)
            return r;
        if (boff && (r = set_cluster(q, ci, 1)) < 0)
            return r;
    }
    /* The new table: the current entries, zeros, the new blocks. */
    r = qcow2_table_copy(q, &q->reftable, s * cs, new_entries);
    for (uint64_t k = 0; r == 0 && k < nb; k++) {
        uint8_t be[8];
        qcow2_put64(be, boffs[k]);
        r = q->st->ops->pwrite(q->file, be, 8, s * cs + bti[k] * 8);
    }
    if (r < 0)
        return r;
    /* Blocks (and entries set in the cache, into the old table, which
     * stays valid until the switch) durable before the header names the
     * new table. */
    r = qcow2_refcount_flush(q);
    if (r < 0)
        return r;
    r = q->st->ops->flush(q->file);
    if (r < 0)
        return r;

    q->hdr.refcount_table_offset = s * cs;
    q->hdr.refcount_table_clusters = (uint32_t)tclusters;
    q->reftable_entries = (uint32_t)new_entries;
    qcow2_table_forget(&q->reftable);
    if ((s + total) * cs > q->file_size)
        q->file_size = (s + total) * cs;
    r = qcow2_header_write(q);
    if (r < 0) {
        /* The header may or may not be on disk: keep using the new table
         * (both are valid), report the error. */
        return r;
    }
    return qcow2_refcount_update(q, old_off, old_clusters * cs, -1);
}
