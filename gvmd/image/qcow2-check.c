/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-check.c — img_check for qcow2: rebuild the reference count of every
 * host cluster from the image's structures (header cluster, active L1 and
 * its L2 tables and data, every internal snapshot's L1 / L2 / data, the
 * snapshot table, persistent bitmaps, the refcount table and blocks),
 * compare with the stored refcounts, then check the COPIED flags of the
 * active tables.
 *
 * Counting follows `qemu-img check` so numbers agree:
 *  - a stored refcount above the computed one is a leak, below it a
 *    corruption; so is a COPIED flag that disagrees with refcount == 1, a
 *    misaligned L2 / data / refcount-block pointer, a compressed entry with
 *    COPIED, a refcount block past the end of the file;
 *  - an L2 table is walked once per L1 table that references it (data
 *    clusters shared through a shared L2 table are counted for each);
 *  - allocated-clusters counts the active image's data clusters,
 *    total-clusters the virtual size in clusters, image-end-offset the end
 *    of the last cluster with a stored or computed reference.
 * Repair sets stored refcounts to the computed values (leaks with
 * IMG_REPAIR_LEAKS; also too-low ones and COPIED flags with
 * IMG_REPAIR_ALL), then checks again and reports what is left.
 *
 * While too-low refcounts are being raised the allocator must not hand out
 * a cluster that is in use but stored as free: it is told to allocate only
 * past every referenced cluster (qcow2_refcount_set_alloc_floor).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* References past the end of the file further than this are not counted
 * (their array would be huge); they are corruptions all the same. */
#define MAX_PAST_EOF_CLUSTERS (1ull << 24)

struct chk {
    struct qcow2 *q;
    struct img_check_result *res;
    uint32_t *ref;          /* computed refcount per cluster */
    uint64_t nb;            /* entries in ref */
    uint64_t file_clusters;
    uint64_t file_size;
    uint8_t *tbuf;          /* one cluster */
    uint64_t *l1buf;        /* QCOW2_TABLE_CHUNK L1 entries */
};

static int grow(struct chk *c, uint64_t need)
{
    if (need <= c->nb)
        return 0;
    uint64_t n = c->nb * 2 > need ? c->nb * 2 : need;
    uint32_t *p = realloc(c->ref, n * sizeof(*p));
    if (!p)
        return -ENOMEM;
    memset(p + c->nb, 0, (n - c->nb) * sizeof(*p));
    c->ref = p;
    c->nb = n;
    return 0;
}

/* One more reference to every cluster touched by [off, off+len). */
static int inc(struct chk *c, uint64_t off, uint64_t len)
{
    if (len == 0)
        return 0;
    uint32_t cb = c->q->hdr.cluster_bits;
    uint64_t first = off >> cb, last = (off + len - 1) >> cb;
    if (last >= c->file_clusters + MAX_PAST_EOF_CLUSTERS || last < first) {
        c->res->corruptions++;
        return 0;
    }
    int r = grow(c, last + 1);
    if (r < 0)
        return r;
    for (uint64_t ci = first; ci <= last; ci++) {
        if (c->ref[ci] == UINT32_MAX) {
            c->res->corruptions++;   /* more references than we count */
            continue;
        }
        c->ref[ci]++;
    }
    return 0;
}

static int pread_all(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
    ssize_t n = q->st->ops->pread(q->file, buf, len, off);
    if (n < 0)
        return (int)n;
    if ((size_t)n < len)
        return -EIO;   /* past the end of the file */
    return 0;
}

