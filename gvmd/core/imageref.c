/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * imageref.c — parsing the IMAGE references of PROTOCOL.md.
 *
 * Accepted forms, tried in this order on a string:
 *   "json:{...}"       QEMU's json: pseudo-protocol for the gluster driver
 *                      (also wrapped in a format driver: {"driver":"qcow2",
 *                      "file":{"driver":"gluster",...}});
 *   "gluster...://"    a gluster URI as QEMU documents it:
 *                      gluster[+tcp|+unix|+rdma]://[server[:port]]/volname/image[?socket=...]
 *   all digits         a catalog id (> 0), for command-line convenience;
 *   "VOLUME:PATH"      a registered volume and a path under its root.
 * A JSON integer is a catalog id.
 *
 * Decisions where QEMU leaves room, written down once here:
 *  - gluster:// and gluster+tcp:// with no server mean "localhost", as QEMU's
 *    block/gluster.c does (its docs only say the server is optional; the code
 *    falls back to localhost).  The port may be absent, empty or 0: all mean
 *    the default 24007, stored as 0.
 *  - gluster+rdma:// is kept as transport rdma (QEMU itself falls back to
 *    tcp with a warning because glusterd serves volfiles over tcp only; the
 *    store decides what to do with it).
 *  - Percent-escapes (%XX) are decoded in the path (volume and image, before
 *    the path is split, as an RFC 3986 parser does) and in query names and
 *    values; %00 and malformed escapes are refused.  Host names are not
 *    decoded: a host containing '%' is refused.  imageref_format_uri()
 *    escapes what it must so that parsing its output gives back the input.
 *  - A user-info part (user@host) and a fragment (#...) are refused: QEMU
 *    ignores them, but silently dropping part of a reference hides typos.
 *  - The socket= value must be an absolute path that fits in sun_path.
 *  - In the json: form, "type" may be "tcp" or "inet" (QEMU's QAPI name;
 *    QEMU accepts "tcp" as the legacy spelling), "unix" or "rdma"; "port"
 *    may be an integer or a string of digits (QAPI declares it a string);
 *    a unix server's socket may be given as "socket" or "path".  "debug"
 *    and "logfile" are accepted and ignored (the volume's own settings
 *    apply); any other key is refused, QEMU's flattened spelling
 *    ("server.0.host") included: write the nested form.
 *  - Gluster volume names follow the same rule as registered volume names
 *    ([A-Za-z0-9._-]{1,64}), which gluster's own rule fits inside.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "imageref.h"
#include "jsonutil.h"

#define VOLNAME_MAX 64
#define HOST_MAX    255
#define JSON_NEST_MAX 4     /* format drivers wrapping the gluster one */

/* Fill err as INVALID_PARAMS naming param; always returns -EINVAL. */
static int GVM_PRINTF(3, 4)
bad(struct gvm_error *err, const char *param, const char *fmt, ...)
{
    char msg[GVM_ERROR_MSG_MAX - 80];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gvm_error_param(err, param, "Parameter '%s': %s", param, msg);
    return -EINVAL;
}

static bool volname_valid(const char *s, size_t len)
{
    if (len == 0 || len > VOLNAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int check_volname(const char *s, size_t len, const char *param,
                         struct gvm_error *err)
{
    if (len == 0)
        return bad(err, param, "the volume name is empty.");
    if (len > VOLNAME_MAX)
        return bad(err, param, "the volume name is longer than %d characters.",
                   VOLNAME_MAX);
    if (!volname_valid(s, len))
        return bad(err, param, "the volume name '%.*s' may contain only "
                   "letters, digits, '.', '_' and '-'.", (int)len, s);
    return 0;
}

/* Host names and IPv4 addresses (RFC 3986 reg-name without escapes or
 * sub-delims, which no resolver accepts anyway). */
static bool hostname_valid(const char *s, size_t len)
{
    if (len == 0 || len > HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
              c == '~'))
            return false;
    }
    return true;
}

static bool ipv6_valid(const char *s, size_t len)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;

    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode %XX escapes of s[0..len) into a new string.  NULL with *why set
 * on a malformed escape or an escaped NUL (or ENOMEM: *why = NULL). */
static char *pct_decode(const char *s, size_t len, const char **why)
{
    char *out = malloc(len + 1), *o = out;

    *why = NULL;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        if (len - i < 3 || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
            *why = "has a '%' that is not followed by two hex digits";
            free(out);
            return NULL;
        }
        char c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
        if (c == '\0') {
            *why = "has an escaped NUL (%00)";
            free(out);
            return NULL;
        }
        *o++ = c;
        i += 2;
    }
    *o = '\0';
    return out;
}

