/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-define.c — rewrite the disks of a stopped domain's persistent libvirt
 * definition so they name the catalog's active images (virt-define.h).
 *
 * Which disks are stale is decided from virt_domain_disks() (the parsed
 * inactive XML) and live_source_image(), the same mapping from a libvirt
 * source to a catalogued image the live path uses.  The new <source> is the
 * one domain-disk-xml would emit (rpc-diskxml.c), in the form the disk had:
 * a network disk stays a gluster network disk with every server of the
 * volume, a file disk stays a file (a dir volume's file, or the FUSE path
 * of a gluster volume's).  The rest of the domain XML (read with
 * VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE, so nothing secret is
 * lost by the round trip) is kept as libvirt wrote it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "catalog-image.h"
#include "catalog-job.h"
#include "image.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "virt-diskxml.h"
#include "virt-define.h"
#include "virt-util.h"
#include "virt.h"
#include "volume.h"

/* Whether n's attribute name equals value (absent: false). */
static bool attr_is(xmlNode *n, const char *name, const char *value)
{
    xmlChar *x = n ? xmlGetProp(n, (const xmlChar *)name) : NULL;
    bool eq = x && strcmp((const char *)x, value) == 0;

    xmlFree(x);
    return eq;
}

static xmlDoc *parse(const char *xml, const char *what)
{
    return xmlReadMemory(xml, (int)strlen(xml), what, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR |
                         XML_PARSE_NOWARNING);
}

/* A stale disk: its target, the catalog's image, and what libvirt names. */
struct stale {
    const char *target;     /* borrowed from the catalog domain */
    int64_t image_id;
    char *was;              /* libvirt's source, for messages   */
};

static char *source_label(struct gvmd *d, const struct virt_source *s)
{
    struct catalog_volume vol = { 0 };
    _cleanup_free_ char *path = NULL;
    struct gvm_error e = { 0 };
    char *out = NULL;

    if (live_source_locate(d, s, &vol, &path, &e) == 1) {
        out = resolve_name(vol.name, path);
        catalog_volume_clear(&vol);
        return out;
    }
    if (s->type == VIRT_SOURCE_FILE && s->file)
        return strdup(s->file);
    if (s->type == VIRT_SOURCE_GLUSTER &&
        asprintf(&out, "gluster %s/%s", s->glvolume ? s->glvolume : "?",
                 s->path ? s->path : "?") >= 0)
        return out;
    return strdup("a source gvmd does not know");
}

/*
 * For a source that names no catalogued image: 1 if it is a file gvmd
 * removed (on a registered volume, missing on storage: committed away),
 * 0 if it exists or lies elsewhere — an overlay made behind gvmd's back
 * (an offline `virsh snapshot-create`), whose backing file the catalog's
 * image may be: pointing the disk back there would let the guest write
 * under it.  -1 on error.
 */
static int gone(struct gvmd *d, const struct virt_source *s,
                struct gvm_error *err)
{
    struct catalog_volume vol = { 0 };
    _cleanup_free_ char *path = NULL;
    struct gvm_store *st = NULL;
    struct gvm_stat gs;
    int r = live_source_locate(d, s, &vol, &path, err);

    if (r <= 0)
        return r;
    r = volumes_store_by_id(d->vols, vol.id, &st, err);
    catalog_volume_clear(&vol);
    if (r < 0)
        return -1;
    r = st->ops->stat(st, path, &gs);
    if (r == -ENOENT)
        return 1;
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Cannot look at %s", path);
        return -1;
    }
    return 0;
}

/* The <disk> domain-disk-xml would emit for the catalog's image. */
static int new_disk_xml(struct gvmd *d, int64_t image_id, const char *target,
                        bool network, char **xml, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    struct catalog_volume vol = { 0 };
    bool fuse;
    int rc;

    if (catalog_image_get(d->cat, image_id, &row, err) < 0 ||
        catalog_volume_get_by_id(d->cat, row.volume_id, &vol, err) < 0)
        return -1;
    /* A file disk on a gluster volume is reached through the FUSE mount;
     * without one configured, natively is the only way gvmd knows. */
    fuse = !network && d->cfg.fuse_mount && *d->cfg.fuse_mount;
    rc = virt_diskxml_build(&vol, row.path, row.format, target, fuse,
                           d->cfg.fuse_mount, xml, err);
    catalog_volume_clear(&vol);
    return rc;
}

