/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-diskxml.c — domain-disk-xml: the libvirt <disk> element through which
 * a domain reaches an image, natively over gluster (every server of the
 * volume as a <host>, in the volume's order, so QEMU fails over as gvmd
 * does) or as a file on a FUSE mount.  Needs no libvirt: it only writes XML.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "jsonutil.h"
#include "resolve.h"
#include "rpc-diskxml.h"
#include "rpc.h"

static void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

/* s escaped for an XML attribute value quoted with '. */
static void put_attr(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':  fputs("&amp;", f); break;
        case '<':  fputs("&lt;", f); break;
        case '>':  fputs("&gt;", f); break;
        case '\'': fputs("&apos;", f); break;
        case '"':  fputs("&quot;", f); break;
        default:   fputc(*s, f);
        }
    }
}

/* A libvirt target dev name: letters and digits (vda, sdb, hdc, xvda1). */
static bool target_valid(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
              (t[i] >= '0' && t[i] <= '9')))
            return false;
    return true;
}

/* The format of an image that is not catalogued: qcow2 by its magic, else
 * raw (as libvirt would be told; it never probes). */
static int probe_format(struct resolved *r, const char **format,
                        struct gvm_error *err)
{
    struct gvm_file *f = NULL;
    unsigned char magic[4] = { 0 };
    _cleanup_free_ char *name = resolve_name(r->vol.name, r->path);
    ssize_t n;
    int rc;

    rc = r->store->ops->open(r->store, r->path, GVM_O_RDONLY, &f);
    if (rc < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(rc), rc,
                            "Cannot open image %s", name ? name : r->path);
        return -1;
    }
    n = r->store->ops->pread(f, magic, sizeof(magic), 0);
    r->store->ops->close(f);
    if (n < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, (int)n,
                            "Cannot read image %s", name ? name : r->path);
        return -1;
    }
    *format = n == 4 && memcmp(magic, "QFI\xfb", 4) == 0 ? "qcow2" : "raw";
    return 0;
}

/* <disk type='file'> at root/rest (rest: one or more '/'-joined parts). */
static void put_file_disk(FILE *f, const char *format, const char *root,
                          const char *const *rest, size_t nrest,
                          const char *target)
{
    size_t rl = strlen(root);

    fputs("<disk type='file' device='disk'>\n  <driver name='qemu' type='", f);
    put_attr(f, format);
    fputs("'/>\n  <source file='", f);
    put_attr(f, root);
    for (size_t i = 0; i < nrest; i++) {
        if (i > 0 || rl == 0 || root[rl - 1] != '/')
            fputc('/', f);
        put_attr(f, rest[i]);
    }
    fputs("'/>\n  <target dev='", f);
    put_attr(f, target);
    fputs("' bus='virtio'/>\n</disk>", f);
}

static void put_gluster_disk(FILE *f, const char *format,
                             const struct catalog_volume *vol, const char *path,
                             const char *target)
{
    fputs("<disk type='network' device='disk'>\n  <driver name='qemu' type='", f);
    put_attr(f, format);
    fputs("'/>\n  <source protocol='gluster' name='", f);
    put_attr(f, vol->gluster_volume);
    fputc('/', f);
    put_attr(f, path);
    fputs("'>\n", f);
    for (size_t i = 0; i < vol->nservers; i++) {
        const struct gvm_server *s = &vol->servers[i];

        if (s->transport == GVM_TRANSPORT_UNIX) {
            fputs("    <host transport='unix' socket='", f);
            put_attr(f, s->socket ? s->socket : "");
            fputs("'/>\n", f);
            continue;
        }
        fputs("    <host name='", f);
        put_attr(f, s->host ? s->host : "");
        fprintf(f, "' port='%d'", s->port ? s->port : GVM_GLUSTER_PORT);
        if (s->transport == GVM_TRANSPORT_RDMA)
            fputs(" transport='rdma'", f);
        fputs("/>\n", f);
    }
    fputs("  </source>\n  <target dev='", f);
    put_attr(f, target);
    fputs("' bus='virtio'/>\n</disk>", f);
}

int rpc_diskxml_build(const struct catalog_volume *vol, const char *path,
                      const char *format, const char *target, bool fuse,
                      const char *fuse_mount, char **xml,
                      struct gvm_error *err)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;

    {
        _cleanup_(fclosep) FILE *f = open_memstream(&buf, &len);

        if (!f)
            return gvm_error_oom(err);
        if (vol->backend == CATALOG_BACKEND_DIR) {
            /* A dir volume is local files whatever the mode. */
            const char *rest[] = { path };

            put_file_disk(f, format, vol->root_path, rest, 1, target);
        } else if (fuse) {
            if (!fuse_mount || !*fuse_mount) {
                gvm_error_set(err, GVM_ERR_UNSUPPORTED, "mode \"fuse\" needs the "
                              "FUSE mount point of gluster volumes: start gvmd "
                              "with --fuse-mount DIR.");
                return -1;
            }
            const char *rest[] = { vol->gluster_volume, path };

            put_file_disk(f, format, fuse_mount, rest, 2, target);
        } else {
            put_gluster_disk(f, format, vol, path, target);
        }
        if (fflush(f) != 0 || ferror(f))
            return gvm_error_oom(err);
    }
    *xml = steal_pointer(&buf);
    return 0;
}

int rpc_domain_disk_xml(struct gvmd *d, struct rpc_call *call, json_t *params,
                        json_t **result, struct gvm_error *err)
{
    struct resolved r = { 0 };
    const char *target = json_string_value(json_object_get(params, "target"));
    json_t *jmode = json_object_get(params, "mode");
    const char *mode = jmode ? json_string_value(jmode) : "native";
    const char *format;
    _cleanup_free_ char *buf = NULL;
    int rc = -1;

    (void)call;
    if (!target_valid(target)) {
        gvm_error_param(err, "target", "The target \"%s\" is not a disk name "
                        "such as vda (letters and digits, at most 32).", target);
        return -1;
    }
    if (strcmp(mode, "native") != 0 && strcmp(mode, "fuse") != 0) {
        gvm_error_param(err, "mode", "The mode \"%s\" is neither \"native\" "
                        "nor \"fuse\".", mode);
        return -1;
    }
    if (resolve_param(d, params, "image", &r, err) < 0)
        goto out;
    if (r.catalogued) {
        format = r.row.format;
    } else {
        struct gvm_stat st;
        _cleanup_free_ char *name = resolve_name(r.vol.name, r.path);
        int e = r.store->ops->stat(r.store, r.path, &st);

        if (e < 0 || !st.is_reg) {
            if (e == -ENOENT || e == 0)
                gvm_error_set(err, GVM_ERR_NOT_FOUND, "There is no image %s "
                              "(neither catalogued nor on storage).",
                              name ? name : r.path);
            else
                gvm_error_set_errno(err, gvm_error_class_from_errno(e), e,
                                    "Cannot look at image %s", name ? name : r.path);
            goto out;
        }
        if (probe_format(&r, &format, err) < 0)
            goto out;
    }

    if (rpc_diskxml_build(&r.vol, r.path, format, target,
                          strcmp(mode, "fuse") == 0, d->cfg.fuse_mount, &buf,
                          err) < 0)
        goto out;
    *result = json_pack("{ss}", "xml", buf);
    if (!*result) {
        gvm_error_oom(err);
        goto out;
    }
    rc = 0;
out:
    resolved_clear(&r);
    return rc;
}
