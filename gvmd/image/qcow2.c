/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2.c — qcow2 header: read and validate everything before use (header
 * fields, extensions, feature names, where the L1, refcount and snapshot
 * tables lie, the snapshot table; the entries of the L1 and refcount
 * tables when qcow2-table.c first reads them, or all of them on a
 * read-write open), feature-bit updates and the backing-file rewrite
 * (cluster 0 itself is rebuilt by qcow2-header.c).
 *
 * Validation is strict because the images come from anywhere: every offset
 * is checked for alignment, overflow and end of file before it is used, and
 * the message names the image, the field and the value.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "text.h"

/* ---- small helpers ------------------------------------------------------ */

int qcow2_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
    assert(q && (buf || len == 0));
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = q->st->ops->pread(q->file, p, len, off);
        if (r < 0)
            return (int)r;
        if (r == 0) {
            memset(p, 0, len);   /* past EOF */
            return 0;
        }
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

int qcow2_corrupt(struct qcow2 *q, const char *fmt, ...)
{
    assert(q && fmt);
    if (q->corrupt_msg[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(q->corrupt_msg, sizeof(q->corrupt_msg), fmt, ap);
        va_end(ap);
    }
    return -EUCLEAN;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len)
{
    assert(q);
    if (ranges_overlap(off, len, 0, q->cluster_size))
        return true;
    if (ranges_overlap(off, len, q->hdr.l1_table_offset,
                       (uint64_t)q->hdr.l1_size * 8))
        return true;
    if (ranges_overlap(off, len, q->hdr.refcount_table_offset,
                       (uint64_t)q->hdr.refcount_table_clusters * q->cluster_size))
        return true;
    if (q->hdr.nb_snapshots &&
        ranges_overlap(off, len, q->hdr.snapshots_offset, q->snapshot_table_bytes))
        return true;
    return false;
}

/* A table [off, off + bytes) must be cluster aligned, not in cluster 0 and
 * inside the file. */
static int check_table(struct qcow2 *q, const char *what, uint64_t off,
                       uint64_t bytes, struct gvm_error *err)
{
    if (off & (q->cluster_size - 1)) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: %s offset 0x%" PRIx64
                      " is not aligned to the cluster size %u.",
                      q->path, what, off, q->cluster_size);
        return -EUCLEAN;
    }
    if (bytes == 0)
        return 0;
    if (off < q->cluster_size) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: %s offset 0x%" PRIx64
                      " points into the header cluster.", q->path, what, off);
        return -EUCLEAN;
    }
    if (off > UINT64_MAX - bytes || off + bytes > q->file_size) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: %s at offset 0x%" PRIx64
                      " (%" PRIu64 " bytes) extends past the end of the file"
                      " (%" PRIu64 " bytes).", q->path, what, off, bytes,
                      q->file_size);
        return -EUCLEAN;
    }
    return 0;
}

static uint64_t l1_needed(const struct qcow2 *q, uint64_t size)
{
    unsigned shift = q->hdr.cluster_bits + q->l2_bits;
    return (size + (1ull << shift) - 1) >> shift;
}

static const char *feature_name(const struct qcow2 *q, uint8_t type, unsigned bit)
{
    for (size_t i = 0; i < q->nfeatures; i++)
        if (q->features[i].type == type && q->features[i].bit == bit)
            return q->features[i].name;
    return NULL;
}

/* ---- header parsing ------------------------------------------------------ */

static int parse_fixed_header(struct qcow2 *q, const uint8_t *b, size_t have,
                              struct gvm_error *err)
{
    struct qcow2_header *h = &q->hdr;

