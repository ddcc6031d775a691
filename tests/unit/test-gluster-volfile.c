/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-gluster-volfile.c — gluster_volfile_vm_check on client volfiles in
 * the shape glusterd 10 writes them: a volume with gluster's `virt` group
 * (nothing missing), one with gluster's defaults, and each rule alone.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "gluster-volfile.h"

#define CLIENT(n, extra)                                   \
    "volume v-client-" n "\n"                              \
    "    type protocol/client\n"                           \
    "    option transport-type tcp\n"                      \
    extra                                                  \
    "    option remote-subvolume /b" n "/brick\n"          \
    "end-volume\n\n"

/* The client volfile of `gluster volume set v group virt` (abridged to
 * what the checks read, plus options they must ignore). */
static const char VIRT[] =
    CLIENT("0", "    option filter-O_DIRECT disable\n")
    CLIENT("1", "    option filter-O_DIRECT disable\n")
    CLIENT("2", "    option filter-O_DIRECT disable\n")
    "volume v-replicate-0\n"
    "    type cluster/replicate\n"
    "    option quorum-type auto\n"
    "    option eager-lock enable\n"
    "    subvolumes v-client-0 v-client-1 v-client-2\n"
    "end-volume\n\n"
    "volume v-shard\n"
    "    type features/shard\n"
    "    option shard-block-size 4MB\n"
    "    subvolumes v-replicate-0\n"
    "end-volume\n\n"
    "volume v-write-behind\n"
    "    type performance/write-behind\n"
    "    option strict-O_DIRECT on\n"
    "    subvolumes v-shard\n"
    "end-volume\n\n"
    "volume v-md-cache\n"
    "    type performance/md-cache\n"
    "    subvolumes v-write-behind\n"
    "end-volume\n";

/* gluster's defaults: quick-read loaded, no strict O_DIRECT, no quorum
 * option, no shard. */
static const char PLAIN[] =
    CLIENT("0", "")
    CLIENT("1", "")
    CLIENT("2", "")
    "volume v-replicate-0\n"
    "    type cluster/replicate\n"
    "    subvolumes v-client-0 v-client-1 v-client-2\n"
    "end-volume\n\n"
    "volume v-write-behind\n"
    "    type performance/write-behind\n"
    "    subvolumes v-replicate-0\n"
    "end-volume\n\n"
    "volume v-quick-read\n"
    "    type performance/quick-read\n"
    "    subvolumes v-write-behind\n"
    "end-volume\n";

/* The options reported missing, space-separated. */
static char *missing_of(const char *text, char *buf, size_t len)
{
    struct gluster_vm_option m[16];
    assert_true(gluster_volfile_vm_checks() <= 16);
    int n = gluster_volfile_vm_check(text, m, 16);
    assert_true(n >= 0);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        assert_non_null(m[i].want);
        assert_true(strlen(m[i].why) > 20);
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? " " : "",
                 m[i].option);
    }
    return buf;
}

static void test_virt_group_is_safe(void **state)
{
    char buf[512];
    (void)state;
    assert_string_equal(missing_of(VIRT, buf, sizeof buf), "");
}

static void test_defaults_are_not(void **state)
{
    char buf[512];
    (void)state;
    assert_string_equal(missing_of(PLAIN, buf, sizeof buf),
                        "performance.quick-read performance.strict-o-direct "
                        "cluster.quorum-type features.shard");
}

/* VIRT with one line replaced: exactly that option is missing. */
static void expect_one(const char *from, const char *to, const char *option)
{
    char text[sizeof VIRT + 256], buf[512];
    const char *at = strstr(VIRT, from);
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - VIRT), VIRT, to,
             at + strlen(from));
    assert_string_equal(missing_of(text, buf, sizeof buf), option);
}

static void test_each_rule(void **state)
{
    (void)state;
    expect_one("    option strict-O_DIRECT on\n", "    option strict-O_DIRECT off\n",
               "performance.strict-o-direct");
    expect_one("    option filter-O_DIRECT disable\n", "    option filter-O_DIRECT enable\n",
               "network.remote-dio");
    expect_one("    option quorum-type auto\n", "    option quorum-type none\n",
               "cluster.quorum-type");
    expect_one("    option quorum-type auto\n", "    option quorum-type fixed\n", "");
    expect_one("    option eager-lock enable\n", "    option eager-lock off\n",
               "cluster.eager-lock");
    expect_one("    type features/shard\n", "    type features/utime\n",
               "features.shard");
    expect_one("    type performance/md-cache\n", "    type performance/io-cache\n",
               "performance.io-cache");
    expect_one("    type performance/md-cache\n", "    type performance/read-ahead\n",
               "performance.read-ahead");
}

static void test_not_a_volfile(void **state)
{
    struct gluster_vm_option m[16];
    (void)state;
    assert_int_equal(gluster_volfile_vm_check("", m, 16), -EINVAL);
    assert_int_equal(gluster_volfile_vm_check("hello\nworld\n", m, 16), -EINVAL);
    /* Only the count when the array is too small. */
    assert_int_equal(gluster_volfile_vm_check(PLAIN, m, 1), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_virt_group_is_safe),
        cmocka_unit_test(test_defaults_are_not),
        cmocka_unit_test(test_each_rule),
        cmocka_unit_test(test_not_a_volfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
