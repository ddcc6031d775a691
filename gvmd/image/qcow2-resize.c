/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-resize.c — growing a qcow2 image (img_resize); shrinking is not
 * supported.
 *
 * The virtual size lives in the header, next to the L1 table's offset and
 * size, so a grow is one header write — preceded, when the L1 table is too
 * small for the new size, by a new table written elsewhere.  Declared
 * ordering (a crash between any two steps leaves an image that reads as
 * the old size or as the new one, with nothing worse than leaked clusters):
 *
 *   0. (L1 grows, v3 only) the dirty bit is set in the header    → flush
 *      so that the clusters a crash could leak are counted again by the
 *      next write-open (qcow2.c repairs dirty images);
 *   1. (L1 grows) new table: clusters allocated with their refcount on
 *      disk (qcow2_alloc_clusters), the old entries written there → flush;
 *   2. the tail of the last cluster, when the old size ends inside it and
 *      the cluster is data this image alone owns: zeros written into the
 *      host cluster past the old end (invisible until step 3)      → flush;
 *   3. the header: size, and the L1 offset/size when they changed, in one
 *      write of cluster 0                                          → flush;
 *   4. (L1 grew) the old table's refcount dropped                  → flush;
 *   5. the new range is made to read zeros where something would show
 *      through (a backing file longer than the old size, a tail that
 *      step 2 could not zero in place, stray entries past the old end):
 *      qcow2_write_zeroes, which touches nothing that reads zeros
 *      already                                                    → flush;
 *   6. (step 0 done) the dirty bit cleared.
 * A crash between 3 and 5 can leave the part of the new range that lies
 * over a longer backing file reading that file's bytes instead of zeros;
 * a caller for whom that matters (chain-commit.c) journals the grow and
 * writes those zeros again on recovery.  On a v2 image (no dirty bit) the
 * clusters of steps 1 and 4 can leak on a crash; leak repair (image-check)
 * reclaims them.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "qcow2.h"

/* L1 entries needed to map size bytes. */
static uint64_t l1_entries_for(const struct qcow2 *q, uint64_t size)
{
    unsigned shift = q->hdr.cluster_bits + q->l2_bits;
    return (size + (1ull << shift) - 1) >> shift;
}

/* Step 1: a new L1 table of `entries` entries holding the current ones
 * (zeros after them).  *off gets its host offset; the header still names
 * the old table until step 3. */
static int write_new_l1(struct qcow2 *q, uint64_t entries, uint64_t *off)
{
    const uint64_t cs = q->cluster_size;
    uint64_t clusters = (entries * 8 + cs - 1) / cs;
    int r;

    int64_t noff = qcow2_alloc_clusters(q, clusters);
    if (noff < 0)
        return (int)noff;
    r = qcow2_table_copy(q, &q->l1, (uint64_t)noff, clusters * cs / 8);
    if (r == 0)
        r = q->st->ops->flush(q->file);
    if (r < 0)
        return r;
    *off = (uint64_t)noff;
    return 0;
}

/* Step 2: zero the bytes of the last cluster past old_size in place when
 * that is possible (owned data cluster).  *done says whether it was; when
 * not, step 5 does it after the switch (copy-on-write). */
static int zero_tail_in_place(struct qcow2 *q, uint64_t old_size, bool *done)
{
    const uint64_t cs = q->cluster_size;
    uint64_t in = old_size & (cs - 1);
    struct qcow2_mapping m;
    uint64_t rc = 0;
    int r;

    *done = true;
    if (in == 0)
        return 0;
    r = qcow2_cluster_get(q, old_size - in, in, &m);
    if (r < 0)
        return r;
    switch (m.type) {
    case QCOW2_C_ZERO_PLAIN:
    case QCOW2_C_ZERO_ALLOC:
        return 0;                       /* reads zeros past the end too */
    case QCOW2_C_UNALLOCATED:
        /* Zeros unless a backing file shows through: step 5's business. */
        *done = !(q->backing && q->backing_size > old_size);
        return 0;
    case QCOW2_C_COMPRESSED:
        *done = false;
        return 0;
    case QCOW2_C_NORMAL:
        break;
    }
    r = qcow2_refcount_get(q, m.host_offset, &rc);
    if (r < 0)
        return r;
    if (rc != 1) {
        *done = false;                  /* shared with a snapshot: COW */
        return 0;
    }
    _cleanup_free_ uint8_t *z = calloc(1, cs - in);
    if (!z)
        return -ENOMEM;
    r = q->st->ops->pwrite(q->file, z, cs - in, m.host_offset + in);
    if (r == 0)
        r = q->st->ops->flush(q->file);
    return r;
}

/* Does anything in [from, to) past the old end map to something (stray
 * entries of an image shrunk by another tool)?  Only then is step 5
 * needed when nothing else asks for it. */
