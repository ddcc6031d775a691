/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-chain.c — the chain-surgery methods that start jobs (chain.c):
 * image-rebase.
 */
#include <string.h>

#include "chain.h"
#include "rpc-params.h"
#include "jsonutil.h"
#include "rpc.h"

int rpc_image_rebase(struct gvmd *d, struct rpc_call *call,
                     const struct rpc_params_image_rebase *p, json_t **result,
                     struct gvm_error *err)
{
    const char *mode = p->mode;
    struct chain_rebase_req req = {
        .image = p->image,
        .backing = p->backing,
        .op_id = rpc_call_op_id(call),
    };

    /* qemu-img's default is the safe rebase: so is ours. */
    if (!mode || strcmp(mode, "safe") == 0) {
        req.safe = true;
    } else if (strcmp(mode, "unsafe") == 0) {
        req.safe = false;
    } else {
        gvm_error_param(err, "mode", "Parameter 'mode' of image-rebase must be "
                        "\"safe\" or \"unsafe\".");
        return -1;
    }
    return chain_rebase_start(d, &req, result, err);
}
