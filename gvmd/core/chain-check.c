/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-check.c — preconditions of chain jobs, checked before anything is
 * journaled or written (chain-check.h).
 *
 * Uncatalogued overlays.  The catalog knows only the overlays made or
 * imported through gvmd; `qemu-img create -b` beside a chain makes one it
 * does not.  Such an overlay sits, as a rule, in the directory of its
 * backing file (relative backing names are what qemu-img writes), so the
 * search is bounded to the directory of each image the job would change or
 * remove, and to CHAIN_CHECK_MAX_ENTRIES names per directory.  A candidate
 * is a regular file, not catalogued, starting with the qcow2 magic; its
 * header is read with gvmd's engine (read-only, without its backing
 * chain) and its backing file name resolved as gvmd resolves any backing
 * name (resolve.c), except that a gluster:// name is matched against the
 * registered volumes without registering anything.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "chain-check.h"
#include "image.h"
#include "imageref.h"
#include "jsonutil.h"
#include "resolve.h"
#include "volume.h"

struct target {
    int64_t id, volume_id;
    char *path;                 /* normalised                           */
    char *dir;                  /* path_dirname                         */
    char *name;                 /* "VOLUME:PATH"                        */
    char *volume;
    char *glvol;                /* gluster volume name, or NULL         */
    struct gvm_store *st;
};

static void targets_free(struct target *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].path);
        free(t[i].dir);
        free(t[i].name);
        free(t[i].volume);
        free(t[i].glvol);
    }
    free(t);
}

static int target_fill(struct gvmd *d, int64_t id, struct target *t,
                       struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    struct catalog_volume vol = { 0 };
    int r = -1;

    if (catalog_image_get(d->cat, id, &row, err) < 0 ||
        catalog_volume_get_by_id(d->cat, row.volume_id, &vol, err) < 0)
        return -1;
    if (volumes_store_by_id(d->vols, row.volume_id, &t->st, err) < 0)
        goto out;
    t->id = id;
    t->volume_id = row.volume_id;
    t->path = path_normalize(NULL, row.path);
    t->dir = path_dirname(row.path);
    t->name = resolve_name(vol.name, row.path);
    t->volume = strdup(vol.name);
    if (vol.backend == CATALOG_BACKEND_GLUSTER && vol.gluster_volume)
        t->glvol = strdup(vol.gluster_volume);
    if (!t->path || !t->dir || !t->name || !t->volume ||
        (vol.backend == CATALOG_BACKEND_GLUSTER && vol.gluster_volume && !t->glvol)) {
        gvm_error_oom(err);
        goto out;
    }
    r = 0;
out:
    catalog_volume_clear(&vol);
    return r;
}

/* qcow2 files start with "QFI\xfb". */
static bool is_qcow2(struct gvm_store *st, const char *path)
{
    struct gvm_file *f = NULL;
    unsigned char magic[4] = { 0 };
    ssize_t n;

    if (st->ops->open(st, path, GVM_O_RDONLY, &f) < 0)
        return false;
    n = st->ops->pread(f, magic, sizeof(magic), 0);
    st->ops->close(f);
    return n == 4 && memcmp(magic, "QFI\xfb", 4) == 0;
}

