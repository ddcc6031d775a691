/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc.h — the JSON-RPC 2.0 envelope: parsing with the protocol's limits,
 * batches and notifications, privilege checks, parameter validation
 * against the spec strings of proto/methods.def, op-id replay, dispatch to
 * the rpc_<c_name> handlers (inline on the loop, or on a worker for
 * GVM_M_BLOCKING methods) and error objects from struct gvm_error.
 */
#ifndef GVMD_RPC_H
#define GVMD_RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "control.h"
#include "gvmd.h"

struct rpc;
struct rpc_call;
struct conn;

#define RPC_REPLAY_MAX 1024   /* op-ids remembered in memory, per caller uid */

/* A method: its wire name, GVM_M_* flags and parameter spec (as in
 * proto/methods.def) and its handler.  Handlers are called after the
 * envelope has checked params against the spec (required params present
 * and of the right JSON type, unknown ones refused, IMAGE references
 * parse); 0 and *result set (a new reference), or -1 with err set.
 * GVM_M_BLOCKING handlers run on a worker thread. */
typedef int (*rpc_handler_fn)(struct gvmd *d, struct rpc_call *call,
                              json_t *params, json_t **result,
                              struct gvm_error *err);
struct rpc_method {
    const char *wire;
    unsigned flags;
    const char *spec;
    rpc_handler_fn fn;
};

/* The envelope serving the n methods of table (kept; the composition root
 * passes rpc-methods.c's).  -ENOMEM, or -EINVAL for a bad spec. */
int rpc_new(struct gvmd *d, const struct rpc_method *table, size_t n,
            struct rpc **out);
void rpc_free(struct rpc *rpc);

/* rpc as the protocol of control's sockets (control_new): each message
 * (without its '\n') is parsed and answered on its connection, now or when
 * a worker finishes (loop thread only); errors that answer no request get
 * a reply line with id null. */
struct control_protocol rpc_protocol(struct rpc *rpc);

/* ---- for handlers ------------------------------------------------------- */

/* The op-id the client gave, or NULL. */
const char *rpc_call_op_id(const struct rpc_call *call);
/* The wire name of the method being called. */
const char *rpc_call_method(const struct rpc_call *call);
/* Credentials of the caller (for logs and audit). */
uid_t rpc_call_uid(const struct rpc_call *call);
/* Whether the call came in on the read-only socket (a GVM_M_RO method
 * that changes state only with some parameter refuses that there). */
bool rpc_call_read_only(const struct rpc_call *call);
/* The caller has gone (or gvmd is stopping) and the call changes nothing,
 * so its answer would be thrown away: long loops (image-checksum) stop
 * when this turns true. */
bool rpc_call_abandoned(const struct rpc_call *call);
/* events-subscribe: mark the caller's connection.  Loop thread only. */
void rpc_call_subscribe(struct rpc_call *call);

#endif
