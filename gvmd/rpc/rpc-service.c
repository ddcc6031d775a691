/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-service.c — the service methods: version, capabilities, events.
 */
#include "control.h"
#include "jsonutil.h"
#include "rpc.h"
#include "rpc-params.h"

int rpc_query_version(struct gvmd *d, struct rpc_call *call,
                      const struct rpc_params_query_version *p, json_t **result,
                      struct gvm_error *err)
{
    (void)d;
    (void)call;
    (void)p;
    *result = json_pack("{s:s, s:i}", "version", GVMD_VERSION,
                        "protocol", GVM_PROTOCOL_VERSION);
    if (!*result) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    return 0;
}

/*
 * What the qcow2 engine handles, stated for clients deciding whether gvmd
 * can take over an image: images using an incompatible feature it does not
 * know are refused as Unsupported when opened.
 */
static json_t *qcow2_capabilities(void)
{
    return json_pack(
        "{s:[i,i], s:i, s:{s:i, s:i}, s:[i], s:[s], s:[s,s], "
        "s:{s:[s], s:b}, s:[s,s,s], s:b, s:b}",
        "versions", 2, 3,
        "default-version", 3,
        "cluster-size", "min", 512, "max", 2 * 1024 * 1024,
        "refcount-bits", 16,
        "compat-features", "lazy-refcounts",
        "incompat-features", "dirty", "corrupt",
        "compression", "read", "zlib", "write", 0,
        "unsupported-features", "external-data-file", "extended-l2",
        "compression-type-zstd",
        "internal-snapshots-preserved", 1,
        "backing-format-required", 1);
}

int rpc_query_capabilities(struct gvmd *d, struct rpc_call *call,
                           const struct rpc_params_query_capabilities *p,
                           json_t **result, struct gvm_error *err)
{
    json_t *qcow2 = qcow2_capabilities();

    (void)d;
    (void)call;
    (void)p;
    /* "live": this build drives libvirt for running domains (live.c,
     * live-job.c, snapshot-live.c); query-virt says whether libvirt is
     * reachable now, which this non-blocking call must not ask. */
    *result = qcow2 ? json_pack("{s:[s,s], s:[s,s], s:o, s:b, s:i, s:{s:i, s:i, s:i, s:i}}",
                                "backends", "dir", "gluster",
                                "formats", "qcow2", "raw",
                                "qcow2", qcow2,
                                "live", 1,
                                "protocol", GVM_PROTOCOL_VERSION,
                                "limits",
                                "max-message", GVM_MAX_MESSAGE,
                                "max-depth", GVM_MAX_DEPTH,
                                "max-string", GVM_MAX_STRING,
                                "max-batch", GVM_MAX_BATCH)
                  : NULL;
    if (!*result) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    return 0;
}

int rpc_events_subscribe(struct gvmd *d, struct rpc_call *call,
                         const struct rpc_params_events_subscribe *p,
                         json_t **result, struct gvm_error *err)
{
    (void)d;
    (void)p;
    (void)err;
    rpc_call_subscribe(call);
    *result = json_object();
    return *result ? 0 : -1;
}
