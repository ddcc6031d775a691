/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-job.c — the jobs table and the image locks of job_images.
 *
 * A lock row lives exactly as long as the job holds the image: it is
 * inserted with the job (one transaction, so two requests racing for one
 * image cannot both win) and deleted when the job concludes.  Locks
 * therefore survive a restart together with the unfinished job that holds
 * them, and recovery releases them when it concludes the job.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "catalog-job.h"

#define JOB_COLUMNS \
    "id, type, status, cancelled, error, progress_current, progress_total, " \
    "images, live, op_id, params, checkpoint, created, updated, started, " \
    "finished, image_names"

void catalog_job_clear(struct catalog_job *j)
{
    free(j->type);
    free(j->status);
    free(j->error);
    free(j->images);
    free(j->op_id);
    free(j->params);
    free(j->checkpoint);
    free(j->image_names);
    memset(j, 0, sizeof(*j));
}

void catalog_jobs_free(struct catalog_job *j, size_t n)
{
    assert(j || n == 0);
    for (size_t i = 0; j && i < n; i++)
        catalog_job_clear(&j[i]);
    free(j);
}

static int row_to_job(sqlite3_stmt *st, struct catalog_job *j,
                      struct gvm_error *err)
{
    memset(j, 0, sizeof(*j));
    j->id = sqlite3_column_int64(st, 0);
    j->type = catalog_column_strdup(st, 1);
    j->status = catalog_column_strdup(st, 2);
    j->cancelled = sqlite3_column_int(st, 3) != 0;
    j->error = catalog_column_strdup(st, 4);
    j->progress_current = (uint64_t)sqlite3_column_int64(st, 5);
    j->progress_total = (uint64_t)sqlite3_column_int64(st, 6);
    j->images = catalog_column_strdup(st, 7);
    j->live = sqlite3_column_int(st, 8) != 0;
    j->op_id = catalog_column_strdup(st, 9);
    j->params = catalog_column_strdup(st, 10);
    j->checkpoint = catalog_column_strdup(st, 11);
    j->created = sqlite3_column_int64(st, 12);
    j->updated = sqlite3_column_int64(st, 13);
    j->started = sqlite3_column_int64(st, 14);      /* NULL reads as 0 */
    j->finished = sqlite3_column_int64(st, 15);
    j->image_names = catalog_column_strdup(st, 16);
    if (sqlite3_column_type(st, 16) != SQLITE_NULL && !j->image_names) {
        catalog_job_clear(j);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory reading job.");
        return -1;
    }
    if (!j->type || !j->status || !j->images || !j->params) {
        catalog_job_clear(j);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory reading job.");
        return -1;
    }
    return 0;
}

/* Refuse a lock that conflicts with one held: InUse naming both. */
static int check_lock(struct catalog *cat, const struct catalog_job_lock *l,
                      int64_t *holder, struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc;

    if (catalog_prepare(cat,
            "SELECT i.id, v.name, i.path, j.id, j.type, ji.mode "
            "FROM images i JOIN volumes v ON v.id = i.volume_id "
            "LEFT JOIN job_images ji ON ji.image_id = i.id "
            "  AND (?2 = 'write' OR ji.mode = 'write') "
            "LEFT JOIN jobs j ON j.id = ji.job_id "
            "WHERE i.id = ?1 ORDER BY j.id LIMIT 1", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, l->image_id);
    catalog_bind_text(st, 2, l->write ? "write" : "read");
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "An image the job would lock "
                      "left the catalog meanwhile (it was deleted); nothing "
                      "was started: run the command again.");
        return -1;
    }
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, "image lock check");
        return -1;
    }
    if (sqlite3_column_type(st, 3) == SQLITE_NULL)
        return 0;
    if (holder)
        *holder = sqlite3_column_int64(st, 3);
    gvm_error_set(err, GVM_ERR_IN_USE,
                  "Image %s:%s is locked by job %lld (%s, %s lock); wait "
                  "for the job or cancel it.",
                  (const char *)sqlite3_column_text(st, 1),
                  (const char *)sqlite3_column_text(st, 2),
                  (long long)sqlite3_column_int64(st, 3),
                  (const char *)sqlite3_column_text(st, 4),
                  (const char *)sqlite3_column_text(st, 5));
    return -1;
}