static int parse_port(const char *s, size_t len, const char *param,
                      struct gvm_error *err, int *port)
{
    long v = 0;

    if (len == 0) {         /* "host:" — RFC 3986 allows an empty port */
        *port = 0;
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return bad(err, param, "the port '%.*s' is not a number.",
                       (int)(len > 32 ? 32 : len), s);
        if (v <= 65535)
            v = v * 10 + (s[i] - '0');
    }
    if (v > 65535)
        return bad(err, param, "the port '%.*s' is out of range (0-65535).",
                   (int)(len > 32 ? 32 : len), s);
    *port = (int)v;
    return 0;
}

static int check_socket_path(const char *sock, const char *param,
                             struct gvm_error *err)
{
    if (sock[0] != '/')
        return bad(err, param, "the unix socket '%s' is not an absolute path.",
                   sock);
    if (strlen(sock) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return bad(err, param, "the unix socket path is longer than %zu bytes.",
                   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    return 0;
}

/* Split "/volname/image" (already decoded) into out->volume and out->path.
 * Leading and separating slashes may repeat, as QEMU allows. */
static int split_volume_path(const char *p, const char *param,
                             struct imageref *out, struct gvm_error *err)
{
    p += strspn(p, "/");
    size_t vlen = strcspn(p, "/");
    if (vlen == 0)
        return bad(err, param, "the gluster URI names no volume "
                   "(expected gluster://SERVER/VOLUME/PATH).");
    int r = check_volname(p, vlen, param, err);
    if (r < 0)
        return r;
    const char *img = p + vlen;
    img += strspn(img, "/");
    if (*img == '\0')
        return bad(err, param, "the gluster URI names no image path after "
                   "the volume '%.*s' (expected gluster://SERVER/VOLUME/PATH).",
                   (int)vlen, p);
    r = path_check(img, param, err);
    if (r < 0)
        return r;
    out->volume = strndup(p, vlen);
    out->path = strdup(img);
    if (!out->volume || !out->path)
        return -ENOMEM;
    return 0;
}

/* The scheme and its transport suffix; on success *rest points just past
 * "://". */
static int parse_scheme(const char *uri, const char *param,
                        enum gvm_transport *tr, const char **rest,
                        struct gvm_error *err)
{
    static const char scheme[] = "gluster";
    const char *p, *sep;

    if (strncmp(uri, scheme, strlen(scheme)) != 0)
        return bad(err, param, "'%.64s' is not a gluster URI.", uri);
    p = uri + strlen(scheme);
    sep = strstr(p, "://");
    if (!sep)
        return bad(err, param, "the gluster URI lacks '://' after the scheme.");
    *tr = GVM_TRANSPORT_TCP;
    if (p != sep) {
        size_t tlen = (size_t)(sep - p);
        bool known = (tlen == 4 && !strncmp(p, "+tcp", 4)) ||
                     (tlen == 5 && !strncmp(p, "+unix", 5)) ||
                     (tlen == 5 && !strncmp(p, "+rdma", 5));
        if (!known)
            return bad(err, param, "the gluster URI has an unknown transport "
                       "'%.*s': use gluster://, gluster+tcp://, gluster+unix:// "
                       "or gluster+rdma://.", (int)(tlen > 32 ? 32 : tlen), p);
        if (p[1] == 'u')
            *tr = GVM_TRANSPORT_UNIX;
        else if (p[1] == 'r')
            *tr = GVM_TRANSPORT_RDMA;
    }
    *rest = sep + 3;
    return 0;
}

/* The server part of a URI's authority; host stays NULL when it is empty. */
struct authority {
    const char *host;
    size_t hlen;
    bool has_port;
    int port;
};

/* "[" ipv6 "]" [":" port] */
static int parse_authority_ipv6(const char *auth, size_t alen,
                                const char *param, struct authority *a,
                                struct gvm_error *err)
{
    const char *auth_end = auth + alen;
    const char *close = memchr(auth, ']', alen);

    if (!close)
        return bad(err, param, "the gluster URI has an unclosed '[' "
                   "in its server address.");
    a->host = auth + 1;
    a->hlen = (size_t)(close - a->host);
    if (!ipv6_valid(a->host, a->hlen))
        return bad(err, param, "'%.*s' in brackets is not an IPv6 address.",
                   (int)(a->hlen > 64 ? 64 : a->hlen), a->host);
    const char *after = close + 1;
    if (after < auth_end) {
        if (*after != ':')
            return bad(err, param, "the gluster URI has '%.*s' after the "
                       "IPv6 address where ':PORT' or '/' should be.",
                       (int)(auth_end - after > 32 ? 32 : auth_end - after),
                       after);
        a->has_port = true;
        return parse_port(after + 1, (size_t)(auth_end - after - 1), param,
                          err, &a->port);
    }
    return 0;
}

/* host [":" port], host a name or an IPv4 address, possibly empty */
static int parse_authority_host(const char *auth, size_t alen,
                                const char *param, struct authority *a,
                                struct gvm_error *err)
{
    const char *auth_end = auth + alen;
    const char *colon = memchr(auth, ':', alen);
    int r;

    a->host = auth;
    a->hlen = colon ? (size_t)(colon - auth) : alen;
    if (colon) {
        if (memchr(colon + 1, ':', (size_t)(auth_end - colon - 1)) ||
            memchr(auth, ']', alen))
            return bad(err, param, "the gluster URI's server '%.*s' has "
                       "more than one ':' (put an IPv6 address in "
                       "brackets).", (int)(alen > 64 ? 64 : alen), auth);
        a->has_port = true;
        r = parse_port(colon + 1, (size_t)(auth_end - colon - 1), param,
                       err, &a->port);
        if (r < 0)
            return r;
    }
    if (a->hlen > 0 && !hostname_valid(a->host, a->hlen))
        return bad(err, param, "the server '%.*s' is not a valid host "
                   "name or IPv4 address.", (int)(a->hlen > 64 ? 64 : a->hlen),
                   a->host);
    if (a->hlen == 0)
        a->host = NULL;
    return 0;
}

/* authority: [host | "[" ipv6 "]"] [":" port]; *p moves past it. */
static int parse_authority(const char **p, const char *param,
                           struct authority *a, struct gvm_error *err)
{
    const char *auth = *p;
    size_t alen = strcspn(auth, "/?");
    int r = 0;

    memset(a, 0, sizeof(*a));
    if (memchr(auth, '@', alen))
        return bad(err, param, "the gluster URI has a user name ('user@'), "
                   "which gluster does not use.");
    if (alen > 0 && auth[0] == '[')
        r = parse_authority_ipv6(auth, alen, param, a, err);
    else if (alen > 0)
        r = parse_authority_host(auth, alen, param, a, err);
    if (r < 0)
        return r;
    *p = auth + alen;
    return 0;
}

/* One "name=value" item of the query: only socket= is known, and only for
 * unix. */
static int parse_query_item(const char *q, size_t ilen, enum gvm_transport tr,
                            const char *param, char **sock,
                            struct gvm_error *err)
{
    const char *eq = memchr(q, '=', ilen);
    size_t nlen = eq ? (size_t)(eq - q) : ilen;
    const char *why;

    _cleanup_free_ char *name = pct_decode(q, nlen, &why);
    if (!name)
        return why ? bad(err, param, "a query parameter name %s.", why)
                   : -ENOMEM;
    if (strcmp(name, "socket") != 0)
        return bad(err, param, "the gluster URI has an unknown query "
                   "parameter '%.32s' (only 'socket' is known).", name);
    if (tr != GVM_TRANSPORT_UNIX)
        return bad(err, param, "'socket=' is valid only with "
                   "gluster+unix://; a %s URI names a server instead.",
                   gvm_transport_name(tr));
    if (*sock)
        return bad(err, param, "the gluster URI gives 'socket' twice.");
    if (!eq || ilen == nlen + 1)
        return bad(err, param, "'socket=' has no value.");
    *sock = pct_decode(eq + 1, ilen - nlen - 1, &why);
    if (!*sock)
        return why ? bad(err, param, "the socket value %s.", why) : -ENOMEM;
    return check_socket_path(*sock, param, err);
}

/* The query after '?' (q points past it). */
static int parse_query(const char *q, enum gvm_transport tr,
                       const char *param, char **sock, struct gvm_error *err)
{
    while (*q) {
        size_t ilen = strcspn(q, "&");
        if (ilen == 0) {        /* "?&" or trailing '&' */
            q += 1;
            continue;
        }
        int r = parse_query_item(q, ilen, tr, param, sock, err);
        if (r < 0)
            return r;
        q += ilen;
        if (*q == '&')
            q++;
    }
    return 0;
}

/* Fill out->servers with the one server the URI names. */
static int set_server(struct imageref *out, enum gvm_transport tr,
                      const struct authority *a, char **sock)
{
    out->servers = calloc(1, sizeof(*out->servers));
    if (!out->servers)
        return -ENOMEM;
    out->nservers = 1;
    out->servers[0].transport = tr;
    if (tr == GVM_TRANSPORT_UNIX) {
        out->servers[0].socket = steal_pointer(sock);
    } else {
        /* QEMU's block/gluster.c uses localhost when the server is left
         * out; so do we, rather than refuse what QEMU accepts. */
        out->servers[0].host = a->host ? strndup(a->host, a->hlen)
                                       : strdup("localhost");
        out->servers[0].port = a->port;
        if (!out->servers[0].host)
            return -ENOMEM;
    }
    return 0;
}

int imageref_parse_gluster_uri(const char *uri, const char *param,
                               struct imageref *out, struct gvm_error *err)
{
    enum gvm_transport tr;
    struct authority a;
    const char *p = NULL;
    _cleanup_free_ char *path = NULL, *sock = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    if (!param)
        param = "image";
    r = parse_scheme(uri, param, &tr, &p, err);
    if (r < 0)
        return r;

    if (strchr(p, '#'))
        return bad(err, param, "the gluster URI has a fragment ('#...'), "
                   "which means nothing for an image.");

    r = parse_authority(&p, param, &a, err);
    if (r < 0)
        return r;

    if (tr == GVM_TRANSPORT_UNIX && (a.host || a.has_port))
        return bad(err, param, "a gluster+unix URI takes no server or port "
                   "(write gluster+unix:///VOLUME/PATH?socket=SOCKET).");

    /* path */
    size_t plen = strcspn(p, "?");
    if (plen == 0)
        return bad(err, param, "the gluster URI names no volume "
                   "(expected gluster://SERVER/VOLUME/PATH).");
    const char *why;
    path = pct_decode(p, plen, &why);
    if (!path) {
        if (!why)
            return -ENOMEM;
        return bad(err, param, "the path of the gluster URI %s.", why);
    }
    r = split_volume_path(path, param, out, err);
    if (r < 0)
        goto fail;
    p += plen;

    if (*p == '?') {
        r = parse_query(p + 1, tr, param, &sock, err);
        if (r < 0)
            goto fail;
    }
    if (tr == GVM_TRANSPORT_UNIX && !sock) {
        r = bad(err, param, "a gluster+unix URI needs '?socket=PATH' naming "
                "glusterd's unix socket.");
        goto fail;
    }

    r = set_server(out, tr, &a, &sock);
    if (r < 0)
        goto fail;
    out->kind = IMAGEREF_GLUSTER;
    return 0;

fail:
    imageref_clear(out);
    return r;
}

/* ---- json: pseudo-protocol ---------------------------------------------- */

static int json_port(json_t *v, const char *param, size_t idx, int *port,
                     struct gvm_error *err)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > 65535)
            return bad(err, param, "server %zu: port %lld is out of range "
                       "(0-65535).", idx, (long long)n);
        *port = (int)n;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = strlen(s);
        if (len == 0)
            return bad(err, param, "server %zu: the port is an empty string.",
                       idx);
        for (size_t i = 0; i < len; i++)
            if (s[i] < '0' || s[i] > '9')
                return bad(err, param, "server %zu: the port '%.32s' is not "
                           "a number.", idx, s);
        if (len > 5 || atoi(s) > 65535)
            return bad(err, param, "server %zu: the port '%.32s' is out of "
                       "range (0-65535).", idx, s);
        *port = atoi(s);
        return 0;
    }
    return bad(err, param, "server %zu: 'port' must be an integer or a "
               "string of digits.", idx);
}

