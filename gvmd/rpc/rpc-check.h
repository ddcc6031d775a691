/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-check.h — the envelope's checks before a handler runs (rpc-check.c);
 * for rpc.c only.
 */
#ifndef GVMD_RPC_CHECK_H
#define GVMD_RPC_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "rpc.h"

/* One parameter of a method's spec. */
struct pspec {
    char *name;
    char type;          /* one of "sibaojrRS" (gvm-proto.h) */
    bool optional;
};

/* A method of the table with its spec parsed. */
struct method {
    const char *wire;
    unsigned flags;
    const char *spec;
    rpc_handler_fn fn;
    struct pspec *params;
    size_t nparams;
};

/* A client's string in a message, cut to 60 bytes. */
#define NAME_FMT "%.*s%s"
#define NAME_ARG(s) (int)(strlen(s) > 60 ? 60 : strlen(s)), (s), \
                    (strlen(s) > 60 ? "..." : "")

/* Parse m->spec into m->params (logs what is wrong): 0 or -1. */
int rpc_check_parse_spec(struct method *m);
/* Deepest nesting of arrays/objects in buf, stopping early past limit. */
unsigned rpc_check_depth(const char *buf, size_t len, unsigned limit);
/* The length of the first string in v (keys included) over
 * GVM_MAX_STRING, or 0. */
size_t rpc_check_overlong(json_t *v);
/* params against m's spec; *op_id: the op-id param (borrowed) or NULL.
 * 0, or -1 with err set naming the parameter. */
int rpc_check_params(const struct method *m, json_t *params,
                     char **op_id, struct gvm_error *err);

#endif
