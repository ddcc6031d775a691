/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-resolve.c — from image references to volumes, stores and rows
 * (gvmd/core/resolve.c): resolve_name for messages; resolve_backing_name
 * for a backing image in the same directory, a subdirectory, a parent
 * directory, on another dir volume and on a gluster volume, and through a
 * symlinked directory (where the relative name would lead QEMU elsewhere);
 * resolve_imageref of VOLUME:PATH and of catalog ids against a catalog in a
 * temporary directory with two dir volumes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "catalog-image.h"
#include "catalog.h"
#include "imageref.h"
#include "resolve.h"
#include "volume.h"

struct fixture {
    char dir[64];
    char root1[96], root2[96];
    struct gvmd d;
    struct catalog_volume v1, v2;   /* registered "v1", "v2" */
};

static void mkdir_ok(const char *path)
{
    if (mkdir(path, 0755) != 0)
        fail_msg("mkdir %s: %s", path, strerror(errno));
}

static void register_dir(struct fixture *fx, const char *name,
                         const char *root, struct catalog_volume *out)
{
    struct catalog_volume v = { 0 };
    struct gvm_error err = { 0 };

    v.name = strdup(name);
    v.backend = CATALOG_BACKEND_DIR;
    v.root_path = strdup(root);
    v.debug = 4;
    if (volumes_add(fx->d.vols, &v, &err) != 0)
        fail_msg("volumes_add %s: %s", name, err.message);
    catalog_volume_clear(&v);
    if (volumes_get(fx->d.vols, name, out, &err) != 0)
        fail_msg("volumes_get %s: %s", name, err.message);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    struct gvm_error err = { 0 };
    char path[128];

    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test-resolve.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(path, sizeof path, "%s/catalog.db", fx->dir);
    if (catalog_open(path, &fx->d.cat, &err) != 0)
        fail_msg("catalog_open: %s", err.message);
    if (volumes_new(fx->d.cat, &fx->d.vols, &err) != 0)
        fail_msg("volumes_new: %s", err.message);
    snprintf(fx->root1, sizeof fx->root1, "%s/one", fx->dir);
    snprintf(fx->root2, sizeof fx->root2, "%s/two", fx->dir);
    mkdir_ok(fx->root1);
    mkdir_ok(fx->root2);
    register_dir(fx, "v1", fx->root1, &fx->v1);
    register_dir(fx, "v2", fx->root2, &fx->v2);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    catalog_volume_clear(&fx->v1);
    catalog_volume_clear(&fx->v2);
    volumes_free(fx->d.vols);
    catalog_close(fx->d.cat);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

/* Create an empty file (and nothing else) at root/rel. */
static void touch(const char *root, const char *rel)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "w");
    if (!f)
        fail_msg("fopen %s: %s", path, strerror(errno));
    fclose(f);
}

static void test_name(void **state)
{
    (void)state;
    char *s = resolve_name("v1", "sub/a.qcow2");
    assert_string_equal(s, "v1:sub/a.qcow2");
    free(s);
    s = resolve_name(NULL, NULL);
    assert_string_equal(s, "?:?");
    free(s);
}

/* resolve_backing_name(vols, child's volume, child, backing's volume,
 * backing) is `want`. */
static void expect_backing(struct volumes *vols,
                           const struct catalog_volume *cv, const char *child,
                           const struct catalog_volume *bv, const char *backing,
                           const char *want)
{
    char *got = resolve_backing_name(vols, cv, child, bv, backing);

    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("backing of %s:%s for %s:%s is '%s', expected '%s'",
                 cv->name, child, bv->name, backing, got, want);
    free(got);
}

static void test_backing_same_volume(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        const char *child, *backing, *want;
    } t[] = {
        /* same directory */
        { "a.qcow2", "base.qcow2", "base.qcow2" },
        { "d/a.qcow2", "d/base.qcow2", "base.qcow2" },
        { "d/e/a.qcow2", "d/e/base.qcow2", "base.qcow2" },
        /* a subdirectory */
        { "a.qcow2", "sub/base.qcow2", "sub/base.qcow2" },
        { "d/a.qcow2", "d/sub/deeper/base.qcow2", "sub/deeper/base.qcow2" },
        /* a parent directory */
        { "sub/a.qcow2", "base.qcow2", "../base.qcow2" },
        { "x/y/a.qcow2", "base.qcow2", "../../base.qcow2" },
        { "x/y/a.qcow2", "x/base.qcow2", "../base.qcow2" },
        /* a sibling directory: up, then down */
        { "x/y/a.qcow2", "x/z/base.qcow2", "../z/base.qcow2" },
        { "xy/a.qcow2", "x/base.qcow2", "../x/base.qcow2" },
        /* a name QEMU would read as a protocol gets "./" */
        { "a.qcow2", "a:b.qcow2", "./a:b.qcow2" },
        { "sub/a.qcow2", "a:b.qcow2", "../a:b.qcow2" },
    };

    for (size_t i = 0; i < GVM_ARRAY_SIZE(t); i++) {
        /* the relative name as computed (no store asked)... */
        expect_backing(NULL, &fx->v1, t[i].child, &fx->v1, t[i].backing,
                       t[i].want);
        /* ...and the same with the volume's store, no symlink on the way */
        expect_backing(fx->d.vols, &fx->v1, t[i].child, &fx->v1, t[i].backing,
                       t[i].want);
    }
}

