/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-sha256.c — gvmd/sha256.c against the FIPS 180-4 example vectors,
 * both compression functions (SHA extensions and portable) against each
 * other on random data fed in odd pieces, and resolve_backing_name()'s
 * relative names (what image-create writes into headers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "resolve.h"
#include "sha256.h"

static void hex_of(const void *data, size_t len, char out[SHA256_HEX_SIZE])
{
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_final(&c, d);
    sha256_hex(d, out);
}

static void test_vectors(void **state)
{
    char h[SHA256_HEX_SIZE];
    hex_of("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* One million 'a', fed in pieces of 1000. */
    char a[1000];
    memset(a, 'a', sizeof(a));
    struct sha256_ctx c;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_init(&c);
    for (int i = 0; i < 1000; i++)
        sha256_update(&c, a, sizeof(a));
    sha256_final(&c, d);
    sha256_hex(d, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* The accelerated and the portable code agree, whatever the split. */
static void test_paths_agree(void **state)
{
    size_t len = 300000;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    char h1[SHA256_HEX_SIZE], h2[SHA256_HEX_SIZE];
    for (size_t n = 0; n < len; n = n * 3 + 1) {
        hex_of(buf, n, h1);
        setenv("GVM_SHA256_PORTABLE", "1", 1);
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE];
        sha256_init(&c);
        unsetenv("GVM_SHA256_PORTABLE");
        /* odd pieces: 1, 2, 3 ... bytes, then the rest */
        size_t off = 0, piece = 1;
        while (off < n) {
            size_t k = piece < n - off ? piece : n - off;
            sha256_update(&c, buf + off, k);
            off += k;
            piece = piece * 2 + 1;
        }
        sha256_final(&c, d);
        sha256_hex(d, h2);
        assert_string_equal(h1, h2);
    }
    free(buf);
}

static void expect_name(const char *child, const char *target, const char *want)
{
    struct catalog_volume v = { .id = 1, .name = (char *)"v",
                                .backend = CATALOG_BACKEND_DIR,
                                .root_path = (char *)"/srv/images" };
    char *got = resolve_backing_name(NULL, &v, child, &v, target);
    assert_non_null(got);
    assert_string_equal(got, want);
    /* and it resolves back to the target */
    char *back = NULL;
    assert_int_equal(path_resolve_relative(child, got, &back), 0);
    assert_string_equal(back, target);
    free(back);
    free(got);
}

static void test_backing_names(void **state)
{
    expect_name("top.qcow2", "base.qcow2", "base.qcow2");
    expect_name("a/top.qcow2", "a/base.qcow2", "base.qcow2");
    expect_name("a/b/top.qcow2", "a/base.qcow2", "../base.qcow2");
    expect_name("a/b/c/top.qcow2", "x/base.qcow2", "../../../x/base.qcow2");
    expect_name("top.qcow2", "x/y/base.qcow2", "x/y/base.qcow2");
    expect_name("ab/top.qcow2", "a/base.qcow2", "../a/base.qcow2");
    expect_name("a/top.qcow2", "ab/base.qcow2", "../ab/base.qcow2");

    /* Another volume: an absolute path for a dir volume. */
    struct catalog_volume child = { .id = 1, .backend = CATALOG_BACKEND_DIR,
                                    .root_path = (char *)"/srv/a" };
    struct catalog_volume other = { .id = 2, .backend = CATALOG_BACKEND_DIR,
                                    .root_path = (char *)"/srv/b/" };
    char *got = resolve_backing_name(NULL, &child, "x/top.qcow2", &other, "y/base.qcow2");
    assert_string_equal(got, "/srv/b/y/base.qcow2");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_paths_agree),
        cmocka_unit_test(test_backing_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
