/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store-faulty.c — a test-only store that wraps another store and fails, or
 * stops the whole process, at the Nth write or flush.
 *
 * It exists so that crash safety can be tested deterministically: the
 * journal promises that gvmd killed at any moment recovers to a consistent
 * state, and "any moment" is only testable if a test can choose the moment.
 *
 * Spec (GVMD_FAULT, read once by volume code when it opens a volume):
 *   RULE[,RULE...]     RULE = OP:N:ACTION
 *   OP     "write"  every call that modifies data: pwrite, copy_range,
 *                   punch and truncate, counted together, 1-based, over the
 *                   whole store (all files) from the moment it was wrapped;
 *          "flush"  flush calls, counted the same way;
 *          "step"   a named journal step, handled by journal_fault_point()
 *                   (ignored here, so one variable can carry both kinds).
 *   N      the count at which the rule fires (for "step": the step name).
 *   ACTION "fail"   that one call returns -EIO without touching storage;
 *          "kill"   the process raises SIGKILL before the call reaches
 *                   storage, exactly like `kill -9` at that instant (no
 *                   atexit handlers, no flush of anything);
 *          "delayMS" (step rules only) sleep MS milliseconds there.
 * Counting is per wrapped store: each volume counts its own writes.
 * Example: GVMD_FAULT=write:7:kill,step:switch-header:kill
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "store.h"

#define MAX_RULES 16

enum fault_op { FAULT_WRITE, FAULT_FLUSH };
enum fault_action { FAULT_FAIL, FAULT_KILL };

struct rule {
    enum fault_op op;
    uint64_t n;
    enum fault_action action;
};

struct faulty {
    struct gvm_store *inner;
    struct rule rules[MAX_RULES];
    size_t nrules;
    _Atomic uint64_t writes, flushes;
};

/* Our file wraps the inner store's file.  It is handed out as a
 * struct gvm_file pointer and only ever dereferenced here, as this type. */
struct faulty_file {
    struct faulty *fs;
    struct gvm_file *inner;
};

static struct faulty_file *ff(struct gvm_file *f) { return (struct faulty_file *)f; }

/* Count one operation of kind op; 0 to go on, -EIO to fail it, or no
 * return at all. */
static int tick(struct faulty *fs, enum fault_op op)
{
    uint64_t n = op == FAULT_WRITE ? atomic_fetch_add(&fs->writes, 1) + 1
                                   : atomic_fetch_add(&fs->flushes, 1) + 1;

    for (size_t i = 0; i < fs->nrules; i++) {
        if (fs->rules[i].op != op || fs->rules[i].n != n)
            continue;
        if (fs->rules[i].action == FAULT_KILL) {
            /* Say why on stderr so a test log explains the death; a raw
             * write(2), since stdio may hold locks of other threads. */
            char msg[96];
            int len = snprintf(msg, sizeof(msg),
                               "gvmd: GVMD_FAULT: killed at %s %llu\n",
                               op == FAULT_WRITE ? "write" : "flush",
                               (unsigned long long)n);
            ssize_t w = len > 0 ? write(STDERR_FILENO, msg, (size_t)len) : 0;
            (void)w;    /* about to die anyway: nothing to do on failure */
            raise(SIGKILL);
            _exit(137);
        }
        return -EIO;
    }
    return 0;
}

static int f_open(struct gvm_store *st, const char *path, int flags,
                  struct gvm_file **out)
{
    struct faulty *fs = st->priv;
    struct faulty_file *f = calloc(1, sizeof(*f));
    int r;

    if (!f)
        return -ENOMEM;
    /* Creating or truncating a file modifies storage too. */
    if (flags & (GVM_O_CREAT | GVM_O_TRUNC)) {
        r = tick(fs, FAULT_WRITE);
        if (r < 0) {
            free(f);
            return r;
        }
    }
    r = fs->inner->ops->open(fs->inner, path, flags, &f->inner);
    if (r < 0) {
        free(f);
        return r;
    }
    f->fs = fs;
    *out = (struct gvm_file *)f;
    return 0;
}

static void f_close(struct gvm_file *file)
{
    struct faulty_file *f = ff(file);

    f->fs->inner->ops->close(f->inner);
    free(f);
}

static ssize_t f_pread(struct gvm_file *file, void *buf, size_t len, uint64_t off)
{
    struct faulty_file *f = ff(file);

    return f->fs->inner->ops->pread(f->inner, buf, len, off);
}