static int mapped_past(struct qcow2 *q, uint64_t from, uint64_t to, bool *any)
{
    *any = false;
    while (from < to) {
        struct qcow2_mapping m;
        int r = qcow2_cluster_get(q, from, to - from, &m);
        if (r < 0)
            return r;
        if (m.type != QCOW2_C_UNALLOCATED && m.type != QCOW2_C_ZERO_PLAIN) {
            *any = true;
            return 0;
        }
        if (m.bytes == 0)
            return -EIO;
        from += m.bytes;
    }
    return 0;
}

int qcow2_resize(struct qcow2 *q, uint64_t new_size)
{
    assert(q);
    const uint64_t cs = q->cluster_size;
    uint64_t old_size = q->hdr.size;
    uint64_t old_l1_off = q->hdr.l1_table_offset;
    uint32_t old_l1_size = q->hdr.l1_size;
    uint64_t need, new_l1_off = old_l1_off, new_l1_size = old_l1_size;
    bool grow_l1, marked = false, tail_done = true, fill;
    int r;

    if (!q->writable)
        return -EROFS;
    if (new_size < old_size)
        return -ENOTSUP;
    if (new_size % 512)
        return -EINVAL;
    if (new_size == old_size)
        return 0;
    /* Host offsets have 56 bits; no guest size beyond that is mappable
     * (and the L1 limit below stops far earlier). */
    if (new_size > (1ull << 56))
        return -EFBIG;
    need = l1_entries_for(q, new_size);
    if (need * 8 > QCOW2_MAX_L1_BYTES)
        return -EFBIG;
    grow_l1 = need > old_l1_size;

    /* Step 0-1. */
    if (grow_l1) {
        /* Whole clusters of entries: the table's clusters are ours anyway. */
        new_l1_size = (need * 8 + cs - 1) / cs * cs / 8;
        if (new_l1_size * 8 > QCOW2_MAX_L1_BYTES)
            new_l1_size = QCOW2_MAX_L1_BYTES / 8;
        if (q->hdr.version >= 3 &&
            !(q->hdr.incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
            r = qcow2_set_incompat(q, QCOW2_INCOMPAT_DIRTY, 0);
            if (r < 0)
                return r;
            marked = true;
        }
        r = write_new_l1(q, new_l1_size, &new_l1_off);
        if (r < 0)
            goto out;
    }

    /* Step 2, and what step 5 will have to do. */
    r = zero_tail_in_place(q, old_size, &tail_done);
    if (r < 0)
        goto out;
    fill = !tail_done || (q->backing && q->backing_size > old_size);
    if (!fill) {
        uint64_t from = (old_size + cs - 1) & ~(cs - 1);
        uint64_t to = old_l1_size ? (uint64_t)old_l1_size << (q->hdr.cluster_bits + q->l2_bits)
                                  : 0;
        if (to > new_size)
            to = new_size;
        /* Entries past the old end can only sit in tables the old L1
         * already had. */
        if (from < to) {
            uint64_t save = q->hdr.size;
            q->hdr.size = to;           /* lets the mapper look past the end */
            r = mapped_past(q, from, to, &fill);
            q->hdr.size = save;
            if (r < 0)
                goto out;
        }
    }

    /* Step 3. */
    q->hdr.size = new_size;
    q->hdr.l1_table_offset = new_l1_off;
    q->hdr.l1_size = (uint32_t)new_l1_size;
    r = qcow2_header_write(q);
    if (r < 0) {
        /* The old header may be the one on disk: keep using the old
         * table (a new one leaks; the dirty bit covers that on v3). */
        q->hdr.size = old_size;
        q->hdr.l1_table_offset = old_l1_off;
        q->hdr.l1_size = old_l1_size;
        goto out;
    }

    /* Step 4. */
    if (grow_l1 && old_l1_off && old_l1_size) {
        r = qcow2_refcount_update(q, old_l1_off,
                                  ((uint64_t)old_l1_size * 8 + cs - 1) / cs * cs, -1);
        if (r == 0)
            r = qcow2_refcount_flush(q);
        if (r == 0)
            r = q->st->ops->flush(q->file);
        if (r < 0)
            goto out;
    }

    /* Step 5. */
    if (fill) {
        r = qcow2_write_zeroes(q, old_size, new_size - old_size);
        if (r == 0)
            r = qcow2_flush(q);
        if (r < 0)
            goto out;
    }
    /* Step 6.  After a failure the bit stays: the image is consistent at
     * every step above, and the next write-open reclaims what leaked. */
    if (marked)
        return qcow2_set_incompat(q, 0, QCOW2_INCOMPAT_DIRTY);
    return 0;
out:
    return r;
}