    if (have < QCOW2_V2_HEADER_LEN) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is not a qcow2 image: the file is only %zu"
                      " bytes long.", q->path, have);
        return -EUCLEAN;
    }
    h->magic = qcow2_get32(b);
    h->version = qcow2_get32(b + 4);
    h->backing_file_offset = qcow2_get64(b + 8);
    h->backing_file_size = qcow2_get32(b + 16);
    h->cluster_bits = qcow2_get32(b + 20);
    h->size = qcow2_get64(b + 24);
    h->crypt_method = qcow2_get32(b + 32);
    h->l1_size = qcow2_get32(b + 36);
    h->l1_table_offset = qcow2_get64(b + 40);
    h->refcount_table_offset = qcow2_get64(b + 48);
    h->refcount_table_clusters = qcow2_get32(b + 56);
    h->nb_snapshots = qcow2_get32(b + 60);
    h->snapshots_offset = qcow2_get64(b + 64);

    if (h->magic != QCOW2_MAGIC) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is not a qcow2 image: bad magic 0x%08x.",
                      q->path, h->magic);
        return -EUCLEAN;
    }
    if (h->version != 2 && h->version != 3) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' has qcow2 version %u; only versions 2 and 3"
                      " are known.", q->path, h->version);
        return -EUCLEAN;
    }
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: cluster_bits %u is outside 9..21.",
                      q->path, h->cluster_bits);
        return -EUCLEAN;
    }
    q->cluster_size = 1u << h->cluster_bits;

    if (h->version == 2) {
        h->incompatible_features = h->compatible_features = 0;
        h->autoclear_features = 0;
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_LEN;
        h->compression_type = 0;
    } else {
        if (have < QCOW2_V3_HEADER_MIN) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: the file is too short (%zu"
                          " bytes) for a version 3 header.", q->path, have);
            return -EUCLEAN;
        }
        h->incompatible_features = qcow2_get64(b + 72);
        h->compatible_features = qcow2_get64(b + 80);
        h->autoclear_features = qcow2_get64(b + 88);
        h->refcount_order = qcow2_get32(b + 96);
        h->header_length = qcow2_get32(b + 100);
        if (h->header_length < QCOW2_V3_HEADER_MIN || h->header_length % 8 ||
            h->header_length > q->cluster_size) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: header_length %u is invalid"
                          " (at least 104, a multiple of 8, within cluster 0"
                          " of %u bytes).", q->path, h->header_length,
                          q->cluster_size);
            return -EUCLEAN;
        }
        if (q->file_size < h->header_length) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: header_length %u runs past the"
                          " end of the file.", q->path, h->header_length);
            return -EUCLEAN;
        }
        h->compression_type = h->header_length > 104 && have > 104 ? b[104] : 0;
    }
    if (h->refcount_order > 6) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: refcount_order %u is above 6.",
                      q->path, h->refcount_order);
        return -EUCLEAN;
    }
    return 0;
}

static int parse_extensions(struct qcow2 *q, const uint8_t *c0, size_t have,
                            struct gvm_error *err)
{
    const struct qcow2_header *h = &q->hdr;
    uint64_t end = h->backing_file_offset ? h->backing_file_offset : q->cluster_size;
    uint64_t off = h->header_length;

    if (end > have)
        end = have;
    while (off < end) {
        if (end - off < 8) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: header extension at offset %" PRIu64
                          " is truncated.", q->path, off);
            return -EUCLEAN;
        }
        uint32_t type = qcow2_get32(c0 + off);
        uint32_t len = qcow2_get32(c0 + off + 4);
        off += 8;
        if (type == QCOW2_EXT_END)
            break;
        uint64_t padded = ((uint64_t)len + 7) & ~7ull;
        if (padded > end - off) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: header extension 0x%08x of"
                          " length %u at offset %" PRIu64 " overruns the header"
                          " area (ends at %" PRIu64 ").", q->path, type, len,
                          off - 8, end);
            return -EUCLEAN;
        }
        const uint8_t *d = c0 + off;
        switch (type) {
        case QCOW2_EXT_BACKING_FORMAT:
            if (len == 0 || len > 1023 || memchr(d, '\0', len)) {
                gvm_error_set(err, GVM_ERR_CORRUPT,
                              "Image '%s' is corrupt: backing format extension"
                              " of length %u is invalid.", q->path, len);
                return -EUCLEAN;
            }
            free(q->backing_fmt);
            q->backing_fmt = strndup((const char *)d, len);
            if (!q->backing_fmt)
                return -ENOMEM;
            off += padded;
            continue;   /* regenerated on rewrite */
        case QCOW2_EXT_FEATURE_TABLE: {
            if (len % 48) {
                gvm_error_set(err, GVM_ERR_CORRUPT,
                              "Image '%s' is corrupt: feature name table length"
                              " %u is not a multiple of 48.", q->path, len);
                return -EUCLEAN;
            }
            size_t n = len / 48;
            struct qcow2_feature_name *f =
                realloc(q->features, (q->nfeatures + n) * sizeof(*f));
            if (!f && n)
                return -ENOMEM;
            if (f)
                q->features = f;
            for (size_t i = 0; i < n; i++) {
                struct qcow2_feature_name *e = &q->features[q->nfeatures++];
                e->type = d[i * 48];
                e->bit = d[i * 48 + 1];
                memcpy(e->name, d + i * 48 + 2, 46);
                e->name[46] = '\0';
            }
            break;
        }
        case QCOW2_EXT_CRYPTO:
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "Image '%s' is encrypted (full disk encryption header"
                          " extension); encrypted images are not supported.",
                          q->path);
            return -ENOTSUP;
        case QCOW2_EXT_DATA_FILE:
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "Image '%s' uses an external data file; external data"
                          " files are not supported.", q->path);
            return -ENOTSUP;
        default:
            break;
        }
        /* kept byte for byte */
        struct qcow2_ext *x = realloc(q->exts, (q->nexts + 1) * sizeof(*x));
        if (!x)
            return -ENOMEM;
        q->exts = x;
        x[q->nexts].type = type;
        x[q->nexts].len = len;
        x[q->nexts].data = malloc(len ? len : 1);
        if (!x[q->nexts].data)
            return -ENOMEM;
        memcpy(x[q->nexts].data, d, len);
        q->nexts++;
        off += padded;
    }
    q->header_end = off;
    return 0;
}

