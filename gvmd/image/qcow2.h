/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2.h — the qcow2 engine's internal header (not for use outside
 * gvmd/image.c and gvmd/qcow2*.c).  The format is the one of QEMU's
 * docs/interop/qcow2.txt; every number below is in host order once parsed.
 *
 * WHO DOES WHAT (two engineers write this engine against this header):
 *
 *   qcow2.c          [qcow2r]  open: read + validate header, extensions,
 *                              feature-name table, where the L1, refcount
 *                              and snapshot tables lie, the snapshot table
 *                              (on RW open also every entry of the L1,
 *                              refcount and snapshot L1 tables, streaming);
 *                              feature-bit updates, backing rewrite,
 *                              dirty handling on RW open (calls qcow2_check).
 *   qcow2-header.c   [qcow2r]  cluster 0 rebuilt from the fields: size,
 *                              build, write (qcow2_header_*).
 *   qcow2-table.c    [qcow2r]  the active L1 and the refcount table, read
 *                              on demand in 4 KiB chunks through a bounded
 *                              cache per table; entries checked when first
 *                              read; L1 entries written through, refcount
 *                              table entries written back (dirty).
 *   qcow2-cluster.c  [qcow2r]  L2 cache (per image), guest offset -> host
 *                              mapping, guest reads (incl. zlib), block
 *                              status, and the L1/L2 *update* side of
 *                              writes: qcow2_cluster_prepare_l2() makes the
 *                              L2 table for a guest offset exist and be
 *                              owned by this image alone (allocating /
 *                              copying it with qcow2w's allocator), and
 *                              qcow2_cluster_set_entries() rewrites L2
 *                              entries and writes the table back.
 *   qcow2-create.c   [qcow2r]  img_create for qcow2 (and raw in raw.c).
 *   image.c, raw.c   [qcow2r]  format dispatch, chain open (resolver, loops,
 *                              depth), chain reads, img_map (qemu-img map
 *                              semantics incl. its metadata-preallocation
 *                              heuristic), raw images.
 *   qcow2-refcount.c [qcow2w]  refcount table/blocks, cluster allocation
 *                              (qcow2_alloc_clusters), refcount updates,
 *                              freeing.
 *   qcow2-write.c    [qcow2w]  the guest write path (qcow2_write /
 *                              qcow2_write_zeroes: they ask qcow2-cluster.c
 *                              for mappings and L2 updates, do COW of
 *                              partial clusters reading the backing through
 *                              img_read(q->backing, ...)), L1 growth.
 *   qcow2-check.c    [qcow2w]  qcow2_check: rebuild refcounts from every
 *                              table (active L1 + snapshots' L1s), compare,
 *                              repair leaks / all.
 *
 * Write ordering (declared here, honoured by both halves): data cluster
 * and refcount increments first, then the L2 table, then the L1 entry,
 * header last; a refcount *decrement* only after the table that stopped
 * pointing at the cluster is on disk.  Flush (store ->flush) between steps
 * only where a crash could otherwise leave a pointer to an unreferenced
 * cluster; lazy_refcounts images may skip refcount ordering (dirty bit).
 *
 * Errors: every function here returns 0 / a count, or -errno, and never
 * logs.  Functions that detect bad metadata return -EUCLEAN and, when they
 * take a struct gvm_error, fill it (Corrupt, naming image/field/value).
 * Data-path functions that hit bad metadata set q->corrupt_msg (first
 * wins) so the caller that owns a gvm_error can report the sentence.
 */
#ifndef GVMD_QCOW2_H
#define GVMD_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "image.h"
#include "store.h"
#include "util.h"

/* ---- on-disk constants ---------------------------------------------- */

#define QCOW2_MAGIC 0x514649fbu              /* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_MIN 104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAPSHOT_TABLE_BYTES (64u << 20)
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024

/* Header extension types. */
#define QCOW2_EXT_END            0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE  0x6803f857u
#define QCOW2_EXT_BITMAPS        0x23852875u
#define QCOW2_EXT_CRYPTO         0x0537be77u
#define QCOW2_EXT_DATA_FILE      0x44415441u

/* Feature bits. */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN       (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS     (1ull << 0)
#define QCOW2_AUTOCLEAR_DATA_RAW    (1ull << 1)
#define QCOW2_AUTOCLEAR_KNOWN       0ull   /* we keep neither on write-open */

/* L1 / L2 / refcount-table entry bits. */
#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull   /* bits 9-55 */
#define QCOW2_L1E_RESERVED     0x7f000000000001ffull   /* bits 0-8, 56-62 */
#define QCOW2_L2E_RESERVED     0x3f000000000001feull   /* bits 1-8, 56-61 */
#define QCOW2_RTE_RESERVED     0x00000000000001ffull   /* bits 0-8 */

/* ---- big-endian helpers ------------------------------------------------ */

static inline uint16_t qcow2_get16(const uint8_t *p)
{ return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t qcow2_get32(const uint8_t *p)
{ return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
static inline uint64_t qcow2_get64(const uint8_t *p)
{ return ((uint64_t)qcow2_get32(p) << 32) | qcow2_get32(p + 4); }
static inline void qcow2_put16(uint8_t *p, uint16_t v)
{ p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void qcow2_put32(uint8_t *p, uint32_t v)
{ p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
static inline void qcow2_put64(uint8_t *p, uint64_t v)
{ qcow2_put32(p, (uint32_t)(v >> 32)); qcow2_put32(p + 4, (uint32_t)v); }

/* ---- parsed metadata -------------------------------------------------- */

/* The fixed header fields, host order. */
struct qcow2_header {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    /* v3 (v2: zero, refcount_order 4, header_length 72) */
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
};

/* A header extension kept as bytes (everything but the backing format and
 * end marker, which are regenerated): rewritten unchanged, in order. */
struct qcow2_ext {
    uint32_t type;
    uint32_t len;
    uint8_t *data;
};

/* One entry of the feature-name table extension. */
struct qcow2_feature_name {
    uint8_t type;   /* 0 incompatible, 1 compatible, 2 autoclear */
    uint8_t bit;
    char name[47];  /* 46 bytes on disk + NUL */
};

/* One internal snapshot: only what validation and check need.  The table
 * itself is never rewritten by gvmd (snapshots are kept intact). */
struct qcow2_snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id;
    char *name;
    uint64_t disk_size;       /* from extra data, or the image size */
};

/* L2 table cache: a few tables per image, LRU. */
#define QCOW2_L2_CACHE_SLOTS 16
struct qcow2_l2_slot {
    uint64_t offset;     /* host offset of the table, 0 = empty slot */
    uint64_t lru;        /* last use tick                            */
    uint64_t *table;     /* cluster_size bytes, host order           */
};

/* A table of 64-bit entries read on demand (qcow2-table.c): chunks of
 * QCOW2_TABLE_CHUNK entries, at most QCOW2_TABLE_SLOTS of them kept (more
 * only while dirty refcount-table chunks wait for their write-back). */
#define QCOW2_TABLE_CHUNK 512u   /* entries: 4 KiB */
#define QCOW2_TABLE_SLOTS 8u
enum qcow2_table_kind {
    QCOW2_TABLE_L1,        /* at hdr.l1_table_offset, hdr.l1_size entries  */
    QCOW2_TABLE_REFCOUNT,  /* at hdr.refcount_table_offset, reftable_entries */
};
struct qcow2_table_slot {
    uint64_t first;        /* index of the first entry held             */
    uint64_t lru;
    uint32_t n;            /* entries held; 0: empty slot               */
    uint32_t dirty_lo, dirty_hi;  /* [lo, hi): set, not written back    */
    uint64_t checked[QCOW2_TABLE_CHUNK / 64];  /* entry checked or ours */
    uint64_t *e;           /* QCOW2_TABLE_CHUNK entries, host order     */
};
struct qcow2_table {
    enum qcow2_table_kind kind;
    struct qcow2_table_slot *slots;   /* NULL until the first read */
    unsigned nslots;
    unsigned last;         /* slot of the last hit: tried first */
    uint64_t tick;
};

/* Mapping types of one guest cluster. */
enum qcow2_ctype {
    QCOW2_C_UNALLOCATED,   /* no L2 table or zero entry: ask the backing  */
    QCOW2_C_ZERO_PLAIN,    /* v3 zero flag, no host cluster               */
    QCOW2_C_ZERO_ALLOC,    /* v3 zero flag with a preallocated cluster    */
    QCOW2_C_NORMAL,        /* data at host offset                         */
    QCOW2_C_COMPRESSED,    /* zlib-compressed                             */
};

/* Result of qcow2_cluster_get(): one run of clusters with the same type
 * (and, for NORMAL/ZERO_ALLOC, host-contiguous), inside one L2 table. */
struct qcow2_mapping {
    enum qcow2_ctype type;
    uint64_t host_offset;   /* NORMAL/ZERO_ALLOC: host offset of `guest`
                               (incl. the in-cluster offset); COMPRESSED:
                               the compressed data's start               */
    uint64_t comp_bytes;    /* COMPRESSED: bytes to read (upper bound)    */
    uint64_t bytes;         /* length of the run from `guest`, clamped to
                               the request and the virtual size           */
};

struct qcow2 {
    /* identity and storage */
    struct gvm_store *st;      /* borrowed (owned by the caller of img_open) */
    struct gvm_file *file;     /* owned                                      */
    char *path;                /* for messages                               */
    bool writable;
    struct img *backing;       /* borrowed: set by image.c after the chain is
                                  opened (NULL: none); qcow2 reads beyond
                                  backing_size as zeros                       */
    uint64_t backing_size;

    /* header */
    struct qcow2_header hdr;
    uint8_t *hdr_raw;          /* the header_length bytes as read: fields
                                  past the ones we know are kept on rewrite */
    uint32_t cluster_size;     /* 1 << cluster_bits */
    uint32_t l2_bits;          /* cluster_bits - 3  */
    uint32_t l2_entries;       /* cluster_size / 8  */
    unsigned refcount_bits;    /* 1 << refcount_order */
    uint32_t rb_entries;       /* refcounts per refcount block */
    uint32_t csize_shift;      /* compressed entry: 62 - (cluster_bits - 8) */
    uint64_t csize_mask;
    uint64_t coffset_mask;
    char *backing_name;        /* NULL: none */
    char *backing_fmt;         /* from the extension, NULL: none */
    struct qcow2_ext *exts;    /* unknown (and feature-table / bitmaps...)
                                  extensions in file order, kept byte-exact */
    size_t nexts;
    struct qcow2_feature_name *features;
    size_t nfeatures;
    uint64_t header_end;       /* first byte after header + extensions +
                                  backing name in cluster 0              */

    /* tables (qcow2-table.c): where they lie is in hdr */
    struct qcow2_table l1;       /* hdr.l1_size entries               */
    struct qcow2_table reftable; /* reftable_entries                  */
    uint32_t reftable_entries; /* refcount_table_clusters * cluster / 8 */
    struct qcow2_snapshot *snapshots;
    uint32_t nsnapshots;
    uint64_t snapshot_table_bytes;  /* on-disk size of the snapshot table */

    uint64_t file_size;        /* current end of file; the allocator keeps it
                                  up to date when it grows the file        */

    /* L2 cache (qcow2-cluster.c) */
    struct qcow2_l2_slot l2_cache[QCOW2_L2_CACHE_SLOTS];
    uint64_t l2_tick;
    /* scratch for compressed reads (qcow2-cluster.c), NULL until the
     * first one */
    uint8_t *cbuf;             /* 2 * cluster_size: compressed input */
    uint8_t *dbuf;             /* cluster_size: decompressed output  */
    uint64_t dbuf_host;        /* host offset dbuf was decoded from, or 0 */

    /* first metadata corruption seen on the data path (qcow2_corrupt) */
    char corrupt_msg[GVM_ERROR_MSG_MAX];

    /* ---- qcow2w's state (qcow2-refcount.c / qcow2-check.c) ------------ */
    void *rc;                  /* refcount engine private state: allocated
                                  and freed by qcow2_refcount_init/_fini */
    bool rc_ready;             /* qcow2_refcount_init succeeded (qcow2.c) */
};

/* ---- qcow2.c [qcow2r] ------------------------------------------------ */

/* Open and validate.  `file` ownership moves to the qcow2 on success (and
 * is closed on failure).  rw: see IMG_OPEN_RW (repairs a dirty image,
 * clears unknown autoclear bits, refuses persistent bitmaps). */
int qcow2_open(struct gvm_store *st, const char *path, struct gvm_file *file,
               bool rw, struct qcow2 **out, struct gvm_error *err);
/* Flush if writable, free everything. */
void qcow2_close(struct qcow2 *q);
int qcow2_flush(struct qcow2 *q);

/* ---- qcow2-header.c [qcow2r] ----------------------------------------- */

/* Rebuild cluster 0 (header, extensions in order, backing format, backing
 * name) from q->hdr / q->exts / q->backing_* and write it with one pwrite,
 * then flush.  -ENOSPC if it does not fit in one cluster. */
int qcow2_header_write(struct qcow2 *q);
/* Build cluster 0 into buf (cluster_size bytes) from the same fields,
 * updating q->hdr.backing_file_offset/size and q->header_end.  Needs
 * q->cluster_size, q->hdr, q->hdr_raw (header_length bytes), exts and
 * backing_*; -ENOSPC if it does not fit.  (qcow2-create.c uses it on a
 * qcow2 built in memory.) */
int qcow2_header_build(struct qcow2 *q, uint8_t *buf);
/* Size of the header area that qcow2_header_write would produce. */
uint64_t qcow2_header_size(const struct qcow2 *q, const char *backing_name,
                           const char *backing_fmt);

/* ---- qcow2.c [qcow2r], continued -------------------------------------- */

/* Set/clear incompatible feature bits (dirty, corrupt) and write the
 * header (v3 only; a v2 image has no feature fields: returns 0). */
int qcow2_set_incompat(struct qcow2 *q, uint64_t set, uint64_t clear);
/* Record a metadata corruption met on the data path: fills
 * q->corrupt_msg (first wins) and returns -EUCLEAN. */
int qcow2_corrupt(struct qcow2 *q, const char *fmt, ...) GVM_PRINTF(2, 3);
/* Backing rewrite (img_set_backing). */
int qcow2_set_backing(struct qcow2 *q, const char *name, const char *fmt,
                      struct gvm_error *err);
/* Is the host range [off, off+len) inside fixed metadata (header cluster,
 * L1, refcount table, snapshot table)?  Used to refuse L2 and data
 * pointers into metadata. */
bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len);
/* Check every entry of the refcount table, of each snapshot's L1 table and
 * of the active L1 table, a chunk at a time (read-write open, and check of
 * a read-only image: what open did for every image when it read the tables
 * whole).  Corrupt in err, -EUCLEAN. */
int qcow2_check_tables(struct qcow2 *q, struct gvm_error *err);
/* Read len bytes at off from the image file, looping over short reads;
 * bytes past the end of the file read as zeros.  0 or -errno. */
int qcow2_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off);
/* Fill the qcow2 part of img_info. */
void qcow2_get_info(struct qcow2 *q, struct img_info *info);

/* ---- qcow2-cluster.c [qcow2r] ---------------------------------------- */

/* Borrow the L2 table at host offset l2_off (validated: aligned, inside the
 * file, not metadata) from the cache, reading it on a miss.  The pointer is
 * valid until the next qcow2_l2_* / qcow2_cluster_* call. */
int qcow2_l2_get(struct qcow2 *q, uint64_t l2_off, uint64_t **table);
/* Drop a cached table (after its cluster is freed). */
void qcow2_l2_forget(struct qcow2 *q, uint64_t l2_off);
/* Map guest offset `guest` (for at most `bytes` bytes): one run. */
int qcow2_cluster_get(struct qcow2 *q, uint64_t guest, uint64_t bytes,
                      struct qcow2_mapping *m);
/* Guest-visible bytes of this image (reading unallocated ranges from
 * q->backing, zeros past its end).  Coalesces host-contiguous clusters. */
int qcow2_read(struct qcow2 *q, void *buf, uint64_t off, size_t len);
/* Block status of this layer only, for img_map. */
int qcow2_block_status(struct qcow2 *q, uint64_t off, uint64_t bytes,
                       struct qcow2_mapping *m);

/* Write side.  Make the L2 table covering guest offset `guest` present and
 * owned by this image only (L1 entry has COPIED): allocates a new table
 * with qcow2_alloc_clusters (zeroed, or a copy of a shared table whose
 * refcount is then dropped), writes it, then the L1 entry.  Returns the
 * table's host offset in *l2_off. */
int qcow2_cluster_prepare_l2(struct qcow2 *q, uint64_t guest, uint64_t *l2_off);
/* Replace the L2 entries of n clusters starting at guest cluster of
 * `guest` (all inside one L2 table, already prepared) by new_entries[],
 * writing the changed part of the table to disk.  old_entries (may be
 * NULL) receives the previous values so the caller can free what they
 * pointed to (after this returns: ordering).  The caller computes entries
 * (offset | QCOW2_OFLAG_COPIED, QCOW2_OFLAG_ZERO, or 0). */
int qcow2_cluster_set_entries(struct qcow2 *q, uint64_t guest, unsigned n,
                              const uint64_t *new_entries,
                              uint64_t *old_entries);
/* Number of clusters from `guest` to the end of its L2 table. */
static inline unsigned qcow2_l2_remaining(const struct qcow2 *q, uint64_t guest)
{
    uint64_t idx = (guest >> q->hdr.cluster_bits) & (q->l2_entries - 1);
    return (unsigned)(q->l2_entries - idx);
}

/* ---- qcow2-table.c [qcow2r] ------------------------------------------ */

void qcow2_table_init(struct qcow2_table *t, enum qcow2_table_kind kind);
void qcow2_table_fini(struct qcow2_table *t);
/* Entry i, checked (an L1 entry as open checked it: reserved bits, L2
 * table aligned, inside the file, not in metadata; a refcount-table entry:
 * reserved bits, aligned, inside the file, not in the header): a bad one
 * is -EUCLEAN with q->corrupt_msg set.  Entries past the table's end read
 * as 0.  (The data path looks up an L1 entry per run of clusters, and a
 * map of a large sparse image reads millions of them once each: a zero
 * entry, valid in both tables, or one already checked, in the chunk of the
 * last lookup is answered inline.  A slot never holds entries past the
 * table's end: tables only grow.) */
int qcow2_table_get_slow(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                         uint64_t *e);
static inline int qcow2_table_get(struct qcow2 *q, struct qcow2_table *t,
                                  uint64_t i, uint64_t *e)
{
    if (t->last < t->nslots) {
        const struct qcow2_table_slot *s = &t->slots[t->last];
        uint64_t k = i - s->first;   /* wraps past n when i < first */
        if (k < s->n &&
            (s->e[k] == 0 || (s->checked[k / 64] >> (k % 64) & 1))) {
            *e = s->e[k];
            return 0;
        }
    }
    return qcow2_table_get_slow(q, t, i, e);
}
/* Entry i as it is, unchecked (check, which counts bad entries itself). */
int qcow2_table_peek(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                     uint64_t *e);
/* L1: write entry i to disk, then into the cache (the cache is unchanged
 * if the write fails).  -EINVAL past the table's end. */
int qcow2_table_write(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                      uint64_t e);
/* Refcount table: set entry i in the cache only, dirty until
 * qcow2_table_writeback (which the caller runs once what the entries
 * point at is durable). */
int qcow2_table_set(struct qcow2 *q, struct qcow2_table *t, uint64_t i,
                    uint64_t e);
bool qcow2_table_dirty(const struct qcow2_table *t);
int qcow2_table_writeback(struct qcow2 *q, struct qcow2_table *t);
/* Drop every cached chunk, dirty ones too (the growth code, once their
 * entries are in the new table). */
void qcow2_table_forget(struct qcow2_table *t);
/* Write the table's entries (the cache's view) and zeros after them,
 * `entries` in all, at host offset dst, a chunk at a time (growth). */
int qcow2_table_copy(struct qcow2 *q, struct qcow2_table *t, uint64_t dst,
                     uint64_t entries);
/* Read n entries from first of the table at off, into host order. */
int qcow2_table_read(struct qcow2 *q, uint64_t off, uint64_t first, uint32_t n,
                     uint64_t *out);
/* Check every entry of the table of n entries at off, a chunk at a time,
 * with the rules of qcow2_table_get for `kind`; `what` names an L1 table
 * in the message.  A bad entry: Corrupt in err, -EUCLEAN. */
int qcow2_table_check_all(struct qcow2 *q, enum qcow2_table_kind kind,
                          uint64_t off, uint64_t n, const char *what,
                          struct gvm_error *err);

/* ---- qcow2-create.c [qcow2r] ----------------------------------------- */

int qcow2_create(struct gvm_store *st, const char *path,
                 const struct img_create_opts *o, uint64_t size,
                 struct gvm_error *err);

/* ---- raw.c [qcow2r] ---------------------------------------------------- */

/* Sparse raw images: reads past EOF are zeros. */
int raw_read(struct gvm_store *st, struct gvm_file *f, void *buf, uint64_t off,
             size_t len);
int raw_create(struct gvm_store *st, const char *path, uint64_t size,
               struct gvm_error *err);

/* ==== qcow2w's section: qcow2-refcount.c / qcow2-check.c =============== */
/*
 * Expected by qcow2r's code (qcow2.c / qcow2-cluster.c / image.c call
 * these; qcow2w implements them — change the comments, not the
 * signatures, without agreeing first):
 */

/* Set up / tear down q->rc (refcount block cache etc.).  Called by
 * qcow2_open after the tables are validated (also for RO opens), and by
 * qcow2_close. */
int qcow2_refcount_init(struct qcow2 *q);
void qcow2_refcount_fini(struct qcow2 *q);
/* Write back cached refcount blocks (qcow2_flush calls it). */
int qcow2_refcount_flush(struct qcow2 *q);
/* Allocate n contiguous clusters with refcount 1 (refcount on disk before
 * returning), growing the file/refcount structures as needed.  Returns the
 * host offset (>0) or -errno.  The clusters' contents are undefined. */
int64_t qcow2_alloc_clusters(struct qcow2 *q, uint64_t n);
/* Add delta to the refcount of every cluster touched by [off, off+len);
 * clusters reaching 0 become free.  -EUCLEAN on under/overflow. */
int qcow2_refcount_update(struct qcow2 *q, uint64_t off, uint64_t len,
                          int delta);
/* Refcount of the cluster containing host offset off. */
int qcow2_refcount_get(struct qcow2 *q, uint64_t off, uint64_t *rc);

/* Guest writes into this image (img_write / img_write_zeroes). */
int qcow2_write(struct qcow2 *q, const void *buf, uint64_t off, size_t len);
int qcow2_write_zeroes(struct qcow2 *q, uint64_t off, uint64_t len);

/* img_check: rebuild and compare refcounts; repair as asked (IMG_REPAIR_*).
 * Called by qcow2_open on RW open of a dirty image with IMG_REPAIR_ALL.
 * On a read-only image every table entry is checked first
 * (qcow2_check_tables): a bad one is the Corrupt error open gave before
 * tables were read on demand.  Tables are walked a chunk at a time. */
int qcow2_check(struct qcow2 *q, unsigned repair,
                struct img_check_result *res, struct gvm_error *err);

/* (qcow2w: add further declarations below this line.) */

/* Largest refcount the image's refcount_bits can hold. */
static inline uint64_t qcow2_refcount_max(const struct qcow2 *q)
{
    return q->refcount_bits >= 64 ? UINT64_MAX
                                  : (1ull << q->refcount_bits) - 1;
}
/* Like qcow2_alloc_clusters, but the refcount increments stay in the
 * write-back refcount-block cache: the caller must qcow2_refcount_flush()
 * before anything on disk points at the clusters (the writer batches one
 * flush for all clusters of a request). */
int64_t qcow2_alloc_clusters_deferred(struct qcow2 *q, uint64_t n);
/* Set the refcount of the cluster containing host offset off (check's
 * repair), allocating a refcount block if the value is not 0. */
int qcow2_refcount_set(struct qcow2 *q, uint64_t off, uint64_t value);
/* While check repairs an image whose stored refcounts may be too low,
 * clusters below `cluster_index` must not be handed out even if their
 * stored refcount is 0: the allocator then only allocates from there on.
 * 0 lifts the restriction. */
void qcow2_refcount_set_alloc_floor(struct qcow2 *q, uint64_t cluster_index);

/* qcow2_refcount_flush without its final flush: the writer makes the
 * refcounts durable together with the data of a batch (one flush for
 * both: neither is pointed at yet). */
int qcow2_refcount_write(struct qcow2 *q);
/* qcow2_write with the data taken from file (on the image's own store) at
 * src_off instead of a buffer, moved by store_copy(): copy_file_range(2)
 * on a dir volume.  -ENODATA if the file ends before len bytes. */
int qcow2_write_copy(struct qcow2 *q, struct gvm_file *file, uint64_t src_off,
                     uint64_t off, uint64_t len);
/* qcow2-write.c: grow the active L1 table to at least min_entries
 * (new table elsewhere, copy, header switch, free the old one). */
int qcow2_l1_grow(struct qcow2 *q, uint64_t min_entries);

/* qcow2-resize.c: grow the virtual size to new_size (a multiple of 512;
 * -ENOTSUP if smaller, -EFBIG past the L1 limit); the new range reads
 * zeros.  Crash-safe ordering: see qcow2-resize.c. */
int qcow2_resize(struct qcow2 *q, uint64_t new_size);
/* raw.c: grow the file f (now cur bytes) to new_size: sparse zeros.
 * -ENOTSUP if smaller. */
int raw_resize(struct gvm_store *st, struct gvm_file *f, uint64_t cur,
               uint64_t new_size);

#endif
