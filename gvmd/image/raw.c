/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * raw.c — raw images: the file is the guest disk.  Reads past the end of
 * the file return zeros, so a file truncated behind our back cannot make a
 * read fail half way; creation makes a sparse file of the asked size.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "qcow2.h"

int raw_read(struct gvm_store *st, struct gvm_file *f, void *buf, uint64_t off,
             size_t len)
{
    assert(st && f && (buf || len == 0));
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t r = st->ops->pread(f, p, len, off);
        if (r < 0)
            return (int)r;
        if (r == 0) {
            memset(p, 0, len);
            return 0;
        }
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

int raw_create(struct gvm_store *st, const char *path, uint64_t size,
               struct gvm_error *err)
{
    assert(st && path);
    struct gvm_file *f;
    int r = st->ops->open(st, path, GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &f);
    if (r == -EEXIST) {
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "Image '%s' already exists.", path);
        return r;
    }
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Cannot create '%s'", path);
        return r;
    }
    /* Written under the write lock (image-lock.c), like every write. */
    struct img_lock *lk = NULL;
    r = img_lock_take(st, path, true, NULL, &lk, err);
    if (r == 0)
        r = st->ops->truncate(f, size);
    if (r == 0)
        r = st->ops->flush(f);
    st->ops->close(f);
    img_lock_drop(lk);
    if (r < 0) {
        st->ops->unlink(st, path);
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r,
                            "Cannot set the size of new image '%s'", path);
    }
    return r;
}

int raw_resize(struct gvm_store *st, struct gvm_file *f, uint64_t cur,
               uint64_t new_size)
{
    assert(st && f);
    int r;

    if (new_size < cur)
        return -ENOTSUP;
    if (new_size == cur)
        return 0;
    /* Extending a file reads back as zeros (sparse where the store can). */
    r = st->ops->truncate(f, new_size);
    if (r == 0)
        r = st->ops->flush(f);
    return r;
}