/* Replace disk's <source>, <backingStore>s and driver type by those of
 * the generated disk element repl. */
static int rewrite_disk(xmlDoc *doc, xmlNode *disk, xmlNode *repl,
                        struct gvm_error *err)
{
    xmlNode *nsrc = virt_xml_child(repl, "source");
    xmlNode *ndrv = virt_xml_child(repl, "driver");
    xmlNode *osrc = virt_xml_child(disk, "source");
    xmlNode *odrv = virt_xml_child(disk, "driver");
    xmlChar *type = xmlGetProp(repl, (const xmlChar *)"type");
    xmlChar *fmt = ndrv ? xmlGetProp(ndrv, (const xmlChar *)"type") : NULL;
    xmlNode *copy = nsrc ? xmlDocCopyNode(nsrc, doc, 1) : NULL;
    int rc = -1;

    if (!type || !fmt || !copy) {
        gvm_error_oom(err);
        goto out;
    }
    /* Whatever libvirt knew of the old chain does not apply any more. */
    for (xmlNode *c = disk->children, *next; c; c = next) {
        next = c->next;
        if (virt_xml_is(c, "backingStore")) {
            xmlUnlinkNode(c);
            xmlFreeNode(c);
        }
    }
    if (osrc) {
        xmlReplaceNode(osrc, copy);
        xmlFreeNode(osrc);
    } else if (!xmlAddChild(disk, copy)) {
        gvm_error_oom(err);
        goto out;
    }
    copy = NULL;
    if (!xmlSetProp(disk, (const xmlChar *)"type", type))
        goto oom;
    if (odrv) {
        if (!xmlSetProp(odrv, (const xmlChar *)"type", fmt))
            goto oom;
    } else {
        xmlNode *dc = xmlDocCopyNode(ndrv, doc, 1);

        if (!dc || !(disk->children ? xmlAddPrevSibling(disk->children, dc)
                                    : xmlAddChild(disk, dc))) {
            xmlFreeNode(dc);
            goto oom;
        }
    }
    rc = 0;
    goto out;
oom:
    gvm_error_oom(err);
out:
    if (copy)
        xmlFreeNode(copy);
    xmlFree(type);
    xmlFree(fmt);
    return rc;
}

/* Edit libvirt's inactive XML of vdom for the stale disks and define it. */
static int redefine(struct gvmd *d, const struct catalog_domain *dom,
                    virDomainPtr vdom, const struct stale *st, size_t nst,
                    struct gvm_error *err)
{
    _cleanup_free_ char *xml = virDomainGetXMLDesc(vdom,
        VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    _cleanup_xmldoc_ xmlDoc *doc = NULL;
    xmlNode *devices;
    xmlChar *out = NULL;
    int len = 0;
    size_t done = 0;
    virDomainPtr ndom;

    if (!xml) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot read the definition of "
                      "domain %s: %s", dom->name, virGetLastErrorMessage());
        return -1;
    }
    doc = parse(xml, "domain.xml");
    devices = virt_xml_child(doc ? xmlDocGetRootElement(doc) : NULL, "devices");
    if (!devices) {
        gvm_error_set(err, GVM_ERR_VIRT, "libvirt's definition of domain %s "
                      "cannot be parsed (no <devices>).", dom->name);
        return -1;
    }
    for (xmlNode *c = devices->children; c; c = c->next) {
        xmlNode *tgt = virt_xml_child(c, "target");
        const struct stale *s = NULL;

        if (!virt_xml_is(c, "disk") ||
            (xmlHasProp(c, (const xmlChar *)"device") &&
             !attr_is(c, "device", "disk")))
            continue;
        for (size_t i = 0; i < nst && !s; i++)
            if (attr_is(tgt, "dev", st[i].target))
                s = &st[i];
        if (!s)
            continue;
        _cleanup_free_ char *nx = NULL;
        if (new_disk_xml(d, s->image_id, s->target, attr_is(c, "type", "network"),
                         &nx, err) < 0)
            return -1;
        _cleanup_xmldoc_ xmlDoc *ndoc = parse(nx, "disk.xml");
        xmlNode *repl = ndoc ? xmlDocGetRootElement(ndoc) : NULL;
        if (!repl) {
            gvm_error_set(err, GVM_ERR_INTERNAL, "The disk XML generated for "
                          "disk %s of domain %s does not parse.", s->target,
                          dom->name);
            return -1;
        }
        if (rewrite_disk(doc, c, repl, err) < 0)
            return -1;
        done++;
    }
    if (done == 0)
        return 0;       /* the disks went away meanwhile */
    xmlDocDumpMemory(doc, &out, &len);
    if (!out)
        return gvm_error_oom(err);
    ndom = virDomainDefineXML(virDomainGetConnect(vdom), (const char *)out);
    xmlFree(out);
    if (!ndom) {
        gvm_error_set(err, GVM_ERR_VIRT, "libvirt refused the new definition: "
                      "%s", virGetLastErrorMessage());
        return -1;
    }
    virDomainFree(ndom);
    return 1;
}

