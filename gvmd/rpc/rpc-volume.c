/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-volume.c — volume-add, volume-list, volume-info, volume-remove.
 *
 * The RPC layer has already checked the top-level params against the spec in
 * methods.def (types, required, unknown names) and hands them over as
 * struct rpc_params_<method> (rpc-params.h); here the contents are
 * validated: names, backends, each server object (its keys included), the
 * debug range, the dir path.
 *
 * VOLUME: {"id","name","backend","volume"? (gluster),"path"? (dir),
 *          "servers":[{"type":"tcp"|"rdma","host","port"} |
 *                     {"type":"unix","socket"}],"debug"}
 */
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "rpc-params.h"
#include "gluster-volfile.h"
#include "jsonutil.h"
#include "volume.h"

/* Budget for probing every server of a volume in volume-info: the probes run
 * in parallel, so this bounds the whole answer, not each server. */
#define INFO_PROBE_TIMEOUT_MS 300

static json_t *server_json(const struct gvm_server *s)
{
    if (s->transport == GVM_TRANSPORT_UNIX)
        return json_pack("{s:s, s:s}", "type", "unix", "socket",
                         s->socket ? s->socket : "");
    return json_pack("{s:s, s:s, s:i}", "type", gvm_transport_name(s->transport),
                     "host", s->host ? s->host : "",
                     "port", s->port ? s->port : GVM_GLUSTER_PORT);
}

static json_t *volume_json(const struct catalog_volume *v)
{
    json_t *servers = json_array();
    json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:i}",
                          "id", (json_int_t)v->id, "name", v->name,
                          "backend", catalog_backend_name(v->backend),
                          "servers", servers, "debug", v->debug);
    int bad = 0;

    if (!o)
        return NULL;
    for (size_t i = 0; i < v->nservers; i++)
        bad |= gvm_json_append(servers, server_json(&v->servers[i]));
    if (v->backend == CATALOG_BACKEND_GLUSTER)
        bad |= gvm_json_set(o, "volume", json_string(v->gluster_volume));
    else
        bad |= gvm_json_set(o, "path", json_string(v->root_path));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* servers[i] → s; err names the parameter servers[i].key at fault. */
static int parse_server(json_t *j, size_t i, struct gvm_server *s,
                        struct gvm_error *err)
{
    char pname[48];
    snprintf(pname, sizeof pname, "servers[%zu]", i);
    memset(s, 0, sizeof *s);
    if (!json_is_object(j)) {
        gvm_error_param(err, pname, "'%s' must be an object like "
                        "{\"type\":\"tcp\",\"host\":H,\"port\":P} or "
                        "{\"type\":\"unix\",\"socket\":S}.", pname);
        return -1;
    }
    json_t *type = json_object_get(j, "type");
    if (!json_is_string(type) ||
        gvm_transport_parse(json_string_value(type), &s->transport) < 0) {
        gvm_error_param(err, pname, "'%s.type' must be \"tcp\", \"rdma\" or "
                        "\"unix\".", pname);
        return -1;
    }
    bool is_unix = s->transport == GVM_TRANSPORT_UNIX;
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val) {
        bool known = strcmp(key, "type") == 0 ||
                     (is_unix ? strcmp(key, "socket") == 0
                              : (strcmp(key, "host") == 0 ||
                                 strcmp(key, "port") == 0));
        if (!known) {
            gvm_error_param(err, pname, "'%s' has an unknown key '%s' (a %s "
                            "server takes %s).", pname, key,
                            json_string_value(type),
                            is_unix ? "type and socket"
                                    : "type, host and port");
            return -1;
        }
    }
    if (is_unix) {
        json_t *sock = json_object_get(j, "socket");
        const char *sv = json_string_value(sock);
        if (!sv || !*sv) {
            gvm_error_param(err, pname, "'%s.socket' must be the path of the "
                            "unix socket.", pname);
            return -1;
        }
        if (strlen(sv) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            gvm_error_param(err, pname, "'%s.socket' is too long for a unix "
                            "socket path.", pname);
            return -1;
        }
        s->socket = strdup(sv);
        return s->socket ? 0 : -1;
    }
    const char *hv = json_string_value(json_object_get(j, "host"));
    if (!hv || !*hv || strlen(hv) > 255) {
        gvm_error_param(err, pname, "'%s.host' must be a host name or "
                        "address.", pname);
        return -1;
    }
    json_t *port = json_object_get(j, "port");
    if (port) {
        json_int_t p = json_integer_value(port);
        if (!json_is_integer(port) || p < 1 || p > 65535) {
            gvm_error_param(err, pname, "'%s.port' must be an integer in "
                            "1..65535.", pname);
            return -1;
        }
        s->port = (int)p;
    }
    /* "[::1]" as written in URIs: store the bare address. */
    size_t hl = strlen(hv);
    if (hv[0] == '[' && hl > 2 && hv[hl - 1] == ']')
        s->host = strndup(hv + 1, hl - 2);
    else
        s->host = strdup(hv);
    return s->host ? 0 : -1;
}