/* The target the backing name of candidate (st, cpath) resolves to, or -1. */
static ssize_t backing_target(struct resolve_ctx *ctx, struct gvm_store *st,
                              const char *cpath, const char *bname,
                              const struct target *t, size_t nt)
{
    if (strncmp(bname, "gluster:", 8) == 0 || strncmp(bname, "gluster+", 8) == 0 ||
        strncmp(bname, "json:", 5) == 0) {
        struct imageref ref = { 0 };
        struct gvm_error e = { 0 };
        ssize_t hit = -1;

        if (imageref_parse_string(bname, "backing", &ref, &e) < 0)
            return -1;
        if (ref.kind == IMAGEREF_GLUSTER && ref.volume && ref.path) {
            _cleanup_free_ char *np = path_normalize(NULL, ref.path);
            for (size_t i = 0; np && i < nt && hit < 0; i++)
                if (t[i].glvol && strcmp(t[i].glvol, ref.volume) == 0 &&
                    strcmp(t[i].path, np) == 0)
                    hit = (ssize_t)i;
        }
        imageref_clear(&ref);
        return hit;
    }
    /* Relative and absolute names: resolve.c's rules, which register
     * nothing for them. */
    struct img_resolver res = resolve_img_resolver(ctx);
    struct gvm_store *bst = NULL;
    _cleanup_free_ char *bpath = NULL, *np = NULL;
    struct gvm_error e = { 0 };
    const struct resolve_volmap *vm;

    if (res.resolve(res.opaque, st, cpath, bname, &bst, &bpath, &e) < 0)
        return -1;
    vm = resolve_ctx_lookup(ctx, bst);
    np = bpath ? path_normalize(NULL, bpath) : NULL;
    for (size_t i = 0; vm && np && i < nt; i++)
        if (t[i].volume_id == vm->volume_id && strcmp(t[i].path, np) == 0)
            return (ssize_t)i;
    return -1;
}

/* Look at the entries of directory t[i].dir on t[i]'s volume. */
static int scan_dir(struct gvmd *d, struct resolve_ctx *ctx,
                    const struct target *t, size_t nt, size_t i, json_t *found,
                    bool *truncated, struct gvm_error *err)
{
    struct gvm_store *st = t[i].st;
    char **names = NULL;
    size_t n = 0;
    bool more = false;
    int r, ret = -1;

    if (!st->ops->list) {
        log_warn("Volume %s cannot list directories: overlays the catalog "
                 "does not know are not looked for beside %s.", t[i].volume,
                 t[i].name);
        return 0;
    }
    r = st->ops->list(st, t[i].dir, CHAIN_CHECK_MAX_ENTRIES, &names, &n, &more);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Listing the directory '%s' of volume %s (looking "
                            "for overlays of %s the catalog does not know) "
                            "failed; nothing was changed", *t[i].dir ? t[i].dir : ".",
                            t[i].volume, t[i].name);
        return -1;
    }
    if (more) {
        log_warn("The directory '%s' of volume %s holds more than %d entries: "
                 "only %d were looked at for overlays the catalog does not "
                 "know.", *t[i].dir ? t[i].dir : ".", t[i].volume,
                 CHAIN_CHECK_MAX_ENTRIES, CHAIN_CHECK_MAX_ENTRIES);
        if (truncated)
            *truncated = true;
    }
    if (resolve_ctx_add(ctx, st, t[i].volume_id, t[i].volume) < 0) {
        gvm_error_oom(err);
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        _cleanup_free_ char *cpath = path_normalize(t[i].dir, names[k]);
        _cleanup_catimg_ struct catalog_image row = { 0 };
        _cleanup_img_ struct img *img = NULL;
        _cleanup_info_ struct img_info info = { 0 };
        struct gvm_error e = { 0 };
        struct gvm_stat sb;
        bool self = false;
        ssize_t hit;

        if (!cpath) {
            gvm_error_oom(err);
            goto out;
        }
        for (size_t j = 0; j < nt; j++)
            self = self || (t[j].volume_id == t[i].volume_id &&
                             strcmp(t[j].path, cpath) == 0);
        if (self || path_check(cpath, "path", &e) < 0)
            continue;
        r = catalog_image_find(d->cat, t[i].volume_id, cpath, &row, err);
        if (r < 0)
            goto out;
        if (r > 0)
            continue;
        if (st->ops->stat(st, cpath, &sb) < 0 || !sb.is_reg ||
            !is_qcow2(st, cpath))
            continue;
        gvm_error_clear(&e);
        if (img_open(st, cpath, IMG_FMT_QCOW2, IMG_OPEN_NOBACKING, NULL, 0,
                     &img, &e) < 0 || img_get_info(img, &info) < 0) {
            log_debug("Looking for uncatalogued overlays: %s:%s does not "
                      "open as qcow2 (%s); skipped.", t[i].volume, cpath,
                      e.message);
            continue;
        }
        if (!info.backing_filename)
            continue;
        hit = backing_target(ctx, st, cpath, info.backing_filename, t, nt);
        if (hit < 0)
            continue;
        _cleanup_free_ char *cname = resolve_name(t[i].volume, cpath);
        json_t *o = cname ? json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}",
                                      "image", cname, "volume", t[i].volume,
                                      "volume-id", (json_int_t)t[i].volume_id,
                                      "path", cpath,
                                      "backing", t[hit].name,
                                      "backing-id", (json_int_t)t[hit].id) : NULL;
        if (gvm_json_append(found, o) < 0) {
            gvm_error_oom(err);
            goto out;
        }
    }
    ret = 0;