/* The next job id from job_seq (0002-jobs.sql): never one used before,
 * even if that job was dismissed.  Inside the caller's transaction. */
static int next_id(struct catalog *cat, int64_t *id, struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *up = NULL, *sel = NULL;

    if (catalog_prepare(cat, "UPDATE job_seq SET last = max(last, "
                        "(SELECT coalesce(max(id), 0) FROM jobs)) + 1", &up, err) < 0 ||
        catalog_prepare(cat, "SELECT last FROM job_seq", &sel, err) < 0)
        return -1;
    if (sqlite3_step(up) != SQLITE_DONE || sqlite3_step(sel) != SQLITE_ROW) {
        catalog_sql_error(cat, err, "job id allocation");
        return -1;
    }
    *id = sqlite3_column_int64(sel, 0);
    return 0;
}

static int insert_job(struct catalog *cat, struct catalog_job *j,
                      struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int64_t now = catalog_now(), id;

    if (next_id(cat, &id, err) < 0)
        return -1;
    if (catalog_prepare(cat,
            "INSERT INTO jobs (type, status, cancelled, error, "
            "progress_current, progress_total, images, live, op_id, params, "
            "checkpoint, created, updated, id, image_names) "
            "VALUES (?, 'created', 0, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 11, id);
    catalog_bind_text(st, 12, j->image_names);
    catalog_bind_text(st, 1, j->type);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)j->progress_current);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)j->progress_total);
    catalog_bind_text(st, 4, j->images ? j->images : "[]");
    sqlite3_bind_int(st, 5, j->live);
    catalog_bind_text(st, 6, j->op_id);
    catalog_bind_text(st, 7, j->params ? j->params : "{}");
    catalog_bind_text(st, 8, j->checkpoint);
    sqlite3_bind_int64(st, 9, now);
    sqlite3_bind_int64(st, 10, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "job insertion");
        return -1;
    }
    j->id = id;
    j->created = j->updated = now;
    return 0;
}

static int insert_lock(struct catalog *cat, int64_t job_id,
                       const struct catalog_job_lock *l, struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    /* The same image listed twice keeps the stronger mode. */
    if (catalog_prepare(cat,
            "INSERT INTO job_images (job_id, image_id, mode) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id, image_id) DO UPDATE SET mode = "
            "CASE WHEN excluded.mode = 'write' THEN 'write' ELSE mode END",
            &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, l->image_id);
    catalog_bind_text(st, 3, l->write ? "write" : "read");
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "image lock insertion");
        return -1;
    }
    return 0;
}

int catalog_job_add(struct catalog *cat, struct catalog_job *j,
                    const struct catalog_job_lock *locks, size_t nlocks,
                    int64_t *holder, struct gvm_error *err)
{
    assert(cat && j && j->type && (locks || nlocks == 0));
    if (catalog_begin(cat, err) < 0)
        return -1;
    for (size_t i = 0; i < nlocks; i++) {
        if (check_lock(cat, &locks[i], holder, err) < 0)
            goto fail;
    }
    if (insert_job(cat, j, err) < 0)
        goto fail;
    for (size_t i = 0; i < nlocks; i++) {
        if (insert_lock(cat, j->id, &locks[i], err) < 0)
            goto fail;
    }
    if (catalog_commit(cat, err) < 0) {
        j->id = 0;
        return -1;
    }
    free(j->status);
    j->status = strdup("created");
    return 0;
fail:
    catalog_rollback(cat);
    j->id = 0;
    return -1;
}

static int get_where(struct catalog *cat, const char *sql,
                     int64_t id, const char *s1, const char *s2,
                     struct catalog_job *out, struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);
    int rc;

    if (catalog_prepare(cat, sql, &st, err) < 0)
        return -1;
    if (s1) {
        catalog_bind_text(st, 1, s1);
        catalog_bind_text(st, 2, s2);
    } else {
        sqlite3_bind_int64(st, 1, id);
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, "job lookup");
        return -1;
    }
    return row_to_job(st, out, err) < 0 ? -1 : 1;
}

int catalog_job_get(struct catalog *cat, int64_t id, struct catalog_job *out,
                    struct gvm_error *err)
{
    /* id may be a client's (job-get, job-remove): NotFound, not a contract. */
    assert(cat && out);
    int r = get_where(cat, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?",
                      id, NULL, NULL, out, err);
    if (r == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "There is no job %lld.",
                      (long long)id);
        return -1;
    }
    return r < 0 ? -1 : 0;
}

