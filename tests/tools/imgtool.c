/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * imgtool — a command line over gvmd's image engine, for tests: prints what
 * qemu-img prints (map as `qemu-img map --output=json`), dumps guest
 * content, writes patterns, creates, checks and rebases images.
 *
 *   imgtool [--gluster HOST:VOLUME | --dir ROOT] [-F BACKING_FMT] COMMAND ...
 *
 * Without --dir/--gluster, relative paths are relative to the current
 * directory and absolute paths to "/".  Errors: "imgtool: CLASS: message",
 * exit 1 (check: exit 2 on corruptions, 3 on leaks only, like qemu-img).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "store.h"
#include "util.h"

static const char *backing_hint;

static void die_err(const struct gvm_error *err)
{
    fprintf(stderr, "imgtool: %s: %s\n", gvm_error_class_name(err->cls), err->message);
    exit(1);
}

static void die(const char *cls, const char *fmt, ...) GVM_PRINTF(2, 3);
static void die(const char *cls, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "imgtool: %s: ", cls);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr,
        "usage: imgtool [--gluster HOST:VOLUME | --dir ROOT] [-F FMT] COMMAND ...\n"
        "  caps DIR            (what the store supports, JSON)\n"
        "  info PATH FMT\n"
        "  map PATH FMT [OFF LEN]\n"
        "  read PATH FMT OUTFILE\n"
        "  write PATH FMT OFF LEN PATTERN\n"
        "  zero PATH FMT OFF LEN\n"
        "  ops PATH FMT OPSFILE   (lines \"w OFF LEN PATTERN\" / \"z OFF LEN\", one open)\n"
        "  create PATH FMT SIZE [--cluster-size N] [--compat 0.10|1.1]\n"
        "         [--refcount-bits N] [--backing NAME --backing-fmt FMT] [--lazy-refcounts]\n"
        "  check PATH FMT [--repair leaks|all]\n"
        "  set-backing PATH NAME FMT   (NAME \"\" removes the backing file)\n");
    exit(2);
}

static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        die("InvalidParams", "'%s' is not a size.", s);
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    case 't': case 'T': v <<= 40; end++; break;
    default: break;
    }
    if (*end)
        die("InvalidParams", "'%s' is not a size.", s);
    return v;
}

static enum img_format parse_fmt(const char *s)
{
    enum img_format f;
    if (img_format_parse(s, &f) < 0)
        die("InvalidParams", "Unknown format '%s' (raw or qcow2).", s);
    return f;
}

static struct img *open_img(struct gvm_store *st, const char *path,
                            const char *fmt, unsigned flags)
{
    struct gvm_error err = { 0 };
    struct img *img;
    if (img_open_hint(st, path, parse_fmt(fmt), flags, NULL, 0, backing_hint,
                      &img, &err) < 0)
        die_err(&err);
    return img;
}

static void die_errno(int r, const char *what, const char *path,
                      const struct img *img)
{
    struct gvm_error err = { 0 };
    const char *msg = img ? img_corrupt_message(img) : NULL;
    if (r == -EUCLEAN && msg)
        die("Corrupt", "%s", msg);
    enum gvm_error_class cls = r == -EUCLEAN ? GVM_ERR_CORRUPT
                                             : gvm_error_class_from_errno(r);
    gvm_error_set_errno(&err, cls, r, "%s '%s' failed", what, path);
    die_err(&err);
}

static int cmd_info(struct gvm_store *st, int argc, char **argv)
{
    if (argc != 2)
        usage();
    struct img *img = open_img(st, argv[0], argv[1], IMG_OPEN_NOBACKING);
    struct img_info i;
    int r = img_get_info(img, &i);
    if (r < 0)
        die_errno(r, "info", argv[0], img);
    printf("{\"format\": \"%s\", \"virtual-size\": %" PRIu64 ", \"actual-size\": %" PRIu64,
           img_format_name(i.format), i.virtual_size, i.actual_size);
    if (i.format == IMG_FMT_QCOW2) {
        printf(", \"cluster-size\": %u, \"compat\": \"%s\", \"refcount-bits\": %u",
               i.cluster_size, i.qcow2_version == 2 ? "0.10" : "1.1", i.refcount_bits);
        printf(", \"lazy-refcounts\": %s, \"dirty\": %s, \"corrupt\": %s, \"snapshots\": %u",
               i.lazy_refcounts ? "true" : "false", i.dirty ? "true" : "false",
               i.corrupt ? "true" : "false", i.nb_snapshots);
        if (i.backing_filename)
            printf(", \"backing-filename\": \"%s\"", i.backing_filename);
        if (i.backing_format)
            printf(", \"backing-format\": \"%s\"", i.backing_format);
    }
    printf("}\n");
    img_info_clear(&i);
    img_close(img);
    return 0;
}

