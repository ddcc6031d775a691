/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.h — the storage function table (store.c, store-posix.c,
 * store-gluster.c, store-faulty.c) and path confinement (path.c).
 *
 * A struct gvm_store is one volume's storage: a directory, or a gluster
 * volume reached through one glfs_t kept for the daemon's life.  Paths given
 * to a store are relative to the volume root and must have passed
 * path_check(); the store still refuses anything that would leave the root
 * (symlinks included, on dir volumes).
 *
 * Every slot returns 0 (or a byte count) on success and -errno on failure,
 * and never logs: the caller knows what the operation was for and reports it.
 * Slots may be called from any thread; a gvm_file is used by one thread at a
 * time.
 */
#ifndef GVMD_STORE_H
#define GVMD_STORE_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

/* ---- gluster servers (shared with imageref.c and volume.c) ------------ */

enum gvm_transport { GVM_TRANSPORT_TCP, GVM_TRANSPORT_UNIX, GVM_TRANSPORT_RDMA };

struct gvm_server {
    enum gvm_transport transport;
    char *host;     /* tcp/rdma: host name or address (IPv6 without []) */
    int port;       /* tcp/rdma: 0 = default 24007                      */
    char *socket;   /* unix: socket path                                */
};

const char *gvm_transport_name(enum gvm_transport t);       /* "tcp", ... */
int gvm_transport_parse(const char *name, enum gvm_transport *out);
void gvm_server_clear(struct gvm_server *s);
void gvm_servers_free(struct gvm_server *s, size_t n);
/* Deep copy of n servers (*out NULL for n == 0).  0 or -ENOMEM. */
int gvm_servers_copy(const struct gvm_server *src, size_t n,
                     struct gvm_server **out);
/* Same transport and address (port 0 and 24007 are the same; host names
 * compared without case). */
bool gvm_server_equal(const struct gvm_server *a, const struct gvm_server *b);

/* ---- the function table --------------------------------------------- */

struct gvm_store;
struct gvm_file;

/* Open flags for ->open. */
#define GVM_O_RDONLY 0x0
#define GVM_O_RDWR   0x1
#define GVM_O_CREAT  0x2   /* create; with GVM_O_EXCL fail if it exists */
#define GVM_O_EXCL   0x4
#define GVM_O_TRUNC  0x8

/* Permissions for ->lock: QEMU's BLK_PERM_* bits (QEMU 7.2), which decide
 * the lock bytes, so they must keep these values. */
#define GVM_PERM_CONSISTENT_READ 0x1
#define GVM_PERM_WRITE           0x2
#define GVM_PERM_WRITE_UNCHANGED 0x4
#define GVM_PERM_RESIZE          0x8
#define GVM_PERM_ALL             0xf
#define GVM_LOCK_PERM_BASE   100   /* byte 100+i: permission i is used     */
#define GVM_LOCK_SHARED_BASE 200   /* byte 200+i: permission i not shared  */

struct gvm_stat {
    uint64_t size;        /* bytes                         */
    uint64_t allocated;   /* bytes actually allocated      */
    bool is_dir;
    bool is_reg;
};

struct gvm_store_ops {
    const char *name;   /* "dir", "gluster", "faulty" */

