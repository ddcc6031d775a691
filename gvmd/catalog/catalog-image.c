/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-image.c — image rows and backing edges (table images of
 * db/schema/0001-init.sql).  Every function takes the catalog lock for its
 * own statements; callers that need several to be atomic wrap them in
 * catalog_begin()/catalog_commit() (the lock is recursive).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-image.h"

#define IMAGE_COLUMNS \
    "i.id, i.volume_id, v.name, i.path, i.format, i.virtual_size, " \
    "i.cluster_size, i.backing_image_id, i.backing_filename, "       \
    "i.backing_format, i.state, i.created "                          \
    "FROM images i JOIN volumes v ON v.id = i.volume_id "

void catalog_image_clear(struct catalog_image *img)
{
    if (!img)
        return;
    free(img->volume);
    free(img->path);
    free(img->format);
    free(img->backing_filename);
    free(img->backing_format);
    free(img->state);
    memset(img, 0, sizeof(*img));
}

void catalog_images_free(struct catalog_image *imgs, size_t n)
{
    assert(imgs || n == 0);
    for (size_t i = 0; i < n; i++)
        catalog_image_clear(&imgs[i]);
    free(imgs);
}

static void row_to_image(sqlite3_stmt *st, struct catalog_image *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    out->volume_id = sqlite3_column_int64(st, 1);
    out->volume = catalog_column_strdup(st, 2);
    out->path = catalog_column_strdup(st, 3);
    out->format = catalog_column_strdup(st, 4);
    out->virtual_size = (uint64_t)sqlite3_column_int64(st, 5);
    out->cluster_size = (uint32_t)sqlite3_column_int64(st, 6);
    out->backing_id = sqlite3_column_int64(st, 7);
    out->backing_filename = catalog_column_strdup(st, 8);
    out->backing_format = catalog_column_strdup(st, 9);
    out->state = catalog_column_strdup(st, 10);
    out->created = sqlite3_column_int64(st, 11);
}

int catalog_image_add(struct catalog *cat, struct catalog_image *img,
                      struct gvm_error *err)
{
    assert(cat && img && img->path && img->format);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int64_t now = catalog_now();

    if (catalog_prepare(cat,
            "INSERT INTO images (volume_id, path, format, virtual_size, "
            "cluster_size, backing_image_id, backing_filename, "
            "backing_format, state, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, img->volume_id);
    catalog_bind_text(st, 2, img->path);
    catalog_bind_text(st, 3, img->format);
    sqlite3_bind_int64(st, 4, (int64_t)img->virtual_size);
    if (img->cluster_size)
        sqlite3_bind_int64(st, 5, img->cluster_size);
    else
        sqlite3_bind_null(st, 5);
    if (img->backing_id > 0)
        sqlite3_bind_int64(st, 6, img->backing_id);
    else
        sqlite3_bind_null(st, 6);
    catalog_bind_text(st, 7, img->backing_filename);
    catalog_bind_text(st, 8, img->backing_format);
    catalog_bind_text(st, 9, img->state ? img->state : "ready");
    sqlite3_bind_int64(st, 10, now);

    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(catalog_db(cat));
        if (ext == SQLITE_CONSTRAINT_UNIQUE) {
            gvm_error_set(err, GVM_ERR_ALREADY_EXISTS,
                          "Image '%s' is already in the catalog.", img->path);
        } else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY) {
            gvm_error_set(err, GVM_ERR_NOT_FOUND,
                          "Cannot catalogue image '%s': its volume or its "
                          "backing image left the catalog meanwhile; run the "
                          "command again.", img->path);
        } else {
            catalog_sql_error(cat, err, "adding an image");
        }
        return -1;
    }
    img->id = sqlite3_last_insert_rowid(catalog_db(cat));
    img->created = now;
    return 0;
}