static void test_backing_other_volume(void **state)
{
    struct fixture *fx = *state;
    char want[192];

    /* another dir volume: its absolute path */
    snprintf(want, sizeof want, "%s/sub/base.qcow2", fx->root2);
    expect_backing(fx->d.vols, &fx->v1, "a.qcow2", &fx->v2, "sub/base.qcow2", want);
    snprintf(want, sizeof want, "%s/base.qcow2", fx->root1);
    expect_backing(fx->d.vols, &fx->v2, "x/y/a.qcow2", &fx->v1, "base.qcow2", want);

    /* a root with a trailing slash gets no second one */
    struct catalog_volume slash = { .id = 999, .name = "s",
                                    .backend = CATALOG_BACKEND_DIR,
                                    .root_path = "/srv/images/" };
    expect_backing(NULL, &fx->v1, "a.qcow2", &slash, "b/c.qcow2",
                   "/srv/images/b/c.qcow2");

    /* a gluster volume: a URI on its first server */
    struct gvm_server srv = { GVM_TRANSPORT_TCP, "gl1.example", 24007, NULL };
    struct catalog_volume gl = { .id = 998, .name = "g",
                                 .backend = CATALOG_BACKEND_GLUSTER,
                                 .gluster_volume = "gv0",
                                 .servers = &srv, .nservers = 1 };
    char *uri = imageref_format_uri(&srv, "gv0", "d/base.qcow2");
    assert_non_null(uri);
    assert_non_null(strstr(uri, "gl1.example"));
    assert_non_null(strstr(uri, "/gv0/d/base.qcow2"));
    expect_backing(NULL, &fx->v1, "a.qcow2", &gl, "d/base.qcow2", uri);
    free(uri);
    /* on the same gluster volume: relative, like a dir volume */
    expect_backing(NULL, &gl, "d/a.qcow2", &gl, "d/base.qcow2", "base.qcow2");
}

/* A symlinked directory on the way: "../base.qcow2" from link/ would be
 * taken from where the link leads, another file; the absolute name is
 * written instead.  Without the volumes (nothing to ask) the text. */
static void test_backing_symlink(void **state)
{
    struct fixture *fx = *state;
    char p[192], want[192];

    snprintf(p, sizeof p, "%s/real", fx->root1);
    mkdir_ok(p);
    snprintf(p, sizeof p, "%s/real/sub", fx->root1);
    mkdir_ok(p);
    snprintf(p, sizeof p, "%s/link", fx->root1);
    assert_int_equal(symlink("real/sub", p), 0);
    touch(fx->root1, "base.qcow2");
    touch(fx->root1, "real/base.qcow2");   /* where "../" from link/ goes */
    touch(fx->root1, "real/sub/a.qcow2");

    snprintf(want, sizeof want, "%s/base.qcow2", fx->root1);
    expect_backing(fx->d.vols, &fx->v1, "link/a.qcow2", &fx->v1, "base.qcow2", want);
    expect_backing(NULL, &fx->v1, "link/a.qcow2", &fx->v1, "base.qcow2",
                   "../base.qcow2");
    /* the real directory: relative */
    expect_backing(fx->d.vols, &fx->v1, "real/sub/a.qcow2", &fx->v1,
                   "real/base.qcow2", "../base.qcow2");
    /* through the link, to a file beside the child: no ".." to go astray */
    touch(fx->root1, "real/sub/b.qcow2");
    expect_backing(fx->d.vols, &fx->v1, "link/a.qcow2", &fx->v1,
                   "link/b.qcow2", "b.qcow2");
}

static void parse_ok(const char *s, struct imageref *ref)
{
    struct gvm_error err = { 0 };

    if (imageref_parse_string(s, "image", ref, &err) != 0)
        fail_msg("imageref_parse_string %s: %s", s, err.message);
}

