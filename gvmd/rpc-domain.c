/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-domain.c — domain bookkeeping: which catalogued image is the active
 * layer of each disk of a domain.  A domain is attached with explicit
 * disks (it may be one gvmd knows only from its catalog: the offline path)
 * or from its libvirt XML: each disk's source is located on a registered
 * volume (a gluster volume not registered yet is registered from the
 * disk's <host>s), and an image not yet catalogued is imported with its
 * whole backing chain, as image-import does.  Images imported for an
 * attach that then fails stay catalogued (they are true facts of storage).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "daemon.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "rpc-domain.h"
#include "rpc.h"
#include "snapshot-live.h"
#include "snapshot-tree.h"
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

/* DOMAIN; live: whether libvirt runs it. */
static json_t *domain_json(struct gvmd *d, const struct catalog_domain *dom,
                           bool live, struct gvm_error *err)
{
    json_t *disks = json_array();
    int64_t cur;

    if (!disks) {
        gvm_error_oom(err);
        return NULL;
    }
    for (size_t i = 0; i < dom->ndisks; i++) {
        struct catalog_image row = { 0 };
        if (catalog_image_get(d->cat, dom->disks[i].image_id, &row, err) < 0) {
            json_decref(disks);
            return NULL;
        }
        char *name = resolve_name(row.volume, row.path);
        json_array_append_new(disks, json_pack("{s:s, s:I, s:s?}", "target",
                                               dom->disks[i].target, "image",
                                               (json_int_t)row.id, "image-name", name));
        free(name);
        catalog_image_clear(&row);
    }
    cur = snapshot_tree_current(d, dom->id, err);
    if (cur < 0) {
        json_decref(disks);
        return NULL;
    }
    json_t *cs = json_null();
    if (cur > 0) {
        struct catalog_snapshot s = { 0 };
        if (catalog_snapshot_get(d->cat, cur, &s, err) < 0) {
            json_decref(disks);
            return NULL;
        }
        cs = json_string(s.name);
        catalog_snapshot_clear(&s);
    }
    json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:o, s:b}", "id", (json_int_t)dom->id,
                          "name", dom->name, "uuid", dom->uuid, "disks", disks,
                          "current-snapshot", cs, "live", (int)live);
    if (!o)
        gvm_error_oom(err);
    return o;
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
                  char **targets, const int64_t *ids, size_t n,
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
            gvm_error_set(err, GVM_ERR_IN_USE, "Image %" PRId64 " of disk %s "
                          "is frozen by snapshot %" PRId64 " and no longer "
                          "written; attach the active overlay on top of it.",
                          ids[i], targets[i], sid);
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

static void targets_free(char **t, size_t n)
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
    _cleanup_json_ json_t *params = NULL, *res = NULL;

    if (!ref)
        return gvm_error_oom(err);
    params = json_pack("{s:s, s:s?}", "image", ref, "format", format);
    if (!params)
        return gvm_error_oom(err);
    if (rpc_image_import(d, NULL, params, &res, err) < 0)
        return -1;
    *id = json_integer_value(json_object_get(res, "id"));
    log_info("Imported %s (image %" PRId64 ") with its backing chain.", ref, *id);
    return *id > 0 ? 0 : gvm_error_oom(err);
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
    if (r < 0) {
        struct gvm_error e2 = { 0 };
        gvm_error_set(&e2, err->cls, "Cataloguing the image of disk %s of "
                      "domain %s failed: %s", target, domain, err->message);
        *err = e2;
    }
    catalog_volume_clear(&vol);
    return r;
}

int rpc_domain_attach_libvirt(struct gvmd *d, const char *key,
                              struct catalog_domain *out,
                              struct gvm_error *err)
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
    targets_free(targets, n);
    virt_disks_free(disks, n);
    return ret;
}

