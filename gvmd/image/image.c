/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image.c — the image engine's public face (image.h): format dispatch to
 * raw.c and qcow2*.c, opening backing chains (resolving names, refusing
 * loops, over-deep chains and unrecorded formats — formats are never
 * probed), chain reads and the extents `qemu-img map` prints.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "qcow2.h"

struct img {
    enum img_format fmt;
    struct gvm_store *st;      /* borrowed */
    char *path;
    bool rw;
    struct gvm_file *raw;      /* IMG_FMT_RAW: owned */
    uint64_t raw_size;
    struct qcow2 *q;           /* IMG_FMT_QCOW2: owned */
    struct img *backing;       /* owned */
    struct img_lock *lock;     /* image-lock.c: held from open to close */
    bool prealloc_checked, prealloc;   /* see meta_prealloc() */
};

const char *img_format_name(enum img_format f)
{
    assert(f == IMG_FMT_RAW || f == IMG_FMT_QCOW2);
    return f == IMG_FMT_QCOW2 ? "qcow2" : "raw";
}

int img_format_parse(const char *name, enum img_format *out)
{
    /* name may be NULL (a missing parameter: -EINVAL); out may not. */
    assert(out);
    if (!name)
        return -EINVAL;
    if (strcmp(name, "raw") == 0) {
        *out = IMG_FMT_RAW;
        return 0;
    }
    if (strcmp(name, "qcow2") == 0) {
        *out = IMG_FMT_QCOW2;
        return 0;
    }
    return -EINVAL;
}

int img_probe(struct gvm_store *st, const char *path, enum img_format *out)
{
    struct gvm_file *f = NULL;
    unsigned char magic[4] = { 0 };
    ssize_t n;
    assert(st && path && out);
    int r = st->ops->open(st, path, GVM_O_RDONLY, &f);

    if (r < 0)
        return r;
    n = st->ops->pread(f, magic, sizeof(magic), 0);
    st->ops->close(f);
    if (n < 0)
        return (int)n;
    *out = n == 4 && memcmp(magic, "QFI\xfb", 4) == 0 ? IMG_FMT_QCOW2 : IMG_FMT_RAW;
    return 0;
}

const char *img_path(const struct img *img) { return img->path; }
struct gvm_store *img_store(const struct img *img) { return img->st; }
struct img *img_backing(struct img *img) { return img->backing; }

uint64_t img_virtual_size(const struct img *img)
{
    assert(img);
    return img->fmt == IMG_FMT_QCOW2 ? img->q->hdr.size : img->raw_size;
}

/* ---- open / close ---------------------------------------------------------- */

static void close_one(struct img *img)
{
    if (img->q)
        qcow2_close(img->q);
    if (img->raw) {
        if (img->rw)
            img->st->ops->flush(img->raw);
        img->st->ops->close(img->raw);
    }
    /* After the files: the lock covers every write, the last flush too. */
    img_lock_drop(img->lock);
    free(img->path);
    free(img);
}

void img_close(struct img *img)
{
    while (img) {
        struct img *b = img->backing;
        close_one(img);
        img = b;
    }
}

