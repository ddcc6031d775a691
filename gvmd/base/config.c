/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * config.c — command line and configuration file.
 *
 * Both sources go through one setter keyed by the long option name, so the
 * file accepts exactly the options the command line does.  Each key
 * remembers where its value came from: a file read later never overrides a
 * value given on the command line.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

enum key {
    K_FOREGROUND, K_SOCKET, K_RO_SOCKET, K_CATALOG, K_STATE_DIR,
    K_LIBVIRT_URI, K_LOG_LEVEL, K_CONFIG, K_WORKERS, K_FUSE_MOUNT,
    K_HELP, K_VERSION, K__COUNT
};

static const struct option long_opts[] = {
    [K_FOREGROUND]  = { "foreground",  no_argument,       NULL, K_FOREGROUND },
    [K_SOCKET]      = { "socket",      required_argument, NULL, K_SOCKET },
    [K_RO_SOCKET]   = { "ro-socket",   required_argument, NULL, K_RO_SOCKET },
    [K_CATALOG]     = { "catalog",     required_argument, NULL, K_CATALOG },
    [K_STATE_DIR]   = { "state-dir",   required_argument, NULL, K_STATE_DIR },
    [K_LIBVIRT_URI] = { "libvirt-uri", required_argument, NULL, K_LIBVIRT_URI },
    [K_LOG_LEVEL]   = { "log-level",   required_argument, NULL, K_LOG_LEVEL },
    [K_CONFIG]      = { "config",      required_argument, NULL, K_CONFIG },
    [K_WORKERS]     = { "workers",     required_argument, NULL, K_WORKERS },
    [K_FUSE_MOUNT]  = { "fuse-mount",  required_argument, NULL, K_FUSE_MOUNT },
    [K_HELP]        = { "help",        no_argument,       NULL, K_HELP },
    [K_VERSION]     = { "version",     no_argument,       NULL, K_VERSION },
    [K__COUNT]      = { NULL, 0, NULL, 0 },
};

void config_usage(FILE *out)
{
    fprintf(out,
"Usage: gvmd [OPTION]...\n"
"Manage qcow2 disk-image chains on GlusterFS and local directories,\n"
"serving JSON-RPC 2.0 on a unix socket.\n"
"\n"
"  --foreground          stay in the foreground (gvmd never forks; for\n"
"                        systemd Type=notify and scripts alike)\n"
"  --socket PATH         read-write control socket (default %s)\n"
"  --ro-socket PATH      read-only control socket (default %s)\n"
"  --catalog PATH        sqlite catalog (default %s)\n"
"  --state-dir DIR       state directory; the default `local` volume lives\n"
"                        in DIR/images (default %s)\n"
"  --libvirt-uri URI     libvirt connection (default %s); `none`: this\n"
"                        host has no libvirt (no live features).  While a\n"
"                        configured libvirt cannot be reached, writes to\n"
"                        catalogued images are refused\n"
"  --log-level LEVEL     error, warn, info or debug (default info)\n"
"  --config FILE         read `key = value` lines from FILE; keys are the\n"
"                        long option names, `#` starts a comment, and the\n"
"                        command line overrides the file\n"
"  --workers N           worker threads for blocking calls (default %d)\n"
"  --fuse-mount DIR      where gluster volumes are FUSE-mounted, for\n"
"                        domain-disk-xml mode=fuse (default %s)\n"
"  --help                print this help and exit\n"
"  --version             print the version and exit\n"
"\n"
"Socket activation: with LISTEN_FDS, the descriptors named `rw` and `ro`\n"
"(LISTEN_FDNAMES) are used, else the first is read-write and the second\n"
"read-only.  READY=1 is sent to NOTIFY_SOCKET once the sockets listen.\n",
            GVM_DEFAULT_SOCKET, GVM_DEFAULT_RO_SOCKET, GVM_DEFAULT_CATALOG,
            GVMD_DEFAULT_STATE_DIR, GVM_DEFAULT_LIBVIRT, GVMD_DEFAULT_WORKERS,
            GVMD_DEFAULT_FUSE_MOUNT);
}

static int set_string(char **slot, const char *v)
{
    char *s = strdup(v);

    if (!s)
        return -1;
    free(*slot);
    *slot = s;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off")) {
        *out = false;
        return 0;
    }
    return -1;
}

