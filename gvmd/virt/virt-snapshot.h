/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-snapshot.h — the libvirt calls of the live snapshot path
 * (virt-snapshot.c): who a domain is and whether it runs, and an external
 * disk-only snapshot onto overlays gvmd created beforehand.
 *
 * Like virt.h: every function may block on libvirt (worker threads only);
 * errors are VirtError with libvirt's message, NotFound for an unknown
 * domain.
 */
#ifndef GVMD_VIRT_SNAPSHOT_H
#define GVMD_VIRT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "virt.h"

/* libvirt's name and uuid of the domain with this name or uuid, and whether
 * it runs.  name may be NULL (else the caller frees *name); uuid may be
 * NULL (else 37 bytes). */
int virt_snapshot_domain(struct virt *v, const char *name_or_uuid, char **name,
                      char *uuid, bool *running, struct gvm_error *err);

/* One disk of the snapshot: its target and the source of the new overlay
 * (type file or gluster, format qcow2), or src NULL: not snapshotted. */
struct virt_snapshot_disk {
    const char *target;
    const struct virt_source *src;
};

#define VIRT_SNAPSHOT_ATOMIC  0x1u   /* all disks or none (several disks)   */
#define VIRT_SNAPSHOT_QUIESCE 0x2u   /* freeze the guest's file systems     */

/*
 * virDomainSnapshotCreateXML on the running domain with a <domainsnapshot>
 * listing disks[0..n) (every disk of the domain should be listed: one left
 * out would get an overlay libvirt names itself), with DISK_ONLY,
 * REUSE_EXT (the overlays exist, their backing file names the current
 * active layer) and NO_METADATA (gvmd's catalog is the record), plus the
 * flags asked.  When quiescing fails because no guest agent answers, the
 * error says so.  On failure libvirt switched no disk (QEMU runs the
 * snapshot as one transaction).
 */
int virt_snapshot_create(struct virt *v, const char *domain, const char *name,
                         const char *description,
                         const struct virt_snapshot_disk *disks, size_t n,
                         unsigned flags, struct gvm_error *err);

#endif
