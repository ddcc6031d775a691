/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog.c — opening the sqlite catalog, migrations, transactions, and the
 * volume and op-id tables.  Image, domain, snapshot and job queries live in
 * catalog-*.c beside this file, on the internal helpers declared at the end
 * of catalog.h.
 *
 * Concurrency: one connection, one recursive mutex.  sqlite would serialise
 * a shared connection by itself, but not a transaction made of several
 * statements: holding our lock from BEGIN to COMMIT is what keeps another
 * thread's statements out of the middle of a change.
 *
 * Durability: WAL with synchronous=FULL, so a transaction that returned from
 * COMMIT survives a kill -9 or power loss; the journal table (see
 * 0001-init.sql) builds crash safety of multi-step storage changes on that.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "catalog.h"
#include "localfs.h"

/* How long a statement waits for a lock held by another process (e.g. an
 * operator's sqlite3 shell reading the catalog) before failing. */
#define CATALOG_BUSY_TIMEOUT_MS 10000

struct catalog {
    sqlite3 *db;
    char *path;
    pthread_mutex_t lock;     /* recursive; see the file comment          */
    int depth;                /* transaction nesting; owner thread only   */
};

/* ---- internal helpers ---------------------------------------------------- */

sqlite3 *catalog_db(struct catalog *cat) { return cat->db; }
void catalog_lock(struct catalog *cat) { pthread_mutex_lock(&cat->lock); }
void catalog_unlock(struct catalog *cat) { pthread_mutex_unlock(&cat->lock); }

void catalog_sql_error(struct catalog *cat, struct gvm_error *err,
                       const char *what)
{
    assert(cat && what);
    gvm_error_set(err, GVM_ERR_INTERNAL, "Catalog %s failed: %s.", what,
                  sqlite3_errmsg(cat->db));
}

int catalog_prepare(struct catalog *cat, const char *sql, sqlite3_stmt **out,
                    struct gvm_error *err)
{
    assert(cat && sql && out);
    if (sqlite3_prepare_v2(cat->db, sql, -1, out, NULL) != SQLITE_OK) {
        *out = NULL;
        catalog_sql_error(cat, err, "query preparation");
        return -1;
    }
    return 0;
}

int catalog_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    assert(st && idx > 0);
    if (!s)
        return sqlite3_bind_null(st, idx);
    return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

char *catalog_column_strdup(sqlite3_stmt *st, int col)
{
    assert(st && col >= 0);
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? strdup((const char *)s) : NULL;
}

int64_t catalog_now(void)
{
    return (int64_t)time(NULL);
}

