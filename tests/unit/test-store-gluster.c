/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-store-gluster.c — the gluster backend against a real volume: server
 * ordering (dead servers first cost milliseconds), every slot (create,
 * read/write, flush, size, truncate, discard, server-side copy, stat,
 * rename, unlink, mkdir, statvfs), and a refused connect naming the servers.
 *
 * Needs GVM_GLUSTER_VOLUME (and GVM_GLUSTER_HOST, default 127.0.0.1), as
 * exported by tests/run-all.sh; skips (77) without it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"

static const char *glvol, *glhost;
static struct gvm_store *st;
static char dir[64];

static int group_setup(void **state)
{
    (void)state;
    struct gvm_server servers[3] = {
        { GVM_TRANSPORT_TCP, (char *)"127.0.0.1", 24099, NULL },
        { GVM_TRANSPORT_UNIX, NULL, 0, (char *)"/nonexistent/glusterd.socket" },
        { GVM_TRANSPORT_TCP, (char *)glhost, 0, NULL },
    };
    struct gvm_gluster_cfg cfg = {
        .volume = glvol, .servers = servers, .nservers = 3, .debug = 3,
    };
    struct gvm_error err = { 0 };
    uint64_t t0 = gvm_now_ms();
    if (store_gluster_new(&cfg, &st, &err) != 0) {
        fprintf(stderr, "store_gluster_new: %s\n", err.message);
        return -1;
    }
    uint64_t ms = gvm_now_ms() - t0;
    fprintf(stderr, "# connected to %s with two dead servers first in %llu ms\n",
            glvol, (unsigned long long)ms);
    if (ms > 2000) {
        fprintf(stderr, "connecting took %llu ms: dead servers were tried first\n",
                (unsigned long long)ms);
        return -1;
    }
    /* Under storage/ (this test's owner's directory on shared volumes). */
    snprintf(dir, sizeof dir, "storage/unit-%d", (int)getpid());
    int r = st->ops->mkdir(st, "storage");
    if (r < 0 && r != -EEXIST)
        return -1;
    return st->ops->mkdir(st, dir);
}

static int group_teardown(void **state)
{
    (void)state;
    gvm_store_abandon(st);   /* no 9 s glfs_fini in a test either */
    return 0;
}

static void test_probe(void **state)
{
    (void)state;
    struct gvm_server s[4] = {
        { GVM_TRANSPORT_TCP, (char *)"127.0.0.1", 24099, NULL },
        { GVM_TRANSPORT_UNIX, NULL, 0, (char *)"/nonexistent/glusterd.socket" },
        { GVM_TRANSPORT_TCP, (char *)glhost, 0, NULL },
        { GVM_TRANSPORT_RDMA, (char *)glhost, 0, NULL },
    };
    int reach[4], errs[4];
    store_gluster_probe_all(s, 4, 200, reach, errs);
    assert_int_equal(reach[0], 0);
    assert_int_equal(errs[0], ECONNREFUSED);
    assert_int_equal(reach[1], 0);
    assert_int_equal(errs[1], ENOENT);
    assert_int_equal(reach[2], 1);
    assert_int_equal(reach[3], -1);
    assert_true(store_gluster_probe(&s[2], 200));
    assert_false(store_gluster_probe(&s[0], 200));
}

static void test_io(void **state)
{
    (void)state;
    char p[128], q[128], r[128];
    snprintf(p, sizeof p, "%s/a.img", dir);
    snprintf(q, sizeof q, "%s/b.img", dir);
    snprintf(r, sizeof r, "%s/c.img", dir);
    struct gvm_file *f = NULL, *g = NULL;

    assert_int_equal(st->ops->open(st, p, GVM_O_RDWR, &f), -ENOENT);
    assert_int_equal(st->ops->open(st, p, GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &f), 0);
    assert_int_equal(st->ops->open(st, p, GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &g), -EEXIST);

    size_t len = 2 * 1024 * 1024 + 17;
    unsigned char *buf = malloc(len), *back = malloc(len);
    assert_non_null(buf);
    assert_non_null(back);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 13 + 1);
    assert_int_equal(st->ops->pwrite(f, buf, len, 65536), 0);
    assert_int_equal(st->ops->flush(f), 0);
    uint64_t size;
    assert_int_equal(st->ops->getsize(f, &size), 0);
    assert_int_equal(size, len + 65536);
    assert_int_equal(st->ops->pread(f, back, len, 65536), (ssize_t)len);
    assert_memory_equal(buf, back, len);
    assert_int_equal(st->ops->pread(f, back, 100, size - 10), 10);

    /* server-side copy into a second file */
    assert_int_equal(st->ops->open(st, q, GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &g), 0);
    assert_int_equal(store_copy(st, f, 65536, g, 0, len), 0);
    assert_int_equal(st->ops->flush(g), 0);
    memset(back, 0, len);
    assert_int_equal(st->ops->pread(g, back, len, 0), (ssize_t)len);
    assert_memory_equal(buf, back, len);

    /* A copy of many pipelined chunks (gl_copy_range), at odd offsets,
     * read back through the same connection; then one running past the
     * source's end fails with -ENODATA. */
    {
        size_t big = 11 * 1024 * 1024 + 4099;
        unsigned char *b2 = malloc(big), *b3 = malloc(big);
        assert_non_null(b2);
        assert_non_null(b3);
        for (size_t i = 0; i < big; i++)
            b2[i] = (unsigned char)(i * 7 + i / 65536);
        assert_int_equal(st->ops->pwrite(f, b2, big, 12345), 0);
        assert_int_equal(store_copy(st, f, 12345 + 777, g, 4097, big - 777), 0);
        memset(b3, 0, big);
        assert_int_equal(st->ops->pread(g, b3, big - 777, 4097), (ssize_t)(big - 777));
        assert_memory_equal(b2 + 777, b3, big - 777);
        assert_int_equal(store_copy(st, f, 12345 + big - 100, g, 0, 4096), -ENODATA);
        free(b2);
        free(b3);
        /* Back to what the checks below expect. */
        assert_int_equal(st->ops->truncate(f, len + 65536), 0);
        assert_int_equal(st->ops->pwrite(f, buf, len, 65536), 0);
        assert_int_equal(st->ops->pwrite(g, buf, len, 0), 0);
    }

    /* discard reads back zeros */
    int rr = st->ops->punch(g, 0, 65536);
    if (rr != -EOPNOTSUPP) {
        assert_int_equal(rr, 0);
        assert_int_equal(st->ops->pread(g, back, 65536, 0), 65536);
        for (size_t i = 0; i < 65536; i++)
            assert_int_equal(back[i], 0);
    }
    assert_int_equal(st->ops->truncate(g, 4096), 0);
    assert_int_equal(st->ops->getsize(g, &size), 0);
    assert_int_equal(size, 4096);
    st->ops->close(f);
    st->ops->close(g);

    struct gvm_stat sb;
    assert_int_equal(st->ops->stat(st, p, &sb), 0);
    assert_true(sb.is_reg);
    assert_int_equal(sb.size, len + 65536);
    assert_true(sb.allocated >= len);
    assert_int_equal(st->ops->stat(st, dir, &sb), 0);
    assert_true(sb.is_dir);
    assert_int_equal(st->ops->rename(st, q, r), 0);
    assert_int_equal(st->ops->stat(st, q, &sb), -ENOENT);
    assert_int_equal(st->ops->unlink(st, r), 0);
    assert_int_equal(st->ops->unlink(st, p), 0);
    assert_int_equal(st->ops->unlink(st, p), -ENOENT);
    assert_int_equal(st->ops->mkdir(st, dir), -EEXIST);

    uint64_t fr = 0, tot = 0;
    assert_int_equal(st->ops->statvfs(st, &fr, &tot), 0);
    assert_true(fr > 0 && fr <= tot);
    free(buf);
    free(back);
}

