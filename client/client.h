/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * client.h — gvmctl's internal interfaces: the connection to gvmd
 * (conn.c) and the human-readable printer (print.c).  gvmctl.c holds the
 * command line and the method table built from proto/methods.def.
 */
#ifndef GVMCTL_CLIENT_H
#define GVMCTL_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#define NORETURN __attribute__((noreturn))

/* Exit codes, part of gvmctl's interface (gvmctl(1)). */
#define EXIT_RPC_ERROR 1    /* gvmd answered with an error            */
#define EXIT_USAGE     2    /* bad command line                       */
#define EXIT_CONNECT   3    /* cannot connect to the socket           */

/* Largest reply line accepted from gvmd. */
#define CONN_MAX_REPLY (64u * 1024 * 1024)

struct conn;

/* Connect to the unix socket at path.  NULL with errno set on failure. */
struct conn *conn_open(const char *path);
void conn_close(struct conn *c);

/*
 * Send one request and wait for its answer (notifications arriving in
 * between are skipped).  Returns 0 with *reply set to the whole response
 * object (a new reference, with "result" or "error"), or -errno for an I/O
 * failure (-EPROTO for a reply that is not JSON, -EMSGSIZE for one over
 * CONN_MAX_REPLY, -ECONNRESET if gvmd closed the connection).
 */
int conn_call(struct conn *c, const char *method, json_t *params,
              json_t **reply);

/* Print a result for a person: tables for arrays of objects, "key: value"
 * lines for objects, scalars as they are. */
void print_human(FILE *f, const json_t *v);
/* A scalar as a table cell / value: strings raw, null as "-", nested
 * values as compact JSON.  Caller frees. */
char *print_cell(const json_t *v);

#endif
