/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * domain-attach.c — recording a domain in the catalog: which catalogued
 * image is the active layer of each disk.  A domain is attached with
 * explicit disks (it may be one gvmd knows only from its catalog: the
 * offline path) or from its libvirt XML: each disk's source is located on
 * a registered volume (a gluster volume not registered yet is registered
 * from the disk's <host>s), and an image not yet catalogued is imported
 * with its whole backing chain, as image-import does.  Images imported for
 * an attach that then fails stay catalogued (they are true facts of
 * storage).  domain-attach and a live snapshot of a domain not attached
 * yet both attach through here.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "catalog-snapshot.h"
#include "domain-attach.h"
#include "image-import.h"
#include "live.h"
#include "resolve.h"
#include "virt-snapshot.h"

static bool is_uuid(const char *s)
{
    static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (strlen(s) != sizeof(pat) - 1)
        return false;
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == '-' ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    }
    return true;
}

/* A random (version 4) uuid for a domain known only to the catalog. */
static int make_uuid(char out[37], struct gvm_error *err)
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof(b)) : -1;

    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof(b)) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Reading /dev/urandom for a "
                      "domain uuid failed.");
        return -1;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
             b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

/* AlreadyExists (true) if the catalog has a domain by that name or uuid. */
static bool attached_already(struct gvmd *d, const char *name, const char *uuid,
                             struct gvm_error *err)
{
    struct catalog_domain existing = { 0 };
    struct gvm_error e2 = { 0 };

    if (catalog_domain_find(d->cat, name, &existing, &e2) < 0 &&
        catalog_domain_find(d->cat, uuid, &existing, &e2) < 0)
        return false;
    catalog_domain_clear(&existing);
    gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "A domain named %s is "
                  "attached already; detach it first.", name);
    return true;
}

/* Record domain (name, uuid) with disks targets[i] → ids[i]; *out: the
 * catalogued domain. */
static int attach(struct gvmd *d, const char *name, const char *uuid,
                  char *const *targets, const int64_t *ids, size_t n,
                  struct catalog_domain *out, struct gvm_error *err)
{
    struct catalog_domain dom = { 0 };
    int ret = -1;

    if (attached_already(d, name, uuid, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        int64_t sid = 0;
        int rr;

        for (size_t j = 0; j < i; j++) {
            if (strcmp(targets[j], targets[i]) == 0) {
                gvm_error_param(err, "disks", "The target %s is listed twice.",
                                targets[i]);
                return -1;
            }
        }
        rr = catalog_snapshot_frozen_by(d->cat, ids[i], &sid, err);
        if (rr < 0)
            return -1;
        if (rr > 0) {
            _cleanup_free_ char *img = resolve_image_name(d, ids[i]);
            _cleanup_catsnap_ struct catalog_snapshot snap = { 0 };
            struct gvm_error e = { 0 };

            if (catalog_snapshot_get(d->cat, sid, &snap, &e) < 0)
                gvm_error_clear(&e);
            gvm_error_set(err, GVM_ERR_IN_USE, "Image %s of disk %s is "
                          "frozen by snapshot '%s' and no longer written; "
                          "attach the active overlay on top of it.",
                          img ? img : "?", targets[i],
                          snap.name ? snap.name : "?");
            return -1;
        }
    }
    dom.name = strdup(name);
    dom.uuid = strdup(uuid);
    dom.disks = calloc(n ? n : 1, sizeof(*dom.disks));
    if (!dom.name || !dom.uuid || !dom.disks) {
        gvm_error_oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        dom.disks[i].target = strdup(targets[i]);
        dom.disks[i].image_id = ids[i];
        dom.ndisks = i + 1;
        if (!dom.disks[i].target) {
            gvm_error_oom(err);
            goto out;
        }
    }
    if (catalog_domain_add(d->cat, &dom, err) < 0)
        goto out;
    ret = catalog_domain_get(d->cat, dom.id, out, err);
out:
    catalog_domain_clear(&dom);
    return ret;
}

void domain_attach_targets_free(char **t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i]);
    free(t);
}

/* Catalogue the image at VOLUME:PATH with its backing chain the way
 * image-import does; *id: its catalog id. */
static int import_image(struct gvmd *d, const char *volume, const char *path,
                        const char *format, int64_t *id, struct gvm_error *err)
{
    _cleanup_free_ char *ref = resolve_name(volume, path);
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    struct imageref ir = { 0 };
    struct image_layer *l = NULL;
    size_t n = 0;
    int ret;

    resolve_ctx_init(&ctx, d);
    if (!ref)
        return gvm_error_oom(err);
    /* As a client's "VOLUME:PATH" would be: parsed and checked. */
    ret = imageref_parse_string(ref, "image", &ir, err) < 0 ? -1
          : resolve_imageref(d, &ir, &r, err);
    imageref_clear(&ir);
    if (ret < 0 ||
        image_import(d, &r, format, NULL, &ctx, &img, &l, &n, err) < 0)
        return -1;
    *id = l[0].row.id;
    image_layers_free(l, n);
    log_info("Imported %s (image %" PRId64 ") with its backing chain.", ref, *id);
    return 0;
}

