/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gluster-volfile.h — is a gluster volume set up for VM images?  Read from
 * the client volfile (glfs_get_volfile), which shows every option that
 * changes what a client such as QEMU does.
 */
#ifndef GVMD_GLUSTER_VOLFILE_H
#define GVMD_GLUSTER_VOLFILE_H

#include <stddef.h>

/* One option of gluster's `virt` group that the volume lacks. */
struct gluster_vm_option {
    const char *option;   /* the `gluster volume set` key */
    const char *want;     /* the value the virt group gives it */
    const char *why;      /* one sentence: what goes wrong without it */
};

/* Check a client volfile (text, NUL-terminated) against the options of
 * gluster's `virt` group that a client volfile shows.  Fills missing (up to
 * max entries, static strings) and returns how many are missing, or
 * -EINVAL if the text is not a volfile (no "volume ... end-volume"). */
int gluster_volfile_vm_check(const char *text, struct gluster_vm_option *missing,
                             size_t max);

/* How many checks gluster_volfile_vm_check makes (the size missing needs). */
size_t gluster_volfile_vm_checks(void);

#endif