/* Run one or more statements with no result rows. */
static int exec(struct catalog *cat, const char *sql, const char *what,
                struct gvm_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(cat->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Catalog %s failed: %s.", what,
                      msg ? msg : sqlite3_errmsg(cat->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* A pragma returning one integer (or text parsed as one). */
static int pragma_int(struct catalog *cat, const char *sql, int64_t *out,
                      struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (catalog_prepare(cat, sql, &st, err) < 0)
        return -1;
    if (sqlite3_step(st) != SQLITE_ROW) {
        catalog_sql_error(cat, err, sql);
        return -1;
    }
    *out = sqlite3_column_int64(st, 0);
    return 0;
}

/* ---- transactions ---------------------------------------------------------- */

int catalog_begin(struct catalog *cat, struct gvm_error *err)
{
    assert(cat);
    char sql[64];
    catalog_lock(cat);
    if (cat->depth == 0)
        snprintf(sql, sizeof sql, "BEGIN IMMEDIATE");
    else
        snprintf(sql, sizeof sql, "SAVEPOINT gvm_sp%d", cat->depth);
    if (exec(cat, sql, "transaction start", err) < 0) {
        catalog_unlock(cat);
        return -1;
    }
    cat->depth++;
    return 0;
}

int catalog_commit(struct catalog *cat, struct gvm_error *err)
{
    /* Pairs with a catalog_begin() (which holds the lock until here). */
    assert(cat && cat->depth > 0);
    char sql[64];
    int r = 0;

    cat->depth--;
    if (cat->depth == 0)
        snprintf(sql, sizeof sql, "COMMIT");
    else
        snprintf(sql, sizeof sql, "RELEASE gvm_sp%d", cat->depth);
    if (exec(cat, sql, "transaction commit", err) < 0) {
        /* Leave no transaction (or savepoint) open behind a failed commit:
         * the caller was told it failed, so nothing of it may land. */
        if (cat->depth == 0)
            sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
        else {
            snprintf(sql, sizeof sql, "ROLLBACK TO gvm_sp%d; RELEASE gvm_sp%d",
                     cat->depth, cat->depth);
            sqlite3_exec(cat->db, sql, NULL, NULL, NULL);
        }
        r = -1;
    }
    catalog_unlock(cat);
    return r;
}

void catalog_rollback(struct catalog *cat)
{
    assert(cat && cat->depth > 0);
    char sql[96];
    cat->depth--;
    if (cat->depth == 0)
        snprintf(sql, sizeof sql, "ROLLBACK");
    else
        snprintf(sql, sizeof sql, "ROLLBACK TO gvm_sp%d; RELEASE gvm_sp%d",
                 cat->depth, cat->depth);
    if (sqlite3_exec(cat->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        log_error("Catalog rollback failed: %s.", sqlite3_errmsg(cat->db));
    catalog_unlock(cat);
}

int catalog_txn(struct catalog *cat,
                int (*fn)(struct catalog *cat, void *opaque, struct gvm_error *err),
                void *opaque, struct gvm_error *err)
{
    assert(cat && fn);
    if (catalog_begin(cat, err) < 0)
        return -1;
    int r = fn(cat, opaque, err);
    if (r < 0) {
        catalog_rollback(cat);
        return r;
    }
    if (catalog_commit(cat, err) < 0)
        return -1;
    return r;
}

/* ---- open / migrations ----------------------------------------------------- */

int catalog_schema_version(void)
{
    int n = 0;
    while (catalog_schema[n])
        n++;
    return n;
}

/* Every row reference holds (PRAGMA foreign_key_check finds nothing);
 * else err names the first broken one.  Inside the migration's
 * transaction, before its commit. */
static int check_references(struct catalog *cat, const char *what,
                            struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (catalog_prepare(cat, "PRAGMA foreign_key_check", &st, err) < 0)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, what);
        return -1;
    }
    gvm_error_set(err, GVM_ERR_CORRUPT,
                  "Catalog %s left row %lld of table %s referring to a "
                  "missing row of table %s; the catalog %s is left as it was.",
                  what, (long long)sqlite3_column_int64(st, 1),
                  (const char *)sqlite3_column_text(st, 0),
                  (const char *)sqlite3_column_text(st, 2), cat->path);
    return -1;
}

static int migrate_steps(struct catalog *cat, struct gvm_error *err);

/*
 * Migrations may rebuild a table (create the new one, copy, drop the old,
 * rename: 0003-ids.sql).  With foreign keys enforced, dropping the old
 * table would run its children's ON DELETE actions and empty
 * volume_servers, disks and snapshot_disks.  foreign_keys cannot change
 * inside a transaction, so it is off around all the migrations (nothing
 * else uses the connection yet) and check_references() proves, before each
 * commit, that every reference still holds.
 */
static int migrate(struct catalog *cat, struct gvm_error *err)
{
    if (exec(cat, "PRAGMA foreign_keys = OFF", "migration setup", err) < 0)
        return -1;
    int r = migrate_steps(cat, err);
    struct gvm_error e2 = { 0 };
    if (exec(cat, "PRAGMA foreign_keys = ON", "migration teardown", &e2) < 0) {
        if (r == 0)
            *err = e2;
        return -1;
    }
    return r;
}

static int migrate_steps(struct catalog *cat, struct gvm_error *err)
{
    int known = catalog_schema_version();

    for (;;) {
        int64_t version;
        /* Read the version inside the write transaction, so two processes
         * opening the same new catalog cannot both apply a migration. */
        if (catalog_begin(cat, err) < 0)
            return -1;
        if (pragma_int(cat, "PRAGMA user_version", &version, err) < 0)
            goto fail;
        if (version > known) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "The catalog %s has schema version %lld, newer than "
                          "the %d this gvmd knows; it was written by a newer "
                          "gvmd and is not opened.",
                          cat->path, (long long)version, known);
            goto fail;
        }
        if (version == known) {
            catalog_rollback(cat);
            return 0;
        }
        char what[64], sql[64];
        snprintf(what, sizeof what, "migration %lld", (long long)version + 1);
        if (exec(cat, catalog_schema[version], what, err) < 0)
            goto fail;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld",
                 (long long)version + 1);
        if (exec(cat, sql, what, err) < 0 || check_references(cat, what, err) < 0)
            goto fail;
        if (catalog_commit(cat, err) < 0)
            return -1;
        log_info("Catalog %s: applied schema migration %lld.", cat->path,
                 (long long)version + 1);
    }
fail:
    catalog_rollback(cat);
    return -1;
}

