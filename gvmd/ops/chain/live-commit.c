/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * live-commit.c — checking and starting a block-commit on a running
 * domain's disk (the live path; live-job.c runs the job, whose top of file
 * says how libvirt does it and how the catalog follows).
 */
#include <inttypes.h>
#include <string.h>

#include "catalog-image.h"
#include "chain-job.h"
#include "chain-ops.h"
#include "jsonutil.h"
#include "live-job.h"
#include "live.h"
#include "resolve.h"

/* For chain_commit_only_child() in this file's messages. */
#define RUNNING "the running disk's chain"

/*
 * Where libvirt has the layers of the commit chain[0..k) (top first) into
 * base_id: consecutive, with indexes.  *t: top's position in the disk's
 * chain (0: the active layer), *child: the catalogued image above top (0
 * for an active commit).  0, or -1 with err set (Unsupported: why libvirt
 * cannot do it).
 */
static int find_layers(struct gvmd *d, const struct live_user *u,
                       const char *tname, const char *bname, int64_t top_id,
                       int64_t base_id, size_t k, size_t *t, int64_t *child,
                       struct gvm_error *err)
{
    _cleanup_free_ struct live_job_layer *lay = NULL;
    size_t nlay = 0, b;

    *child = 0;
    if (live_job_disk_layers(d, u->domain, u->target, &lay, &nlay, err) < 0)
        return -1;
    *t = live_job_layer_find(lay, nlay, top_id);
    b = live_job_layer_find(lay, nlay, base_id);
    if (*t >= nlay || b >= nlay || b != *t + k || !lay[b].index ||
        (*t > 0 && !lay[*t].index)) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "libvirt's view of disk %s of "
                      "running domain %s does not list %s and the images down "
                      "to %s as consecutive layers with indexes (its live XML "
                      "lacks <backingStore> elements for them), so libvirt "
                      "cannot commit them; define the domain with its full "
                      "backing chain in the disk's XML.", u->target, u->domain,
                      tname, bname ? bname : "the base");
        return -1;
    }
    if (*t > 0) {
        *child = lay[*t - 1].id;
        if (!*child) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED, "The image above %s in disk "
                          "%s of domain %s is not catalogued; gvmd cannot keep "
                          "its catalog in step with a commit under it (import "
                          "it with domain-attach first).", tname, u->target,
                          u->domain);
            return -1;
        }
    }
    return 0;
}

/* Does child's header name its backing file relative to its directory? */
static int child_relative(struct gvmd *d, int64_t child, bool *relative,
                          struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image crow = { 0 };

    *relative = false;
    if (!child)
        return 0;
    if (catalog_image_get(d->cat, child, &crow, err) < 0)
        return -1;
    *relative = live_job_is_relative(crow.backing_filename);
    return 0;
}

int live_commit_start(struct gvmd *d, const struct chain_commit_req *req,
                      json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved top = { 0 };
    _cleanup_live_user_ struct live_user u = { 0 };
    _cleanup_free_ char *tname = NULL, *bname = NULL;
    _cleanup_json_ json_t *params = NULL, *images = NULL, *removed = NULL;
    struct catalog_job_lock locks[2 * IMG_MAX_CHAIN_DEPTH + 2];
    int64_t chain[IMG_MAX_CHAIN_DEPTH];
    size_t k = 0, nlocks = 0, t;
    int64_t base_id, child = 0;
    bool relative = false;
    int r;

    if (!d->virt)
        return 0;
    if (resolve_catalogued(d, req->top, "top", &top, err) < 0)
        return -1;
    r = live_image_user(d, top.row.id, &u, err);
    if (r <= 0)
        return r;
    tname = resolve_name(top.vol.name, top.path);
    if (!tname)
        return gvm_error_oom(err);
    if (strcmp(top.row.format, "qcow2") != 0 || top.row.backing_id <= 0) {
        gvm_error_param(err, "top", "The image %s has no catalogued backing "
                        "file to commit into.", tname);
        return -1;
    }
    if (chain_commit_base(d, req, &top, &base_id, err) < 0)
        return -1;
    bname = resolve_image_name(d, base_id);
    if (chain_commit_walk(d, top.row.id, tname, base_id, chain, &k, err) < 0)
        return -1;
    if (find_layers(d, &u, tname, bname, top.row.id, base_id, k, &t, &child,
                    err) < 0)
        return -1;
    /* Nothing outside the running chain may depend on what changes; then
     * snapshots, domain disks and overlays the catalog does not know:
     * refused before libvirt is asked for anything. */
    if (chain_commit_only_children(d, base_id, chain, k, child, RUNNING,
                                   err) < 0 ||
        chain_commit_check(d, top.row.id, base_id, chain, k, err) < 0 ||
        child_relative(d, child, &relative, err) < 0 ||
        live_job_disk_idle(d, u.domain, u.target, err) < 0)
        return -1;

    removed = json_array();
    images = json_array();
    if (!removed || !images)
        return gvm_error_oom(err);
    if (chain_commit_plan_removed(d, chain, k, removed, images, locks,
                                  &nlocks, err) < 0)
        return -1;
    if (gvm_json_append(images, json_integer(base_id)) < 0 ||
        (child && gvm_json_append(images, json_integer(child)) < 0))
        return gvm_error_oom(err);
    locks[nlocks++] = (struct catalog_job_lock){ .image_id = base_id, .write = true };
    if (child)
        locks[nlocks++] = (struct catalog_job_lock){ .image_id = child, .write = true };

    if (chain_commit_lock_below(d, base_id, bname ? bname : "?", locks, &nlocks,
                                GVM_ARRAY_SIZE(locks), err) < 0)
        return -1;
    params = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:b, s:I, s:b, s:O}",
                       "domain", u.domain, "disk", u.target,
                       "top", (json_int_t)top.row.id,
                       "base", (json_int_t)base_id,
                       "child", (json_int_t)child,
                       "active", t == 0, "pivot", req->pivot,
                       "speed", (json_int_t)req->speed,
                       "relative", relative, "removed", removed);
    if (!params)
        return gvm_error_oom(err);
    log_info("block-commit of %s into %s: %s commit on disk %s of running "
             "domain %s through libvirt.", tname, bname ? bname : "?",
             t == 0 ? "active" : "intermediate", u.target, u.domain);
    if (chain_job_create(d, &live_commit_job, params, images, locks, nlocks,
                         req->op_id, "commit", tname, result, err) < 0)
        return -1;
    return 1;
}