static int json_server(json_t *o, size_t idx, const char *param,
                       struct gvm_server *s, struct gvm_error *err)
{
    const char *key;
    json_t *v;

    if (!json_is_object(o))
        return bad(err, param, "server %zu is not an object.", idx);
    json_t *type = json_object_get(o, "type");
    if (!json_is_string(type))
        return bad(err, param, "server %zu has no 'type' string "
                   "(tcp, inet, unix or rdma).", idx);
    const char *t = json_string_value(type);
    if (!strcmp(t, "tcp") || !strcmp(t, "inet"))
        s->transport = GVM_TRANSPORT_TCP;
    else if (!strcmp(t, "rdma"))
        s->transport = GVM_TRANSPORT_RDMA;
    else if (!strcmp(t, "unix"))
        s->transport = GVM_TRANSPORT_UNIX;
    else
        return bad(err, param, "server %zu has an unknown type '%.32s' "
                   "(use tcp, inet, unix or rdma).", idx, t);

    json_object_foreach(o, key, v) {
        bool ok = !strcmp(key, "type");
        if (s->transport == GVM_TRANSPORT_UNIX)
            ok = ok || !strcmp(key, "socket") || !strcmp(key, "path");
        else
            ok = ok || !strcmp(key, "host") || !strcmp(key, "port");
        if (!ok)
            return bad(err, param, "server %zu (type %s) has an unknown key "
                       "'%.32s'.", idx, t, key);
    }