static int check_features(struct qcow2 *q, bool rw, struct gvm_error *err)
{
    const struct qcow2_header *h = &q->hdr;

    if (h->crypt_method != 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "Image '%s' is encrypted (crypt_method %u); encrypted"
                      " images are not supported.", q->path, h->crypt_method);
        return -ENOTSUP;
    }
    if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "Image '%s' uses an external data file (incompatible"
                      " feature bit 2); external data files are not supported.",
                      q->path);
        return -ENOTSUP;
    }
    if ((h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) ||
        h->compression_type != 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "Image '%s' uses compression type %u (zstd); only zlib"
                      " compression is supported.", q->path, h->compression_type);
        return -ENOTSUP;
    }
    if (h->incompatible_features & QCOW2_INCOMPAT_EXTL2) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "Image '%s' uses extended L2 entries (incompatible feature"
                      " bit 4); subclusters are not supported.", q->path);
        return -ENOTSUP;
    }
    uint64_t unknown = h->incompatible_features & ~(QCOW2_INCOMPAT_KNOWN |
        QCOW2_INCOMPAT_DATA_FILE | QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2);
    if (unknown) {
        char names[512] = "";
        size_t used = 0;
        for (unsigned bit = 0; bit < 64; bit++) {
            if (!(unknown & (1ull << bit)))
                continue;
            const char *n = feature_name(q, 0, bit);
            int w = snprintf(names + used, sizeof(names) - used, "%s%s%s%u%s",
                             used ? ", " : "", n ? n : "", n ? " (bit " : "bit ",
                             bit, n ? ")" : "");
            if (w < 0 || (size_t)w >= sizeof(names) - used)
                break;
            used += (size_t)w;
        }
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' has unknown incompatible features set: %s.",
                      q->path, names);
        return -EUCLEAN;
    }
    if ((h->incompatible_features & QCOW2_INCOMPAT_CORRUPT) && rw) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is marked corrupt (incompatible feature bit 1);"
                      " it cannot be opened for writing.", q->path);
        return -EUCLEAN;
    }
    if (rw && (h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        for (size_t i = 0; i < q->nexts; i++) {
            if (q->exts[i].type == QCOW2_EXT_BITMAPS) {
                gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                              "Image '%s' has persistent dirty bitmaps; writing"
                              " to such images is not supported.", q->path);
                return -ENOTSUP;
            }
        }
    }
    return 0;
}

static int parse_backing_name(struct qcow2 *q, const uint8_t *c0, size_t have,
                              struct gvm_error *err)
{
    const struct qcow2_header *h = &q->hdr;

