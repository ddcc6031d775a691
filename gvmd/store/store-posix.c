/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store-posix.c — the "dir" backend: a volume that is a local directory.
 *
 * Confinement: the store keeps an O_PATH descriptor of the root and resolves
 * every path with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so the
 * kernel refuses (-EXDEV) any resolution that would leave the root — an
 * absolute symlink, a ".." climbing out, a symlink to /proc/self/fd/...  —
 * while symlinks that stay inside keep working.  Operations on a name
 * (unlink, rename, mkdir, stat) first open the parent directory that way and
 * then act on the last component relative to that descriptor, so a symlinked
 * directory in the middle of a path cannot redirect them either.
 *
 * Durability: ->flush is fdatasync (which also covers size changes); the
 * operations that change a directory (create, unlink, rename, mkdir) fsync
 * that directory before returning, so a file that was reported created is
 * still there after a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "store.h"

struct posix_store {
    struct gvm_store pub;
    int rootfd;       /* O_PATH|O_DIRECTORY of the root */
    char *root;
};

struct gvm_file {
    int fd;
    unsigned held[2];   /* ->lock: permission / unshared bits locked */
};

#define RESOLVE_FLAGS (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)

/* glibc 2.36 has no openat2() wrapper: call the syscall. */
static int openat2_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)flags | O_CLOEXEC,
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_FLAGS,
    };
    long fd;
    do
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : (int)fd;
}

static struct posix_store *to_ps(struct gvm_store *st)
{
    return (struct posix_store *)st;
}

/* Open the directory holding path's last component (the root for a bare
 * name); *base points into path at that component. */
static int open_parent(struct posix_store *ps, const char *path,
                       const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *base = path;
        int fd = fcntl(ps->rootfd, F_DUPFD_CLOEXEC, 0);
        return fd < 0 ? -errno : fd;
    }
    *base = slash + 1;
    _cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
    if (!dir)
        return -ENOMEM;
    return openat2_beneath(ps->rootfd, dir, O_PATH | O_DIRECTORY, 0);
}

