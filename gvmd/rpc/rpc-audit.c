/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-audit.c — the chain-audit method: parameters to an audit scope
 * (audit.c does the work).
 *
 * chain-audit is flagged read-only (an audit without fix only reads
 * storage, libvirt and the catalog) and mutating (with fix it changes the
 * catalog and takes an op-id); the read-only socket refuses the fix here,
 * since the RPC layer decides by method, not by parameter.
 */
#include <string.h>

#include "audit.h"
#include "rpc-params.h"
#include "jsonutil.h"
#include "resolve.h"
#include "rpc.h"

int rpc_chain_audit(struct gvmd *d, struct rpc_call *call,
                    const struct rpc_params_chain_audit *p, json_t **result,
                    struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    struct audit_scope s = { 0 };

    if (p->image && p->domain) {
        gvm_error_param(err, "domain", "Give chain-audit either 'image' or "
                        "'domain', not both (neither: audit everything).");
        return -1;
    }
    if (p->fix) {
        if (strcmp(p->fix, "adopt-storage") != 0) {
            gvm_error_param(err, "fix", "The fix '%s' is not \"adopt-storage\", "
                            "the only one chain-audit knows.", p->fix);
            return -1;
        }
        if (rpc_call_read_only(call)) {
            gvm_error_set(err, GVM_ERR_PERMISSION, "Permission denied: this "
                          "socket is read-only; chain-audit with fix "
                          "\"adopt-storage\" changes the catalog, use the "
                          "read-write socket (an audit without fix is allowed "
                          "here).");
            return -1;
        }
        s.adopt_storage = true;
    }
    if (p->domain) {
        s.domain = p->domain;
        if (!*s.domain) {
            gvm_error_param(err, "domain", "Parameter 'domain' must be a "
                            "domain name or uuid.");
            return -1;
        }
    }
    if (p->image) {
        if (resolve_catalogued(d, p->image, "image", &r, err) < 0)
            return -1;
        s.image_id = r.row.id;
    }
    return audit_run(d, &s, result, err);
}
