/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-cluster.c — guest offset to host offset: the L1/L2 walk, a small
 * per-image LRU cache of L2 tables, guest reads (coalescing host-contiguous
 * clusters and backing ranges into large reads, inflating zlib clusters),
 * block status for img_map, and the L2/L1 update side of writes.
 *
 * Every L2 table pointer and every data-cluster pointer is validated when it
 * is used (alignment, end of file, overlap with fixed metadata, reserved
 * bits, the zero flag on v2); a bad one makes the call fail with -EUCLEAN
 * and q->corrupt_msg says which entry.
 *
 * Write ordering (see qcow2.h): a new L2 table is allocated (refcount on
 * disk), written and flushed before the L1 entry pointing at it; the
 * refcount of a table it replaces drops only after the L1 entry is written.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <zlib.h>

#include "qcow2.h"

/* Reads are coalesced up to this many bytes per pread. */
#define MAX_COALESCE (8u << 20)

/* ---- L2 cache ------------------------------------------------------------ */

static struct qcow2_l2_slot *cache_find(struct qcow2 *q, uint64_t off)
{
    for (unsigned i = 0; i < QCOW2_L2_CACHE_SLOTS; i++)
        if (q->l2_cache[i].offset == off && q->l2_cache[i].table)
            return &q->l2_cache[i];
    return NULL;
}

static struct qcow2_l2_slot *cache_victim(struct qcow2 *q)
{
    struct qcow2_l2_slot *v = &q->l2_cache[0];
    for (unsigned i = 0; i < QCOW2_L2_CACHE_SLOTS; i++) {
        struct qcow2_l2_slot *s = &q->l2_cache[i];
        if (s->offset == 0)
            return s;
        if (s->lru < v->lru)
            v = s;
    }
    return v;
}

static int check_l2_pointer(struct qcow2 *q, uint64_t l2_off)
{
    if (l2_off & (q->cluster_size - 1))
        return qcow2_corrupt(q, "Image '%s' is corrupt: L2 table offset 0x%" PRIx64
                             " is not cluster aligned.", q->path, l2_off);
    if (l2_off + q->cluster_size > q->file_size)
        return qcow2_corrupt(q, "Image '%s' is corrupt: L2 table offset 0x%" PRIx64
                             " is past the end of the file (%" PRIu64 " bytes).",
                             q->path, l2_off, q->file_size);
    if (qcow2_overlaps_metadata(q, l2_off, q->cluster_size))
        return qcow2_corrupt(q, "Image '%s' is corrupt: L2 table offset 0x%" PRIx64
                             " points into the image's metadata.", q->path, l2_off);
    return 0;
}

int qcow2_l2_get(struct qcow2 *q, uint64_t l2_off, uint64_t **table)
{
    assert(q && table);
    struct qcow2_l2_slot *s = cache_find(q, l2_off);
    if (!s) {
        int r = check_l2_pointer(q, l2_off);
        if (r < 0)
            return r;
        s = cache_victim(q);
        if (!s->table) {
            s->table = malloc(q->cluster_size);
            if (!s->table)
                return -ENOMEM;
        }
        s->offset = 0;
        r = qcow2_pread(q, s->table, q->cluster_size, l2_off);
        if (r < 0)
            return r;
        for (uint32_t i = 0; i < q->l2_entries; i++)
            s->table[i] = qcow2_get64((const uint8_t *)&s->table[i]);
        s->offset = l2_off;
    }
    s->lru = ++q->l2_tick;
    *table = s->table;
    return 0;
}

void qcow2_l2_forget(struct qcow2 *q, uint64_t l2_off)
{
    assert(q);
    struct qcow2_l2_slot *s = cache_find(q, l2_off);
    if (s)
        s->offset = 0;
}

/* ---- mapping --------------------------------------------------------------- */

/* Classify one L2 entry; validates it.  For NORMAL/ZERO_ALLOC, *host is the
 * cluster's host offset; COMPRESSED: *host the data start, *cbytes its
 * (upper bound) length. */