    if (h->backing_file_offset == 0)
        return 0;
    uint64_t off = h->backing_file_offset, len = h->backing_file_size;
    if (len > QCOW2_MAX_BACKING_NAME || off >= q->cluster_size ||
        len > q->cluster_size - off) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: backing file name at offset %" PRIu64
                      " with length %" PRIu64 " does not fit in cluster 0 (at"
                      " most 1023 bytes).", q->path, off, len);
        return -EUCLEAN;
    }
    if (off < q->hdr.header_length) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: backing_file_offset %" PRIu64
                      " overlaps the header (header_length %u).", q->path, off,
                      q->hdr.header_length);
        return -EUCLEAN;
    }
    if (off + len > have) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: backing file name at offset %" PRIu64
                      " runs past the end of the file.", q->path, off);
        return -EUCLEAN;
    }
    if (len == 0)
        return 0;
    if (memchr(c0 + off, '\0', len)) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: the backing file name contains a"
                      " NUL byte.", q->path);
        return -EUCLEAN;
    }
    size_t at;
    enum text_problem tp = text_check((const char *)c0 + off, len, &at);
    if (tp != TEXT_OK) {
        /* Every reply, log line and libvirt XML would carry it. */
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' has a backing file name that %s (byte %zu "
                      "of it); gvmd does not open it.", q->path,
                      text_problem_says(tp), at);
        return -EUCLEAN;
    }
    q->backing_name = strndup((const char *)c0 + off, len);
    return q->backing_name ? 0 : -ENOMEM;
}

static int check_sizes(struct qcow2 *q, struct gvm_error *err)
{
    const struct qcow2_header *h = &q->hdr;

    if (h->size > (1ull << 62)) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: virtual size %" PRIu64 " is too large.",
                      q->path, h->size);
        return -EUCLEAN;
    }
    if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: l1_size %u exceeds the 32 MiB limit"
                      " for L1 tables.", q->path, h->l1_size);
        return -EUCLEAN;
    }
    if (h->l1_size < l1_needed(q, h->size)) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: l1_size %u is too small for the"
                      " virtual size %" PRIu64 " (needs %" PRIu64 ").", q->path,
                      h->l1_size, h->size, l1_needed(q, h->size));
        return -EUCLEAN;
    }
    int r = check_table(q, "L1 table", h->l1_table_offset,
                        (uint64_t)h->l1_size * 8, err);
    if (r < 0)
        return r;
    if (h->refcount_table_clusters == 0 ||
        (uint64_t)h->refcount_table_clusters * q->cluster_size >
            QCOW2_MAX_REFTABLE_BYTES) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: refcount_table_clusters %u is 0 or"
                      " exceeds the 8 MiB limit for refcount tables.", q->path,
                      h->refcount_table_clusters);
        return -EUCLEAN;
    }
    r = check_table(q, "refcount table", h->refcount_table_offset,
                    (uint64_t)h->refcount_table_clusters * q->cluster_size, err);
    if (r < 0)
        return r;
    if (ranges_overlap(h->l1_table_offset, (uint64_t)h->l1_size * 8,
                       h->refcount_table_offset,
                       (uint64_t)h->refcount_table_clusters * q->cluster_size)) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: the L1 table (0x%" PRIx64 ") and"
                      " the refcount table (0x%" PRIx64 ") overlap.", q->path,
                      h->l1_table_offset, h->refcount_table_offset);
        return -EUCLEAN;
    }
    return 0;
}

