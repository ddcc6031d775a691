/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-diskxml.h — the libvirt <disk> element for an image (virt-diskxml.c),
 * for domain-disk-xml and for those who edit domain XML (virt-define.c).
 */
#ifndef GVMD_VIRT_DISKXML_H
#define GVMD_VIRT_DISKXML_H

#include <stdbool.h>

#include "catalog.h"

/*
 * *xml (caller frees): a <disk device='disk'> with driver type `format`,
 * target dev `target` and the source through which libvirt reaches `path`
 * on vol — a file for a dir volume; for a gluster volume a network source
 * with every server as a <host> or, with fuse, the file under
 * fuse_mount/VOLUME/ (Unsupported when fuse_mount is NULL or empty).
 */
int virt_diskxml_build(const struct catalog_volume *vol, const char *path,
                       const char *format, const char *target, bool fuse,
                       const char *fuse_mount, char **xml,
                       struct gvm_error *err);

#endif