static void test_all_dead(void **state)
{
    (void)state;
    struct gvm_server servers[2] = {
        { GVM_TRANSPORT_TCP, (char *)"127.0.0.1", 24099, NULL },
        { GVM_TRANSPORT_UNIX, NULL, 0, (char *)"/nonexistent/glusterd.socket" },
    };
    struct gvm_gluster_cfg cfg = { .volume = glvol, .servers = servers,
                                   .nservers = 2, .debug = 3 };
    struct gvm_error err = { 0 };
    struct gvm_store *dead = NULL;
    uint64_t t0 = gvm_now_ms();
    assert_true(store_gluster_new(&cfg, &dead, &err) < 0);
    assert_true(gvm_now_ms() - t0 < 1000);
    assert_null(dead);
    assert_int_equal(err.cls, GVM_ERR_STORAGE);
    assert_non_null(strstr(err.message, "tcp 127.0.0.1:24099"));
    assert_non_null(strstr(err.message, "unix /nonexistent/glusterd.socket"));
}

/*
 * ->lock through gfapi: one lock owner per fd, so two fds of this process
 * are two holders (OFD semantics), and a conflict is -EAGAIN naming write.
 * Regression: glfs_close of an fd with no owner of its own flushed with the
 * calling thread's last lock owner, and the bricks dropped that owner's
 * locks — a data fd closed after a lock call released the lock file's
 * locks (QEMU then wrote an image gvmd held).
 */
static void test_lock(void **state)
{
    (void)state;
    const struct gvm_store_ops *o = st->ops;
    const unsigned W = GVM_PERM_CONSISTENT_READ | GVM_PERM_WRITE | GVM_PERM_RESIZE;
    const unsigned WU = GVM_PERM_WRITE | GVM_PERM_RESIZE;
    struct gvm_file *a = NULL, *b = NULL, *c = NULL;
    unsigned conflict = 99;
    char p[128];

    snprintf(p, sizeof p, "%s/locked.img", dir);
    assert_int_equal(o->open(st, p, GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &a), 0);
    assert_int_equal(o->open(st, p, GVM_O_RDONLY, &b), 0);
    assert_int_equal(o->lock(a, W, WU, &conflict), 0);
    assert_int_equal(conflict, 0);
    assert_int_equal(o->lock(b, GVM_PERM_CONSISTENT_READ, 0, &conflict), 0);
    assert_int_equal(o->lock(b, W, WU, &conflict), -EAGAIN);
    assert_int_equal(conflict, GVM_PERM_WRITE);
    /* a's lock calls last on this thread, then another fd comes and goes. */
    assert_int_equal(o->lock(a, W, WU, &conflict), 0);
    assert_int_equal(o->open(st, p, GVM_O_RDWR, &c), 0);
    o->close(c);
    assert_int_equal(o->lock(b, W, WU, &conflict), -EAGAIN);
    /* Closing a drops its locks. */
    o->close(a);
    assert_int_equal(o->lock(b, W, WU, &conflict), 0);
    o->close(b);
    assert_int_equal(o->unlink(st, p), 0);
}

int main(void)
{
    glvol = getenv("GVM_GLUSTER_VOLUME");
    glhost = getenv("GVM_GLUSTER_HOST");
    if (!glvol || !*glvol) {
        fprintf(stderr, "SKIP: GVM_GLUSTER_VOLUME is not set (tests/run-all.sh sets it)\n");
        return 77;
    }
    if (!glhost || !*glhost)
        glhost = "127.0.0.1";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_io),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_all_dead),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
