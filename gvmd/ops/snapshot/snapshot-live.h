/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-live.h — snapshot-create on a running libvirt domain
 * (snapshot-live.c).  snapshot.c plans the snapshot as on the offline path
 * (same overlay names, same catalog change) and runs the same internal job
 * with "live": DOMAIN in its params; the job then creates the overlays,
 * has libvirt switch the running disks onto them, and records the change.
 */
#ifndef GVMD_SNAPSHOT_LIVE_H
#define GVMD_SNAPSHOT_LIVE_H

#include "catalog-domain.h"
#include "gvmd.h"
#include "job.h"

/*
 * The catalogued domain `key` (name or uuid) into *dom, and *live (caller
 * frees) libvirt's name for it when libvirt runs it, else NULL.  A running
 * libvirt domain the catalog does not know is attached from its XML first
 * (as domain-attach without disks).  NotFound when neither knows it.  When
 * libvirt cannot be reached the domain counts as not running, as for
 * live_image_user().
 */
int snapshot_live_domain(struct gvmd *d, const char *key,
                         struct catalog_domain *dom, char **live,
                         struct gvm_error *err);

/* Whether libvirt runs the catalogued domain (by its uuid, else its name);
 * false when libvirt cannot say. */
bool snapshot_live_domain_runs(struct gvmd *d, const struct catalog_domain *dom);

/* The job's run() and recover() when its params have "live". */
int snapshot_live_run(struct job *job, struct gvm_error *err);
int snapshot_live_recover(struct job *job, struct journal_op *op,
                          const struct journal_entry *e, size_t n,
                          struct gvm_error *err);

#endif
