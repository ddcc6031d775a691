/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * live-pull.c — checking and starting a block-pull into a running
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

int live_pull_start(struct gvmd *d, const struct chain_pull_req *req,
                    json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved img = { 0 };
    _cleanup_live_user_ struct live_user u = { 0 };
    _cleanup_free_ struct live_job_layer *lay = NULL;
    _cleanup_free_ char *iname = NULL;
    _cleanup_json_ json_t *params = NULL, *images = NULL;
    struct catalog_job_lock locks[IMG_MAX_CHAIN_DEPTH + 2];
    bool has_base = req->base && !json_is_null(req->base);
    int64_t base_id = 0, id;
    size_t nlay = 0, nlocks = 0, b = 0;
    bool found = !has_base;
    int r;

    if (!d->virt)
        return 0;
    if (resolve_catalogued(d, req->image, "image", &img, err) < 0)
        return -1;
    r = live_image_user(d, img.row.id, &u, err);
    if (r <= 0)
        return r;
    iname = resolve_name(img.vol.name, img.path);
    if (!iname)
        return gvm_error_oom(err);
    if (u.depth != 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "The image %s is %d layer(s) "
                      "below the active layer of disk %s of running domain %s; "
                      "libvirt can pull only into a disk's active layer.",
                      iname, u.depth, u.target, u.domain);
        return -1;
    }
    if (strcmp(img.row.format, "qcow2") != 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "The image %s is %s; only a "
                      "qcow2 image has a backing chain to pull from.", iname,
                      img.row.format);
        return -1;
    }
    if (has_base) {
        _cleanup_resolved_ struct resolved nb = { 0 };
        if (resolve_catalogued(d, req->base, "base", &nb, err) < 0)
            return -1;
        base_id = nb.row.id;
    }
    images = json_array();
    if (!images)
        return gvm_error_oom(err);
    locks[nlocks++] = (struct catalog_job_lock){ .image_id = img.row.id, .write = true };
    if (gvm_json_append(images, json_integer(img.row.id)) < 0)
        return gvm_error_oom(err);
    for (id = img.row.backing_id; id > 0;) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        if (nlocks >= GVM_ARRAY_SIZE(locks)) {
            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below %s "
                          "is deeper than %d images.", iname, IMG_MAX_CHAIN_DEPTH);
            return -1;
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        locks[nlocks++] = (struct catalog_job_lock){ .image_id = id, .write = false };
        if (gvm_json_append(images, json_integer(id)) < 0)
            return gvm_error_oom(err);
        if (id == base_id)
            found = true;
        id = row.backing_id;
    }
    if (!found || base_id == img.row.id) {
        _cleanup_free_ char *bn = resolve_image_name(d, base_id);
        gvm_error_param(err, "base", "The image %s is not in the backing chain "
                        "of %s.", bn ? bn : "?", iname);
        return -1;
    }
    if (has_base) {
        if (live_job_disk_layers(d, u.domain, u.target, &lay, &nlay, err) < 0)
            return -1;
        b = live_job_layer_find(lay, nlay, base_id);
        if (b >= nlay || !lay[b].index) {
            _cleanup_free_ char *bn = resolve_image_name(d, base_id);
            gvm_error_set(err, GVM_ERR_UNSUPPORTED, "libvirt's view of disk %s "
                          "of running domain %s does not list the base %s with "
                          "an index (its live XML lacks <backingStore> elements "
                          "for the chain), so libvirt cannot pull down to it; "
                          "define the domain with its full backing chain.",
                          u.target, u.domain, bn ? bn : "?");
            return -1;
        }
    }
    if (live_job_disk_idle(d, u.domain, u.target, err) < 0)
        return -1;
    params = json_pack("{s:s, s:s, s:I, s:I, s:b}",
                       "domain", u.domain, "disk", u.target,
                       "image", (json_int_t)img.row.id,
                       "speed", (json_int_t)req->speed,
                       "relative", has_base &&
                       live_job_is_relative(img.row.backing_filename));
    if (!params ||
        gvm_json_set(params, "base", has_base ? json_integer(base_id) : json_null()) < 0 ||
        gvm_json_set(params, "old-backing", img.row.backing_filename ?
                     json_string(img.row.backing_filename) : json_null()) < 0 ||
        gvm_json_set(params, "old-backing-id", json_integer(img.row.backing_id)) < 0)
        return gvm_error_oom(err);

    log_info("block-pull into %s: on disk %s of running domain %s through "
             "libvirt.", iname, u.target, u.domain);
    if (chain_job_create(d, &live_pull_job, params, images, locks, nlocks,
                         req->op_id, "pull into", iname, result, err) < 0)
        return -1;
    return 1;
}

