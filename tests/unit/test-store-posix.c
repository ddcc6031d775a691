/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-store-posix.c — the dir backend: I/O slots, copies (server-side and
 * the pread/pwrite fallback), and confinement — every way a symlink could
 * lead outside the volume root is refused, while symlinks that stay inside
 * work.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"

struct fixture {
    char top[64];        /* temp dir holding root/ and outside/ */
    char root[128];
    char outside[128];
    struct gvm_store *st;
};

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->top, sizeof fx->top, "/tmp/test-store-posix.XXXXXX");
    assert_non_null(mkdtemp(fx->top));
    snprintf(fx->root, sizeof fx->root, "%s/root", fx->top);
    snprintf(fx->outside, sizeof fx->outside, "%s/outside", fx->top);
    assert_int_equal(mkdir(fx->root, 0755), 0);
    assert_int_equal(mkdir(fx->outside, 0755), 0);

    char p[256], q[256];
    snprintf(p, sizeof p, "%s/secret", fx->outside);
    write_file(p, "SECRET");
    snprintf(p, sizeof p, "%s/sub", fx->root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/sub/inside", fx->root);
    write_file(p, "INSIDE");
    /* links that leave the root */
    snprintf(p, sizeof p, "%s/abs-escape", fx->root);
    snprintf(q, sizeof q, "%s/secret", fx->outside);
    assert_int_equal(symlink(q, p), 0);
    snprintf(p, sizeof p, "%s/rel-escape", fx->root);
    assert_int_equal(symlink("../outside/secret", p), 0);
    snprintf(p, sizeof p, "%s/dir-escape", fx->root);
    assert_int_equal(symlink(fx->outside, p), 0);
    snprintf(p, sizeof p, "%s/proc-escape", fx->root);
    assert_int_equal(symlink("/proc/self/root/etc/hostname", p), 0);
    /* links that stay inside */
    snprintf(p, sizeof p, "%s/good-link", fx->root);
    assert_int_equal(symlink("sub/inside", p), 0);
    snprintf(p, sizeof p, "%s/sub/up-link", fx->root);
    assert_int_equal(symlink("../sub/inside", p), 0);

    struct gvm_error err = { 0 };
    if (store_posix_new(fx->root, &fx->st, &err) != 0)
        fail_msg("store_posix_new: %s", err.message);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    gvm_store_destroy(fx->st);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->top);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static void test_new_errors(void **state)
{
    (void)state;
    struct gvm_store *st = NULL;
    struct gvm_error err = { 0 };
    assert_true(store_posix_new("relative/dir", &st, &err) < 0);
    assert_int_equal(err.cls, GVM_ERR_INVALID_PARAMS);
    assert_null(st);
    gvm_error_clear(&err);
    assert_int_equal(store_posix_new("/nonexistent/gvm/dir", &st, &err), -ENOENT);
    assert_true(strstr(err.message, "/nonexistent/gvm/dir") != NULL);
}

static void test_rw(void **state)
{
    struct fixture *fx = *state;
    struct gvm_store *st = fx->st;
    struct gvm_file *f = NULL;

    assert_int_equal(st->ops->open(st, "new.img", GVM_O_RDWR, &f), -ENOENT);
    assert_int_equal(st->ops->open(st, "new.img",
                                   GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &f), 0);
    struct gvm_file *f2 = NULL;
    assert_int_equal(st->ops->open(st, "new.img",
                                   GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &f2),
                     -EEXIST);

    /* 3 MiB pattern written at an offset; reads across EOF are short. */
    size_t len = 3 * 1024 * 1024;
    unsigned char *buf = malloc(len), *back = malloc(len + 100);
    assert_non_null(buf);
    assert_non_null(back);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    assert_int_equal(st->ops->pwrite(f, buf, len, 4096), 0);
    assert_int_equal(st->ops->flush(f), 0);
    uint64_t size = 0;
    assert_int_equal(st->ops->getsize(f, &size), 0);
    assert_int_equal(size, len + 4096);
    assert_int_equal(st->ops->pread(f, back, len + 100, 4096), (ssize_t)len);
    assert_memory_equal(buf, back, len);
    assert_int_equal(st->ops->pread(f, back, 10, size + 10), 0);

    /* Punch a hole: reads zeros, size unchanged. */
    int r = st->ops->punch(f, 4096, 65536);
    if (r != -EOPNOTSUPP) {
        assert_int_equal(r, 0);
        assert_int_equal(st->ops->pread(f, back, 65536, 4096), 65536);
        for (size_t i = 0; i < 65536; i++)
            assert_int_equal(back[i], 0);
        assert_int_equal(st->ops->getsize(f, &size), 0);
        assert_int_equal(size, len + 4096);
    }

    /* Truncate and stat. */
    assert_int_equal(st->ops->truncate(f, 1 << 20), 0);
    struct gvm_stat sb;
    assert_int_equal(st->ops->stat(st, "new.img", &sb), 0);
    assert_int_equal(sb.size, 1 << 20);
    assert_true(sb.is_reg);
    assert_false(sb.is_dir);
    assert_true(sb.allocated > 0 && sb.allocated <= (1 << 20) + 65536);
    st->ops->close(f);

    /* Reopen read-only: writes fail. */
    assert_int_equal(st->ops->open(st, "new.img", GVM_O_RDONLY, &f), 0);
    assert_int_equal(st->ops->pwrite(f, buf, 16, 0), -EBADF);
    st->ops->close(f);

    /* TRUNC empties. */
    assert_int_equal(st->ops->open(st, "new.img", GVM_O_RDWR | GVM_O_TRUNC, &f), 0);
    assert_int_equal(st->ops->getsize(f, &size), 0);
    assert_int_equal(size, 0);
    st->ops->close(f);

    /* A directory cannot be opened as an image. */
    assert_int_equal(st->ops->open(st, "sub", GVM_O_RDONLY, &f), -EISDIR);
    free(buf);
    free(back);
}

