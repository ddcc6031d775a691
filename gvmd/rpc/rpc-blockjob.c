/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-blockjob.c — block-commit and block-pull: the live path (live-job.c)
 * when a running domain uses the top / image, the offline one (chain-commit.c,
 * chain-pull.c) otherwise.
 */
#include "chain-ops.h"
#include "rpc-methods.h"
#include "jsonutil.h"
#include "rpc.h"

static int get_speed(json_t *params, uint64_t *out, struct gvm_error *err)
{
    json_t *s = json_object_get(params, "speed");

    *out = 0;
    if (!s)
        return 0;
    if (json_integer_value(s) < 0) {
        gvm_error_param(err, "speed", "Parameter 'speed' must be a number of "
                        "bytes per second, 0 for no limit.");
        return -1;
    }
    *out = (uint64_t)json_integer_value(s);
    return 0;
}

int rpc_block_commit(struct gvmd *d, struct rpc_call *call, json_t *params,
                     json_t **result, struct gvm_error *err)
{
    json_t *pivot = json_object_get(params, "pivot");
    struct chain_commit_req req = {
        .top = json_object_get(params, "top"),
        .base = json_object_get(params, "base"),
        .pivot = pivot ? json_is_true(pivot) : true,
        .op_id = rpc_call_op_id(call),
    };

    int r;

    if (get_speed(params, &req.speed, err) < 0)
        return -1;
    r = live_commit_start(d, &req, result, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return chain_commit_start(d, &req, result, err);
}

int rpc_block_pull(struct gvmd *d, struct rpc_call *call, json_t *params,
                   json_t **result, struct gvm_error *err)
{
    struct chain_pull_req req = {
        .image = json_object_get(params, "image"),
        .base = json_object_get(params, "base"),
        .op_id = rpc_call_op_id(call),
    };

    int r;

    if (get_speed(params, &req.speed, err) < 0)
        return -1;
    r = live_pull_start(d, &req, result, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return chain_pull_start(d, &req, result, err);
}
