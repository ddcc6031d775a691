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
#include "rpc-methods.h"
#include "jsonutil.h"
#include "resolve.h"
#include "rpc.h"

int rpc_chain_audit(struct gvmd *d, struct rpc_call *call, json_t *params,
                    json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    json_t *image = json_object_get(params, "image");
    json_t *domain = json_object_get(params, "domain");
    json_t *fix = json_object_get(params, "fix");
    struct audit_scope s = { 0 };

    if (image && domain) {
        gvm_error_param(err, "domain", "Give chain-audit either 'image' or "
                        "'domain', not both (neither: audit everything).");
        return -1;
    }
    if (fix) {
        if (strcmp(json_string_value(fix), "adopt-storage") != 0) {
            gvm_error_param(err, "fix", "The fix '%s' is not \"adopt-storage\", "
                            "the only one chain-audit knows.",
                            json_string_value(fix));
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
    if (domain) {
        s.domain = json_string_value(domain);
        if (!s.domain || !*s.domain) {
            gvm_error_param(err, "domain", "Parameter 'domain' must be a "
                            "domain name or uuid.");
            return -1;
        }
    }
    if (image) {
        if (resolve_catalogued(d, image, "image", &r, err) < 0)
            return -1;
        s.image_id = r.row.id;
    }
    return audit_run(d, &s, result, err);
}
