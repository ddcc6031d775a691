/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-create.c — new qcow2 images (v3 by default, v2 on request).
 *
 * Layout, as QEMU lays it out: cluster 0 the header (extensions, backing
 * name), then the refcount table, the refcount block(s), the L1 table; all
 * of these and nothing else have refcount 1.  The whole metadata is built
 * in memory and written with one pwrite into a file created exclusively;
 * on any failure the file is unlinked, so no half-written image remains.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

#define CREATE_V3_HEADER_LEN 112

static const struct {
    uint8_t type, bit;
    const char *name;
} feature_names[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};

/* Store refcount value v for entry i of a refcount block (any width). */
static void rb_set(uint8_t *block, uint64_t i, unsigned order, uint64_t v)
{
    unsigned bits = 1u << order;
    if (bits < 8) {
        unsigned per = 8 / bits, shift = (unsigned)(i % per) * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << shift);
        block[i / per] = (uint8_t)((block[i / per] & ~mask) | ((v << shift) & mask));
        return;
    }
    unsigned bytes = bits / 8;
    uint8_t *p = block + i * bytes;
    for (unsigned b = 0; b < bytes; b++)
        p[b] = (uint8_t)(v >> (8 * (bytes - 1 - b)));
}

static int check_opts(const char *path, const struct img_create_opts *o,
                      unsigned *cbits, unsigned *rorder, int *version,
                      struct gvm_error *err)
{
    uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
    unsigned rb = o->refcount_bits ? o->refcount_bits : 16;
    int v = o->qcow2_version ? o->qcow2_version : 3;

    if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1))) {
        gvm_error_param(err, "cluster-size", "Cluster size %u for '%s' must be a"
                        " power of two from 512 to 2097152.", cs, path);
        return -EINVAL;
    }
    if (rb == 0 || rb > 64 || (rb & (rb - 1))) {
        gvm_error_param(err, "refcount-bits", "Refcount width %u for '%s' must be"
                        " a power of two from 1 to 64.", rb, path);
        return -EINVAL;
    }
    if (v != 2 && v != 3) {
        gvm_error_param(err, "compat", "qcow2 version %d for '%s' must be 2"
                        " (compat 0.10) or 3 (compat 1.1).", v, path);
        return -EINVAL;
    }
    if (v == 2 && rb != 16) {
        gvm_error_param(err, "refcount-bits", "qcow2 version 2 (compat 0.10)"
                        " images only have 16-bit refcounts, not %u.", rb);
        return -EINVAL;
    }
    if (v == 2 && o->lazy_refcounts) {
        gvm_error_param(err, "lazy-refcounts", "Lazy refcounts need qcow2"
                        " version 3 (compat 1.1).");
        return -EINVAL;
    }
    if (o->backing_name && (o->backing_name[0] == '\0' ||
                            strlen(o->backing_name) > QCOW2_MAX_BACKING_NAME)) {
        gvm_error_param(err, "backing", "The backing file name must be 1 to 1023"
                        " bytes long.");
        return -EINVAL;
    }
    *cbits = (unsigned)__builtin_ctz(cs);
    *rorder = (unsigned)__builtin_ctz(rb);
    *version = v;
    return 0;
}

/* Where the metadata clusters go, from the options and the size. */
struct layout {
    unsigned cbits, rorder;
    int version;
    uint64_t size, cs;
    uint64_t l1_entries, rb_entries;
    uint64_t rt_clusters, rb_count;
    uint64_t total;                 /* metadata clusters, header included */
};

static int plan_layout(struct layout *lo, struct gvm_error *err)
{
    uint64_t cs = 1ull << lo->cbits;
    uint64_t l2_span = cs * (cs / 8);
    uint64_t size = lo->size;

    lo->cs = cs;
    lo->l1_entries = (size + l2_span - 1) / l2_span;
    if (lo->l1_entries * 8 > QCOW2_MAX_L1_BYTES || size > (1ull << 62)) {
        gvm_error_param(err, "size", "Virtual size %" PRIu64 " is too large for"
                        " cluster size %" PRIu64 " (the L1 table would exceed"
                        " 32 MiB).", size, cs);
        return -EINVAL;
    }
    uint64_t l1_clusters = (lo->l1_entries * 8 + cs - 1) / cs;
    if (l1_clusters == 0)
        l1_clusters = 1;   /* like QEMU: an L1 cluster even for size 0 */
    lo->rb_entries = cs * 8 / (1u << lo->rorder);

    /* Metadata clusters: header + reftable + refblocks + L1, where the
     * refcount structures must cover themselves: iterate to a fixed point. */
    uint64_t rt_clusters = 1, rb_count = 1, total;
    for (;;) {
        total = 1 + rt_clusters + rb_count + l1_clusters;
        uint64_t nrb = (total + lo->rb_entries - 1) / lo->rb_entries;
        uint64_t nrt = (nrb * 8 + cs - 1) / cs;
        if (nrb == rb_count && nrt == rt_clusters)
            break;
        rb_count = nrb;
        rt_clusters = nrt;
    }
    if (rt_clusters * cs > QCOW2_MAX_REFTABLE_BYTES) {
        gvm_error_param(err, "size", "Virtual size %" PRIu64 " needs a refcount"
                        " table above 8 MiB with these options.", size);
        return -EINVAL;
    }
    lo->rt_clusters = rt_clusters;
    lo->rb_count = rb_count;
    lo->total = total;
    return 0;
}

/* All metadata clusters in memory (*out): header, refcount table and
 * blocks; the L1 table stays zero. */
