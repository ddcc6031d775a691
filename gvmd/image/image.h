/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image.h — the image engine's public face: raw and qcow2 images and their
 * backing chains, over a gvm_store (image.c dispatches; raw.c and
 * qcow2*.c implement).
 *
 * Functions that parse or validate metadata take a struct gvm_error and fill
 * it with Corrupt/Unsupported and a sentence naming the image, field and
 * value; data-path functions return -errno only.
 */
#ifndef GVMD_IMAGE_H
#define GVMD_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

enum img_format { IMG_FMT_RAW, IMG_FMT_QCOW2 };

const char *img_format_name(enum img_format f);            /* "raw", "qcow2" */
int img_format_parse(const char *name, enum img_format *out);
/* The format path's content claims: qcow2 if it starts with the qcow2
 * magic, else raw (as QEMU's probe).  Content is what a guest may have
 * written: never use this for an image whose format is known (catalogued,
 * or given by the caller).  0, or the store's -errno. */
int img_probe(struct gvm_store *st, const char *path, enum img_format *out);

#define IMG_MAX_CHAIN_DEPTH 64

struct img;

/* Open flags. */
#define IMG_OPEN_RW       0x1  /* top layer writable (repairs dirty images) */
#define IMG_OPEN_NOBACKING 0x2 /* do not open the backing chain             */

/*
 * Resolving a backing file name to a store and path: the name as stored in
 * the header of `child` (relative names are relative to child's directory).
 * The default resolver (NULL) handles relative names on the same store.
 * The daemon's resolver also maps gluster:// names to registered volumes.
 */
struct img_resolver {
    int (*resolve)(void *opaque, struct gvm_store *child_store,
                   const char *child_path, const char *backing_name,
                   struct gvm_store **store, char **path,
                   struct gvm_error *err);
    void *opaque;
};

/*
 * Open path as format fmt, then (unless IMG_OPEN_NOBACKING) its backing
 * chain read-only.  A backing file without a backing-format extension is an
 * error unless backing_fmt_hint is given for it (NULL: no hint).  Loops and
 * chains deeper than max_depth (0 = IMG_MAX_CHAIN_DEPTH) are Corrupt.
 */
int img_open(struct gvm_store *st, const char *path, enum img_format fmt,
             unsigned flags, const struct img_resolver *res,
             unsigned max_depth, struct img **out, struct gvm_error *err);
/* img_open with a format hint for the top image's backing file, used only
 * when its header records no backing format (like qemu-img's -F). */
int img_open_hint(struct gvm_store *st, const char *path, enum img_format fmt,
                  unsigned flags, const struct img_resolver *res,
                  unsigned max_depth, const char *backing_fmt_hint,
                  struct img **out, struct gvm_error *err);
/* Flush (if writable) and close the image and its opened backing chain. */
void img_close(struct img *img);
static inline void img_closep(struct img **i) { if (*i) img_close(*i); }
#define _cleanup_img_ _cleanup_(img_closep)

struct img_info {
    enum img_format format;
    uint64_t virtual_size;
    uint64_t actual_size;         /* bytes allocated on storage          */
    uint32_t cluster_size;        /* 0 for raw                           */
    int qcow2_version;            /* 2 or 3; 0 for raw                   */
    unsigned refcount_bits;
    char *backing_filename;       /* as stored in the header, or NULL    */
    char *backing_format;         /* from the extension, or NULL         */
    bool dirty, corrupt, lazy_refcounts;
    unsigned nb_snapshots;        /* internal snapshots                  */
};
/* Fill info for the top layer; free with img_info_clear(). */
int img_get_info(struct img *img, struct img_info *info);
void img_info_clear(struct img_info *info);
static inline void img_info_clearp(struct img_info *i) { img_info_clear(i); }
#define _cleanup_info_ _cleanup_(img_info_clearp)
/* The opened backing layer (borrowed) or NULL. */
struct img *img_backing(struct img *img);
const char *img_path(const struct img *img);
struct gvm_store *img_store(const struct img *img);
uint64_t img_virtual_size(const struct img *img);

/* Guest-visible bytes through the chain (zeros past a backing file's end
 * and for unallocated ranges at the bottom).  0 or -errno. */
int img_read(struct img *img, void *buf, uint64_t off, size_t len);
/* Write into the top layer (allocating clusters).  0 or -errno. */
int img_write(struct img *img, const void *buf, uint64_t off, size_t len);
/* img_write of the len bytes stored at host offset src_off in the file of
 * layer src (any opened image; img_map's offset for an extent answered by
 * that layer), moved by the store without a buffer where it can
 * (store_copy: copy_file_range(2) on a dir volume).  -EXDEV if src is on
 * another store (read and write instead), -ENODATA if its file ends
 * before len bytes (fall back likewise: the range may be half written,
 * as after a failed img_write). */