/* Open one layer (no backing). */
static int open_one(struct gvm_store *st, const char *path, enum img_format fmt,
                    bool rw, struct img **out, struct gvm_error *err)
{
    struct img *img = calloc(1, sizeof(*img));
    struct gvm_file *f;
    int r;

    if (!img || !(img->path = strdup(path))) {
        free(img);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory opening '%s'.", path);
        return -ENOMEM;
    }
    img->fmt = fmt;
    img->st = st;
    img->rw = rw;
    r = st->ops->open(st, path, rw ? GVM_O_RDWR : GVM_O_RDONLY, &f);
    if (r < 0) {
        if (r == -ENOENT)
            gvm_error_set(err, GVM_ERR_NOT_FOUND, "Image '%s' does not exist.", path);
        else
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "Cannot open image '%s'", path);
        close_one(img);
        return r;
    }
    /* Right after the open, before the first read or write: a writer
     * (QEMU, another gvmd path) must not be under a read-write open, and
     * no open for writing may proceed while someone else holds the image
     * (image-lock.c). */
    r = img_lock_take(st, path, rw, NULL, &img->lock, err);
    if (r < 0) {
        st->ops->close(f);
        close_one(img);
        return r;
    }
    if (fmt == IMG_FMT_RAW) {
        img->raw = f;
        r = st->ops->getsize(f, &img->raw_size);
        if (r < 0) {
            gvm_error_set_errno(err, GVM_ERR_STORAGE, r,
                                "Cannot get the size of '%s'", path);
            close_one(img);
            return r;
        }
    } else {
        r = qcow2_open(st, path, f, rw, &img->q, err);
        if (r < 0) {
            if (!gvm_error_isset(err))
                gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                    "Cannot open image '%s'", path);
            close_one(img);
            return r;
        }
    }
    *out = img;
    return 0;
}

static int default_resolve(struct gvm_store *child_store, const char *child_path,
                           const char *name, struct gvm_store **st, char **path,
                           struct gvm_error *err)
{
    if (name[0] == '/' || strstr(name, "://") || strncmp(name, "json:", 5) == 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "Image '%s' names backing file '%s', which is not relative"
                      " to the image's directory and cannot be resolved here.",
                      child_path, name);
        return -EXDEV;
    }
    int r = path_resolve_relative(child_path, name, path);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_UNSUPPORTED, r,
                            "Backing file '%s' of image '%s' cannot be resolved"
                            " inside the volume", name, child_path);
        return r;
    }
    *st = child_store;
    return 0;
}

static int resolve(const struct img_resolver *res, struct gvm_store *child_store,
                   const char *child_path, const char *name, struct gvm_store **st,
                   char **path, struct gvm_error *err)
{
    if (res && res->resolve)
        return res->resolve(res->opaque, child_store, child_path, name, st, path, err);
    return default_resolve(child_store, child_path, name, st, path, err);
}

static void layer_backing(const struct img *img, const char **name, const char **fmt)
{
    *name = img->q ? img->q->backing_name : NULL;
    *fmt = img->q ? img->q->backing_fmt : NULL;
}

int img_open_hint(struct gvm_store *st, const char *path, enum img_format fmt,
                  unsigned flags, const struct img_resolver *res,
                  unsigned max_depth, const char *backing_fmt_hint,
                  struct img **out, struct gvm_error *err)
{
    _cleanup_img_ struct img *top = NULL;
    int r;

    /* The format is the catalogue's or the caller's, parsed already
     * (img_format_parse): never a value from a client or an image. */
    assert(st && path && out);
    assert(fmt == IMG_FMT_RAW || fmt == IMG_FMT_QCOW2);
    assert((flags & ~(unsigned)(IMG_OPEN_RW | IMG_OPEN_NOBACKING)) == 0);
    if (max_depth == 0)
        max_depth = IMG_MAX_CHAIN_DEPTH;
    r = open_one(st, path, fmt, flags & IMG_OPEN_RW, &top, err);
    if (r < 0)
        return r;