static int walk_l2(struct chk *c, uint64_t l2_off, bool active)
{
    struct qcow2 *q = c->q;
    uint64_t cs = q->cluster_size;
    int r = pread_all(q, c->tbuf, cs, l2_off);
    if (r == -EIO || r == -EINVAL) {
        c->res->check_errors++;
        return 0;
    }
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < q->l2_entries; i++) {
        uint64_t e = qcow2_get64(c->tbuf + 8 * (size_t)i);
        if (e & QCOW2_OFLAG_COMPRESSED) {
            if (e & QCOW2_OFLAG_COPIED)
                c->res->corruptions++;
            uint64_t coff = e & q->coffset_mask;
            uint64_t nsec = ((e >> q->csize_shift) & q->csize_mask) + 1;
            r = inc(c, coff, nsec * 512 - (coff & 511));
            if (r < 0)
                return r;
            if (active)
                c->res->allocated_clusters++;
            continue;
        }
        uint64_t off = e & QCOW2_OFFSET_MASK;
        if (!off)
            continue;
        if (off & (cs - 1))
            c->res->corruptions++;   /* still counted, like qemu-img */
        r = inc(c, off, cs);
        if (r < 0)
            return r;
        if (active)
            c->res->allocated_clusters++;
    }
    return 0;
}

