/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-qcow2-table.c — the on-demand L1 and refcount tables
 * (gvmd/qcow2-table.c): writes spread over more L1 chunks than the cache
 * holds; a short last L1 chunk cached before the table grows; refcount
 * table entries left dirty in more chunks than the cache's bound (they
 * stay until written back, across refcount-table growth); and a bad entry
 * refused when it is read (read-only open) or at open (read-write).
 * Images are then checked by `qemu-img check` and read with qemu-io when
 * those are installed.
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

static int setup(void **state) { return qf_setup(state, "test-qcow2-table"); }

static int open_q(struct fixture *fx, const char *name, bool rw,
                  struct qcow2 **q, struct gvm_error *err)
{
    struct gvm_file *f;
    assert_int_equal(fx->st->ops->open(fx->st, name,
                                       rw ? GVM_O_RDWR : GVM_O_RDONLY, &f), 0);
    return qcow2_open(fx->st, name, f, rw, q, err);
}

static struct qcow2 *open_ok(struct fixture *fx, const char *name, bool rw)
{
    struct qcow2 *q;
    struct gvm_error err = { 0 };
    if (open_q(fx, name, rw, &q, &err) != 0)
        fail_msg("qcow2_open %s: %s", name, err.message);
    return q;
}

static void poke64(struct fixture *fx, const char *name, uint64_t off, uint64_t v)
{
    struct gvm_file *f;
    uint8_t be[8];
    qcow2_put64(be, v);
    assert_int_equal(fx->st->ops->open(fx->st, name, GVM_O_RDWR, &f), 0);
    assert_int_equal(fx->st->ops->pwrite(f, be, 8, off), 0);
    fx->st->ops->close(f);
}

/* 512-byte clusters: an L1 entry maps 32 KiB, a chunk of 512 entries
 * 16 MiB.  Writes into 20 chunks, in an order that makes the cache evict,
 * each read back after the others; the cache stays at its bound. */
static void test_l1_chunks(void **state)
{
    struct fixture *fx = *state;
    const uint64_t chunk_guest = (uint64_t)QCOW2_TABLE_CHUNK << 15;
    const unsigned nchunks = 20;
    qf_create(fx, "l1c.qcow2", nchunks * chunk_guest, 512, 16);
    struct qcow2 *q = open_ok(fx, "l1c.qcow2", true);
    assert_true(q->hdr.l1_size >= nchunks * QCOW2_TABLE_CHUNK);
    uint8_t buf[4096], back[4096];

    for (unsigned k = 0; k < nchunks; k++) {
        unsigned c = (k * 7) % nchunks;   /* 0 7 14 1 8 ... */
        memset(buf, 0x40 + c, sizeof buf);
        /* somewhere inside chunk c, not at its start */
        uint64_t g = c * chunk_guest + (uint64_t)(c * 37 % QCOW2_TABLE_CHUNK) * 32768;
        assert_int_equal(qcow2_write(q, buf, g, sizeof buf), 0);
        assert_true(q->l1.nslots <= QCOW2_TABLE_SLOTS);
    }
    for (unsigned c = 0; c < nchunks; c++) {
        uint64_t g = c * chunk_guest + (uint64_t)(c * 37 % QCOW2_TABLE_CHUNK) * 32768;
        assert_int_equal(qcow2_read(q, back, g, sizeof back), 0);
        for (size_t i = 0; i < sizeof back; i++)
            if (back[i] != 0x40 + c)
                fail_msg("chunk %u byte %zu: 0x%02x", c, i, back[i]);
    }
    qf_check_clean(q, 0);
    qcow2_close(q);
    assert_int_equal(qf_qemu_check(fx, "l1c.qcow2"), 0);

    /* A read-only open reads the same through a cold cache. */
    q = open_ok(fx, "l1c.qcow2", false);
    for (unsigned c = nchunks; c-- > 0;) {
        uint64_t g = c * chunk_guest + (uint64_t)(c * 37 % QCOW2_TABLE_CHUNK) * 32768;
        assert_int_equal(qcow2_read(q, back, g, sizeof back), 0);
        assert_int_equal(back[0], 0x40 + c);
        assert_int_equal(back[sizeof back - 1], 0x40 + c);
    }
    qcow2_close(q);
    if (qf_have("qemu-io")) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "qemu-io -f qcow2 -c 'read -P 0x53 %llu 4096' '%s/l1c.qcow2'"
                 " | grep -q '^read'",
                 (unsigned long long)(19 * chunk_guest + (19 * 37 % QCOW2_TABLE_CHUNK) * 32768ull),
                 fx->dir);
        assert_int_equal(system(cmd), 0);
    }
}

