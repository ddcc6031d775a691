/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-qcow2-refcount.c — the refcount engine and the allocator directly
 * (gvmd/qcow2-refcount.c): every refcount width from 1 to 64 bits
 * (allocation across refcount blocks, increments up to the width's maximum
 * and the overflow refusal, freeing and reuse), leaks seen and repaired by
 * img_check, and L1 growth (gvmd/qcow2-write.c), which writes within the
 * virtual size never need.  Images are then checked by `qemu-img check`
 * and read back with qemu-io when those are installed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "image.h"
#include "qcow2.h"
#include "store.h"
#include "qcow2-fixture.h"

static int setup(void **state) { return qf_setup(state, "test-qcow2-refcount"); }

static struct qcow2 *open_q(struct fixture *fx, const char *name)
{
    struct gvm_file *f;
    struct qcow2 *q;
    struct gvm_error err = { 0 };
    assert_int_equal(fx->st->ops->open(fx->st, name, GVM_O_RDWR, &f), 0);
    if (qcow2_open(fx->st, name, f, true, &q, &err) != 0)
        fail_msg("qcow2_open %s: %s", name, err.message);
    return q;
}

/* Clusters past the end of the file are not looked at by a check (qemu-img
 * neither): write the last allocated cluster so the file covers them. */
static void touch(struct qcow2 *q, uint64_t off)
{
    uint8_t z[512] = { 0 };
    assert_int_equal(q->st->ops->pwrite(q->file, z, sizeof z, off), 0);
}

static void test_widths(void **state)
{
    struct fixture *fx = *state;
    static const unsigned widths[] = { 1, 2, 4, 8, 16, 32, 64 };

    for (size_t w = 0; w < GVM_ARRAY_SIZE(widths); w++) {
        char name[32];
        unsigned bits = widths[w];
        snprintf(name, sizeof name, "rc%u.qcow2", bits);
        qf_create(fx, name, 8 << 20, 512, bits);
        struct qcow2 *q = open_q(fx, name);
        assert_int_equal(q->refcount_bits, bits);

        /* Runs of several sizes, some longer than a refcount block
         * (512 * 8 / bits clusters) and crossing block boundaries. */
        static const uint64_t runs[] = { 1, 5, 70, 3, 300, 1, 2 };
        int64_t offs[GVM_ARRAY_SIZE(runs)];
        for (size_t i = 0; i < GVM_ARRAY_SIZE(runs); i++) {
            offs[i] = qcow2_alloc_clusters(q, runs[i]);
            assert_true(offs[i] > 0);
            assert_int_equal(offs[i] % 512, 0);
            for (uint64_t c = 0; c < runs[i]; c++) {
                uint64_t rc = 99;
                assert_int_equal(qcow2_refcount_get(q, (uint64_t)offs[i] + c * 512, &rc), 0);
                assert_int_equal(rc, 1);
            }
            /* no overlap with earlier runs */
            for (size_t j = 0; j < i; j++)
                assert_true((uint64_t)offs[i] >= (uint64_t)offs[j] + runs[j] * 512 ||
                            (uint64_t)offs[j] >= (uint64_t)offs[i] + runs[i] * 512);
        }
        /* Unreferenced allocations are leaks: 382 clusters. */
        uint64_t hi = 0;
        for (size_t i = 0; i < GVM_ARRAY_SIZE(runs); i++)
            if ((uint64_t)offs[i] + runs[i] * 512 > hi)
                hi = (uint64_t)offs[i] + runs[i] * 512;
        touch(q, hi - 512);
        qf_check_clean(q, 382);

        /* Increment to the width's maximum, then overflow is refused. */
        uint64_t max = qcow2_refcount_max(q), rc;
        uint64_t probe = (uint64_t)offs[2] + 7 * 512;
        assert_int_equal(qcow2_refcount_set(q, probe, max), 0);
        assert_int_equal(qcow2_refcount_get(q, probe, &rc), 0);
        assert_true(rc == max);
        assert_int_equal(qcow2_refcount_update(q, probe, 512, 1), -ERANGE);
        assert_int_equal(qcow2_refcount_set(q, probe, 1), 0);
        if (bits > 1) {
            assert_int_equal(qcow2_refcount_update(q, probe, 512, 1), 0);
            assert_int_equal(qcow2_refcount_get(q, probe, &rc), 0);
            assert_int_equal(rc, 2);
            assert_int_equal(qcow2_refcount_update(q, probe, 512, -1), 0);
        }
        /* Neighbours of the probe are untouched (sub-byte packing). */
        assert_int_equal(qcow2_refcount_get(q, probe - 512, &rc), 0);
        assert_int_equal(rc, 1);
        assert_int_equal(qcow2_refcount_get(q, probe + 512, &rc), 0);
        assert_int_equal(rc, 1);

        /* Free everything; a freed run is found again. */
        for (size_t i = 0; i < GVM_ARRAY_SIZE(runs); i++)
            assert_int_equal(qcow2_refcount_update(q, (uint64_t)offs[i],
                                                   runs[i] * 512, -1), 0);
        assert_int_equal(qcow2_refcount_get(q, (uint64_t)offs[4], &rc), 0);
        assert_int_equal(rc, 0);
        /* dropping below zero is corruption */
        assert_int_equal(qcow2_refcount_update(q, (uint64_t)offs[0], 512, -1),
                         -EUCLEAN);
        int64_t lowest = offs[0];
        for (size_t i = 1; i < GVM_ARRAY_SIZE(runs); i++)
            if (offs[i] < lowest)
                lowest = offs[i];
        int64_t again = qcow2_alloc_clusters(q, 3);
        assert_true(again == lowest);   /* the hole is reused */
        assert_int_equal(qcow2_refcount_update(q, (uint64_t)again, 3 * 512, -1), 0);
        qf_check_clean(q, 0);
        qcow2_close(q);
        assert_int_equal(qf_qemu_check(fx, name), 0);
    }
}

