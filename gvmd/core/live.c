/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * live.c — which running libvirt domain uses a catalogued image (live.h).
 *
 * The question is asked before every mutating operation, so it is answered
 * from one listing of the running domains and the catalog's backing edges,
 * without opening any image.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-image.h"
#include "live.h"
#include "resolve.h"

void live_user_clear(struct live_user *u)
{
    free(u->domain);
    free(u->target);
    memset(u, 0, sizeof(*u));
}

static void vols_freep(struct catalog_volume **v, size_t n)
{
    catalog_volumes_free(*v, n);
}

/* rel (caller frees) if file lies under dir, else NULL with *oom false. */
static char *under(const char *dir, const char *file, bool *oom)
{
    _cleanup_free_ char *d = path_normalize(NULL, dir);
    _cleanup_free_ char *f = path_normalize(NULL, file);
    size_t ld;

    *oom = !d || !f;
    if (*oom)
        return NULL;
    ld = strlen(d);
    if (strncmp(f, d, ld) != 0 || (ld && f[ld] != '/'))
        return NULL;
    char *rel = strdup(f + ld + (ld ? 1 : 0));
    *oom = !rel;
    return rel;
}

int live_source_locate(struct gvmd *d, const struct virt_source *src,
                       struct catalog_volume *vol, char **path,
                       struct gvm_error *err)
{
    struct catalog_volume *vols = NULL;
    size_t n = 0;
    int found = 0;
    bool oom = false;

    *path = NULL;
    memset(vol, 0, sizeof(*vol));
    if (src->type == VIRT_SOURCE_OTHER)
        return 0;
    if (catalog_volume_list(d->cat, &vols, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n && !found && !oom; i++) {
        struct catalog_volume *v = &vols[i];
        _cleanup_free_ char *rel = NULL;

        if (src->type == VIRT_SOURCE_GLUSTER) {
            if (v->backend != CATALOG_BACKEND_GLUSTER || !src->glvolume ||
                strcmp(v->gluster_volume, src->glvolume) != 0)
                continue;
            rel = path_normalize(NULL, src->path);
            oom = !rel;
        } else if (v->backend == CATALOG_BACKEND_DIR) {
            rel = under(v->root_path, src->file, &oom);
        } else if (d->cfg.fuse_mount && *d->cfg.fuse_mount) {
            _cleanup_free_ char *mnt = path_normalize(d->cfg.fuse_mount,
                                                      v->gluster_volume);
            oom = !mnt;
            if (mnt) {
                /* under() normalises without the leading '/'. */
                _cleanup_free_ char *abs = malloc(strlen(mnt) + 2);
                oom = !abs;
                if (abs) {
                    abs[0] = '/';
                    strcpy(abs + 1, mnt);
                    rel = under(abs, src->file, &oom);
                }
            }
        }
        if (rel && *rel) {
            *vol = *v;
            memset(v, 0, sizeof(*v));
            *path = steal_pointer(&rel);
            found = 1;
        }
    }
    vols_freep(&vols, n);
    if (oom) {
        catalog_volume_clear(vol);
        free(*path);
        *path = NULL;
        return gvm_error_oom(err);
    }
    return found;
}

int live_source_image(struct gvmd *d, const struct virt_source *src,
                      int64_t *image_id, struct gvm_error *err)
{
    _cleanup_(catalog_volume_clear) struct catalog_volume vol = { 0 };
    _cleanup_free_ char *path = NULL;
    _cleanup_catimg_ struct catalog_image row = { 0 };
    int r;

    *image_id = 0;
    r = live_source_locate(d, src, &vol, &path, err);
    if (r <= 0)
        return r;
    r = catalog_image_find(d->cat, vol.id, path, &row, err);
    if (r == 1)
        *image_id = row.id;
    return r;
}

/* Depth of image_id below active_id in the catalogued chain, or -1. */
static int catalog_depth(struct gvmd *d, int64_t active_id, int64_t image_id,
                         struct gvm_error *err)
{
    int64_t id = active_id;

    /* The bound guards against a cycle a corrupt catalog might hold. */
    for (int depth = 0; id && depth < 4096; depth++) {
        _cleanup_catimg_ struct catalog_image row = { 0 };

        if (id == image_id)
            return depth;
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -2;
        id = row.backing_id;
    }
    return -1;
}

/* Whether disk uses the image (vol, path, id): depth, -1 if not, -2 error. */
static int disk_depth(struct gvmd *d, const struct virt_disk *disk,
                      int64_t image_id, int64_t *active_id,
                      struct gvm_error *err)
{
    int64_t id;
    int r;

