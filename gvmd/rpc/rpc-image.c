/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-image.c — the image methods: image-create, image-import, image-info,
 * image-list, image-map, image-check, image-delete and the image-checksum
 * extension.
 *
 * Handlers run on worker threads (GVM_M_BLOCKING) after rpc.c checked the
 * params against methods.def.  They resolve IMAGE references through
 * resolve.c, use the image engine (image.h) for everything on storage and
 * catalog-image.c for rows.  Images are opened read-only unless the method
 * writes, so a hostile image is refused by the engine without a byte of it
 * changing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-image.h"
#include "catalog.h"
#include "rpc-methods.h"
#include "image.h"
#include "image-catalogue.h"
#include "image-create.h"
#include "image-import.h"
#include "image-open.h"
#include "journal.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "rpc-image.h"
#include "rpc.h"
#include "sha256.h"
#include "volume.h"

#define CHECKSUM_CHUNK (8u << 20)

/* ---- small helpers ---------------------------------------------------------- */


static const char *opt_string(json_t *params, const char *name)
{
    json_t *v = json_object_get(params, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool opt_int(json_t *params, const char *name, json_int_t *out)
{
    json_t *v = json_object_get(params, name);
    if (!json_is_integer(v))
        return false;
    *out = json_integer_value(v);
    return true;
}

static json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

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
static int refuse_running_read(struct gvmd *d, json_t *params,
                               const struct resolved *r, const char *method,
                               struct gvm_error *err)
{
    _cleanup_live_user_ struct live_user u = { 0 };

    if (!r->catalogued || json_is_true(json_object_get(params, "allow-running")))
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
    if (!a)
        return NULL;
    if (id > 0) {
        if (catalog_image_children(d->cat, id, &ids, &n, err) < 0) {
            json_decref(a);
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_integer(ids[i]));
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
    if (!children)
        return NULL;

    json_object_set_new(o, "id", row ? json_integer(row->id) : json_null());
    json_object_set_new(o, "volume", json_string(volume));
    json_object_set_new(o, "path", json_string(path));
    if (info) {
        json_object_set_new(o, "format", json_string(img_format_name(info->format)));
        json_object_set_new(o, "virtual-size", json_integer((json_int_t)info->virtual_size));
        json_object_set_new(o, "actual-size", json_integer((json_int_t)info->actual_size));
        json_object_set_new(o, "cluster-size", info->cluster_size
                            ? json_integer(info->cluster_size) : json_null());
        json_object_set_new(o, "backing-filename", json_str_or_null(info->backing_filename));
        json_object_set_new(o, "backing-format", json_str_or_null(info->backing_format));
        json_object_set_new(o, "dirty", json_boolean(info->dirty));
        json_object_set_new(o, "corrupt", json_boolean(info->corrupt));
        if (info->format == IMG_FMT_QCOW2) {
            json_object_set_new(o, "compat", json_string(info->qcow2_version >= 3 ? "1.1" : "0.10"));
            json_object_set_new(o, "refcount-bits", json_integer(info->refcount_bits));
            json_object_set_new(o, "lazy-refcounts", json_boolean(info->lazy_refcounts));
            json_object_set_new(o, "snapshots", json_integer(info->nb_snapshots));
        }
    } else {
        json_object_set_new(o, "format", json_string(row->format));
        json_object_set_new(o, "virtual-size", json_integer((json_int_t)row->virtual_size));
        json_object_set_new(o, "actual-size", json_null());
        json_object_set_new(o, "cluster-size", row->cluster_size
                            ? json_integer(row->cluster_size) : json_null());
        json_object_set_new(o, "backing-filename", json_str_or_null(row->backing_filename));
        json_object_set_new(o, "backing-format", json_str_or_null(row->backing_format));
        json_object_set_new(o, "dirty", json_null());
        json_object_set_new(o, "corrupt", json_null());
    }
    json_object_set_new(o, "backing", row && row->backing_id > 0
                        ? json_integer(row->backing_id) : json_null());
    json_object_set_new(o, "children", children);
    json_object_set_new(o, "domain", json_null());
    json_object_set_new(o, "disk", json_null());
    if (row && row->state && strcmp(row->state, "ready") != 0)
        json_object_set_new(o, "state", json_string(row->state));
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
        json_array_append_new(a, e);
    }
    return steal_pointer(&a);
}

/* ---- image-import ------------------------------------------------------------------ */

int rpc_image_import(struct gvmd *d, struct rpc_call *call, json_t *params,
                     json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    struct image_layer *l = NULL;
    size_t n = 0;

    resolve_ctx_init(&ctx, d);
    if (resolve_param(d, params, "image", &r, err) < 0)
        return -1;
    if (image_import(d, &r, opt_string(params, "format"),
                     opt_string(params, "backing-format"), &ctx, &img, &l, &n,
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
    json_object_set_new(o, "chain", chain);
    *result = o;
    return 0;
}

/* ---- image-info ---------------------------------------------------------------------- */

int rpc_image_info(struct gvmd *d, struct rpc_call *call, json_t *params,
                   json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    json_t *bc = json_object_get(params, "backing-chain");
    bool want_chain = json_is_true(bc);

    resolve_ctx_init(&ctx, d);
    if (resolve_param(d, params, "image", &r, err) < 0)
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
        if (!chain) {
            json_decref(o);
            o = NULL;
        } else {
            json_object_set_new(o, "chain", chain);
        }
    }
    image_layers_free(l, n);
    if (!o)
        return -1;
    *result = o;
    return 0;
}

/* ---- image-list ------------------------------------------------------------------------- */

int rpc_image_list(struct gvmd *d, struct rpc_call *call, json_t *params,
                   json_t **result, struct gvm_error *err)
{
    const char *volume = opt_string(params, "volume");
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
        json_array_append_new(a, o);
    }
    catalog_images_free(imgs, n);
    *result = steal_pointer(&a);
    return 0;
}

/* ---- image-map ----------------------------------------------------------------------------- */

int rpc_image_map(struct gvmd *d, struct rpc_call *call, json_t *params,
                  json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    _cleanup_free_ struct img_extent *ext = NULL;
    size_t n = 0;
    json_int_t off = 0, len = -1;

    resolve_ctx_init(&ctx, d);
    if (opt_int(params, "offset", &off) && off < 0) {
        gvm_error_param(err, "offset", "The offset %lld is negative.", (long long)off);
        return -1;
    }
    if (opt_int(params, "length", &len) && len < 0) {
        gvm_error_param(err, "length", "The length %lld is negative.", (long long)len);
        return -1;
    }
    if (resolve_param(d, params, "image", &r, err) < 0)
        return -1;
    if (refuse_running_read(d, params, &r, "image-map", err) < 0)
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
        if (!e)
            return gvm_error_oom(err);
        json_object_set_new(e, "start", json_integer((json_int_t)ext[i].start));
        json_object_set_new(e, "length", json_integer((json_int_t)ext[i].length));
        json_object_set_new(e, "depth", json_integer(ext[i].depth));
        json_object_set_new(e, "present", json_boolean(ext[i].present));
        json_object_set_new(e, "zero", json_boolean(ext[i].zero));
        json_object_set_new(e, "data", json_boolean(ext[i].data));
        if (ext[i].has_offset)
            json_object_set_new(e, "offset", json_integer((json_int_t)ext[i].offset));
        json_array_append_new(a, e);
    }
    *result = steal_pointer(&a);
    return 0;
}

/* ---- image-check ------------------------------------------------------------------------------ */

/* The write lock of image-lock.c on r, InUse naming VOLUME:PATH if another
 * process holds the image.  A missing file is no error here (*out NULL):
 * what follows reports it as it would without locks. */
static int lock_image(struct resolved *r, struct img_lock **out,
                      struct gvm_error *err)
{
    _cleanup_free_ char *name = resolve_name(r->vol.name, r->path);
    struct gvm_error e2 = { 0 };
    int ret;

    *out = NULL;
    if (!name)
        return gvm_error_oom(err);
    ret = img_lock_take(r->store, r->path, true, name, out, &e2);
    if (ret == -ENOENT || ret == 0)
        return 0;
    *err = e2;
    return -1;
}

int rpc_image_check(struct gvmd *d, struct rpc_call *call, json_t *params,
                    json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    _cleanup_rctx_ struct resolve_ctx ctx;
    _cleanup_img_ struct img *img = NULL;
    const char *repair = opt_string(params, "repair");
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
    if (resolve_param(d, params, "image", &r, err) < 0)
        return -1;
    /* Repairs write metadata: never under a running guest. */
    if (flags && r.catalogued && live_refuse_running(d, r.row.id, "repair", err) < 0)
        return -1;
    if (!flags && refuse_running_read(d, params, &r, "image-check", err) < 0)
        return -1;
    /* Nor under anyone else who holds it (image-lock.c); taken here to
     * name the image as the caller does, held until the image is closed. */
    _cleanup_img_lock_ struct img_lock *lock = NULL;
    if (flags && lock_image(&r, &lock, err) < 0)
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

int rpc_image_checksum(struct gvmd *d, struct rpc_call *call, json_t *params,
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
    if (resolve_param(d, params, "image", &r, err) < 0)
        return -1;
    if (refuse_running_read(d, params, &r, "image-checksum", err) < 0)
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

/*
 * Row first, file second, as a journaled operation (journal.h), so that no
 * failure and no crash leaves a row for a file that is gone:
 *   step 0 "image-delete"  the whole row (enough to put it back);
 *   step 1 "unlink-file"   recorded in the transaction that removes the
 *                          row: once it is committed, the row is gone and
 *                          the file must follow.
 * Then the unlink.  If the unlink fails, the row is put back (same id) and
 * the operation is undone.  After a crash, image_delete_recover() finishes
 * what step 1 promised (unlinks; ENOENT means it had been done) or, with
 * only step 0 recorded, finds nothing changed.
 *
 * The catalog lock is held from the row's removal to the unlink: no other
 * call can catalogue a new image at that path in between and then lose its
 * file to our unlink.
 */
#define IMAGE_DELETE_OP "image-delete"
#define IMAGE_DELETE_STEP "unlink-file"

static json_t *row_payload(const struct catalog_image *row)
{
    return json_pack("{sI sI ss ss ss sI sI sI s:s* s:s* ss sI}",
        "id", (json_int_t)row->id, "volume-id", (json_int_t)row->volume_id,
        "volume", row->volume ? row->volume : "", "path", row->path,
        "format", row->format, "virtual-size", (json_int_t)row->virtual_size,
        "cluster-size", (json_int_t)row->cluster_size,
        "backing-id", (json_int_t)row->backing_id,
        "backing-filename", row->backing_filename,
        "backing-format", row->backing_format,
        "state", row->state ? row->state : "ready",
        "created", (json_int_t)row->created);
}

/* The row back from a step 0 payload (borrowed strings). */
static int payload_row(json_t *pl, struct catalog_image *row)
{
    json_int_t id = 0, vid = 0, vs = 0, cs = 0, bid = 0, created = 0;
    const char *vol = NULL, *path = NULL, *fmt = NULL, *state = NULL;
    const char *bfile = NULL, *bfmt = NULL;

    memset(row, 0, sizeof(*row));
    if (json_unpack(pl, "{sI sI ss ss ss sI sI sI s?s s?s ss sI}",
                    "id", &id, "volume-id", &vid, "volume", &vol, "path", &path,
                    "format", &fmt, "virtual-size", &vs, "cluster-size", &cs,
                    "backing-id", &bid, "backing-filename", &bfile,
                    "backing-format", &bfmt, "state", &state,
                    "created", &created) < 0)
        return -1;
    row->id = id;
    row->volume_id = vid;
    row->volume = (char *)vol;
    row->path = (char *)path;
    row->format = (char *)fmt;
    row->virtual_size = (uint64_t)vs;
    row->cluster_size = (uint32_t)cs;
    row->backing_id = bid;
    row->backing_filename = (char *)bfile;
    row->backing_format = (char *)bfmt;
    row->state = (char *)state;
    row->created = created;
    return 0;
}

/* Put the row back and end the operation as undone, in one transaction. */
static int put_back(struct catalog *cat, struct journal_op *op,
                    const struct catalog_image *row, struct gvm_error *err)
{
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (catalog_image_restore(cat, row, err) < 0 || journal_undone(op, err) < 0) {
        catalog_rollback(cat);
        return -1;
    }
    return catalog_commit(cat, err);
}

/* Remove the row and record the pending unlink, in one transaction. */
static int remove_row(struct catalog *cat, struct journal_op *op,
                      const struct catalog_image *row, struct gvm_error *err)
{
    _cleanup_json_ json_t *pl = json_pack("{sI ss}", "volume-id",
                                          (json_int_t)row->volume_id,
                                          "path", row->path);
    if (!pl)
        return gvm_error_oom(err);
    if (catalog_begin(cat, err) < 0)
        return -1;
    if (catalog_image_delete(cat, row->id, err) < 0 ||
        journal_step(op, IMAGE_DELETE_STEP, pl, err) < 0) {
        catalog_rollback(cat);
        return -1;
    }
    return catalog_commit(cat, err);
}

static int delete_locked(struct gvmd *d, struct resolved *r,
                         struct gvm_error *err)
{
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_json_ json_t *pl = row_payload(&r->row);
    struct gvm_error e2 = { 0 };

    if (!pl)
        return gvm_error_oom(err);
    if (journal_begin(d->cat, IMAGE_DELETE_OP, 0, pl, &op, err) < 0)
        return -1;
    if (remove_row(d->cat, op, &r->row, err) < 0) {
        /* Rolled back: the row and the file are as they were. */
        if (journal_undone(op, &e2) < 0 || journal_forget(op, &e2) < 0)
            log_warn("image-delete of %s:%s: %s", r->vol.name, r->path,
                     e2.message);
        return -1;
    }
    /* Test builds: a crash between the row's removal and the unlink. */
    int ret = journal_fault_point("image-delete.removed");
    if (ret == 0)
        ret = r->store->ops->unlink(r->store, r->path);
    if (ret < 0 && ret != -ENOENT) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(ret), ret,
                            "Deleting the file of %s:%s failed; the image "
                            "stays in the catalog", r->vol.name, r->path);
        if (put_back(d->cat, op, &r->row, &e2) < 0)
            log_error("image-delete of %s:%s: the row of a file that could "
                      "not be removed cannot be put back (%s); the next "
                      "start retries the removal.", r->vol.name, r->path,
                      e2.message);
        else if (journal_forget(op, &e2) < 0)
            log_warn("image-delete of %s:%s: %s", r->vol.name, r->path,
                     e2.message);
        return -1;
    }
    /* The record of an operation that ended is of no further use; until it
     * is gone, a restart would only find the file gone (ENOENT) again. */
    if (journal_done(op, &e2) < 0 || journal_forget(op, &e2) < 0)
        log_warn("image-delete of %s:%s is done but its journal record "
                 "stays (%s); the next start finds the file gone.",
                 r->vol.name, r->path, e2.message);
    return 0;
}

int rpc_image_delete(struct gvmd *d, struct rpc_call *call, json_t *params,
                     json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved r = { 0 };
    if (resolve_param(d, params, "image", &r, err) < 0)
        return -1;
    if (!r.catalogued) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND,
                      "The image %s:%s is not in the catalog.", r.vol.name, r.path);
        return -1;
    }
    if (live_refuse_running(d, r.row.id, "delete", err) < 0)
        return -1;
    /* Nor a file another process has open for writing (image-lock.c):
     * held across the unlink so nobody opens it in between. */
    _cleanup_img_lock_ struct img_lock *lock = NULL;
    if (lock_image(&r, &lock, err) < 0)
        return -1;
    catalog_lock(d->cat);
    int ret = delete_locked(d, &r, err);
    catalog_unlock(d->cat);
    /* An image still in use is refused by the catalog, which names it
     * and its users (catalog_image_delete). */
    if (ret < 0)
        return -1;
    *result = json_object();
    return 0;
}

