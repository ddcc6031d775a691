/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-blockjob.c — block-commit and block-pull: the live path (live-job.c)
 * when a running domain uses the top / image, the offline one (chain-commit.c,
 * chain-pull.c) otherwise.
 */
#include "chain-ops.h"
#include "rpc-params.h"
#include "jsonutil.h"
#include "rpc.h"

/* The speed parameter (has: given) as a limit in bytes per second. */
static int get_speed(bool has, int64_t speed, uint64_t *out,
                     struct gvm_error *err)
{
    *out = 0;
    if (!has)
        return 0;
    if (speed < 0) {
        gvm_error_param(err, "speed", "Parameter 'speed' must be a number of "
                        "bytes per second, 0 for no limit.");
        return -1;
    }
    *out = (uint64_t)speed;
    return 0;
}

int rpc_block_commit(struct gvmd *d, struct rpc_call *call,
                     const struct rpc_params_block_commit *p, json_t **result,
                     struct gvm_error *err)
{
    struct chain_commit_req req = {
        .top = p->top,
        .base = p->base,
        .pivot = p->has_pivot ? p->pivot : true,
        .op_id = rpc_call_op_id(call),
    };

    int r;

    if (get_speed(p->has_speed, p->speed, &req.speed, err) < 0)
        return -1;
    r = live_commit_start(d, &req, result, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return chain_commit_start(d, &req, result, err);
}

int rpc_block_pull(struct gvmd *d, struct rpc_call *call,
                   const struct rpc_params_block_pull *p, json_t **result,
                   struct gvm_error *err)
{
    struct chain_pull_req req = {
        .image = p->image,
        .base = p->base,
        .op_id = rpc_call_op_id(call),
    };

    int r;

    if (get_speed(p->has_speed, p->speed, &req.speed, err) < 0)
        return -1;
    r = live_pull_start(d, &req, result, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return chain_pull_start(d, &req, result, err);
}