int catalog_image_restore(struct catalog *cat, const struct catalog_image *img,
                          struct gvm_error *err)
{
    /* Puts back a row that was read out of the catalog: it had an id. */
    assert(cat && img && img->id > 0 && img->path && img->format);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    /* The id it had: an id is never handed to another row (0003-ids.sql),
     * so it is still free, and whatever recorded it finds it again. */
    if (catalog_prepare(cat,
            "INSERT INTO images (id, volume_id, path, format, virtual_size, "
            "cluster_size, backing_image_id, backing_filename, "
            "backing_format, state, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, img->id);
    sqlite3_bind_int64(st, 2, img->volume_id);
    catalog_bind_text(st, 3, img->path);
    catalog_bind_text(st, 4, img->format);
    sqlite3_bind_int64(st, 5, (int64_t)img->virtual_size);
    if (img->cluster_size)
        sqlite3_bind_int64(st, 6, img->cluster_size);
    else
        sqlite3_bind_null(st, 6);
    if (img->backing_id > 0)
        sqlite3_bind_int64(st, 7, img->backing_id);
    else
        sqlite3_bind_null(st, 7);
    catalog_bind_text(st, 8, img->backing_filename);
    catalog_bind_text(st, 9, img->backing_format);
    catalog_bind_text(st, 10, img->state ? img->state : "ready");
    sqlite3_bind_int64(st, 11, img->created ? img->created : catalog_now());
    if (sqlite3_step(st) != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(catalog_db(cat));
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            gvm_error_set(err, GVM_ERR_CONFLICT, "Image %s:%s cannot be put "
                          "back in the catalog: its id or path is taken.",
                          img->volume ? img->volume : "?", img->path);
        else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            gvm_error_set(err, GVM_ERR_CONFLICT, "Image %s:%s cannot be put "
                          "back in the catalog: its volume or its backing "
                          "image is gone.", img->volume ? img->volume : "?",
                          img->path);
        else
            catalog_sql_error(cat, err, "restoring an image");
        return -1;
    }
    return 0;
}

int catalog_image_get(struct catalog *cat, int64_t id,
                      struct catalog_image *out, struct gvm_error *err)
{
    assert(cat && out);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "SELECT " IMAGE_COLUMNS "WHERE i.id = ?",
                        &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        row_to_image(st, out);
        return 0;
    }
    if (rc == SQLITE_DONE)
        gvm_error_set(err, GVM_ERR_NOT_FOUND,
                      "No image with id %lld is in the catalog; "
                      "image-list shows those that are.", (long long)id);
    else
        catalog_sql_error(cat, err, "reading an image");
    return -1;
}

int catalog_image_find(struct catalog *cat, int64_t volume_id,
                       const char *path, struct catalog_image *out,
                       struct gvm_error *err)
{
    assert(cat && path && out);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "SELECT " IMAGE_COLUMNS
                        "WHERE i.volume_id = ? AND i.path = ?", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, volume_id);
    catalog_bind_text(st, 2, path);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        row_to_image(st, out);
        return 1;
    }
    if (rc == SQLITE_DONE)
        return 0;
    catalog_sql_error(cat, err, "looking up an image");
    return -1;
}

static int fill_image(struct catalog *cat, sqlite3_stmt *st, void *elem,
                      struct gvm_error *err)
{
    row_to_image(st, elem);
    return 0;
}

static void free_images(void *v, size_t n) { catalog_images_free(v, n); }

int catalog_image_list(struct catalog *cat, int64_t volume_id,
                       struct catalog_image **out, size_t *n,
                       struct gvm_error *err)
{
    assert(cat && out && n);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, volume_id > 0
                        ? "SELECT " IMAGE_COLUMNS "WHERE i.volume_id = ? ORDER BY i.id"
                        : "SELECT " IMAGE_COLUMNS "ORDER BY i.id", &st, err) < 0)
        return -1;
    if (volume_id > 0)
        sqlite3_bind_int64(st, 1, volume_id);
    return catalog_collect(cat, st, sizeof(**out), fill_image, free_images,
                           "images", (void **)out, n, err);
}

int catalog_image_children(struct catalog *cat, int64_t id, int64_t **ids,
                           size_t *n, struct gvm_error *err)
{
    assert(cat && ids && n);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    _cleanup_free_ int64_t *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    if (catalog_prepare(cat, "SELECT id FROM images WHERE backing_image_id = ? "
                        "ORDER BY id", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            int64_t *nv = realloc(v, ncap * sizeof(*v));
            if (!nv) {
                gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory listing children.");
                return -1;
            }
            v = nv;
            cap = ncap;
        }
        v[len++] = sqlite3_column_int64(st, 0);
    }
    if (rc != SQLITE_DONE) {
        catalog_sql_error(cat, err, "listing an image's children");
        return -1;
    }
    *ids = steal_pointer(&v);
    *n = len;
    return 0;
}

static int exec_one(struct catalog *cat, sqlite3_stmt *st, const char *what,
                    int64_t id, struct gvm_error *err)
{
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, what);
        return -1;
    }
    if (sqlite3_changes(catalog_db(cat)) == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND,
                      "No image with id %lld is in the catalog; "
                      "image-list shows those that are.", (long long)id);
        return -1;
    }
    return 0;
}

int catalog_image_set_backing(struct catalog *cat, int64_t id,
                              int64_t backing_id, const char *backing_filename,
                              const char *backing_format,
                              struct gvm_error *err)
{
    /* id is a row's (backing_id 0 or less: no backing image). */
    assert(cat && id > 0);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "UPDATE images SET backing_image_id = ?, "
                        "backing_filename = ?, backing_format = ? WHERE id = ?",
                        &st, err) < 0)
        return -1;
    if (backing_id > 0)
        sqlite3_bind_int64(st, 1, backing_id);
    else
        sqlite3_bind_null(st, 1);
    catalog_bind_text(st, 2, backing_filename);
    catalog_bind_text(st, 3, backing_format);
    sqlite3_bind_int64(st, 4, id);
    return exec_one(cat, st, "changing an image's backing edge", id, err);
}

