/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-error.c — gvm_error_prepend() gives exactly what the hand copy it
 * replaced gave (gvm_error_set on a fresh error with the text and the old
 * message, then *err = copy): class, message, truncation, param and errno;
 * and the checked JSON setters of jsonutil.h fail on a NULL value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonutil.h"
#include "util.h"

/* The hand copy, as the call sites wrote it before gvm_error_prepend. */
static void hand_copy(struct gvm_error *err, const char *prefix)
{
    struct gvm_error e2 = { 0 };
    gvm_error_set(&e2, err->cls, "%s%s", prefix, err->message);
    *err = e2;
}

static void assert_same(const struct gvm_error *a, const struct gvm_error *b)
{
    assert_int_equal(a->cls, b->cls);
    assert_string_equal(a->message, b->message);
    assert_string_equal(a->param, b->param);
    assert_int_equal(a->errnum, b->errnum);
}

static void check(const struct gvm_error *start, const char *prefix)
{
    struct gvm_error a = *start, b = *start;
    hand_copy(&a, prefix);
    gvm_error_prepend(&b, "%s", prefix);
    assert_same(&a, &b);
}

static void test_prepend(void **state)
{
    struct gvm_error e = { 0 };
    (void)state;

    gvm_error_set(&e, GVM_ERR_IN_USE, "Image a:b is locked by job 3.");
    check(&e, "Cannot delete snapshot s1 now. ");
    gvm_error_prepend(&e, "Cannot %s %s now. ", "commit", "v:x");
    assert_int_equal(e.cls, GVM_ERR_IN_USE);
    assert_string_equal(e.message, "Cannot commit v:x now. Image a:b is "
                        "locked by job 3.");

    /* errno and param go, as the copy through gvm_error_set dropped them. */
    gvm_error_clear(&e);
    gvm_error_set_errno(&e, GVM_ERR_STORAGE, -5, "Reading x failed");
    check(&e, "Deleting snapshot s failed: ");
    gvm_error_clear(&e);
    gvm_error_param(&e, "disks", "No such image.");
    check(&e, "Disk vda: ");

    /* Unset: INTERNAL with the text alone. */
    gvm_error_clear(&e);
    check(&e, "Snapshot s failed: ");
}

static void test_prepend_truncates(void **state)
{
    struct gvm_error e = { 0 };
    char big[GVM_ERROR_MSG_MAX + 100];
    (void)state;

    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    gvm_error_set(&e, GVM_ERR_STORAGE, "%s", big);
    check(&e, "Prefix: ");
    /* A text longer than the buffer on its own. */
    memset(big, 'p', sizeof(big) - 1);
    check(&e, big);
    gvm_error_clear(&e);
    gvm_error_set(&e, GVM_ERR_STORAGE, "short cause");
    big[GVM_ERROR_MSG_MAX - 5] = '\0';
    check(&e, big);
}

static void test_json_setters(void **state)
{
    _cleanup_json_ json_t *o = json_object(), *a = json_array();
    (void)state;

    assert_int_equal(gvm_json_set(o, "k", json_integer(1)), 0);
    assert_int_equal(gvm_json_set(o, "n", NULL), -1);
    assert_int_equal(gvm_json_set(NULL, "k", json_integer(2)), -1);
    assert_int_equal(gvm_json_append(a, json_string("x")), 0);
    assert_int_equal(gvm_json_append(a, NULL), -1);
    assert_int_equal(gvm_json_append(NULL, json_string("y")), -1);
    assert_int_equal(json_object_size(o), 1);
    assert_int_equal(json_array_size(a), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepend),
        cmocka_unit_test(test_prepend_truncates),
        cmocka_unit_test(test_json_setters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
