/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-diskxml.c — domain-disk-xml: the libvirt <disk> element through which
 * a domain reaches an image, natively over gluster (every server of the
 * volume as a <host>, in the volume's order, so QEMU fails over as gvmd
 * does) or as a file on a FUSE mount.  Needs no libvirt: it only writes XML.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "daemon.h"
#include "image.h"
#include "jsonutil.h"
#include "resolve.h"
#include "rpc-diskxml.h"
#include "rpc.h"

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
    _cleanup_free_ char *name = resolve_name(r->vol.name, r->path);
    enum img_format fmt;
    int rc = img_probe(r->store, r->path, &fmt);

    if (rc < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(rc), rc,
                            "Cannot read image %s", name ? name : r->path);
        return -1;
    }
    *format = img_format_name(fmt);
    return 0;
}

/*
 * The XML is built as a libxml2 tree and serialised by libxml2, so every
 * name (volume roots, gluster volume and host names, socket paths, image
 * paths) is escaped as XML requires, whatever it holds.
 */
static xmlNode *add(xmlNode *parent, const char *name)
{
    return parent ? xmlNewChild(parent, NULL, BAD_CAST name, NULL) : NULL;
}

/* Set attributes (NULL-terminated name, value pairs); false on ENOMEM. */
static bool attrs(xmlNode *n, ...)
{
    va_list ap;
    const char *k;
    bool ok = n != NULL;

    va_start(ap, n);
    while ((k = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        if (ok && !xmlSetProp(n, BAD_CAST k, BAD_CAST v))
            ok = false;
    }
    va_end(ap);
    return ok;
}

/* <disk type='file'> at root/rest (rest: one or more '/'-joined parts). */
static bool file_disk(xmlNode *disk, const char *format, const char *root,
                      const char *const *rest, size_t nrest, const char *target)
{
    _cleanup_free_ char *file = NULL;
    size_t rl = strlen(root), len = rl + 1;

    for (size_t i = 0; i < nrest; i++)
        len += strlen(rest[i]) + 1;
    file = malloc(len);
    if (!file)
        return false;
    strcpy(file, root);
    for (size_t i = 0; i < nrest; i++) {
        if (i > 0 || rl == 0 || root[rl - 1] != '/')
            strcat(file, "/");
        strcat(file, rest[i]);
    }
    return attrs(disk, "type", "file", "device", "disk", NULL) &&
           attrs(add(disk, "driver"), "name", "qemu", "type", format, NULL) &&
           attrs(add(disk, "source"), "file", file, NULL) &&
           attrs(add(disk, "target"), "dev", target, "bus", "virtio", NULL);
}

static bool gluster_disk(xmlNode *disk, const char *format,
                         const struct catalog_volume *vol, const char *path,
                         const char *target)
{
    _cleanup_free_ char *name = NULL;
    xmlNode *src;

    if (asprintf(&name, "%s/%s", vol->gluster_volume, path) < 0) {
        name = NULL;
        return false;
    }
    if (!attrs(disk, "type", "network", "device", "disk", NULL) ||
        !attrs(add(disk, "driver"), "name", "qemu", "type", format, NULL))
        return false;
    src = add(disk, "source");
    if (!attrs(src, "protocol", "gluster", "name", name, NULL))
        return false;
    for (size_t i = 0; i < vol->nservers; i++) {
        const struct gvm_server *sv = &vol->servers[i];
        xmlNode *h = add(src, "host");
        char port[16];

        if (sv->transport == GVM_TRANSPORT_UNIX) {
            if (!attrs(h, "transport", "unix", "socket",
                       sv->socket ? sv->socket : "", NULL))
                return false;
            continue;
        }
        snprintf(port, sizeof(port), "%d", sv->port ? sv->port : GVM_GLUSTER_PORT);
        if (!attrs(h, "name", sv->host ? sv->host : "", "port", port, NULL) ||
            (sv->transport == GVM_TRANSPORT_RDMA &&
             !attrs(h, "transport", "rdma", NULL)))
            return false;
    }
    return attrs(add(disk, "target"), "dev", target, "bus", "virtio", NULL);
}

int rpc_diskxml_build(const struct catalog_volume *vol, const char *path,
                      const char *format, const char *target, bool fuse,
                      const char *fuse_mount, char **xml,
                      struct gvm_error *err)
{
    xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNode *disk = doc ? xmlNewNode(NULL, BAD_CAST "disk") : NULL;
    xmlBuffer *buf = NULL;
    bool ok;
    int rc = -1;

    if (!disk) {
        xmlFreeDoc(doc);
        return gvm_error_oom(err);
    }
    xmlDocSetRootElement(doc, disk);
    if (vol->backend == CATALOG_BACKEND_DIR) {
        /* A dir volume is local files whatever the mode. */
        const char *rest[] = { path };

        ok = file_disk(disk, format, vol->root_path, rest, 1, target);
    } else if (fuse) {
        if (!fuse_mount || !*fuse_mount) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED, "mode \"fuse\" needs the "
                          "FUSE mount point of gluster volumes: start gvmd "
                          "with --fuse-mount DIR.");
            goto out;
        }
        const char *rest[] = { vol->gluster_volume, path };

        ok = file_disk(disk, format, fuse_mount, rest, 2, target);
    } else {
        ok = gluster_disk(disk, format, vol, path, target);
    }
    buf = ok ? xmlBufferCreate() : NULL;
    if (!buf || xmlNodeDump(buf, doc, disk, 0, 1) < 0 ||
        !(*xml = strdup((const char *)xmlBufferContent(buf)))) {
        gvm_error_oom(err);
        goto out;
    }
    rc = 0;
out:
    if (buf)
        xmlBufferFree(buf);
    xmlFreeDoc(doc);
    return rc;
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
