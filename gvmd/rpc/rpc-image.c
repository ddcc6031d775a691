/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-image.c — the image methods: image-create, image-import, image-info,
 * image-list, image-map, image-check, image-delete and the image-checksum
 * extension.
 *
 * Handlers run on worker threads (GVM_M_BLOCKING) after rpc.c checked the
 * params against methods.def, and read them as the fields of their struct
 * rpc_params_<method> (rpc-params.h, generated).  They resolve IMAGE
 * references through resolve.c, use the image engine (image.h) for
 * everything on storage and catalog-image.c for rows.  Images are opened
 * read-only unless the method writes, so a hostile image is refused by the
 * engine without a byte of it changing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-image.h"
#include "catalog.h"
#include "rpc-params.h"
#include "image.h"
#include "image-catalogue.h"
#include "image-create.h"
#include "image-delete.h"
#include "image-import.h"
#include "image-open.h"
#include "journal.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "rpc.h"
#include "sha256.h"
#include "volume.h"

#define CHECKSUM_CHUNK (8u << 20)

/* ---- small helpers ---------------------------------------------------------- */

/*
 * image-checksum, image-map and image-check without repair of a running
 * domain's active layer: QEMU and the guest cache writes, so what the read
 * finds on storage lags what the guest sees until they flush — a checksum
 * that silently differs from the truth.  Refused (InUse) unless the caller
 * says with allow-running: true that such an answer is what it wants.  The
 * backing files below a running active layer are read as usual: QEMU only
 * reads them (a live block job that writes one holds it in the catalog's
 * job locks, and the offline path refuses it).  When libvirt cannot be
 * reached the read goes ahead (reading cannot harm a guest;
 * live_image_reader()).  Only catalogued images: the running domains'
 * chains are known through the catalog.
 */
static int refuse_running_read(struct gvmd *d, bool allow_running,
                               const struct resolved *r, const char *method,
                               struct gvm_error *err)
{
    _cleanup_live_user_ struct live_user u = { 0 };

    if (!r->catalogued || allow_running)
        return 0;
    int ret = live_image_reader(d, r->row.id, &u, err);
    if (ret <= 0 || u.depth != 0)
        return ret < 0 ? -1 : 0;
    gvm_error_set(err, GVM_ERR_IN_USE, "The image %s:%s is the active layer "
                  "of disk %s of running domain %s: what %s reads from "
                  "storage may lag what the guest wrote and has not flushed "
                  "yet. Pass allow-running: true to read it anyway.",
                  r->vol.name, r->path, u.target, u.domain, method);
    return -1;
}

/* ---- IMAGEINFO ------------------------------------------------------------------ */

static json_t *children_json(struct gvmd *d, int64_t id, struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = NULL;
    size_t n = 0;
    json_t *a = json_array();
    if (!a) {
        gvm_error_oom(err);
        return NULL;
    }
    if (id > 0) {
        if (catalog_image_children(d->cat, id, &ids, &n, err) < 0) {
            json_decref(a);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            if (gvm_json_append(a, json_integer(ids[i])) < 0) {
                json_decref(a);
                gvm_error_oom(err);
                return NULL;
            }
        }
    }
    return a;
}

/*
 * IMAGEINFO from the catalog row (may be NULL: not catalogued) and what the
 * engine read from storage (may be NULL: image-list answers from the
 * catalog alone).
 */
