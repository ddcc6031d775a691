/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-define.h — keeping libvirt's persistent definition of a stopped
 * domain in step with the catalog (virt-define.c).
 *
 * The offline path (snapshot-create and snapshot-revert of a shut-off
 * domain, an offline active block-commit) changes which image is a disk's
 * active layer and records that in the catalog only; commits, pulls,
 * rebases and snapshot-deletes below it change the chain under it.  libvirt's inactive
 * XML would still name the former image, and the next `virsh start` would
 * boot the guest on a frozen snapshot image (and write into it) or on an
 * image committed away.  These functions rewrite the <source> of every
 * such disk to name the catalog's active image and virDomainDefineXML the
 * result.
 *
 * A disk whose <backingStore> chain is not the catalog's loses it (libvirt
 * opens a chain given in the definition as given, over the headers; with
 * none it reads the headers, which chain-audit keeps equal to the catalog).
 * Only a disk whose source names a catalogued image other than the
 * catalog's active one, or a file of a registered volume that no longer
 * exists (committed away), is rewritten: an uncatalogued image that exists
 * was put there behind gvmd's back (an offline `virsh snapshot-create`,
 * its backing file perhaps the catalog's image) and is left alone with a
 * warning in the log (chain-audit reports it).
 * A running domain is left alone (the live path owns it); a domain libvirt
 * does not know, or libvirt unreachable, is "nothing to do" (logged at
 * info level; the next start-up tries again).  All functions block on
 * libvirt: call them from workers, job threads or at start-up.
 */
#ifndef GVMD_VIRT_DEFINE_H
#define GVMD_VIRT_DEFINE_H

#include <jansson.h>
#include <stdint.h>

#include "catalog-domain.h"
#include "gvmd.h"

/*
 * Bring libvirt's definition of the attached domain `dom` in line with the
 * catalog.  Returns 1 when it was redefined, 0 when there was nothing to do
 * (in step, running, unknown to libvirt, libvirt unreachable), -1 with err
 * (VirtError) saying which disks of the definition still name which former
 * image when reading, editing or defining failed.
 */
int virt_define_sync(struct gvmd *d, const struct catalog_domain *dom,
                     struct gvm_error *err);

/*
 * The same for the catalogued domain with this id.  On failure -1 with err
 * saying "<done>, but ..." (done NULL: what failed, alone).
 */
int virt_define_sync_domain(struct gvmd *d, int64_t domain_id,
                            const char *done, struct gvm_error *err);

/*
 * The same; on failure a warning
 * sentence (caller frees; also logged) for an operation's result, NULL
 * otherwise.  For the "warning" member of a SNAPSHOT result.
 */
char *virt_define_sync_id(struct gvmd *d, int64_t domain_id);

/* Set *result's "warning" member to warning (if not NULL).  -1 when
 * *result is NULL (its builder failed and set err) or on ENOMEM (then
 * *result is dropped and err set); else 0. */
int virt_define_warn(json_t **result, const char *warning,
                     struct gvm_error *err);

/*
 * For a job that changed the chain at image_id (made it a disk's active
 * layer, or changed what lies below it): sync every domain with image_id
 * in one of its disks' catalogued chains.  On failure -1 with err saying
 * "<done>, but libvirt's definition ...", done being a sentence start
 * saying what is complete (e.g. "The commit of A into B is complete and
 * recorded").
 */
int virt_define_sync_image(struct gvmd *d, int64_t image_id, const char *done,
                           struct gvm_error *err);

/*
 * Start-up: sync every attached domain whose disks no job holds (a job
 * that holds them syncs when it finishes).  Connects to libvirt only when
 * some domain is attached; gives up at once when libvirt is unreachable.
 * Failures are logged.
 */
void virt_define_sync_all(struct gvmd *d);

#endif
