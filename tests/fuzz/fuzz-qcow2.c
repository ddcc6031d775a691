/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-qcow2.c — libFuzzer target for the qcow2 reader.
 *
 * The input bytes become the only file of a read-only, memory-backed
 * gvm_store; every path of that store reads the same bytes, so a backing
 * file name in the header leads back to the image itself, which exercises
 * the chain's loop and depth checks as well as the header, extension,
 * L1/L2, refcount and snapshot table parsing.  For each input:
 *   img_open (with its chain, then without if that fails), img_get_info,
 *   img_map over the whole disk, a few img_read calls, img_check without
 *   repair.
 * Nothing is written: an engine that tries to write to a read-only image
 * gets -EROFS, which is a finding only if it crashes.
 *
 * Built and run by tests/fuzz/run.sh (clang, -fsanitize=fuzzer,address,
 * undefined).  Errors are expected and ignored; crashes, leaks, undefined
 * behaviour and timeouts are what libFuzzer reports.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "store.h"

/* ---- a read-only store over one buffer -------------------------------- */

struct memstore {
    const uint8_t *data;
    size_t size;
};

struct gvm_file {
    struct memstore *ms;
};

static int mem_open(struct gvm_store *st, const char *path, int flags,
                    struct gvm_file **out)
{
    struct gvm_file *f;

    (void)path;
    if (flags & (GVM_O_RDWR | GVM_O_CREAT | GVM_O_TRUNC))
        return -EROFS;
    f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->ms = st->priv;
    *out = f;
    return 0;
}

static void mem_close(struct gvm_file *f)
{
    free(f);
}

static ssize_t mem_pread(struct gvm_file *f, void *buf, size_t len,
                         uint64_t off)
{
    const struct memstore *ms = f->ms;

    if (off >= ms->size)
        return 0;
    if (len > ms->size - off)
        len = ms->size - off;
    memcpy(buf, ms->data + off, len);
    return (ssize_t)len;
}

static int mem_pwrite(struct gvm_file *f, const void *buf, size_t len,
                      uint64_t off)
{
    (void)f; (void)buf; (void)len; (void)off;
    return -EROFS;
}

static int mem_flush(struct gvm_file *f)
{
    (void)f;
    return 0;
}

static int mem_getsize(struct gvm_file *f, uint64_t *size)
{
    *size = f->ms->size;
    return 0;
}

static int mem_truncate(struct gvm_file *f, uint64_t size)
{
    (void)f; (void)size;
    return -EROFS;
}

static int mem_punch(struct gvm_file *f, uint64_t off, uint64_t len)
{
    (void)f; (void)off; (void)len;
    return -EROFS;
}

static ssize_t mem_copy_range(struct gvm_file *in, uint64_t off_in,
                              struct gvm_file *out, uint64_t off_out,
                              size_t len)
{
    (void)in; (void)off_in; (void)out; (void)off_out; (void)len;
    return -EROFS;
}

static int mem_stat(struct gvm_store *st, const char *path,
                    struct gvm_stat *out)
{
    const struct memstore *ms = st->priv;

    (void)path;
    memset(out, 0, sizeof(*out));
    out->size = ms->size;
    out->allocated = ms->size;
    out->is_reg = true;
    return 0;
}

static int mem_unlink(struct gvm_store *st, const char *path)
{
    (void)st; (void)path;
    return -EROFS;
}

static int mem_rename(struct gvm_store *st, const char *from, const char *to)
{
    (void)st; (void)from; (void)to;
    return -EROFS;
}

static int mem_mkdir(struct gvm_store *st, const char *path)
{
    (void)st; (void)path;
    return -EROFS;
}

static int mem_statvfs(struct gvm_store *st, uint64_t *free_bytes,
                       uint64_t *total_bytes)
{
    const struct memstore *ms = st->priv;

    *free_bytes = 0;
    *total_bytes = ms->size;
    return 0;
}

static void mem_destroy(struct gvm_store *st)
{
    (void)st;   /* lives on the caller's stack */
}

static const struct gvm_store_ops mem_ops = {
    .name = "fuzz-memory",
    .open = mem_open,
    .close = mem_close,
    .pread = mem_pread,
    .pwrite = mem_pwrite,
    .flush = mem_flush,
    .getsize = mem_getsize,
    .truncate = mem_truncate,
    .punch = mem_punch,
    .copy_range = mem_copy_range,
    .stat = mem_stat,
    .unlink = mem_unlink,
    .rename = mem_rename,
    .mkdir = mem_mkdir,
    .statvfs = mem_statvfs,
    .destroy = mem_destroy,
};

/* ---- the target ------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads are capped so a huge claimed virtual size costs no time. */
#define READ_LEN (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct memstore ms = { data, size };
    struct gvm_store st = { &mem_ops, &ms };
    struct gvm_error err = { 0 };
    struct img *img = NULL;
    int r;

    /* With the chain first (backing names resolve to this same buffer, so
     * loops and depth limits are exercised), a shallow limit keeping each
     * run fast; then the top layer alone if the chain does not open. */
    r = img_open(&st, "fuzz.qcow2", IMG_FMT_QCOW2, 0, NULL, 4, &img, &err);
    if (r < 0) {
        gvm_error_clear(&err);
        r = img_open(&st, "fuzz.qcow2", IMG_FMT_QCOW2, IMG_OPEN_NOBACKING,
                     NULL, 1, &img, &err);
    }
    if (r < 0)
        return 0;

    struct img_info info = { 0 };
    if (img_get_info(img, &info) == 0)
        img_info_clear(&info);

    uint64_t vsize = img_virtual_size(img);

    /* The whole disk's map: bounded by the L1 size the header may claim,
     * which the engine validates against the file. */
    struct img_extent *exts = NULL;
    size_t n = 0;
    if (img_map(img, 0, vsize, &exts, &n) == 0 && n > 0) {
        /* Read the start of a few extents, data ones first. */
        uint8_t *buf = malloc(READ_LEN);
        size_t reads = 0;
        for (size_t i = 0; buf && i < n && reads < 4; i++) {
            uint64_t len = exts[i].length < READ_LEN ? exts[i].length : READ_LEN;
            if (len == 0 || (!exts[i].data && reads > 0))
                continue;
            (void)img_read(img, buf, exts[i].start, (size_t)len);
            reads++;
        }
        /* and a read straddling the end of the disk */
        if (buf && vsize >= 512)
            (void)img_read(img, buf, vsize - 512, 512);
        free(buf);
    }
    free(exts);

    /* A read at offset 0 even when the map failed. */
    if (vsize > 0) {
        uint8_t small[4096];
        (void)img_read(img, small, 0, vsize < sizeof(small) ? (size_t)vsize
                                                             : sizeof(small));
    }

    struct img_check_result res = { 0 };
    gvm_error_clear(&err);
    (void)img_check(img, 0, &res, &err);

    img_close(img);
    return 0;
}