/* One chunk of an L1 table's entries (host order), at a time. */
static int walk_l1_entries(struct chk *c, const uint64_t *l1, uint32_t n,
                           bool active)
{
    struct qcow2 *q = c->q;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK;
        if (!l2)
            continue;
        if (l2 & (q->cluster_size - 1)) {
            c->res->corruptions++;
            continue;
        }
        int r = inc(c, l2, q->cluster_size);
        if (r < 0)
            return r;
        r = walk_l2(c, l2, active);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Walk the L1 table of n entries at off a chunk at a time: the active one
 * (active) through its cache, which holds what the disk holds (L1 entries
 * are written through), a snapshot's straight from the disk.  -EIO: the
 * table could not be read whole (a check error). */
static int walk_l1(struct chk *c, uint64_t off, uint64_t n, bool active)
{
    struct qcow2 *q = c->q;
    uint64_t *e = c->l1buf;

    for (uint64_t first = 0; first < n; first += QCOW2_TABLE_CHUNK) {
        uint32_t cnt = n - first < QCOW2_TABLE_CHUNK ? (uint32_t)(n - first)
                                                     : QCOW2_TABLE_CHUNK;
        int r = 0;
        if (active) {
            for (uint32_t i = 0; i < cnt && r == 0; i++)
                r = qcow2_table_peek(q, &q->l1, first + i, &e[i]);
        } else {
            r = pread_all(q, e, (size_t)cnt * 8, off + first * 8);
            for (uint32_t i = 0; r == 0 && i < cnt; i++)
                e[i] = qcow2_get64((const uint8_t *)&e[i]);
        }
        if (r < 0)
            return r;
        r = walk_l1_entries(c, e, cnt, active);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Bytes of the snapshot table (entries are variable-sized). */
static int snapshot_table_size(struct qcow2 *q, uint64_t *size)
{
    uint64_t pos = 0;
    uint8_t h[40];
    for (uint32_t i = 0; i < q->hdr.nb_snapshots; i++) {
        int r = pread_all(q, h, sizeof(h), q->hdr.snapshots_offset + pos);
        if (r < 0)
            return r;
        uint64_t len = 40 + (uint64_t)qcow2_get32(h + 36) +
                       qcow2_get16(h + 12) + qcow2_get16(h + 14);
        pos += (len + 7) & ~7ull;
    }
    *size = pos;
    return 0;
}

/* Persistent dirty bitmaps (when the autoclear bit says they are
 * consistent, as qemu-img counts them): the directory, each bitmap's table
 * and the data clusters the tables point at. */
static int count_bitmaps(struct chk *c)
{
    struct qcow2 *q = c->q;
    const struct qcow2_ext *x = NULL;
    int r;

    if (!(q->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
        return 0;
    for (size_t i = 0; i < q->nexts; i++)
        if (q->exts[i].type == QCOW2_EXT_BITMAPS && q->exts[i].len >= 24)
            x = &q->exts[i];
    if (!x)
        return 0;
    uint32_t nb = qcow2_get32(x->data);
    uint64_t dsize = qcow2_get64(x->data + 8), doff = qcow2_get64(x->data + 16);
    if (nb == 0 || dsize > (64u << 20) || dsize < 24) {
        c->res->corruptions++;
        return 0;
    }
    _cleanup_free_ uint8_t *dir = malloc(dsize);
    if (!dir)
        return -ENOMEM;
    r = pread_all(q, dir, dsize, doff);
    if (r == -EIO) {
        c->res->check_errors++;
        return 0;
    }
    if (r < 0)
        return r;
    r = inc(c, doff, dsize);
    if (r < 0)
        return r;
    uint64_t pos = 0;
    for (uint32_t b = 0; b < nb; b++) {
        if (dsize - pos < 24) {
            c->res->corruptions++;
            return 0;
        }
        const uint8_t *e = dir + pos;
        uint64_t toff = qcow2_get64(e);
        uint32_t tsize = qcow2_get32(e + 8);
        uint64_t elen = 24 + (uint64_t)qcow2_get16(e + 18) + qcow2_get32(e + 20);
        pos += (elen + 7) & ~7ull;
        if (pos > dsize + 7 || (uint64_t)tsize * 8 > (64u << 20)) {
            c->res->corruptions++;
            return 0;
        }
        if (!toff || !tsize)
            continue;
        r = inc(c, toff, (uint64_t)tsize * 8);
        if (r < 0)
            return r;
        _cleanup_free_ uint8_t *t = malloc((size_t)tsize * 8);
        if (!t)
            return -ENOMEM;
        r = pread_all(q, t, (size_t)tsize * 8, toff);
        if (r == -EIO) {
            c->res->check_errors++;
            continue;
        }
        if (r < 0)
            return r;
        for (uint32_t i = 0; i < tsize; i++) {
            uint64_t off = qcow2_get64(t + 8 * (size_t)i) & QCOW2_OFFSET_MASK;
            if (off && (r = inc(c, off, q->cluster_size)) < 0)
                return r;
        }
    }
    return 0;
}

static int count_references(struct chk *c)
{
    struct qcow2 *q = c->q;
    uint64_t cs = q->cluster_size;
    int r;

    r = inc(c, 0, cs);                                   /* header */
    if (r < 0)
        return r;
    r = inc(c, q->hdr.l1_table_offset, (uint64_t)q->hdr.l1_size * 8);
    if (r < 0)
        return r;
    r = walk_l1(c, q->hdr.l1_table_offset, q->hdr.l1_size, true);
    if (r < 0)
        return r;

    for (uint32_t s = 0; s < q->nsnapshots; s++) {
        const struct qcow2_snapshot *sn = &q->snapshots[s];
        if (sn->l1_size == 0)
            continue;
        r = inc(c, sn->l1_table_offset, (uint64_t)sn->l1_size * 8);
        if (r < 0)
            return r;
        /* A table that ends past the end of the file is a check error, as
         * when it was read whole before being walked. */
        if (sn->l1_table_offset + (uint64_t)sn->l1_size * 8 > c->file_size) {
            c->res->check_errors++;
            continue;
        }
        r = walk_l1(c, sn->l1_table_offset, sn->l1_size, false);
        if (r == -EIO)
            c->res->check_errors++;
        else if (r < 0)
            return r;
    }
    if (q->hdr.nb_snapshots) {
        uint64_t size = 0;
        r = snapshot_table_size(q, &size);
        if (r == -EIO)
            c->res->check_errors++;
        else if (r < 0)
            return r;
        else if ((r = inc(c, q->hdr.snapshots_offset, size)) < 0)
            return r;
    }

    r = count_bitmaps(c);
    if (r < 0)
        return r;
    r = inc(c, q->hdr.refcount_table_offset,
            (uint64_t)q->hdr.refcount_table_clusters * cs);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < q->reftable_entries; i++) {
        uint64_t b;
        r = qcow2_table_peek(q, &q->reftable, i, &b);
        if (r < 0)
            return r;
        b &= ~(uint64_t)QCOW2_RTE_RESERVED;
        if (!b)
            continue;
        if (b & (cs - 1) || b >= c->file_clusters * cs) {
            c->res->corruptions++;   /* misaligned, or past the end */
            continue;
        }
        r = inc(c, b, cs);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Compare stored with computed refcounts, repairing as asked. */
static int compare(struct chk *c, unsigned repair, uint64_t *highest)
{
    struct qcow2 *q = c->q;
    uint32_t cb = q->hdr.cluster_bits;
    uint64_t n = c->nb > c->file_clusters ? c->nb : c->file_clusters;
    bool fix_all = repair & IMG_REPAIR_ALL;
    bool fix_leaks = repair & (IMG_REPAIR_LEAKS | IMG_REPAIR_ALL);
    bool have_highest = false;

    if (fix_all)
        qcow2_refcount_set_alloc_floor(q, n);
    *highest = 0;
    for (uint64_t ci = 0; ci < n; ci++) {
        uint64_t stored, calc = ci < c->nb ? c->ref[ci] : 0;
        int r = qcow2_refcount_get(q, ci << cb, &stored);
        if (r == -EUCLEAN || r == -EIO) {
            /* An unreadable refcount block: one check error per cluster it
             * counts (as qemu-img has), without reading it again for each. */
            uint64_t next = (ci / q->rb_entries + 1) * q->rb_entries;
            if (next > n)
                next = n;
            c->res->check_errors += next - ci;
            ci = next - 1;
            continue;
        }
        if (r < 0)
            return r;
        if (stored || calc) {
            *highest = ci;
            have_highest = true;
        }
        if (stored == calc)
            continue;
        bool leak = stored > calc;
        if ((leak && fix_leaks) || (!leak && fix_all)) {
            r = qcow2_refcount_set(q, ci << cb, calc);
            if (r == -ERANGE) {
                c->res->corruptions++;   /* does not fit refcount_bits */
                continue;
            }
            if (r < 0)
                return r;
            if (leak)
                c->res->leaks_fixed++;
            else
                c->res->corruptions_fixed++;
        } else if (leak) {
            c->res->leaks++;
        } else {
            c->res->corruptions++;
        }
    }
    if (!have_highest)
        *highest = 0;
    int r = 0;
    if (repair)
        r = qcow2_refcount_flush(q);
    qcow2_refcount_set_alloc_floor(q, 0);
    return r;
}

/* COPIED must be set exactly on active L1 / L2 entries whose cluster has
 * refcount 1. */
static int check_copied(struct chk *c, bool fix)
{
    struct qcow2 *q = c->q;
    uint64_t cs = q->cluster_size;
    int r;

    for (uint32_t i = 0; i < q->hdr.l1_size; i++) {
        uint64_t l1e;
        r = qcow2_table_peek(q, &q->l1, i, &l1e);
        if (r < 0)
            return r;
        uint64_t l2 = l1e & QCOW2_OFFSET_MASK;
        if (!l2 || (l2 & (cs - 1)))
            continue;
        uint64_t rc;
        r = qcow2_refcount_get(q, l2, &rc);
        if (r < 0) {
            c->res->check_errors++;
            continue;
        }
        bool want = rc == 1, has = l1e & QCOW2_OFLAG_COPIED;
        if (want != has) {
            if (fix) {
                r = qcow2_table_write(q, &q->l1, i,
                                      l2 | (want ? QCOW2_OFLAG_COPIED : 0));
                if (r < 0)
                    return r;
                c->res->corruptions_fixed++;
            } else {
                c->res->corruptions++;
            }
        }

        r = pread_all(q, c->tbuf, cs, l2);
        if (r < 0)
            continue;   /* counted as a check error while walking */
        bool dirty = false;
        for (uint32_t j = 0; j < q->l2_entries; j++) {
            uint64_t e = qcow2_get64(c->tbuf + 8 * (size_t)j);
            uint64_t off = e & QCOW2_OFFSET_MASK;
            if ((e & QCOW2_OFLAG_COMPRESSED) || !off)
                continue;
            r = qcow2_refcount_get(q, off, &rc);
            if (r < 0) {
                c->res->check_errors++;
                continue;
            }
            want = rc == 1;
            has = e & QCOW2_OFLAG_COPIED;
            if (want == has)
                continue;
            if (fix) {
                e = want ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
                qcow2_put64(c->tbuf + 8 * (size_t)j, e);
                dirty = true;
                c->res->corruptions_fixed++;
            } else {
                c->res->corruptions++;
            }
        }
        if (dirty) {
            r = q->st->ops->pwrite(q->file, c->tbuf, cs, l2);
            qcow2_l2_forget(q, l2);
            if (r < 0)
                return r;
        }
    }
    if (fix) {
        r = q->st->ops->flush(q->file);
        if (r < 0)
            return r;
    }
    return 0;
}

static int check_once(struct qcow2 *q, unsigned repair,
                      struct img_check_result *res)
{
    struct chk c = { .q = q, .res = res };
    uint64_t fsize, highest = 0;
    int r;

    memset(res, 0, sizeof(*res));
    r = q->st->ops->getsize(q->file, &fsize);
    if (r < 0)
        return r;
    if (fsize > q->file_size)
        q->file_size = fsize;
    c.file_clusters = (fsize + q->cluster_size - 1) >> q->hdr.cluster_bits;
    c.file_size = fsize;
    c.tbuf = malloc(q->cluster_size);
    c.l1buf = malloc(QCOW2_TABLE_CHUNK * 8);
    if (!c.tbuf || !c.l1buf) {
        free(c.tbuf);
        free(c.l1buf);
        return -ENOMEM;
    }
    r = grow(&c, c.file_clusters ? c.file_clusters : 1);
    if (r == 0)
        r = count_references(&c);
    if (r == 0)
        r = compare(&c, repair, &highest);
    if (r == 0)
        r = check_copied(&c, repair & IMG_REPAIR_ALL);
    free(c.ref);
    free(c.tbuf);
    free(c.l1buf);
    if (r < 0)
        return r;
    res->total_clusters = (q->hdr.size + q->cluster_size - 1) >>
                          q->hdr.cluster_bits;
    res->image_end_offset = (highest + 1) << q->hdr.cluster_bits;
    return 0;
}

int qcow2_check(struct qcow2 *q, unsigned repair,
                struct img_check_result *res, struct gvm_error *err)
{
    assert(q && res);
    assert((repair & ~(unsigned)(IMG_REPAIR_LEAKS | IMG_REPAIR_ALL)) == 0);
    int r;

    if (repair && !q->writable) {
        gvm_error_set(err, GVM_ERR_INVALID_PARAMS,
                      "Image '%s' is open read-only and cannot be repaired.",
                      q->path);
        return -EROFS;
    }
    if (q->writable) {
        r = qcow2_refcount_flush(q);
        if (r < 0)
            goto fail;
    } else {
        /* Open used to check every table entry of every image; now it
         * checks them for writers only (qcow2.c), and a read-only image's
         * tables are checked here, before anything is counted, so a bad
         * entry is still reported as the Corrupt error it always was. */
        r = qcow2_check_tables(q, err);
        if (r < 0)
            return r;
    }
    r = check_once(q, repair, res);
    if (r < 0)
        goto fail;
    if (repair && (res->leaks_fixed || res->corruptions_fixed)) {
        /* Report what is left, like qemu-img's second pass. */
        struct img_check_result again;
        r = check_once(q, 0, &again);
        if (r < 0)
            goto fail;
        again.leaks_fixed = res->leaks_fixed;
        again.corruptions_fixed = res->corruptions_fixed;
        *res = again;
    }
    return 0;

fail:
    gvm_error_set_errno(err, r == -EUCLEAN ? GVM_ERR_CORRUPT : GVM_ERR_STORAGE,
                        r, "Cannot check the refcounts of image '%s'", q->path);
    return r;
}