static int build_meta(const char *path, const struct img_create_opts *o,
                      const struct layout *lo, uint8_t **out,
                      struct gvm_error *err)
{
    uint64_t cs = lo->cs;

    /* The header, built by the same code that rewrites headers. */
    struct qcow2 q;
    memset(&q, 0, sizeof(q));
    q.path = (char *)path;
    q.cluster_size = (uint32_t)cs;
    q.hdr.magic = QCOW2_MAGIC;
    q.hdr.version = (uint32_t)lo->version;
    q.hdr.cluster_bits = lo->cbits;
    q.hdr.size = lo->size;
    q.hdr.l1_size = (uint32_t)lo->l1_entries;
    q.hdr.refcount_table_offset = cs;
    q.hdr.refcount_table_clusters = (uint32_t)lo->rt_clusters;
    q.hdr.l1_table_offset = (1 + lo->rt_clusters + lo->rb_count) * cs;
    q.hdr.refcount_order = lo->rorder;
    q.hdr.header_length = lo->version == 2 ? QCOW2_V2_HEADER_LEN
                                           : CREATE_V3_HEADER_LEN;
    if (o->lazy_refcounts)
        q.hdr.compatible_features = QCOW2_COMPAT_LAZY_REFCOUNTS;
    q.backing_name = (char *)o->backing_name;
    q.backing_fmt = o->backing_name ? (char *)o->backing_format : NULL;
    uint8_t hraw[CREATE_V3_HEADER_LEN] = { 0 };
    q.hdr_raw = hraw;

    /* A feature-name table helps other tools' messages; it is left out when
     * it would not fit next to the backing name (small clusters). */
    uint8_t ftab[GVM_ARRAY_SIZE(feature_names) * 48];
    memset(ftab, 0, sizeof(ftab));
    for (size_t i = 0; i < GVM_ARRAY_SIZE(feature_names); i++) {
        ftab[i * 48] = feature_names[i].type;
        ftab[i * 48 + 1] = feature_names[i].bit;
        memcpy(ftab + i * 48 + 2, feature_names[i].name, strlen(feature_names[i].name));
    }
    struct qcow2_ext fext = { QCOW2_EXT_FEATURE_TABLE, sizeof(ftab), ftab };
    if (lo->version >= 3) {
        q.exts = &fext;
        q.nexts = 1;
        if (qcow2_header_size(&q, q.backing_name, q.backing_fmt) > cs)
            q.nexts = 0;
    }
    if (qcow2_header_size(&q, q.backing_name, q.backing_fmt) > cs) {
        gvm_error_param(err, "backing", "The backing file name and format do not"
                        " fit in the %" PRIu64 "-byte header cluster of '%s'.",
                        cs, path);
        return -EINVAL;
    }

    _cleanup_free_ uint8_t *meta = calloc(1, (size_t)(lo->total * cs));
    if (!meta) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory creating '%s'.", path);
        return -ENOMEM;
    }
    int r = qcow2_header_build(&q, meta);
    if (r < 0) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Cannot build the header of '%s'.", path);
        return r;
    }
    uint8_t *rt = meta + cs;
    uint8_t *rbs = meta + (1 + lo->rt_clusters) * cs;
    for (uint64_t i = 0; i < lo->rb_count; i++)
        qcow2_put64(rt + i * 8, (1 + lo->rt_clusters + i) * cs);
    for (uint64_t c = 0; c < lo->total; c++)
        rb_set(rbs + (c / lo->rb_entries) * cs, c % lo->rb_entries, lo->rorder, 1);
    *out = steal_pointer(&meta);
    return 0;
}

/* Create the file exclusively and write the metadata in one go; on a failed
 * write the file is unlinked. */
static int write_new_image(struct gvm_store *st, const char *path,
                           const uint8_t *meta, size_t meta_len,
                           struct gvm_error *err)
{
    struct gvm_file *f;
    int r = st->ops->open(st, path, GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &f);
    if (r == -EEXIST) {
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "Image '%s' already exists.", path);
        return r;
    }
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Cannot create image '%s'", path);
        return r;
    }
    /* Written under the write lock (image-lock.c), like every write. */
    struct img_lock *lk = NULL;
    r = img_lock_take(st, path, true, NULL, &lk, err);
    if (r == 0)
        r = st->ops->pwrite(f, meta, meta_len, 0);
    if (r == 0)
        r = st->ops->flush(f);
    st->ops->close(f);
    img_lock_drop(lk);
    if (r < 0) {
        st->ops->unlink(st, path);
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Cannot write new image '%s'", path);
        return r;
    }
    return 0;
}

int qcow2_create(struct gvm_store *st, const char *path,
                 const struct img_create_opts *o, uint64_t size,
                 struct gvm_error *err)
{
    /* img_create sent raw images to raw_create. */
    assert(st && path && o && o->format == IMG_FMT_QCOW2);
    struct layout lo;
    int r;

    memset(&lo, 0, sizeof(lo));
    r = check_opts(path, o, &lo.cbits, &lo.rorder, &lo.version, err);
    if (r < 0)
        return r;
    lo.size = (size + 511) & ~511ull;
    r = plan_layout(&lo, err);
    if (r < 0)
        return r;
    _cleanup_free_ uint8_t *meta = NULL;
    r = build_meta(path, o, &lo, &meta, err);
    if (r < 0)
        return r;
    return write_new_image(st, path, meta, (size_t)(lo.total * lo.cs), err);
}