    if (s->transport == GVM_TRANSPORT_UNIX) {
        json_t *sk = json_object_get(o, "socket");
        json_t *pk = json_object_get(o, "path");
        if (sk && pk)
            return bad(err, param, "server %zu gives both 'socket' and 'path'.",
                       idx);
        if (!sk)
            sk = pk;
        if (!json_is_string(sk) || !json_string_value(sk)[0])
            return bad(err, param, "server %zu (type unix) needs a 'socket' "
                       "string.", idx);
        int r = check_socket_path(json_string_value(sk), param, err);
        if (r < 0)
            return r;
        s->socket = strdup(json_string_value(sk));
        return s->socket ? 0 : -ENOMEM;
    }

    json_t *h = json_object_get(o, "host");
    if (!json_is_string(h) || !json_string_value(h)[0])
        return bad(err, param, "server %zu (type %s) needs a 'host' string.",
                   idx, t);
    const char *hs = json_string_value(h);
    size_t hl = strlen(hs);
    if (strchr(hs, ':') ? !ipv6_valid(hs, hl) : !hostname_valid(hs, hl))
        return bad(err, param, "server %zu: '%.64s' is not a valid host name, "
                   "IPv4 or IPv6 address.", idx, hs);
    json_t *pv = json_object_get(o, "port");
    if (pv) {
        int r = json_port(pv, param, idx, &s->port, err);
        if (r < 0)
            return r;
    }
    s->host = strdup(hs);
    return s->host ? 0 : -ENOMEM;
}

