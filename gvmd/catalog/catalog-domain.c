/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-domain.c — rows of the domains and disks tables.  Every function
 * takes the catalog lock for its own statements; catalog_domain_add writes
 * the domain and all its disks in one transaction.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-domain.h"

void catalog_domain_clear(struct catalog_domain *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->uuid);
    for (size_t i = 0; i < d->ndisks; i++)
        free(d->disks[i].target);
    free(d->disks);
    memset(d, 0, sizeof(*d));
}

void catalog_domains_free(struct catalog_domain *d, size_t n)
{
    assert(d || n == 0);
    for (size_t i = 0; i < n; i++)
        catalog_domain_clear(&d[i]);
    free(d);
}

static int load_disks(struct catalog *cat, struct catalog_domain *d,
                      struct gvm_error *err)
{
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc;

    if (catalog_prepare(cat, "SELECT target, image_id FROM disks WHERE "
                        "domain_id = ? ORDER BY target", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, d->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct catalog_disk *n = realloc(d->disks, (d->ndisks + 1) * sizeof(*n));
        if (!n)
            return gvm_error_oom(err);
        d->disks = n;
        n[d->ndisks].target = catalog_column_strdup(st, 0);
        n[d->ndisks].image_id = sqlite3_column_int64(st, 1);
        if (!n[d->ndisks++].target)
            return gvm_error_oom(err);
    }
    if (rc != SQLITE_DONE) {
        catalog_sql_error(cat, err, "reading a domain's disks");
        return -1;
    }
    return 0;
}

static void row_to_domain(sqlite3_stmt *st, struct catalog_domain *out)
{
    memset(out, 0, sizeof(*out));
    out->id = sqlite3_column_int64(st, 0);
    out->name = catalog_column_strdup(st, 1);
    out->uuid = catalog_column_strdup(st, 2);
    out->created = sqlite3_column_int64(st, 3);
}

/* InUse: image_id is already a disk of domain other, said with names. */
static void taken(struct catalog *cat, int64_t image_id, int64_t other,
                  struct gvm_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    bool row;

    if (catalog_prepare(cat, "SELECT v.name || ':' || i.path, k.target, "
                        "d.name FROM images i JOIN volumes v ON v.id = "
                        "i.volume_id JOIN disks k ON k.image_id = i.id JOIN "
                        "domains d ON d.id = k.domain_id WHERE i.id = ? AND "
                        "d.id = ?", &st, err) < 0)
        return;
    sqlite3_bind_int64(st, 1, image_id);
    sqlite3_bind_int64(st, 2, other);
    row = sqlite3_step(st) == SQLITE_ROW;
    gvm_error_set(err, GVM_ERR_IN_USE, "Image %s is already disk %s of "
                  "domain %s; detach it there (domain-detach) first.",
                  row ? (const char *)sqlite3_column_text(st, 0) : "?",
                  row ? (const char *)sqlite3_column_text(st, 1) : "?",
                  row ? (const char *)sqlite3_column_text(st, 2) : "?");
}

static int add_txn(struct catalog *cat, void *opaque, struct gvm_error *err)
{
    struct catalog_domain *d = opaque;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "SELECT count(*) FROM domains WHERE uuid = ?",
                        &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, d->uuid);
    if (sqlite3_step(st) != SQLITE_ROW) {
        catalog_sql_error(cat, err, "looking up a domain");
        return -1;
    }
    if (sqlite3_column_int64(st, 0) > 0) {
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "A domain with uuid %s is "
                      "already attached.", d->uuid);
        return -1;
    }
    sqlite3_finalize(steal_pointer(&st));
    if (catalog_prepare(cat, "INSERT INTO domains (name, uuid, created) "
                        "VALUES (?, ?, ?)", &st, err) < 0)
        return -1;
    catalog_bind_text(st, 1, d->name);
    catalog_bind_text(st, 2, d->uuid);
    d->created = catalog_now();
    sqlite3_bind_int64(st, 3, d->created);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "adding a domain");
        return -1;
    }
    d->id = sqlite3_last_insert_rowid(catalog_db(cat));
    for (size_t i = 0; i < d->ndisks; i++) {
        int64_t other = 0;
        int r = catalog_domain_of_image(cat, d->disks[i].image_id, &other,
                                        NULL, err);
        if (r < 0)
            return -1;
        if (r > 0) {
            taken(cat, d->disks[i].image_id, other, err);
            return -1;
        }
        if (catalog_domain_set_disk(cat, d->id, d->disks[i].target,
                                    d->disks[i].image_id, err) < 0)
            return -1;
    }
    return 0;
}

int catalog_domain_add(struct catalog *cat, struct catalog_domain *d,
                       struct gvm_error *err)
{
    assert(cat && d && d->name);
    return catalog_txn(cat, add_txn, d, err);
}

static int fill_domain(struct catalog *cat, sqlite3_stmt *st, void *elem,
                       struct gvm_error *err)
{
    struct catalog_domain *out = elem;

    row_to_domain(st, out);
    if (!out->name || !out->uuid)
        return gvm_error_oom(err);
    return load_disks(cat, out, err);
}

static void clear_domain(void *elem)
{
    catalog_domain_clear(elem);
}

static int find_by(struct catalog *cat, const char *sql, const char *key,
                   int64_t id, struct catalog_domain *out,
                   struct gvm_error *err)
{
    return catalog_row(cat, sql, key, id, fill_domain, clear_domain,
                       "looking up a domain", out, err);
}

