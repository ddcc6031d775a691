/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-catalog.c — the catalog (open, migrations, the newer-version refusal,
 * transactions and savepoints, volume rows, op-ids) and the volume registry
 * on top of it (default volume, one store per volume under concurrent first
 * use, finding registered gluster volumes by server).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "catalog.h"
#include "volume.h"

struct fixture {
    char dir[64];
    char path[128];
    struct catalog *cat;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test-catalog.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    /* parent directories that do not exist yet */
    snprintf(fx->path, sizeof fx->path, "%s/a/b/catalog.db", fx->dir);
    struct gvm_error err = { 0 };
    if (catalog_open(fx->path, &fx->cat, &err) != 0)
        fail_msg("catalog_open: %s", err.message);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    catalog_close(fx->cat);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static int64_t pragma(struct catalog *cat, const char *sql)
{
    sqlite3_stmt *st = NULL;
    catalog_lock(cat);
    assert_int_equal(sqlite3_prepare_v2(catalog_db(cat), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    catalog_unlock(cat);
    return v;
}

static void make_dir_volume(struct catalog_volume *v, const char *name,
                            const char *root)
{
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    v->backend = CATALOG_BACKEND_DIR;
    v->root_path = strdup(root);
    v->debug = 4;
}

static void make_gluster_volume(struct catalog_volume *v, const char *name,
                                const char *glvol)
{
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    v->backend = CATALOG_BACKEND_GLUSTER;
    v->gluster_volume = strdup(glvol);
    v->debug = 9;
    v->nservers = 3;
    v->servers = calloc(3, sizeof *v->servers);
    v->servers[0] = (struct gvm_server){ GVM_TRANSPORT_TCP, strdup("127.0.0.1"), 24099, NULL };
    v->servers[1] = (struct gvm_server){ GVM_TRANSPORT_UNIX, NULL, 0, strdup("/run/x.sock") };
    v->servers[2] = (struct gvm_server){ GVM_TRANSPORT_RDMA, strdup("::1"), 0, NULL };
}

static void test_open(void **state)
{
    struct fixture *fx = *state;
    assert_true(catalog_schema_version() >= 1);
    assert_int_equal(pragma(fx->cat, "PRAGMA user_version"), catalog_schema_version());
    assert_int_equal(pragma(fx->cat, "PRAGMA foreign_keys"), 1);
    assert_int_equal(pragma(fx->cat, "PRAGMA synchronous"), 2);   /* FULL */
    /* reopening an up-to-date catalog applies nothing and works */
    catalog_close(fx->cat);
    struct gvm_error err = { 0 };
    assert_int_equal(catalog_open(fx->path, &fx->cat, &err), 0);
    assert_int_equal(pragma(fx->cat, "PRAGMA user_version"), catalog_schema_version());
}

/* The id the next INSERT of a bare row into table gets (volume 1 exists). */
static int64_t insert_row(struct catalog *cat, const char *sql)
{
    catalog_lock(cat);
    char *msg = NULL;
    if (sqlite3_exec(catalog_db(cat), sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    int64_t id = sqlite3_last_insert_rowid(catalog_db(cat));
    catalog_unlock(cat);
    return id;
}

static void exec_ok(struct catalog *cat, const char *sql)
{
    (void)insert_row(cat, sql);
}

/* Issue 10: the newest image, snapshot, domain, volume or journal row
 * deleted, its id is not handed out again, not even after a reopen. */
static void test_ids_never_reused(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *insert1, *insert2, *del;
    } t[] = {
        { "INSERT INTO volumes (name, backend, root_path) VALUES ('v1', 'dir', '/a')",
          "INSERT INTO volumes (name, backend, root_path) VALUES ('v2', 'dir', '/b')",
          "DELETE FROM volumes WHERE name = 'v2'" },
        { "INSERT INTO images (volume_id, path, format, virtual_size) "
          "VALUES ((SELECT min(id) FROM volumes), 'a', 'raw', 1)",
          "INSERT INTO images (volume_id, path, format, virtual_size) "
          "VALUES ((SELECT min(id) FROM volumes), 'b', 'raw', 1)",
          "DELETE FROM images WHERE path = 'b'" },
        { "INSERT INTO domains (name, uuid) VALUES ('d1', 'u1')",
          "INSERT INTO domains (name, uuid) VALUES ('d2', 'u2')",
          "DELETE FROM domains WHERE uuid = 'u2'" },
        { "INSERT INTO snapshots (name) VALUES ('s1')",
          "INSERT INTO snapshots (name) VALUES ('s2')",
          "DELETE FROM snapshots WHERE name = 's2'" },
        { "INSERT INTO journal (op_id, step, kind) VALUES ('o1', 0, 'k')",
          "INSERT INTO journal (op_id, step, kind) VALUES ('o2', 0, 'k')",
          "DELETE FROM journal WHERE op_id = 'o2'" },
    };
    int64_t gone[GVM_ARRAY_SIZE(t)];

    for (size_t i = 0; i < GVM_ARRAY_SIZE(t); i++) {
        int64_t a = insert_row(fx->cat, t[i].insert1);
        gone[i] = insert_row(fx->cat, t[i].insert2);
        assert_true(gone[i] > a);
        exec_ok(fx->cat, t[i].del);
    }
    catalog_close(fx->cat);
    struct gvm_error err = { 0 };
    assert_int_equal(catalog_open(fx->path, &fx->cat, &err), 0);
    for (size_t i = 0; i < GVM_ARRAY_SIZE(t); i++) {
        int64_t c = insert_row(fx->cat, t[i].insert2);
        if (c <= gone[i])
            fail_msg("'%s' got id %lld again after it was deleted",
                     t[i].insert2, (long long)c);
    }
}

/* A catalog written by the previous schema (0001 + 0002) upgrades in
 * place: every row, id and reference intact, and an id deleted before the
 * upgrade but still named by a job record is not handed out. */
static void test_upgrade_from_0002(void **state)
{
    struct fixture *fx = *state;
    char path[160];
    sqlite3 *db = NULL;

    snprintf(path, sizeof path, "%s/old.db", fx->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, catalog_schema[0], NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, catalog_schema[1], NULL, NULL, NULL), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db,
        "PRAGMA user_version = 2; PRAGMA foreign_keys = ON;"
        "INSERT INTO volumes (id, name, backend, root_path) VALUES (1, 'local', 'dir', '/x');"
        "INSERT INTO volumes (id, name, backend, gluster_volume) VALUES (2, 'gv', 'gluster', 'testvol');"
        "INSERT INTO volume_servers (volume_id, position, transport, host, port) "
        "  VALUES (2, 0, 'tcp', 'h1', 24007), (2, 1, 'tcp', 'h2', 0);"
        "INSERT INTO images (id, volume_id, path, format, virtual_size, cluster_size) "
        "  VALUES (5, 1, 'base', 'qcow2', 1048576, 65536);"
        "INSERT INTO images (id, volume_id, path, format, virtual_size, backing_image_id, "
        "  backing_filename, backing_format) VALUES (9, 2, 'top', 'qcow2', 1048576, 5, 'base', 'qcow2');"
        "INSERT INTO domains (id, name, uuid) VALUES (3, 'dom', 'uuid-3');"
        "INSERT INTO disks (domain_id, target, image_id) VALUES (3, 'vda', 9);"
        "INSERT INTO snapshots (id, name, domain_id) VALUES (4, 's1', 3);"
        "INSERT INTO snapshots (id, name, domain_id, parent_id) VALUES (6, 's2', 3, 4);"
        "INSERT INTO snapshot_disks VALUES (6, 'vda', 5, 9);"
        "INSERT INTO jobs (id, type, images) VALUES (1, 'block-commit', '[12, 9]');"
        "INSERT INTO job_images VALUES (1, 9, 'write');"
        "INSERT INTO journal (id, op_id, job_id, step, kind) VALUES (8, 'op', 1, 0, 'block-commit');"
        "INSERT INTO op_ids (method, op_id, result) VALUES ('image-create', 'x', '{}');",
        NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("old catalog: %s", msg);
    sqlite3_close(db);

    struct catalog *cat = NULL;
    struct gvm_error err = { 0 };
    if (catalog_open(path, &cat, &err) != 0)
        fail_msg("upgrade: %s", err.message);
    assert_int_equal(pragma(cat, "PRAGMA user_version"), catalog_schema_version());
    assert_int_equal(pragma(cat, "PRAGMA foreign_keys"), 1);
    static const struct { const char *sql; int64_t want; } q[] = {
        { "SELECT count(*) FROM volumes", 2 },
        { "SELECT count(*) FROM volume_servers WHERE volume_id = 2", 2 },
        { "SELECT count(*) FROM images", 2 },
        { "SELECT backing_image_id FROM images WHERE id = 9", 5 },
        { "SELECT cluster_size FROM images WHERE id = 5", 65536 },
        { "SELECT volume_id FROM images WHERE path = 'top'", 2 },
        { "SELECT image_id FROM disks WHERE domain_id = 3", 9 },
        { "SELECT parent_id FROM snapshots WHERE id = 6", 4 },
        { "SELECT overlay_image_id FROM snapshot_disks WHERE snapshot_id = 6", 9 },
        { "SELECT image_id FROM job_images WHERE job_id = 1", 9 },
        { "SELECT job_id FROM journal WHERE id = 8", 1 },
        { "SELECT count(*) FROM op_ids", 1 },
        { "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
          "('images_backing', 'domains_name', 'snapshots_domain', "
          "'snapshots_parent', 'journal_op', 'journal_job', 'journal_pending')", 7 },
        { "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_new'", 0 },
    };
    for (size_t i = 0; i < GVM_ARRAY_SIZE(q); i++) {
        int64_t got = pragma(cat, q[i].sql);
        if (got != q[i].want)
            fail_msg("%s: expected %lld, got %lld", q[i].sql,
                     (long long)q[i].want, (long long)got);
    }
    /* Image 12 is gone but job 1 still names it. */
    assert_true(insert_row(cat, "INSERT INTO images (volume_id, path, format, "
                           "virtual_size) VALUES (1, 'new', 'raw', 1)") > 12);
    assert_true(insert_row(cat, "INSERT INTO snapshots (name) VALUES ('s3')") > 6);
    assert_true(insert_row(cat, "INSERT INTO domains (name, uuid) VALUES ('e', 'u')") > 3);
    /* The foreign keys are enforced again, cascades included. */
    exec_ok(cat, "DELETE FROM domains WHERE id = 4");
    catalog_lock(cat);
    assert_int_not_equal(sqlite3_exec(catalog_db(cat), "DELETE FROM images WHERE id = 5",
                                      NULL, NULL, NULL), SQLITE_OK);
    catalog_unlock(cat);
    catalog_close(cat);
}

static void test_newer_refused(void **state)
{
    struct fixture *fx = *state;
    catalog_lock(fx->cat);
    assert_int_equal(sqlite3_exec(catalog_db(fx->cat), "PRAGMA user_version = 999",
                                  NULL, NULL, NULL), SQLITE_OK);
    catalog_unlock(fx->cat);
    catalog_close(fx->cat);
    fx->cat = NULL;
    struct gvm_error err = { 0 };
    struct catalog *c = (struct catalog *)0x1;
    assert_int_equal(catalog_open(fx->path, &c, &err), -1);
    assert_null(c);
    assert_int_equal(err.cls, GVM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.message, "999"));
    assert_non_null(strstr(err.message, "newer"));
}

static void test_not_a_database(void **state)
{
    struct fixture *fx = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/garbage.db", fx->dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 37) & 0xff, f);
    fclose(f);
    struct gvm_error err = { 0 };
    struct catalog *c = NULL;
    assert_int_equal(catalog_open(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "garbage.db"));
}

static void test_volumes(void **state)
{
    struct fixture *fx = *state;
    struct gvm_error err = { 0 };
    struct catalog_volume v, g, got;

    make_dir_volume(&v, "d", "/srv/d");
    assert_int_equal(catalog_volume_add(fx->cat, &v, &err), 0);
    assert_true(v.id > 0);
    make_gluster_volume(&g, "g", "gv0");
    assert_int_equal(catalog_volume_add(fx->cat, &g, &err), 0);

    /* duplicate name */
    struct catalog_volume dup;
    make_dir_volume(&dup, "d", "/srv/other");
    assert_int_equal(catalog_volume_add(fx->cat, &dup, &err), -1);
    assert_int_equal(err.cls, GVM_ERR_ALREADY_EXISTS);
    catalog_volume_clear(&dup);
    gvm_error_clear(&err);

    assert_int_equal(catalog_volume_get(fx->cat, "g", &got, &err), 0);
    assert_int_equal(got.id, g.id);
    assert_int_equal(got.backend, CATALOG_BACKEND_GLUSTER);
    assert_string_equal(got.gluster_volume, "gv0");
    assert_null(got.root_path);
    assert_int_equal(got.debug, 9);
    assert_int_equal(got.nservers, 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(gvm_server_equal(&got.servers[i], &g.servers[i]));
    assert_int_equal(got.servers[0].port, 24099);
    assert_string_equal(got.servers[1].socket, "/run/x.sock");
    assert_int_equal(got.servers[2].transport, GVM_TRANSPORT_RDMA);
    catalog_volume_clear(&got);

    assert_int_equal(catalog_volume_get_by_id(fx->cat, v.id, &got, &err), 0);
    assert_string_equal(got.root_path, "/srv/d");
    assert_int_equal(got.nservers, 0);
    catalog_volume_clear(&got);

    struct catalog_volume *list;
    size_t n;
    assert_int_equal(catalog_volume_list(fx->cat, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "d");
    assert_string_equal(list[1].name, "g");
    catalog_volumes_free(list, n);

    /* an image on d keeps it from being removed */
    catalog_lock(fx->cat);
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO images (volume_id, path, format, "
             "virtual_size) VALUES (%lld, 'x.qcow2', 'qcow2', 1024)", (long long)v.id);
    assert_int_equal(sqlite3_exec(catalog_db(fx->cat), sql, NULL, NULL, NULL), SQLITE_OK);
    catalog_unlock(fx->cat);
    assert_int_equal(catalog_volume_image_count(fx->cat, v.id, &err), 1);
    assert_int_equal(catalog_volume_remove(fx->cat, "d", &err), -1);
    assert_int_equal(err.cls, GVM_ERR_IN_USE);
    gvm_error_clear(&err);

    assert_int_equal(catalog_volume_remove(fx->cat, "g", &err), 0);
    assert_int_equal(catalog_volume_get(fx->cat, "g", &got, &err), -1);
    assert_int_equal(err.cls, GVM_ERR_NOT_FOUND);
    gvm_error_clear(&err);
    assert_int_equal(catalog_volume_remove(fx->cat, "g", &err), -1);
    assert_int_equal(err.cls, GVM_ERR_NOT_FOUND);
    /* its server rows went with it */
    assert_int_equal(pragma(fx->cat, "SELECT count(*) FROM volume_servers"), 0);
    catalog_volume_clear(&v);
    catalog_volume_clear(&g);
}

static int add_named(struct catalog *cat, const char *name)
{
    struct catalog_volume v;
    struct gvm_error err = { 0 };
    make_dir_volume(&v, name, "/srv");
    int r = catalog_volume_add(cat, &v, &err);
    catalog_volume_clear(&v);
    return r;
}

static bool exists(struct catalog *cat, const char *name)
{
    struct catalog_volume v;
    struct gvm_error err = { 0 };
    if (catalog_volume_get(cat, name, &v, &err) < 0)
        return false;
    catalog_volume_clear(&v);
    return true;
}

static int failing_fn(struct catalog *cat, void *opaque, struct gvm_error *err)
{
    assert_int_equal(add_named(cat, opaque), 0);
    gvm_error_set(err, GVM_ERR_CONFLICT, "Second step failed.");
    return -1;
}

static void test_transactions(void **state)
{
    struct fixture *fx = *state;
    struct gvm_error err = { 0 };

    assert_int_equal(catalog_begin(fx->cat, &err), 0);
    assert_int_equal(add_named(fx->cat, "rolled"), 0);
    catalog_rollback(fx->cat);
    assert_false(exists(fx->cat, "rolled"));

    /* nested: the inner rollback undoes only the inner part */
    assert_int_equal(catalog_begin(fx->cat, &err), 0);
    assert_int_equal(add_named(fx->cat, "outer"), 0);
    assert_int_equal(catalog_begin(fx->cat, &err), 0);
    assert_int_equal(add_named(fx->cat, "inner"), 0);
    catalog_rollback(fx->cat);
    assert_int_equal(catalog_begin(fx->cat, &err), 0);
    assert_int_equal(add_named(fx->cat, "inner2"), 0);
    assert_int_equal(catalog_commit(fx->cat, &err), 0);
    assert_int_equal(catalog_commit(fx->cat, &err), 0);
    assert_true(exists(fx->cat, "outer"));
    assert_false(exists(fx->cat, "inner"));
    assert_true(exists(fx->cat, "inner2"));

    /* catalog_txn rolls back when the function fails */
    assert_int_equal(catalog_txn(fx->cat, failing_fn, "half", &err), -1);
    assert_int_equal(err.cls, GVM_ERR_CONFLICT);
    assert_false(exists(fx->cat, "half"));

    /* a failing statement inside a transaction (duplicate) then rollback */
    gvm_error_clear(&err);
    assert_int_equal(catalog_begin(fx->cat, &err), 0);
    assert_int_equal(add_named(fx->cat, "t1"), 0);
    assert_int_equal(add_named(fx->cat, "outer"), -1);
    catalog_rollback(fx->cat);
    assert_false(exists(fx->cat, "t1"));
    /* and the lock was released each time: another thread can use it */
}

/* ---- concurrency: writers add 3-server volumes, a reader never sees a
 * volume with fewer than 3 servers (a half-made change). */
struct conc {
    struct catalog *cat;
    int id;
    volatile bool stop;
    int bad;
};

static void *writer(void *arg)
{
    struct conc *c = arg;
    for (int i = 0; i < 40; i++) {
        struct catalog_volume v;
        struct gvm_error err = { 0 };
        char name[32];
        snprintf(name, sizeof name, "w%d-%d", c->id, i);
        make_gluster_volume(&v, name, "gv");
        if (catalog_volume_add(c->cat, &v, &err) != 0)
            c->bad++;
        catalog_volume_clear(&v);
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct conc *c = arg;
    while (!c->stop) {
        struct catalog_volume *list;
        size_t n;
        struct gvm_error err = { 0 };
        if (catalog_volume_list(c->cat, &list, &n, &err) != 0) {
            c->bad++;
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (list[i].nservers != 3)
                c->bad++;
        catalog_volumes_free(list, n);
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    struct fixture *fx = *state;
    struct conc w[3], r = { .cat = fx->cat };
    pthread_t tw[3], tr;
    assert_int_equal(pthread_create(&tr, NULL, reader, &r), 0);
    for (int i = 0; i < 3; i++) {
        w[i] = (struct conc){ .cat = fx->cat, .id = i };
        assert_int_equal(pthread_create(&tw[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(tw[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    r.stop = true;
    pthread_join(tr, NULL);
    assert_int_equal(r.bad, 0);
    assert_int_equal(pragma(fx->cat, "SELECT count(*) FROM volumes"), 120);
    assert_int_equal(pragma(fx->cat, "SELECT count(*) FROM volume_servers"), 360);
}

static void test_opid(void **state)
{
    struct fixture *fx = *state;
    struct gvm_error err = { 0 };
    char *res = NULL;
    assert_int_equal(catalog_opid_lookup(fx->cat, "volume-add", "op1", &res, &err), 0);
    assert_null(res);
    assert_int_equal(catalog_opid_record(fx->cat, "volume-add", "op1", "{\"id\":1}", &err), 0);
    assert_int_equal(catalog_opid_record(fx->cat, "volume-add", "op1", "{\"id\":2}", &err), 0);
    assert_int_equal(catalog_opid_lookup(fx->cat, "volume-add", "op1", &res, &err), 1);
    assert_string_equal(res, "{\"id\":1}");     /* first one wins */
    free(res);
    assert_int_equal(catalog_opid_lookup(fx->cat, "volume-remove", "op1", &res, &err), 0);
}

/* ---- the volume registry ------------------------------------------------ */

struct storeconc {
    struct volumes *v;
    const char *name;
    struct gvm_store *got;
};

static void *get_store(void *arg)
{
    struct storeconc *s = arg;
    struct gvm_error err = { 0 };
    if (volumes_store(s->v, s->name, &s->got, &err) != 0)
        s->got = NULL;
    return NULL;
}

static void test_registry(void **state)
{
    struct fixture *fx = *state;
    struct gvm_error err = { 0 };
    struct volumes *v = NULL;
    char sd[160], img[200];

    assert_int_equal(volumes_new(fx->cat, &v, &err), 0);
    snprintf(sd, sizeof sd, "%s/state", fx->dir);
    assert_int_equal(volumes_ensure_default(v, sd, &err), 0);
    assert_int_equal(volumes_ensure_default(v, sd, &err), 0);   /* idempotent */
    snprintf(img, sizeof img, "%s/images", sd);
    struct stat sb;
    assert_int_equal(stat(img, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    struct catalog_volume got;
    assert_int_equal(volumes_get(v, "local", &got, &err), 0);
    assert_string_equal(got.root_path, img);
    catalog_volume_clear(&got);

    /* concurrent first users of a volume whose store is not open yet (it
     * was catalogued directly) all get the one store */
    struct catalog_volume d2;
    make_dir_volume(&d2, "d2", fx->dir);
    assert_int_equal(catalog_volume_add(fx->cat, &d2, &err), 0);
    catalog_volume_clear(&d2);
    struct storeconc sc[6];
    pthread_t t[6];
    for (int i = 0; i < 6; i++) {
        sc[i] = (struct storeconc){ .v = v, .name = "d2" };
        assert_int_equal(pthread_create(&t[i], NULL, get_store, &sc[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_non_null(sc[i].got);
        assert_ptr_equal(sc[i].got, sc[0].got);
    }
    assert_string_equal(sc[0].got->ops->name, "dir");
    struct gvm_store *again = NULL;
    assert_int_equal(volumes_store(v, "d2", &again, &err), 0);
    assert_ptr_equal(again, sc[0].got);
    assert_int_equal(volumes_store(v, "local", &again, &err), 0);
    assert_ptr_not_equal(again, sc[0].got);

    /* a bad dir volume is refused and not registered */
    struct catalog_volume bad;
    make_dir_volume(&bad, "bad", "/nonexistent/gvm");
    assert_int_equal(volumes_add(v, &bad, &err), -1);
    assert_int_equal(err.cls, GVM_ERR_INVALID_PARAMS);
    catalog_volume_clear(&bad);
    gvm_error_clear(&err);
    assert_int_equal(volumes_get(v, "bad", &got, &err), -1);
    gvm_error_clear(&err);

    /* a registered gluster volume is found by any one of its servers
     * (catalogued directly: no connection is needed to find it) */
    struct catalog_volume g;
    make_gluster_volume(&g, "gv-reg", "gv0");
    assert_int_equal(catalog_volume_add(fx->cat, &g, &err), 0);
    struct gvm_server probe = { GVM_TRANSPORT_UNIX, NULL, 0, "/run/x.sock" };
    char *name = NULL;
    assert_int_equal(volumes_find_or_add_gluster(v, "gv0", &probe, 1, &name, &err), 0);
    assert_string_equal(name, "gv-reg");
    free(name);
    struct gvm_server p2 = { GVM_TRANSPORT_TCP, "127.0.0.1", 24099, NULL };
    assert_int_equal(volumes_find_or_add_gluster(v, "gv0", &p2, 1, &name, &err), 0);
    assert_string_equal(name, "gv-reg");
    free(name);
    /* same servers, other gluster volume: a new registration, which must
     * connect — to a dead server here, so it fails and registers nothing */
    uint64_t t0 = gvm_now_ms();
    assert_int_equal(volumes_find_or_add_gluster(v, "gv1", &p2, 1, &name, &err), -1);
    assert_true(gvm_now_ms() - t0 < 2000);
    assert_int_equal(err.cls, GVM_ERR_STORAGE);
    assert_non_null(strstr(err.message, "127.0.0.1:24099"));
    assert_null(name);
    gvm_error_clear(&err);
    assert_int_equal(volumes_get(v, "gv1", &got, &err), -1);
    catalog_volume_clear(&g);

    volumes_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_never_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_from_0002, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