    /* Open path. -ENOENT if missing (without CREAT), -EEXIST with
     * CREAT|EXCL, -EXDEV/-ELOOP if it resolves outside the volume,
     * -EISDIR for a directory, -ENODEV for any other file that is not a
     * regular one (FIFO, socket, device), at once. */
    int (*open)(struct gvm_store *st, const char *path, int flags,
                struct gvm_file **out);
    /* Close; never fails (errors of earlier writes surface in ->flush). */
    void (*close)(struct gvm_file *f);
    /* Read up to len bytes at off.  Returns bytes read: fewer than len only
     * at end of file.  -errno on I/O error. */
    ssize_t (*pread)(struct gvm_file *f, void *buf, size_t len, uint64_t off);
    /* Write all of len bytes at off, retrying short writes: 0 or -errno. */
    int (*pwrite)(struct gvm_file *f, const void *buf, size_t len, uint64_t off);
    /* Make earlier writes durable (fsync): 0 or -errno. */
    int (*flush)(struct gvm_file *f);
    int (*getsize)(struct gvm_file *f, uint64_t *size);
    int (*truncate)(struct gvm_file *f, uint64_t size);
    /* Deallocate a range, reading back as zeros.  -EOPNOTSUPP if the
     * backend cannot; callers then write zeros. */
    int (*punch)(struct gvm_file *f, uint64_t off, uint64_t len);
    /* Copy len bytes between two files of the same store without the
     * caller's buffer: copy_file_range(2) on a dir volume; on gluster a
     * pipelined client copy (gfapi's server-side copy is broken, see
     * store-gluster.c).  Returns bytes copied (>0; fewer than len only
     * where the source ends, 0 at its end), or -EOPNOTSUPP/-EXDEV when
     * the caller must fall back to pread/pwrite.  May be NULL. */
    ssize_t (*copy_range)(struct gvm_file *in, uint64_t off_in,
                          struct gvm_file *out, uint64_t off_out, size_t len);
    /* OPTIONAL (NULL: every byte is data).  lseek(SEEK_DATA) when !hole,
     * lseek(SEEK_HOLE) when hole: the first data/hole offset >= off in
     * *out; -ENXIO when there is no data at or after off.  Used by the raw
     * driver so img_map reports holes like `qemu-img map` (glfs_lseek on
     * gluster). */
    int (*seek_hole)(struct gvm_file *f, uint64_t off, bool hole, uint64_t *out);
    /* OPTIONAL (NULL: the backend cannot lock; images are used unlocked).
     * Image locks as QEMU's file driver takes them (block/file-posix.c), so
     * that gvmd and QEMU refuse each other: `perm` is the set of
     * permissions (GVM_PERM_* bits) f's user exercises, `unshared` those
     * it refuses to everyone else.  Bit i of perm is a shared (F_RDLCK)
     * lock on byte 100+i of the file, bit i of unshared one on byte 200+i:
     *   consistent-read  bytes 100 / 200
     *   write            bytes 101 / 201
     *   write-unchanged  bytes 102 / 202
     *   resize           bytes 103 / 203
     * The locks belong to the open file f (OFD semantics: a second open of
     * the same file, even in this process, is another holder) and last
     * until the next ->lock on f or ->close.  The bytes of the new sets
     * are locked first, then the file is tested for another holder's lock
     * on 200+i for each i in perm and on 100+i for each i in unshared (the
     * order QEMU uses: two openers racing cannot both miss each other);
     * on success only the new sets stay locked.
     * Fails with -EAGAIN if another holder conflicts: f's earlier locks
     * are restored and *conflict (may be NULL) gets the one permission
     * bit at fault; -errno (-ENOLCK, -EOPNOTSUPP, I/O errors) if the lock
     * calls themselves fail, the earlier locks restored as far as the
     * backend lets. */
    int (*lock)(struct gvm_file *f, unsigned perm, unsigned unshared,
                unsigned *conflict);

    int (*stat)(struct gvm_store *st, const char *path, struct gvm_stat *out);
    int (*unlink)(struct gvm_store *st, const char *path);
    int (*rename)(struct gvm_store *st, const char *from, const char *to);
    /* Create one directory level; -EEXIST if present. */
    int (*mkdir)(struct gvm_store *st, const char *path);
    /* Free and total bytes of the volume. */
    int (*statvfs)(struct gvm_store *st, uint64_t *free_bytes,
                   uint64_t *total_bytes);
    /* OPTIONAL (NULL: the backend cannot list).  The entries of directory
     * dir ("" or NULL: the volume root) other than "." and "..", in no
     * particular order: at most max names in *names (an array of *n
     * strings, all malloc'd: store_names_free), and *more true when the
     * directory holds further entries.  0, -ENOENT / -ENOTDIR / -EXDEV as
     * ->open, -ENOMEM, or the backend's -errno. */
    int (*list)(struct gvm_store *st, const char *dir, size_t max,
                char ***names, size_t *n, bool *more);
    /* OPTIONAL (NULL: names resolve as text).  The path, relative to the
     * volume root, of the existing file that path names when the system
     * resolves it — symlinks followed, each ".." taken from where the
     * path has led, as QEMU's open() of a relative backing name does:
     * 0 with *out (caller frees), -ENOENT, -EXDEV/-ELOOP if it leaves the
     * volume, -ENOMEM. */
    int (*physical)(struct gvm_store *st, const char *path, char **out);
    /* OPTIONAL (NULL: the backend has none).  The client volfile the
     * volume's servers gave (gluster), NUL-terminated, caller frees:
     * 0, -ENODATA if the servers gave none, -ENOMEM. */
    int (*volfile)(struct gvm_store *st, char **out);
    /* Free the store (closing the gluster connection). */
    void (*destroy)(struct gvm_store *st);
    /* Optional: free the store at daemon exit, when nothing will use the
     * process any more and a slow clean tear-down (glfs_fini: ~9 s) is not
     * worth waiting for.  All files must be closed.  NULL: ->destroy. */
    void (*abandon)(struct gvm_store *st);
};

struct gvm_store {
    const struct gvm_store_ops *ops;
    void *priv;
};

/* ---- path confinement (path.c) ---------------------------------------- */

/* A path inside a volume: relative, not empty, no ".." segment, no empty
 * or "." segments after normalisation, at most GVM_MAX_STRING bytes.
 * Fills err (INVALID_PARAMS naming `param`) and returns -EINVAL if not. */