static int classify(struct qcow2 *q, uint64_t e, uint64_t guest,
                    enum qcow2_ctype *t, uint64_t *host, uint64_t *cbytes)
{
    *host = 0;
    *cbytes = 0;
    if (e & QCOW2_OFLAG_COMPRESSED) {
        if (e & QCOW2_OFLAG_COPIED)
            return qcow2_corrupt(q, "Image '%s' is corrupt: the L2 entry for guest"
                                 " offset 0x%" PRIx64 " is compressed and has the"
                                 " copied flag set.", q->path, guest);
        uint64_t off = e & q->coffset_mask;
        uint64_t sectors = ((e >> q->csize_shift) & q->csize_mask) + 1;
        if (off >= q->file_size)
            return qcow2_corrupt(q, "Image '%s' is corrupt: compressed data for guest"
                                 " offset 0x%" PRIx64 " at 0x%" PRIx64 " is past the"
                                 " end of the file (%" PRIu64 " bytes).", q->path,
                                 guest, off, q->file_size);
        if (off < q->cluster_size)
            return qcow2_corrupt(q, "Image '%s' is corrupt: compressed data for guest"
                                 " offset 0x%" PRIx64 " points into the header.",
                                 q->path, guest);
        *t = QCOW2_C_COMPRESSED;
        *host = off;
        *cbytes = sectors * 512 - (off & 511);
        return 0;
    }
    if (e & QCOW2_L2E_RESERVED)
        return qcow2_corrupt(q, "Image '%s' is corrupt: the L2 entry for guest offset"
                             " 0x%" PRIx64 " (0x%016" PRIx64 ") has reserved bits set.",
                             q->path, guest, e);
    uint64_t off = e & QCOW2_OFFSET_MASK;
    bool zero = e & QCOW2_OFLAG_ZERO;
    if (zero && q->hdr.version < 3)
        return qcow2_corrupt(q, "Image '%s' is corrupt: the L2 entry for guest offset"
                             " 0x%" PRIx64 " has the zero flag, which version 2"
                             " images do not have.", q->path, guest);
    if (off) {
        if (off & (q->cluster_size - 1))
            return qcow2_corrupt(q, "Image '%s' is corrupt: data cluster offset 0x%"
                                 PRIx64 " for guest offset 0x%" PRIx64 " is not"
                                 " cluster aligned.", q->path, off, guest);
        if (off >= q->file_size && !zero)
            return qcow2_corrupt(q, "Image '%s' is corrupt: data cluster offset 0x%"
                                 PRIx64 " for guest offset 0x%" PRIx64 " is past the"
                                 " end of the file (%" PRIu64 " bytes).", q->path, off,
                                 guest, q->file_size);
        if (qcow2_overlaps_metadata(q, off, q->cluster_size))
            return qcow2_corrupt(q, "Image '%s' is corrupt: data cluster offset 0x%"
                                 PRIx64 " for guest offset 0x%" PRIx64 " points into"
                                 " the image's metadata.", q->path, off, guest);
    } else if (e & QCOW2_OFLAG_COPIED && !zero) {
        /* An unallocated entry with only COPIED set: tolerated by QEMU as
         * unallocated; keep reading it that way. */
    }
    if (zero)
        *t = off ? QCOW2_C_ZERO_ALLOC : QCOW2_C_ZERO_PLAIN;
    else
        *t = off ? QCOW2_C_NORMAL : QCOW2_C_UNALLOCATED;
    *host = off;
    return 0;
}

int qcow2_cluster_get(struct qcow2 *q, uint64_t guest, uint64_t bytes,
                      struct qcow2_mapping *m)
{
    assert(q && m);
    uint32_t cb = q->hdr.cluster_bits;
    uint64_t in_cluster = guest & (q->cluster_size - 1);
    uint64_t l1i = guest >> (cb + q->l2_bits);
    unsigned idx = (unsigned)((guest >> cb) & (q->l2_entries - 1));
    unsigned left = q->l2_entries - idx;    /* clusters to the table's end */

