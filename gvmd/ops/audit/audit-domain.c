/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * audit-domain.c — chain-audit's disks of attached domains: the catalog's
 * disks and active layers against libvirt's domain XML (its <source> and
 * <backingStore> chain), the layers they name visited like any other
 * (audit-int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit-int.h"
#include "jsonutil.h"
#include "live.h"
#include "virt.h"

static struct disk *disk_add(struct audit *a, const struct catalog_domain *dom,
                             const char *target, struct gvm_error *err)
{
    struct disk *k = realloc(a->disks, (a->ndisks + 1) * sizeof(*k));
    if (!k) {
        gvm_error_oom(err);
        return NULL;
    }
    a->disks = k;
    k = &a->disks[a->ndisks++];
    memset(k, 0, sizeof(*k));
    k->domain_id = dom->id;
    k->xml_idx = NONE;
    k->domain = strdup(dom->name);
    k->target = strdup(target);
    if (!k->domain || !k->target) {
        gvm_error_oom(err);
        return NULL;
    }
    return k;
}

/* A <source> as written, for messages: the file, or gluster VOL/PATH. */
static char *source_desc(const struct virt_source *s)
{
    char *out = NULL;
    if (s->type == VIRT_SOURCE_FILE && s->file)
        return strdup(s->file);
    if (s->type == VIRT_SOURCE_GLUSTER &&
        asprintf(&out, "gluster:%s/%s", gvm_str_or_none(s->glvolume),
                 gvm_str_or_none(s->path)) >= 0)
        return out;
    return strdup("a source gvmd cannot locate (not a file or gluster disk)");
}

/* Where a libvirt source lives: its layer (visited), or NONE. */
static int locate(struct audit *a, const struct virt_source *s, size_t *idx,
                  struct gvm_error *err)
{
    _cleanup_(catalog_volume_clear) struct catalog_volume vol = { 0 };
    _cleanup_free_ char *path = NULL;
    *idx = NONE;
    int r = live_source_locate(a->d, s, &vol, &path, err);
    if (r <= 0)
        return r;
    return audit_layer_visit(a, vol.name, path, idx, err);
}

/* A <backingStore> chain as names ("VOLUME:PATH", or as written). */
static json_t *xml_chain(struct audit *a, const struct virt_disk *vd,
                         struct gvm_error *err)
{
    _cleanup_json_ json_t *arr = json_array();
    if (!arr) {
        gvm_error_oom(err);
        return NULL;
    }
    for (size_t j = 0; j < vd->nbacking; j++) {
        _cleanup_(catalog_volume_clear) struct catalog_volume vol = { 0 };
        _cleanup_free_ char *path = NULL;
        int r = live_source_locate(a->d, &vd->backing[j], &vol, &path, err);
        if (r < 0)
            return NULL;
        char *name = r > 0 ? resolve_name(vol.name, path)
                           : source_desc(&vd->backing[j]);
        if (!name) {
            gvm_error_oom(err);
            return NULL;
        }
        int bad = gvm_json_append(arr, json_string(name));
        free(name);
        if (bad) {
            gvm_error_oom(err);
            return NULL;
        }
    }
    return steal_pointer(&arr);
}

int audit_domain_visit(struct audit *a, const struct catalog_domain *dom,
                       struct gvm_error *err)
{
    size_t first = a->ndisks;
    struct virt_disk *vds = NULL;
    size_t nvd = 0;
    bool running = false;
    const char *state;
    struct gvm_error ve = { 0 };
    int ret = -1;

    for (size_t i = 0; i < dom->ndisks; i++) {
        size_t idx;
        struct disk *k = disk_add(a, dom, dom->disks[i].target, err);
        if (!k)
            return -1;
        k->cat_image = dom->disks[i].image_id;
        if (audit_layer_visit_id(a, k->cat_image, &idx, err) < 0)
            return -1;
    }

    /* The catalog may hold a uuid of its own making (a domain attached with
     * explicit disks by name): ask libvirt by uuid, then by name. */
    int r = -1;
    if (a->d->virt) {
        r = virt_domain_disks(a->d->virt, dom->uuid, &vds, &nvd, &running, &ve);
        if (r < 0 && ve.cls == GVM_ERR_NOT_FOUND) {
            gvm_error_clear(&ve);
            r = virt_domain_disks(a->d->virt, dom->name, &vds, &nvd, &running,
                                  &ve);
        }
    }
    if (r < 0) {
        state = !a->d->virt ? "no-libvirt"
              : ve.cls == GVM_ERR_NOT_FOUND ? "unknown" : "unreachable";
    } else {
        state = running ? "running" : "inactive";
    }
    json_t *dj = json_pack("{s:s, s:s, s:s, s:o}", "name", dom->name,
                           "uuid", dom->uuid, "libvirt", state,
                           "error", r < 0 && a->d->virt ? json_string(ve.message)
                                                        : json_null());
    if (gvm_json_append(a->domains, dj) < 0)
        return gvm_error_oom(err);
    if (r < 0)
        return 0;
    for (size_t j = first; j < a->ndisks; j++)
        a->disks[j].libvirt = true;

    for (size_t i = 0; i < nvd; i++) {
        struct disk *k = NULL;
        if (!vds[i].target)
            continue;
        for (size_t j = first; j < a->ndisks; j++)
            if (strcmp(a->disks[j].target, vds[i].target) == 0)
                k = &a->disks[j];
        if (!k && !(k = disk_add(a, dom, vds[i].target, err)))
            goto out;
        k->libvirt = true;
        k->in_xml = true;
        k->xml_desc = source_desc(&vds[i].src);
        if (!k->xml_desc) {
            gvm_error_oom(err);
            goto out;
        }
        /* (locate() adds layers, never disks: k stays valid) */
        if (locate(a, &vds[i].src, &k->xml_idx, err) < 0)
            goto out;
        if (vds[i].nbacking > 0 && !(k->xml_chain = xml_chain(a, &vds[i], err)))
            goto out;
    }
    ret = 0;
out:
    virt_disks_free(vds, nvd);
    return ret;
}

static json_t *disk_image_json(const struct audit *a, int64_t id)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].catalogued && a->l[i].row.id == id)
            return audit_layer_ref(&a->l[i]);
    return json_pack("{s:I, s:n}", "id", (json_int_t)id, "name");
}