static void test_leak_repair(void **state)
{
    struct fixture *fx = *state;
    qf_create(fx, "leak.qcow2", 4 << 20, 4096, 16);
    struct qcow2 *q = open_q(fx, "leak.qcow2");
    int64_t off = qcow2_alloc_clusters(q, 3);
    assert_true(off > 0);
    touch(q, (uint64_t)off + 2 * 4096);
    qcow2_close(q);
    assert_int_equal(qf_qemu_check(fx, "leak.qcow2"), qf_have("qemu-img") ? 3 : 0);

    q = open_q(fx, "leak.qcow2");
    struct img_check_result res;
    struct gvm_error err = { 0 };
    assert_int_equal(qcow2_check(q, 0, &res, &err), 0);
    assert_int_equal(res.leaks, 3);
    assert_int_equal(qcow2_check(q, IMG_REPAIR_LEAKS, &res, &err), 0);
    assert_int_equal(res.leaks_fixed, 3);
    assert_int_equal(res.leaks, 0);
    qcow2_close(q);
    assert_int_equal(qf_qemu_check(fx, "leak.qcow2"), 0);
}

static void test_l1_grow(void **state)
{
    struct fixture *fx = *state;
    qf_create(fx, "l1.qcow2", 2 << 20, 512, 16);
    struct qcow2 *q = open_q(fx, "l1.qcow2");
    uint8_t *buf = malloc(256 << 10), *back = malloc(256 << 10);
    assert_non_null(buf);
    assert_non_null(back);

    memset(buf, 0xa1, 100000);
    assert_int_equal(qcow2_write(q, buf, 1000, 100000), 0);
    uint32_t l1_size = q->hdr.l1_size;
    uint64_t l1_off = q->hdr.l1_table_offset;
    assert_int_equal(qcow2_l1_grow(q, (uint64_t)l1_size * 4), 0);
    assert_true(q->hdr.l1_size >= l1_size * 4);
    assert_true(q->hdr.l1_table_offset != l1_off);
    memset(buf, 0xb2, 200000);
    assert_int_equal(qcow2_write(q, buf, 1 << 20, 200000), 0);
    assert_int_equal(qcow2_read(q, back, 1000, 100000), 0);
    for (size_t i = 0; i < 100000; i++)
        if (back[i] != 0xa1)
            fail_msg("byte %zu after L1 growth: 0x%02x", 1000 + i, back[i]);
    qf_check_clean(q, 0);
    qcow2_close(q);
    free(buf);
    free(back);

    assert_int_equal(qf_qemu_check(fx, "l1.qcow2"), 0);
    if (qf_have("qemu-io")) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "qemu-io -f qcow2 -c 'read -P 0xa1 1000 100000' "
                 "-c 'read -P 0xb2 1M 200000' -c 'read -P 0 0 1000' '%s/l1.qcow2' "
                 "| grep -c '^read' | grep -qx 3", fx->dir);
        assert_int_equal(system(cmd), 0);
        /* the header qemu reads has the grown table */
        snprintf(cmd, sizeof cmd,
                 "test $(od -An -tu1 -j36 -N4 '%s/l1.qcow2' | awk '{print $3*256+$4}') -ge %u",
                 fx->dir, l1_size * 4);
        assert_int_equal(system(cmd), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_widths, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_leak_repair, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_l1_grow, setup, qf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