/* " vda (names local:a.qcow2, the catalog local:b.qcow2)" for messages. */
static char *stale_list(struct gvmd *d, const struct stale *st, size_t n)
{
    char *s = strdup("");

    for (size_t i = 0; s && i < n; i++) {
        _cleanup_free_ char *now = resolve_image_name(d, st[i].image_id);
        char *t = NULL;

        if (asprintf(&t, "%s%s%s (names %s, the catalog's active image is %s)",
                     s, i ? ", " : "", st[i].target, st[i].was,
                     now ? now : "?") < 0)
            t = NULL;
        free(s);
        s = t;
    }
    return s;
}

/*
 * 1 if the definition gives disk v (whose <source> is the catalog's
 * active image_id) a <backingStore> chain that is not the catalog's
 * chain below image_id, 0 if it agrees or gives none, -1 on error.  A
 * chain in the definition is what libvirt opens at the next start, over
 * the qcow2 headers: after an offline commit, pull, rebase or
 * snapshot-delete below the active layer it would name images committed
 * away or skip the one a pull left.
 */
static int backing_stale(struct gvmd *d, const struct virt_disk *v,
                         int64_t image_id, struct gvm_error *err)
{
    int64_t want = image_id;

    for (size_t j = 0; j <= v->nbacking; j++) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        int64_t id = 0;
        int r;

        if (catalog_image_get(d->cat, want, &row, err) < 0)
            return -1;
        want = row.backing_id;
        if (j == v->nbacking)
            break;
        r = live_source_image(d, &v->backing[j], &id, err);
        if (r < 0)
            return -1;
        if (r == 0 || want <= 0 || id != want)
            return 1;
    }
    return v->nbacking > 0 && want > 0 ? 1 : 0;
}

/*
 * libvirt's disks of dom, looked up by uuid, then by name.  1 with *key
 * the name libvirt knows the domain by, 0 when there is nothing to check
 * (unknown to libvirt, libvirt unreachable: logged), -1 with err.
 */
static int read_disks(struct gvmd *d, const struct catalog_domain *dom,
                      const char **key, struct virt_disk **vd, size_t *nvd,
                      bool *running, struct gvm_error *err)
{
    struct gvm_error e = { 0 };
    int r = virt_domain_disks(d->virt, *key, vd, nvd, running, &e);

    /* A domain attached with explicit disks has a uuid of gvmd's making:
     * libvirt knows it by name (as chain-audit looks it up). */
    if (r < 0 && e.cls == GVM_ERR_NOT_FOUND && *key != dom->name) {
        gvm_error_clear(&e);
        *key = dom->name;
        r = virt_domain_disks(d->virt, *key, vd, nvd, running, &e);
    }
    if (r >= 0)
        return 1;
    if (e.cls == GVM_ERR_NOT_FOUND) {
        log_info("Domain %s is not defined in libvirt: no definition to "
                 "update.", dom->name);
        return 0;
    }
    if (!virt_connected(d->virt)) {
        log_info("libvirt is unreachable: the definition of domain %s "
                 "is not checked now (%s).", dom->name, e.message);
        return 0;
    }
    gvm_error_set(err, GVM_ERR_VIRT, "libvirt's definition of domain %s "
                  "was not checked against the catalog: %s", dom->name,
                  e.message);
    return -1;
}

/*
 * Whether catalog disk cd's libvirt disk v must be rewritten: 1 if it
 * names another image than the catalog's, a chain that is not the
 * catalog's or a file gvmd removed; 0 if it is in step or names an image
 * gvmd did not put there (logged); -1 with err.
 */
