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

#include "daemon.h"

struct rpc;
struct conn;

#define RPC_REPLAY_MAX 1024   /* op-ids remembered in memory, per caller uid */

int rpc_new(struct gvmd *d, struct rpc **out);
void rpc_free(struct rpc *rpc);

/* One message (without its '\n') from connection c.  Replies are queued on
 * c, now or when a worker finishes.  Loop thread only. */
void rpc_handle_message(struct rpc *rpc, struct conn *c, const char *buf,
                        size_t len);
/* Send an error reply with id null (framing errors, refusals). */
void rpc_send_error(struct conn *c, const struct gvm_error *err);
/* The same reply as a malloc'd line without '\n' (for refusals written
 * before a connection is set up). */
char *rpc_error_line(const struct gvm_error *err);

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
