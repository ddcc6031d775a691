/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-domain.c — the domain methods: domain-attach (explicit disks parsed
 * here, attaching in core/domain-attach.c), domain-list and domain-detach,
 * and a domain's JSON with its disks and current snapshot.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "rpc-params.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "domain-attach.h"
#include "rpc.h"
#include "snapshot-live.h"
#include "snapshot-tree.h"
#include "virt-snapshot.h"

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
        int bad = gvm_json_append(disks, json_pack("{s:s, s:I, s:s?}", "target",
                                                   dom->disks[i].target, "image",
                                                   (json_int_t)row.id, "image-name", name));
        free(name);
        catalog_image_clear(&row);
        if (bad) {
            json_decref(disks);
            gvm_error_oom(err);
            return NULL;
        }
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

int rpc_domain_attach(struct gvmd *d, struct rpc_call *call,
                      const struct rpc_params_domain_attach *p, json_t **result,
                      struct gvm_error *err)
{
    const char *key = p->domain;
    json_t *disks = p->disks;
    struct catalog_domain dom = { 0 };
    size_t n = json_array_size(disks);
    _cleanup_free_ int64_t *ids = NULL;
    char **targets = NULL;
    int ret = -1;

    (void)call;
    if (!*key) {
        gvm_error_param(err, "domain", "Parameter 'domain' must be a domain "
                        "name or uuid.");
        return -1;
    }
    if (!disks) {
        /* From libvirt's XML: the disks the domain really has. */
        if (domain_attach_libvirt(d, key, &dom, err) < 0)
            return -1;
        goto done;
    }
    if (n == 0) {
        gvm_error_param(err, "disks", "Parameter 'disks' must list at least "
                        "one {target, image}.");
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
            if (err->cls == GVM_ERR_NOT_FOUND)
                gvm_error_prepend(err, "Disk %s: ", target);
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
    if (domain_attach(d, key, targets, ids, n, &dom, err) < 0)
        goto out;
done:
    *result = domain_json(d, &dom, snapshot_live_domain_runs(d, &dom), err);
    ret = *result ? 0 : -1;
out:
    domain_attach_targets_free(targets, n);
    catalog_domain_clear(&dom);
    return ret;
}

int rpc_domain_list(struct gvmd *d, struct rpc_call *call,
                    const struct rpc_params_domain_list *p, json_t **result,
                    struct gvm_error *err)
{
    struct catalog_domain *v = NULL;
    struct virt_domain *run = NULL;
    size_t n = 0, nrun = 0;
    struct gvm_error verr = { 0 };
    _cleanup_json_ json_t *a = json_array();
    int ret = -1;

    (void)call;
    (void)p;
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
        if (gvm_json_append(a, o) < 0) {
            gvm_error_oom(err);
            goto out;
        }
    }
    *result = steal_pointer(&a);
    ret = 0;
out:
    virt_domains_free(run, nrun);
    catalog_domains_free(v, n);
    return ret;
}

int rpc_domain_detach(struct gvmd *d, struct rpc_call *call,
                      const struct rpc_params_domain_detach *p, json_t **result,
                      struct gvm_error *err)
{
    const char *key = p->domain;
    struct catalog_domain dom = { 0 };
    int r;

    (void)call;
    if (catalog_domain_find(d->cat, key, &dom, err) < 0)
        return -1;
    r = catalog_domain_remove(d->cat, dom.id, err);
    if (r < 0 && err->cls == GVM_ERR_IN_USE)
        gvm_error_prepend(err, "Cannot detach domain %s. ", dom.name);
    catalog_domain_clear(&dom);
    if (r < 0)
        return -1;
    *result = json_object();
    return *result ? 0 : gvm_error_oom(err);
}