/* The catalog id of the image a disk of a domain XML runs on, importing it
 * (and registering its gluster volume from the <host>s) when needed. */
static int disk_image(struct gvmd *d, const char *domain,
                      const struct virt_disk *disk, int64_t *id,
                      struct gvm_error *err)
{
    const struct virt_source *src = &disk->src;
    struct catalog_volume vol = { 0 };
    _cleanup_free_ char *path = NULL;
    const char *target = disk->target ? disk->target : "?";
    int r;

    if (src->type == VIRT_SOURCE_OTHER ||
        (src->type == VIRT_SOURCE_FILE && !src->file) ||
        (src->type == VIRT_SOURCE_GLUSTER && (!src->glvolume || !src->path))) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "Disk %s of domain %s is not "
                      "a file or gluster image gvmd can manage; attach the "
                      "other disks with explicit 'disks'.", target, domain);
        return -1;
    }
    r = live_source_image(d, src, id, err);
    if (r != 0)
        return r < 0 ? -1 : 0;
    r = live_source_locate(d, src, &vol, &path, err);
    if (r < 0)
        return -1;
    if (r == 0 && src->type == VIRT_SOURCE_GLUSTER && src->nhosts > 0) {
        /* As a gluster URI reference would: register the volume from the
         * disk's servers. */
        struct imageref ref = {
            .kind = IMAGEREF_GLUSTER, .volume = src->glvolume,
            .path = src->path, .servers = src->hosts, .nservers = src->nhosts,
        };
        struct resolved rs = { 0 };

        if (resolve_imageref(d, &ref, &rs, err) < 0)
            return -1;
        vol = rs.vol;
        memset(&rs.vol, 0, sizeof(rs.vol));
        path = steal_pointer(&rs.path);
        resolved_clear(&rs);
        r = 1;
    }
    if (r == 0) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "Disk %s of domain %s is %s%s%s, "
                      "which lies on no registered volume; register the volume "
                      "that holds it (volume-add), or attach with explicit "
                      "'disks'.", target, domain,
                      src->type == VIRT_SOURCE_FILE ? "the file " : "gluster ",
                      src->type == VIRT_SOURCE_FILE ? src->file : src->glvolume,
                      src->type == VIRT_SOURCE_FILE ? "" : " (no <host> given)");
        return -1;
    }
    r = import_image(d, vol.name, path, src->format, id, err);
    if (r < 0)
        gvm_error_prepend(err, "Cataloguing the image of disk %s of domain %s "
                          "failed: ", target, domain);
    catalog_volume_clear(&vol);
    return r;
}

int domain_attach_libvirt(struct gvmd *d, const char *key,
                          struct catalog_domain *out, struct gvm_error *err)
{
    struct virt_disk *disks = NULL;
    size_t n = 0;
    bool running = false;
    _cleanup_free_ char *name = NULL;
    _cleanup_free_ int64_t *ids = NULL;
    char **targets = NULL;
    char uuid[37];
    int ret = -1;

    if (!d->virt) {
        gvm_error_set(err, GVM_ERR_VIRT, "gvmd has no libvirt connection to "
                      "read domain %s from; give 'disks'.", key);
        return -1;
    }
    if (virt_snapshot_domain(d->virt, key, &name, uuid, &running, err) < 0)
        return -1;
    /* Before importing anything: attaching twice changes nothing. */
    if (attached_already(d, name, uuid, err) ||
        virt_domain_disks(d->virt, key, &disks, &n, &running, err) < 0)
        return -1;
    if (n == 0) {
        gvm_error_set(err, GVM_ERR_INVALID_PARAMS, "Domain %s has no disks "
                      "in its libvirt XML.", name);
        goto out;
    }
    ids = calloc(n, sizeof(*ids));
    targets = calloc(n, sizeof(*targets));
    if (!ids || !targets) {
        gvm_error_oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!disks[i].target) {
            gvm_error_set(err, GVM_ERR_VIRT, "Disk %zu of domain %s has no "
                          "target.", i + 1, name);
            goto out;
        }
        if (disk_image(d, name, &disks[i], &ids[i], err) < 0)
            goto out;
        targets[i] = strdup(disks[i].target);
        if (!targets[i]) {
            gvm_error_oom(err);
            goto out;
        }
    }
    ret = attach(d, name, uuid, targets, ids, n, out, err);
out:
    domain_attach_targets_free(targets, n);
    virt_disks_free(disks, n);
    return ret;
}

int domain_attach(struct gvmd *d, const char *key, char *const *targets,
                  const int64_t *ids, size_t n, struct catalog_domain *out,
                  struct gvm_error *err)
{
    char uuid[37];

    if (is_uuid(key))
        snprintf(uuid, sizeof(uuid), "%s", key);
    else if (make_uuid(uuid, err) < 0)
        return -1;
    return attach(d, key, uuid, targets, ids, n, out, err);
}