    memset(m, 0, sizeof(*m));
    if (guest >= q->hdr.size || bytes == 0)
        return -EINVAL;
    if (bytes > q->hdr.size - guest)
        bytes = q->hdr.size - guest;
    uint64_t max = ((uint64_t)left << cb) - in_cluster;
    if (bytes > max)
        bytes = max;

    uint64_t l1e;
    int r = qcow2_table_get(q, &q->l1, l1i, &l1e);
    if (r < 0)
        return r;
    uint64_t l2_off = l1e & QCOW2_OFFSET_MASK;
    if (!l2_off) {
        m->type = QCOW2_C_UNALLOCATED;
        m->bytes = bytes;
        return 0;
    }
    uint64_t *l2;
    r = qcow2_l2_get(q, l2_off, &l2);
    if (r < 0)
        return r;

    enum qcow2_ctype t = QCOW2_C_UNALLOCATED;
    uint64_t host = 0, cbytes = 0;
    r = classify(q, l2[idx], guest, &t, &host, &cbytes);
    if (r < 0)
        return r;
    m->type = t;
    m->comp_bytes = cbytes;
    m->host_offset = host + (t == QCOW2_C_COMPRESSED ? 0 : (host ? in_cluster : 0));

    /* Extend the run over following clusters of the same kind. */
    uint64_t run = q->cluster_size - in_cluster;
    unsigned i = idx + 1;
    while (run < bytes && i < q->l2_entries) {
        enum qcow2_ctype t2 = QCOW2_C_UNALLOCATED;
        uint64_t h2 = 0, c2 = 0;
        r = classify(q, l2[i], guest + run, &t2, &h2, &c2);
        if (r < 0)
            return r;
        if (t2 != t)
            break;
        if ((t == QCOW2_C_NORMAL || t == QCOW2_C_ZERO_ALLOC) &&
            h2 != host + ((uint64_t)(i - idx) << cb))
            break;
        run += q->cluster_size;
        i++;
    }
    m->bytes = run < bytes ? run : bytes;
    return 0;
}

int qcow2_block_status(struct qcow2 *q, uint64_t off, uint64_t bytes,
                       struct qcow2_mapping *m)
{
    assert(q && m);
    return qcow2_cluster_get(q, off, bytes, m);
}

/* ---- reads ------------------------------------------------------------------ */

/* Inflate the compressed cluster at host (cbytes long) into q->dbuf. */
static int load_compressed(struct qcow2 *q, uint64_t host, uint64_t cbytes,
                           uint64_t guest)
{
    if (q->dbuf_host == host)
        return 0;
    /* Allocated at the first compressed cluster, not at open: 3 clusters
     * (6 MiB with 2 MiB clusters) for each image of a chain would mostly
     * never be used. */
    if (!q->cbuf)
        q->cbuf = malloc(2 * (size_t)q->cluster_size);
    if (!q->dbuf)
        q->dbuf = malloc(q->cluster_size);
    if (!q->cbuf || !q->dbuf)
        return -ENOMEM;
    if (cbytes > 2ull * q->cluster_size)
        cbytes = 2ull * q->cluster_size;
    if (host + cbytes > q->file_size)
        cbytes = q->file_size - host;   /* the last one may end at EOF */
    int r = qcow2_pread(q, q->cbuf, cbytes, host);
    if (r < 0)
        return r;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -12) != Z_OK)
        return -ENOMEM;
    zs.next_in = q->cbuf;
    zs.avail_in = (uInt)cbytes;
    zs.next_out = q->dbuf;
    zs.avail_out = q->cluster_size;
    int zr = inflate(&zs, Z_FINISH);
    uint64_t produced = q->cluster_size - zs.avail_out;
    inflateEnd(&zs);
    if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR) || produced != q->cluster_size)
        return qcow2_corrupt(q, "Image '%s' is corrupt: the compressed cluster for"
                             " guest offset 0x%" PRIx64 " at 0x%" PRIx64 " does not"
                             " inflate to a whole cluster.", q->path, guest, host);
    q->dbuf_host = host;
    return 0;
}

