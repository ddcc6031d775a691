/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-snapshot.c — the snapshot methods; ops/snapshot/ does the work
 * (snapshot.c create and revert, snapshot-delete.c delete, snapshot-tree.c
 * list and info).  Those services read the params object whole (p->raw),
 * as they did before the handlers had typed params.
 */
#include "rpc-params.h"
#include "rpc.h"
#include "snapshot-delete.h"
#include "snapshot-tree.h"
#include "snapshot.h"

int rpc_snapshot_create(struct gvmd *d, struct rpc_call *call,
                        const struct rpc_params_snapshot_create *p,
                        json_t **result, struct gvm_error *err)
{
    (void)call;
    return snapshot_create(d, p->raw, result, err);
}

int rpc_snapshot_list(struct gvmd *d, struct rpc_call *call,
                      const struct rpc_params_snapshot_list *p, json_t **result,
                      struct gvm_error *err)
{
    (void)call;
    return snapshot_tree_list(d, p->raw, result, err);
}

int rpc_snapshot_info(struct gvmd *d, struct rpc_call *call,
                      const struct rpc_params_snapshot_info *p, json_t **result,
                      struct gvm_error *err)
{
    (void)call;
    return snapshot_tree_info(d, p->raw, result, err);
}

int rpc_snapshot_delete(struct gvmd *d, struct rpc_call *call,
                        const struct rpc_params_snapshot_delete *p,
                        json_t **result, struct gvm_error *err)
{
    return snapshot_delete_start(d, p->raw, rpc_call_op_id(call), result, err);
}

int rpc_snapshot_revert(struct gvmd *d, struct rpc_call *call,
                        const struct rpc_params_snapshot_revert *p,
                        json_t **result, struct gvm_error *err)
{
    (void)call;
    return snapshot_revert(d, p->raw, result, err);
}
