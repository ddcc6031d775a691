/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-qcow2-cluster.c — guest-to-host mapping (gvmd/image/qcow2-cluster.c):
 * a fresh image maps as one unallocated run; a write allocates clusters
 * (aligned, refcount 1, host-contiguous within one request) and a rewrite
 * keeps them; runs stop where the type or host contiguity changes and are
 * clamped to the request, the L2 table and the virtual size; zeroed
 * clusters map as zero (plain, or with a preallocated cluster set through
 * qcow2_cluster_set_entries).  The whole map is then compared with
 * `qemu-img map --output=json` when qemu-img is installed.
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
#include <jansson.h>

#include "image.h"
#include "qcow2.h"
#include "store.h"
#include "qcow2-fixture.h"

#define CS 65536ull
/* 15 whole clusters and half of a 16th. */
#define SIZE (15 * CS + CS / 2)

static int setup(void **state) { return qf_setup(state, "test-qcow2-cluster"); }

static struct qcow2 *open_ok(struct fixture *fx, const char *name, bool rw)
{
    struct gvm_file *f;
    struct qcow2 *q;
    struct gvm_error err = { 0 };

    assert_int_equal(fx->st->ops->open(fx->st, name,
                                       rw ? GVM_O_RDWR : GVM_O_RDONLY, &f), 0);
    if (qcow2_open(fx->st, name, f, rw, &q, &err) != 0)
        fail_msg("qcow2_open %s: %s", name, err.message);
    return q;
}

static struct qcow2_mapping get(struct qcow2 *q, uint64_t guest, uint64_t bytes)
{
    struct qcow2_mapping m;
    int r = qcow2_cluster_get(q, guest, bytes, &m);

    if (r != 0)
        fail_msg("qcow2_cluster_get 0x%llx+%llu: %d", (unsigned long long)guest,
                 (unsigned long long)bytes, r);
    return m;
}

static void write_pattern(struct qcow2 *q, uint64_t off, size_t len, int c)
{
    uint8_t *buf = malloc(len);

    assert_non_null(buf);
    memset(buf, c, len);
    assert_int_equal(qcow2_write(q, buf, off, len), 0);
    free(buf);
}

static void expect_bytes(struct qcow2 *q, uint64_t off, size_t len, int c)
{
    uint8_t *buf = malloc(len);

    assert_non_null(buf);
    assert_int_equal(qcow2_read(q, buf, off, len), 0);
    for (size_t i = 0; i < len; i++)
        if (buf[i] != c)
            fail_msg("byte 0x%llx is 0x%02x, expected 0x%02x",
                     (unsigned long long)(off + i), buf[i], c);
    free(buf);
}

static void test_fresh_unallocated(void **state)
{
    struct fixture *fx = *state;
    qf_create(fx, "fresh.qcow2", SIZE, CS, 16);
    struct qcow2 *q = open_ok(fx, "fresh.qcow2", false);
    struct qcow2_mapping m;

    /* one L2 table covers it all: one run, clamped to the virtual size */
    m = get(q, 0, UINT64_MAX);
    assert_int_equal(m.type, QCOW2_C_UNALLOCATED);
    assert_int_equal(m.host_offset, 0);
    assert_int_equal(m.bytes, SIZE);
    m = get(q, 5 * CS + 7, 100);
    assert_int_equal(m.type, QCOW2_C_UNALLOCATED);
    assert_int_equal(m.bytes, 100);
    /* past the end, or nothing asked: EINVAL */
    assert_int_equal(qcow2_cluster_get(q, SIZE, 1, &m), -EINVAL);
    assert_int_equal(qcow2_cluster_get(q, 0, 0, &m), -EINVAL);
    expect_bytes(q, 0, CS, 0);
    qcow2_close(q);
}

/* Builds the image the map tests read:
 *   0      data (4 KiB written: the cluster is allocated whole)
 *   1-2    unallocated
 *   3-4    data, one write
 *   5-6    unallocated
 *   7      written, then zeroed: zero, no cluster
 *   8      unallocated
 *   9      written, then its entry set to zero keeping the cluster
 *   10-14  unallocated
 *   15     data, half a cluster of guest space */