static int parse_snapshots(struct qcow2 *q, struct gvm_error *err)
{
    const struct qcow2_header *h = &q->hdr;
    int r;

    if (h->nb_snapshots == 0)
        return 0;
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: nb_snapshots %u exceeds 65536.",
                      q->path, h->nb_snapshots);
        return -EUCLEAN;
    }
    if (h->snapshots_offset & (q->cluster_size - 1) ||
        h->snapshots_offset < q->cluster_size ||
        h->snapshots_offset >= q->file_size) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: snapshots_offset 0x%" PRIx64
                      " is unaligned, in the header or past the end of the file.",
                      q->path, h->snapshots_offset);
        return -EUCLEAN;
    }
    /* Read what can hold the table (bounded by the limit and the file).
     * The last entry's padding may lie past the end of the file (QEMU does
     * not write it): the buffer has 8 spare zero bytes for it. */
    uint64_t avail = q->file_size - h->snapshots_offset;
    uint64_t tbytes = avail < QCOW2_MAX_SNAPSHOT_TABLE_BYTES ? avail
                                                           : QCOW2_MAX_SNAPSHOT_TABLE_BYTES;
    uint64_t want = (uint64_t)h->nb_snapshots * (40 + 1024 + 2 * 65536 + 8);
    if (want < tbytes)
        tbytes = want;
    _cleanup_free_ uint8_t *t = calloc(1, tbytes + 8);
    if (!t)
        return -ENOMEM;
    r = qcow2_pread(q, t, tbytes, h->snapshots_offset);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r,
                            "Cannot read the snapshot table of '%s'", q->path);
        return r;
    }
    q->snapshots = calloc(h->nb_snapshots, sizeof(*q->snapshots));
    if (!q->snapshots)
        return -ENOMEM;
    uint64_t off = 0;
    for (uint32_t i = 0; i < h->nb_snapshots; i++) {
        struct qcow2_snapshot *s = &q->snapshots[i];
        if (off + 40 > tbytes) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: snapshot table entry %u at"
                          " offset 0x%" PRIx64 " runs past the end of the file"
                          " or the 64 MiB table limit.", q->path, i,
                          h->snapshots_offset + off);
            return -EUCLEAN;
        }
        const uint8_t *e = t + off;
        s->l1_table_offset = qcow2_get64(e);
        s->l1_size = qcow2_get32(e + 8);
        uint16_t id_len = qcow2_get16(e + 12), name_len = qcow2_get16(e + 14);
        uint32_t extra = qcow2_get32(e + 36);
        if (extra > QCOW2_MAX_SNAPSHOT_EXTRA) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: snapshot %u has %u bytes of"
                          " extra data (at most 1024).", q->path, i, extra);
            return -EUCLEAN;
        }
        uint64_t ent = 40 + (uint64_t)extra + id_len + name_len;
        if (ent > tbytes - off) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: snapshot table entry %u runs"
                          " past the end of the file or the 64 MiB table limit.",
                          q->path, i);
            return -EUCLEAN;
        }
        ent = (ent + 7) & ~7ull;
        s->disk_size = h->size;
        if (extra >= 16)
            s->disk_size = qcow2_get64(e + 40 + 8);
        s->id = strndup((const char *)e + 40 + extra, id_len);
        s->name = strndup((const char *)e + 40 + extra + id_len, name_len);
        if (!s->id || !s->name)
            return -ENOMEM;
        q->nsnapshots = i + 1;
        off += ent;

        if ((uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Image '%s' is corrupt: snapshot '%s' has l1_size %u"
                          " above the 32 MiB limit.", q->path, s->name, s->l1_size);
            return -EUCLEAN;
        }
        char what[96];
        snprintf(what, sizeof(what), "snapshot %u L1 table", i);
        r = check_table(q, what, s->l1_table_offset, (uint64_t)s->l1_size * 8, err);
        if (r < 0)
            return r;
    }
    q->snapshot_table_bytes = off;
    return 0;
}

int qcow2_check_tables(struct qcow2 *q, struct gvm_error *err)
{
    assert(q);
    int r = qcow2_table_check_all(q, QCOW2_TABLE_REFCOUNT,
                                  q->hdr.refcount_table_offset,
                                  q->reftable_entries, "refcount table", err);
    if (r < 0)
        return r;
    for (uint32_t i = 0; i < q->nsnapshots; i++) {
        const struct qcow2_snapshot *s = &q->snapshots[i];
        char what[96];
        snprintf(what, sizeof(what), "snapshot '%s' L1 table", s->name);
        r = qcow2_table_check_all(q, QCOW2_TABLE_L1, s->l1_table_offset,
                                  s->l1_size, what, err);
        if (r < 0)
            return r;
    }
    return qcow2_table_check_all(q, QCOW2_TABLE_L1, q->hdr.l1_table_offset,
                                 q->hdr.l1_size, "L1 table", err);
}

/* ---- open / close -------------------------------------------------------- */

