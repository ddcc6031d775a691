/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-methods.h — the method table (rpc-methods.c), generated from
 * proto/methods.def; daemon.c hands it to rpc_new().  The handlers it
 * leads to, and the typed params they take, are rpc-params.h's (generated
 * by gen-params.py from the same file).
 */
#ifndef GVMD_RPC_METHODS_H
#define GVMD_RPC_METHODS_H

#include <stddef.h>

#include "rpc.h"

extern const struct rpc_method rpc_methods[];
extern const size_t rpc_methods_n;

#endif
