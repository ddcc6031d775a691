/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * localfs.c — directories for the daemon's own files (localfs.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "localfs.h"
#include "util.h"

int localfs_mkdir_p(const char *dir, mode_t mode)
{
    _cleanup_free_ char *p = strdup(dir);

    if (!p)
        return -ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int localfs_mkdir_parent(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = strdup(path);
    char *slash;

    if (!p)
        return -ENOMEM;
    slash = strrchr(p, '/');
    if (!slash || slash == p)
        return 0;
    *slash = '\0';
    return localfs_mkdir_p(p, mode);
}