int rpc_volume_add(struct gvmd *d, struct rpc_call *call,
                   const struct rpc_params_volume_add *p, json_t **result,
                   struct gvm_error *err)
{
    struct catalog_volume vol = { .debug = VOLUME_DEFAULT_DEBUG };
    int ret = -1;

    if (!volumes_name_valid(p->name)) {
        gvm_error_param(err, "name", "The volume name '%s' is not valid: use "
                        "1 to 64 of the characters A-Z a-z 0-9 . _ -.",
                        p->name);
        goto out;
    }
    if (catalog_backend_parse(p->backend, &vol.backend) < 0) {
        gvm_error_param(err, "backend", "The backend '%s' is not known: use "
                        "\"gluster\" or \"dir\".", p->backend);
        goto out;
    }
    if (p->has_debug) {
        if (p->debug < 0 || p->debug > 9) {
            gvm_error_param(err, "debug", "The debug level %lld is not in "
                            "0..9.", (long long)p->debug);
            goto out;
        }
        vol.debug = (int)p->debug;
    }
    if (!(vol.name = strdup(p->name)))
        goto oom;

    if (vol.backend == CATALOG_BACKEND_DIR) {
        if (p->volume || p->servers) {
            gvm_error_param(err, p->volume ? "volume" : "servers",
                            "'%s' is only for gluster volumes.",
                            p->volume ? "volume" : "servers");
            goto out;
        }
        if (!p->path) {
            gvm_error_param(err, "path", "A dir volume needs 'path', the "
                            "absolute path of its root directory.");
            goto out;
        }
        if (!(vol.root_path = strdup(p->path)))
            goto oom;
    } else {
        if (p->path) {
            gvm_error_param(err, "path", "'path' is only for dir volumes.");
            goto out;
        }
        const char *gv = p->volume;
        if (!gv || !*gv) {
            gvm_error_param(err, "volume", "A gluster volume needs 'volume', "
                            "the gluster volume name.");
            goto out;
        }
        if (strchr(gv, '/')) {
            gvm_error_param(err, "volume", "The gluster volume name '%s' may "
                            "not contain '/'.", gv);
            goto out;
        }
        if (!p->servers || json_array_size(p->servers) == 0) {
            gvm_error_param(err, "servers", "A gluster volume needs 'servers', "
                            "a list of at least one server.");
            goto out;
        }
        if (!(vol.gluster_volume = strdup(gv)))
            goto oom;
        size_t n = json_array_size(p->servers);
        if (!(vol.servers = calloc(n, sizeof *vol.servers)))
            goto oom;
        for (size_t i = 0; i < n; i++) {
            vol.nservers = i + 1;
            if (parse_server(json_array_get(p->servers, i), i, &vol.servers[i],
                             err) < 0) {
                if (!gvm_error_isset(err))
                    goto oom;
                goto out;
            }
        }
    }

    if (volumes_add(d->vols, &vol, err) < 0)
        goto out;
    /* Answer with the row as stored (canonical path, defaults). */
    struct catalog_volume stored;
    if (volumes_get_by_id(d->vols, vol.id, &stored, err) < 0)
        goto out;
    *result = volume_json(&stored);
    catalog_volume_clear(&stored);
    if (!*result)
        goto oom;
    ret = 0;
    goto out;
oom:
    gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
out:
    catalog_volume_clear(&vol);
    return ret;
}