int rpc_domain_attach(struct gvmd *d, struct rpc_call *call, json_t *params,
                      json_t **result, struct gvm_error *err)
{
    const char *key = json_string_value(json_object_get(params, "domain"));
    json_t *disks = json_object_get(params, "disks");
    struct catalog_domain dom = { 0 };
    size_t n = json_array_size(disks);
    _cleanup_free_ int64_t *ids = NULL;
    char **targets = NULL;
    char uuid[37];
    int ret = -1;

    (void)call;
    if (!key || !*key) {
        gvm_error_param(err, "domain", "Parameter 'domain' must be a domain "
                        "name or uuid.");
        return -1;
    }
    if (!disks) {
        /* From libvirt's XML: the disks the domain really has. */
        if (rpc_domain_attach_libvirt(d, key, &dom, err) < 0)
            return -1;
        goto done;
    }
    if (n == 0) {
        gvm_error_param(err, "disks", "Parameter 'disks' must list at least "
                        "one {target, image}.");
        return -1;
    }
    if (is_uuid(key)) {
        snprintf(uuid, sizeof(uuid), "%s", key);
    } else if (make_uuid(uuid, err) < 0) {
        return -1;
    }
    ids = calloc(n, sizeof(*ids));
    targets = calloc(n, sizeof(*targets));
    if (!ids || !targets) {
        gvm_error_oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *dj = json_array_get(disks, i);
        const char *target = json_string_value(json_object_get(dj, "target"));
        json_t *iref = json_object_get(dj, "image");
        struct resolved r = { 0 };

        if (!target || !*target || !iref) {
            gvm_error_param(err, "disks", "Each entry of 'disks' must be an "
                            "object {target, image}.");
            goto out;
        }
        if (resolve_catalogued(d, iref, "disks", &r, err) < 0) {
            if (err->cls == GVM_ERR_NOT_FOUND) {
                struct gvm_error e2 = { 0 };
                gvm_error_set(&e2, GVM_ERR_NOT_FOUND, "Disk %s: %s", target,
                              err->message);
                *err = e2;
            }
            resolved_clear(&r);
            goto out;
        }
        ids[i] = r.row.id;
        resolved_clear(&r);
        targets[i] = strdup(target);
        if (!targets[i]) {
            gvm_error_oom(err);
            goto out;
        }
    }
    if (attach(d, key, uuid, targets, ids, n, &dom, err) < 0)
        goto out;
done:
    *result = domain_json(d, &dom, snapshot_live_domain_runs(d, &dom), err);
    ret = *result ? 0 : -1;
out:
    targets_free(targets, n);
    catalog_domain_clear(&dom);
    return ret;
}

int rpc_domain_list(struct gvmd *d, struct rpc_call *call, json_t *params,
                    json_t **result, struct gvm_error *err)
{
    struct catalog_domain *v = NULL;
    struct virt_domain *run = NULL;
    size_t n = 0, nrun = 0;
    struct gvm_error verr = { 0 };
    _cleanup_json_ json_t *a = json_array();
    int ret = -1;

    (void)call;
    (void)params;
    if (!a)
        return gvm_error_oom(err);
    if (catalog_domain_list(d->cat, &v, &n, err) < 0)
        return -1;
    /* One listing of the running domains for "live" (none when libvirt
     * cannot be reached: then nothing counts as running). */
    if (d->virt && n > 0 &&
        virt_running_domains(d->virt, &run, &nrun, &verr) < 0)
        log_debug("domain-list: %s", verr.message);
    for (size_t i = 0; i < n; i++) {
        bool live = false;

        for (size_t k = 0; k < nrun; k++)
            live = live || strcmp(run[k].name, v[i].name) == 0;
        json_t *o = domain_json(d, &v[i], live, err);
        if (!o)
            goto out;
        json_array_append_new(a, o);
    }
    *result = steal_pointer(&a);
    ret = 0;
out:
    virt_domains_free(run, nrun);
    catalog_domains_free(v, n);
    return ret;
}

int rpc_domain_detach(struct gvmd *d, struct rpc_call *call, json_t *params,
                      json_t **result, struct gvm_error *err)
{
    const char *key = json_string_value(json_object_get(params, "domain"));
    struct catalog_domain dom = { 0 };
    int r;

    (void)call;
    if (!key || catalog_domain_find(d->cat, key, &dom, err) < 0)
        return -1;
    r = catalog_domain_remove(d->cat, dom.id, err);
    if (r < 0 && err->cls == GVM_ERR_IN_USE) {
        struct gvm_error e2 = { 0 };
        gvm_error_set(&e2, GVM_ERR_IN_USE, "Cannot detach domain %s. %s",
                      dom.name, err->message);
        *err = e2;
    }
    catalog_domain_clear(&dom);
    if (r < 0)
        return -1;
    *result = json_object();
    return *result ? 0 : gvm_error_oom(err);
}