static int parse_json_ref(const char *text, const char *param,
                          struct imageref *out, struct gvm_error *err)
{
    json_error_t je;
    _cleanup_json_ json_t *root =
        json_loads(text, JSON_REJECT_DUPLICATES, &je);
    json_t *o = root;
    const char *key;
    json_t *v;
    int r;

    if (!root)
        return bad(err, param, "the json: reference is not valid JSON "
                   "(%s at character %d).", je.text, je.position);
    for (int depth = 0;; depth++) {
        if (!json_is_object(o))
            return bad(err, param, "the json: reference is not a JSON object.");
        json_t *drv = json_object_get(o, "driver");
        if (!json_is_string(drv))
            return bad(err, param, "the json: reference has no 'driver' string.");
        if (!strcmp(json_string_value(drv), "gluster"))
            break;
        /* A format driver ({"driver":"qcow2","file":{...}}): look inside. */
        json_t *file = json_object_get(o, "file");
        if (!json_is_object(file) || depth >= JSON_NEST_MAX)
            return bad(err, param, "the json: reference uses driver '%.32s'; "
                       "only 'gluster' (possibly under a format driver's "
                       "'file') is supported.", json_string_value(drv));
        o = file;
    }

    json_object_foreach(o, key, v) {
        if (strcmp(key, "driver") && strcmp(key, "volume") &&
            strcmp(key, "path") && strcmp(key, "server") &&
            strcmp(key, "debug") && strcmp(key, "logfile"))
            return bad(err, param, "the json: reference has an unknown key "
                       "'%.32s' (known: driver, volume, path, server, debug, "
                       "logfile).", key);
    }