    struct img *cur = top;
    unsigned depth = 0;
    while (!(flags & IMG_OPEN_NOBACKING)) {
        const char *bname, *bfmt;
        layer_backing(cur, &bname, &bfmt);
        if (!bname)
            break;
        if (!bfmt && cur == top)
            bfmt = backing_fmt_hint;
        if (!bfmt) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "Image '%s' names backing file '%s' without recording"
                          " its format; formats are never probed, so give the"
                          " backing format explicitly.", cur->path, bname);
            return -EINVAL;
        }
        enum img_format bf;
        if (img_format_parse(bfmt, &bf) < 0) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "Backing file '%s' of image '%s' has format '%s'; only"
                          " raw and qcow2 are supported.", bname, cur->path, bfmt);
            return -ENOTSUP;
        }
        if (++depth > max_depth) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "The backing chain of '%s' is deeper than %u images.",
                          path, max_depth);
            return -ELOOP;
        }
        struct gvm_store *bst = NULL;
        _cleanup_free_ char *bpath = NULL;
        r = resolve(res, cur->st, cur->path, bname, &bst, &bpath, err);
        if (r < 0)
            return r;
        for (struct img *s = top; s; s = s->backing) {
            if (s->st == bst && strcmp(s->path, bpath) == 0) {
                gvm_error_set(err, GVM_ERR_CORRUPT,
                              "The backing chain of '%s' loops: '%s' appears"
                              " twice.", path, bpath);
                return -ELOOP;
            }
        }
        struct img *b;
        r = open_one(bst, bpath, bf, false, &b, err);
        if (r == -ENOENT) {
            /* Say whose backing file is missing, not just a path. */
            gvm_error_clear(err);
            gvm_error_set(err, GVM_ERR_NOT_FOUND, "The backing file '%s' of "
                          "image '%s' does not exist.", bname, cur->path);
        }
        if (r < 0)
            return r;
        cur->backing = b;
        cur->q->backing = b;
        cur->q->backing_size = img_virtual_size(b);
        cur = b;
    }
    *out = steal_pointer(&top);
    return 0;
}

int img_open(struct gvm_store *st, const char *path, enum img_format fmt,
             unsigned flags, const struct img_resolver *res,
             unsigned max_depth, struct img **out, struct gvm_error *err)
{
    return img_open_hint(st, path, fmt, flags, res, max_depth, NULL, out, err);
}

/* ---- info ---------------------------------------------------------------------- */

int img_get_info(struct img *img, struct img_info *info)
{
    assert(img && info);
    memset(info, 0, sizeof(*info));
    info->format = img->fmt;
    if (img->q) {
        qcow2_get_info(img->q, info);
        if (img->q->backing_name && !(info->backing_filename = strdup(img->q->backing_name)))
            return -ENOMEM;
        if (img->q->backing_fmt && !(info->backing_format = strdup(img->q->backing_fmt))) {
            img_info_clear(info);
            return -ENOMEM;
        }
    } else {
        info->virtual_size = img->raw_size;
    }
    struct gvm_stat stt;
    if (img->st->ops->stat(img->st, img->path, &stt) == 0)
        info->actual_size = stt.allocated;
    return 0;
}

void img_info_clear(struct img_info *info)
{
    assert(info);
    free(info->backing_filename);
    free(info->backing_format);
    info->backing_filename = info->backing_format = NULL;
}

/* ---- data path ------------------------------------------------------------- */

int img_read(struct img *img, void *buf, uint64_t off, size_t len)
{
    /* off and len may come from a client (checked below: -EINVAL); the
     * buffer is ours. */
    assert(img && (buf || len == 0));
    uint64_t size = img_virtual_size(img);
    if (off > size || len > size - off)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (img->q)
        return qcow2_read(img->q, buf, off, len);
    return raw_read(img->st, img->raw, buf, off, len);
}

int img_write(struct img *img, const void *buf, uint64_t off, size_t len)
{
    assert(img && (buf || len == 0));
    uint64_t size = img_virtual_size(img);
    if (!img->rw)
        return -EROFS;
    if (off > size || len > size - off)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (img->q)
        return qcow2_write(img->q, buf, off, len);
    return img->st->ops->pwrite(img->raw, buf, len, off);
}

int img_write_copy(struct img *img, uint64_t off, uint64_t len,
                   struct img *src, uint64_t src_off)
{
    assert(img && src);
    uint64_t size = img_virtual_size(img);
    if (!img->rw)
        return -EROFS;
    if (off > size || len > size - off)
        return -EINVAL;
    if (src->st != img->st)
        return -EXDEV;
    if (len == 0)
        return 0;
    struct gvm_file *sf = src->q ? src->q->file : src->raw;
    if (img->q)
        return qcow2_write_copy(img->q, sf, src_off, off, len);
    return store_copy(img->st, sf, src_off, img->raw, off, len);
}

