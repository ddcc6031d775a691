/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-snapshot.c — rows of the snapshots and snapshot_disks tables.
 * Every function takes the catalog lock for its own statements; callers
 * that need several changes to be atomic wrap them in a transaction.
 */
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-image.h"
#include "catalog-snapshot.h"

void catalog_snapshot_clear(struct catalog_snapshot *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->description);
    free(s->state);
    for (size_t i = 0; i < s->ndisks; i++)
        free(s->disks[i].target);
    free(s->disks);
    memset(s, 0, sizeof(*s));
}

void catalog_snapshots_free(struct catalog_snapshot *s, size_t n)
{
    assert(s || n == 0);
    for (size_t i = 0; i < n; i++)
        catalog_snapshot_clear(&s[i]);
    free(s);
}

static int step_done(struct catalog *cat, sqlite3_stmt *st, const char *what,
                     struct gvm_error *err)
{
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, what);
        return -1;
    }
    return 0;
}

static int load_disks(struct catalog *cat, struct catalog_snapshot *s,
                      struct gvm_error *err)
{
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc;

    if (catalog_prepare(cat, "SELECT target, image_id, overlay_image_id FROM "
                        "snapshot_disks WHERE snapshot_id = ? ORDER BY target",
                        &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, s->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct catalog_snapshot_disk *n = realloc(s->disks, (s->ndisks + 1) * sizeof(*n));
        if (!n)
            return gvm_error_oom(err);
        s->disks = n;
        n[s->ndisks].target = catalog_column_strdup(st, 0);
        n[s->ndisks].image_id = sqlite3_column_int64(st, 1);
        n[s->ndisks].overlay_id = sqlite3_column_int64(st, 2);
        if (!n[s->ndisks++].target)
            return gvm_error_oom(err);
    }
    if (rc != SQLITE_DONE) {
        catalog_sql_error(cat, err, "reading a snapshot's disks");
        return -1;
    }
    return 0;
}

#define SNAP_COLUMNS "SELECT id, name, domain_id, parent_id, description, " \
                     "state, created FROM snapshots "

static int row_to_snap(struct catalog *cat, sqlite3_stmt *st,
                       struct catalog_snapshot *out, struct gvm_error *err)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    out->name = catalog_column_strdup(st, 1);
    out->domain_id = sqlite3_column_int64(st, 2);
    out->parent_id = sqlite3_column_int64(st, 3);
    out->description = catalog_column_strdup(st, 4);
    out->state = catalog_column_strdup(st, 5);
    out->created = sqlite3_column_int64(st, 6);
    if (!out->name || !out->state)
        return gvm_error_oom(err);
    return load_disks(cat, out, err);
}

int catalog_snapshot_add(struct catalog *cat, struct catalog_snapshot *s,
                         struct gvm_error *err)
{
    assert(cat && s && s->name);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "SELECT count(*) FROM snapshots WHERE name = ?",
                        &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, s->name);
    if (sqlite3_step(st) != SQLITE_ROW) {
        catalog_sql_error(cat, err, "looking up a snapshot");
        return -1;
    }
    if (sqlite3_column_int64(st, 0) > 0) {
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "A snapshot named '%s' "
                      "exists already.", s->name);
        return -1;
    }
    sqlite3_finalize(steal_pointer(&st));
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (catalog_prepare(cat, "INSERT INTO snapshots (name, domain_id, "
                        "parent_id, description, state, created) VALUES "
                        "(?, ?, ?, ?, 'ready', ?)", &st, err) < 0)
        goto fail;
    catalog_bind_text(st, 1, s->name);
    if (s->domain_id > 0)
        sqlite3_bind_int64(st, 2, s->domain_id);
    if (s->parent_id > 0)
        sqlite3_bind_int64(st, 3, s->parent_id);
    catalog_bind_text(st, 4, s->description);
    s->created = catalog_now();
    sqlite3_bind_int64(st, 5, s->created);
    if (step_done(cat, st, "adding a snapshot", err) < 0)
        goto fail;
    s->id = sqlite3_last_insert_rowid(catalog_db(cat));
    for (size_t i = 0; i < s->ndisks; i++) {
        sqlite3_finalize(steal_pointer(&st));
        if (catalog_prepare(cat, "INSERT INTO snapshot_disks (snapshot_id, "
                            "target, image_id, overlay_image_id) VALUES "
                            "(?, ?, ?, ?)", &st, err) < 0)
            goto fail;
        sqlite3_bind_int64(st, 1, s->id);
        catalog_bind_text(st, 2, s->disks[i].target);
        sqlite3_bind_int64(st, 3, s->disks[i].image_id);
        if (s->disks[i].overlay_id > 0)
            sqlite3_bind_int64(st, 4, s->disks[i].overlay_id);
        if (step_done(cat, st, "adding a snapshot disk", err) < 0)
            goto fail;
    }
    sqlite3_finalize(steal_pointer(&st));
    return catalog_commit(cat, err);
fail:
    catalog_rollback(cat);
    return -1;
}

static int fill_snapshot(struct catalog *cat, sqlite3_stmt *st, void *elem,
                         struct gvm_error *err)
{
    return row_to_snap(cat, st, elem, err);
}

static void clear_snapshot(void *elem)
{
    catalog_snapshot_clear(elem);
}

