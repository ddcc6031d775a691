/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-virt.c — query-virt: the state of gvmd's libvirt connection.  It
 * connects (or reconnects) if needed, so it also tells whether gvmd can
 * reach libvirt right now; not reaching it is a result, not an error.
 */
#include "rpc-params.h"
#include "jsonutil.h"
#include "rpc.h"
#include "virt.h"

int rpc_query_virt(struct gvmd *d, struct rpc_call *call,
                   const struct rpc_params_query_virt *p, json_t **result,
                   struct gvm_error *err)
{
    struct gvm_error verr;
    int ndomains = 0;
    json_t *o;

    (void)call;
    (void)p;
    gvm_error_clear(&verr);
    /* configured false (libvirt-uri none) tells "this host has no libvirt,
     * by choice" from "libvirt is down" (configured, not connected). */
    bool configured = virt_configured(d->virt);
    if (virt_connect(d->virt, &ndomains, &verr) < 0)
        o = json_pack("{sb sb ss sn ss}", "configured", configured,
                      "connected", 0, "uri", virt_uri(d->virt),
                      "domains", "error", verr.message);
    else
        o = json_pack("{sb sb ss si sn}", "configured", 1,
                      "connected", 1, "uri", virt_uri(d->virt),
                      "domains", ndomains, "error");
    if (!o) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    *result = o;
    return 0;
}
