/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-job.c — the job methods: query-jobs, job-cancel, job-dismiss,
 * job-wait, job-complete.  Thin: the runner (job.c and its job-*.c) does
 * the work.
 *
 * job-wait parks its caller on a condition variable on an RPC worker
 * (GVM_M_BLOCKING), not on the loop.  Chosen because the RPC layer has no
 * deferred-reply interface: the reply is sent when the handler returns.
 * Its cost is one worker per waiting call, so job-wait.c admits at most
 * workers-1 waiters at a time (Busy beyond that) and every wait ends at
 * shutdown; clients that wait on many jobs should subscribe to
 * job-status-change events instead.
 */
#include <math.h>

#include "rpc-params.h"
#include "job.h"
#include "jsonutil.h"

int rpc_query_jobs(struct gvmd *d, struct rpc_call *call,
                   const struct rpc_params_query_jobs *p, json_t **result,
                   struct gvm_error *err)
{
    *result = jobs_list_json(d->jobs);
    if (!*result) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    return 0;
}

int rpc_job_cancel(struct gvmd *d, struct rpc_call *call,
                   const struct rpc_params_job_cancel *p, json_t **result,
                   struct gvm_error *err)
{
    return jobs_cancel(d->jobs, p->id, result, err);
}

int rpc_job_dismiss(struct gvmd *d, struct rpc_call *call,
                    const struct rpc_params_job_dismiss *p, json_t **result,
                    struct gvm_error *err)
{
    if (jobs_dismiss(d->jobs, p->id, err) < 0)
        return -1;
    *result = json_object();
    return 0;
}

int rpc_job_wait(struct gvmd *d, struct rpc_call *call,
                 const struct rpc_params_job_wait *p, json_t **result,
                 struct gvm_error *err)
{
    json_t *t = p->timeout;
    int64_t timeout_ms = -1;

    if (t && !json_is_null(t)) {
        double s = json_number_value(t);

        if (!json_is_number(t) || !isfinite(s) || s < 0 || s > 86400.0 * 365) {
            gvm_error_param(err, "timeout", "Parameter 'timeout' of job-wait "
                            "must be a number of seconds from 0 to one year.");
            return -1;
        }
        timeout_ms = (int64_t)(s * 1000.0);
    }
    return jobs_wait(d->jobs, p->id, timeout_ms, result, err);
}

int rpc_job_complete(struct gvmd *d, struct rpc_call *call,
                     const struct rpc_params_job_complete *p, json_t **result,
                     struct gvm_error *err)
{
    return jobs_complete(d->jobs, p->id, result, err);
}