void qcow2_close(struct qcow2 *q)
{
    if (!q)
        return;
    if (q->writable)
        qcow2_flush(q);
    if (q->rc_ready)
        qcow2_refcount_fini(q);
    if (q->file)
        q->st->ops->close(q->file);
    for (size_t i = 0; i < q->nexts; i++)
        free(q->exts[i].data);
    free(q->exts);
    free(q->features);
    for (uint32_t i = 0; i < q->nsnapshots; i++) {
        free(q->snapshots[i].id);
        free(q->snapshots[i].name);
    }
    free(q->snapshots);
    for (unsigned i = 0; i < QCOW2_L2_CACHE_SLOTS; i++)
        free(q->l2_cache[i].table);
    qcow2_table_fini(&q->l1);
    qcow2_table_fini(&q->reftable);
    free(q->cbuf);
    free(q->dbuf);
    free(q->hdr_raw);
    free(q->backing_name);
    free(q->backing_fmt);
    free(q->path);
    free(q);
}

static void qcow2_closep(struct qcow2 **q) { qcow2_close(*q); }

int qcow2_flush(struct qcow2 *q)
{
    assert(q);
    int r = 0;
    if (!q->writable)
        return 0;
    if (q->rc_ready)
        r = qcow2_refcount_flush(q);
    int r2 = q->st->ops->flush(q->file);
    return r < 0 ? r : r2;
}

/* A parse step failed: out of memory is reported here, anything else was
 * reported by the step. */
static int open_failed(const char *path, int r, struct gvm_error *err)
{
    if (r == -ENOMEM)
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory opening '%s'.", path);
    return r;
}

/* The fixed header, and the geometry derived from it. */
static int read_fixed_header(struct qcow2 *q, const char *path,
                             struct gvm_error *err)
{
    int r = q->st->ops->getsize(q->file, &q->file_size);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Cannot get the size of '%s'", path);
        return r;
    }

    uint8_t first[QCOW2_V3_HEADER_MIN + 8];   /* + the compression type */
    size_t have = q->file_size < sizeof(first) ? (size_t)q->file_size : sizeof(first);
    r = qcow2_pread(q, first, sizeof(first), 0);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Cannot read the header of '%s'", path);
        return r;
    }
    r = parse_fixed_header(q, first, have, err);
    if (r < 0)
        return r;
    const struct qcow2_header *h = &q->hdr;
    q->l2_bits = h->cluster_bits - 3;
    q->l2_entries = q->cluster_size / 8;
    q->refcount_bits = 1u << h->refcount_order;
    q->rb_entries = (uint32_t)((uint64_t)q->cluster_size * 8 / q->refcount_bits);
    q->csize_shift = 62 - (h->cluster_bits - 8);
    q->csize_mask = (1ull << (h->cluster_bits - 8)) - 1;
    q->coffset_mask = (1ull << q->csize_shift) - 1;
    return 0;
}

/* The rest of cluster 0: the raw header kept for rewrites, the header
 * extensions and the backing file name. */
static int read_cluster0(struct qcow2 *q, const char *path,
                         struct gvm_error *err)
{
    struct qcow2_header *h = &q->hdr;
    size_t c0len = q->file_size < q->cluster_size ? (size_t)q->file_size : q->cluster_size;
    _cleanup_free_ uint8_t *c0 = calloc(1, q->cluster_size);
    int r;

    if (!c0)
        return -ENOMEM;
    r = qcow2_pread(q, c0, c0len, 0);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Cannot read the header of '%s'", path);
        return r;
    }
    q->hdr_raw = malloc(h->header_length);
    if (!q->hdr_raw)
        return -ENOMEM;
    memcpy(q->hdr_raw, c0, h->header_length);

    if (h->backing_file_offset &&
        (h->backing_file_offset < h->header_length ||
         h->backing_file_offset >= q->cluster_size)) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: backing_file_offset %" PRIu64
                      " is not inside cluster 0 after the header.", path,
                      h->backing_file_offset);
        return -EUCLEAN;
    }
    r = parse_extensions(q, c0, c0len, err);
    if (r < 0)
        return open_failed(path, r, err);
    if (h->backing_file_offset && h->backing_file_offset < q->header_end) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: backing file name at offset %" PRIu64
                      " overlaps the header extensions (ending at %" PRIu64 ").",
                      path, h->backing_file_offset, q->header_end);
        return -EUCLEAN;
    }
    r = parse_backing_name(q, c0, c0len, err);
    if (r < 0)
        return open_failed(path, r, err);
    if (h->backing_file_offset)
        q->header_end = h->backing_file_offset + h->backing_file_size;
    return 0;
}

