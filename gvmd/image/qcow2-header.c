/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-header.c — rebuilding cluster 0 (header, extensions in their
 * order, backing format, backing name) from the parsed header, preserving
 * the header bytes we do not know, and writing it back.  The reading and
 * validating side is qcow2.c; qcow2-create.c builds new images with the
 * same code.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

uint64_t qcow2_header_size(const struct qcow2 *q, const char *backing_name,
                           const char *backing_fmt)
{
    assert(q);
    uint64_t n = q->hdr.header_length;
    if (backing_fmt)
        n += 8 + ((strlen(backing_fmt) + 7) & ~(size_t)7);
    for (size_t i = 0; i < q->nexts; i++)
        n += 8 + (((uint64_t)q->exts[i].len + 7) & ~7ull);
    n += 8;   /* end marker */
    if (backing_name)
        n += strlen(backing_name);
    return n;
}

int qcow2_header_build(struct qcow2 *q, uint8_t *buf)
{
    /* hdr_raw holds the header_length bytes the fields are laid over. */
    assert(q && buf && q->hdr_raw);
    const struct qcow2_header *h = &q->hdr;
    uint64_t need = qcow2_header_size(q, q->backing_name, q->backing_fmt);

    if (need > q->cluster_size)
        return -ENOSPC;
    memset(buf, 0, q->cluster_size);
    memcpy(buf, q->hdr_raw, h->header_length);
    qcow2_put32(buf, QCOW2_MAGIC);
    qcow2_put32(buf + 4, h->version);
    qcow2_put32(buf + 20, h->cluster_bits);
    qcow2_put64(buf + 24, h->size);
    qcow2_put32(buf + 32, h->crypt_method);
    qcow2_put32(buf + 36, h->l1_size);
    qcow2_put64(buf + 40, h->l1_table_offset);
    qcow2_put64(buf + 48, h->refcount_table_offset);
    qcow2_put32(buf + 56, h->refcount_table_clusters);
    qcow2_put32(buf + 60, h->nb_snapshots);
    qcow2_put64(buf + 64, h->snapshots_offset);
    if (h->version >= 3) {
        qcow2_put64(buf + 72, h->incompatible_features);
        qcow2_put64(buf + 80, h->compatible_features);
        qcow2_put64(buf + 88, h->autoclear_features);
        qcow2_put32(buf + 96, h->refcount_order);
        qcow2_put32(buf + 100, h->header_length);
    }
    uint64_t off = h->header_length;
    if (q->backing_fmt) {
        size_t l = strlen(q->backing_fmt);
        qcow2_put32(buf + off, QCOW2_EXT_BACKING_FORMAT);
        qcow2_put32(buf + off + 4, (uint32_t)l);
        memcpy(buf + off + 8, q->backing_fmt, l);
        off += 8 + ((l + 7) & ~(size_t)7);
    }
    for (size_t i = 0; i < q->nexts; i++) {
        qcow2_put32(buf + off, q->exts[i].type);
        qcow2_put32(buf + off + 4, q->exts[i].len);
        memcpy(buf + off + 8, q->exts[i].data, q->exts[i].len);
        off += 8 + (((uint64_t)q->exts[i].len + 7) & ~7ull);
    }
    off += 8;   /* end marker: already zero */
    if (q->backing_name) {
        size_t l = strlen(q->backing_name);
        memcpy(buf + off, q->backing_name, l);
        qcow2_put64(buf + 8, off);
        qcow2_put32(buf + 16, (uint32_t)l);
        q->hdr.backing_file_offset = off;
        q->hdr.backing_file_size = (uint32_t)l;
        off += l;
    } else {
        qcow2_put64(buf + 8, 0);
        qcow2_put32(buf + 16, 0);
        q->hdr.backing_file_offset = 0;
        q->hdr.backing_file_size = 0;
    }
    q->header_end = off;
    return 0;
}

int qcow2_header_write(struct qcow2 *q)
{
    assert(q);
    if (!q->writable)
        return -EROFS;
    _cleanup_free_ uint8_t *buf = malloc(q->cluster_size);
    if (!buf)
        return -ENOMEM;
    int r = qcow2_header_build(q, buf);
    if (r < 0)
        return r;
    /* Never write past what the header needs when the file is shorter than
     * a cluster (a 512-byte-cluster image is never that short, but be
     * careful not to grow a file for no reason). */
    size_t len = q->cluster_size;
    r = q->st->ops->pwrite(q->file, buf, len, 0);
    if (r < 0)
        return r;
    memcpy(q->hdr_raw, buf, q->hdr.header_length);
    if (q->file_size < len)
        q->file_size = len;
    return q->st->ops->flush(q->file);
}
