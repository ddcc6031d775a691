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

/* ---- human.c: values as a person reads them ---- */

/* How every printer spells "nothing": null, missing, empty. */
#define HUMAN_NONE "-"
/* The widest a size prints as without --bytes ("1023.9 KiB"). */
#define HUMAN_SIZE_WIDTH 10
/* The width human output is made to fit: an 80-column terminal. */
#define TABLE_WIDTH 80

/* "1.0 GiB" (one decimal, powers of 1024; "512 B" below 1 KiB), or the
 * exact count of bytes with exact (--bytes). */
void human_size(char *buf, size_t len, long long bytes, bool exact);
/* Epoch seconds as local ISO 8601, "2026-12-03 21:40:07". */
void human_time(char *buf, size_t len, long long epoch);
/* Display width: UTF-8 code points (good enough for names and paths). */
size_t human_width(const char *s);
/* s cut to width code points by replacing its middle with "…" (a copy of
 * s if it fits).  Caller frees; NULL on allocation failure. */
char *human_elide(const char *s, size_t width);

/* ---- table.c: aligned tables ---- */

struct table;
/* A table with ncols columns and these headers (at most 16 for table_new). */
struct table *table_new(size_t ncols, ...);
struct table *table_new_array(size_t ncols, const char *const *headers);
void table_free(struct table *t);
/* Column col may be shrunk with "…" in the middle of its cells to fit. */
void table_elide(struct table *t, size_t col);
/* Column col is never narrower than width: a column of sizes gets the
 * widest a size can print as, so the room left for elided columns (and so
 * what they show) does not depend on the sizes of the moment. */
void table_min_width(struct table *t, size_t col, size_t width);
/* Append a row: table_row with ncols strings (NULL is HUMAN_NONE), or
 * table_add for a row of HUMAN_NONE filled in with table_set, which takes
 * cell (malloc'd; NULL is HUMAN_NONE) for column col of the last row. */
void table_row(struct table *t, ...);
void table_add(struct table *t);
void table_set(struct table *t, size_t col, char *cell);
/* Print with indent spaces before each line, fitting limit columns by
 * eliding the elidable columns if they allow it. */
void table_print(FILE *f, const struct table *t, size_t indent, size_t limit);

/* ---- print.c: the generic printer ---- */

struct print_opts {
    bool bytes;                 /* --bytes: exact byte counts            */
    bool job_error_on_stderr;   /* --wait says a job's error on stderr   */
    struct conn *conn;          /* to look image names up; may be NULL   */
    json_t *names;              /* catalog id → VOLUME:PATH, loaded once */
};

/* Print a result for a person: tables for arrays of objects, "key: value"
 * lines for objects, scalars as they are. */
void print_human(FILE *f, const json_t *v, const struct print_opts *po);
/* An object as "key: value" lines indented by indent. */
void print_object(FILE *f, const json_t *o, size_t indent,
                  const struct print_opts *po);
/* A value as a person reads it, formatted by its key (sizes, times; key
 * may be NULL): strings raw, null and empty as HUMAN_NONE, arrays and
 * objects as "a, b" and "k=v" lists, never JSON.  Caller frees. */
char *print_value(const char *key, const json_t *v, const struct print_opts *po);

/* ---- format*.c: designed output per method ---- */

/* Print method's result in its designed format; false if the method has
 * none (the caller then uses print_human). */
bool format_result(FILE *f, const char *method, const json_t *result,
                   struct print_opts *po);
/* An ERROR (PROTOCOL.md) as "message (Class)".  Caller frees. */
char *format_error(const json_t *error);
/* A JOB (PROTOCOL.md): an object with id, type and a status string. */
bool format_is_job(const json_t *v);

#endif
