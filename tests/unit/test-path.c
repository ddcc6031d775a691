/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-path.c — volume path checks (path_check), dirname, and resolution of
 * relative backing names (path_resolve_relative), including every way out
 * of the volume that must be refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "store.h"

static void expect_ok(const char *p)
{
    struct gvm_error err = { 0 };
    int r = path_check(p, "path", &err);
    if (r != 0)
        fail_msg("'%s' refused: %s", p, err.message);
    assert_false(gvm_error_isset(&err));
}

/* Refused with INVALID_PARAMS naming the parameter, and a message that
 * contains `why`. */
static void expect_bad(const char *p, const char *why)
{
    struct gvm_error err = { 0 };
    int r = path_check(p, "image", &err);
    if (r != -EINVAL)
        fail_msg("'%s' accepted (r=%d)", p ? p : "(null)", r);
    assert_int_equal(err.cls, GVM_ERR_INVALID_PARAMS);
    assert_string_equal(err.param, "image");
    if (!strstr(err.message, why))
        fail_msg("'%s': message '%s' lacks '%s'", p ? p : "(null)",
                 err.message, why);
}

static void test_check_good(void **state)
{
    (void)state;
    expect_ok("a");
    expect_ok("a.qcow2");
    expect_ok("dir/sub/img.qcow2");
    expect_ok("..a");          /* a name starting with dots is fine */
    expect_ok("a..");
    expect_ok(".hidden");
    expect_ok("a/...");
    expect_ok("with space/and:colon");
}

static void test_check_bad(void **state)
{
    (void)state;
    expect_bad("", "empty");
    expect_bad(NULL, "empty");
    expect_bad("/abs", "absolute");
    expect_bad("/", "absolute");
    expect_bad("..", "'..'");
    expect_bad("../x", "'..'");
    expect_bad("a/../b", "'..'");
    expect_bad("a/..", "'..'");
    expect_bad("a//b", "empty segment");
    expect_bad("a/", "empty segment");
    expect_bad("./a", "'.'");
    expect_bad("a/./b", "'.'");
    expect_bad(".", "'.'");
}

static void test_check_length(void **state)
{
    (void)state;
    char *p = malloc(GVM_MAX_STRING + 2);
    assert_non_null(p);
    memset(p, 'x', GVM_MAX_STRING);
    p[GVM_MAX_STRING] = '\0';
    expect_ok(p);                       /* exactly the limit */
    p[GVM_MAX_STRING] = 'x';
    p[GVM_MAX_STRING + 1] = '\0';
    expect_bad(p, "at most 4096");      /* one over */
    free(p);
}

static void test_dirname(void **state)
{
    (void)state;
    struct { const char *in, *out; } cases[] = {
        { "a", "" }, { "a/b", "a" }, { "a/b/c.qcow2", "a/b" },
    };
    for (size_t i = 0; i < GVM_ARRAY_SIZE(cases); i++) {
        char *d = path_dirname(cases[i].in);
        assert_non_null(d);
        assert_string_equal(d, cases[i].out);
        free(d);
    }
}

static void expect_resolve(const char *img, const char *name, const char *want)
{
    char *out = (char *)0x1;
    int r = path_resolve_relative(img, name, &out);
    if (r != 0)
        fail_msg("resolve(%s, %s) failed: %d", img, name, r);
    assert_string_equal(out, want);
    free(out);
}

static void expect_resolve_err(const char *img, const char *name, int want)
{
    char *out = (char *)0x1;
    int r = path_resolve_relative(img, name, &out);
    if (r != want)
        fail_msg("resolve(%s, %s) = %d (%s), want %d", img, name, r,
                 r == 0 ? out : "-", want);
    assert_null(out);
}

static void test_resolve(void **state)
{
    (void)state;
    expect_resolve("top.qcow2", "base.qcow2", "base.qcow2");
    expect_resolve("vm/top.qcow2", "base.qcow2", "vm/base.qcow2");
    expect_resolve("vm/snap/top.qcow2", "../base.qcow2", "vm/base.qcow2");
    expect_resolve("vm/snap/top.qcow2", "../../base.qcow2", "base.qcow2");
    expect_resolve("vm/top.qcow2", "./b/./c.qcow2", "vm/b/c.qcow2");
    expect_resolve("vm/top.qcow2", "b//c.qcow2", "vm/b/c.qcow2");
    expect_resolve("vm/top.qcow2", "x/../y.qcow2", "vm/y.qcow2");
    /* leaving the volume */
    expect_resolve_err("top.qcow2", "../base.qcow2", -EXDEV);
    expect_resolve_err("vm/top.qcow2", "../../base.qcow2", -EXDEV);
    expect_resolve_err("vm/top.qcow2", "x/../../../etc/passwd", -EXDEV);
    expect_resolve_err("vm/top.qcow2", "/etc/passwd", -EXDEV);
    /* naming nothing / the root */
    expect_resolve_err("vm/top.qcow2", "", -EINVAL);
    expect_resolve_err("vm/top.qcow2", "..", -EINVAL);
    expect_resolve_err("top.qcow2", ".", -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_good),
        cmocka_unit_test(test_check_bad),
        cmocka_unit_test(test_check_length),
        cmocka_unit_test(test_dirname),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