    json_t *vol = json_object_get(o, "volume");
    json_t *path = json_object_get(o, "path");
    json_t *srv = json_object_get(o, "server");
    if (!json_is_string(vol))
        return bad(err, param, "the json: reference needs a 'volume' string.");
    if (!json_is_string(path))
        return bad(err, param, "the json: reference needs a 'path' string.");
    if (!json_is_array(srv) || json_array_size(srv) == 0)
        return bad(err, param, "the json: reference needs a non-empty "
                   "'server' array.");
    if (json_array_size(srv) > 64)
        return bad(err, param, "the json: reference lists more than 64 servers.");

    const char *vs = json_string_value(vol);
    r = check_volname(vs, strlen(vs), param, err);
    if (r < 0)
        return r;
    /* QEMU writes the path absolute within the volume ("/a.img"). */
    const char *ps = json_string_value(path);
    ps += strspn(ps, "/");
    if (*ps == '\0')
        return bad(err, param, "the json: reference's 'path' names no image.");
    r = path_check(ps, param, err);
    if (r < 0)
        return r;

    memset(out, 0, sizeof(*out));
    out->servers = calloc(json_array_size(srv), sizeof(*out->servers));
    out->volume = strdup(vs);
    out->path = strdup(ps);
    if (!out->servers || !out->volume || !out->path) {
        imageref_clear(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < json_array_size(srv); i++) {
        out->nservers = i + 1;
        r = json_server(json_array_get(srv, i), i, param, &out->servers[i], err);
        if (r < 0) {
            imageref_clear(out);
            return r;
        }
    }
    out->kind = IMAGEREF_GLUSTER;
    return 0;
}

/* ---- entry points ------------------------------------------------------- */

static int parse_id(int64_t id, const char *param, struct imageref *out,
                    struct gvm_error *err)
{
    if (id <= 0)
        return bad(err, param, "the catalog id %lld is not positive.",
                   (long long)id);
    out->kind = IMAGEREF_ID;
    out->id = id;
    return 0;
}

int imageref_parse_string(const char *s, const char *param,
                          struct imageref *out, struct gvm_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!param)
        param = "image";
    if (!s || !*s)
        return bad(err, param, "the image reference is empty.");
    if (strlen(s) > GVM_MAX_STRING)
        return bad(err, param, "the image reference is longer than %d bytes.",
                   GVM_MAX_STRING);

    if (!strncmp(s, "json:", 5)) {
        const char *j = s + 5;
        j += strspn(j, " \t");
        if (*j == '{')
            return parse_json_ref(j, param, out, err);
        /* else: a volume named "json", handled as VOLUME:PATH below */
    }
    if (!strncmp(s, "gluster+", 8) || !strncmp(s, "gluster://", 10))
        return imageref_parse_gluster_uri(s, param, out, err);