static int cmd_map(struct gvm_store *st, int argc, char **argv)
{
    if (argc != 2 && argc != 4)
        usage();
    struct img *img = open_img(st, argv[0], argv[1], 0);
    uint64_t off = 0, len = UINT64_MAX;
    if (argc == 4) {
        off = parse_size(argv[2]);
        len = parse_size(argv[3]);
    }
    struct img_extent *e;
    size_t n;
    int r = img_map(img, off, len, &e, &n);
    if (r < 0)
        die_errno(r, "map", argv[0], img);
    printf("[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d,"
               " \"present\": %s, \"zero\": %s, \"data\": %s",
               i ? ",\n" : "", e[i].start, e[i].length, e[i].depth,
               e[i].present ? "true" : "false", e[i].zero ? "true" : "false",
               e[i].data ? "true" : "false");
        if (e[i].has_offset)
            printf(", \"offset\": %" PRIu64, e[i].offset);
        printf("}");
    }
    printf("]\n");
    free(e);
    img_close(img);
    return 0;
}

static int cmd_read(struct gvm_store *st, int argc, char **argv)
{
    if (argc != 3)
        usage();
    struct img *img = open_img(st, argv[0], argv[1], 0);
    FILE *out = fopen(argv[2], "wb");
    if (!out)
        die("StorageError", "Cannot create '%s': %s.", argv[2], strerror(errno));
    uint64_t size = img_virtual_size(img);
    size_t chunk = 16u << 20;
    uint8_t *buf = malloc(chunk);
    if (!buf)
        die("Internal", "Out of memory.");
    /* Zero chunks become holes: the output stays as sparse as qemu-img
     * convert's, and tests stay fast. */
    size_t zchunk = 64 * 1024;
    for (uint64_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
        int r = img_read(img, buf, off, n);
        if (r < 0)
            die_errno(r, "read", argv[0], img);
        for (size_t p = 0; p < n; p += zchunk) {
            size_t m = n - p < zchunk ? n - p : zchunk;
            bool zero = buf[p] == 0 && memcmp(buf + p, buf + p + 1, m - 1) == 0;
            if (zero) {
                if (fseeko(out, (off_t)m, SEEK_CUR) != 0)
                    die("StorageError", "Cannot seek in '%s'.", argv[2]);
            } else if (fwrite(buf + p, 1, m, out) != m) {
                die("StorageError", "Cannot write '%s'.", argv[2]);
            }
        }
    }
    struct stat sb;
    if (fflush(out) != 0 || fstat(fileno(out), &sb) != 0 ||
        (S_ISREG(sb.st_mode) && ftruncate(fileno(out), (off_t)size) != 0))
        die("StorageError", "Cannot write '%s'.", argv[2]);
    if (fclose(out) != 0)
        die("StorageError", "Cannot write '%s'.", argv[2]);
    free(buf);
    img_close(img);
    return 0;
}

static int cmd_write(struct gvm_store *st, int argc, char **argv, bool zero)
{
    if (argc != (zero ? 4 : 5))
        usage();
    struct img *img = open_img(st, argv[0], argv[1], IMG_OPEN_RW);
    uint64_t off = parse_size(argv[2]), len = parse_size(argv[3]);
    int r;
    if (zero) {
        r = img_write_zeroes(img, off, len);
    } else {
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
            die("Internal", "Out of memory.");
        memset(buf, (int)strtol(argv[4], NULL, 0), len);
        r = img_write(img, buf, off, len);
        free(buf);
    }
    if (r == 0)
        r = img_flush(img);
    if (r < 0)
        die_errno(r, zero ? "zero" : "write", argv[0], img);
    img_close(img);
    return 0;
}