int catalog_open(const char *path, struct catalog **out, struct gvm_error *err)
{
    assert(path && out);
    *out = NULL;
    struct catalog *cat = calloc(1, sizeof *cat);
    if (!cat || !(cat->path = strdup(path))) {
        free(cat);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory opening the catalog.");
        return -1;
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&cat->lock, &attr);
    pthread_mutexattr_destroy(&attr);

    int r = localfs_mkdir_parent(path, 0755);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r,
                            "Cannot create the directory of the catalog %s", path);
        goto fail;
    }
    /* We serialise with our own lock; FULLMUTEX as well, so a sibling
     * catalog-*.c function that forgot the lock for a single statement is
     * still memory-safe (the cost of an uncontended mutex is nothing next to
     * an fsync). */
    if (sqlite3_open_v2(path, &cat->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        gvm_error_set(err, GVM_ERR_STORAGE, "Cannot open the catalog %s: %s.",
                      path, cat->db ? sqlite3_errmsg(cat->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(cat->db, CATALOG_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(cat->db, 1);

    /* Before changing anything (journal mode included): is this a database,
     * and one this gvmd may open?  migrate() checks again under the write
     * lock; this early check keeps a newer catalog byte-for-byte as it was. */
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(cat->db, "PRAGMA user_version", -1, &st,
                               NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            gvm_error_set(err, GVM_ERR_STORAGE,
                          "Cannot use %s as the catalog: %s.", path,
                          sqlite3_errmsg(cat->db));
            goto fail;
        }
        int64_t version = sqlite3_column_int64(st, 0);
        if (version > catalog_schema_version()) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "The catalog %s has schema version %lld, newer than "
                          "the %d this gvmd knows; it was written by a newer "
                          "gvmd and is not opened.", path, (long long)version,
                          catalog_schema_version());
            goto fail;
        }
    }
    /* journal_mode answers with the mode in force: a file system without
     * WAL support (no shared memory) answers something else. */
    {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(cat->db, "PRAGMA journal_mode = WAL", -1, &st,
                               NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW) {
            gvm_error_set(err, GVM_ERR_STORAGE,
                          "Cannot use %s as the catalog: %s.", path,
                          sqlite3_errmsg(cat->db));
            goto fail;
        }
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0) {
            gvm_error_set(err, GVM_ERR_STORAGE,
                          "The catalog %s cannot use write-ahead logging "
                          "(journal mode is %s).", path, mode ? mode : "unknown");
            goto fail;
        }
    }
    if (exec(cat, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
             "setup", err) < 0)
        goto fail;

    int64_t fk = 0;
    if (pragma_int(cat, "PRAGMA foreign_keys", &fk, err) < 0)
        goto fail;
    if (fk != 1) {
        gvm_error_set(err, GVM_ERR_INTERNAL,
                      "This sqlite library does not enforce foreign keys.");
        goto fail;
    }
    if (migrate(cat, err) < 0)
        goto fail;

    *out = cat;
    return 0;
fail:
    catalog_close(cat);
    return -1;
}

void catalog_close(struct catalog *cat)
{
    if (!cat)
        return;
    if (cat->db) {
        /* Closing the last connection checkpoints the WAL into the main
         * file; a statement left unfinalised would keep the file open, so
         * close_v2 defers the close until it is finalised. */
        sqlite3_close_v2(cat->db);
    }
    pthread_mutex_destroy(&cat->lock);
    free(cat->path);
    free(cat);
}

/* ---- volumes --------------------------------------------------------------- */

