/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config.h — gvmd's configuration: command line, optional `key = value`
 * file (the keys are the long option names), and defaults.  The command
 * line overrides the file; the file overrides the defaults.
 */
#ifndef GVMD_CONFIG_H
#define GVMD_CONFIG_H

#include <stdio.h>

#include "util.h"

#define GVMD_DEFAULT_STATE_DIR "/var/lib/gvmd"
#define GVMD_DEFAULT_FUSE_MOUNT "/run/gvmd/mnt"
#define GVMD_DEFAULT_WORKERS 4
#define GVMD_MAX_WORKERS 64

struct gvmd_config {
    char *socket_path;       /* read-write socket                     */
    char *ro_socket_path;    /* read-only socket                      */
    char *catalog_path;      /* sqlite catalog                        */
    char *libvirt_uri;
    char *state_dir;         /* for the embedded default dir volume   */
    char *fuse_mount;        /* where gluster volumes are FUSE-mounted */
    enum gvm_log_level log_level;
    int workers;             /* worker threads for blocking methods   */
    bool foreground;
};

/* Parse argv (and the --config file it names) into cfg.
 * Returns 0 to run the daemon, 1 when the request was answered (--help,
 * --version; output already printed, exit 0), or -1 after printing a usage
 * error on stderr (exit 2).  cfg is filled with defaults for anything not
 * given and must be released with config_clear() in every case. */
int config_parse(int argc, char **argv, struct gvmd_config *cfg);
void config_clear(struct gvmd_config *cfg);
void config_usage(FILE *out);

#endif