static int image_delete_recover(void *opaque, struct journal_op *op,
                                const struct journal_entry *e, size_t n,
                                struct gvm_error *err)
{
    struct gvmd *d = opaque;
    const struct journal_entry *last = journal_last_pending(e, n);
    struct catalog_image row;
    struct gvm_store *st = NULL;

    (void)op;
    /* Only step 0: the row's removal never committed; nothing changed. */
    if (!last || strcmp(last->kind, IMAGE_DELETE_STEP) != 0)
        return 1;
    if (payload_row(e[0].payload, &row) < 0) {
        gvm_error_set(err, GVM_ERR_CORRUPT, "The journal record of an "
                      "image-delete does not say which image.");
        return -1;
    }
    /* Someone catalogued the path again (impossible while gvmd ran; an
     * operator's hand in the catalog): that row owns the file now. */
    struct catalog_image other = { 0 };
    int f = catalog_image_find(d->cat, row.volume_id, row.path, &other, err);
    catalog_image_clear(&other);
    if (f < 0)
        return -1;
    if (f > 0) {
        log_warn("image-delete of %s:%s (id %lld) was interrupted, but the "
                 "path is catalogued again: its file is left alone.",
                 row.volume, row.path, (long long)row.id);
        return 0;
    }
    if (volumes_store_by_id(d->vols, row.volume_id, &st, err) < 0)
        return -1;
    int r = st->ops->unlink(st, row.path);
    if (r == 0 || r == -ENOENT) {
        log_info("image-delete of %s:%s (id %lld): finished the removal of "
                 "its file after a restart.", row.volume, row.path,
                 (long long)row.id);
        return 0;
    }
    /* The file stays: so does the row. */
    gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                        "Removing the file of %s:%s failed", row.volume, row.path);
    struct gvm_error e2 = { 0 };
    if (catalog_image_restore(d->cat, &row, &e2) < 0) {
        log_error("image-delete of %s:%s: %s", row.volume, row.path, e2.message);
        return -1;
    }
    gvm_error_clear(err);
    log_warn("image-delete of %s:%s (id %lld): the file could not be removed "
             "(%s); the image is back in the catalog.", row.volume, row.path,
             (long long)row.id, strerror(-r));
    return 1;
}

