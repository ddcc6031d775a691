/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-journal.c — rows of the operation journal (see journal.c for
 * what they mean and when they are written).
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "catalog-job.h"

void catalog_journal_entry_clear(struct catalog_journal_entry *e)
{
    free(e->op_id);
    free(e->kind);
    free(e->payload);
    free(e->state);
    memset(e, 0, sizeof(*e));
}

void catalog_journal_entries_free(struct catalog_journal_entry *e, size_t n)
{
    assert(e || n == 0);
    for (size_t i = 0; e && i < n; i++)
        catalog_journal_entry_clear(&e[i]);
    free(e);
}

int catalog_journal_add(struct catalog *cat, const char *op_id, int64_t job_id,
                        int step, const char *kind, const char *payload,
                        struct gvm_error *err)
{
    assert(cat && op_id && kind && step >= 0);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);
    int64_t now = catalog_now();

    if (catalog_prepare(cat,
            "INSERT INTO journal (op_id, job_id, step, kind, payload, state, "
            "created, updated) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, op_id);
    if (job_id > 0)
        sqlite3_bind_int64(st, 2, job_id);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int(st, 3, step);
    catalog_bind_text(st, 4, kind);
    catalog_bind_text(st, 5, payload ? payload : "{}");
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "journal insertion");
        return -1;
    }
    return 0;
}

int catalog_journal_settle(struct catalog *cat, const char *op_id, int below,
                           const char *state, bool all_rows,
                           struct gvm_error *err)
{
    assert(cat && op_id && state);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    if (catalog_prepare(cat,
            "UPDATE journal SET state = ?, updated = ? "
            "WHERE op_id = ? AND (? OR state = 'pending') AND step < ?", &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, state);
    sqlite3_bind_int64(st, 2, catalog_now());
    catalog_bind_text(st, 3, op_id);
    sqlite3_bind_int(st, 4, all_rows);
    sqlite3_bind_int(st, 5, below);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "journal update");
        return -1;
    }
    return 0;
}

int catalog_journal_forget(struct catalog *cat, const char *op_id,
                           struct gvm_error *err)
{
    assert(cat && op_id);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    /* Never a pending row: that one is what a restart would recover. */
    if (catalog_prepare(cat,
            "DELETE FROM journal WHERE op_id = ?1 AND NOT EXISTS "
            "(SELECT 1 FROM journal WHERE op_id = ?1 AND state = 'pending')",
            &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, op_id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "journal pruning");
        return -1;
    }
    return 0;
}

int catalog_journal_list_op(struct catalog *cat, const char *op_id,
                            struct catalog_journal_entry **out, size_t *n,
                            struct gvm_error *err)
{
    assert(cat && op_id && out && n);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);
    struct catalog_journal_entry *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (catalog_prepare(cat,
            "SELECT id, op_id, job_id, step, kind, payload, state FROM journal "
            "WHERE op_id = ? ORDER BY step, id", &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, op_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct catalog_journal_entry *e;

        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            struct catalog_journal_entry *nv = realloc(v, ncap * sizeof(*v));
            if (!nv)
                goto oom;
            v = nv;
            cap = ncap;
        }
        e = &v[len];
        memset(e, 0, sizeof(*e));
        e->id = sqlite3_column_int64(st, 0);
        e->op_id = catalog_column_strdup(st, 1);
        e->job_id = sqlite3_column_int64(st, 2);
        e->step = sqlite3_column_int(st, 3);
        e->kind = catalog_column_strdup(st, 4);
        e->payload = catalog_column_strdup(st, 5);
        e->state = catalog_column_strdup(st, 6);
        len++;
        if (!e->op_id || !e->kind || !e->payload || !e->state)
            goto oom;
    }
    if (rc != SQLITE_DONE) {
        catalog_journal_entries_free(v, len);
        catalog_sql_error(cat, err, "journal listing");
        return -1;
    }
    *out = v;
    *n = len;
    return 0;
oom:
    catalog_journal_entries_free(v, len);
    gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory reading the journal.");
    return -1;
}

int catalog_journal_ops(struct catalog *cat, int64_t job_id, bool pending_only,
                        char ***op_ids, size_t *n, struct gvm_error *err)
{
    assert(cat && op_ids && n);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);
    char **v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *op_ids = NULL;
    *n = 0;
    if (catalog_prepare(cat,
            "SELECT op_id FROM journal "
            "WHERE (?1 = 0 OR state = 'pending') "
            "  AND (job_id = ?2 OR (?2 = 0 AND job_id IS NULL)) "
            "GROUP BY op_id ORDER BY min(id)", &st, err) < 0)
        return -1;
    sqlite3_bind_int(st, 1, pending_only);
    sqlite3_bind_int64(st, 2, job_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            char **nv = realloc(v, ncap * sizeof(*v));
            if (!nv)
                goto oom;
            v = nv;
            cap = ncap;
        }
        v[len] = catalog_column_strdup(st, 0);
        if (!v[len])
            goto oom;
        len++;
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < len; i++)
            free(v[i]);
        free(v);
        catalog_sql_error(cat, err, "journal listing");
        return -1;
    }
    *op_ids = v;
    *n = len;
    return 0;
oom:
    for (size_t i = 0; i < len; i++)
        free(v[i]);
    free(v);
    gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory reading the journal.");
    return -1;
}
