/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot.h — external disk-only snapshots (snapshot.c): snapshot-create
 * and snapshot-revert, on a domain gvmd knows only from its catalog
 * (domain-attach with explicit disks), or on bare images; a domain libvirt
 * runs takes the live path (snapshot-live.h).  The tree is read through
 * snapshot-tree.h, snapshots are deleted through snapshot-delete.h.
 *
 * snapshot-create and snapshot-revert create qcow2 overlays and switch the
 * active images; they run as short internal jobs so that the job runner's
 * recovery settles an operation a crash interrupted (the RPC call waits for
 * the job and dismisses it).
 */
#ifndef GVMD_SNAPSHOT_H
#define GVMD_SNAPSHOT_H

#include <jansson.h>

#include "gvmd.h"
#include "job.h"

extern const struct job_type snapshot_create_job;
extern const struct job_type snapshot_revert_job;

/* The methods (params as checked by the RPC layer; results as PROTOCOL.md
 * says). */
int snapshot_create(struct gvmd *d, json_t *params, json_t **result,
                    struct gvm_error *err);
int snapshot_revert(struct gvmd *d, json_t *params, json_t **result,
                    struct gvm_error *err);

#endif