int catalog_image_set_header(struct catalog *cat, int64_t id,
                             const char *format, uint64_t virtual_size,
                             uint32_t cluster_size, struct gvm_error *err)
{
    assert(cat && id > 0 && format);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "UPDATE images SET format = ?, virtual_size = ?, "
                        "cluster_size = ? WHERE id = ?", &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, format);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)virtual_size);
    if (cluster_size)
        sqlite3_bind_int64(st, 3, cluster_size);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_int64(st, 4, id);
    return exec_one(cat, st, "recording an image's header fields", id, err);
}

int catalog_image_set_state(struct catalog *cat, int64_t id,
                            const char *state, struct gvm_error *err)
{
    assert(cat && id > 0 && state);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "UPDATE images SET state = ? WHERE id = ?",
                        &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, state);
    sqlite3_bind_int64(st, 2, id);
    return exec_one(cat, st, "changing an image's state", id, err);
}

/* The users `sql` (one bound id, one text column) names, for a message:
 * "a, b and c", or the first three "and N more".  0 and *out (caller
 * frees; NULL when there are none), or -1 with err set. */
static int user_names(struct catalog *cat, const char *sql, int64_t id,
                      char **out, struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    char *names[3] = { NULL, NULL, NULL };
    int64_t n = 0;
    int rc, ret = -1;

    *out = NULL;
    if (catalog_prepare(cat, sql, &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);

        if (n < 3 && !(names[n] = strdup(t ? t : "?")))
            goto out;
        n++;
    }
    if (rc != SQLITE_DONE) {
        catalog_sql_error(cat, err, "listing an image's users");
        goto out;
    }
    if (n == 0)
        ret = 0;
    else if (n == 1)
        ret = asprintf(out, "%s", names[0]);
    else if (n == 2)
        ret = asprintf(out, "%s and %s", names[0], names[1]);
    else if (n == 3)
        ret = asprintf(out, "%s, %s and %s", names[0], names[1], names[2]);
    else
        ret = asprintf(out, "%s, %s, %s and %lld more", names[0], names[1],
                       names[2], (long long)(n - 3));
    if (ret < 0)
        *out = NULL;        /* out of memory: said below */
    else
        ret = 0;
out:
    for (size_t i = 0; i < 3; i++)
        free(names[i]);
    if (ret < 0 && !gvm_error_isset(err))
        gvm_error_oom(err);
    return ret;
}

int catalog_image_delete(struct catalog *cat, int64_t id,
                         struct gvm_error *err)
{
    assert(cat && id > 0);
    /* Who keeps an image, named as a user can look them up, and what to
     * do about it. */
    static const struct {
        const char *sql, *verb, *next;
    } users[] = {
        { "SELECT v.name || ':' || i.path FROM images i JOIN volumes v "
          "ON v.id = i.volume_id WHERE i.backing_image_id = ? ORDER BY i.id",
          "is the backing image of", "delete or rebase those first" },
        { "SELECT d.name || ' (disk ' || k.target || ')' FROM disks k JOIN "
          "domains d ON d.id = k.domain_id WHERE k.image_id = ? ORDER BY d.id",
          "is a disk of domain", "detach it (domain-detach) first" },
        { "SELECT 'snapshot ' || s.name FROM snapshot_disks sd JOIN snapshots s "
          "ON s.id = sd.snapshot_id WHERE sd.image_id = ? ORDER BY s.id",
          "is recorded in", "delete the snapshot first (snapshot-delete)" },
        { "SELECT 'job ' || j.id || ' (' || j.type || ')' FROM job_images ji "
          "JOIN jobs j ON j.id = ji.job_id WHERE ji.image_id = ? ORDER BY j.id",
          "is locked by", "wait for the job or cancel it" },
    };
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    /* The foreign keys would refuse too, but without saying why. */
    for (size_t i = 0; i < GVM_ARRAY_SIZE(users); i++) {
        _cleanup_free_ char *who = NULL, *self = NULL;

        if (user_names(cat, users[i].sql, id, &who, err) < 0)
            return -1;
        if (!who)
            continue;
        if (user_names(cat, "SELECT v.name || ':' || i.path FROM images i "
                       "JOIN volumes v ON v.id = i.volume_id WHERE i.id = ?",
                       id, &self, err) < 0)
            return -1;
        gvm_error_set(err, GVM_ERR_IN_USE, "%s %s %s; %s.",
                      self ? self : "The image", users[i].verb, who,
                      users[i].next);
        return -1;
    }
    if (catalog_prepare(cat, "DELETE FROM images WHERE id = ?", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    return exec_one(cat, st, "removing an image", id, err);
}