int img_write_zeroes(struct img *img, uint64_t off, uint64_t len)
{
    assert(img);
    uint64_t size = img_virtual_size(img);
    if (!img->rw)
        return -EROFS;
    if (off > size || len > size - off)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (img->q)
        return qcow2_write_zeroes(img->q, off, len);
    int r = img->st->ops->punch(img->raw, off, len);
    if (r != -EOPNOTSUPP)
        return r;
    size_t chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
    _cleanup_free_ void *z = calloc(1, chunk);
    if (!z)
        return -ENOMEM;
    while (len > 0) {
        size_t n = len < chunk ? (size_t)len : chunk;
        r = img->st->ops->pwrite(img->raw, z, n, off);
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}

int img_flush(struct img *img)
{
    assert(img);
    if (!img->rw)
        return 0;
    if (img->q)
        return qcow2_flush(img->q);
    return img->st->ops->flush(img->raw);
}

int img_resize(struct img *img, uint64_t new_size)
{
    int r;

    assert(img);
    if (!img->rw)
        return -EROFS;
    if (img->q)
        return qcow2_resize(img->q, new_size);
    r = raw_resize(img->st, img->raw, img->raw_size, new_size);
    if (r == 0)
        img->raw_size = new_size;
    return r;
}

const char *img_corrupt_message(const struct img *img)
{
    for (; img; img = img->backing)
        if (img->q && img->q->corrupt_msg[0])
            return img->q->corrupt_msg;
    return NULL;
}

/* ---- map ------------------------------------------------------------------------ */

#define ST_DATA   0x1
#define ST_ZERO   0x2
#define ST_ALLOC  0x4
#define ST_OFFSET 0x8

/* Status of a host file range the way QEMU's file driver reports it:
 * ST_DATA or ST_ZERO (holes, and the part past the end of the file), *n
 * shrunk to the run; *eof when the run ends at the end of the file.  A store
 * that cannot seek holes reports everything as data. */
static unsigned file_status(struct gvm_store *st, struct gvm_file *f,
                            uint64_t fsize, uint64_t off, uint64_t *n, bool *eof)
{
    *eof = false;
    if (off >= fsize) {
        *eof = true;
        *n = 0;
        return 0;
    }
    if (*n > fsize - off)
        *n = fsize - off;
    unsigned res = ST_DATA;
    if (st->ops->seek_hole) {
        uint64_t data, hole;
        int r = st->ops->seek_hole(f, off, false, &data);
        if (r == -ENXIO) {
            res = ST_ZERO;                  /* trailing hole */
        } else if (r == 0 && data > off) {
            res = ST_ZERO;
            if (data - off < *n)
                *n = data - off;
        } else if (r == 0 && st->ops->seek_hole(f, off, true, &hole) == 0 &&
                   hole > off && hole - off < *n) {
            *n = hole - off;
        }
    }
    if (off + *n == fsize)
        *eof = true;
    return res;
}

/* QEMU looks below a qcow2 image's data clusters into the file (to report
 * holes as zeros) only when it decides the image was created with metadata
 * preallocation: when at least max(10/9 of the allocated clusters,
 * allocated + 2) host clusters have a refcount.  Same heuristic, decided
 * once per image. */
static bool meta_prealloc(struct img *l)
{
    struct qcow2 *q = l->q;
    if (l->prealloc_checked)
        return l->prealloc;
    l->prealloc_checked = true;
    l->prealloc = false;
    if (!l->st->ops->seek_hole)
        return false;
    struct gvm_stat stt;
    uint64_t fsize;
    if (l->st->ops->stat(l->st, l->path, &stt) < 0 ||
        l->st->ops->getsize(q->file, &fsize) < 0)
        return false;
    uint64_t real = stt.allocated / q->cluster_size;
    uint64_t threshold = real * 10 / 9 > real + 2 ? real * 10 / 9 : real + 2;
    uint64_t end = (fsize + q->cluster_size - 1) / q->cluster_size, count = 0;
    for (uint64_t i = 0; i < end && count < threshold; i++) {
        uint64_t rc;
        if (qcow2_refcount_get(q, i * q->cluster_size, &rc) < 0)
            return false;
        count += rc != 0;
    }
    l->prealloc = count >= threshold;
    return l->prealloc;
}

/* Status of one layer at off, the way QEMU's block layer reports it for
 * `qemu-img map`: *n is shrunk to the run's length. */
static int layer_status(struct img *l, uint64_t off, uint64_t *n, unsigned *st,
                        uint64_t *map)
{
    uint64_t size = img_virtual_size(l);
    *st = 0;
    *map = 0;
    if (off >= size)
        return -EINVAL;
    if (*n > size - off)
        *n = size - off;
    if (!l->q) {
        /* Raw: the file's data and holes, like QEMU's file driver. */
        bool eof;
        uint64_t fsize = l->raw_size;
        *st = file_status(l->st, l->raw, fsize, off, n, &eof) | ST_ALLOC | ST_OFFSET;
        *map = off;
        return 0;
    }
    struct qcow2_mapping m;
    int r = qcow2_block_status(l->q, off, *n, &m);
    if (r < 0)
        return r;
    *n = m.bytes;
    switch (m.type) {
    case QCOW2_C_NORMAL:
        *st = ST_DATA | ST_ALLOC | ST_OFFSET;
        *map = m.host_offset;
        if (meta_prealloc(l)) {
            uint64_t fn = *n, fsize;
            bool eof;
            if (l->st->ops->getsize(l->q->file, &fsize) < 0)
                break;
            unsigned fs = file_status(l->st, l->q->file, fsize, m.host_offset, &fn, &eof);
            if (eof && (fn == 0 || (fs & ST_ZERO))) {
                *st |= ST_ZERO;     /* past the end of the file reads zeros */
            } else {
                *n = fn;
                *st |= fs & ST_ZERO;
            }
        }
        break;
    case QCOW2_C_ZERO_ALLOC:
        *st = ST_ZERO | ST_ALLOC | ST_OFFSET;
        *map = m.host_offset;
        break;
    case QCOW2_C_ZERO_PLAIN:
        *st = ST_ZERO | ST_ALLOC;
        break;
    case QCOW2_C_COMPRESSED:
        *st = ST_DATA | ST_ALLOC;
        break;
    case QCOW2_C_UNALLOCATED:
        /* Unallocated reads as zeros when nothing is below, or when the
         * backing file ends before this offset. */
        if (!l->backing || off >= img_virtual_size(l->backing))
            *st = ST_ZERO;
        break;
    }
    return 0;
}

static bool mergeable(const struct img_extent *a, const struct img_extent *b)
{
    if (a->length == 0)
        return false;
    if (a->zero != b->zero || a->data != b->data || a->depth != b->depth ||
        a->present != b->present || a->has_offset != b->has_offset)
        return false;
    if (a->has_offset && a->offset + a->length != b->offset)
        return false;
    return true;
}

int img_map(struct img *img, uint64_t off, uint64_t len,
            struct img_extent **exts, size_t *n)
{
    uint64_t size = img_virtual_size(img);
    struct img_extent *v = NULL, cur;
    size_t nv = 0, cap = 0;
    int r;

    assert(img && exts && n);
    *exts = NULL;
    *n = 0;
    if (off > size)
        return -EINVAL;
    uint64_t end = len > size - off ? size : off + len;
    memset(&cur, 0, sizeof(cur));
    cur.start = off;
    while (cur.start + cur.length < end) {
        uint64_t pos = cur.start + cur.length;
        uint64_t cnt = end - pos;
        struct img *l = img;
        int depth = 0;
        unsigned st;
        uint64_t map;
        for (;;) {
            r = layer_status(l, pos, &cnt, &st, &map);
            if (r < 0) {
                free(v);
                return r;
            }
            if (st & (ST_DATA | ST_ZERO))
                break;
            if (!l->backing)
                break;
            l = l->backing;
            depth++;
        }
        struct img_extent next = {
            .start = pos, .length = cnt,
            .data = st & ST_DATA, .zero = st & ST_ZERO,
            .present = st & ST_ALLOC, .depth = depth,
            .has_offset = st & ST_OFFSET, .offset = map,
        };
        if (mergeable(&cur, &next)) {
            cur.length += next.length;
            continue;
        }
        if (cur.length > 0) {
            if (nv == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct img_extent *nvp = realloc(v, nc * sizeof(*v));
                if (!nvp) {
                    free(v);
                    return -ENOMEM;
                }
                v = nvp;
                cap = nc;
            }
            v[nv++] = cur;
        }
        cur = next;
    }
    if (cur.length > 0) {
        if (nv == cap) {
            struct img_extent *nvp = realloc(v, (cap + 1) * sizeof(*v));
            if (!nvp) {
                free(v);
                return -ENOMEM;
            }
            v = nvp;
        }
        v[nv++] = cur;
    }
    *exts = v;
    *n = nv;
    return 0;
}

/* ---- metadata changes ----------------------------------------------------------- */

int img_set_backing(struct img *img, const char *name, const char *fmt,
                    struct gvm_error *err)
{
    /* name and fmt are a client's (rebase): qcow2_set_backing checks them. */
    assert(img);
    if (!img->q) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "Image '%s' is raw and cannot have a backing file.", img->path);
        return -ENOTSUP;
    }
    if (!img->rw) {
        gvm_error_set(err, GVM_ERR_INTERNAL,
                      "Image '%s' was not opened for writing.", img->path);
        return -EROFS;
    }
    return qcow2_set_backing(img->q, name, fmt, err);
}

