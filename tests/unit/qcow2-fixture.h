/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2-fixture.h — what the qcow2 engine's unit tests share: a scratch
 * directory with a posix store, qemu-img as the oracle when installed, and
 * qcow2 images made by the engine.  Included by one test file each (the
 * functions are static, unused ones are fine).
 */
#ifndef GVM_TEST_QCOW2_FIXTURE_H
#define GVM_TEST_QCOW2_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "image.h"
#include "qcow2.h"
#include "store.h"

#define QF_UNUSED __attribute__((unused))

struct fixture {
    char dir[64];
    struct gvm_store *st;
};

/* A cmocka setup: a fresh /tmp/NAME.XXXXXX with a posix store on it. */
static QF_UNUSED int qf_setup(void **state, const char *name)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    struct gvm_error err = { 0 };

    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/%s.XXXXXX", name);
    assert_non_null(mkdtemp(fx->dir));
    if (store_posix_new(fx->dir, &fx->st, &err) != 0)
        fail_msg("store_posix_new: %s", err.message);
    *state = fx;
    return 0;
}

static QF_UNUSED int qf_teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    gvm_store_destroy(fx->st);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static QF_UNUSED bool qf_have(const char *tool)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* `qemu-img check` exit status (0 clean, 2 corrupt, 3 leaks); 0 if absent. */
static QF_UNUSED int qf_qemu_check(struct fixture *fx, const char *name)
{
    char cmd[256];
    int r;

    if (!qf_have("qemu-img"))
        return 0;
    snprintf(cmd, sizeof cmd, "qemu-img check -q '%s/%s' >/dev/null 2>&1",
             fx->dir, name);
    r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* A qcow2 image made by the engine (cluster 0: default, bits 0: 16). */
static QF_UNUSED void qf_create(struct fixture *fx, const char *name,
                                uint64_t size, uint32_t cluster, unsigned bits)
{
    struct img_create_opts o = { .format = IMG_FMT_QCOW2, .size = size,
                                 .cluster_size = cluster,
                                 .refcount_bits = bits };
    struct gvm_error err = { 0 };

    if (img_create(fx->st, name, &o, NULL, &err) != 0)
        fail_msg("img_create %s: %s", name, err.message);
}

/* qcow2_check of q finds no corruption, `leaks` leaked clusters. */
static QF_UNUSED void qf_check_clean(struct qcow2 *q, uint64_t leaks)
{
    struct img_check_result res;
    struct gvm_error err = { 0 };

    if (qcow2_check(q, 0, &res, &err) != 0)
        fail_msg("qcow2_check: %s", err.message);
    assert_int_equal(res.corruptions, 0);
    assert_int_equal(res.leaks, leaks);
    assert_int_equal(res.check_errors, 0);
}

#endif