/* Apply one key.  `where` names the source for error messages. */
static int set_key(struct gvmd_config *cfg, enum key k, const char *v,
                   const char *where)
{
    char *end;
    long n;

    switch (k) {
    case K_FOREGROUND:
        if (v && parse_bool(v, &cfg->foreground) < 0) {
            fprintf(stderr, "gvmd: %s: foreground must be true or false, not '%s'.\n",
                    where, v);
            return -1;
        }
        if (!v)
            cfg->foreground = true;
        return 0;
    case K_SOCKET:
        return set_string(&cfg->socket_path, v);
    case K_RO_SOCKET:
        return set_string(&cfg->ro_socket_path, v);
    case K_CATALOG:
        return set_string(&cfg->catalog_path, v);
    case K_STATE_DIR:
        return set_string(&cfg->state_dir, v);
    case K_LIBVIRT_URI:
        return set_string(&cfg->libvirt_uri, v);
    case K_FUSE_MOUNT:
        return set_string(&cfg->fuse_mount, v);
    case K_LOG_LEVEL:
        if (gvm_log_parse_level(v, &cfg->log_level) < 0) {
            fprintf(stderr, "gvmd: %s: log level must be error, warn, info or debug, not '%s'.\n",
                    where, v);
            return -1;
        }
        return 0;
    case K_WORKERS:
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < 1 || n > GVMD_MAX_WORKERS) {
            fprintf(stderr, "gvmd: %s: workers must be an integer from 1 to %d, not '%s'.\n",
                    where, GVMD_MAX_WORKERS, v);
            return -1;
        }
        cfg->workers = (int)n;
        return 0;
    default:
        fprintf(stderr, "gvmd: %s: '%s' cannot be set here.\n", where,
                long_opts[k].name);
        return -1;
    }
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
                     e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static int read_file(struct gvmd_config *cfg, const char *path,
                     const bool *from_cmdline)
{
    _cleanup_free_ char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    FILE *f = fopen(path, "re");
    int rc = 0;

    if (!f) {
        fprintf(stderr, "gvmd: cannot open configuration file %s: %s.\n", path,
                strerror(errno));
        return -1;
    }
    while (getline(&line, &cap, f) >= 0) {
        char where[PATH_MAX + 32];
        char *s, *eq, *key, *val, *hash;
        int k;

        lineno++;
        snprintf(where, sizeof(where), "%s:%u", path, lineno);
        /* A '#' starts a comment anywhere: no value gvmd takes contains
         * one (paths with '#' can still be given on the command line). */
        hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        s = trim(line);
        if (!*s)
            continue;
        eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "gvmd: %s: expected 'key = value'.\n", where);
            rc = -1;
            break;
        }
        *eq = '\0';
        key = trim(s);
        val = trim(eq + 1);
        for (k = 0; k < K__COUNT; k++)
            if (!strcmp(key, long_opts[k].name))
                break;
        if (k == K__COUNT || k == K_CONFIG || k == K_HELP || k == K_VERSION) {
            fprintf(stderr, "gvmd: %s: unknown key '%s'.\n", where, key);
            rc = -1;
            break;
        }
        if (from_cmdline[k])
            continue;
        if (set_key(cfg, (enum key)k, val, where) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "gvmd: error reading %s: %s.\n", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    return rc;
}

static int fill_defaults(struct gvmd_config *cfg)
{
    if ((!cfg->socket_path && set_string(&cfg->socket_path, GVM_DEFAULT_SOCKET) < 0) ||
        (!cfg->ro_socket_path && set_string(&cfg->ro_socket_path, GVM_DEFAULT_RO_SOCKET) < 0) ||
        (!cfg->catalog_path && set_string(&cfg->catalog_path, GVM_DEFAULT_CATALOG) < 0) ||
        (!cfg->state_dir && set_string(&cfg->state_dir, GVMD_DEFAULT_STATE_DIR) < 0) ||
        (!cfg->libvirt_uri && set_string(&cfg->libvirt_uri, GVM_DEFAULT_LIBVIRT) < 0) ||
        (!cfg->fuse_mount && set_string(&cfg->fuse_mount, GVMD_DEFAULT_FUSE_MOUNT) < 0))
        return -1;
    if (cfg->workers <= 0)
        cfg->workers = GVMD_DEFAULT_WORKERS;
    return 0;
}

int config_parse(int argc, char **argv, struct gvmd_config *cfg)
{
    bool from_cmdline[K__COUNT] = { false };
    const char *config_file = NULL;
    int c;

    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = GVM_LOG_INFO;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == '?' || c == ':') {
            if (optopt >= 0 && optopt < K__COUNT && long_opts[optopt].has_arg)
                fprintf(stderr, "gvmd: option --%s needs a value.\n",
                        long_opts[optopt].name);
            else
                fprintf(stderr, "gvmd: unknown option '%s'.\n",
                        argv[optind - 1]);
            fprintf(stderr, "Try 'gvmd --help'.\n");
            return -1;
        }
        if (c == K_HELP) {
            config_usage(stdout);
            return 1;
        }
        if (c == K_VERSION) {
            printf("gvmd %s (protocol %d)\n", GVMD_VERSION, GVM_PROTOCOL_VERSION);
#ifdef GVMD_FAULT_INJECTION
            /* tests/lib.sh's need_fault_injection looks for this line. */
            printf("test build: fault injection (GVMD_FAULT) compiled in\n");
#endif
            return 1;
        }
        if (c == K_CONFIG) {
            config_file = optarg;
            continue;
        }
        if (set_key(cfg, (enum key)c, c == K_FOREGROUND ? NULL : optarg,
                    "command line") < 0)
            return -1;
        from_cmdline[c] = true;
    }
    if (optind < argc) {
        fprintf(stderr, "gvmd: unexpected argument '%s'.\nTry 'gvmd --help'.\n",
                argv[optind]);
        return -1;
    }
    if (config_file && read_file(cfg, config_file, from_cmdline) < 0)
        return -1;
    if (fill_defaults(cfg) < 0) {
        fprintf(stderr, "gvmd: out of memory.\n");
        return -1;
    }
    return 0;
}

void config_clear(struct gvmd_config *cfg)
{
    free(cfg->socket_path);
    free(cfg->ro_socket_path);
    free(cfg->catalog_path);
    free(cfg->libvirt_uri);
    free(cfg->state_dir);
    free(cfg->fuse_mount);
    memset(cfg, 0, sizeof(*cfg));
}