static int f_pwrite(struct gvm_file *file, const void *buf, size_t len,
                    uint64_t off)
{
    struct faulty_file *f = ff(file);
    int r = tick(f->fs, FAULT_WRITE);

    return r < 0 ? r : f->fs->inner->ops->pwrite(f->inner, buf, len, off);
}

static int f_flush(struct gvm_file *file)
{
    struct faulty_file *f = ff(file);
    int r = tick(f->fs, FAULT_FLUSH);

    return r < 0 ? r : f->fs->inner->ops->flush(f->inner);
}

static int f_getsize(struct gvm_file *file, uint64_t *size)
{
    struct faulty_file *f = ff(file);

    return f->fs->inner->ops->getsize(f->inner, size);
}

static int f_truncate(struct gvm_file *file, uint64_t size)
{
    struct faulty_file *f = ff(file);
    int r = tick(f->fs, FAULT_WRITE);

    return r < 0 ? r : f->fs->inner->ops->truncate(f->inner, size);
}

static int f_punch(struct gvm_file *file, uint64_t off, uint64_t len)
{
    struct faulty_file *f = ff(file);
    int r;

    if (!f->fs->inner->ops->punch)
        return -EOPNOTSUPP;
    r = tick(f->fs, FAULT_WRITE);
    return r < 0 ? r : f->fs->inner->ops->punch(f->inner, off, len);
}

static ssize_t f_copy_range(struct gvm_file *in, uint64_t off_in,
                            struct gvm_file *out, uint64_t off_out, size_t len)
{
    struct faulty_file *fi = ff(in), *fo = ff(out);
    int r;

    if (!fo->fs->inner->ops->copy_range || fi->fs != fo->fs)
        return -EOPNOTSUPP;
    r = tick(fo->fs, FAULT_WRITE);
    if (r < 0)
        return r;
    return fo->fs->inner->ops->copy_range(fi->inner, off_in, fo->inner,
                                          off_out, len);
}

static int f_stat(struct gvm_store *st, const char *path, struct gvm_stat *out)
{
    struct faulty *fs = st->priv;

    return fs->inner->ops->stat(fs->inner, path, out);
}

static int f_unlink(struct gvm_store *st, const char *path)
{
    struct faulty *fs = st->priv;
    int r = tick(fs, FAULT_WRITE);

    return r < 0 ? r : fs->inner->ops->unlink(fs->inner, path);
}

static int f_rename(struct gvm_store *st, const char *from, const char *to)
{
    struct faulty *fs = st->priv;
    int r = tick(fs, FAULT_WRITE);

    return r < 0 ? r : fs->inner->ops->rename(fs->inner, from, to);
}

static int f_mkdir(struct gvm_store *st, const char *path)
{
    struct faulty *fs = st->priv;

    return fs->inner->ops->mkdir(fs->inner, path);
}

static int f_statvfs(struct gvm_store *st, uint64_t *free_bytes,
                     uint64_t *total_bytes)
{
    struct faulty *fs = st->priv;

    return fs->inner->ops->statvfs(fs->inner, free_bytes, total_bytes);
}

static void f_destroy(struct gvm_store *st)
{
    struct faulty *fs = st->priv;

    gvm_store_destroy(fs->inner);
    free(fs);
    free(st);
}

static void f_abandon(struct gvm_store *st)
{
    struct faulty *fs = st->priv;

    if (fs->inner->ops->abandon)
        fs->inner->ops->abandon(fs->inner);
    else
        gvm_store_destroy(fs->inner);
    free(fs);
    free(st);
}

/* Listing is a read: never faulted. */
static int f_list(struct gvm_store *st, const char *dir, size_t max,
                  char ***names, size_t *n, bool *more)
{
    struct faulty *fs = st->priv;

    *names = NULL;
    *n = 0;
    *more = false;
    if (!fs->inner->ops->list)
        return -EOPNOTSUPP;
    return fs->inner->ops->list(fs->inner, dir, max, names, n, more);
}

/* Reads are never faulted: pass hole queries straight through. */
static int f_physical(struct gvm_store *st, const char *path, char **out)
{
    struct faulty *fs = st->priv;

    if (!fs->inner->ops->physical)
        return -EOPNOTSUPP;
    return fs->inner->ops->physical(fs->inner, path, out);
}