/* Pending coalesced request: either host data from this file or a backing
 * range. */
enum pkind { P_NONE, P_HOST, P_BACKING };
struct pending {
    enum pkind kind;
    uint8_t *buf;
    uint64_t off;      /* host offset (P_HOST) or guest offset (P_BACKING) */
    uint64_t len;
};

static int pending_flush(struct qcow2 *q, struct pending *p)
{
    int r = 0;
    if (p->kind == P_HOST) {
        r = qcow2_pread(q, p->buf, p->len, p->off);
    } else if (p->kind == P_BACKING) {
        uint64_t inb = 0;
        if (q->backing && p->off < q->backing_size)
            inb = q->backing_size - p->off < p->len ? q->backing_size - p->off : p->len;
        if (inb)
            r = img_read(q->backing, p->buf, p->off, inb);
        if (inb < p->len)
            memset(p->buf + inb, 0, p->len - inb);
    }
    p->kind = P_NONE;
    return r;
}

/* Add a range to the pending request, flushing first if it does not
 * continue it. */
static int pending_add(struct qcow2 *q, struct pending *p, enum pkind kind,
                       uint8_t *buf, uint64_t off, uint64_t len)
{
    if (p->kind == kind && p->buf + p->len == buf && p->off + p->len == off &&
        p->len + len <= MAX_COALESCE) {
        p->len += len;
        return 0;
    }
    int r = pending_flush(q, p);
    if (r < 0)
        return r;
    p->kind = kind;
    p->buf = buf;
    p->off = off;
    p->len = len;
    return 0;
}

int qcow2_read(struct qcow2 *q, void *buf, uint64_t off, size_t len)
{
    /* img_read checked the range against the virtual size; a guest offset
     * past it here is our arithmetic's fault, not the image's. */
    assert(q && (buf || len == 0));
    assert(off <= q->hdr.size && len <= q->hdr.size - off);
    uint8_t *b = buf;
    struct pending p = { .kind = P_NONE };
    int r;

    if (off > q->hdr.size || len > q->hdr.size - off)
        return -EINVAL;
    while (len > 0) {
        struct qcow2_mapping m;
        r = qcow2_cluster_get(q, off, len, &m);
        if (r < 0)
            return r;
        uint64_t n = m.bytes;
        switch (m.type) {
        case QCOW2_C_NORMAL:
            r = pending_add(q, &p, P_HOST, b, m.host_offset, n);
            break;
        case QCOW2_C_UNALLOCATED:
            if (q->backing && off < q->backing_size) {
                r = pending_add(q, &p, P_BACKING, b, off, n);
                break;
            }
            /* no backing data here: zeros */
            __attribute__((fallthrough));
        case QCOW2_C_ZERO_PLAIN:
        case QCOW2_C_ZERO_ALLOC:
            memset(b, 0, n);
            r = 0;
            break;
        case QCOW2_C_COMPRESSED: {
            uint64_t in_cluster = off & (q->cluster_size - 1);
            n = q->cluster_size - in_cluster;
            if (n > len)
                n = len;
            r = load_compressed(q, m.host_offset, m.comp_bytes, off);
            if (r == 0)
                memcpy(b, q->dbuf + in_cluster, n);
            break;
        }
        }
        if (r < 0)
            return r;
        b += n;
        off += n;
        len -= n;
    }
    return pending_flush(q, &p);
}

/* ---- write side: L1/L2 updates ------------------------------------------- */