int img_write_copy(struct img *img, uint64_t off, uint64_t len,
                   struct img *src, uint64_t src_off);
/* Make a range read as zeros: zero flag on qcow2 v3, zero data on v2/raw. */
int img_write_zeroes(struct img *img, uint64_t off, uint64_t len);
int img_flush(struct img *img);
/* Grow the top layer to new_size bytes (a multiple of 512 for qcow2): the
 * range past the old end reads zeros.  Shrinking is -ENOTSUP; growing to
 * the current size does nothing.  Needs IMG_OPEN_RW.  A crash leaves the
 * image reading as the old or the new size, nothing worse than leaked
 * clusters (qcow2-resize.c says which, and when zeros are at risk).
 * Images opened with this one as backing keep the size they saw at open. */
int img_resize(struct img *img, uint64_t new_size);
/* After a data-path call failed with -EUCLEAN: the sentence describing the
 * corrupt metadata met (image, entry, value), or NULL.  Borrowed. */
const char *img_corrupt_message(const struct img *img);

/* Allocation status of one extent starting at off (len is the maximum). */
struct img_extent {
    uint64_t start, length;
    bool data;         /* qemu: BDRV_BLOCK_DATA                       */
    bool zero;         /* reads as zeros                              */
    bool present;      /* allocated somewhere in the chain            */
    int depth;         /* layer that answers (0 = this image); for an
                          unallocated range, the chain length          */
    bool has_offset;
    uint64_t offset;   /* host offset in the layer's file             */
};
/* The extents `qemu-img map --output=json` would print for [off, off+len),
 * merged the same way.  Caller frees *exts. */
int img_map(struct img *img, uint64_t off, uint64_t len,
            struct img_extent **exts, size_t *n);

/* Rewrite the top layer's backing file name and format (NULL, NULL: none).
 * Fails with INVALID_PARAMS/Unsupported if it does not fit in cluster 0. */
int img_set_backing(struct img *img, const char *name, const char *fmt,
                    struct gvm_error *err);

struct img_create_opts {
    enum img_format format;
    uint64_t size;               /* 0: the backing image's size          */
    uint32_t cluster_size;       /* 0: 65536                             */
    int qcow2_version;           /* 0 or 3: v3; 2: v2 (compat 0.10)      */
    unsigned refcount_bits;      /* 0: 16                                */
    const char *backing_name;    /* as written in the header, or NULL    */
    const char *backing_format;
    bool lazy_refcounts;
};
/* Create a new image (fails with AlreadyExists if path exists). */
int img_create(struct gvm_store *st, const char *path,
               const struct img_create_opts *o, const struct img_resolver *res,
               struct gvm_error *err);

struct img_check_result {
    uint64_t corruptions, leaks;
    uint64_t corruptions_fixed, leaks_fixed;
    uint64_t check_errors;
    uint64_t allocated_clusters, total_clusters;
    uint64_t image_end_offset;
};
#define IMG_REPAIR_LEAKS 0x1
#define IMG_REPAIR_ALL   0x2
/* Rebuild refcounts from every table (incl. internal snapshots) and
 * compare; repair as asked.  Needs IMG_OPEN_RW to repair. */
int img_check(struct img *img, unsigned repair, struct img_check_result *res,
              struct gvm_error *err);

/* ---- image locks (image-lock.c) ---------------------------------------- */

struct img_lock;
/*
 * Take gvmd's lock on the image file st:path, compatible with QEMU's (see
 * image-lock.c for the modes): write (write and resize not shared) or read
 * (everything shared).  Holders in this process share the lock.  *out is
 * NULL when the store cannot lock (nothing to hold).  0; -EAGAIN with err
 * InUse naming `name` (NULL: the path) when another process holds the
 * image in a conflicting way; NotFound for a missing file; -errno.
 */
int img_lock_take(struct gvm_store *st, const char *path, bool write,
                  const char *name, struct img_lock **out,
                  struct gvm_error *err);
/* Let go of a lock (NULL: nothing). */
void img_lock_drop(struct img_lock *lk);
static inline void img_lock_dropp(struct img_lock **l) { img_lock_drop(*l); }
#define _cleanup_img_lock_ _cleanup_(img_lock_dropp)

#endif