int img_create(struct gvm_store *st, const char *path,
               const struct img_create_opts *o, const struct img_resolver *res,
               struct gvm_error *err)
{
    assert(st && path && o);
    assert(o->format == IMG_FMT_RAW || o->format == IMG_FMT_QCOW2);
    uint64_t size = o->size;
    int r;

    if (o->format == IMG_FMT_RAW) {
        if (o->backing_name) {
            gvm_error_param(err, "backing", "A raw image cannot have a backing file.");
            return -EINVAL;
        }
        return raw_create(st, path, size, err);
    }
    if (o->backing_name && !o->backing_format) {
        gvm_error_param(err, "backing-format",
                        "Creating '%s' over backing file '%s' needs the backing"
                        " file's format (formats are never probed).", path,
                        o->backing_name);
        return -EINVAL;
    }
    if (o->backing_name) {
        enum img_format bf;
        if (img_format_parse(o->backing_format, &bf) < 0) {
            gvm_error_param(err, "backing-format",
                            "Backing format '%s' is not raw or qcow2.", o->backing_format);
            return -EINVAL;
        }
        if (size == 0) {
            struct gvm_store *bst;
            _cleanup_free_ char *bpath = NULL;
            r = resolve(res, st, path, o->backing_name, &bst, &bpath, err);
            if (r < 0)
                return r;
            struct img *b;
            r = img_open(bst, bpath, bf, IMG_OPEN_NOBACKING, res, 0, &b, err);
            if (r < 0)
                return r;
            size = img_virtual_size(b);
            img_close(b);
        }
    } else if (size == 0 && o->size == 0) {
        /* a zero-sized qcow2 is legal; nothing to look up */
    }
    return qcow2_create(st, path, o, size, err);
}

int img_check(struct img *img, unsigned repair, struct img_check_result *res,
              struct gvm_error *err)
{
    /* IMG_REPAIR_ALL includes the leaks (rpc-image.c passes both). */
    assert(img && res);
    assert((repair & ~(unsigned)(IMG_REPAIR_LEAKS | IMG_REPAIR_ALL)) == 0);
    memset(res, 0, sizeof(*res));
    if (!img->q)
        return 0;
    if (repair && !img->rw) {
        gvm_error_set(err, GVM_ERR_INTERNAL,
                      "Image '%s' must be opened for writing to be repaired.",
                      img->path);
        return -EROFS;
    }
    return qcow2_check(img->q, repair, res, err);
}