static void check_copy(struct gvm_store *st, bool fallback)
{
    struct gvm_file *in = NULL, *out = NULL;
    const char *dst = fallback ? "copy-fb.img" : "copy.img";
    assert_int_equal(st->ops->open(st, "src.img",
                                   GVM_O_RDWR | GVM_O_CREAT | GVM_O_TRUNC, &in), 0);
    assert_int_equal(st->ops->open(st, dst,
                                   GVM_O_RDWR | GVM_O_CREAT | GVM_O_EXCL, &out), 0);
    size_t len = 9 * 1024 * 1024 + 123;   /* over two fallback runs */
    unsigned char *buf = malloc(len), *back = malloc(len);
    assert_non_null(buf);
    assert_non_null(back);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i % 251);
    assert_int_equal(st->ops->pwrite(in, buf, len, 0), 0);

    struct gvm_store_ops ops = *st->ops;
    struct gvm_store fake = { .ops = &ops, .priv = st->priv };
    if (fallback)
        ops.copy_range = NULL;        /* force pread/pwrite */
    else
        assert_int_equal(st->ops->copy_range(in, 0, out, 0, 4096), 4096);
    assert_int_equal(store_copy(&fake, in, 100, out, 512, len - 100), 0);
    assert_int_equal(st->ops->pread(out, back, len - 100, 512), (ssize_t)(len - 100));
    assert_memory_equal(buf + 100, back, len - 100);
    /* Source shorter than asked. */
    assert_int_equal(store_copy(&fake, in, len - 10, out, 0, 100), -ENODATA);
    st->ops->close(in);
    st->ops->close(out);
    free(buf);
    free(back);
}

static void test_copy_range(void **state)
{
    check_copy(((struct fixture *)*state)->st, false);
}

static void test_copy_fallback(void **state)
{
    check_copy(((struct fixture *)*state)->st, true);
}

static void test_names(void **state)
{
    struct fixture *fx = *state;
    struct gvm_store *st = fx->st;
    struct gvm_file *f = NULL;
    struct gvm_stat sb;

    assert_int_equal(st->ops->mkdir(st, "d1"), 0);
    assert_int_equal(st->ops->mkdir(st, "d1"), -EEXIST);
    assert_int_equal(store_mkdir_parents(st, "p/q/r/img.qcow2"), 0);
    assert_int_equal(st->ops->stat(st, "p/q/r", &sb), 0);
    assert_true(sb.is_dir);
    assert_int_equal(st->ops->open(st, "d1/a", GVM_O_RDWR | GVM_O_CREAT, &f), 0);
    st->ops->close(f);
    assert_int_equal(st->ops->rename(st, "d1/a", "p/q/b"), 0);
    assert_int_equal(st->ops->stat(st, "d1/a", &sb), -ENOENT);
    assert_int_equal(st->ops->stat(st, "p/q/b", &sb), 0);
    assert_int_equal(st->ops->unlink(st, "p/q/b"), 0);
    assert_int_equal(st->ops->unlink(st, "p/q/b"), -ENOENT);

    uint64_t fr = 0, tot = 0;
    assert_int_equal(st->ops->statvfs(st, &fr, &tot), 0);
    assert_true(tot > 0 && fr <= tot);

    /* Absolute paths are refused outright. */
    assert_int_equal(st->ops->open(st, "/etc/passwd", GVM_O_RDONLY, &f), -EINVAL);
    assert_int_equal(st->ops->stat(st, "/etc", &sb), -EINVAL);
}

static void test_links_inside(void **state)
{
    struct gvm_store *st = ((struct fixture *)*state)->st;
    struct gvm_file *f = NULL;
    char buf[16] = { 0 };
    assert_int_equal(st->ops->open(st, "good-link", GVM_O_RDONLY, &f), 0);
    assert_int_equal(st->ops->pread(f, buf, sizeof buf, 0), 6);
    assert_string_equal(buf, "INSIDE");
    st->ops->close(f);
    assert_int_equal(st->ops->open(st, "sub/up-link", GVM_O_RDONLY, &f), 0);
    st->ops->close(f);
}

