/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gvmd.h — struct gvmd, the one owner of all daemon state: daemon.c
 * assembles it and passes it down, so there is no global mutable state
 * beyond log settings and signal flags.  It is a record of opaque pointers:
 * a layer that holds a struct gvmd * reaches only the services of its own
 * layer and below (each through its own header); the fields of higher
 * layers (the control socket, the RPC pools, the job runner) are only
 * handed through.
 */
#ifndef GVMD_GVMD_H
#define GVMD_GVMD_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"

struct event_base;
struct catalog;      /* catalog.h  */
struct volumes;      /* volume.h   */
struct workq;        /* workq.h    */
struct control;      /* control.h  */
struct rpc;          /* rpc.h      */
struct jobs;         /* job.h      */
struct virt;         /* virt.h     */

struct gvmd {
    struct gvmd_config cfg;
    struct event_base *base;
    struct catalog *cat;
    struct volumes *vols;
    struct workq *wq;
    struct workq *wq_ro;     /* blocking calls of the read-only socket */
    struct workq *wq_heavy;  /* its GVM_M_HEAVY ones                   */
    struct rpc *rpc;         /* the JSON-RPC envelope (rpc.c)        */
    struct control *ctl;     /* its sockets (control.c)              */
    struct jobs *jobs;       /* the job runner (job.c)               */
    struct virt *virt;       /* the libvirt connection (virt.c)      */
    /* Set by the loop thread at SIGTERM/SIGINT, read by RPC workers
     * (rpc_call_abandoned): atomic, as threads share it. */
    atomic_bool stopping;
};

#endif