/* ops (added by qcow2w): many writes and zero writes in one open, so a
 * test on gluster pays the connection set-up once; each line is also
 * easy to turn into a qemu-io command for the oracle. */
static int cmd_ops(struct gvm_store *st, int argc, char **argv)
{
    if (argc != 3)
        usage();
    FILE *f = fopen(argv[2], "r");
    if (!f)
        die("StorageError", "Cannot open '%s': %s.", argv[2], strerror(errno));
    struct img *img = open_img(st, argv[0], argv[1], IMG_OPEN_RW);
    char line[256], op[8], a[64], b[64], c[64];
    uint8_t *buf = NULL;
    size_t cap = 0;
    while (fgets(line, sizeof(line), f)) {
        int n = sscanf(line, "%7s %63s %63s %63s", op, a, b, c);
        if (n < 1 || op[0] == '#')
            continue;
        uint64_t off = n > 1 ? parse_size(a) : 0, len = n > 2 ? parse_size(b) : 0;
        int r;
        if (strcmp(op, "z") == 0 && n == 3) {
            r = img_write_zeroes(img, off, len);
        } else if (strcmp(op, "w") == 0 && n == 4) {
            if (len > cap) {
                free(buf);
                cap = len;
                buf = malloc(cap);
                if (!buf)
                    die("Internal", "Out of memory.");
            }
            memset(buf, (int)strtol(c, NULL, 0), len);
            r = img_write(img, buf, off, len);
        } else {
            die("InvalidParams", "Bad line in '%s': %s", argv[2], line);
        }
        if (r < 0)
            die_errno(r, op[0] == 'z' ? "zero" : "write", argv[0], img);
    }
    fclose(f);
    free(buf);
    int r = img_flush(img);
    if (r < 0)
        die_errno(r, "flush", argv[0], img);
    img_close(img);
    return 0;
}

static int cmd_create(struct gvm_store *st, int argc, char **argv)
{
    if (argc < 3)
        usage();
    struct img_create_opts o = { 0 };
    o.format = parse_fmt(argv[1]);
    o.size = parse_size(argv[2]);
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--lazy-refcounts") == 0) {
            o.lazy_refcounts = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--cluster-size") == 0)
            o.cluster_size = (uint32_t)parse_size(v);
        else if (strcmp(a, "--compat") == 0)
            o.qcow2_version = strcmp(v, "0.10") == 0 ? 2 : strcmp(v, "1.1") == 0 ? 3 : -1;
        else if (strcmp(a, "--refcount-bits") == 0)
            o.refcount_bits = (unsigned)parse_size(v);
        else if (strcmp(a, "--backing") == 0)
            o.backing_name = v;
        else if (strcmp(a, "--backing-fmt") == 0)
            o.backing_format = v;
        else
            usage();
    }
    struct gvm_error err = { 0 };
    if (img_create(st, argv[0], &o, NULL, &err) < 0)
        die_err(&err);
    return 0;
}

static int cmd_check(struct gvm_store *st, int argc, char **argv)
{
    unsigned repair = 0;
    if (argc == 4 && strcmp(argv[2], "--repair") == 0) {
        if (strcmp(argv[3], "leaks") == 0)
            repair = IMG_REPAIR_LEAKS;
        else if (strcmp(argv[3], "all") == 0)
            repair = IMG_REPAIR_ALL;
        else
            usage();
    } else if (argc != 2) {
        usage();
    }
    struct img *img = open_img(st, argv[0], argv[1],
                               IMG_OPEN_NOBACKING | (repair ? IMG_OPEN_RW : 0));
    struct img_check_result res;
    struct gvm_error err = { 0 };
    if (img_check(img, repair, &res, &err) < 0)
        die_err(&err);
    printf("{\"corruptions\": %" PRIu64 ", \"leaks\": %" PRIu64
           ", \"corruptions-fixed\": %" PRIu64 ", \"leaks-fixed\": %" PRIu64
           ", \"check-errors\": %" PRIu64 ", \"allocated-clusters\": %" PRIu64
           ", \"total-clusters\": %" PRIu64 ", \"image-end-offset\": %" PRIu64 "}\n",
           res.corruptions, res.leaks, res.corruptions_fixed, res.leaks_fixed,
           res.check_errors, res.allocated_clusters, res.total_clusters,
           res.image_end_offset);
    img_close(img);
    if (res.check_errors)
        return 1;
    /* (qcow2w) after a repair, corruptions/leaks are what is left (the
     * check runs again, like qemu-img's), so they alone decide. */
    if (res.corruptions)
        return 2;
    if (res.leaks)
        return 3;
    return 0;
}