static int64_t catalogue(struct fixture *fx, int64_t volume_id, const char *path)
{
    struct catalog_image img = { .volume_id = volume_id, .path = (char *)path,
                                 .format = "qcow2", .virtual_size = 1 << 20,
                                 .cluster_size = 65536 };
    struct gvm_error err = { 0 };

    if (catalog_image_add(fx->d.cat, &img, &err) != 0)
        fail_msg("catalog_image_add %s: %s", path, err.message);
    assert_true(img.id > 0);
    return img.id;
}

static void test_imageref(void **state)
{
    struct fixture *fx = *state;
    struct gvm_store *st1 = NULL, *st2 = NULL;
    struct gvm_error err = { 0 };
    struct imageref ref = { 0 };
    struct resolved r = { 0 };

    assert_int_equal(volumes_store(fx->d.vols, "v1", &st1, &err), 0);
    assert_int_equal(volumes_store(fx->d.vols, "v2", &st2, &err), 0);
    assert_ptr_not_equal(st1, st2);

    /* VOLUME:PATH not catalogued: the volume and store, no row */
    parse_ok("v1:sub/a.qcow2", &ref);
    assert_int_equal(resolve_imageref(&fx->d, &ref, &r, &err), 0);
    assert_string_equal(r.vol.name, "v1");
    assert_int_equal(r.vol.id, fx->v1.id);
    assert_ptr_equal(r.store, st1);
    assert_string_equal(r.path, "sub/a.qcow2");
    assert_false(r.catalogued);
    resolved_clear(&r);

    /* catalogued: the same reference finds its row */
    int64_t id = catalogue(fx, fx->v1.id, "sub/a.qcow2");
    assert_int_equal(resolve_imageref(&fx->d, &ref, &r, &err), 0);
    assert_true(r.catalogued);
    assert_int_equal(r.row.id, id);
    assert_string_equal(r.row.format, "qcow2");
    resolved_clear(&r);
    imageref_clear(&ref);

    /* the same path on the other volume is another image */
    parse_ok("v2:sub/a.qcow2", &ref);
    assert_int_equal(resolve_imageref(&fx->d, &ref, &r, &err), 0);
    assert_string_equal(r.vol.name, "v2");
    assert_ptr_equal(r.store, st2);
    assert_false(r.catalogued);
    resolved_clear(&r);
    imageref_clear(&ref);

    /* by id: the row, its volume and path */
    int64_t id2 = catalogue(fx, fx->v2.id, "b.qcow2");
    char idtext[32];
    snprintf(idtext, sizeof idtext, "%lld", (long long)id2);
    json_t *jid = json_integer(id2);
    assert_int_equal(imageref_parse_json(jid, "image", &ref, &err), 0);
    json_decref(jid);
    assert_int_equal(ref.kind, IMAGEREF_ID);
    assert_int_equal(resolve_imageref(&fx->d, &ref, &r, &err), 0);
    assert_true(r.catalogued);
    assert_int_equal(r.row.id, id2);
    assert_string_equal(r.vol.name, "v2");
    assert_ptr_equal(r.store, st2);
    assert_string_equal(r.path, "b.qcow2");
    resolved_clear(&r);
    imageref_clear(&ref);

    /* an id not in the catalog: NotFound */
    ref = (struct imageref){ .kind = IMAGEREF_ID, .id = id2 + 100 };
    assert_int_equal(resolve_imageref(&fx->d, &ref, &r, &err), -1);
    assert_int_equal(err.cls, GVM_ERR_NOT_FOUND);
    assert_false(r.catalogued);
    gvm_error_clear(&err);

    /* a volume that is not registered: refused */
    parse_ok("nosuch:a.qcow2", &ref);
    assert_int_equal(resolve_imageref(&fx->d, &ref, &r, &err), -1);
    assert_int_equal(err.cls, GVM_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "nosuch"));
    gvm_error_clear(&err);
    imageref_clear(&ref);

    /* names for messages */
    char *s = resolve_image_name(&fx->d, id);
    assert_string_equal(s, "v1:sub/a.qcow2");
    free(s);
    s = resolve_image_name(&fx->d, id2 + 100);
    snprintf(idtext, sizeof idtext, "image %lld", (long long)(id2 + 100));
    assert_string_equal(s, idtext);
    free(s);

    /* resolve_param: the parameter of a request */
    json_t *params = json_pack("{s:s}", "image", "v2:b.qcow2");
    assert_int_equal(resolve_param(&fx->d, params, "image", &r, &err), 0);
    assert_true(r.catalogued);
    assert_int_equal(r.row.id, id2);
    resolved_clear(&r);
    json_decref(params);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name),
        cmocka_unit_test_setup_teardown(test_backing_same_volume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backing_other_volume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backing_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imageref, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