int qcow2_cluster_prepare_l2(struct qcow2 *q, uint64_t guest, uint64_t *l2_off)
{
    assert(q && l2_off);
    uint64_t l1i = guest >> (q->hdr.cluster_bits + q->l2_bits);
    int r;

    if (!q->writable)
        return -EROFS;
    if (l1i >= q->hdr.l1_size)
        return -EINVAL;
    uint64_t e;
    r = qcow2_table_get(q, &q->l1, l1i, &e);
    if (r < 0)
        return r;
    uint64_t old = e & QCOW2_OFFSET_MASK;
    if (old && (e & QCOW2_OFLAG_COPIED)) {
        *l2_off = old;
        return 0;
    }
    if (old) {
        /* A table without COPIED may be shared with a snapshot; if nobody
         * else references it, just claim it. */
        uint64_t rc;
        r = qcow2_refcount_get(q, old, &rc);
        if (r < 0)
            return r;
        if (rc == 1) {
            r = qcow2_table_write(q, &q->l1, l1i, old | QCOW2_OFLAG_COPIED);
            if (r < 0)
                return r;
            *l2_off = old;
            return 0;
        }
    }

    /* Build the new table in memory: a copy of the shared one, or zeros. */
    _cleanup_free_ uint8_t *raw = calloc(1, q->cluster_size);
    if (!raw)
        return -ENOMEM;
    if (old) {
        uint64_t *t;
        r = qcow2_l2_get(q, old, &t);
        if (r < 0)
            return r;
        for (uint32_t i = 0; i < q->l2_entries; i++)
            qcow2_put64(raw + (size_t)i * 8, t[i]);
    }
    int64_t noff = qcow2_alloc_clusters(q, 1);
    if (noff < 0)
        return (int)noff;
    r = q->st->ops->pwrite(q->file, raw, q->cluster_size, (uint64_t)noff);
    if (r < 0)
        return r;
    if ((uint64_t)noff + q->cluster_size > q->file_size)
        q->file_size = (uint64_t)noff + q->cluster_size;
    r = q->st->ops->flush(q->file);
    if (r < 0)
        return r;
    r = qcow2_table_write(q, &q->l1, l1i, (uint64_t)noff | QCOW2_OFLAG_COPIED);
    if (r < 0)
        return r;
    if (old) {
        qcow2_l2_forget(q, old);
        r = qcow2_refcount_update(q, old, q->cluster_size, -1);
        if (r < 0)
            return r;
    }
    *l2_off = (uint64_t)noff;
    return 0;
}

int qcow2_cluster_set_entries(struct qcow2 *q, uint64_t guest, unsigned n,
                              const uint64_t *new_entries, uint64_t *old_entries)
{
    assert(q && new_entries);
    uint64_t l1i = guest >> (q->hdr.cluster_bits + q->l2_bits);
    unsigned idx = (unsigned)((guest >> q->hdr.cluster_bits) & (q->l2_entries - 1));
    int r;

    /* The writer cuts its runs at the table's end (qcow2_l2_remaining). */
    assert(n > 0 && idx + n <= q->l2_entries);
    if (!q->writable)
        return -EROFS;
    if (l1i >= q->hdr.l1_size || n == 0 || idx + n > q->l2_entries)
        return -EINVAL;
    uint64_t l1e;
    r = qcow2_table_get(q, &q->l1, l1i, &l1e);
    if (r < 0)
        return r;
    uint64_t l2_off = l1e & QCOW2_OFFSET_MASK;
    if (!l2_off || !(l1e & QCOW2_OFLAG_COPIED))
        return -EINVAL;   /* caller must qcow2_cluster_prepare_l2() first */
    uint64_t *t;
    r = qcow2_l2_get(q, l2_off, &t);
    if (r < 0)
        return r;
    _cleanup_free_ uint8_t *raw = malloc((size_t)n * 8);
    if (!raw)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++)
        qcow2_put64(raw + (size_t)i * 8, new_entries[i]);
    r = q->st->ops->pwrite(q->file, raw, (size_t)n * 8, l2_off + (uint64_t)idx * 8);
    if (r < 0) {
        /* the on-disk table is in an unknown state: reread next time */
        qcow2_l2_forget(q, l2_off);
        return r;
    }
    for (unsigned i = 0; i < n; i++) {
        if (old_entries)
            old_entries[i] = t[idx + i];
        t[idx + i] = new_entries[i];
    }
    q->dbuf_host = 0;   /* a compressed cluster may have been replaced */
    return 0;
}
