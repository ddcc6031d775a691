/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-qcow2-resize.c — img_resize (gvmd/qcow2-resize.c, raw.c) against
 * qemu-img: after a grow `qemu-img info` reports the new size, `qemu-img
 * check` is clean, and `qemu-img compare` against a copy taken before says
 * the old range is unchanged and the new range reads zeros (compare treats
 * the larger image's extra bytes as having to be zeros).  Cases: no L1
 * growth, an L1 that must grow (512-byte clusters), an old size that ends
 * inside a data cluster with garbage past the end, a backing file longer
 * than the image (it must not show through), a v2 image, a raw image,
 * shrinking refused.  Then crash safety: a child process grows an image
 * through the fault-injecting store and is killed before its Nth write or
 * flush, for every N until the grow completes; each time the image must
 * read as the old or the new size with the old content, qemu-img check
 * must find no corruption (leaks only while the dirty bit says the next
 * write-open repairs them), and after a write-open it must be clean.
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
#include "store.h"
#include "qcow2-fixture.h"

static int setup(void **state) { return qf_setup(state, "test-qcow2-resize"); }

static bool have_qemu(void)
{
    return system("command -v qemu-img >/dev/null 2>&1 && "
                  "command -v qemu-io >/dev/null 2>&1") == 0;
}

/* Run a shell command in the fixture directory; its exit status. */
static int sh(struct fixture *fx, const char *fmt, ...) GVM_PRINTF(2, 3);
static int sh(struct fixture *fx, const char *fmt, ...)
{
    char cmd[1024];
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && ( ", fx->dir);
    va_list ap;

    va_start(ap, fmt);
    n += vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " ) >/dev/null 2>&1");
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static uint64_t qemu_size(struct fixture *fx, const char *name)
{
    char cmd[256], buf[64] = "";
    snprintf(cmd, sizeof cmd, "qemu-img info --output=json '%s/%s' | "
             "jq '.\"virtual-size\"'", fx->dir, name);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(buf, sizeof buf, p))
        buf[0] = 0;
    pclose(p);
    return strtoull(buf, NULL, 10);
}

static struct img *open_rw(struct fixture *fx, const char *name,
                           enum img_format fmt)
{
    struct gvm_error err = { 0 };
    struct img *img = NULL;

    if (img_open(fx->st, name, fmt, IMG_OPEN_RW, NULL, 0, &img, &err) != 0)
        fail_msg("opening %s: %s", name, err.message);
    return img;
}

static void grow(struct fixture *fx, const char *name, enum img_format fmt,
                 uint64_t size)
{
    struct img *img = open_rw(fx, name, fmt);
    int r = img_resize(img, size);
    if (r != 0)
        fail_msg("img_resize(%s, %llu): %s", name, (unsigned long long)size,
                 strerror(-r));
    assert_int_equal(img_virtual_size(img), size);
    img_close(img);
}

/* The oracle: size, check, and compare with the copy taken before. */
static void verify(struct fixture *fx, const char *name, const char *before,
                   uint64_t size)
{
    assert_int_equal(qemu_size(fx, name), size);
    assert_int_equal(sh(fx, "qemu-img check -q %s", name), 0);
    assert_int_equal(sh(fx, "qemu-img compare -q %s %s", name, before), 0);
    /* and in strict mode it must differ (the sizes do): compare looked */
    assert_int_not_equal(sh(fx, "qemu-img compare -q -s %s %s", name, before), 0);
}

static void test_simple(void **state)
{
    struct fixture *fx = *state;
    if (!have_qemu())
        skip();
    assert_int_equal(sh(fx, "qemu-img create -q -f qcow2 a.qcow2 1M && "
                        "qemu-io -c 'write -P 0x5a 0 1M' a.qcow2 && "
                        "qemu-img convert -O raw a.qcow2 a.raw"), 0);
    grow(fx, "a.qcow2", IMG_FMT_QCOW2, 3 << 20);
    verify(fx, "a.qcow2", "a.raw", 3 << 20);
    /* Growing to the same size does nothing; the new range is writable. */
    grow(fx, "a.qcow2", IMG_FMT_QCOW2, 3 << 20);
    assert_int_equal(sh(fx, "qemu-io -c 'write -P 0x66 2M 64k' a.qcow2 && "
                        "qemu-io -c 'read -P 0x66 2M 64k' a.qcow2 && "
                        "qemu-io -c 'read -P 0 1M 1M' a.qcow2"), 0);
    assert_int_equal(sh(fx, "qemu-img check -q a.qcow2"), 0);
}

static void test_l1_growth(void **state)
{
    struct fixture *fx = *state;
    if (!have_qemu())
        skip();
    /* 512-byte clusters: one L1 entry maps 32 KiB, so 1 MiB has 32 and
     * 64 MiB needs 2048 (four clusters of L1). */
    assert_int_equal(sh(fx, "qemu-img create -q -f qcow2 -o cluster_size=512 "
                        "b.qcow2 1M && "
                        "qemu-io -c 'write -P 0x11 0 300k' -c 'write -P 0x12 700k 324k' "
                        "-c 'write -z 400k 64k' b.qcow2 && "
                        "qemu-img convert -O raw b.qcow2 b.raw"), 0);
    grow(fx, "b.qcow2", IMG_FMT_QCOW2, 64 << 20);
    verify(fx, "b.qcow2", "b.raw", 64 << 20);
    assert_int_equal(sh(fx, "test \"$(qemu-img info --output=json b.qcow2 | "
                        "jq '.\"format-specific\".data.\"corrupt\"')\" = false"), 0);
    /* Data written far out lands in tables the new L1 maps. */
    assert_int_equal(sh(fx, "qemu-io -c 'write -P 0x77 60M 64k' b.qcow2 && "
                        "qemu-io -c 'read -P 0x77 60M 64k' b.qcow2 && "
                        "qemu-io -c 'read -P 0x12 700k 324k' b.qcow2"), 0);
    assert_int_equal(sh(fx, "qemu-img check -q b.qcow2"), 0);
    /* Twice more, the second from the grown table. */
    assert_int_equal(sh(fx, "qemu-img convert -O raw b.qcow2 b2.raw"), 0);
    grow(fx, "b.qcow2", IMG_FMT_QCOW2, 200 << 20);
    verify(fx, "b.qcow2", "b2.raw", 200 << 20);
}

static void test_unaligned_tail(void **state)
{
    struct fixture *fx = *state;
    if (!have_qemu())
        skip();
    /* The last cluster is half inside the image: put garbage past the end
     * by writing it while the image is bigger, then shrinking the header
     * size field with qemu-img resize --shrink would free the cluster, so
     * write the pattern at the edge and poke the size field instead. */
    assert_int_equal(sh(fx, "qemu-img create -q -f qcow2 c.qcow2 1088k && "
                        "qemu-io -c 'write -P 0x33 960k 128k' c.qcow2 && "
                        "printf '\\000\\000\\000\\000\\000\\020\\040\\000' | "
                        "dd of=c.qcow2 bs=1 seek=24 conv=notrunc status=none && "
                        "qemu-img convert -O raw c.qcow2 c.raw"), 0);
    assert_int_equal(qemu_size(fx, "c.qcow2"), 1056768);   /* 1032k */
    grow(fx, "c.qcow2", IMG_FMT_QCOW2, 2 << 20);
    verify(fx, "c.qcow2", "c.raw", 2 << 20);
    assert_int_equal(sh(fx, "qemu-io -c 'read -P 0 1032k 56k' c.qcow2"), 0);
}

static void test_backing_longer(void **state)
{
    struct fixture *fx = *state;
    struct gvm_error err = { 0 };
    struct img *img = NULL;
    if (!have_qemu())
        skip();
    assert_int_equal(sh(fx, "qemu-img create -q -f qcow2 base.qcow2 4M && "
                        "qemu-io -c 'write -P 0x11 0 4M' base.qcow2 && "
                        "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 d.qcow2 1M && "
                        "qemu-io -c 'write -P 0x22 64k 64k' d.qcow2 && "
                        "qemu-img convert -O raw d.qcow2 d.raw"), 0);
    if (img_open(fx->st, "d.qcow2", IMG_FMT_QCOW2, IMG_OPEN_RW, NULL, 0, &img, &err) != 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(img_resize(img, 3 << 20), 0);
    img_close(img);
    verify(fx, "d.qcow2", "d.raw", 3 << 20);
    assert_int_equal(sh(fx, "qemu-io -c 'read -P 0 1M 2M' d.qcow2"), 0);
}

static void test_v2(void **state)
{
    struct fixture *fx = *state;
    if (!have_qemu())
        skip();
    assert_int_equal(sh(fx, "qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=512 "
                        "e.qcow2 1M && qemu-io -c 'write -P 0x44 100k 200k' e.qcow2 && "
                        "qemu-img convert -O raw e.qcow2 e.raw"), 0);
    grow(fx, "e.qcow2", IMG_FMT_QCOW2, 16 << 20);
    verify(fx, "e.qcow2", "e.raw", 16 << 20);
}

static void test_raw_and_refusals(void **state)
{
    struct fixture *fx = *state;
    struct img *img;
    if (!have_qemu())
        skip();
    assert_int_equal(sh(fx, "qemu-img create -q -f raw r.img 1M && "
                        "qemu-io -f raw -c 'write -P 0x55 0 1M' r.img && cp r.img r0.raw"), 0);
    grow(fx, "r.img", IMG_FMT_RAW, 5 << 20);
    assert_int_equal(sh(fx, "test $(stat -c %%s r.img) -eq 5242880 && "
                        "qemu-img compare -q -f raw -F raw r.img r0.raw"), 0);

    assert_int_equal(sh(fx, "qemu-img create -q -f qcow2 s.qcow2 2M"), 0);
    img = open_rw(fx, "s.qcow2", IMG_FMT_QCOW2);
    assert_int_equal(img_resize(img, 1 << 20), -ENOTSUP);
    assert_int_equal(img_resize(img, (2 << 20) + 100), -EINVAL);
    img_close(img);
    img = open_rw(fx, "r.img", IMG_FMT_RAW);
    assert_int_equal(img_resize(img, 1 << 20), -ENOTSUP);
    img_close(img);
    assert_int_equal(qemu_size(fx, "s.qcow2"), 2 << 20);
}

#ifdef GVMD_FAULT_INJECTION    /* a test build (-Dfault_injection=true) */
/* The v3 dirty bit (incompatible feature bit 0, header byte 79). */
static bool dirty_bit(struct fixture *fx, const char *name)
{
    char path[160];
    unsigned char b[8] = { 0 };
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    if (fseek(f, 72, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8)
        b[7] = 0;
    fclose(f);
    return b[7] & 1;
}

/* One crash run: grow name (from proto) to size in a child whose store
 * kills it at `spec`.  Returns true if the child was killed. */
static bool crash_once(struct fixture *fx, const char *proto, const char *spec,
                       uint64_t old_size, uint64_t size)
{
    struct gvm_error err = { 0 };
    pid_t pid;
    int status;

    assert_int_equal(sh(fx, "cp %s.qcow2 k.qcow2", proto), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct gvm_store *inner = NULL, *st = NULL;
        struct img *img = NULL;
        if (store_posix_new(fx->dir, &inner, &err) != 0 ||
            store_faulty_wrap(inner, spec, &st) != 0 ||
            img_open(st, "k.qcow2", IMG_FMT_QCOW2, IMG_OPEN_RW, NULL, 0, &img, &err) != 0)
            _exit(10);
        if (img_resize(img, size) != 0)
            _exit(11);
        img_close(img);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) != 0)
            fail_msg("%s: the child failed with %d", spec, WEXITSTATUS(status));
        assert_int_equal(qemu_size(fx, "k.qcow2"), size);
        assert_int_equal(sh(fx, "qemu-img check -q k.qcow2"), 0);
        assert_int_equal(sh(fx, "qemu-img compare -q k.qcow2 %s.raw", proto), 0);
        return false;
    }
    assert_true(WIFSIGNALED(status));
    uint64_t got = qemu_size(fx, "k.qcow2");
    if (got != old_size && got != size)
        fail_msg("%s: size %llu is neither old nor new", spec, (unsigned long long)got);
    int chk = sh(fx, "qemu-img check -q k.qcow2");
    if (chk != 0 && (chk != 3 || !dirty_bit(fx, "k.qcow2")))
        fail_msg("%s: qemu-img check exit %d after the crash (leaks are "
                 "allowed only with the dirty bit set)", spec, chk);
    if (sh(fx, "qemu-img compare -q k.qcow2 %s.raw", proto) != 0)
        fail_msg("%s: content changed after the crash", spec);
    /* The next write-open repairs what a crash may leak (v3: dirty bit). */
    img_close(open_rw(fx, "k.qcow2", IMG_FMT_QCOW2));
    chk = sh(fx, "qemu-img check -q k.qcow2");
    if (chk != 0)
        fail_msg("%s: qemu-img check exit %d after a write-open", spec, chk);
    return true;
}

static void test_crash(void **state)
{
    struct fixture *fx = *state;
    const char *ops[] = { "write", "flush" };
    unsigned runs = 0;
    if (!have_qemu())
        skip();
    /* L1 growth and an unaligned old size with data in its last cluster:
     * every step of qcow2-resize.c happens. */
    /* 4 KiB clusters: one L1 entry maps 2 MiB; 1 MiB + 512 ends inside
     * a data cluster, 8 MiB needs four entries where there is one. */
    assert_int_equal(sh(fx, "qemu-img create -q -f qcow2 -o cluster_size=4096 "
                        "p.qcow2 1049088 && "
                        "qemu-io -c 'write -P 0x21 0 64k' -c 'write -P 0x22 1000k 24k' "
                        "-c 'write -P 0x23 1M 512' p.qcow2 && "
                        "qemu-img convert -O raw p.qcow2 p.raw"), 0);
    for (size_t o = 0; o < 2; o++) {
        for (unsigned n = 1; n < 200; n++) {
            char spec[32];
            snprintf(spec, sizeof spec, "%s:%u:kill", ops[o], n);
            runs++;
            if (!crash_once(fx, "p", spec, 1049088, 8 << 20))
                break;
        }
    }
    assert_true(runs > 6);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_simple, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_l1_growth, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_unaligned_tail, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_backing_longer, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_v2, setup, qf_teardown),
        cmocka_unit_test_setup_teardown(test_raw_and_refusals, setup, qf_teardown),
#ifdef GVMD_FAULT_INJECTION
        cmocka_unit_test_setup_teardown(test_crash, setup, qf_teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
