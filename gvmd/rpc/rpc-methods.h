/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-methods.h — the method table (rpc-methods.c) and the handler
 * prototypes, both generated from proto/methods.def; the rpc-*.c files
 * define the handlers, daemon.c hands the table to rpc_new().
 */
#ifndef GVMD_RPC_METHODS_H
#define GVMD_RPC_METHODS_H

#include <jansson.h>

#include "rpc.h"

extern const struct rpc_method rpc_methods[];
extern const size_t rpc_methods_n;

/* Handlers: one per line of methods.def, named rpc_<c_name> (rpc.h says
 * what they are called with and return). */
#define GVM_METHOD(c_name, wire, flags, spec, help)                        \
    int rpc_##c_name(struct gvmd *d, struct rpc_call *call, json_t *params, \
                     json_t **result, struct gvm_error *err);
#include "methods.def"
#undef GVM_METHOD

#endif
