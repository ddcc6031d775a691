/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * localfs.h — the daemon's own files on the local file system (localfs.c):
 * the directories of its catalog, sockets and state.  Volume storage goes
 * through stores (store.h), never through these.
 */
#ifndef GVMD_LOCALFS_H
#define GVMD_LOCALFS_H

#include <sys/types.h>

/* mkdir -p dir with mode for the directories it creates.  0 or -errno. */
int localfs_mkdir_p(const char *dir, mode_t mode);
/* mkdir -p of the directory part of path ("/a/b/sock" → "/a/b"). */
int localfs_mkdir_parent(const char *path, mode_t mode);

#endif
