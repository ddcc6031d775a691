/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-domain.c — domain bookkeeping: which catalogued image is the active
 * layer of each disk of a domain.  For now a domain is attached with
 * explicit disks (a domain gvmd knows only from its catalog: the offline
 * path); reading the disks from libvirt's XML comes with the live path.
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
#include "resolve.h"
#include "rpc.h"
#include "snapshot.h"

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

static json_t *domain_json(struct gvmd *d, const struct catalog_domain *dom,
                           struct gvm_error *err)
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
    cur = snapshot_domain_current(d, dom->id, err);
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
                          "current-snapshot", cs, "live", 0);
    if (!o)
        gvm_error_oom(err);
    return o;
}

int rpc_domain_attach(struct gvmd *d, struct rpc_call *call, json_t *params,
                      json_t **result, struct gvm_error *err)
{
    const char *key = json_string_value(json_object_get(params, "domain"));
    json_t *disks = json_object_get(params, "disks");
    struct catalog_domain dom = { 0 };
    char uuid[37];
    int ret = -1;

    (void)call;
    if (!key || !*key) {
        gvm_error_param(err, "domain", "Parameter 'domain' must be a domain "
                        "name or uuid.");
        return -1;
    }
    if (!disks) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "Reading the disks of domain "
                      "%s from libvirt is not implemented yet; give 'disks' "
                      "[{target, image}].", key);
        return -1;
    }
    if (json_array_size(disks) == 0) {
        gvm_error_param(err, "disks", "Parameter 'disks' must list at least "
                        "one {target, image}.");
        return -1;
    }
    if (is_uuid(key)) {
        snprintf(uuid, sizeof(uuid), "%s", key);
    } else if (make_uuid(uuid, err) < 0) {
        return -1;
    }
    dom.name = strdup(key);
    dom.uuid = strdup(uuid);
    dom.disks = calloc(json_array_size(disks), sizeof(*dom.disks));
    if (!dom.name || !dom.uuid || !dom.disks) {
        gvm_error_oom(err);
        goto out;
    }
    {
        struct catalog_domain existing = { 0 };
        struct gvm_error e2 = { 0 };
        if (catalog_domain_find(d->cat, key, &existing, &e2) == 0) {
            catalog_domain_clear(&existing);
            gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "A domain named %s is "
                          "attached already; detach it first.", key);
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(disks); i++) {
        json_t *dj = json_array_get(disks, i);
        const char *target = json_string_value(json_object_get(dj, "target"));
        json_t *iref = json_object_get(dj, "image");
        struct imageref ref = { 0 };
        struct resolved r = { 0 };
        int64_t sid = 0;

        if (!target || !*target || !iref) {
            gvm_error_param(err, "disks", "Each entry of 'disks' must be an "
                            "object {target, image}.");
            goto out;
        }
        for (size_t j = 0; j < dom.ndisks; j++) {
            if (strcmp(dom.disks[j].target, target) == 0) {
                gvm_error_param(err, "disks", "The target %s is listed twice.", target);
                goto out;
            }
        }
        if (imageref_parse_json(iref, "disks", &ref, err) < 0)
            goto out;
        int rr = resolve_imageref(d, &ref, &r, err);
        imageref_clear(&ref);
        if (rr < 0)
            goto out;
        if (!r.catalogued) {
            gvm_error_set(err, GVM_ERR_NOT_FOUND, "The image %s:%s of disk %s "
                          "is not in the catalog; catalogue it with "
                          "image-import first.", r.vol.name, r.path, target);
            resolved_clear(&r);
            goto out;
        }
        int64_t id = r.row.id;
        resolved_clear(&r);
        rr = catalog_snapshot_frozen_by(d->cat, id, &sid, err);
        if (rr < 0)
            goto out;
        if (rr > 0) {
            gvm_error_set(err, GVM_ERR_IN_USE, "Image %" PRId64 " of disk %s "
                          "is frozen by snapshot %" PRId64 " and no longer "
                          "written; attach the active overlay on top of it.",
                          id, target, sid);
            goto out;
        }
        dom.disks[dom.ndisks].target = strdup(target);
        dom.disks[dom.ndisks++].image_id = id;
        if (!dom.disks[dom.ndisks - 1].target) {
            gvm_error_oom(err);
            goto out;
        }
    }
    if (catalog_domain_add(d->cat, &dom, err) < 0)
        goto out;
    {
        struct catalog_domain fresh = { 0 };
        if (catalog_domain_get(d->cat, dom.id, &fresh, err) < 0)
            goto out;
        *result = domain_json(d, &fresh, err);
        catalog_domain_clear(&fresh);
    }
    ret = *result ? 0 : -1;
out:
    catalog_domain_clear(&dom);
    return ret;
}

int rpc_domain_list(struct gvmd *d, struct rpc_call *call, json_t *params,
                    json_t **result, struct gvm_error *err)
{
    struct catalog_domain *v = NULL;
    size_t n = 0;
    _cleanup_json_ json_t *a = json_array();
    int ret = -1;

    (void)call;
    (void)params;
    if (!a)
        return gvm_error_oom(err);
    if (catalog_domain_list(d->cat, &v, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *o = domain_json(d, &v[i], err);
        if (!o)
            goto out;
        json_array_append_new(a, o);
    }
    *result = steal_pointer(&a);
    ret = 0;
out:
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