int path_check(const char *path, const char *param, struct gvm_error *err);
/* Directory part of a volume path ("" for the root). Caller frees. */
char *path_dirname(const char *path);
/* Resolve a backing file name stored relative to the image's directory:
 * returns the volume path or -EXDEV if it leaves the volume. */
int path_resolve_relative(const char *image_path, const char *name, char **out);
/* QEMU takes a file name with a ':' before its first '/' for
 * "protocol:rest" (nbd:, file:, ssh:...), never for a relative file name:
 * the length of that protocol name, 0 if name has none. */
size_t path_protocol_len(const char *name);
/* a "/" b (a may be NULL) with empty and "." segments dropped and no
 * leading '/': one spelling for comparing paths written differently (".."
 * is kept as it is).  Caller frees; NULL on ENOMEM. */
char *path_normalize(const char *a, const char *b);

/* ---- constructors ------------------------------------------------------ */

/* A dir volume rooted at root (an absolute directory that must exist). */
int store_posix_new(const char *root, struct gvm_store **out,
                    struct gvm_error *err);

struct gvm_gluster_cfg {
    const char *volume;                 /* gluster volume name            */
    const struct gvm_server *servers;   /* in the order the user gave     */
    size_t nservers;
    int debug;                          /* gfapi log level 0..9           */
    const char *logfile;                /* NULL: stderr                   */
};
/* Probes the servers, hands reachable ones to gfapi first, glfs_init(). */
int store_gluster_new(const struct gvm_gluster_cfg *cfg, struct gvm_store **out,
                      struct gvm_error *err);
/* Probe one server with a short connect; true if something answers. */
bool store_gluster_probe(const struct gvm_server *s, int timeout_ms);
/* Probe n servers in parallel within timeout_ms in all.  reach[i]: 1
 * reachable, 0 not (errnos[i], may be NULL, says why as a positive errno),
 * -1 unknown (rdma: cannot be probed with a TCP connect). */
void store_gluster_probe_all(const struct gvm_server *s, size_t n,
                             int timeout_ms, int *reach, int *errnos);

#ifdef GVMD_FAULT_INJECTION
/* Test builds only (store-faulty.c): wrap inner in a store that fails or
 * kills the process at the Nth write/flush as spec (the GVMD_FAULT syntax,
 * see store-faulty.c) says.  On success the new store owns inner; on
 * failure (-EINVAL for a bad spec, -ENOMEM) inner is left to the caller. */
int store_faulty_wrap(struct gvm_store *inner, const char *spec,
                      struct gvm_store **out);
/* If the environment variable GVMD_FAULT is set, replace *st by a faulty
 * store wrapping it; a no-op otherwise.  Volume code calls this on every
 * store it opens.  -1 with err set (and *st untouched, still the caller's)
 * if the variable does not parse. */
int store_faulty_wrap_env(struct gvm_store **st, struct gvm_error *err);
#else
/* Release builds: GVMD_FAULT means nothing. */
static inline int store_faulty_wrap_env(struct gvm_store **st, struct gvm_error *err)
{ (void)st; (void)err; return 0; }
#endif

/* ---- helpers over the table (store.c) ------------------------------------ */

/* Copy len bytes between two files of st: ->copy_range (server-side) where
 * the backend can, pread/pwrite in 4 MiB runs for the rest.  0, -ENODATA if
 * the source ends before len bytes, or the failing slot's -errno. */
int store_copy(struct gvm_store *st, struct gvm_file *in, uint64_t off_in,
               struct gvm_file *out, uint64_t off_out, uint64_t len);
/* Create the missing directories above path (not path itself). */
int store_mkdir_parents(struct gvm_store *st, const char *path);

/* For backends implementing ->lock: the byte operations of one open file.
 * set: lock (shared, F_RDLCK) or unlock one byte, 0 or -errno; test: 1 if
 * another holder has any lock on the byte, 0 if none, -errno. */
struct store_lock_bytes {
    int (*set)(void *opaque, unsigned byte, bool lock);
    int (*test)(void *opaque, unsigned byte);
    void *opaque;
};
/* ->lock's sequence over b: held[0] / held[1] are the permission and
 * unshared bits whose bytes are locked now, kept up to date. */
int store_lock_apply(const struct store_lock_bytes *b, unsigned held[2],
                     unsigned perm, unsigned unshared, unsigned *conflict);

/* Free what ->list returned. */
static inline void store_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static inline void gvm_store_destroy(struct gvm_store *st)
{ if (st) st->ops->destroy(st); }
static inline void gvm_store_abandon(struct gvm_store *st)
{ if (st) (st->ops->abandon ? st->ops->abandon : st->ops->destroy)(st); }

#endif