static const char *disk_image_name(const struct audit *a, int64_t id)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].catalogued && a->l[i].row.id == id)
            return a->l[i].name;
    return "an unknown image";
}

/* The catalog's chain below layer x, as names, following catalog edges. */
static json_t *catalog_chain(const struct audit *a, size_t x)
{
    json_t *arr = json_array();
    size_t steps = 0;
    for (size_t j = a->l[x].cbidx; arr && j != NONE && steps <= a->n;
         j = a->l[j].cbidx, steps++) {
        if (gvm_json_append(arr, json_string(a->l[j].name)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int audit_domain_compare(struct audit *a, struct disk *k, struct gvm_error *err)
{
    if (!k->libvirt)
        return 0;
    const struct layer *X = k->xml_idx != NONE ? &a->l[k->xml_idx] : NULL;
    bool x_usable = X && (X->state == L_PRESENT);
    json_t *xj = X ? audit_layer_ref(X) : json_pack("{s:n, s:s}", "id", "name",
                               k->xml_desc ? k->xml_desc : "?");

    if (!k->in_xml) {
        json_decref(xj);
        return audit_layer_diff(a->diffs, "disk", disk_image_json(a, k->cat_image),
                          audit_layer_disk_ref(k), disk_image_json(a, k->cat_image), NULL,
                          NULL, err, "The catalog records disk %s of domain %s "
                          "on %s but the domain's XML has no disk %s.", k->target,
                          k->domain, disk_image_name(a, k->cat_image), k->target);
    }
    if (k->cat_image == 0) {
        k->adoptable = x_usable;
        return audit_layer_diff(a->diffs, "disk", NULL, audit_layer_disk_ref(k), NULL, NULL, xj,
                          err, "The XML of domain %s has disk %s on %s but the "
                          "catalog records no such disk.", k->domain, k->target,
                          X ? X->name : k->xml_desc);
    }
    if (!X || !X->catalogued || X->row.id != k->cat_image) {
        k->adoptable = x_usable;
        return audit_layer_diff(a->diffs, "active-layer",
                          disk_image_json(a, k->cat_image), audit_layer_disk_ref(k),
                          disk_image_json(a, k->cat_image), NULL, xj,
                          err, "The catalog records %s as the active layer of "
                          "disk %s of domain %s but the domain's XML uses %s%s.",
                          disk_image_name(a, k->cat_image), k->target, k->domain,
                          X ? X->name : k->xml_desc,
                          X ? (X->catalogued ? "" : " (not catalogued)")
                            : " (on no registered volume)");
    }
    if (k->xml_chain) {
        json_t *cc = catalog_chain(a, k->xml_idx);
        if (!cc) {
            json_decref(xj);
            return gvm_error_oom(err);
        }
        if (!json_equal(cc, k->xml_chain)) {
            return audit_layer_diff(a->diffs, "chain", xj, audit_layer_disk_ref(k), cc, NULL,
                              json_incref(k->xml_chain), err,
                              "Below %s, the active layer of disk %s of domain "
                              "%s, the catalog's chain has %zu image(s) and the "
                              "domain XML's <backingStore> chain %zu, and they "
                              "differ.", X->name, k->target, k->domain,
                              json_array_size(cc), json_array_size(k->xml_chain));
        }
        json_decref(cc);
    }
    json_decref(xj);
    return 0;
}