/* The table's short last chunk is cached; the image grows (a new, larger
 * L1 elsewhere); an entry past the old end is written and read. */
static void test_l1_short_chunk_grows(void **state)
{
    struct fixture *fx = *state;
    qf_create(fx, "l1g.qcow2", 2 << 20, 512, 16);   /* l1_size 64 */
    struct qcow2 *q = open_ok(fx, "l1g.qcow2", true);
    uint8_t buf[4096], back[4096];

    assert_true(q->hdr.l1_size < QCOW2_TABLE_CHUNK);   /* a short chunk */
    memset(buf, 0x61, sizeof buf);
    assert_int_equal(qcow2_write(q, buf, 1 << 20, sizeof buf), 0);   /* entry 32 */
    assert_int_equal(qcow2_resize(q, 64 << 20), 0);                   /* 2048 entries */
    assert_true(q->hdr.l1_size >= 2048);
    memset(buf, 0x62, sizeof buf);
    assert_int_equal(qcow2_write(q, buf, 10 << 20, sizeof buf), 0);  /* entry 320 */
    memset(buf, 0x63, sizeof buf);
    assert_int_equal(qcow2_write(q, buf, 40 << 20, sizeof buf), 0);  /* entry 1280 */
    assert_int_equal(qcow2_read(q, back, 1 << 20, sizeof back), 0);
    assert_int_equal(back[0], 0x61);
    assert_int_equal(qcow2_read(q, back, 10 << 20, sizeof back), 0);
    assert_int_equal(back[100], 0x62);
    assert_int_equal(qcow2_read(q, back, 40 << 20, sizeof back), 0);
    assert_int_equal(back[4095], 0x63);
    qf_check_clean(q, 0);
    qcow2_close(q);
    assert_int_equal(qf_qemu_check(fx, "l1g.qcow2"), 0);
    if (qf_have("qemu-io")) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "qemu-io -f qcow2 -c 'read -P 0x61 1M 4k' -c 'read -P 0x62 10M 4k' "
                 "-c 'read -P 0x63 40M 4k' -c 'read -P 0 41M 1M' '%s/l1g.qcow2' "
                 "| grep -c '^read' | grep -qx 4", fx->dir);
        assert_int_equal(system(cmd), 0);
    }
}

/* 512-byte clusters and 64-bit refcounts: a refcount block counts 64
 * clusters (32 KiB), a chunk of the refcount table 16 MiB.  A deferred
 * allocation of 100 clusters leaves a new table entry dirty; one of
 * 160 MiB then grows the table (the new table must carry the dirty entry)
 * and leaves entries dirty in some 10 chunks, more than the cache's bound.
 * All refcounts read 1, from the cache and, after the write-back (which
 * brings the cache back to its bound), from the disk. */
static void test_reftable_dirty(void **state)
{
    struct fixture *fx = *state;
    const uint64_t small = 100, big = 10 * 32768;
    qf_create(fx, "rt.qcow2", 1 << 20, 512, 64);
    struct qcow2 *q = open_ok(fx, "rt.qcow2", true);
    uint64_t first_entries = q->reftable_entries, rc;

    int64_t a = qcow2_alloc_clusters_deferred(q, small);
    assert_true(a > 0);
    assert_true(qcow2_table_dirty(&q->reftable));
    int64_t b = qcow2_alloc_clusters_deferred(q, big);
    assert_true(b > 0);
    assert_true(q->reftable_entries > first_entries);
    assert_true(qcow2_table_dirty(&q->reftable));
    assert_true(q->reftable.nslots > QCOW2_TABLE_SLOTS);
    for (uint64_t c = 0; c < big; c += 4099) {
        assert_int_equal(qcow2_refcount_get(q, (uint64_t)b + c * 512, &rc), 0);
        assert_int_equal(rc, 1);
    }
    assert_int_equal(qcow2_refcount_flush(q), 0);
    assert_false(qcow2_table_dirty(&q->reftable));
    assert_int_equal(q->reftable.nslots, QCOW2_TABLE_SLOTS);
    /* the file covers every allocated cluster, so check looks at them */
    uint8_t z[512] = { 0 };
    assert_int_equal(q->st->ops->pwrite(q->file, z, sizeof z,
                                        (uint64_t)b + (big - 1) * 512), 0);
    qcow2_close(q);

    /* From the disk, through a cold cache. */
    q = open_ok(fx, "rt.qcow2", false);
    for (uint64_t c = 0; c < small; c++) {
        assert_int_equal(qcow2_refcount_get(q, (uint64_t)a + c * 512, &rc), 0);
        assert_int_equal(rc, 1);
    }
    for (uint64_t c = 0; c < big; c += 4099) {
        assert_int_equal(qcow2_refcount_get(q, (uint64_t)b + c * 512, &rc), 0);
        assert_int_equal(rc, 1);
    }
    qf_check_clean(q, small + big);
    assert_true(q->reftable.nslots <= QCOW2_TABLE_SLOTS);
    qcow2_close(q);
    assert_int_equal(qf_qemu_check(fx, "rt.qcow2"), qf_have("qemu-img") ? 3 : 0);
}

