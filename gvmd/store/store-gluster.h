/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store-gluster.h — the gluster backend's internal header (not for use
 * outside gvmd/store-gluster*.c; the backend's interface is store.h):
 *
 *   store-gluster.c        the store: file and path operations over gfapi,
 *                          each path operation retried once on a new
 *                          connection after a connection error;
 *   store-gluster-conn.c   the connections: make, replace, let go;
 *   store-gluster-probe.c  probing the servers (declared in store.h).
 */
#ifndef GVMD_STORE_GLUSTER_H
#define GVMD_STORE_GLUSTER_H

#include <glusterfs/api/glfs.h>
#include <pthread.h>
#include <stdbool.h>

#include "store.h"

struct retired {
    glfs_t *fs;
    struct retired *next;
};

struct gluster_store {
    struct gvm_store pub;
    char *volume;
    struct gvm_server *servers;
    size_t nservers;
    int debug;
    char *logfile;

    pthread_mutex_t lock;     /* fs, gen, retired; held while reconnecting */
    glfs_t *fs;
    unsigned gen;
    struct retired *retired;
};

/* ---- store-gluster-conn.c ------------------------------------------------ */

/* Make and initialise a glfs_t for the store's servers.  On failure NULL
 * with err a StorageError naming each server tried and why it failed. */
glfs_t *store_gluster_conn_new(struct gluster_store *gs, struct gvm_error *err);
/* The current connection and its generation (under gs->lock). */
glfs_t *store_gluster_conn_get(struct gluster_store *gs, unsigned *gen);
/* Whether -errno neg says the connection broke (not EIO: a replica also
 * returns it for real data errors). */
bool store_gluster_conn_is_error(int neg);
/* Replace the connection of generation gen (unless another thread already
 * did), retiring the old one.  0 if there is a newer connection to retry
 * on, -ENOTCONN (logged) if none could be made. */
int store_gluster_conn_replace(struct gluster_store *gs, unsigned gen);
/* Let go of the current and retired connections: glfs_fini on a detached
 * thread.  gs itself is the caller's to free. */
void store_gluster_conn_destroy(struct gluster_store *gs);
/* Let go of the retired connections without glfs_fini (daemon exit). */
void store_gluster_conn_abandon(struct gluster_store *gs);

#endif