static json_t *imageinfo(struct gvmd *d, const char *volume, const char *path,
                         const struct catalog_image *row,
                         const struct img_info *info, struct gvm_error *err)
{
    _cleanup_json_ json_t *o = json_object();
    if (!o) {
        gvm_error_oom(err);
        return NULL;
    }
    json_t *children = children_json(d, row ? row->id : 0, err);
    int bad = 0;
    if (!children)
        return NULL;

    bad |= gvm_json_set(o, "id", row ? json_integer(row->id) : json_null());
    bad |= gvm_json_set(o, "volume", json_string(volume));
    bad |= gvm_json_set(o, "path", json_string(path));
    if (info) {
        bad |= gvm_json_set(o, "format", json_string(img_format_name(info->format)));
        bad |= gvm_json_set(o, "virtual-size", json_integer((json_int_t)info->virtual_size));
        bad |= gvm_json_set(o, "actual-size", json_integer((json_int_t)info->actual_size));
        bad |= gvm_json_set(o, "cluster-size", info->cluster_size
                            ? json_integer(info->cluster_size) : json_null());
        bad |= gvm_json_set(o, "backing-filename", gvm_json_str_or_null(info->backing_filename));
        bad |= gvm_json_set(o, "backing-format", gvm_json_str_or_null(info->backing_format));
        bad |= gvm_json_set(o, "dirty", json_boolean(info->dirty));
        bad |= gvm_json_set(o, "corrupt", json_boolean(info->corrupt));
        if (info->format == IMG_FMT_QCOW2) {
            bad |= gvm_json_set(o, "compat", json_string(info->qcow2_version >= 3 ? "1.1" : "0.10"));
            bad |= gvm_json_set(o, "refcount-bits", json_integer(info->refcount_bits));
            bad |= gvm_json_set(o, "lazy-refcounts", json_boolean(info->lazy_refcounts));
            bad |= gvm_json_set(o, "snapshots", json_integer(info->nb_snapshots));
        }
    } else {
        bad |= gvm_json_set(o, "format", json_string(row->format));
        bad |= gvm_json_set(o, "virtual-size", json_integer((json_int_t)row->virtual_size));
        bad |= gvm_json_set(o, "actual-size", json_null());
        bad |= gvm_json_set(o, "cluster-size", row->cluster_size
                            ? json_integer(row->cluster_size) : json_null());
        bad |= gvm_json_set(o, "backing-filename", gvm_json_str_or_null(row->backing_filename));
        bad |= gvm_json_set(o, "backing-format", gvm_json_str_or_null(row->backing_format));
        bad |= gvm_json_set(o, "dirty", json_null());
        bad |= gvm_json_set(o, "corrupt", json_null());
    }
    bad |= gvm_json_set(o, "backing", row && row->backing_id > 0
                        ? json_integer(row->backing_id) : json_null());
    bad |= gvm_json_set(o, "children", children);
    bad |= gvm_json_set(o, "domain", json_null());
    bad |= gvm_json_set(o, "disk", json_null());
    if (row && row->state && strcmp(row->state, "ready") != 0)
        bad |= gvm_json_set(o, "state", json_string(row->state));
    if (bad) {
        gvm_error_oom(err);
        return NULL;
    }
    return steal_pointer(&o);
}

static json_t *chain_json(struct gvmd *d, struct image_layer *l, size_t n,
                          struct gvm_error *err)
{
    _cleanup_json_ json_t *a = json_array();
    if (!a) {
        gvm_error_oom(err);
        return NULL;
    }
    for (size_t k = 0; k < n; k++) {
        json_t *e = imageinfo(d, l[k].vm->volume, l[k].path,
                              l[k].catalogued ? &l[k].row : NULL, &l[k].info, err);
        if (!e)
            return NULL;
        if (gvm_json_append(a, e) < 0) {
            gvm_error_oom(err);
            return NULL;
        }
    }
    return steal_pointer(&a);
}

/* ---- image-import ------------------------------------------------------------------ */

int rpc_image_import(struct gvmd *d, struct rpc_call *call,
                     const struct rpc_params_image_import *p, json_t **result,
                     struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    struct image_layer *l = NULL;
    size_t n = 0;

    resolve_ctx_init(&ctx, d);
    if (resolve_param(d, p->raw, "image", &r, err) < 0)
        return -1;
    if (image_import(d, &r, p->format, p->backing_format, &ctx, &img, &l, &n,
                     err) < 0)
        return -1;

    json_t *o = imageinfo(d, l[0].vm->volume, l[0].path, &l[0].row,
                          &l[0].info, err);
    json_t *chain = o ? chain_json(d, l, n, err) : NULL;
    image_layers_free(l, n);
    if (!chain) {
        json_decref(o);
        return -1;
    }
    if (gvm_json_set(o, "chain", chain) < 0) {
        json_decref(o);
        return gvm_error_oom(err);
    }
    *result = o;
    return 0;
}

/* ---- image-info ---------------------------------------------------------------------- */