    *active_id = 0;
    if (live_source_image(d, &disk->src, &id, err) < 0)
        return -2;
    if (id) {
        *active_id = id;
        if ((r = catalog_depth(d, id, image_id, err)) != -1)
            return r;
    }
    for (size_t j = 0; j < disk->nbacking; j++) {
        if (live_source_image(d, &disk->backing[j], &id, err) < 0)
            return -2;
        if (id == image_id && id)
            return (int)j + 1;
    }
    return -1;
}

/*
 * libvirt is configured but does not answer: nobody can tell whether a
 * running guest uses the image, and "nobody" would be a guess that lets a
 * write corrupt a guest's disk.  InUse, saying so and how a host without
 * libvirt says it has none.  what: "delete", ... (NULL: no method to name,
 * for the live path's routing).
 */
static int unknown(struct gvmd *d, int64_t image_id, const char *what,
                   const struct gvm_error *verr, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    _cleanup_free_ char *name = NULL;
    struct gvm_error e2 = { 0 };
    char subject[256], prefix[320] = "";

    if (catalog_image_get(d->cat, image_id, &row, &e2) == 0)
        name = resolve_name(row.volume, row.path);
    if (name)
        snprintf(subject, sizeof(subject), "the image %s", name);
    else
        snprintf(subject, sizeof(subject), "image %" PRId64, image_id);
    if (what)
        snprintf(prefix, sizeof(prefix), "Cannot %s %s: ", what,
                 name ? name : subject);
    /* libvirt's own words last: a long path truncates them, not the
     * advice. */
    gvm_error_set(err, GVM_ERR_IN_USE, "%slibvirt at %s cannot be reached, "
                  "so gvmd cannot tell whether a running domain uses %s, "
                  "and does not write it. Start libvirtd, or, on a host "
                  "without libvirt, run gvmd with --libvirt-uri none "
                  "(`libvirt-uri = none` in the configuration file). "
                  "libvirt: %s", prefix, virt_uri(d->virt), subject,
                  verr->message);
    return -1;
}

/* Whether libvirt is configured; when it is, the running domains (VirtError
 * in verr when libvirt does not answer). */
static int running_domains(struct gvmd *d, struct virt_domain **doms,
                           size_t *n, struct gvm_error *verr)
{
    *doms = NULL;
    *n = 0;
    if (!virt_configured(d->virt))
        return 0;
    return virt_running_domains(d->virt, doms, n, verr) < 0 ? -1 : 1;
}

/* live_image_user(), with what for the refusal when libvirt does not
 * answer, or unknown_ok: then the answer is "none" (for reads). */
static int image_user(struct gvmd *d, int64_t image_id, const char *what,
                      bool unknown_ok, struct live_user *u,
                      struct gvm_error *err)
{
    struct virt_domain *doms = NULL;
    size_t n = 0;
    struct gvm_error verr;
    int found = 0;

    memset(u, 0, sizeof(*u));
    gvm_error_clear(&verr);
    int r = running_domains(d, &doms, &n, &verr);
    if (r < 0) {
        if (!unknown_ok)
            return unknown(d, image_id, what, &verr, err);
        log_debug("Not knowing who uses image %" PRId64 ": %s", image_id,
                  verr.message);
        return 0;
    }
    if (r == 0)
        return 0;
    for (size_t i = 0; i < n && !found; i++) {
        for (size_t k = 0; k < doms[i].ndisks && !found; k++) {
            int64_t active;
            int depth = disk_depth(d, &doms[i].disks[k], image_id, &active, err);

            if (depth == -2) {
                found = -1;
                break;
            }
            if (depth < 0)
                continue;
            u->domain = strdup(doms[i].name);
            u->target = strdup(doms[i].disks[k].target ? doms[i].disks[k].target : "?");
            u->active_id = active;
            u->depth = depth;
            found = 1;
            if (!u->domain || !u->target) {
                live_user_clear(u);
                found = gvm_error_oom(err);
            }
        }
    }
    virt_domains_free(doms, n);
    return found;
}

int live_image_user(struct gvmd *d, int64_t image_id, struct live_user *u,
                    struct gvm_error *err)
{
    return image_user(d, image_id, NULL, false, u, err);
}

int live_image_reader(struct gvmd *d, int64_t image_id, struct live_user *u,
                      struct gvm_error *err)
{
    return image_user(d, image_id, NULL, true, u, err);
}

/* InUse: domain's disk target uses image_id at depth. */
static int refuse(struct gvmd *d, int64_t image_id, const char *what,
                  const char *domain, const char *target, int depth,
                  struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    _cleanup_free_ char *name = NULL;

    if (catalog_image_get(d->cat, image_id, &row, err) < 0)
        return -1;
    name = resolve_name(row.volume, row.path);
    gvm_error_set(err, GVM_ERR_IN_USE, "Cannot %s %s: running domain %s uses "
                  "it (disk %s, %s); gvmd does not touch the images of a "
                  "running guest offline — stop the domain, or use the "
                  "methods libvirt can do live (snapshot-create, block-commit, "
                  "block-pull).", what, name ? name : "the image", domain,
                  target ? target : "?",
                  depth == 0 ? "its active layer" : "in its backing chain");
    return -1;
}

int live_refuse_running(struct gvmd *d, int64_t image_id, const char *what,
                        struct gvm_error *err)
{
    _cleanup_live_user_ struct live_user u = { 0 };
    int r = image_user(d, image_id, what, false, &u, err);

    if (r <= 0)
        return r;
    return refuse(d, image_id, what, u.domain, u.target, u.depth, err);
}

int live_refuse_running_ids(struct gvmd *d, const int64_t *ids, size_t n,
                            const char *what, struct gvm_error *err)
{
    struct virt_domain *doms = NULL;
    size_t ndoms = 0;
    struct gvm_error verr;
    int ret = 0;

    if (n == 0)
        return 0;
    if (n == 1)
        return live_refuse_running(d, ids[0], what, err);
    gvm_error_clear(&verr);
    int r = running_domains(d, &doms, &ndoms, &verr);
    if (r < 0)
        return unknown(d, ids[0], what, &verr, err);
    if (r == 0)
        return 0;
    /* One listing, then every disk against every id: the lists are short. */
    for (size_t i = 0; i < ndoms && ret == 0; i++) {
        for (size_t k = 0; k < doms[i].ndisks && ret == 0; k++) {
            for (size_t j = 0; j < n && ret == 0; j++) {
                int64_t active;
                int depth = disk_depth(d, &doms[i].disks[k], ids[j], &active, err);

                if (depth == -2)
                    ret = -1;
                else if (depth >= 0)
                    ret = refuse(d, ids[j], what, doms[i].name,
                                 doms[i].disks[k].target, depth, err);
            }
        }
    }
    virt_domains_free(doms, ndoms);
    return ret;
}