static int disk_is_stale(struct gvmd *d, const struct catalog_domain *dom,
                         const struct catalog_disk *cd,
                         const struct virt_disk *v, struct gvm_error *err)
{
    int64_t id = 0;
    int r = live_source_image(d, &v->src, &id, err);

    if (r < 0)
        return -1;
    if (r == 1 && id == cd->image_id) {
        r = backing_stale(d, v, id, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
    }
    if (r == 0) {
        r = gone(d, &v->src, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            _cleanup_free_ char *was = source_label(d, &v->src);

            log_warn("Domain %s: libvirt's definition of disk %s names "
                     "%s, which gvmd did not put there and which is not "
                     "catalogued: left as it is (run chain-audit).",
                     dom->name, cd->target, was ? was : "?");
            return 0;
        }
    }
    return 1;
}

/* Fill st (dom->ndisks entries) with the stale disks; *nst counts them,
 * also on failure (their `was` must be freed). */
static int find_stale(struct gvmd *d, const struct catalog_domain *dom,
                      const struct virt_disk *vd, size_t nvd,
                      struct stale *st, size_t *nst, struct gvm_error *err)
{
    for (size_t i = 0; i < dom->ndisks; i++) {
        const struct catalog_disk *cd = &dom->disks[i];
        const struct virt_disk *v = NULL;
        int r;

        for (size_t k = 0; k < nvd && !v; k++)
            if (vd[k].target && strcmp(vd[k].target, cd->target) == 0)
                v = &vd[k];
        if (!v) {
            log_debug("Domain %s: libvirt's definition has no disk %s.",
                      dom->name, cd->target);
            continue;
        }
        r = disk_is_stale(d, dom, cd, v, err);
        if (r < 0)
            return -1;
        if (r == 0)
            continue;
        st[*nst].target = cd->target;
        st[*nst].image_id = cd->image_id;
        st[*nst].was = source_label(d, &v->src);
        if (!st[(*nst)++].was)
            return gvm_error_oom(err);
    }
    return 0;
}

/* Say how the redefinition went (rc as virt_define_sync returns it; e why
 * it failed). */
static void report_redefine(struct gvmd *d, const struct catalog_domain *dom,
                            const struct stale *st, size_t nst, int rc,
                            struct gvm_error *e, struct gvm_error *err)
{
    _cleanup_free_ char *list = stale_list(d, st, nst);
    size_t ml = strlen(e->message);

    /* e's sentence continues ours: no full stop of its own. */
    while (ml > 0 && (e->message[ml - 1] == '.' || e->message[ml - 1] == ' '))
        e->message[--ml] = '\0';
    if (rc < 0)
        gvm_error_set(err, GVM_ERR_VIRT, "libvirt's definition of domain "
                      "%s was not updated and still names former images "
                      "for disk(s) %s: %s. Do not start %s before it is "
                      "repaired: gvmd tries again at its next start (or "
                      "put domain-disk-xml's <disk> for the catalog's "
                      "image into it with virsh edit).", dom->name,
                      list ? list : "?", e->message, dom->name);
    else if (rc > 0)
        log_info("Redefined domain %s in libvirt: disk(s) %s now name "
                 "the catalog's active images.", dom->name,
                 list ? list : "?");
}

int virt_define_sync(struct gvmd *d, const struct catalog_domain *dom,
                     struct gvm_error *err)
{
    const char *key = dom->uuid && *dom->uuid ? dom->uuid : dom->name;
    struct virt_disk *vd = NULL;
    size_t nvd = 0, nst = 0;
    bool running = false;
    struct gvm_error e = { 0 };
    _cleanup_free_ struct stale *st = NULL;
    _cleanup_domain_ virDomainPtr vdom = NULL;
    int rc = -1;

    /* libvirt-uri none: there is no definition to keep in step. */
    if (dom->ndisks == 0 || !virt_configured(d->virt))
        return 0;
    int r = read_disks(d, dom, &key, &vd, &nvd, &running, err);
    if (r <= 0)
        return r;
    if (running) {
        rc = 0;         /* the live path keeps a running domain in step */
        goto out;
    }
    st = calloc(dom->ndisks, sizeof(*st));
    if (!st) {
        gvm_error_oom(err);
        goto out;
    }
    if (find_stale(d, dom, vd, nvd, st, &nst, err) < 0)
        goto out;
    if (nst == 0) {
        rc = 0;
        goto out;
    }
    vdom = virt_domain_lookup(d->virt, key, &e);
    if (!vdom)
        rc = -1;        /* e says why */
    else {
        rc = redefine(d, dom, vdom, st, nst, &e);
    }
    report_redefine(d, dom, st, nst, rc, &e, err);
out:
    for (size_t i = 0; st && i < nst; i++)
        free(st[i].was);
    virt_disks_free(vd, nvd);
    return rc;
}

int virt_define_sync_domain(struct gvmd *d, int64_t domain_id,
                            const char *done, struct gvm_error *err)
{
    struct catalog_domain dom = { 0 };
    struct gvm_error e = { 0 };
    int r = catalog_domain_get(d->cat, domain_id, &dom, &e);

    if (r == 0)
        r = virt_define_sync(d, &dom, &e);
    catalog_domain_clear(&dom);
    if (r >= 0)
        return 0;
    if (done)
        gvm_error_set(err, e.cls, "%s, but %s", done, e.message);
    else
        *err = e;
    return -1;
}

char *virt_define_sync_id(struct gvmd *d, int64_t domain_id)
{
    struct gvm_error e = { 0 };
    char *w;

    if (virt_define_sync_domain(d, domain_id, NULL, &e) == 0)
        return NULL;
    log_warn("%s", e.message);
    w = strdup(e.message);
    return w;
}

int virt_define_warn(json_t **result, const char *warning,
                     struct gvm_error *err)
{
    if (!*result)
        return -1;
    if (warning && gvm_json_set(*result, "warning", json_string(warning)) < 0) {
        json_decref(*result);
        *result = NULL;
        return gvm_error_oom(err);
    }
    return 0;
}

/* 1 if image_id is in the catalogued chain of one of dom's disks. */
static int in_chains(struct gvmd *d, const struct catalog_domain *dom,
                     int64_t image_id, struct gvm_error *err)
{
    for (size_t i = 0; i < dom->ndisks; i++) {
        int64_t id = dom->disks[i].image_id;

        for (int depth = 0; id > 0 && depth <= IMG_MAX_CHAIN_DEPTH; depth++) {
            _cleanup_catimg_ struct catalog_image row = { 0 };

            if (id == image_id)
                return 1;
            if (catalog_image_get(d->cat, id, &row, err) < 0)
                return -1;
            id = row.backing_id;
        }
    }
    return 0;
}

int virt_define_sync_image(struct gvmd *d, int64_t image_id, const char *done,
                           struct gvm_error *err)
{
    struct catalog_domain *doms = NULL;
    size_t n = 0;
    struct gvm_error e = { 0 };
    int r = 0;

    if (!virt_configured(d->virt))
        return 0;
    if (catalog_domain_list(d->cat, &doms, &n, &e) < 0)
        r = -1;
    for (size_t i = 0; i < n && r >= 0; i++) {
        r = in_chains(d, &doms[i], image_id, &e);
        if (r > 0)
            r = virt_define_sync(d, &doms[i], &e);
    }
    catalog_domains_free(doms, n);
    if (r >= 0)
        return 0;
    gvm_error_set(err, e.cls, "%s, but %s", done, e.message);
    return -1;
}

/* Whether a job holds one of dom's active images. */
static bool held_by_job(struct gvmd *d, const struct catalog_domain *dom)
{
    struct gvm_error e = { 0 };

    for (size_t i = 0; i < dom->ndisks; i++)
        if (catalog_job_lock_holder(d->cat, dom->disks[i].image_id, &e) != 0)
            return true;
    return false;
}

void virt_define_sync_all(struct gvmd *d)
{
    struct catalog_domain *doms = NULL;
    size_t n = 0, todo;
    struct gvm_error e = { 0 };

    if (!virt_configured(d->virt))
        return;
    if (catalog_domain_list(d->cat, &doms, &n, &e) < 0) {
        log_warn("Cannot list the attached domains to check their libvirt "
                 "definitions: %s", e.message);
        return;
    }
    todo = n;
    if (n > 0 && virt_connect(d->virt, NULL, &e) < 0) {
        log_info("libvirt is unreachable at start-up: the definitions of "
                 "the %zu attached domain(s) are not checked (%s).", n,
                 e.message);
        todo = 0;
    }
    for (size_t i = 0; i < todo; i++) {
        struct gvm_error e2 = { 0 };

        if (held_by_job(d, &doms[i]))
            continue;
        if (virt_define_sync(d, &doms[i], &e2) < 0)
            log_warn("%s", e2.message);
    }
    catalog_domains_free(doms, n);
}