int rpc_image_info(struct gvmd *d, struct rpc_call *call,
                   const struct rpc_params_image_info *p, json_t **result,
                   struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    bool want_chain = p->backing_chain;

    resolve_ctx_init(&ctx, d);
    if (resolve_param(d, p->raw, "image", &r, err) < 0)
        return -1;
    if (image_open(&r, NULL, NULL, want_chain ? 0 : IMG_OPEN_NOBACKING, &ctx, &img,
                   err) < 0) {
        if (r.catalogued && err->cls == GVM_ERR_NOT_FOUND) {
            gvm_error_clear(err);
            gvm_error_set(err, GVM_ERR_CONFLICT,
                          "The image %s:%s (id %lld) is in the catalog but "
                          "missing on storage; run chain-audit.",
                          r.vol.name, r.path, (long long)r.row.id);
        }
        return -1;
    }
    struct image_layer *l = NULL;
    size_t n = 0;
    if (image_layers_walk(d, &ctx, img, &l, &n, err) < 0)
        return -1;
    json_t *o = imageinfo(d, r.vol.name, r.path, r.catalogued ? &r.row : NULL,
                          &l[0].info, err);
    if (o && want_chain) {
        json_t *chain = chain_json(d, l, n, err);
        if (!chain || gvm_json_set(o, "chain", chain) < 0) {
            gvm_error_oom(err);
            json_decref(o);
            o = NULL;
        }
    }
    image_layers_free(l, n);
    if (!o)
        return -1;
    *result = o;
    return 0;
}

/* ---- image-list ------------------------------------------------------------------------- */

int rpc_image_list(struct gvmd *d, struct rpc_call *call,
                   const struct rpc_params_image_list *p, json_t **result,
                   struct gvm_error *err)
{
    const char *volume = p->volume;
    int64_t vid = 0;
    struct catalog_image *imgs = NULL;
    size_t n = 0;

    if (volume) {
        struct catalog_volume v = { 0 };
        if (catalog_volume_get(d->cat, volume, &v, err) < 0)
            return -1;
        vid = v.id;
        catalog_volume_clear(&v);
    }
    if (catalog_image_list(d->cat, vid, &imgs, &n, err) < 0)
        return -1;
    _cleanup_json_ json_t *a = json_array();
    if (!a) {
        catalog_images_free(imgs, n);
        return gvm_error_oom(err);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = imageinfo(d, imgs[i].volume, imgs[i].path, &imgs[i], NULL, err);
        if (!o) {
            catalog_images_free(imgs, n);
            return -1;
        }
        if (gvm_json_append(a, o) < 0) {
            catalog_images_free(imgs, n);
            return gvm_error_oom(err);
        }
    }
    catalog_images_free(imgs, n);
    *result = steal_pointer(&a);
    return 0;
}

/* ---- image-map ----------------------------------------------------------------------------- */

int rpc_image_map(struct gvmd *d, struct rpc_call *call,
                  const struct rpc_params_image_map *p, json_t **result,
                  struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    _cleanup_free_ struct img_extent *ext = NULL;
    size_t n = 0;
    int64_t off = p->has_offset ? p->offset : 0;
    int64_t len = p->has_length ? p->length : -1;

    resolve_ctx_init(&ctx, d);
    if (off < 0) {
        gvm_error_param(err, "offset", "The offset %lld is negative.", (long long)off);
        return -1;
    }
    if (p->has_length && len < 0) {
        gvm_error_param(err, "length", "The length %lld is negative.", (long long)len);
        return -1;
    }
    if (resolve_param(d, p->raw, "image", &r, err) < 0)
        return -1;
    if (refuse_running_read(d, p->allow_running, &r, "image-map", err) < 0)
        return -1;
    if (image_open(&r, NULL, NULL, 0, &ctx, &img, err) < 0)
        return -1;

    uint64_t size = img_virtual_size(img);
    if ((uint64_t)off > size) {
        gvm_error_param(err, "offset", "The offset %lld is past the end of "
                        "%s:%s (%llu bytes).", (long long)off, r.vol.name,
                        r.path, (unsigned long long)size);
        return -1;
    }
    uint64_t l = size - (uint64_t)off;
    if (len >= 0 && (uint64_t)len < l)
        l = (uint64_t)len;
    int ret = img_map(img, (uint64_t)off, l, &ext, &n);
    if (ret < 0)
        return image_open_data_fail(err, ret, "Mapping", r.vol.name, r.path, img);

    _cleanup_json_ json_t *a = json_array();
    if (!a)
        return gvm_error_oom(err);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        int bad = 0;
        if (!e)
            return gvm_error_oom(err);
        bad |= gvm_json_set(e, "start", json_integer((json_int_t)ext[i].start));
        bad |= gvm_json_set(e, "length", json_integer((json_int_t)ext[i].length));
        bad |= gvm_json_set(e, "depth", json_integer(ext[i].depth));
        bad |= gvm_json_set(e, "present", json_boolean(ext[i].present));
        bad |= gvm_json_set(e, "zero", json_boolean(ext[i].zero));
        bad |= gvm_json_set(e, "data", json_boolean(ext[i].data));
        if (ext[i].has_offset)
            bad |= gvm_json_set(e, "offset", json_integer((json_int_t)ext[i].offset));
        if (bad) {
            json_decref(e);
            return gvm_error_oom(err);
        }
        if (gvm_json_append(a, e) < 0)
            return gvm_error_oom(err);
    }

    *result = steal_pointer(&a);
    return 0;
}

