/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gluster-volfile.c — check a gluster client volfile against the options of
 * gluster's `virt` group (/var/lib/glusterd/groups/virt), the profile that
 * virt-store deployments apply with `gluster volume set VOL group virt`.
 *
 * A volfile is a list of translators:
 *     volume NAME
 *         type CLASS/NAME
 *         option KEY VALUE
 *         subvolumes ...
 *     end-volume
 * Volume options show in it as translators present or absent
 * (performance.quick-read off: no performance/quick-read) or as translator
 * options (performance.strict-o-direct on: write-behind's strict-O_DIRECT).
 * Options the server alone applies (server quorum, self-heal daemon
 * settings) are not in a client volfile and are not checked.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "gluster-volfile.h"

/* What one translator says that the checks need. */
struct xl {
    char type[64];
    int strict_odirect;     /* write-behind strict-O_DIRECT: -1 unset */
    int filter_odirect;     /* protocol/client filter-O_DIRECT: -1 unset */
    int eager_lock;         /* replicate eager-lock: -1 unset */
    char quorum_type[16];   /* replicate quorum-type: "" unset */
};

/* What the whole graph says. */
struct graph {
    int volumes;
    bool quick_read, read_ahead, io_cache, shard;
    bool write_behind, wb_strict;
    bool client_filters_odirect;
    bool replicate, quorum_ok, eager_ok;
};

static int parse_bool(const char *v)
{
    static const char *const yes[] = { "on", "yes", "true", "enable", "1" };
    static const char *const no[] = { "off", "no", "false", "disable", "0" };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (!strcasecmp(v, yes[i]))
            return 1;
        if (!strcasecmp(v, no[i]))
            return 0;
    }
    return -1;
}

static void copy_word(char *dst, size_t len, const char *src)
{
    size_t n = 0;
    while (src[n] && !isspace((unsigned char)src[n]) && n + 1 < len) {
        dst[n] = src[n];
        n++;
    }
    dst[n] = '\0';
}

static void xl_option(struct xl *x, const char *key, const char *value)
{
    char v[32];
    copy_word(v, sizeof v, value);
    if (!strcmp(key, "strict-O_DIRECT"))
        x->strict_odirect = parse_bool(v);
    else if (!strcmp(key, "filter-O_DIRECT"))
        x->filter_odirect = parse_bool(v);
    else if (!strcmp(key, "eager-lock"))
        x->eager_lock = parse_bool(v);
    else if (!strcmp(key, "quorum-type"))
        copy_word(x->quorum_type, sizeof x->quorum_type, v);
}

static void xl_end(struct graph *g, const struct xl *x)
{
    g->volumes++;
    if (!strcmp(x->type, "performance/quick-read"))
        g->quick_read = true;
    else if (!strcmp(x->type, "performance/read-ahead"))
        g->read_ahead = true;
    else if (!strcmp(x->type, "performance/io-cache"))
        g->io_cache = true;
    else if (!strcmp(x->type, "features/shard"))
        g->shard = true;
    else if (!strcmp(x->type, "performance/write-behind")) {
        g->write_behind = true;
        g->wb_strict = x->strict_odirect == 1;
    } else if (!strcmp(x->type, "protocol/client")) {
        if (x->filter_odirect == 1)
            g->client_filters_odirect = true;
    } else if (!strcmp(x->type, "cluster/replicate")) {
        /* Every replica set must have quorum; "fixed" with a count set by
         * the administrator is a choice we do not second-guess. */
        bool q = !strcmp(x->quorum_type, "auto") || !strcmp(x->quorum_type, "fixed");
        g->quorum_ok = g->replicate ? g->quorum_ok && q : q;
        /* eager-lock is on unless switched off. */
        bool e = x->eager_lock != 0;
        g->eager_ok = g->replicate ? g->eager_ok && e : e;
        g->replicate = true;
    }
}

static void parse(const char *text, struct graph *g)
{
    struct xl x;
    bool in = false;
    const char *p = text;

    memset(g, 0, sizeof *g);
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[512];
        size_t n = len < sizeof line - 1 ? len : sizeof line - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        p += len + (eol ? 1 : 0);

        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (!strncmp(s, "volume ", 7)) {
            memset(&x, 0, sizeof x);
            x.strict_odirect = x.filter_odirect = x.eager_lock = -1;
            in = true;
        } else if (!in) {
            continue;
        } else if (!strncmp(s, "end-volume", 10)) {
            xl_end(g, &x);
            in = false;
        } else if (!strncmp(s, "type ", 5)) {
            copy_word(x.type, sizeof x.type, s + 5);
        } else if (!strncmp(s, "option ", 7)) {
            char key[64];
            const char *v = s + 7;
            while (isspace((unsigned char)*v))
                v++;
            copy_word(key, sizeof key, v);
            v += strlen(key);
            while (isspace((unsigned char)*v))
                v++;
            xl_option(&x, key, v);
        }
    }
}

struct check {
    struct gluster_vm_option opt;
    bool (*ok)(const struct graph *g);
};

static bool no_quick_read(const struct graph *g) { return !g->quick_read; }
static bool no_read_ahead(const struct graph *g) { return !g->read_ahead; }
static bool no_io_cache(const struct graph *g) { return !g->io_cache; }
static bool strict_odirect(const struct graph *g)
{ return !g->write_behind || g->wb_strict; }
static bool remote_dio_off(const struct graph *g)
{ return !g->client_filters_odirect; }
static bool quorum(const struct graph *g) { return !g->replicate || g->quorum_ok; }
static bool eager_lock(const struct graph *g) { return !g->replicate || g->eager_ok; }
static bool shard(const struct graph *g) { return g->shard; }

static const struct check CHECKS[] = {
    { { "performance.quick-read", "off",
        "Clients serve small files from a cache and read another client's "
        "writes stale." }, no_quick_read },
    { { "performance.read-ahead", "off",
        "Clients keep read-ahead pages and read another client's writes "
        "stale." }, no_read_ahead },
    { { "performance.io-cache", "off",
        "Clients serve file content from a cache and read another client's "
        "writes stale." }, no_io_cache },
    { { "performance.strict-o-direct", "on",
        "A guest disk opened with O_DIRECT (cache=none) still goes through "
        "write-behind, so writes the guest was told are done can be lost." },
      strict_odirect },
    { { "network.remote-dio", "disable",
        "The bricks drop O_DIRECT, so guest writes sit in the bricks' page "
        "cache." }, remote_dio_off },
    { { "cluster.quorum-type", "auto",
        "Without client quorum a replica can take writes alone and the "
        "images split-brain." }, quorum },
    { { "cluster.eager-lock", "enable",
        "Every guest write takes and drops a replica lock." }, eager_lock },
    { { "features.shard", "on",
        "A heal or a rebalance locks and copies whole images instead of "
        "shards." }, shard },
};

size_t gluster_volfile_vm_checks(void)
{
    return sizeof CHECKS / sizeof *CHECKS;
}

int gluster_volfile_vm_check(const char *text, struct gluster_vm_option *missing,
                             size_t max)
{
    struct graph g;
    int n = 0;

    parse(text, &g);
    if (g.volumes == 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof CHECKS / sizeof *CHECKS; i++) {
        if (CHECKS[i].ok(&g))
            continue;
        if ((size_t)n < max)
            missing[n] = CHECKS[i].opt;
        n++;
    }
    return n;
}