int rpc_volume_list(struct gvmd *d, struct rpc_call *call,
                    const struct rpc_params_volume_list *p, json_t **result,
                    struct gvm_error *err)
{
    struct catalog_volume *vols = NULL;
    size_t n = 0;
    if (volumes_list(d->vols, &vols, &n, err) < 0)
        return -1;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (gvm_json_append(arr, volume_json(&vols[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    catalog_volumes_free(vols, n);
    if (!arr) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    *result = arr;
    return 0;
}

/* {"safe": bool, "missing": [{option, want, why}]}: the volume's options
 * against gluster's `virt` group, read from the client volfile; null when
 * the servers gave no volfile; NULL on ENOMEM. */
static json_t *vm_options_json(struct gvm_store *st)
{
    _cleanup_free_ char *text = NULL;
    size_t max = gluster_volfile_vm_checks();
    _cleanup_free_ struct gluster_vm_option *miss = calloc(max, sizeof *miss);
    if (!miss)
        return NULL;
    if (st->ops->volfile(st, &text) < 0)
        return json_null();
    int n = gluster_volfile_vm_check(text, miss, max);
    if (n < 0)
        return json_null();
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (int i = 0; i < n; i++) {
        if (gvm_json_append(arr, json_pack("{s:s, s:s, s:s}",
                                           "option", miss[i].option,
                                           "want", miss[i].want,
                                           "why", miss[i].why)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return json_pack("{s:b, s:o}", "safe", n == 0, "missing", arr);
}

int rpc_volume_info(struct gvmd *d, struct rpc_call *call,
                    const struct rpc_params_volume_info *p, json_t **result,
                    struct gvm_error *err)
{
    struct catalog_volume vol;
    if (volumes_get(d->vols, p->name, &vol, err) < 0)
        return -1;
    _cleanup_json_ json_t *o = volume_json(&vol);
    if (!o) {

        catalog_volume_clear(&vol);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    int bad = 0;

    /* Reachability: all servers at once, within one short budget, so two

     * dead servers cost no more than one. */
    if (vol.nservers > 0) {
        _cleanup_free_ int *reach = calloc(vol.nservers, sizeof *reach);
        _cleanup_free_ int *errs = calloc(vol.nservers, sizeof *errs);
        if (reach && errs) {
            store_gluster_probe_all(vol.servers, vol.nservers,
                                    INFO_PROBE_TIMEOUT_MS, reach, errs);
            json_t *servers = json_object_get(o, "servers");
            for (size_t i = 0; i < vol.nservers; i++) {
                json_t *s = json_array_get(servers, i);
                if (reach[i] < 0) {
                    bad |= gvm_json_set(s, "reachable", json_null());
                } else {
                    bad |= gvm_json_set(s, "reachable", json_boolean(reach[i]));
                    if (!reach[i])
                        bad |= gvm_json_set(s, "error",
                                            json_string(strerror(errs[i])));
                }
            }
        }
    }

    /* Space, through the volume's store (connecting it if it is not yet).
     * A volume that cannot be reached is still described: the error goes
     * into the answer instead of failing the whole call. */
    struct gvm_store *st = NULL;
    struct gvm_error serr = { 0 };
    uint64_t free_b = 0, total_b = 0;
    int r = volumes_store_by_id(d->vols, vol.id, &st, &serr);
    if (r == 0) {
        r = st->ops->statvfs(st, &free_b, &total_b);
        if (r < 0)
            gvm_error_set_errno(&serr, GVM_ERR_STORAGE, r,
                                "Cannot read the free space of volume '%s'",
                                vol.name);
    }
    if (r == 0 && st->ops->volfile)
        bad |= gvm_json_set(o, "vm-options", vm_options_json(st));
    if (r == 0) {
        bad |= gvm_json_set(o, "free-bytes", json_integer((json_int_t)free_b));
        bad |= gvm_json_set(o, "total-bytes", json_integer((json_int_t)total_b));
        bad |= gvm_json_set(o, "connected", json_true());
    } else {
        bad |= gvm_json_set(o, "free-bytes", json_null());
        bad |= gvm_json_set(o, "total-bytes", json_null());
        bad |= gvm_json_set(o, "connected", json_false());
        bad |= gvm_json_set(o, "storage-error", json_string(serr.message));
    }
    json_int_t images = catalog_volume_image_count(d->cat, vol.id, err);
    catalog_volume_clear(&vol);
    if (images < 0)
        return -1;
    bad |= gvm_json_set(o, "images", json_integer(images));
    if (bad)
        return gvm_error_oom(err);
    *result = steal_pointer(&o);
    return 0;
}

int rpc_volume_remove(struct gvmd *d, struct rpc_call *call,
                      const struct rpc_params_volume_remove *p, json_t **result,
                      struct gvm_error *err)
{
    if (volumes_remove(d->vols, p->name, err) < 0)
        return -1;
    *result = json_object();
    return 0;
}
