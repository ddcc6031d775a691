/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-methods.c — the method table: one entry per line of
 * proto/methods.def, pointing at the wrapper generated for it
 * (rpc-params.c) that hands its handler the params as a typed struct.  It
 * sits apart from rpc.c so that the envelope never calls a handler by name:
 * handlers call the envelope's rpc_call_* functions, and only this table
 * (handed to rpc_new by daemon.c) points down at them.
 */
#include "gvm-proto.h"
#include "rpc-methods.h"
#include "rpc-params.h"

const struct rpc_method rpc_methods[] = {
#define GVM_METHOD(c_name, wire, flags, spec, help) \
    { wire, flags, spec, rpc_params_call_##c_name },
#include "methods.def"
#undef GVM_METHOD
};

const size_t rpc_methods_n = GVM_ARRAY_SIZE(rpc_methods);