static void build_image(struct fixture *fx, const char *name, uint64_t *host0,
                        uint64_t *host3, uint64_t *host9)
{
    qf_create(fx, name, SIZE, CS, 16);
    struct qcow2 *q = open_ok(fx, name, true);
    struct qcow2_mapping m;
    uint64_t rc = 0;

    /* allocation on write */
    m = get(q, 0, CS);
    assert_int_equal(m.type, QCOW2_C_UNALLOCATED);
    write_pattern(q, 0, 4096, 0x11);
    m = get(q, 0, CS);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.bytes, CS);
    assert_int_equal(m.host_offset % CS, 0);
    assert_true(m.host_offset >= CS);   /* not the header */
    assert_int_equal(qcow2_refcount_get(q, m.host_offset, &rc), 0);
    assert_int_equal(rc, 1);
    *host0 = m.host_offset;

    /* a rewrite of an owned cluster stays where it is */
    write_pattern(q, 8192, 4096, 0x12);
    m = get(q, 0, CS);
    assert_int_equal(m.host_offset, *host0);

    write_pattern(q, 3 * CS, 2 * CS, 0x33);
    m = get(q, 3 * CS, 2 * CS);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.bytes, 2 * CS);   /* host-contiguous: one run */
    assert_int_not_equal(m.host_offset, *host0);
    *host3 = m.host_offset;

    write_pattern(q, 7 * CS, CS, 0x77);
    assert_int_equal(get(q, 7 * CS, CS).type, QCOW2_C_NORMAL);
    assert_int_equal(qcow2_write_zeroes(q, 7 * CS, CS), 0);

    write_pattern(q, 9 * CS, CS, 0x99);
    m = get(q, 9 * CS, CS);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    *host9 = m.host_offset;
    uint64_t l2_off = 0, old = 0;
    uint64_t e = *host9 | QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO;
    assert_int_equal(qcow2_cluster_prepare_l2(q, 9 * CS, &l2_off), 0);
    assert_true(l2_off > 0);
    assert_int_equal(qcow2_cluster_set_entries(q, 9 * CS, 1, &e, &old), 0);
    assert_int_equal(old, *host9 | QCOW2_OFLAG_COPIED);

    write_pattern(q, 15 * CS, CS / 2, 0xff);
    qf_check_clean(q, 0);
    qcow2_close(q);
    assert_int_equal(qf_qemu_check(fx, name), 0);
}

static void test_mapping(void **state)
{
    struct fixture *fx = *state;
    uint64_t h0, h3, h9;
    struct qcow2_mapping m;

    build_image(fx, "map.qcow2", &h0, &h3, &h9);
    struct qcow2 *q = open_ok(fx, "map.qcow2", false);

    /* whole-image requests: each run ends where the kind changes */
    m = get(q, 0, SIZE);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.host_offset, h0);
    assert_int_equal(m.bytes, CS);
    m = get(q, CS, SIZE - CS);
    assert_int_equal(m.type, QCOW2_C_UNALLOCATED);
    assert_int_equal(m.bytes, 2 * CS);
    m = get(q, 3 * CS, SIZE - 3 * CS);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.host_offset, h3);
    assert_int_equal(m.bytes, 2 * CS);
    m = get(q, 5 * CS, SIZE - 5 * CS);
    assert_int_equal(m.type, QCOW2_C_UNALLOCATED);
    assert_int_equal(m.bytes, 2 * CS);
    m = get(q, 7 * CS, SIZE - 7 * CS);
    assert_int_equal(m.type, QCOW2_C_ZERO_PLAIN);
    assert_int_equal(m.host_offset, 0);
    assert_int_equal(m.bytes, CS);
    m = get(q, 8 * CS, SIZE - 8 * CS);
    assert_int_equal(m.type, QCOW2_C_UNALLOCATED);
    assert_int_equal(m.bytes, CS);
    m = get(q, 9 * CS, SIZE - 9 * CS);
    assert_int_equal(m.type, QCOW2_C_ZERO_ALLOC);
    assert_int_equal(m.host_offset, h9);
    assert_int_equal(m.bytes, CS);
    m = get(q, 10 * CS, SIZE - 10 * CS);
    assert_int_equal(m.type, QCOW2_C_UNALLOCATED);
    assert_int_equal(m.bytes, 5 * CS);
    m = get(q, 15 * CS, UINT64_MAX);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.bytes, CS / 2);   /* the virtual size's end */

    /* inside a cluster: the host offset carries the in-cluster offset,
     * the run is clamped to the request */
    m = get(q, 3 * CS + 100, 50);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.host_offset, h3 + 100);
    assert_int_equal(m.bytes, 50);
    m = get(q, 4 * CS - 10, 4 * CS);
    assert_int_equal(m.host_offset, h3 + CS - 10);
    assert_int_equal(m.bytes, CS + 10);
    m = get(q, 100, SIZE);
    assert_int_equal(m.bytes, CS - 100);
    assert_int_equal(qcow2_block_status(q, 3 * CS, CS, &m), 0);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.bytes, CS);

    /* what the guest reads */
    expect_bytes(q, 0, 4096, 0x11);
    expect_bytes(q, 4096, 4096, 0);
    expect_bytes(q, 8192, 4096, 0x12);
    expect_bytes(q, 3 * CS, 2 * CS, 0x33);
    expect_bytes(q, 7 * CS, CS, 0);
    expect_bytes(q, 9 * CS, CS, 0);
    expect_bytes(q, 15 * CS, CS / 2, 0xff);
    qcow2_close(q);
}

