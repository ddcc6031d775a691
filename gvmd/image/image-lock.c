/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-lock.c — the image locks gvmd holds, compatible with QEMU's
 * (store.h, ->lock): whoever holds an image, gvmd or a QEMU, the other
 * refuses to write it.
 *
 * Modes (QEMU's permission bits, see store.h for the bytes):
 *   write  consistent-read + write + resize, sharing neither write nor
 *          resize: what `qemu-img commit` or a running guest's top image
 *          takes.  Refused while anyone else uses or refuses write or
 *          resize (a qemu-io or a guest with the image open read-write,
 *          a guest reading it as a backing file).
 *   read   consistent-read, sharing everything, like `qemu-img -U`.  gvmd
 *          reads images running guests use (image-info, the live path's
 *          header reads, chain-audit): such a read must neither fail nor
 *          stop the guest from doing anything, so it refuses nobody.
 *          It fails only where QEMU refuses to share consistent reads
 *          (the target of a drive-mirror that is not a backing file).
 *
 * One lock file per image and process.  The locks belong to an open file
 * (OFD semantics), so two opens of one image in gvmd would refuse each
 * other as two processes do; yet gvmd legitimately has an image open
 * several times at once (a commit's base read as part of top's chain and
 * written as the target; a job holding its images across the opens of
 * its steps).  So the holders of one image share one extra open file
 * that carries the locks, in the strongest mode any of them needs, and
 * is closed, dropping the locks, when the last holder lets go.  The table
 * of those files is process-wide state by nature: it stands for this
 * process in the kernel's (or the bricks') lock table, whichever volume
 * or daemon structure asked.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

struct lock_file {
    struct gvm_store *st;       /* borrowed: holders keep it alive */
    char *path;
    struct gvm_file *f;         /* NULL: the store cannot lock */
    unsigned nread, nwrite;     /* holders per mode */
    struct lock_file *next;
};

struct img_lock {
    struct lock_file *lf;
    bool write;
};

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lock_file *table;

#define READ_PERM     GVM_PERM_CONSISTENT_READ
#define READ_UNSHARED 0u
#define WRITE_PERM    (GVM_PERM_CONSISTENT_READ | GVM_PERM_WRITE | GVM_PERM_RESIZE)
#define WRITE_UNSHARED (GVM_PERM_WRITE | GVM_PERM_RESIZE)

static const char *perm_name(unsigned bit)
{
    switch (bit) {
    case GVM_PERM_CONSISTENT_READ: return "consistent read";
    case GVM_PERM_WRITE:           return "write";
    case GVM_PERM_WRITE_UNCHANGED: return "write unchanged";
    case GVM_PERM_RESIZE:          return "resize";
    default:                       return "image";
    }
}

/* Lock lf in the mode its holders need (with one more of `write`'s). */
static int apply(struct lock_file *lf, bool write, const char *name,
                 struct gvm_error *err)
{
    unsigned conflict = 0;
    int r;

    if (!lf->f)
        return 0;
    r = lf->st->ops->lock(lf->f, write ? WRITE_PERM : READ_PERM,
                          write ? WRITE_UNSHARED : READ_UNSHARED, &conflict);
    if (r == -EAGAIN) {
        gvm_error_set(err, GVM_ERR_IN_USE, "A process holds a %s lock on %s "
                      "(QEMU or another program has the image open); gvmd "
                      "does not %s an image someone else holds: stop that "
                      "program, or use the live path for a running guest.",
                      perm_name(conflict), name,
                      write ? "write" : "read");
        return r;
    }
    if (r == -EOPNOTSUPP || r == -ENOSYS) {
        /* A file system without byte-range locks: nothing to hold. */
        lf->st->ops->close(lf->f);
        lf->f = NULL;
        return 0;
    }
    if (r < 0)
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r, "Cannot lock the image "
                            "%s", name);
    return r;
}

static void free_lock_file(struct lock_file *lf)
{
    if (lf->f)
        lf->st->ops->close(lf->f);
    free(lf->path);
    free(lf);
}

int img_lock_take(struct gvm_store *st, const char *path, bool write,
                  const char *name, struct img_lock **out,
                  struct gvm_error *err)
{
    assert(st && path && out);
    _cleanup_free_ char *quoted = NULL;
    struct lock_file *lf;
    struct img_lock *lk;
    int r = 0;

    *out = NULL;
    if (!st->ops->lock)
        return 0;
    if (!name) {
        size_t n = strlen(path) + 3;
        quoted = malloc(n);
        if (quoted)
            snprintf(quoted, n, "'%s'", path);
        name = quoted ? quoted : path;
    }
    lk = calloc(1, sizeof(*lk));
    if (!lk) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -ENOMEM;
    }
    lk->write = write;

    GVM_LOCK_GUARD(&table_mu);
    for (lf = table; lf; lf = lf->next)
        if (lf->st == st && strcmp(lf->path, path) == 0)
            break;
    if (!lf) {
        lf = calloc(1, sizeof(*lf));
        if (!lf || !(lf->path = strdup(path))) {
            free(lf);
            free(lk);
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
            return -ENOMEM;
        }
        lf->st = st;
        r = st->ops->open(st, path, GVM_O_RDONLY, &lf->f);
        if (r == 0)
            r = apply(lf, write, name, err);
        else if (r == -ENOENT)
            gvm_error_set(err, GVM_ERR_NOT_FOUND, "Image %s does not exist.",
                          name);
        else
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "Cannot open the image %s to lock it", name);
        if (r < 0) {
            free_lock_file(lf);
            free(lk);
            return r;
        }
        lf->next = table;
        table = lf;
    } else if (write && lf->nwrite == 0) {
        /* Upgrade the shared file to the write mode. */
        r = apply(lf, true, name, err);
        if (r < 0) {
            free(lk);
            return r;
        }
    }
    if (write)
        lf->nwrite++;
    else
        lf->nread++;
    lk->lf = lf;
    *out = lk;
    return 0;
}

void img_lock_drop(struct img_lock *lk)
{
    struct lock_file *lf, **pp;

    if (!lk)
        return;
    lf = lk->lf;
    GVM_LOCK_GUARD(&table_mu);
    if (lk->write)
        lf->nwrite--;
    else
        lf->nread--;
    if (lf->nwrite == 0 && lf->nread == 0) {
        for (pp = &table; *pp; pp = &(*pp)->next) {
            if (*pp == lf) {
                *pp = lf->next;
                break;
            }
        }
        free_lock_file(lf);     /* closing the file drops its locks */
    } else if (lk->write && lf->nwrite == 0) {
        /* Back to what the readers left need; only unlocks, so it does
         * not fail for a conflict, and a failure keeps the stronger
         * locks, which is safe. */
        (void)apply(lf, false, lf->path, NULL);
    }
    free(lk);
}
