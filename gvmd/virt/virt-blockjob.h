/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-blockjob.h — libvirt block jobs on a running domain's disk
 * (virt-blockjob.c): start a commit or a pull, read the job's progress, tell
 * whether an active commit is ready, pivot or abort.
 *
 * Every call looks the domain up again through virt_conn(), so a caller
 * that polls keeps working across a libvirtd restart (the connection is
 * re-opened on the next call).  Layers are named the way libvirt documents
 * for its block job APIs, "vda[N]" with N the index attribute the live XML
 * gives each layer: it works for file and gluster network disks alike,
 * where a path would not name a network layer.
 *
 * Blocking: call from worker or job threads.  Errors: VirtError with
 * libvirt's message, NotFound for an unknown domain.
 */
#ifndef GVMD_VIRT_BLOCKJOB_H
#define GVMD_VIRT_BLOCKJOB_H

#include <stdbool.h>
#include <stdint.h>

#include "virt.h"

/* What a failed call may mean: ask after the failure. */
enum virt_dom_state {
    VIRT_DOM_RUNNING,
    VIRT_DOM_STOPPED,       /* defined, not running                       */
    VIRT_DOM_GONE,          /* libvirt has no such domain (any more)      */
    VIRT_DOM_UNREACHABLE,   /* libvirtd does not answer (restarting?)     */
};
enum virt_dom_state virt_blockjob_domain_state(struct virt *v, const char *domain);

/* libvirt's job kinds (virDomainBlockJobType), as gvmd journals them. */
enum virt_bj_kind {
    VIRT_BJ_PULL = 1,
    VIRT_BJ_COMMIT = 3,
    VIRT_BJ_ACTIVE_COMMIT = 4,
};
const char *virt_bj_kind_name(int kind);

struct virt_bj_info {
    bool present;           /* a block job runs on the disk               */
    int kind;               /* enum virt_bj_kind (or another libvirt type) */
    uint64_t cur, end;      /* progress, as libvirt reports it            */
};
int virt_blockjob_info(struct virt *v, const char *domain, const char *disk,
                       struct virt_bj_info *out, struct gvm_error *err);

/*
 * Start a commit on disk: base_index and top_index are layer indexes of the
 * live XML; top_index 0 is an active commit (ACTIVE flag: the job mirrors
 * and waits to be pivoted or aborted).  bandwidth in bytes/s, 0 unlimited.
 * With relative, libvirt is asked to keep relative backing names
 * (VIR_DOMAIN_BLOCK_COMMIT_RELATIVE); *relative_refused is set when libvirt
 * refuses that for this chain, and the call is then made without it.
 */
int virt_blockjob_commit(struct virt *v, const char *domain, const char *disk,
                         unsigned base_index, unsigned top_index,
                         uint64_t bandwidth, bool relative,
                         bool *relative_refused, struct gvm_error *err);
/* Start a pull into the active layer of disk, down to base_index (0: the
 * whole chain, flatten).  relative as for a commit. */
int virt_blockjob_pull(struct virt *v, const char *domain, const char *disk,
                       unsigned base_index, uint64_t bandwidth, bool relative,
                       bool *relative_refused, struct gvm_error *err);
/* End the job on disk: pivot to the commit's base (a ready active commit),
 * or abort it (the disk stays on what it used). */
int virt_blockjob_abort(struct virt *v, const char *domain, const char *disk,
                        bool pivot, struct gvm_error *err);
/* Whether the live XML shows disk's <mirror ready='yes'>: 1, 0, -1. */
int virt_blockjob_mirror_ready(struct virt *v, const char *domain,
                               const char *disk, struct gvm_error *err);

#endif