static int f_volfile(struct gvm_store *st, char **out)
{
    struct faulty *fs = st->priv;

    if (!fs->inner->ops->volfile)
        return -ENODATA;
    return fs->inner->ops->volfile(fs->inner, out);
}

static int f_seek_hole(struct gvm_file *f, uint64_t off, bool hole,
                       uint64_t *out)
{
    struct faulty_file *file = ff(f);
    const struct gvm_store_ops *ops = file->fs->inner->ops;

    if (!ops->seek_hole)
        return -EOPNOTSUPP;
    return ops->seek_hole(file->inner, off, hole, out);
}

/* Locks are not faulted either: the inner store's, on the inner file. */
static int f_lock(struct gvm_file *f, unsigned perm, unsigned unshared,
                  unsigned *conflict)
{
    struct faulty_file *file = ff(f);
    const struct gvm_store_ops *ops = file->fs->inner->ops;

    if (!ops->lock)
        return -EOPNOTSUPP;
    return ops->lock(file->inner, perm, unshared, conflict);
}

static const struct gvm_store_ops faulty_ops = {
    .name = "faulty",
    .open = f_open,
    .close = f_close,
    .pread = f_pread,
    .pwrite = f_pwrite,
    .flush = f_flush,
    .getsize = f_getsize,
    .truncate = f_truncate,
    .punch = f_punch,
    .copy_range = f_copy_range,
    .seek_hole = f_seek_hole,
    .lock = f_lock,
    .stat = f_stat,
    .unlink = f_unlink,
    .rename = f_rename,
    .mkdir = f_mkdir,
    .statvfs = f_statvfs,
    .list = f_list,
    .volfile = f_volfile,
    .physical = f_physical,
    .destroy = f_destroy,
    .abandon = f_abandon,
};

/* Parse one "OP:N:ACTION"; step rules are accepted and skipped. */
static int parse_rule(const char *s, size_t len, struct faulty *fs)
{
    char buf[128], *op, *n, *action, *end, *save = NULL;
    struct rule r;

    if (len == 0)
        return 0;
    if (len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    op = strtok_r(buf, ":", &save);
    n = strtok_r(NULL, ":", &save);
    action = strtok_r(NULL, ":", &save);
    if (!op || !n || !action || strtok_r(NULL, ":", &save))
        return -EINVAL;
    if (strcmp(op, "step") == 0)
        return 0;               /* journal_fault_point()'s business */
    if (strcmp(action, "fail") == 0)
        r.action = FAULT_FAIL;
    else if (strcmp(action, "kill") == 0)
        r.action = FAULT_KILL;
    else
        return -EINVAL;
    if (strcmp(op, "write") == 0)
        r.op = FAULT_WRITE;
    else if (strcmp(op, "flush") == 0)
        r.op = FAULT_FLUSH;
    else
        return -EINVAL;
    errno = 0;
    r.n = strtoull(n, &end, 10);
    if (errno || *end || r.n == 0 || n[0] == '-')
        return -EINVAL;
    if (fs->nrules >= MAX_RULES)
        return -E2BIG;
    fs->rules[fs->nrules++] = r;
    return 0;
}

int store_faulty_wrap(struct gvm_store *inner, const char *spec,
                      struct gvm_store **out)
{
    struct faulty *fs;
    struct gvm_store *st;
    const char *p = spec;
    int r;

    fs = calloc(1, sizeof(*fs));
    if (!fs)
        return -ENOMEM;
    while (p && *p) {
        size_t len = strcspn(p, ",");

        r = parse_rule(p, len, fs);
        if (r < 0) {
            free(fs);
            return r;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        free(fs);
        return -ENOMEM;
    }
    fs->inner = inner;
    st->ops = &faulty_ops;
    st->priv = fs;
    *out = st;
    return 0;
}

int store_faulty_wrap_env(struct gvm_store **st, struct gvm_error *err)
{
    const char *spec = getenv("GVMD_FAULT");
    struct gvm_store *w = NULL;
    int r;

    if (!spec || !*spec)
        return 0;
    r = store_faulty_wrap(*st, spec, &w);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_INTERNAL, r, "The test setting "
                            "GVMD_FAULT='%s' is not a valid fault list "
                            "(OP:N:ACTION, comma-separated)", spec);
        return -1;
    }
    *st = w;
    return 0;
}