const struct journal_type rpc_image_journal_types[] = {
    { .name = IMAGE_DELETE_OP, .recover = image_delete_recover },
};
const size_t rpc_image_journal_ntypes = GVM_ARRAY_SIZE(rpc_image_journal_types);

/* ---- image-create ---------------------------------------------------------------------------------- */

static bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

/* image-create's params into req (borrowing their strings); -1 with err
 * naming the parameter that is wrong. */
static int create_req(json_t *params, struct image_create_req *req,
                      struct gvm_error *err)
{
    struct img_create_opts *o = &req->opts;
    const char *format = opt_string(params, "format");
    const char *compat = opt_string(params, "compat");
    json_int_t v;

    req->volume = opt_string(params, "volume");
    req->path = opt_string(params, "path");
    req->backing_format = opt_string(params, "backing-format");
    req->backing = json_object_get(params, "backing");
    if (!req->volume || !req->path || !format) {
        const char *miss = !req->volume ? "volume" : !req->path ? "path" : "format";
        gvm_error_param(err, miss, "The parameter '%s' is missing.", miss);
        return -1;
    }
    if (path_check(req->path, "path", err) < 0)
        return -1;
    if (img_format_parse(format, &o->format) < 0) {
        gvm_error_param(err, "format", "The format '%s' is not one of "
                        "\"qcow2\" and \"raw\".", format);
        return -1;
    }
    if (opt_int(params, "size", &v)) {
        if (v <= 0 || (uint64_t)v > (UINT64_C(1) << 55)) {
            gvm_error_param(err, "size", "The size %lld is not between 1 byte "
                            "and 32 PiB.", (long long)v);
            return -1;
        }
        o->size = (uint64_t)v;
    }
    if (opt_int(params, "cluster-size", &v)) {
        if (v < 512 || v > (2 << 20) || !is_pow2((uint64_t)v)) {
            gvm_error_param(err, "cluster-size", "The cluster size %lld is not "
                            "a power of two between 512 and 2097152.", (long long)v);
            return -1;
        }
        o->cluster_size = (uint32_t)v;
    }
    if (opt_int(params, "refcount-bits", &v)) {
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
    o->lazy_refcounts = json_is_true(json_object_get(params, "lazy-refcounts"));
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

int rpc_image_create(struct gvmd *d, struct rpc_call *call, json_t *params,
                     json_t **result, struct gvm_error *err)
{
    struct image_create_req req = { 0 };
    _cleanup_(image_created_clear) struct image_created out = { 0 };

    if (create_req(params, &req, err) < 0 || image_create(d, &req, &out, err) < 0)
        return -1;
    *result = imageinfo(d, out.row.volume, out.row.path, &out.row, &out.info, err);
    return *result ? 0 : -1;
}
