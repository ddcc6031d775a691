/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * live.h — where the offline and the live path part (live.c): which running
 * libvirt domain, if any, uses a catalogued image, and which registered
 * volume and path a disk source of a domain's XML names.
 *
 * An image is "used" by a running domain when it is a disk's active layer
 * or anywhere below it: in the chain libvirt reports (<backingStore>) or in
 * the catalogued chain under the disk's active layer (libvirt does not
 * always probe the chains of network disks, the catalog always knows them).
 *
 * Every function may block on libvirt: call them from worker threads.
 */
#ifndef GVMD_LIVE_H
#define GVMD_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "gvmd.h"
#include "virt.h"

/* The running domain's disk whose chain holds an image. */
struct live_user {
    char *domain;           /* domain name                                  */
    char *target;           /* disk target, "vda"                           */
    int64_t active_id;      /* catalog id of the disk's active layer, 0 if
                               that layer is not catalogued                 */
    int depth;              /* 0: the image is the active layer; k: k
                               backing steps below it                       */
};
void live_user_clear(struct live_user *u);
static inline void live_user_clearp(struct live_user *u) { live_user_clear(u); }
#define _cleanup_live_user_ _cleanup_(live_user_clearp)

/*
 * Locate a disk source of a domain XML among the registered volumes: a
 * gluster source by its gluster volume name, a file under a dir volume's
 * root, or a file under the configured FUSE mount point (MOUNT/VOL/PATH) by
 * that gluster volume.  Returns 1 with *vol (clear it) and *path (free it)
 * filled, 0 when no registered volume holds it, -1 with err set.
 */
int live_source_locate(struct gvmd *d, const struct virt_source *src,
                       struct catalog_volume *vol, char **path,
                       struct gvm_error *err);

/*
 * The catalogued image a disk source names: 1 with *image_id set, 0 if the
 * source is on no registered volume or not catalogued there, -1 on error.
 */
int live_source_image(struct gvmd *d, const struct virt_source *src,
                      int64_t *image_id, struct gvm_error *err);

/*
 * Whether a running domain uses catalogued image image_id.  Returns 1 with
 * *u filled, 0 if none, -1 with err set.  libvirt is the only authority on
 * what runs: when it is configured but cannot be reached, the answer is
 * unknown, and unknown is not "free" — InUse saying libvirt at URI cannot
 * be reached, so no write goes ahead under a guest nobody can see.  A host
 * without libvirt says so with libvirt-uri none: then the answer is 0.
 */
int live_image_user(struct gvmd *d, int64_t image_id, struct live_user *u,
                    struct gvm_error *err);
/* The same for a read, which cannot harm a guest: when libvirt cannot be
 * reached the answer is 0 (logged at debug level). */
int live_image_reader(struct gvmd *d, int64_t image_id, struct live_user *u,
                      struct gvm_error *err);

/*
 * For offline operations: InUse when a running domain uses image_id,
 * saying "Cannot WHAT VOLUME:PATH: domain D uses it (disk T) and is
 * running; ..." — or when libvirt is configured but cannot be reached
 * ("Cannot WHAT VOLUME:PATH: libvirt at URI cannot be reached ...");
 * 0 when no running domain uses it.
 */
int live_refuse_running(struct gvmd *d, int64_t image_id, const char *what,
                        struct gvm_error *err);

/* The same for several images with one libvirt listing: InUse naming the
 * first of ids[0..n) a running domain uses, 0 when none is used. */
int live_refuse_running_ids(struct gvmd *d, const int64_t *ids, size_t n,
                            const char *what, struct gvm_error *err);

#endif