out:
    store_names_free(names, n);
    return ret;
}

int chain_check_uncatalogued(struct gvmd *d, const int64_t *ids, size_t n,
                             json_t **found, bool *truncated,
                             struct gvm_error *err)
{
    _cleanup_json_ json_t *arr = json_array();
    _cleanup_rctx_ struct resolve_ctx ctx;
    struct target *t = calloc(n ? n : 1, sizeof(*t));
    size_t nt = 0;
    int ret = -1;

    resolve_ctx_init(&ctx, d);
    *found = NULL;
    if (truncated)
        *truncated = false;
    if (!t || !arr) {
        free(t);
        return gvm_error_oom(err);
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < nt; j++)
            dup = dup || t[j].id == ids[i];
        if (dup || ids[i] <= 0)
            continue;
        if (target_fill(d, ids[i], &t[nt++], err) < 0)
            goto out;
    }
    for (size_t i = 0; i < nt; i++) {
        bool seen = false;
        /* One listing per directory. */
        for (size_t j = 0; j < i; j++)
            seen = seen || (t[j].volume_id == t[i].volume_id &&
                            strcmp(t[j].dir, t[i].dir) == 0);
        if (!seen && scan_dir(d, &ctx, t, nt, i, arr, truncated, err) < 0)
            goto out;
    }
    *found = steal_pointer(&arr);
    ret = 0;
out:
    targets_free(t, nt);
    return ret;
}

/* ---- preconditions ---------------------------------------------------------- */