static int cmd_set_backing(struct gvm_store *st, int argc, char **argv)
{
    if (argc != 3)
        usage();
    struct img *img = open_img(st, argv[0], "qcow2", IMG_OPEN_RW | IMG_OPEN_NOBACKING);
    struct gvm_error err = { 0 };
    const char *name = argv[1][0] ? argv[1] : NULL;
    const char *fmt = name && argv[2][0] ? argv[2] : NULL;
    if (img_set_backing(img, name, fmt, &err) < 0)
        die_err(&err);
    img_close(img);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *gluster = NULL;
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--gluster") == 0 && i + 1 < argc)
            gluster = argv[++i];
        else if (strcmp(argv[i], "-F") == 0 && i + 1 < argc)
            backing_hint = argv[++i];
        else
            usage();
    }
    if (i + 1 >= argc)
        usage();
    const char *cmd = argv[i++];
    char *path = argv[i];

    struct gvm_error err = { 0 };
    struct gvm_store *st = NULL;
    char cwd[PATH_MAX];
    if (gluster) {
        char *host = strdup(gluster), *vol = host ? strchr(host, ':') : NULL;
        if (!vol)
            usage();
        *vol++ = '\0';
        struct gvm_server srv = { .transport = GVM_TRANSPORT_TCP, .host = host };
        struct gvm_gluster_cfg cfg = { .volume = vol, .servers = &srv, .nservers = 1,
                                       .logfile = "/dev/null" };
        if (store_gluster_new(&cfg, &st, &err) < 0)
            die_err(&err);
        free(host);
        while (*path == '/')
            path++;
    } else {
        if (!dir) {
            if (path[0] == '/') {
                dir = "/";
                while (*path == '/')
                    path++;
            } else {
                if (!getcwd(cwd, sizeof(cwd)))
                    die("StorageError", "getcwd: %s.", strerror(errno));
                dir = cwd;
            }
        }
        if (store_posix_new(dir, &st, &err) < 0)
            die_err(&err);
    }
    argv[i] = path;
    /* (qcow2w) GVMD_FAULT=write:N:kill etc.: crash-consistency tests. */
    if (store_faulty_wrap_env(&st, &err) < 0)
        die_err(&err);

    int argn = argc - i;
    char **args = argv + i;
    int rc;
    if (strcmp(cmd, "caps") == 0) {
        /* what the store offers that map results depend on */
        printf("{\"seek-hole\": %s}\n", st->ops->seek_hole ? "true" : "false");
        rc = 0;
    } else if (strcmp(cmd, "info") == 0)
        rc = cmd_info(st, argn, args);
    else if (strcmp(cmd, "map") == 0)
        rc = cmd_map(st, argn, args);
    else if (strcmp(cmd, "read") == 0)
        rc = cmd_read(st, argn, args);
    else if (strcmp(cmd, "write") == 0)
        rc = cmd_write(st, argn, args, false);
    else if (strcmp(cmd, "zero") == 0)
        rc = cmd_write(st, argn, args, true);
    else if (strcmp(cmd, "ops") == 0)
        rc = cmd_ops(st, argn, args);
    else if (strcmp(cmd, "create") == 0)
        rc = cmd_create(st, argn, args);
    else if (strcmp(cmd, "check") == 0)
        rc = cmd_check(st, argn, args);
    else if (strcmp(cmd, "set-backing") == 0)
        rc = cmd_set_backing(st, argn, args);
    else
        usage();
    if (gluster) {
        /* glfs_fini takes ~10 s; a short-lived tool need not wait for it. */
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    gvm_store_destroy(st);
    return rc;
}