const char *catalog_backend_name(enum catalog_backend b)
{
    assert(b == CATALOG_BACKEND_DIR || b == CATALOG_BACKEND_GLUSTER);
    return b == CATALOG_BACKEND_GLUSTER ? "gluster" : "dir";
}

int catalog_backend_parse(const char *name, enum catalog_backend *out)
{
    /* name is a checked string parameter or a column the schema makes NOT NULL. */
    assert(name && out);
    if (strcmp(name, "dir") == 0)
        *out = CATALOG_BACKEND_DIR;
    else if (strcmp(name, "gluster") == 0)
        *out = CATALOG_BACKEND_GLUSTER;
    else
        return -EINVAL;
    return 0;
}

void catalog_volume_clear(struct catalog_volume *v)
{
    if (!v)
        return;
    free(v->name);
    free(v->gluster_volume);
    free(v->root_path);
    gvm_servers_free(v->servers, v->nservers);
    memset(v, 0, sizeof *v);
}

void catalog_volumes_free(struct catalog_volume *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        catalog_volume_clear(&v[i]);
    free(v);
}

static int insert_volume(struct catalog *cat, void *opaque, struct gvm_error *err)
{
    struct catalog_volume *v = opaque;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat,
            "INSERT INTO volumes (name, backend, gluster_volume, root_path, "
            "debug, created) VALUES (?, ?, ?, ?, ?, ?)", &st, err) < 0)
        return -1;
    v->created = catalog_now();
    catalog_bind_text(st, 1, v->name);
    catalog_bind_text(st, 2, catalog_backend_name(v->backend));
    catalog_bind_text(st, 3, v->backend == CATALOG_BACKEND_GLUSTER ? v->gluster_volume : NULL);
    catalog_bind_text(st, 4, v->backend == CATALOG_BACKEND_DIR ? v->root_path : NULL);
    sqlite3_bind_int(st, 5, v->debug);
    sqlite3_bind_int64(st, 6, v->created);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS,
                      "A volume named '%s' is already registered.", v->name);
        return -1;
    }
    if (rc != SQLITE_DONE) {
        catalog_sql_error(cat, err, "volume insertion");
        return -1;
    }
    v->id = sqlite3_last_insert_rowid(catalog_db(cat));

    _cleanup_stmt_ sqlite3_stmt *ss = NULL;
    if (catalog_prepare(cat,
            "INSERT INTO volume_servers (volume_id, position, transport, host, "
            "port, socket) VALUES (?, ?, ?, ?, ?, ?)", &ss, err) < 0)
        return -1;
    for (size_t i = 0; i < v->nservers; i++) {
        const struct gvm_server *s = &v->servers[i];
        bool unix_sock = s->transport == GVM_TRANSPORT_UNIX;
        sqlite3_reset(ss);
        sqlite3_clear_bindings(ss);
        sqlite3_bind_int64(ss, 1, v->id);
        sqlite3_bind_int64(ss, 2, (int64_t)i);
        catalog_bind_text(ss, 3, gvm_transport_name(s->transport));
        catalog_bind_text(ss, 4, unix_sock ? NULL : s->host);
        sqlite3_bind_int(ss, 5, unix_sock ? 0 : s->port);
        catalog_bind_text(ss, 6, unix_sock ? s->socket : NULL);
        if (sqlite3_step(ss) != SQLITE_DONE) {
            catalog_sql_error(cat, err, "volume server insertion");
            return -1;
        }
    }
    return 0;
}

int catalog_volume_add(struct catalog *cat, struct catalog_volume *v,
                       struct gvm_error *err)
{
    assert(cat && v && v->name);
    return catalog_txn(cat, insert_volume, v, err) < 0 ? -1 : 0;
}