static void test_confinement(void **state)
{
    struct fixture *fx = *state;
    struct gvm_store *st = fx->st;
    struct gvm_file *f = NULL;
    struct gvm_stat sb;
    const char *escapes[] = { "abs-escape", "rel-escape", "dir-escape/secret",
                              "proc-escape", "../outside/secret",
                              "sub/../../outside/secret" };

    for (size_t i = 0; i < GVM_ARRAY_SIZE(escapes); i++) {
        int r = st->ops->open(fx->st, escapes[i], GVM_O_RDONLY, &f);
        if (r != -EXDEV && r != -ELOOP)
            fail_msg("open(%s) = %d, want -EXDEV/-ELOOP", escapes[i], r);
        assert_null(f);
        r = st->ops->stat(st, escapes[i], &sb);
        if (r != -EXDEV && r != -ELOOP)
            fail_msg("stat(%s) = %d, want -EXDEV/-ELOOP", escapes[i], r);
    }
    /* Creating, removing, renaming and mkdir through a symlinked directory
     * that points outside are all refused, and nothing outside changes. */
    assert_int_equal(st->ops->open(st, "dir-escape/new",
                                   GVM_O_RDWR | GVM_O_CREAT, &f), -EXDEV);
    assert_int_equal(st->ops->unlink(st, "dir-escape/secret"), -EXDEV);
    assert_int_equal(st->ops->mkdir(st, "dir-escape/newdir"), -EXDEV);
    assert_int_equal(st->ops->rename(st, "dir-escape/secret", "stolen"), -EXDEV);
    assert_int_equal(st->ops->rename(st, "sub/inside", "dir-escape/planted"), -EXDEV);

    char p[256];
    struct stat sbuf;
    snprintf(p, sizeof p, "%s/secret", fx->outside);
    assert_int_equal(stat(p, &sbuf), 0);
    snprintf(p, sizeof p, "%s/new", fx->outside);
    assert_int_equal(stat(p, &sbuf), -1);
    snprintf(p, sizeof p, "%s/newdir", fx->outside);
    assert_int_equal(stat(p, &sbuf), -1);
    snprintf(p, sizeof p, "%s/planted", fx->outside);
    assert_int_equal(stat(p, &sbuf), -1);

    /* Unlinking the escaping link itself is allowed: it is a name inside
     * the volume, and the target is untouched. */
    assert_int_equal(st->ops->unlink(st, "abs-escape"), 0);
    snprintf(p, sizeof p, "%s/secret", fx->outside);
    assert_int_equal(stat(p, &sbuf), 0);
}

/* ->lock: QEMU's bytes, OFD semantics (two opens in one process are two
 * holders), -EAGAIN with the permission at fault, nothing left behind by a
 * refused call, everything gone at close. */
static void test_lock(void **state)
{
    struct fixture *fx = *state;
    const struct gvm_store_ops *ops = fx->st->ops;
    const unsigned W = GVM_PERM_CONSISTENT_READ | GVM_PERM_WRITE | GVM_PERM_RESIZE;
    const unsigned WU = GVM_PERM_WRITE | GVM_PERM_RESIZE;
    struct gvm_file *a, *b;
    unsigned conflict = 99;
    char p[256];
    int fd;

    assert_int_equal(ops->open(fx->st, "sub/inside", GVM_O_RDWR, &a), 0);
    assert_int_equal(ops->open(fx->st, "sub/inside", GVM_O_RDONLY, &b), 0);
    assert_int_equal(ops->lock(a, W, WU, &conflict), 0);
    assert_int_equal(conflict, 0);
    /* A reader sharing everything is no conflict; a second writer is. */
    assert_int_equal(ops->lock(b, GVM_PERM_CONSISTENT_READ, 0, &conflict), 0);
    assert_int_equal(ops->lock(b, W, WU, &conflict), -EAGAIN);
    assert_int_equal(conflict, GVM_PERM_WRITE);
    /* The refused call restored b's reader locks only: byte 101 is a's,
     * byte 100 both, and nothing of b's stands on 201. */
    snprintf(p, sizeof p, "%s/sub/inside", fx->root);
    fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = 101, .l_len = 1 };
    assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
    assert_int_equal(fl.l_type, F_RDLCK);
    ops->close(a);
    fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET,
                         .l_start = 201, .l_len = 1 };
    assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
    assert_int_equal(fl.l_type, F_UNLCK);
    /* With a gone, b may write; a reader that refuses writers (what
     * `qemu-img info` takes: 100 and 201, then a test of 101) finds b. */
    assert_int_equal(ops->lock(b, W, WU, &conflict), 0);
    fl = (struct flock){ .l_type = F_RDLCK, .l_whence = SEEK_SET,
                         .l_start = 201, .l_len = 1 };
    assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);   /* shared bytes */
    fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET,
                         .l_start = 101, .l_len = 1 };
    assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
    assert_int_equal(fl.l_type, F_RDLCK);
    ops->close(b);
    fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET,
                         .l_start = 100, .l_len = 4 };
    assert_int_equal(fcntl(fd, F_OFD_GETLK, &fl), 0);
    assert_int_equal(fl.l_type, F_UNLCK);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_errors),
        cmocka_unit_test_setup_teardown(test_rw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confinement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
