/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store-gluster-conn.c — the gluster backend's connections: making a
 * glfs_t for a volume, replacing it after a connection error, and letting
 * go of them (store-gluster.h).
 *
 * Server order: gfapi tries volfile servers in the order they were given and
 * spends seconds on each dead one.  So before glfs_init every server is
 * probed in parallel with a short connect (PROBE_TIMEOUT_MS in all) and the
 * servers are handed to gfapi reachable first, then unknown (rdma, which a
 * TCP connect cannot probe), then the unreachable ones (kept: they may come
 * back, and gfapi fails over to them later).  If every server is known dead
 * we fail at once instead of letting gfapi time out on each.
 *
 * Tear-down: ->destroy (a volume removed while the daemon runs) hands
 * glfs_fini to a detached thread so no caller — least of all the event
 * loop — waits ~9 s for it.  ->abandon (daemon exit) does not call glfs_fini
 * at all: the caller has closed every file, and glfs_close already flushed
 * each file's cached writes to the bricks; what glfs_fini would add is a
 * clean goodbye to the servers, which they also infer from the sockets
 * closing when the process exits.  A detached fini thread still running at
 * exit() would race the library's own destructors, so abandon is the one to
 * use at shutdown.
 *
 * Coherence with other clients.  gvmd is one gluster client among several:
 * QEMU (through its own libgfapi or a FUSE mount), qemu-img, FUSE readers,
 * other hosts.  Whatever another client wrote and closed must be what gvmd
 * reads next — a size, a header, an L1/L2/refcount table, data — or offline
 * surgery right after a guest stops would act on a stale refcount block.
 * gluster's client-side performance translators break that: md-cache
 * serves sizes and lookups for md-cache-timeout (1 s by default, 600 s with
 * cache invalidation), io-cache and quick-read serve file content from
 * memory until their timeout, read-ahead keeps pages per open file,
 * readdir-ahead and nl-cache keep directory contents and negative lookups,
 * open-behind defers opens so a read can be served from quick-read's
 * cache.  Volume options decide which of them the volfile loads, and a
 * client cannot unload them; but gfapi applies per-client xlator options
 * (glfs_set_xlator_option, before glfs_init) to the graph it builds, and
 * every one of these translators except quick-read has a "pass-through"
 * switch that replaces its fops by plain forwarding.  quick-read has none:
 * its max-file-size 0 makes it cache nothing.  So every read, stat and
 * lookup of gvmd's connection goes to the bricks (COHERENCE_OPTS).
 * write-behind stays on (it is what makes gvmd's writes fast) with two
 * changes: flush-behind off, so glfs_close returns only once the file's
 * writes reached the bricks (another client that opens the file after
 * gvmd closed it sees them), and resync-failed-syncs-after-fsync on, as
 * QEMU sets it, so a failed fsync keeps the failed writes for the retry
 * instead of dropping them.  gvmd's own reads see its own writes through
 * write-behind, which orders overlapping requests.
 * Cost: every metadata call is a network round trip to the replica (a few
 * hundred microseconds here): measured in tests/bench, it is small next to
 * the data path, which never used these caches (gvmd reads each cluster
 * once).  What another client still holds in its *own* caches (a running
 * QEMU's write-behind and qcow2 metadata cache) only it can flush; that is
 * the live path's business, not the store's.
 *
 */
#include <errno.h>
#include <glusterfs/api/glfs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-gluster.h"

/* The whole probe of all servers: a live server on loopback or a LAN
 * answers a connect in well under a millisecond to a few ms. */
#define PROBE_TIMEOUT_MS 200

/* Per-client options for gvmd's graph (see "Coherence" above).  The names
 * are patterns: the volfile calls the translators VOLUME-md-cache etc.  An
 * option for a translator the volume does not load is ignored. */
static const struct {
    const char *xlator, *key, *value;
} COHERENCE_OPTS[] = {
    { "*-md-cache",      "pass-through",  "true" },
    { "*-io-cache",      "pass-through",  "true" },
    { "*-read-ahead",    "pass-through",  "true" },
    { "*-readdir-ahead", "pass-through",  "true" },
    { "*-nl-cache",      "pass-through",  "true" },
    { "*-open-behind",   "pass-through",  "true" },
    { "*-quick-read",    "max-file-size", "0" },
    { "*-write-behind",  "flush-behind",  "off" },
    { "*-write-behind",  "resync-failed-syncs-after-fsync", "on" },
};

static void describe_server(const struct gvm_server *s, char *buf, size_t len)
{
    if (s->transport == GVM_TRANSPORT_UNIX)
        snprintf(buf, len, "unix %s", s->socket ? s->socket : "?");
    else
        snprintf(buf, len, "%s %s%s%s:%d", gvm_transport_name(s->transport),
                 strchr(s->host ? s->host : "", ':') ? "[" : "",
                 s->host ? s->host : "?",
                 strchr(s->host ? s->host : "", ':') ? "]" : "",
                 s->port ? s->port : GVM_GLUSTER_PORT);
}

glfs_t *store_gluster_conn_new(struct gluster_store *gs, struct gvm_error *err)
{
    size_t n = gs->nservers;
    _cleanup_free_ int *reach = calloc(n ? n : 1, sizeof *reach);
    _cleanup_free_ int *errs = calloc(n ? n : 1, sizeof *errs);
    if (!reach || !errs) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return NULL;
    }
    store_gluster_probe_all(gs->servers, n, PROBE_TIMEOUT_MS, reach, errs);

    /* What was tried, for the error message. */
    char tried[GVM_ERROR_MSG_MAX / 2] = "";
    size_t tl = 0;
    bool any_alive = false;
    for (size_t i = 0; i < n; i++) {
        char d[300];
        describe_server(&gs->servers[i], d, sizeof d);
        int w = snprintf(tried + tl, sizeof tried - tl, "%s%s (%s)",
                         i ? ", " : "", d,
                         reach[i] == 1 ? "reachable" :
                         reach[i] == -1 ? "not probed" : strerror(errs[i]));
        if (w > 0 && (size_t)w < sizeof tried - tl)
            tl += (size_t)w;
        if (reach[i] != 0)
            any_alive = true;
    }
    if (!any_alive) {
        gvm_error_set(err, GVM_ERR_STORAGE,
                      "Cannot connect to gluster volume '%s': no server "
                      "answers; tried %s.", gs->volume, tried);
        return NULL;
    }

    glfs_t *fs = glfs_new(gs->volume);
    if (!fs) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, -errno,
                            "Cannot create a gfapi instance for volume '%s'",
                            gs->volume);
        return NULL;
    }
    /* Reachable, then not probed, then dead: three passes keep the user's
     * order within each group. */
    static const int pass_reach[3] = { 1, -1, 0 };
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < n; i++) {
            const struct gvm_server *s = &gs->servers[i];
            if (reach[i] != pass_reach[pass])
                continue;
            int r;
            if (s->transport == GVM_TRANSPORT_UNIX)
                r = glfs_set_volfile_server(fs, "unix", s->socket, 0);
            else
                r = glfs_set_volfile_server(fs, gvm_transport_name(s->transport),
                                            s->host,
                                            s->port ? s->port : GVM_GLUSTER_PORT);
            if (r < 0) {
                int e = errno;
                char d[300];
                describe_server(s, d, sizeof d);
                gvm_error_set_errno(err, GVM_ERR_STORAGE, -e,
                                    "gfapi refused the server %s of volume '%s'",
                                    d, gs->volume);
                glfs_fini(fs);
                return NULL;
            }
        }
    }
    for (size_t i = 0; i < sizeof COHERENCE_OPTS / sizeof *COHERENCE_OPTS; i++) {
        if (glfs_set_xlator_option(fs, COHERENCE_OPTS[i].xlator,
                                   COHERENCE_OPTS[i].key,
                                   COHERENCE_OPTS[i].value) < 0) {
            gvm_error_set_errno(err, GVM_ERR_STORAGE, -(errno ? errno : ENOMEM),
                                "gfapi refused the option %s.%s for volume '%s'",
                                COHERENCE_OPTS[i].xlator, COHERENCE_OPTS[i].key,
                                gs->volume);
            glfs_fini(fs);
            return NULL;
        }
    }
    glfs_set_logging(fs, gs->logfile ? gs->logfile : "/dev/stderr", gs->debug);
    if (glfs_init(fs) < 0) {
        int e = errno ? errno : EIO;
        gvm_error_set(err, GVM_ERR_STORAGE,
                      "Cannot connect to gluster volume '%s': glfs_init "
                      "failed: %s; tried %s.", gs->volume, strerror(e), tried);
        /* The glfs_t whose init failed is deliberately leaked, not
         * finalised: a gvmd that called glfs_fini on it (from a detached
         * thread, right after the failure) died of SIGSEGV once in a test
         * run, with gfapi's volfile callback for that instance still
         * running.  A failed volume-add is rare and explicit; a few MB
         * leaked per failure is the lesser evil next to a crashed daemon. */
        return NULL;
    }
    return fs;
}