/* The snapshot table, which must not overlap the active tables. */
static int read_snapshot_table(struct qcow2 *q, const char *path,
                               struct gvm_error *err)
{
    const struct qcow2_header *h = &q->hdr;
    int r = parse_snapshots(q, err);
    if (r < 0)
        return open_failed(path, r, err);
    if (h->nb_snapshots &&
        (ranges_overlap(h->snapshots_offset, q->snapshot_table_bytes,
                        h->l1_table_offset, (uint64_t)h->l1_size * 8) ||
         ranges_overlap(h->snapshots_offset, q->snapshot_table_bytes,
                        h->refcount_table_offset,
                        (uint64_t)h->refcount_table_clusters * q->cluster_size))) {
        gvm_error_set(err, GVM_ERR_CORRUPT,
                      "Image '%s' is corrupt: the snapshot table at 0x%" PRIx64
                      " overlaps the L1 or refcount table.", path, h->snapshots_offset);
        return -EUCLEAN;
    }
    return 0;
}

/* A writer clears the autoclear bits and repairs a dirty image before its
 * first write. */
static int prepare_for_writing(struct qcow2 *q, const char *path,
                               struct gvm_error *err)
{
    struct qcow2_header *h = &q->hdr;
    bool rewrite = false;
    int r;

    if (h->autoclear_features) {
        /* We keep none of the autoclear features consistent: the spec
         * asks a writer to clear the bits it does not understand. */
        h->autoclear_features = 0;
        rewrite = true;
    }
    if (h->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
        struct img_check_result res;
        memset(&res, 0, sizeof(res));
        r = qcow2_check(q, IMG_REPAIR_ALL, &res, err);
        if (r < 0) {
            gvm_error_set_errno(err, GVM_ERR_CORRUPT, r,
                                "Cannot repair the refcounts of dirty image '%s'",
                                path);
            return r;
        }
        h->incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
        rewrite = true;
    }
    if (rewrite) {
        r = qcow2_header_write(q);
        if (r < 0) {
            gvm_error_set_errno(err, GVM_ERR_STORAGE, r,
                                "Cannot rewrite the header of '%s'", path);
            return r;
        }
    }
    return 0;
}

int qcow2_open(struct gvm_store *st, const char *path, struct gvm_file *file,
               bool rw, struct qcow2 **out, struct gvm_error *err)
{
    assert(st && path && file && out);
    _cleanup_(qcow2_closep) struct qcow2 *q = calloc(1, sizeof(*q));
    int r;

    if (!q) {
        st->ops->close(file);
        return -ENOMEM;
    }
    q->st = st;
    q->file = file;
    q->writable = rw;
    qcow2_table_init(&q->l1, QCOW2_TABLE_L1);
    qcow2_table_init(&q->reftable, QCOW2_TABLE_REFCOUNT);
    q->path = strdup(path);
    if (!q->path)
        return -ENOMEM;

    /* Fixed header first, then all of cluster 0 once its size is known. */
    r = read_fixed_header(q, path, err);
    if (r < 0)
        return r;
    r = read_cluster0(q, path, err);
    if (r < 0)
        return r;
    r = check_features(q, rw, err);
    if (r < 0)
        return r;
    r = check_sizes(q, err);
    if (r < 0)
        return r;

    /* The L1 and refcount tables are read on demand (qcow2-table.c), their
     * entries checked when first read. */
    q->reftable_entries = (uint32_t)((uint64_t)q->hdr.refcount_table_clusters *
                                     q->cluster_size / 8);
    r = read_snapshot_table(q, path, err);
    if (r < 0)
        return r;
    if (rw) {
        /* A writer grows the file: an entry pointing past today's end of
         * file could point at a cluster allocated later by the time it is
         * first read, and pass the check.  So every entry is checked now
         * (streaming: memory stays bounded; a read-only image's end of
         * file does not move under the checks). */
        r = qcow2_check_tables(q, err);
        if (r < 0)
            return r;
    }

    r = qcow2_refcount_init(q);
    if (r < 0) {
        gvm_error_set_errno(err, r == -EUCLEAN ? GVM_ERR_CORRUPT : GVM_ERR_STORAGE, r,
                            "Cannot set up the refcounts of '%s'", path);
        return r;
    }
    q->rc_ready = true;

    if (rw) {
        r = prepare_for_writing(q, path, err);
        if (r < 0)
            return r;
    }
    *out = steal_pointer(&q);
    return 0;
}

