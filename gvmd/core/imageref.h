/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * imageref.h — parsing the IMAGE references of PROTOCOL.md: catalog ids,
 * "VOLUME:PATH", gluster URIs as QEMU documents them, and the
 * json:{"driver":"gluster",...} pseudo-protocol.
 */
#ifndef GVMD_IMAGEREF_H
#define GVMD_IMAGEREF_H

#include <jansson.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

enum imageref_kind {
    IMAGEREF_ID,        /* integer catalog id                           */
    IMAGEREF_VOLPATH,   /* "VOLUME:PATH", volume as registered          */
    IMAGEREF_GLUSTER,   /* gluster URI or json: pseudo-protocol         */
};

struct imageref {
    enum imageref_kind kind;
    int64_t id;                 /* IMAGEREF_ID                            */
    char *volume;               /* registered name / gluster volume name  */
    char *path;                 /* inside the volume, passed path_check() */
    struct gvm_server *servers; /* IMAGEREF_GLUSTER: at least one         */
    size_t nservers;
};

/* Parse a JSON value (integer or string).  On error fills err as
 * INVALID_PARAMS naming `param` with what is wrong, returns -EINVAL. */
int imageref_parse_json(const json_t *v, const char *param,
                        struct imageref *out, struct gvm_error *err);
int imageref_parse_string(const char *s, const char *param,
                          struct imageref *out, struct gvm_error *err);
/* gluster[+tcp|+unix|+rdma]://[server[:port]]/volname/image[?socket=...] */
int imageref_parse_gluster_uri(const char *uri, const char *param,
                               struct imageref *out, struct gvm_error *err);
void imageref_clear(struct imageref *r);
/* gluster URI of a volume path on a server (for backing names, XML). */
char *imageref_format_uri(const struct gvm_server *s, const char *volume,
                          const char *path);

#endif
