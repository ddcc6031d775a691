/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store.c — what every storage backend shares: gluster server records and
 * transport names, the generic copy (server-side where the backend can,
 * pread/pwrite otherwise) and mkdir -p over the function table.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "store.h"

/* Runs of the pread/pwrite fallback: large enough that per-call overhead
 * (a network round trip on gluster) vanishes, small enough to stay out of
 * the way of memory limits with several jobs copying at once. */
#define STORE_COPY_CHUNK (4u * 1024 * 1024)

static const char *const transport_names[] = {
    [GVM_TRANSPORT_TCP]  = "tcp",
    [GVM_TRANSPORT_UNIX] = "unix",
    [GVM_TRANSPORT_RDMA] = "rdma",
};

const char *gvm_transport_name(enum gvm_transport t)
{
    if ((size_t)t < GVM_ARRAY_SIZE(transport_names))
        return transport_names[t];
    return "unknown";
}

int gvm_transport_parse(const char *name, enum gvm_transport *out)
{
    /* name may be NULL (a missing field: -EINVAL); out may not. */
    assert(out);
    for (size_t i = 0; i < GVM_ARRAY_SIZE(transport_names); i++) {
        if (name && strcmp(name, transport_names[i]) == 0) {
            *out = (enum gvm_transport)i;
            return 0;
        }
    }
    return -EINVAL;
}

void gvm_server_clear(struct gvm_server *s)
{
    if (!s)
        return;
    free(s->host);
    free(s->socket);
    memset(s, 0, sizeof *s);
}

void gvm_servers_free(struct gvm_server *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        gvm_server_clear(&s[i]);
    free(s);
}

int gvm_servers_copy(const struct gvm_server *src, size_t n,
                     struct gvm_server **out)
{
    assert(out && (src || n == 0));
    *out = NULL;
    if (n == 0)
        return 0;
    struct gvm_server *d = calloc(n, sizeof *d);
    if (!d)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        d[i].transport = src[i].transport;
        d[i].port = src[i].port;
        if ((src[i].host && !(d[i].host = strdup(src[i].host))) ||
            (src[i].socket && !(d[i].socket = strdup(src[i].socket)))) {
            gvm_servers_free(d, n);
            return -ENOMEM;
        }
    }
    *out = d;
    return 0;
}

bool gvm_server_equal(const struct gvm_server *a, const struct gvm_server *b)
{
    assert(a && b);
    if (a->transport != b->transport)
        return false;
    if (a->transport == GVM_TRANSPORT_UNIX)
        return a->socket && b->socket && strcmp(a->socket, b->socket) == 0;
    int pa = a->port ? a->port : GVM_GLUSTER_PORT;
    int pb = b->port ? b->port : GVM_GLUSTER_PORT;
    return pa == pb && a->host && b->host && strcasecmp(a->host, b->host) == 0;
}

static int copy_by_hand(struct gvm_store *st, struct gvm_file *in,
                        uint64_t off_in, struct gvm_file *out,
                        uint64_t off_out, uint64_t len)
{
    size_t bufsz = len < STORE_COPY_CHUNK ? (size_t)len : STORE_COPY_CHUNK;
    _cleanup_free_ void *buf = malloc(bufsz ? bufsz : 1);
    if (!buf)
        return -ENOMEM;
    while (len > 0) {
        size_t n = len < bufsz ? (size_t)len : bufsz;
        ssize_t r = st->ops->pread(in, buf, n, off_in);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -ENODATA;
        int w = st->ops->pwrite(out, buf, (size_t)r, off_out);
        if (w < 0)
            return w;
        off_in += (uint64_t)r;
        off_out += (uint64_t)r;
        len -= (uint64_t)r;
    }
    return 0;
}

int store_copy(struct gvm_store *st, struct gvm_file *in, uint64_t off_in,
               struct gvm_file *out, uint64_t off_out, uint64_t len)
{
    /* Both files are open on st: a copy across stores goes through a
     * buffer in the caller (img_write_copy answers -EXDEV). */
    assert(st && in && out);
    while (len > 0 && st->ops->copy_range) {
        /* Keep each server-side request bounded so a job can report
         * progress and notice cancellation between calls. */
        size_t n = len < 256u * 1024 * 1024 ? (size_t)len : 256u * 1024 * 1024;
        ssize_t r = st->ops->copy_range(in, off_in, out, off_out, n);
        if (r == -EOPNOTSUPP || r == -EXDEV || r == -ENOSYS)
            break;          /* fall back for the rest */
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -ENODATA;
        off_in += (uint64_t)r;
        off_out += (uint64_t)r;
        len -= (uint64_t)r;
    }
    if (len == 0)
        return 0;
    return copy_by_hand(st, in, off_in, out, off_out, len);
}

int store_mkdir_parents(struct gvm_store *st, const char *path)
{
    assert(st && path);
    _cleanup_free_ char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int r = st->ops->mkdir(st, p);
        if (r < 0 && r != -EEXIST)
            return r;
        *s = '/';
    }
    return 0;
}

/* Set the locked bytes from the state *held to exactly (perm, unshared):
 * lock what is new, and unlock what is no longer wanted if `unlock`. */
static int lock_bytes_set(const struct store_lock_bytes *b, unsigned held[2],
                          unsigned perm, unsigned unshared, bool unlock)
{
    const unsigned want[2] = { perm, unshared };
    const unsigned base[2] = { GVM_LOCK_PERM_BASE, GVM_LOCK_SHARED_BASE };

    for (int k = 0; k < 2; k++) {
        for (unsigned i = 0; (1u << i) <= GVM_PERM_ALL; i++) {
            unsigned bit = 1u << i;
            int r = 0;
            if ((want[k] & bit) && !(held[k] & bit)) {
                r = b->set(b->opaque, base[k] + i, true);
                if (r == 0)
                    held[k] |= bit;
            } else if (unlock && (held[k] & bit) && !(want[k] & bit)) {
                r = b->set(b->opaque, base[k] + i, false);
                if (r == 0)
                    held[k] &= ~bit;
            }
            if (r < 0)
                return r;
        }
    }
    return 0;
}

int store_lock_apply(const struct store_lock_bytes *b, unsigned held[2],
                     unsigned perm, unsigned unshared, unsigned *conflict)
{
    assert(b && b->set && b->test && held);
    /* Only the permission bits QEMU's lock bytes stand for. */
    assert((perm & ~(unsigned)GVM_PERM_ALL) == 0 && (unshared & ~(unsigned)GVM_PERM_ALL) == 0);
    const unsigned old[2] = { held[0], held[1] };
    int r;

    if (conflict)
        *conflict = 0;
    /* Lock the union first and test afterwards (see ->lock in store.h). */
    r = lock_bytes_set(b, held, old[0] | perm, old[1] | unshared, false);
    for (unsigned i = 0; r == 0 && (1u << i) <= GVM_PERM_ALL; i++) {
        unsigned bit = 1u << i;
        if (perm & bit)
            r = b->test(b->opaque, GVM_LOCK_SHARED_BASE + i);
        if (r == 0 && (unshared & bit))
            r = b->test(b->opaque, GVM_LOCK_PERM_BASE + i);
        if (r > 0) {
            if (conflict)
                *conflict = bit;
            r = -EAGAIN;
        }
    }
    if (r < 0) {
        (void)lock_bytes_set(b, held, old[0], old[1], true);
        return r;
    }
    return lock_bytes_set(b, held, perm, unshared, true);
}