/* fsync a directory: needs a real (not O_PATH) descriptor. */
static int sync_dir_of(struct posix_store *ps, const char *path)
{
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *dir = slash ? strndup(path, (size_t)(slash - path))
                                     : strdup(".");
    if (!dir)
        return -ENOMEM;
    _cleanup_close_ int fd = openat2_beneath(ps->rootfd, dir,
                                             O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return fd;
    return fsync(fd) < 0 ? -errno : 0;
}

static bool bad_path(const char *path)
{
    /* The contract says callers pass checked paths; refuse the obvious
     * misuse anyway rather than touching the root itself. */
    return !path || !*path || path[0] == '/';
}

static int posix_open(struct gvm_store *st, const char *path, int flags,
                      struct gvm_file **out)
{
    struct posix_store *ps = to_ps(st);
    *out = NULL;
    if (bad_path(path))
        return -EINVAL;

    int oflags = (flags & GVM_O_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & GVM_O_CREAT)
        oflags |= O_CREAT;
    if (flags & GVM_O_EXCL)
        oflags |= O_EXCL;
    if (flags & GVM_O_TRUNC)
        oflags |= O_TRUNC;

    struct gvm_file *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    /* O_NONBLOCK: opening a FIFO would wait for a writer forever (and
     * hold a worker); it is refused below like every non-regular file. */
    f->fd = openat2_beneath(ps->rootfd, path, oflags | O_NONBLOCK, 0644);
    if (f->fd < 0) {
        int r = f->fd;
        free(f);
        return r;
    }
    struct stat sb;
    if (fstat(f->fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
        fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        int r = fstat(f->fd, &sb) < 0 ? -errno
              : S_ISDIR(sb.st_mode) ? -EISDIR
              : !S_ISREG(sb.st_mode) ? -ENODEV : -errno;
        close(f->fd);
        free(f);
        return r;
    }
    if (flags & GVM_O_CREAT) {
        int r = sync_dir_of(ps, path);
        if (r < 0) {
            close(f->fd);
            free(f);
            return r;
        }
    }
    *out = f;
    return 0;
}

static void posix_close(struct gvm_file *f)
{
    if (!f)
        return;
    close(f->fd);
    free(f);
}

static ssize_t posix_pread(struct gvm_file *f, void *buf, size_t len,
                           uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(f->fd, (char *)buf + done, len - done,
                          (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int posix_pwrite(struct gvm_file *f, const void *buf, size_t len,
                        uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pwrite(f->fd, (const char *)buf + done, len - done,
                           (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        done += (size_t)r;
    }
    return 0;
}

static int posix_flush(struct gvm_file *f)
{
    return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int posix_getsize(struct gvm_file *f, uint64_t *size)
{
    struct stat sb;
    if (fstat(f->fd, &sb) < 0)
        return -errno;
    *size = (uint64_t)sb.st_size;
    return 0;
}

static int posix_truncate(struct gvm_file *f, uint64_t size)
{
    if (size > INT64_MAX)
        return -EFBIG;
    return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
}

static int posix_punch(struct gvm_file *f, uint64_t off, uint64_t len)
{
    if (len == 0)
        return 0;
    if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  (off_t)off, (off_t)len) < 0)
        return errno == ENOSYS ? -EOPNOTSUPP : -errno;
    return 0;
}

/* Bytes per copy_file_range call: after each, the kernel is asked to start
 * writing them back (sync_file_range, a hint: durability still comes from
 * ->flush), so that the disk works while the next piece is copied instead
 * of everything waiting for the caller's flush; with the default dirty
 * ratios on a machine with a lot of memory, background writeback would not
 * start on its own before gigabytes are dirty. */
#define COPY_PIECE (64u << 20)

static ssize_t posix_copy_range(struct gvm_file *in, uint64_t off_in,
                                struct gvm_file *out, uint64_t off_out,
                                size_t len)
{
    size_t done = 0;
    while (done < len) {
        loff_t oi = (loff_t)(off_in + done), oo = (loff_t)(off_out + done);
        size_t want = len - done < COPY_PIECE ? len - done : COPY_PIECE;
        ssize_t r = copy_file_range(in->fd, &oi, out->fd, &oo, want, 0);
        if (r > 0)
            (void)sync_file_range(out->fd, (off64_t)(off_out + done), (off64_t)r,
                                  SYNC_FILE_RANGE_WRITE);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* Nothing copied yet and the kernel/file system cannot do it:
             * tell the caller to fall back. */
            if (done == 0 && (errno == EXDEV || errno == EOPNOTSUPP ||
                              errno == ENOSYS || errno == EINVAL))
                return -EOPNOTSUPP;
            return done ? (ssize_t)done : -errno;
        }
        if (r == 0)
            break;      /* source ended */
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int posix_seek_hole(struct gvm_file *f, uint64_t off, bool hole,
                           uint64_t *out)
{
    off_t r = lseek(f->fd, (off_t)off, hole ? SEEK_HOLE : SEEK_DATA);
    if (r < 0)
        return -errno;          /* ENXIO: no data at or after off */
    *out = (uint64_t)r;
    return 0;
}

/* Image locks: OFD locks, as QEMU takes them on a local file, so a QEMU
 * on the same host and gvmd see each other's. */
static int ofd_set(void *opaque, unsigned byte, bool lock)
{
    struct gvm_file *f = opaque;
    struct flock fl = { .l_type = lock ? F_RDLCK : F_UNLCK,
                        .l_whence = SEEK_SET, .l_start = byte, .l_len = 1 };

    return fcntl(f->fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

static int ofd_test(void *opaque, unsigned byte)
{
    struct gvm_file *f = opaque;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = byte, .l_len = 1 };

    if (fcntl(f->fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

static int posix_lock(struct gvm_file *f, unsigned perm, unsigned unshared,
                      unsigned *conflict)
{
    const struct store_lock_bytes b = { ofd_set, ofd_test, f };

    return store_lock_apply(&b, f->held, perm, unshared, conflict);
}

static int posix_stat(struct gvm_store *st, const char *path,
                      struct gvm_stat *out)
{
    struct posix_store *ps = to_ps(st);
    if (bad_path(path))
        return -EINVAL;
    _cleanup_close_ int fd = openat2_beneath(ps->rootfd, path, O_PATH, 0);
    if (fd < 0)
        return fd;
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return -errno;
    memset(out, 0, sizeof *out);
    out->size = (uint64_t)sb.st_size;
    out->allocated = (uint64_t)sb.st_blocks * 512;
    out->is_dir = S_ISDIR(sb.st_mode);
    out->is_reg = S_ISREG(sb.st_mode);
    return 0;
}

static int posix_unlink(struct gvm_store *st, const char *path)
{
    struct posix_store *ps = to_ps(st);
    const char *base;
    if (bad_path(path))
        return -EINVAL;
    _cleanup_close_ int dfd = open_parent(ps, path, &base);
    if (dfd < 0)
        return dfd;
    if (unlinkat(dfd, base, 0) < 0)
        return -errno;
    return sync_dir_of(ps, path);
}

static int posix_rename(struct gvm_store *st, const char *from, const char *to)
{
    struct posix_store *ps = to_ps(st);
    const char *bfrom, *bto;
    if (bad_path(from) || bad_path(to))
        return -EINVAL;
    _cleanup_close_ int dfrom = open_parent(ps, from, &bfrom);
    if (dfrom < 0)
        return dfrom;
    _cleanup_close_ int dto = open_parent(ps, to, &bto);
    if (dto < 0)
        return dto;
    if (renameat(dfrom, bfrom, dto, bto) < 0)
        return -errno;
    int r = sync_dir_of(ps, to);
    if (r == 0 && strcmp(from, to) != 0)
        r = sync_dir_of(ps, from);
    return r;
}

static int posix_mkdir(struct gvm_store *st, const char *path)
{
    struct posix_store *ps = to_ps(st);
    const char *base;
    if (bad_path(path))
        return -EINVAL;
    _cleanup_close_ int dfd = open_parent(ps, path, &base);
    if (dfd < 0)
        return dfd;
    if (mkdirat(dfd, base, 0755) < 0)
        return -errno;
    return sync_dir_of(ps, path);
}

static int posix_statvfs(struct gvm_store *st, uint64_t *free_bytes,
                         uint64_t *total_bytes)
{
    struct posix_store *ps = to_ps(st);
    struct statvfs sv;
    if (fstatvfs(ps->rootfd, &sv) < 0)
        return -errno;
    *free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    *total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
    return 0;
}

static void posix_destroy(struct gvm_store *st)
{
    struct posix_store *ps = to_ps(st);
    if (ps->rootfd >= 0)
        close(ps->rootfd);
    free(ps->root);
    free(ps);
}

/* For ->list: append name unless it is "." or ".."; -ENOMEM, 1 when max
 * names are held already (*more set), else 0. */
static int list_add(const char *name, size_t max, char ***names, size_t *n,
                    bool *more)
{
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    if (*n >= max) {
        *more = true;
        return 1;
    }
    char **v = realloc(*names, (*n + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    *names = v;
    if (!(v[*n] = strdup(name)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

static int posix_list(struct gvm_store *st, const char *dir, size_t max,
                      char ***names, size_t *n, bool *more)
{
    struct posix_store *ps = to_ps(st);
    int fd = openat2_beneath(ps->rootfd, dir && *dir ? dir : ".",
                             O_RDONLY | O_DIRECTORY, 0);
    DIR *d;
    int r = 0;

    *names = NULL;
    *n = 0;
    *more = false;
    if (fd < 0)
        return fd;
    d = fdopendir(fd);
    if (!d) {
        r = -errno;
        close(fd);
        return r;
    }
    for (;;) {
        struct dirent *e;

        errno = 0;
        e = readdir(d);
        if (!e) {
            r = errno ? -errno : 0;
            break;
        }
        r = list_add(e->d_name, max, names, n, more);
        if (r != 0)
            break;
    }
    closedir(d);
    if (r < 0) {
        store_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        return r;
    }
    return 0;
}

/* The absolute path an O_PATH descriptor stands for (caller frees). */
static char *fd_path(int fd)
{
    char link[64], buf[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, buf, sizeof(buf) - 1);
    if (n < 0 || (size_t)n >= sizeof(buf) - 1)
        return NULL;
    buf[n] = '\0';
    return strdup(buf);
}

static int posix_physical(struct gvm_store *st, const char *path, char **out)
{
    struct posix_store *ps = to_ps(st);
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *root = NULL, *full = NULL;
    size_t rl;

    *out = NULL;
    if (bad_path(path))
        return -EINVAL;
    /* RESOLVE_BENEATH: symlinks inside the root are followed, a path that
     * leaves it is -EXDEV, as for every open. */
    fd = openat2_beneath(ps->rootfd, path, O_PATH, 0);
    if (fd < 0)
        return fd;
    root = fd_path(ps->rootfd);
    full = fd_path(fd);
    if (!root || !full)
        return -ENOMEM;
    rl = strlen(root);
    if (strncmp(full, root, rl) != 0 || full[rl] != '/' || !full[rl + 1])
        return -EXDEV;
    *out = strdup(full + rl + 1);
    return *out ? 0 : -ENOMEM;
}

static const struct gvm_store_ops posix_ops = {
    .name = "dir",
    .open = posix_open,
    .close = posix_close,
    .pread = posix_pread,
    .pwrite = posix_pwrite,
    .flush = posix_flush,
    .getsize = posix_getsize,
    .truncate = posix_truncate,
    .punch = posix_punch,
    .copy_range = posix_copy_range,
    .seek_hole = posix_seek_hole,
    .lock = posix_lock,
    .stat = posix_stat,
    .physical = posix_physical,
    .unlink = posix_unlink,
    .rename = posix_rename,
    .mkdir = posix_mkdir,
    .statvfs = posix_statvfs,
    .list = posix_list,
    .destroy = posix_destroy,
};

int store_posix_new(const char *root, struct gvm_store **out,
                    struct gvm_error *err)
{
    *out = NULL;
    if (!root || root[0] != '/') {
        gvm_error_set(err, GVM_ERR_INVALID_PARAMS,
                      "The directory '%s' of a dir volume must be an absolute "
                      "path.", root ? root : "");
        return -EINVAL;
    }
    struct posix_store *ps = calloc(1, sizeof *ps);
    if (!ps || !(ps->root = strdup(root))) {
        free(ps);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -ENOMEM;
    }
    ps->pub.ops = &posix_ops;
    ps->pub.priv = ps;
    ps->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (ps->rootfd < 0) {
        int r = -errno;
        gvm_error_set_errno(err, r == -ENOENT ? GVM_ERR_NOT_FOUND : GVM_ERR_STORAGE,
                            r, "Cannot open the directory %s of a dir volume",
                            root);
        posix_destroy(&ps->pub);
        return r;
    }
    /* Fail now, not on the first image, if the kernel (or a seccomp
     * filter) lacks openat2: without it confinement cannot be promised. */
    int fd = openat2_beneath(ps->rootfd, ".", O_PATH | O_DIRECTORY, 0);
    if (fd < 0) {
        gvm_error_set_errno(err, GVM_ERR_UNSUPPORTED, fd,
                            "Cannot confine paths under %s: openat2 with "
                            "RESOLVE_BENEATH is not available", root);
        posix_destroy(&ps->pub);
        return fd;
    }
    close(fd);
    *out = &ps->pub;
    return 0;
}