/* The L2 table's end also ends a run: 512-byte clusters, an L2 table maps
 * 64 KiB. */
static void test_run_ends_with_l2(void **state)
{
    struct fixture *fx = *state;
    qf_create(fx, "small.qcow2", 1 << 20, 512, 16);
    struct qcow2 *q = open_ok(fx, "small.qcow2", true);
    struct qcow2_mapping m;

    assert_int_equal(q->l2_entries, 64);
    m = get(q, 0, 1 << 20);
    assert_int_equal(m.type, QCOW2_C_UNALLOCATED);
    assert_int_equal(m.bytes, 64 * 512);
    m = get(q, 10 * 512 + 3, 1 << 20);
    assert_int_equal(m.bytes, 54 * 512 - 3);
    /* one write across the table boundary: two runs */
    write_pattern(q, 60 * 512, 8 * 512, 0x5a);
    m = get(q, 60 * 512, 8 * 512);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.bytes, 4 * 512);
    m = get(q, 64 * 512, 8 * 512);
    assert_int_equal(m.type, QCOW2_C_NORMAL);
    assert_int_equal(m.bytes, 4 * 512);
    expect_bytes(q, 60 * 512, 8 * 512, 0x5a);
    qf_check_clean(q, 0);
    qcow2_close(q);
    assert_int_equal(qf_qemu_check(fx, "small.qcow2"), 0);
}

/* ---- against qemu-img map ---------------------------------------------- */

struct extent {
    uint64_t start, length, offset;
    bool present, zero, data, has_offset;
};

/* Our map as qemu-img prints it: runs of the same flags merged, data runs
 * only where host-contiguous. */
static size_t our_map(struct qcow2 *q, struct extent *out, size_t max)
{
    size_t n = 0;

    for (uint64_t off = 0; off < q->hdr.size;) {
        struct qcow2_mapping m = get(q, off, q->hdr.size - off);
        struct extent x = { .start = off, .length = m.bytes };

        x.present = m.type != QCOW2_C_UNALLOCATED;
        x.data = m.type == QCOW2_C_NORMAL;
        x.zero = !x.data;
        x.has_offset = m.type == QCOW2_C_NORMAL || m.type == QCOW2_C_ZERO_ALLOC;
        x.offset = m.host_offset;
        struct extent *p = n ? &out[n - 1] : NULL;
        if (p && p->present == x.present && p->zero == x.zero &&
            p->data == x.data && p->has_offset == x.has_offset &&
            (!x.has_offset || p->offset + p->length == x.offset)) {
            p->length += x.length;
        } else {
            assert_true(n < max);
            out[n++] = x;
        }
        off += m.bytes;
    }
    return n;
}

static void test_qemu_img_map(void **state)
{
    struct fixture *fx = *state;
    uint64_t h0, h3, h9;
    struct extent ours[32];
    char cmd[256];

    if (!qf_have("qemu-img")) {
        print_message("qemu-img not installed: map not compared with QEMU's\n");
        skip();
    }
    build_image(fx, "qmap.qcow2", &h0, &h3, &h9);
    struct qcow2 *q = open_ok(fx, "qmap.qcow2", false);
    size_t n = our_map(q, ours, GVM_ARRAY_SIZE(ours));
    qcow2_close(q);
    /* the layout build_image made: data, hole, data, hole, zero, hole,
     * zero (allocated), hole, data */
    assert_int_equal(n, 9);

    snprintf(cmd, sizeof cmd, "qemu-img map -f qcow2 --output=json '%s/qmap.qcow2'",
             fx->dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t jerr;
    json_t *map = json_loadf(p, 0, &jerr);
    assert_int_equal(pclose(p), 0);
    if (!map)
        fail_msg("qemu-img map output: %s", jerr.text);
    assert_true(json_is_array(map));
    if (json_array_size(map) != n)
        fail_msg("qemu-img map has %zu extents, ours %zu",
                 json_array_size(map), n);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(map, i);
        const struct extent *x = &ours[i];

        assert_int_equal(json_integer_value(json_object_get(e, "start")), x->start);
        assert_int_equal(json_integer_value(json_object_get(e, "length")), x->length);
        assert_int_equal(json_integer_value(json_object_get(e, "depth")), 0);
        assert_int_equal(json_is_true(json_object_get(e, "data")), x->data);
        assert_int_equal(json_is_true(json_object_get(e, "zero")), x->zero);
        json_t *present = json_object_get(e, "present");
        if (present)   /* QEMU >= 6.2 */
            assert_int_equal(json_is_true(present), x->present);
        json_t *off = json_object_get(e, "offset");
        if (x->data) {
            assert_non_null(off);
            assert_int_equal(json_integer_value(off), x->offset);
        }
    }
    json_decref(map);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_unallocated, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_mapping, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_run_ends_with_l2, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_qemu_img_map, setup, qf_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
