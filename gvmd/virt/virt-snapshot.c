/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-snapshot.c — the libvirt side of a live external snapshot (see
 * virt-snapshot.h).
 *
 * Why REUSE_EXT with overlays gvmd made: gvmd creates them on its own open
 * gluster connection in milliseconds, journaled, and knows their names
 * before libvirt does, so a crash at any point leaves files gvmd can find
 * and either adopt or remove.  Why NO_METADATA: gvmd's catalog is the one
 * record of the snapshot tree; libvirt's own snapshot metadata would be a
 * second one to keep in step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/tree.h>

#include "virt-snapshot.h"
#include "virt-util.h"

int virt_snapshot_domain(struct virt *v, const char *name_or_uuid, char **name,
                      char *uuid, bool *running, struct gvm_error *err)
{
    _cleanup_domain_ virDomainPtr dom = virt_domain_lookup(v, name_or_uuid, err);
    int active;

    if (name)
        *name = NULL;
    *running = false;
    if (!dom)
        return -1;
    active = virDomainIsActive(dom);
    if (active < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot tell whether domain %s runs: "
                      "%s.", name_or_uuid, virt_last_error());
        return -1;
    }
    if (uuid && virDomainGetUUIDString(dom, uuid) < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot read the uuid of domain %s: "
                      "%s.", name_or_uuid, virt_last_error());
        return -1;
    }
    if (name) {
        const char *n = virDomainGetName(dom);
        *name = strdup(n ? n : name_or_uuid);
        if (!*name)
            return gvm_error_oom(err);
    }
    *running = active == 1;
    return 0;
}

/* <disk name=T snapshot='external' type=..> with the overlay's <source>. */
static int put_disk(xmlNode *disks, const struct virt_snapshot_disk *sd)
{
    xmlNode *disk = xmlNewChild(disks, NULL, BAD_CAST "disk", NULL);
    const struct virt_source *s = sd->src;
    xmlNode *src, *drv;

    if (!disk || !xmlNewProp(disk, BAD_CAST "name", BAD_CAST sd->target))
        return -1;
    if (!s)
        return xmlNewProp(disk, BAD_CAST "snapshot", BAD_CAST "no") ? 0 : -1;
    if (!xmlNewProp(disk, BAD_CAST "snapshot", BAD_CAST "external") ||
        !xmlNewProp(disk, BAD_CAST "type", BAD_CAST
                    (s->type == VIRT_SOURCE_GLUSTER ? "network" : "file")))
        return -1;
    drv = xmlNewChild(disk, NULL, BAD_CAST "driver", NULL);
    if (!drv || !xmlNewProp(drv, BAD_CAST "type",
                            BAD_CAST (s->format ? s->format : "qcow2")))
        return -1;
    src = xmlNewChild(disk, NULL, BAD_CAST "source", NULL);
    if (!src)
        return -1;
    if (s->type != VIRT_SOURCE_GLUSTER)
        return xmlNewProp(src, BAD_CAST "file", BAD_CAST s->file) ? 0 : -1;

    _cleanup_free_ char *nm = NULL;
    if (asprintf(&nm, "%s/%s", s->glvolume, s->path) < 0)
        return -1;
    if (!xmlNewProp(src, BAD_CAST "protocol", BAD_CAST "gluster") ||
        !xmlNewProp(src, BAD_CAST "name", BAD_CAST nm))
        return -1;
    for (size_t i = 0; i < s->nhosts; i++) {
        const struct gvm_server *h = &s->hosts[i];
        xmlNode *hn = xmlNewChild(src, NULL, BAD_CAST "host", NULL);
        char port[16];

        if (!hn)
            return -1;
        if (h->transport == GVM_TRANSPORT_UNIX) {
            if (!xmlNewProp(hn, BAD_CAST "transport", BAD_CAST "unix") ||
                !xmlNewProp(hn, BAD_CAST "socket", BAD_CAST (h->socket ? h->socket : "")))
                return -1;
            continue;
        }
        snprintf(port, sizeof(port), "%d", h->port ? h->port : GVM_GLUSTER_PORT);
        if (!xmlNewProp(hn, BAD_CAST "name", BAD_CAST (h->host ? h->host : "")) ||
            !xmlNewProp(hn, BAD_CAST "port", BAD_CAST port))
            return -1;
        if (h->transport == GVM_TRANSPORT_RDMA &&
            !xmlNewProp(hn, BAD_CAST "transport", BAD_CAST "rdma"))
            return -1;
    }
    return 0;
}

/* The <domainsnapshot> document (caller xmlFree()s), NULL on ENOMEM. */
static xmlChar *snapshot_xml(const char *name, const char *description,
                             const struct virt_snapshot_disk *disks, size_t n)
{
    _cleanup_xmldoc_ xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNode *root = doc ? xmlNewNode(NULL, BAD_CAST "domainsnapshot") : NULL;
    xmlNode *dl;
    xmlChar *out = NULL;
    int len = 0;

    if (!root)
        return NULL;
    xmlDocSetRootElement(doc, root);
    if (!xmlNewTextChild(root, NULL, BAD_CAST "name", BAD_CAST name))
        return NULL;
    if (description &&
        !xmlNewTextChild(root, NULL, BAD_CAST "description", BAD_CAST description))
        return NULL;
    dl = xmlNewChild(root, NULL, BAD_CAST "disks", NULL);
    if (!dl)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (put_disk(dl, &disks[i]) < 0)
            return NULL;
    xmlDocDumpFormatMemory(doc, &out, &len, 1);
    return out;
}

/* Whether libvirt's last error means no guest agent answered. */
static bool agent_error(void)
{
    int code = virGetLastErrorCode();
    const char *m = virGetLastErrorMessage();

    return code == VIR_ERR_AGENT_UNRESPONSIVE || code == VIR_ERR_AGENT_UNSYNCED ||
           (m && strstr(m, "agent"));
}

int virt_snapshot_create(struct virt *v, const char *domain, const char *name,
                         const char *description,
                         const struct virt_snapshot_disk *disks, size_t n,
                         unsigned flags, struct gvm_error *err)
{
    _cleanup_domain_ virDomainPtr dom = virt_domain_lookup(v, domain, err);
    unsigned vflags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY |
                      VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT |
                      VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA;
    xmlChar *xml;
    virDomainSnapshotPtr snap;

    if (!dom)
        return -1;
    if (flags & VIRT_SNAPSHOT_ATOMIC)
        vflags |= VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
    if (flags & VIRT_SNAPSHOT_QUIESCE)
        vflags |= VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE;
    xml = snapshot_xml(name, description, disks, n);
    if (!xml)
        return gvm_error_oom(err);
    log_debug("Snapshot %s of domain %s: %s", name, domain, (const char *)xml);
    snap = virDomainSnapshotCreateXML(dom, (const char *)xml, vflags);
    xmlFree(xml);
    if (snap) {
        /* NO_METADATA: the handle names nothing libvirt keeps. */
        virDomainSnapshotFree(snap);
        return 0;
    }
    if ((flags & VIRT_SNAPSHOT_QUIESCE) && agent_error())
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot quiesce domain %s for snapshot "
                      "%s: no guest agent answers (%s); no snapshot was taken. "
                      "Run qemu-guest-agent in the guest with its channel in "
                      "the domain, or leave quiesce out.", domain, name,
                      virt_last_error());
    else
        gvm_error_set(err, GVM_ERR_VIRT, "libvirt refused snapshot %s of "
                      "domain %s: %s.", name, domain, virt_last_error());
    return -1;
}