bool store_gluster_conn_is_error(int neg)
{
    switch (-neg) {
    case ENOTCONN: case ECONNABORTED: case ECONNRESET: case ECONNREFUSED:
    case ETIMEDOUT: case ESHUTDOWN: case EHOSTDOWN: case EHOSTUNREACH:
    case ENETDOWN: case ENETUNREACH: case EPIPE:
        return true;
    default:
        return false;
    }
}

glfs_t *store_gluster_conn_get(struct gluster_store *gs, unsigned *gen)
{
    GVM_LOCK_GUARD(&gs->lock);
    *gen = gs->gen;
    return gs->fs;
}

int store_gluster_conn_replace(struct gluster_store *gs, unsigned gen)
{
    GVM_LOCK_GUARD(&gs->lock);
    if (gs->gen != gen)
        return 0;
    struct gvm_error e = { 0 };
    glfs_t *fs = store_gluster_conn_new(gs, &e);
    if (!fs) {
        log_warn("Reconnecting to gluster volume '%s' failed: %s", gs->volume,
                 e.message);
        return -ENOTCONN;
    }
    struct retired *r = calloc(1, sizeof *r);
    if (r) {
        r->fs = gs->fs;
        r->next = gs->retired;
        gs->retired = r;
    }   /* else: leak the old glfs_t rather than fini it under open files */
    gs->fs = fs;
    gs->gen++;
    log_info("Reconnected to gluster volume '%s'.", gs->volume);
    return 0;
}

/* glfs_fini each retired connection of a list, then free it: run on a
 * detached thread (see the file comment). */
static void *fini_thread(void *arg)
{
    struct retired *r = arg;
    while (r) {
        struct retired *next = r->next;
        if (r->fs)
            glfs_fini(r->fs);
        free(r);
        r = next;
    }
    return NULL;
}

void store_gluster_conn_destroy(struct gluster_store *gs)
{
    struct retired *list = gs->retired;
    if (gs->fs) {
        struct retired *cur = calloc(1, sizeof *cur);
        if (cur) {
            cur->fs = gs->fs;
            cur->next = list;
            list = cur;
        }
    }
    gs->retired = NULL;
    gs->fs = NULL;
    if (list) {
        pthread_t t;
        if (pthread_create(&t, NULL, fini_thread, list) == 0)
            pthread_detach(t);
        /* else: leave them; a fini we cannot run off-thread is not worth
         * blocking the caller for ~9 s each. */
    }
}

void store_gluster_conn_abandon(struct gluster_store *gs)
{
    /* See the file comment: no glfs_fini at daemon exit. */
    for (struct retired *r = gs->retired, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    gs->retired = NULL;
}