static int get_by(struct catalog *cat, const char *sql, const char *key,
                  int64_t id, struct catalog_snapshot *out,
                  struct gvm_error *err)
{
    return catalog_row(cat, sql, key, id, fill_snapshot, clear_snapshot,
                       "looking up a snapshot", out, err);
}

int catalog_snapshot_find(struct catalog *cat, const char *key,
                          struct catalog_snapshot *out, struct gvm_error *err)
{
    assert(cat && key && out);
    int r = get_by(cat, SNAP_COLUMNS "WHERE name = ?", key, 0, out, err);
    bool digits = *key != '\0';

    for (const char *p = key; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    if (r == 0 && digits)
        r = get_by(cat, SNAP_COLUMNS "WHERE id = ?", NULL,
                   strtoll(key, NULL, 10), out, err);
    if (r == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "No snapshot is named '%s'.", key);
        return -1;
    }
    return r < 0 ? -1 : 0;
}

int catalog_snapshot_get(struct catalog *cat, int64_t id,
                         struct catalog_snapshot *out, struct gvm_error *err)
{
    assert(cat && out);
    int r = get_by(cat, SNAP_COLUMNS "WHERE id = ?", NULL, id, out, err);

    if (r == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "Snapshot %lld is no longer "
                      "in the catalog (deleted meanwhile).", (long long)id);
        return -1;
    }
    return r < 0 ? -1 : 0;
}

static void free_snapshots(void *v, size_t n) { catalog_snapshots_free(v, n); }

int catalog_snapshot_list(struct catalog *cat, struct catalog_snapshot **out,
                          size_t *n, struct gvm_error *err)
{
    assert(cat && out && n);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, SNAP_COLUMNS "ORDER BY id", &st, err) < 0)
        return -1;
    return catalog_collect(cat, st, sizeof(**out), fill_snapshot, free_snapshots,
                           "snapshots", (void **)out, n, err);
}

static int one_id(struct catalog *cat, const char *sql, int64_t key,
                  int64_t *id, struct gvm_error *err)
{
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc;

    if (catalog_prepare(cat, sql, &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, "looking up a snapshot disk");
        return -1;
    }
    *id = sqlite3_column_int64(st, 0);
    return 1;
}

int catalog_snapshot_frozen_by(struct catalog *cat, int64_t image_id,
                               int64_t *id, struct gvm_error *err)
{
    assert(cat && id);
    return one_id(cat, "SELECT snapshot_id FROM snapshot_disks WHERE "
                  "image_id = ? ORDER BY snapshot_id DESC LIMIT 1",
                  image_id, id, err);
}

int catalog_snapshot_overlay_of(struct catalog *cat, int64_t image_id,
                                int64_t *id, struct gvm_error *err)
{
    assert(cat && id);
    return one_id(cat, "SELECT snapshot_id FROM snapshot_disks WHERE "
                  "overlay_image_id = ? ORDER BY snapshot_id DESC LIMIT 1",
                  image_id, id, err);
}

static int exec2(struct catalog *cat, const char *sql, int64_t a, int64_t b,
                 const char *what, struct gvm_error *err)
{
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, sql, &st, err) < 0)
        return -1;
    if (a > 0)
        sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    return step_done(cat, st, what, err);
}

int catalog_snapshot_delete(struct catalog *cat, int64_t id,
                            struct gvm_error *err)
{
    assert(cat && id > 0);
    struct catalog_snapshot s = { 0 };
    int ret = -1;

    if (catalog_begin(cat, err) < 0)
        return -1;
    if (catalog_snapshot_get(cat, id, &s, err) < 0)
        goto out;
    /* The children hang on the deleted snapshot's parent (NULL: roots). */
    if (exec2(cat, "UPDATE snapshots SET parent_id = ? WHERE parent_id = ?",
              s.parent_id, id, "re-parenting snapshots", err) < 0 ||
        exec2(cat, "DELETE FROM snapshots WHERE id = ?2",
              0, id, "removing a snapshot", err) < 0)
        goto out;
    ret = 0;
out:
    catalog_snapshot_clear(&s);
    if (ret == 0)
        return catalog_commit(cat, err);
    catalog_rollback(cat);
    return -1;
}

int catalog_snapshot_replace_overlay(struct catalog *cat, int64_t old_id,
                                     int64_t new_id, struct gvm_error *err)
{
    assert(cat && old_id > 0 && new_id > 0);
    return exec2(cat, "UPDATE snapshot_disks SET overlay_image_id = ? WHERE "
                 "overlay_image_id = ?", new_id, old_id,
                 "recording a snapshot's overlay", err);
}

int catalog_snapshot_drop_image(struct catalog *cat, int64_t job_id,
                                int64_t image_id, struct gvm_error *err)
{
    assert(cat && image_id > 0);
    int r;

    if (catalog_begin(cat, err) < 0)
        return -1;
    r = exec2(cat, "DELETE FROM job_images WHERE job_id = ? AND image_id = ?",
              job_id, image_id, "releasing an image lock", err);
    if (r == 0)
        r = catalog_image_delete(cat, image_id, err);
    if (r < 0) {
        catalog_rollback(cat);
        return -1;
    }
    return catalog_commit(cat, err);
}
