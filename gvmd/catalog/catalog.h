/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog.h — the sqlite catalog (catalog.c and its siblings catalog-*.c).
 *
 * One sqlite connection per daemon, guarded by one recursive mutex: the
 * catalog is used from the event-loop thread and from worker threads, and
 * every access goes through this lock (busy_timeout covers other processes,
 * e.g. an operator's sqlite3 shell).  Statements outside an explicit
 * transaction are each their own (autocommit) transaction; a change that
 * writes several rows is made inside catalog_begin()..catalog_commit() (or
 * catalog_txn()) so that no other thread or client ever sees half of it.
 *
 * The schema lives in db/schema/NNNN-*.sql, compiled in (catalog_schema[]);
 * PRAGMA user_version is the number of migrations applied.
 *
 * Errors: functions taking a struct gvm_error fill it (NotFound,
 * AlreadyExists, InUse for the cases they name; Internal for sqlite
 * failures, with sqlite's message) and return -1 (or -errno where stated).
 */
#ifndef GVMD_CATALOG_H
#define GVMD_CATALOG_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

struct catalog;

/* The migrations compiled in (generated from db/schema by embed-schema.sh). */
extern const char *const catalog_schema[];

/*
 * Open (creating it and its parent directories if missing) the catalog at
 * path: WAL journal, synchronous=FULL, foreign_keys=ON, busy_timeout; then
 * apply the pending migrations, each in one transaction.  A catalog whose
 * user_version is newer than this daemon knows is refused (Unsupported,
 * saying both versions), as is a file that is not an sqlite database
 * (StorageError).
 */
int catalog_open(const char *path, struct catalog **out, struct gvm_error *err);
void catalog_close(struct catalog *cat);
/* Number of migrations this daemon knows (= user_version after open). */
int catalog_schema_version(void);

/* ---- transactions ------------------------------------------------------
 * catalog_begin() takes the catalog lock and opens a transaction (BEGIN
 * IMMEDIATE, so a writer never fails half-way on a lock upgrade); nested
 * calls on the same thread become savepoints.  Every begin is paired with
 * exactly one commit or rollback, which releases the lock.  A commit that
 * fails rolls back (and still releases the lock).
 */
int catalog_begin(struct catalog *cat, struct gvm_error *err);
int catalog_commit(struct catalog *cat, struct gvm_error *err);
void catalog_rollback(struct catalog *cat);
/* Run fn inside a transaction: commit if it returns >= 0, roll back
 * otherwise.  Returns fn's result (or -1 if the commit failed). */
int catalog_txn(struct catalog *cat,
                int (*fn)(struct catalog *cat, void *opaque, struct gvm_error *err),
                void *opaque, struct gvm_error *err);

/* ---- volumes ----------------------------------------------------------- */

enum catalog_backend { CATALOG_BACKEND_DIR, CATALOG_BACKEND_GLUSTER };
const char *catalog_backend_name(enum catalog_backend b);   /* "dir", ... */
int catalog_backend_parse(const char *name, enum catalog_backend *out);

struct catalog_volume {
    int64_t id;                 /* set by catalog_volume_add             */
    char *name;
    enum catalog_backend backend;
    char *gluster_volume;       /* gluster                               */
    char *root_path;            /* dir                                   */
    int debug;                  /* 0..9                                  */
    int64_t created;            /* seconds since the epoch               */
    struct gvm_server *servers; /* gluster: in the user's order          */
    size_t nservers;
};
void catalog_volume_clear(struct catalog_volume *v);
static inline void catalog_volume_clearp(struct catalog_volume *v) { catalog_volume_clear(v); }
#define _cleanup_catvol_ _cleanup_(catalog_volume_clearp)
void catalog_volumes_free(struct catalog_volume *v, size_t n);

/* Insert v and its servers in one transaction; sets v->id and v->created.
 * AlreadyExists if the name is taken. */
int catalog_volume_add(struct catalog *cat, struct catalog_volume *v,
                       struct gvm_error *err);
/* Fill out (clear it with catalog_volume_clear).  NotFound if unknown. */
int catalog_volume_get(struct catalog *cat, const char *name,
                       struct catalog_volume *out, struct gvm_error *err);
int catalog_volume_get_by_id(struct catalog *cat, int64_t id,
                             struct catalog_volume *out, struct gvm_error *err);
/* All volumes ordered by id.  Free with catalog_volumes_free. */
int catalog_volume_list(struct catalog *cat, struct catalog_volume **out,
                        size_t *n, struct gvm_error *err);
/* Remove a volume and its server list.  NotFound if unknown, InUse if any
 * image is catalogued on it (the message says how many). */
int catalog_volume_remove(struct catalog *cat, const char *name,
                          struct gvm_error *err);
/* Number of images catalogued on a volume, or -1 with err set. */
int64_t catalog_volume_image_count(struct catalog *cat, int64_t volume_id,
                                   struct gvm_error *err);

/* ---- op-id replay -------------------------------------------------------
 * The first successful result of a mutating method called with an op-id. */
/* 1 and *result (a JSON text, caller frees) if recorded, 0 if not, -1 on
 * error. */
int catalog_opid_lookup(struct catalog *cat, const char *method,
                        const char *op_id, char **result, struct gvm_error *err);
/* Record (first one wins: a second record of the same op-id is ignored). */
int catalog_opid_record(struct catalog *cat, const char *method,
                        const char *op_id, const char *result,
                        struct gvm_error *err);

/* ======================================================================
 * Internal: for catalog.c and its siblings catalog-*.c only.  Nothing
 * outside catalog*.c touches sqlite.
 * ====================================================================== */

/* The connection; use only with the catalog lock held. */
sqlite3 *catalog_db(struct catalog *cat);

/* The catalog lock (recursive: a function that locks may be called inside a
 * transaction of the same thread). */
void catalog_lock(struct catalog *cat);
void catalog_unlock(struct catalog *cat);
static inline void catalog_unlockp(struct catalog **c) { if (*c) catalog_unlock(*c); }
/* Scoped: CATALOG_LOCK_GUARD(cat); holds the lock until the end of scope. */
#define CATALOG_LOCK_GUARD(cat) \
    _cleanup_(catalog_unlockp) __attribute__((unused))                      \
    struct catalog *GVM_CONCAT(_catguard_, __LINE__) =                      \
        (catalog_lock(cat), (cat))

static inline void sqlite3_finalizep(sqlite3_stmt **s)
{ if (*s) sqlite3_finalize(*s); }
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

/* Prepare sql (lock held).  -1 with err (Internal, naming sqlite's
 * message) on failure. */
int catalog_prepare(struct catalog *cat, const char *sql, sqlite3_stmt **out,
                    struct gvm_error *err);
/* Fill err (Internal) from the connection's last error: "what: message". */
void catalog_sql_error(struct catalog *cat, struct gvm_error *err,
                       const char *what);
/* Bind a C string, or NULL as SQL NULL (SQLITE_TRANSIENT copy). */
int catalog_bind_text(sqlite3_stmt *st, int idx, const char *s);
/* A column as a new malloc'd string, NULL for SQL NULL. */
char *catalog_column_strdup(sqlite3_stmt *st, int col);
/*
 * Step st (prepared and bound, lock held) to its end, one element of `size`
 * bytes per row, zeroed and then filled by fill(); on any failure the
 * elements built so far are freed with free_all() and err says what
 * failed ("listing WHAT" for sqlite errors).  Every *_list function of the
 * catalog is this loop with its own row reader.
 */
typedef int (*catalog_fill_fn)(struct catalog *cat, sqlite3_stmt *st,
                               void *elem, struct gvm_error *err);
typedef void (*catalog_free_fn)(void *v, size_t n);
int catalog_collect(struct catalog *cat, sqlite3_stmt *st, size_t size,
                    catalog_fill_fn fill, catalog_free_fn free_all,
                    const char *what, void **out, size_t *n,
                    struct gvm_error *err);
/*
 * The one row sql (with one parameter: key as text, or id when key is
 * NULL) selects, filled into out by fill() (lock taken here); on a fill
 * failure out is released with clear().  1 found, 0 none, -1 with err set
 * (what, e.g. "looking up a domain", names a sqlite error).  Every single-row lookup of the
 * catalog is this with its own row reader.
 */
int catalog_row(struct catalog *cat, const char *sql, const char *key,
                int64_t id, catalog_fill_fn fill, void (*clear)(void *),
                const char *what, void *out, struct gvm_error *err);
/* Seconds since the epoch (for created/updated columns). */
int64_t catalog_now(void);

#endif
