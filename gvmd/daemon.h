/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.h — struct gvmd, the one owner of all daemon state (main.c creates
 * it and passes it down: there is no global mutable state beyond log
 * settings and signal flags), the configuration, and the RPC handler
 * prototypes generated from proto/methods.def.
 */
#ifndef GVMD_DAEMON_H
#define GVMD_DAEMON_H

#include <jansson.h>
#include <stdbool.h>

#include "util.h"

struct event_base;
struct catalog;      /* catalog.h  */
struct volumes;      /* volume.h   */
struct workq;        /* workq.h    */
struct control;      /* control.h  */
struct rpc_call;     /* rpc.h      */
struct jobs;         /* job.h      */
struct virt;         /* virt.h     */

struct gvmd_config {
    char *socket_path;       /* read-write socket                     */
    char *ro_socket_path;    /* read-only socket                      */
    char *catalog_path;      /* sqlite catalog                        */
    char *libvirt_uri;
    char *state_dir;         /* for the embedded default dir volume   */
    char *fuse_mount;        /* where gluster volumes are FUSE-mounted */
    enum gvm_log_level log_level;
    int workers;             /* worker threads for blocking methods   */
    bool foreground;
};

struct gvmd {
    struct gvmd_config cfg;
    struct event_base *base;
    struct catalog *cat;
    struct volumes *vols;
    struct workq *wq;
    struct workq *wq_ro;     /* blocking calls of the read-only socket */
    struct workq *wq_heavy;  /* its GVM_M_HEAVY ones                   */
    struct control *ctl;
    struct jobs *jobs;       /* the job runner (job.c)               */
    struct virt *virt;       /* the libvirt connection (virt.c)      */
    volatile bool stopping;
};

/* daemon.c: with d->cfg filled and d->base made (after
 * evthread_use_pthreads), assemble the daemon and listen; nothing is
 * served until the loop runs.  -1 after logging why (the caller still
 * calls daemon_stop).  daemon_stop() takes apart whatever was started:
 * stop accepting, stop jobs at a consistent point, drain the workers
 * (their replies are queued), close connections, volumes and catalog. */
int daemon_start(struct gvmd *d);
void daemon_stop(struct gvmd *d);

/* Handlers: one per line of methods.def, named rpc_<c_name>.  Called after
 * the RPC layer has checked params against the method's spec (so required
 * params are present and of the right JSON type, unknown ones refused, and
 * IMAGE references parse).  Returns 0 and sets *result (a new reference), or
 * -1 with err set.  GVM_M_BLOCKING handlers run on a worker thread. */
#define GVM_METHOD(c_name, wire, flags, spec, help)                        \
    int rpc_##c_name(struct gvmd *d, struct rpc_call *call, json_t *params, \
                     json_t **result, struct gvm_error *err);
#include "methods.def"
#undef GVM_METHOD

#endif