static int load_servers(struct catalog *cat, struct catalog_volume *v,
                        struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (catalog_prepare(cat,
            "SELECT transport, host, port, socket FROM volume_servers "
            "WHERE volume_id = ? ORDER BY position", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, v->id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct gvm_server *n = realloc(v->servers,
                                       (v->nservers + 1) * sizeof *n);
        if (!n) {
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
            return -1;
        }
        v->servers = n;
        struct gvm_server *s = &v->servers[v->nservers++];
        memset(s, 0, sizeof *s);
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (!t || gvm_transport_parse(t, &s->transport) < 0) {
            gvm_error_set(err, GVM_ERR_CONFLICT,
                          "Volume '%s' has a server with an unknown transport "
                          "'%s' in the catalog.", v->name, t ? t : "");
            return -1;
        }
        s->host = catalog_column_strdup(st, 1);
        s->port = sqlite3_column_int(st, 2);
        s->socket = catalog_column_strdup(st, 3);
    }
    if (rc != SQLITE_DONE) {
        catalog_sql_error(cat, err, "volume server query");
        return -1;
    }
    return 0;
}

#define VOLUME_COLUMNS "id, name, backend, gluster_volume, root_path, debug, created"

static int row_to_volume(struct catalog *cat, sqlite3_stmt *st,
                         struct catalog_volume *v, struct gvm_error *err)
{
    memset(v, 0, sizeof *v);
    v->id = sqlite3_column_int64(st, 0);
    v->name = catalog_column_strdup(st, 1);
    const char *b = (const char *)sqlite3_column_text(st, 2);
    if (!b || catalog_backend_parse(b, &v->backend) < 0) {
        gvm_error_set(err, GVM_ERR_CONFLICT,
                      "Volume %lld has an unknown backend '%s' in the catalog.",
                      (long long)v->id, b ? b : "");
        return -1;
    }
    v->gluster_volume = catalog_column_strdup(st, 3);
    v->root_path = catalog_column_strdup(st, 4);
    v->debug = sqlite3_column_int(st, 5);
    v->created = sqlite3_column_int64(st, 6);
    return load_servers(cat, v, err);
}

static int volume_get_where(struct catalog *cat, const char *where,
                            const char *name, int64_t id,
                            struct catalog_volume *out, struct gvm_error *err)
{
    char sql[160];
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    memset(out, 0, sizeof *out);
    snprintf(sql, sizeof sql, "SELECT " VOLUME_COLUMNS " FROM volumes WHERE %s",
             where);
    if (catalog_prepare(cat, sql, &st, err) < 0)
        return -1;
    if (name)
        catalog_bind_text(st, 1, name);
    else
        sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        if (name)
            gvm_error_set(err, GVM_ERR_NOT_FOUND,
                          "No volume named '%s' is registered.", name);
        else
            gvm_error_set(err, GVM_ERR_NOT_FOUND,
                          "No volume with id %lld is registered.", (long long)id);
        return -1;
    }
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, "volume query");
        return -1;
    }
    if (row_to_volume(cat, st, out, err) < 0) {
        catalog_volume_clear(out);
        return -1;
    }
    return 0;
}

int catalog_volume_get(struct catalog *cat, const char *name,
                       struct catalog_volume *out, struct gvm_error *err)
{
    assert(cat && name && out);
    return volume_get_where(cat, "name = ?", name, 0, out, err);
}

int catalog_volume_get_by_id(struct catalog *cat, int64_t id,
                             struct catalog_volume *out, struct gvm_error *err)
{
    assert(cat && out);
    return volume_get_where(cat, "id = ?", NULL, id, out, err);
}

int catalog_row(struct catalog *cat, const char *sql, const char *key,
                int64_t id, catalog_fill_fn fill, void (*clear)(void *),
                const char *what, void *out, struct gvm_error *err)
{
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc;

    assert(cat && sql && fill && clear && out);
    if (catalog_prepare(cat, sql, &st, err) < 0)
        return -1;
    if (key)
        catalog_bind_text(st, 1, key);
    else
        sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, what);
        return -1;
    }
    if (fill(cat, st, out, err) < 0) {
        clear(out);
        return -1;
    }
    return 1;
}