/* ---- image-check ------------------------------------------------------------------------------ */

int rpc_image_check(struct gvmd *d, struct rpc_call *call,
                    const struct rpc_params_image_check *p, json_t **result,
                    struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    const char *repair = p->repair;
    unsigned flags = 0;
    struct img_check_result res = { 0 };

    resolve_ctx_init(&ctx, d);
    if (repair) {
        if (strcmp(repair, "leaks") == 0)
            flags = IMG_REPAIR_LEAKS;
        else if (strcmp(repair, "all") == 0)
            flags = IMG_REPAIR_LEAKS | IMG_REPAIR_ALL;
        else {
            gvm_error_param(err, "repair", "The repair mode '%s' is not one of "
                            "\"leaks\" and \"all\".", repair);
            return -1;
        }
    }
    if (resolve_param(d, p->raw, "image", &r, err) < 0)
        return -1;
    /* Repairs write metadata: never under a running guest. */
    if (flags && r.catalogued && live_refuse_running(d, r.row.id, "repair", err) < 0)
        return -1;
    if (!flags && refuse_running_read(d, p->allow_running, &r, "image-check",
                                      err) < 0)
        return -1;
    /* Nor under anyone else who holds it (image-lock.c); taken here to
     * name the image as the caller does, held until the image is closed. */
    _cleanup_img_lock_ struct img_lock *lock = NULL;
    if (flags && image_open_lock(&r, &lock, err) < 0)
        return -1;
    if (image_open(&r, NULL, NULL, IMG_OPEN_NOBACKING | (flags ? IMG_OPEN_RW : 0),
                   &ctx, &img, err) < 0)
        return -1;
    int ret = img_check(img, flags, &res, err);
    if (ret < 0)
        return image_open_fail(err, ret, "Checking", r.vol.name, r.path);

    json_t *o = json_pack("{sI sI sI sI sI sI sI sI}",
        "corruptions", (json_int_t)res.corruptions,
        "leaks", (json_int_t)res.leaks,
        "corruptions-fixed", (json_int_t)res.corruptions_fixed,
        "leaks-fixed", (json_int_t)res.leaks_fixed,
        "check-errors", (json_int_t)res.check_errors,
        "allocated-clusters", (json_int_t)res.allocated_clusters,
        "total-clusters", (json_int_t)res.total_clusters,
        "image-end-offset", (json_int_t)res.image_end_offset);
    if (!o)
        return gvm_error_oom(err);
    *result = o;
    return 0;
}

/* ---- image-checksum --------------------------------------------------------------------------- */

int rpc_image_checksum(struct gvmd *d, struct rpc_call *call,
                       const struct rpc_params_image_checksum *p,
                       json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    _cleanup_free_ unsigned char *buf = NULL;
    struct sha256_ctx sc;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[SHA256_HEX_SIZE];

    resolve_ctx_init(&ctx, d);
    if (resolve_param(d, p->raw, "image", &r, err) < 0)
        return -1;
    if (refuse_running_read(d, p->allow_running, &r, "image-checksum", err) < 0)
        return -1;
    if (image_open(&r, NULL, NULL, 0, &ctx, &img, err) < 0)
        return -1;
    buf = malloc(CHECKSUM_CHUNK);
    if (!buf)
        return gvm_error_oom(err);

    uint64_t size = img_virtual_size(img);
    sha256_init(&sc);
    for (uint64_t off = 0; off < size;) {
        size_t len = size - off < CHECKSUM_CHUNK ? (size_t)(size - off)
                                                 : CHECKSUM_CHUNK;
        int ret;

        if (rpc_call_abandoned(call)) {
            gvm_error_set(err, GVM_ERR_BUSY, "The caller of image-checksum "
                          "left; stopped at offset %llu.",
                          (unsigned long long)off);
            return -1;
        }
        ret = img_read(img, buf, off, len);
        if (ret < 0) {
            char what[96];
            snprintf(what, sizeof(what), "Reading at offset %llu of",
                     (unsigned long long)off);
            return image_open_data_fail(err, ret, what, r.vol.name, r.path, img);
        }
        sha256_update(&sc, buf, len);
        off += len;
    }
    sha256_final(&sc, digest);
    sha256_hex(digest, hex);
    json_t *o = json_pack("{ss sI}", "sha256", hex, "size", (json_int_t)size);
    if (!o)
        return gvm_error_oom(err);
    *result = o;
    return 0;
}