#define DOMAIN_COLUMNS "SELECT id, name, uuid, created FROM domains "

int catalog_domain_find(struct catalog *cat, const char *key,
                        struct catalog_domain *out, struct gvm_error *err)
{
    assert(cat && key && out);
    int r = find_by(cat, DOMAIN_COLUMNS "WHERE uuid = ?", key, 0, out, err);

    if (r == 0)
        r = find_by(cat, DOMAIN_COLUMNS "WHERE name = ? ORDER BY id LIMIT 1",
                    key, 0, out, err);
    if (r == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "No domain named '%s' (or with "
                      "that uuid) is attached; attach it with domain-attach.",
                      key);
        return -1;
    }
    return r < 0 ? -1 : 0;
}

int catalog_domain_get(struct catalog *cat, int64_t id,
                       struct catalog_domain *out, struct gvm_error *err)
{
    assert(cat && out);
    int r = find_by(cat, DOMAIN_COLUMNS "WHERE id = ?", NULL, id, out, err);

    if (r == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "The catalog refers to "
                      "domain %lld, which is not attached any more; run "
                      "chain-audit.", (long long)id);
        return -1;
    }
    return r < 0 ? -1 : 0;
}

static int fill_domains(struct catalog *cat, sqlite3_stmt *st, void *elem,
                        struct gvm_error *err)
{
    row_to_domain(st, elem);
    return load_disks(cat, elem, err);
}

static void free_domains(void *v, size_t n) { catalog_domains_free(v, n); }

int catalog_domain_list(struct catalog *cat, struct catalog_domain **out,
                        size_t *n, struct gvm_error *err)
{
    assert(cat && out && n);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, DOMAIN_COLUMNS "ORDER BY id", &st, err) < 0)
        return -1;
    return catalog_collect(cat, st, sizeof(**out), fill_domains, free_domains,
                           "domains", (void **)out, n, err);
}

int catalog_domain_remove(struct catalog *cat, int64_t id,
                          struct gvm_error *err)
{
    /* The id of a row the caller just read (rpc-domain.c). */
    assert(cat && id > 0);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int64_t c;

    if (catalog_prepare(cat, "SELECT count(*), (SELECT name FROM domains "
                        "WHERE id = ?1) FROM snapshots WHERE domain_id = ?1",
                        &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        catalog_sql_error(cat, err, "counting a domain's snapshots");
        return -1;
    }
    c = sqlite3_column_int64(st, 0);
    if (c > 0) {
        const char *name = (const char *)sqlite3_column_text(st, 1);

        gvm_error_set(err, GVM_ERR_IN_USE, "Domain %s has %lld snapshot(s); "
                      "delete them first (snapshot-delete; metadata-only "
                      "keeps the files).", name ? name : "?", (long long)c);
        return -1;
    }
    sqlite3_finalize(steal_pointer(&st));
    if (catalog_prepare(cat, "DELETE FROM domains WHERE id = ?", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "removing a domain");
        return -1;
    }
    if (sqlite3_changes(catalog_db(cat)) == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "The catalog refers to "
                      "domain %lld, which is not attached any more; run "
                      "chain-audit.", (long long)id);
        return -1;
    }
    return 0;
}

int catalog_domain_move_disks(struct catalog *cat, int64_t from, int64_t to,
                              struct gvm_error *err)
{
    assert(cat && from > 0 && to > 0);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "UPDATE disks SET image_id = ? WHERE image_id = ?",
                        &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, to);
    sqlite3_bind_int64(st, 2, from);
    if (sqlite3_step(st) != SQLITE_DONE) {
        catalog_sql_error(cat, err, "moving disks to another image");
        return -1;
    }
    return 0;
}

int catalog_domain_set_disk(struct catalog *cat, int64_t domain_id,
                            const char *target, int64_t image_id,
                            struct gvm_error *err)
{
    assert(cat && domain_id > 0 && target && image_id > 0);
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;

    if (catalog_prepare(cat, "INSERT INTO disks (domain_id, target, image_id) "
                        "VALUES (?, ?, ?) ON CONFLICT (domain_id, target) "
                        "DO UPDATE SET image_id = excluded.image_id",
                        &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, domain_id);
    catalog_bind_text(st, 2, target);
    sqlite3_bind_int64(st, 3, image_id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(catalog_db(cat)) ==
            SQLITE_CONSTRAINT_FOREIGNKEY) {
            gvm_error_set(err, GVM_ERR_NOT_FOUND, "The image of disk %s "
                          "was removed from the catalog meanwhile; run the "
                          "command again.", target);
            return -1;
        }
        catalog_sql_error(cat, err, "recording a domain's disk");
        return -1;
    }
    return 0;
}

int catalog_domain_of_image(struct catalog *cat, int64_t image_id,
                            int64_t *domain_id, char **target,
                            struct gvm_error *err)
{
    assert(cat && domain_id);   /* target may be NULL */
    CATALOG_LOCK_GUARD(cat);
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc;

    if (catalog_prepare(cat, "SELECT domain_id, target FROM disks WHERE "
                        "image_id = ? ORDER BY domain_id LIMIT 1", &st, err) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, image_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW) {
        catalog_sql_error(cat, err, "looking up an image's domain");
        return -1;
    }
    *domain_id = sqlite3_column_int64(st, 0);
    if (target) {
        *target = catalog_column_strdup(st, 1);
        if (!*target)
            return gvm_error_oom(err);
    }
    return 1;
}