/* ---- feature bits and backing rewrite ----------------------------------- */

int qcow2_set_incompat(struct qcow2 *q, uint64_t set, uint64_t clear)
{
    /* Only the bits gvmd manages (dirty, corrupt): any other incompatible
     * bit would make the image unreadable to QEMU, or to us. */
    assert(q && q->writable);
    assert(((set | clear) & ~QCOW2_INCOMPAT_KNOWN) == 0);
    if (q->hdr.version < 3)
        return 0;
    uint64_t v = (q->hdr.incompatible_features | set) & ~clear;
    if (v == q->hdr.incompatible_features)
        return 0;
    uint64_t old = q->hdr.incompatible_features;
    q->hdr.incompatible_features = v;
    int r = qcow2_header_write(q);
    if (r < 0)
        q->hdr.incompatible_features = old;
    return r;
}

int qcow2_set_backing(struct qcow2 *q, const char *name, const char *fmt,
                      struct gvm_error *err)
{
    /* name and fmt come from a client (rebase) and are checked below. */
    assert(q);
    if (!q->writable) {
        gvm_error_set(err, GVM_ERR_INTERNAL,
                      "Image '%s' was not opened for writing.", q->path);
        return -EROFS;
    }
    if (name && (name[0] == '\0' || strlen(name) > QCOW2_MAX_BACKING_NAME)) {
        gvm_error_param(err, "backing", "The backing file name for '%s' must be"
                        " 1 to 1023 bytes long.", q->path);
        return -EINVAL;
    }
    if (fmt && (fmt[0] == '\0' || strlen(fmt) > 1023)) {
        gvm_error_param(err, "backing-format", "The backing format for '%s' is"
                        " invalid.", q->path);
        return -EINVAL;
    }
    if (fmt && !name) {
        gvm_error_param(err, "backing-format", "A backing format was given for"
                        " '%s' without a backing file name.", q->path);
        return -EINVAL;
    }
    uint64_t need = qcow2_header_size(q, name, fmt);
    if (need > q->cluster_size) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "The backing file name '%s' and format do not fit in the"
                      " header cluster of '%s' (%" PRIu64 " bytes needed, the"
                      " cluster holds %u).", name, q->path, need, q->cluster_size);
        return -ENOSPC;
    }
    char *nn = name ? strdup(name) : NULL, *nf = fmt ? strdup(fmt) : NULL;
    if ((name && !nn) || (fmt && !nf)) {
        free(nn);
        free(nf);
        return -ENOMEM;
    }
    char *on = q->backing_name, *of = q->backing_fmt;
    q->backing_name = nn;
    q->backing_fmt = nf;
    int r = qcow2_header_write(q);
    if (r < 0) {
        q->backing_name = on;
        q->backing_fmt = of;
        free(nn);
        free(nf);
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r,
                            "Cannot rewrite the header of '%s'", q->path);
        return r;
    }
    free(on);
    free(of);
    return 0;
}

void qcow2_get_info(struct qcow2 *q, struct img_info *info)
{
    assert(q && info);
    info->format = IMG_FMT_QCOW2;
    info->virtual_size = q->hdr.size;
    info->cluster_size = q->cluster_size;
    info->qcow2_version = (int)q->hdr.version;
    info->refcount_bits = q->refcount_bits;
    info->dirty = q->hdr.incompatible_features & QCOW2_INCOMPAT_DIRTY;
    info->corrupt = q->hdr.incompatible_features & QCOW2_INCOMPAT_CORRUPT;
    info->lazy_refcounts = q->hdr.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS;
    info->nb_snapshots = q->nsnapshots;
}
