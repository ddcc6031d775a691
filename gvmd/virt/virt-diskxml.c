/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-diskxml.c — the libvirt <disk> element through which a domain
 * reaches an image: natively over gluster (every server of the volume as a
 * <host>, in the volume's order, so QEMU fails over as gvmd does) or as a
 * file (a dir volume, or a gluster volume's FUSE mount).  Needs no libvirt
 * connection: it only writes XML.  Used by domain-disk-xml (rpc-diskxml.c)
 * and by the redefinition of stopped domains (virt-define.c).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "virt-diskxml.h"

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

int virt_diskxml_build(const struct catalog_volume *vol, const char *path,
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
