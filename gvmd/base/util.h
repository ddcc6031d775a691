/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * util.h — cleanup attributes, the error structure and logging.
 *
 * Conventions (see DESIGN.md):
 *  - storage and qcow2 functions return -errno and never log;
 *  - service layers fill a struct gvm_error once, where the cause is known;
 *  - only rpc.c turns a gvm_error into a JSON-RPC error object.
 */
#ifndef GVMD_UTIL_H
#define GVMD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gvm-proto.h"

/* ---- cleanup attributes ------------------------------------------------ */

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }

#define _cleanup_free_  _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
/* json_t: _cleanup_json_ is in jsonutil.h; sqlite3_stmt: in catalog.c. */

/* Move ownership out of a cleanup-managed variable. */
#define steal_pointer(pp) \
    ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })

#define GVM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define GVM_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Scoped mutex: GVM_LOCK_GUARD(&m); unlocks at end of scope. */
#include <pthread.h>
static inline void gvm_unlockp(pthread_mutex_t **m) { if (*m) pthread_mutex_unlock(*m); }
#define GVM_CONCAT_(a, b) a##b
#define GVM_CONCAT(a, b) GVM_CONCAT_(a, b)
#define GVM_LOCK_GUARD(m) \
    _cleanup_(gvm_unlockp) __attribute__((unused))                       \
    pthread_mutex_t *GVM_CONCAT(_guard_, __LINE__) =                       \
        (pthread_mutex_lock(m), (m))

/* ---- errors (error.c) -------------------------------------------------- */

#define GVM_ERROR_MSG_MAX 1024

struct gvm_error {
    enum gvm_error_class cls;       /* GVM_ERR_NONE while unset          */
    char message[GVM_ERROR_MSG_MAX];/* a whole sentence                  */
    char param[64];                 /* INVALID_PARAMS: the parameter     */
    int errnum;                     /* STORAGE: the errno, else 0        */
};

/* Set err (if not already set: the first, innermost report wins). */
void gvm_error_set(struct gvm_error *err, enum gvm_error_class cls,
                   const char *fmt, ...) GVM_PRINTF(3, 4);
/* Same, appending ": strerror(-neg_errno)" and recording the errno. */
void gvm_error_set_errno(struct gvm_error *err, enum gvm_error_class cls,
                         int neg_errno, const char *fmt, ...) GVM_PRINTF(4, 5);
/* Put the formatted text before err's message, keeping its class: context
 * added by an outer layer ("Cannot delete snapshot s1 now. " + the cause).
 * The result is what gvm_error_set(cls, text + message) on a fresh error
 * would give, the same truncation included: param and errno are dropped, as
 * the sentence is now about the outer operation.  An unset err becomes
 * INTERNAL with the text alone. */
void gvm_error_prepend(struct gvm_error *err, const char *fmt, ...)
    GVM_PRINTF(2, 3);
/* INVALID_PARAMS naming the parameter. */
void gvm_error_param(struct gvm_error *err, const char *param,
                     const char *fmt, ...) GVM_PRINTF(3, 4);
static inline bool gvm_error_isset(const struct gvm_error *err)
{ return err->cls != GVM_ERR_NONE; }
void gvm_error_clear(struct gvm_error *err);
const char *gvm_error_class_name(enum gvm_error_class cls);
int gvm_error_class_code(enum gvm_error_class cls);
/* Map an errno from storage to the class a client should see. */
enum gvm_error_class gvm_error_class_from_errno(int neg_errno);

/* err as JSON: {"code", "message", "data": {"class", "param"?, "errno"?}},
 * the JSON-RPC error object of PROTOCOL.md, which is also how a job's
 * error is kept and listed.  New reference, NULL on ENOMEM (jansson's
 * json_t, declared here by its struct name). */
struct json_t *gvm_error_to_json(const struct gvm_error *err);

/* Set err to INTERNAL "Out of memory." and return -1, for
 * "return gvm_error_oom(err);" at an allocation failure. */
int gvm_error_oom(struct gvm_error *err);

/* ---- strings ------------------------------------------------------------- */

/* Equal, treating two NULLs as equal (optional header fields). */
static inline bool gvm_streq0(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* An optional string for a message: never NULL. */
static inline const char *gvm_str_or_none(const char *s) { return s ? s : "(none)"; }

/* ---- logging (log.c) --------------------------------------------------- */

enum gvm_log_level { GVM_LOG_ERROR, GVM_LOG_WARN, GVM_LOG_INFO, GVM_LOG_DEBUG };

void gvm_log_set_level(enum gvm_log_level level);
int  gvm_log_parse_level(const char *name, enum gvm_log_level *out);
void gvm_log(enum gvm_log_level level, const char *fmt, ...) GVM_PRINTF(2, 3);
#define log_error(...) gvm_log(GVM_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  gvm_log(GVM_LOG_WARN, __VA_ARGS__)
#define log_info(...)  gvm_log(GVM_LOG_INFO, __VA_ARGS__)
#define log_debug(...) gvm_log(GVM_LOG_DEBUG, __VA_ARGS__)

/* ---- time ---------------------------------------------------------------- */
uint64_t gvm_now_ms(void);   /* CLOCK_MONOTONIC in milliseconds (log.c) */

#endif