static bool in(const int64_t *v, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

/* Append to a growing message: 0 or -1 (ENOMEM). */
static int GVM_PRINTF(2, 3) cat_printf(char **s, const char *fmt, ...)
{
    char *add = NULL, *n = NULL;
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&add, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -1;
    r = asprintf(&n, "%s%s", *s ? *s : "", add);
    free(add);
    if (r < 0)
        return -1;
    free(*s);
    *s = n;
    return 0;
}

static int check_snapshots(struct gvmd *d, const char *what,
                           const int64_t *changed, size_t nc,
                           const int64_t *removed, size_t nr,
                           struct gvm_error *err)
{
    struct catalog_snapshot *all = NULL;
    _cleanup_free_ char *items = NULL, *names = NULL;
    size_t n = 0, hits = 0, nsnaps = 0;
    int ret = -1;

    if (catalog_snapshot_list(d->cat, &all, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool named = false;
        for (size_t k = 0; k < all[i].ndisks; k++) {
            int64_t id = all[i].disks[k].image_id;
            bool ch = in(changed, nc, id), rm = in(removed, nr, id);
            if (!ch && !rm)
                continue;
            _cleanup_free_ char *iname = resolve_image_name(d, id);
            if (cat_printf(&items, "%s%s (frozen by snapshot %s; %s)",
                           hits ? ", " : "", iname ? iname : "?", all[i].name,
                           rm ? "it would be removed" : "its content would "
                           "change") < 0)
                goto oom;
            hits++;
            if (!named) {
                if (cat_printf(&names, "%s%s", nsnaps ? " " : "", all[i].name) < 0)
                    goto oom;
                named = true;
                nsnaps++;
            }
        }
    }
    ret = 0;
    if (hits) {
        gvm_error_set(err, GVM_ERR_IN_USE, "%s would change or remove images "
                      "that snapshots record: %s; nothing was changed. Delete "
                      "th%s snapshot%s first: `snapshot-delete --snapshot NAME` "
                      "for each of %s (that keeps what every remaining image "
                      "reads), or drop only their records with "
                      "`snapshot-delete --snapshot NAME --metadata-only true`.",
                      what, items, nsnaps > 1 ? "ese" : "is", nsnaps > 1 ? "s" : "",
                      names);
        ret = -1;
    }
    goto out;
oom:
    gvm_error_oom(err);
out:
    catalog_snapshots_free(all, n);
    return ret;
}

static int check_disks(struct gvmd *d, const char *what, const int64_t *ids,
                       size_t n, int64_t moved_disk, struct gvm_error *err)
{
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *target = NULL, *iname = NULL;
        struct catalog_domain dom = { 0 };
        struct gvm_error e2 = { 0 };
        int64_t dom_id = 0;
        int r;

        if (ids[i] == moved_disk)
            continue;
        r = catalog_domain_of_image(d->cat, ids[i], &dom_id, &target, err);
        if (r < 0)
            return -1;
        if (r == 0)
            continue;
        iname = resolve_image_name(d, ids[i]);
        if (catalog_domain_get(d->cat, dom_id, &dom, &e2) < 0)
            gvm_error_clear(&e2);
        gvm_error_set(err, GVM_ERR_IN_USE, "%s would change or remove %s, the "
                      "image of disk %s of domain %s; nothing was changed. "
                      "Choose images no domain's disk uses.", what,
                      iname ? iname : "?", target ? target : "?",
                      dom.name ? dom.name : "?");
        catalog_domain_clear(&dom);
        return -1;
    }
    return 0;
}

int chain_check_preconditions(struct gvmd *d, const char *what,
                              const int64_t *changed, size_t nc,
                              const int64_t *removed, size_t nr,
                              int64_t moved_disk, struct gvm_error *err)
{
    _cleanup_free_ int64_t *all = calloc(nc + nr + 1, sizeof(*all));
    _cleanup_json_ json_t *found = NULL;
    _cleanup_free_ char *items = NULL;
    size_t i;
    json_t *o;

    if (!all)
        return gvm_error_oom(err);
    if (nc)
        memcpy(all, changed, nc * sizeof(*all));
    if (nr)
        memcpy(all + nc, removed, nr * sizeof(*all));
    if (check_snapshots(d, what, changed, nc, removed, nr, err) < 0 ||
        check_disks(d, what, all, nc + nr, moved_disk, err) < 0)
        return -1;
    if (chain_check_uncatalogued(d, all, nc + nr, &found, NULL, err) < 0)
        return -1;
    if (json_array_size(found) == 0)
        return 0;
    json_array_foreach(found, i, o) {
        if (cat_printf(&items, "%s%s (on %s)", i ? ", " : "",
                       json_string_value(json_object_get(o, "image")),
                       json_string_value(json_object_get(o, "backing"))) < 0)
            return gvm_error_oom(err);
    }
    gvm_error_set(err, GVM_ERR_IN_USE, "%s would change or remove the backing "
                  "file of overlay%s the catalog does not know: %s; %s would "
                  "no longer read what %s now, and nothing was changed. "
                  "image-import %s first (gvmd then keeps %s readable), or "
                  "remove %s.", what, json_array_size(found) > 1 ? "s" : "",
                  items, json_array_size(found) > 1 ? "they" : "it",
                  json_array_size(found) > 1 ? "they read" : "it reads",
                  json_array_size(found) > 1 ? "them" : "it",
                  json_array_size(found) > 1 ? "them" : "it",
                  json_array_size(found) > 1 ? "them" : "it");
    return -1;
}