/* ---- image-delete ------------------------------------------------------------------------------- */

int rpc_image_delete(struct gvmd *d, struct rpc_call *call,
                     const struct rpc_params_image_delete *p, json_t **result,
                     struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };

    if (resolve_param(d, p->raw, "image", &r, err) < 0 ||
        image_delete(d, &r, err) < 0)
        return -1;
    *result = json_object();
    return 0;
}

/* ---- image-create ---------------------------------------------------------------------------------- */

static bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

/* image-create's params into req (borrowing their strings); -1 with err
 * naming the parameter that is wrong.  volume, path and format are there:
 * the spec requires them. */
static int create_req(const struct rpc_params_image_create *p,
                      struct image_create_req *req, struct gvm_error *err)
{
    struct img_create_opts *o = &req->opts;
    const char *format = p->format;
    const char *compat = p->compat;
    int64_t v;

    req->volume = p->volume;
    req->path = p->path;
    req->backing_format = p->backing_format;
    req->backing = p->backing;
    if (path_check(req->path, "path", err) < 0)
        return -1;
    if (img_format_parse(format, &o->format) < 0) {
        gvm_error_param(err, "format", "The format '%s' is not one of "
                        "\"qcow2\" and \"raw\".", format);
        return -1;
    }
    if (p->has_size) {
        v = p->size;
        if (v <= 0 || (uint64_t)v > (UINT64_C(1) << 55)) {
            gvm_error_param(err, "size", "The size %lld is not between 1 byte "
                            "and 32 PiB.", (long long)v);
            return -1;
        }
        o->size = (uint64_t)v;
    }
    if (p->has_cluster_size) {
        v = p->cluster_size;
        if (v < 512 || v > (2 << 20) || !is_pow2((uint64_t)v)) {
            gvm_error_param(err, "cluster-size", "The cluster size %lld is not "
                            "a power of two between 512 and 2097152.", (long long)v);
            return -1;
        }
        o->cluster_size = (uint32_t)v;
    }
    if (p->has_refcount_bits) {
        v = p->refcount_bits;
        if (v < 1 || v > 64 || !is_pow2((uint64_t)v)) {
            gvm_error_param(err, "refcount-bits", "refcount-bits %lld is not a "
                            "power of two between 1 and 64.", (long long)v);
            return -1;
        }
        o->refcount_bits = (unsigned)v;
    }
    if (compat) {
        if (strcmp(compat, "0.10") == 0)
            o->qcow2_version = 2;
        else if (strcmp(compat, "1.1") == 0)
            o->qcow2_version = 3;
        else {
            gvm_error_param(err, "compat", "compat '%s' is not one of \"0.10\" "
                            "and \"1.1\".", compat);
            return -1;
        }
    }
    o->lazy_refcounts = p->lazy_refcounts;
    if (o->qcow2_version == 2 && (o->lazy_refcounts ||
                                  (o->refcount_bits && o->refcount_bits != 16))) {
        gvm_error_param(err, o->lazy_refcounts ? "lazy-refcounts" : "refcount-bits",
                        "%s needs compat \"1.1\".",
                        o->lazy_refcounts ? "lazy-refcounts" : "refcount-bits other than 16");
        return -1;
    }
    if (o->format == IMG_FMT_RAW && (req->backing || o->cluster_size || compat ||
                                     o->refcount_bits || o->lazy_refcounts)) {
        gvm_error_param(err, req->backing ? "backing" : "format",
                        "A raw image takes only a size: backing files, cluster "
                        "sizes and qcow2 options need format \"qcow2\".");
        return -1;
    }
    if (!req->backing && !o->size) {
        gvm_error_param(err, "size", "An image without a backing file needs a size.");
        return -1;
    }
    return 0;
}

int rpc_image_create(struct gvmd *d, struct rpc_call *call,
                     const struct rpc_params_image_create *p, json_t **result,
                     struct gvm_error *err)
{
    struct image_create_req req = { 0 };
    _cleanup_(image_created_clear) struct image_created out = { 0 };

    if (create_req(p, &req, err) < 0 || image_create(d, &req, &out, err) < 0)
        return -1;
    *result = imageinfo(d, out.row.volume, out.row.path, &out.row, &out.info, err);
    return *result ? 0 : -1;
}