/* A bad L1 entry: a read-only open succeeds, reads elsewhere work, the
 * read that needs the entry is -EUCLEAN naming it; a read-write open and
 * a check refuse the image as open used to. */
static void test_bad_l1_entry(void **state)
{
    struct fixture *fx = *state;
    struct gvm_error err = { 0 };
    struct qcow2 *q;
    uint8_t buf[4096];

    qf_create(fx, "bad.qcow2", 64 << 20, 512, 16);   /* 2048 entries, 4 chunks */
    q = open_ok(fx, "bad.qcow2", true);
    memset(buf, 0x71, sizeof buf);
    assert_int_equal(qcow2_write(q, buf, 0, sizeof buf), 0);
    uint64_t l1 = q->hdr.l1_table_offset;
    qcow2_close(q);
    poke64(fx, "bad.qcow2", l1 + 1500 * 8, 1ull << 57);   /* reserved bit */

    q = open_ok(fx, "bad.qcow2", false);
    assert_int_equal(qcow2_read(q, buf, 0, sizeof buf), 0);
    assert_int_equal(buf[0], 0x71);
    assert_int_equal(qcow2_read(q, buf, 1499ull << 15, sizeof buf), 0);  /* same chunk */
    assert_int_equal(q->corrupt_msg[0], '\0');
    assert_int_equal(qcow2_read(q, buf, 1500ull << 15, sizeof buf), -EUCLEAN);
    assert_non_null(strstr(q->corrupt_msg, "L1 table entry 1500"));
    assert_non_null(strstr(q->corrupt_msg, "reserved bits"));
    struct img_check_result res;
    assert_int_equal(qcow2_check(q, 0, &res, &err), -EUCLEAN);
    assert_int_equal(err.cls, GVM_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "L1 table entry 1500"));
    qcow2_close(q);

    gvm_error_clear(&err);
    assert_int_equal(open_q(fx, "bad.qcow2", true, &q, &err), -EUCLEAN);
    assert_int_equal(err.cls, GVM_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "L1 table entry 1500"));
}

/* A refcount-table entry past the end of the file: the same, through the
 * refcount of a cluster it would count. */
static void test_bad_reftable_entry(void **state)
{
    struct fixture *fx = *state;
    struct gvm_error err = { 0 };
    struct qcow2 *q;

    qf_create(fx, "badrt.qcow2", 1 << 20, 512, 16);   /* a block counts 256 clusters */
    q = open_ok(fx, "badrt.qcow2", false);
    uint64_t rt = q->hdr.refcount_table_offset;
    assert_true(q->reftable_entries > 5);
    qcow2_close(q);
    poke64(fx, "badrt.qcow2", rt + 5 * 8, 1ull << 40);

    q = open_ok(fx, "badrt.qcow2", false);
    uint64_t rc;
    assert_int_equal(qcow2_refcount_get(q, 0, &rc), 0);
    assert_int_equal(rc, 1);
    assert_int_equal(qcow2_refcount_get(q, 5 * 256 * 512, &rc), -EUCLEAN);
    assert_non_null(strstr(q->corrupt_msg, "refcount table entry 5"));
    qcow2_close(q);

    assert_int_equal(open_q(fx, "badrt.qcow2", true, &q, &err), -EUCLEAN);
    assert_int_equal(err.cls, GVM_ERR_CORRUPT);
    assert_non_null(strstr(err.message, "refcount table entry 5"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_l1_chunks, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_l1_short_chunk_grows, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_reftable_dirty, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_bad_l1_entry, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_bad_reftable_entry, setup, qf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