int catalog_collect(struct catalog *cat, sqlite3_stmt *st, size_t size,
                    catalog_fill_fn fill, catalog_free_fn free_all,
                    const char *what, void **out, size_t *n,
                    struct gvm_error *err)
{
    assert(cat && st && size > 0 && fill && free_all && out && n);
    char *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            char *nv = realloc(v, ncap * size);
            if (!nv) {
                free_all(v, len);
                return gvm_error_oom(err);
            }
            v = nv;
            cap = ncap;
        }
        memset(v + len * size, 0, size);
        /* Counted before fill() so that free_all() clears a half-filled
         * element too (fill leaves it clearable). */
        len++;
        if (fill(cat, st, v + (len - 1) * size, err) < 0) {
            free_all(v, len);
            return -1;
        }
    }
    if (rc != SQLITE_DONE) {
        _cleanup_free_ char *msg = NULL;
        free_all(v, len);
        if (asprintf(&msg, "listing %s", what) < 0)
            return gvm_error_oom(err);
        catalog_sql_error(cat, err, msg);
        return -1;
    }
    *out = v;
    *n = len;
    return 0;
}

static int fill_volume(struct catalog *cat, sqlite3_stmt *st, void *elem,
                       struct gvm_error *err)
{
    return row_to_volume(cat, st, elem, err);
}

static void free_volumes(void *v, size_t n) { catalog_volumes_free(v, n); }

int catalog_volume_list(struct catalog *cat, struct catalog_volume **out,
                        size_t *n, struct gvm_error *err)
{
    assert(cat && out && n);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    if (catalog_prepare(cat, "SELECT " VOLUME_COLUMNS " FROM volumes ORDER BY id",
                        &st, err) < 0)
        return -1;
    return catalog_collect(cat, st, sizeof(**out), fill_volume, free_volumes,
                           "volumes", (void **)out, n, err);
}

int64_t catalog_volume_image_count(struct catalog *cat, int64_t volume_id,
                                   struct gvm_error *err)
{
    assert(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    if (catalog_prepare(cat, "SELECT count(*) FROM images WHERE volume_id = ?",
                        &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, volume_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        catalog_sql_error(cat, err, "image count");
        return -1;
    }
    return sqlite3_column_int64(st, 0);
}

static int remove_volume(struct catalog *cat, void *opaque, struct gvm_error *err)
{
    const char *name = opaque;
    struct catalog_volume v;

    if (catalog_volume_get(cat, name, &v, err) < 0)
        return -1;
    int64_t id = v.id;
    catalog_volume_clear(&v);

    int64_t n = catalog_volume_image_count(cat, id, err);
    if (n < 0)
        return -1;
    if (n > 0) {
        gvm_error_set(err, GVM_ERR_IN_USE,
                      "Volume '%s' cannot be removed: %lld image%s catalogued "
                      "on it.", name, (long long)n, n == 1 ? " is" : "s are");
        return -1;
    }
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (catalog_prepare(cat, "DELETE FROM volumes WHERE id = ?", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        gvm_error_set(err, GVM_ERR_IN_USE,
                      "Volume '%s' cannot be removed: the catalog still refers "
                      "to it.", name);
        return -1;
    }
    if (rc != SQLITE_DONE) {
        catalog_sql_error(cat, err, "volume removal");
        return -1;
    }
    return 0;
}

int catalog_volume_remove(struct catalog *cat, const char *name,
                          struct gvm_error *err)
{
    assert(cat && name);
    return catalog_txn(cat, remove_volume, (void *)name, err) < 0 ? -1 : 0;
}

/* ---- op-id replay ------------------------------------------------------------ */

int catalog_opid_lookup(struct catalog *cat, const char *method,
                        const char *op_id, char **result, struct gvm_error *err)
{
    assert(cat && method && op_id && result);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    *result = NULL;
    if (catalog_prepare(cat, "SELECT result FROM op_ids WHERE method = ? AND op_id = ?",
                        &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, method);
    catalog_bind_text(st, 2, op_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, "op-id lookup");
        return -1;
    }
    *result = catalog_column_strdup(st, 0);
    if (!*result) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    return 1;
}

int catalog_opid_record(struct catalog *cat, const char *method,
                        const char *op_id, const char *result,
                        struct gvm_error *err)
{
    assert(cat && method && op_id && result);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    if (catalog_prepare(cat, "INSERT OR IGNORE INTO op_ids (method, op_id, "
                        "result, created) VALUES (?, ?, ?, ?)", &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, method);
    catalog_bind_text(st, 2, op_id);
    catalog_bind_text(st, 3, result);
    sqlite3_bind_int64(st, 4, catalog_now());
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "op-id record");
        return -1;
    }
    return 0;
}