    size_t digits = strspn(s, "0123456789");
    if (s[digits] == '\0') {
        if (digits > 18)
            return bad(err, param, "the catalog id '%.32s' is too large.", s);
        return parse_id(strtoll(s, NULL, 10), param, out, err);
    }

    const char *colon = strchr(s, ':');
    if (!colon)
        return bad(err, param, "'%.64s' is not an image reference: use a "
                   "catalog id, VOLUME:PATH, a gluster:// URI or json:{...}.",
                   s);
    int r = check_volname(s, (size_t)(colon - s), param, err);
    if (r < 0)
        return r;
    if (colon[1] == '\0')
        return bad(err, param, "'%.64s' has no path after the volume name.", s);
    r = path_check(colon + 1, param, err);
    if (r < 0)
        return r;
    out->volume = strndup(s, (size_t)(colon - s));
    out->path = strdup(colon + 1);
    if (!out->volume || !out->path) {
        imageref_clear(out);
        return -ENOMEM;
    }
    out->kind = IMAGEREF_VOLPATH;
    return 0;
}

int imageref_parse_json(const json_t *v, const char *param,
                        struct imageref *out, struct gvm_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!param)
        param = "image";
    if (json_is_integer(v))
        return parse_id(json_integer_value(v), param, out, err);
    if (json_is_string(v))
        return imageref_parse_string(json_string_value(v), param, out, err);
    return bad(err, param, "an image reference must be an integer catalog id "
               "or a string (VOLUME:PATH, gluster:// URI or json:{...}).");
}

void imageref_clear(struct imageref *r)
{
    if (!r)
        return;
    free(r->volume);
    free(r->path);
    if (r->servers)
        gvm_servers_free(r->servers, r->nservers);
    memset(r, 0, sizeof(*r));
}

/* ---- formatting --------------------------------------------------------- */

struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
};

static void sb_putc(struct sbuf *b, char c)
{
    if (b->oom)
        return;
    if (b->len + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 128;
        char *n = realloc(b->s, cap);
        if (!n) {
            b->oom = true;
            return;
        }
        b->s = n;
        b->cap = cap;
    }
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    while (*s)
        sb_putc(b, *s++);
}

/* Append s, escaping everything but RFC 3986 unreserved characters and
 * the extra ones in `keep`. */
static void sb_escaped(struct sbuf *b, const char *s, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~' || (c && strchr(keep, c))) {
            sb_putc(b, (char)c);
        } else {
            sb_putc(b, '%');
            sb_putc(b, hex[c >> 4]);
            sb_putc(b, hex[c & 15]);
        }
    }
}

char *imageref_format_uri(const struct gvm_server *s, const char *volume,
                          const char *path)
{
    struct sbuf b = { 0 };
    char port[16];

    switch (s->transport) {
    case GVM_TRANSPORT_UNIX:
        sb_puts(&b, "gluster+unix://");
        break;
    case GVM_TRANSPORT_RDMA:
        sb_puts(&b, "gluster+rdma://");
        break;
    case GVM_TRANSPORT_TCP:
    default:
        sb_puts(&b, "gluster://");
        break;
    }
    if (s->transport != GVM_TRANSPORT_UNIX && s->host) {
        bool v6 = strchr(s->host, ':') != NULL;
        if (v6)
            sb_putc(&b, '[');
        sb_puts(&b, s->host);
        if (v6)
            sb_putc(&b, ']');
        if (s->port != 0 && s->port != GVM_GLUSTER_PORT) {
            snprintf(port, sizeof(port), ":%d", s->port);
            sb_puts(&b, port);
        }
    }
    sb_putc(&b, '/');
    sb_escaped(&b, volume, "");
    sb_putc(&b, '/');
    /* sub-delims and ':' '@' are legal in a path segment; '/' separates. */
    sb_escaped(&b, path, "/!$'()*+,;=:@");
    if (s->transport == GVM_TRANSPORT_UNIX) {
        sb_puts(&b, "?socket=");
        /* '&', '=', '#' and '+' would change the meaning of a query. */
        sb_escaped(&b, s->socket ? s->socket : "", "/!$'()*,;:@");
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