int catalog_job_find_opid(struct catalog *cat, const char *type,
                          const char *op_id, struct catalog_job *out,
                          struct gvm_error *err)
{
    assert(cat && type && op_id && out);
    return get_where(cat, "SELECT " JOB_COLUMNS " FROM jobs "
                     "WHERE type = ? AND op_id = ? ORDER BY id LIMIT 1",
                     0, type, op_id, out, err);
}

static int fill_jobs(struct catalog *cat, sqlite3_stmt *st, void *elem,
                     struct gvm_error *err)
{
    return row_to_job(st, elem, err);
}

static void free_jobs(void *v, size_t n) { catalog_jobs_free(v, n); }

int catalog_job_list(struct catalog *cat, struct catalog_job **out, size_t *n,
                     struct gvm_error *err)
{
    assert(cat && out && n);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "SELECT " JOB_COLUMNS " FROM jobs ORDER BY id",
                        &st, err) < 0)
        return -1;
    return catalog_collect(cat, st, sizeof(**out), fill_jobs, free_jobs,
                           "jobs", (void **)out, n, err);
}

/* A time column: 0 (not known) is NULL. */
static void bind_time(sqlite3_stmt *st, int idx, int64_t t)
{
    if (t)
        sqlite3_bind_int64(st, idx, t);
    else
        sqlite3_bind_null(st, idx);
}

int catalog_job_update(struct catalog *cat, const struct catalog_job *j,
                       struct gvm_error *err)
{
    /* Updates a row catalog_job_add created (it set j->id). */
    assert(cat && j && j->id > 0);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    if (catalog_prepare(cat,
            "UPDATE jobs SET status = ?, cancelled = ?, error = ?, "
            "progress_current = ?, progress_total = ?, checkpoint = ?, "
            "updated = ?, started = ?, finished = ? WHERE id = ?", &st,
            err) < 0)
        return -1;
    catalog_bind_text(st, 1, j->status);
    sqlite3_bind_int(st, 2, j->cancelled);
    catalog_bind_text(st, 3, j->error);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)j->progress_current);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)j->progress_total);
    catalog_bind_text(st, 6, j->checkpoint);
    sqlite3_bind_int64(st, 7, catalog_now());
    bind_time(st, 8, j->started);
    bind_time(st, 9, j->finished);
    sqlite3_bind_int64(st, 10, j->id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "job update");
        return -1;
    }
    if (sqlite3_changes(catalog_db(cat)) == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "There is no job %lld.",
                      (long long)j->id);
        return -1;
    }
    return 0;
}

static int exec_id(struct catalog *cat, const char *sql, int64_t id,
                   const char *what, struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    if (catalog_prepare(cat, sql, &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, what);
        return -1;
    }
    return 0;
}

int catalog_job_unlock(struct catalog *cat, int64_t id, struct gvm_error *err)
{
    assert(cat);
    return exec_id(cat, "DELETE FROM job_images WHERE job_id = ?", id,
                   "image lock release", err);
}

int catalog_job_unlock_image(struct catalog *cat, int64_t id, int64_t image_id,
                             struct gvm_error *err)
{
    assert(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);

    if (catalog_prepare(cat, "DELETE FROM job_images WHERE job_id = ? AND "
                        "image_id = ?", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, image_id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "image lock release");
        return -1;
    }
    return 0;
}

int catalog_job_delete(struct catalog *cat, int64_t id, struct gvm_error *err)
{
    assert(cat);
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (exec_id(cat, "DELETE FROM journal WHERE job_id = ?", id,
                "journal deletion", err) < 0 ||
        exec_id(cat, "DELETE FROM jobs WHERE id = ?", id,
                "job deletion", err) < 0) {
        catalog_rollback(cat);
        return -1;
    }
    return catalog_commit(cat, err);
}

int64_t catalog_job_lock_holder(struct catalog *cat, int64_t image_id,
                                struct gvm_error *err)
{
    assert(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    CATALOG_LOCK_GUARD(cat);
    int rc;

    if (catalog_prepare(cat, "SELECT min(job_id) FROM job_images "
                        "WHERE image_id = ?", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, image_id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, "image lock lookup");
        return -1;
    }
    return sqlite3_column_int64(st, 0);   /* NULL reads as 0 */
}
