/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * audit.c — chain-audit: the catalog against the qcow2 headers on storage
 * and against libvirt's domain XML (audit.h).
 *
 * The audit works on "layers": every image the scope reaches, catalogued or
 * not, each named by its registered volume and path.  Starting from the
 * scope's roots (an image, the active images of a domain's disks and the
 * sources its XML names, or everything catalogued), each layer's own header
 * is read (opened read-only without its backing chain) and both the
 * backing image its header names (resolved by resolve.c's rules) and the
 * one its catalog row names are visited in turn, so a chain that storage
 * and the catalog see differently is walked along both.  Differences are
 * collected first; adopt-storage then changes the catalog in one
 * transaction, in an order that keeps every step valid: uncatalogued layers
 * are imported (image_catalogue, image-catalogue.h), then backing edges and
 * header fields are set from the headers, disks are pointed at the images
 * their XML names, and last the rows of files gone from storage are removed
 * where nothing depends on them any more.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-job.h"
#include "catalog.h"
#include "chain-check.h"
#include "image.h"
#include "image-catalogue.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "virt.h"

#define NONE SIZE_MAX

/* What was found different about a layer (bits). */
enum {
    D_FORMAT     = 0x01,
    D_VSIZE      = 0x02,
    D_CSIZE      = 0x04,
    D_BACKING    = 0x08,
    D_MISSING    = 0x10,
    D_NOTCAT     = 0x20,
    D_UNREADABLE = 0x40,
};

enum layer_state { L_UNREAD, L_PRESENT, L_MISSING, L_UNREADABLE };

struct layer {
    int64_t volume_id;
    char *volume;
    char *path;
    char *name;                 /* "VOLUME:PATH"                          */
    struct gvm_store *store;    /* borrowed from the volume registry      */
    bool catalogued;
    struct catalog_image row;   /* when catalogued                        */
    enum layer_state state;
    char *read_error;           /* L_UNREADABLE: the engine's sentence    */
    struct img_info info;       /* L_PRESENT                              */
    size_t bidx;                /* the layer the header's backing name
                                   resolves to, NONE                       */
    char *bresolve_error;       /* why it does not resolve                */
    size_t cbidx;               /* the layer of row.backing_id, NONE      */
    unsigned diffs;
    bool imported;              /* adopt-storage catalogued it            */
    bool qcow2_in_raw;          /* catalogued raw, content starts with a
                                   qcow2 header (a guest can write one)   */
    bool overlay;               /* found beside a catalogued layer, backing
                                   onto it (chain-check.h)                */
};

/* A disk of an attached domain, as the catalog and the XML see it. */
struct disk {
    int64_t domain_id;
    char *domain;
    char *target;
    int64_t cat_image;          /* the catalog's active image, 0: none    */
    bool libvirt;               /* libvirt knows the domain: XML compared */
    bool in_xml;                /* the domain XML has this target         */
    size_t xml_idx;             /* layer of the XML's <source>, NONE      */
    char *xml_desc;             /* the <source> as written, for messages  */
    json_t *xml_chain;          /* names of its <backingStore>s           */
    bool adoptable;             /* adopt-storage points the disk at xml_idx */
};

struct audit {
    struct gvmd *d;
    struct resolve_ctx ctx;
    struct layer *l;
    size_t n, cap;
    struct disk *disks;
    size_t ndisks;
    json_t *diffs;
    json_t *domains;
    json_t *fixed;
    json_t *unfixed;
};

static void audit_clear(struct audit *a)
{
    for (size_t i = 0; i < a->n; i++) {
        struct layer *L = &a->l[i];
        free(L->volume);
        free(L->path);
        free(L->name);
        catalog_image_clear(&L->row);
        free(L->read_error);
        img_info_clear(&L->info);
        free(L->bresolve_error);
    }
    free(a->l);
    for (size_t i = 0; i < a->ndisks; i++) {
        free(a->disks[i].domain);
        free(a->disks[i].target);
        free(a->disks[i].xml_desc);
        json_decref(a->disks[i].xml_chain);
    }
    free(a->disks);
    json_decref(a->diffs);
    json_decref(a->domains);
    json_decref(a->fixed);
    json_decref(a->unfixed);
    resolve_ctx_clear(&a->ctx);
}

/* ---- JSON pieces ------------------------------------------------------------ */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* IMAGE as an audit names it: {"id": N|null, "name": "VOLUME:PATH"}. */
static json_t *layer_ref(const struct layer *L)
{
    return json_pack("{s:o, s:s}", "id", L->catalogued ? json_integer(L->row.id)
                                                      : json_null(),
                     "name", L->name);
}

static json_t *disk_ref(const struct disk *k)
{
    return json_pack("{s:s, s:s}", "domain", k->domain, "target", k->target);
}

/*
 * Append {"what", "image", "disk", "catalog", "storage", "domain",
 * "message"} to list; the json_t arguments are stolen (NULL: null).
 */
static int GVM_PRINTF(9, 10)
add_entry(json_t *list, const char *what, json_t *image, json_t *disk,
          json_t *catalog, json_t *storage, json_t *domain,
          struct gvm_error *err, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    json_t *o = json_object();
    if (r < 0 || !o) {
        free(r < 0 ? NULL : msg);
        json_decref(o);
        json_decref(image);
        json_decref(disk);
        json_decref(catalog);
        json_decref(storage);
        json_decref(domain);
        return gvm_error_oom(err);
    }
    json_object_set_new(o, "what", json_string(what));
    json_object_set_new(o, "image", image ? image : json_null());
    json_object_set_new(o, "disk", disk ? disk : json_null());
    json_object_set_new(o, "catalog", catalog ? catalog : json_null());
    json_object_set_new(o, "storage", storage ? storage : json_null());
    json_object_set_new(o, "domain", domain ? domain : json_null());
    json_object_set_new(o, "message", json_string(msg));
    free(msg);
    json_array_append_new(list, o);
    return 0;
}

/* {"what", "image", "disk", "action"} for the fixed/unfixed lists. */
static int GVM_PRINTF(6, 7)
add_action(json_t *list, const char *what, json_t *image, json_t *disk,
           struct gvm_error *err, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&msg, fmt, ap);
    va_end(ap);
    json_t *o = r < 0 ? NULL : json_pack("{s:s, s:o, s:o, s:s}", "what", what,
                                         "image", image ? image : json_null(),
                                         "disk", disk ? disk : json_null(),
                                         "action", msg);
    if (r >= 0)
        free(msg);
    if (!o)
        return gvm_error_oom(err);
    json_array_append_new(list, o);
    return 0;
}

/* ---- layers ------------------------------------------------------------------- */

static size_t find_layer(const struct audit *a, int64_t volume_id,
                         const char *path)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].volume_id == volume_id && strcmp(a->l[i].path, path) == 0)
            return i;
    return NONE;
}

/* The layer for volume+path, added (unread) if new.  *idx is its index. */
static int visit(struct audit *a, const char *volume, const char *path,
                 size_t *idx, struct gvm_error *err)
{
    struct catalog_volume vol = { 0 };
    struct gvm_store *st = NULL;

    if (resolve_volume(a->d, volume, &vol, &st, err) < 0)
        return -1;
    size_t i = find_layer(a, vol.id, path);
    if (i != NONE) {
        catalog_volume_clear(&vol);
        *idx = i;
        return 0;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct layer *l = realloc(a->l, cap * sizeof(*l));
        if (!l) {
            catalog_volume_clear(&vol);
            return gvm_error_oom(err);
        }
        a->l = l;
        a->cap = cap;
    }
    struct layer *L = &a->l[a->n];
    memset(L, 0, sizeof(*L));
    L->volume_id = vol.id;
    L->volume = strdup(vol.name);
    L->path = strdup(path);
    L->name = resolve_name(vol.name, path);
    L->store = st;
    L->bidx = L->cbidx = NONE;
    int r = resolve_ctx_add(&a->ctx, st, vol.id, vol.name);
    catalog_volume_clear(&vol);
    a->n++;                     /* owned by a from here on */
    if (!L->volume || !L->path || !L->name || r < 0)
        return gvm_error_oom(err);
    r = catalog_image_find(a->d->cat, L->volume_id, L->path, &L->row, err);
    if (r < 0)
        return -1;
    L->catalogued = r > 0;
    *idx = a->n - 1;
    return 0;
}

static int visit_id(struct audit *a, int64_t id, size_t *idx,
                    struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    if (catalog_image_get(a->d->cat, id, &row, err) < 0)
        return -1;
    return visit(a, row.volume, row.path, idx, err);
}

static int unreadable(struct layer *L, const char *msg, int r,
                      struct gvm_error *err)
{
    L->state = L_UNREADABLE;
    if (msg && *msg)
        L->read_error = strdup(msg);
    else if (asprintf(&L->read_error, "Reading %s failed: %s.", L->name,
                      strerror(-r)) < 0)
        L->read_error = NULL;
    return L->read_error ? 0 : gvm_error_oom(err);
}

/*
 * Read layer i's own header and visit the layers below it: the one its
 * header names and the one its catalog row names.  Problems with the layer
 * itself (missing, unreadable, a backing name that does not resolve) are
 * recorded in it, not returned; -1 only for catalog errors and ENOMEM.
 */
static int examine(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    struct gvm_error e = { 0 };
    enum img_format fmt = IMG_FMT_RAW;
    _cleanup_img_ struct img *img = NULL;
    struct img_resolver res = resolve_img_resolver(&a->ctx);
    size_t bidx = NONE, cbidx = NONE;

    int r = img_probe(L->store, L->path, &fmt);
    if (r == -ESTALE) {
        /* gfapi answers ESTALE for a file another client removed while
         * it still had the inode cached; a fresh lookup then tells. */
        struct gvm_stat sb;
        r = L->store->ops->stat(L->store, L->path, &sb);
        if (r == 0 || r == -ESTALE)
            r = img_probe(L->store, L->path, &fmt);
    }
    /* A catalogued image is read as the format the catalog records, never
     * as its content suggests: a guest writes anything into a raw disk,
     * a qcow2 header naming another VM's image included. */
    enum img_format cfmt;
    if (r == 0 && L->catalogued && img_format_parse(L->row.format, &cfmt) == 0) {
        L->qcow2_in_raw = cfmt == IMG_FMT_RAW && fmt == IMG_FMT_QCOW2;
        fmt = cfmt;
    }
    if (r == -ENOENT) {
        L->state = L_MISSING;
    } else if (r < 0) {
        if (unreadable(L, NULL, r, err) < 0)
            return -1;
    } else if ((r = img_open(L->store, L->path, fmt, IMG_OPEN_NOBACKING, &res,
                             0, &img, &e)) < 0) {
        if (r == -ENOENT)
            L->state = L_MISSING;
        else if (unreadable(L, e.message, r, err) < 0)
            return -1;
    } else if ((r = img_get_info(img, &L->info)) < 0) {
        if (unreadable(L, NULL, r, err) < 0)
            return -1;
    } else {
        L->state = L_PRESENT;
    }

    if (L->state == L_PRESENT && L->info.backing_filename) {
        struct gvm_store *bst = NULL;
        _cleanup_free_ char *bpath = NULL;
        gvm_error_clear(&e);
        r = res.resolve(res.opaque, L->store, L->path, L->info.backing_filename,
                        &bst, &bpath, &e);
        const struct resolve_volmap *vm = r < 0 ? NULL
                                                : resolve_ctx_lookup(&a->ctx, bst);
        if (vm) {
            _cleanup_free_ char *bvol = strdup(vm->volume);
            if (!bvol)
                return gvm_error_oom(err);
            if (visit(a, bvol, bpath, &bidx, err) < 0)
                return -1;
        } else {
            L = &a->l[i];
            if (asprintf(&L->bresolve_error, "%s", e.message[0] ? e.message :
                         "its backing file name resolves to no registered "
                         "volume") < 0) {
                L->bresolve_error = NULL;
                return gvm_error_oom(err);
            }
        }
    }
    L = &a->l[i];               /* visit() may have moved the array */
    if (L->catalogued && L->row.backing_id > 0) {
        if (visit_id(a, L->row.backing_id, &cbidx, err) < 0)
            return -1;
    }
    L = &a->l[i];
    L->bidx = bidx;
    L->cbidx = cbidx;
    return 0;
}

/* Catalog id of layer j (0 if NONE or not catalogued). */
static int64_t layer_id(const struct audit *a, size_t j)
{
    return j != NONE && a->l[j].catalogued ? a->l[j].row.id : 0;
}

/* {"image", "filename", "format"} of a backing as one side sees it. */
static json_t *backing_json(const struct audit *a, size_t j,
                            const char *filename, const char *format)
{
    return json_pack("{s:o, s:o, s:o}",
                     "image", j != NONE ? layer_ref(&a->l[j]) : json_null(),
                     "filename", str_or_null(filename),
                     "format", str_or_null(format));
}

static const char *layer_name(const struct audit *a, size_t j)
{
    return j != NONE ? a->l[j].name : "no image";
}

/* Differences between a layer's catalog row and its header. */
static int compare_layer(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    const struct catalog_image *row = &L->row;
    const struct img_info *in = &L->info;

    if (!L->catalogued) {
        if (L->state == L_PRESENT && L->overlay) {
            L->diffs |= D_NOTCAT;
            return add_entry(a->diffs, "not-catalogued", layer_ref(L), NULL, NULL,
                             json_pack("{s:s, s:I, s:o, s:o}", "format",
                                       img_format_name(L->info.format), "virtual-size",
                                       (json_int_t)L->info.virtual_size,
                                       "backing-filename",
                                       str_or_null(L->info.backing_filename),
                                       "backing", L->bidx != NONE
                                           ? layer_ref(&a->l[L->bidx]) : json_null()),
                             NULL, err, "%s is an overlay on storage whose backing "
                             "file is %s, but it is not in the catalog: a commit "
                             "or snapshot-delete that changes or removes its "
                             "backing file is refused until it is catalogued "
                             "(image-import).", L->name, layer_name(a, L->bidx));
        }
        if (L->state == L_PRESENT) {
            L->diffs |= D_NOTCAT;
            return add_entry(a->diffs, "not-catalogued", layer_ref(L), NULL, NULL,
                             json_pack("{s:s, s:I, s:o}", "format",
                                       img_format_name(in->format), "virtual-size",
                                       (json_int_t)in->virtual_size,
                                       "backing-filename",
                                       str_or_null(in->backing_filename)),
                             NULL, err, "%s is on storage in the chain of a "
                             "catalogued image or disk but not in the catalog.",
                             L->name);
        }
        if (L->state == L_MISSING) {
            L->diffs |= D_MISSING;
            return add_entry(a->diffs, "missing", layer_ref(L), NULL, NULL, NULL,
                             NULL, err, "%s is named as a backing file or disk "
                             "source but does not exist on storage.", L->name);
        }
    }
    if (L->state == L_MISSING) {
        L->diffs |= D_MISSING;
        return add_entry(a->diffs, "missing", layer_ref(L), NULL,
                         json_string(L->name), NULL, NULL, err,
                         "%s (id %" PRId64 ") is in the catalog but its file "
                         "does not exist on storage.", L->name, row->id);
    }
    if (L->state == L_UNREADABLE) {
        L->diffs |= D_UNREADABLE;
        return add_entry(a->diffs, "unreadable", layer_ref(L), NULL,
                         L->catalogued ? json_string(row->format) : NULL, NULL,
                         NULL, err, "The header of %s cannot be read: %s",
                         L->name, L->read_error);
    }
    if (L->state != L_PRESENT)
        return 0;

    if (L->qcow2_in_raw &&
        add_entry(a->diffs, "format-hazard", layer_ref(L), NULL,
                  json_string(row->format), json_string("qcow2"), NULL, err,
                  "%s is catalogued as raw but its content starts with a "
                  "qcow2 header, which whoever writes the disk (its guest) "
                  "can put there: gvmd keeps reading it as raw and never "
                  "records it as qcow2; make sure nothing opens it with "
                  "its format probed.", L->name) < 0)
        return -1;
    const char *sfmt = img_format_name(in->format);
    if (strcmp(row->format, sfmt) != 0) {
        L->diffs |= D_FORMAT;
        if (add_entry(a->diffs, "format", layer_ref(L), NULL,
                      json_string(row->format), json_string(sfmt), NULL, err,
                      "The catalog records %s as %s but storage holds a %s "
                      "image.", L->name, row->format, sfmt) < 0)
            return -1;
    }
    if (row->virtual_size != in->virtual_size) {
        L->diffs |= D_VSIZE;
        if (add_entry(a->diffs, "virtual-size", layer_ref(L), NULL,
                      json_integer((json_int_t)row->virtual_size),
                      json_integer((json_int_t)in->virtual_size), NULL, err,
                      "The catalog records a virtual size of %" PRIu64 " bytes "
                      "for %s but its header says %" PRIu64 ".",
                      row->virtual_size, L->name, in->virtual_size) < 0)
            return -1;
    }
    if (row->cluster_size != in->cluster_size) {
        L->diffs |= D_CSIZE;
        if (add_entry(a->diffs, "cluster-size", layer_ref(L), NULL,
                      row->cluster_size ? json_integer(row->cluster_size) : NULL,
                      in->cluster_size ? json_integer(in->cluster_size) : NULL,
                      NULL, err, "The catalog records a cluster size of %u for "
                      "%s but its header says %u.", row->cluster_size, L->name,
                      in->cluster_size) < 0)
            return -1;
    }
    int64_t sid = layer_id(a, L->bidx);
    if (row->backing_id != sid ||
        !gvm_streq0(row->backing_filename, in->backing_filename) ||
        !gvm_streq0(row->backing_format, in->backing_format)) {
        /* A catalog row without an edge above an uncatalogued backing file
         * it names correctly is the not-catalogued difference of that
         * file, reported there. */
        if (row->backing_id == 0 && sid == 0 && L->bidx != NONE &&
            gvm_streq0(row->backing_filename, in->backing_filename) &&
            gvm_streq0(row->backing_format, in->backing_format))
            return 0;
        L->diffs |= D_BACKING;
        char detail[256] = "";
        if (in->backing_filename && L->bidx == NONE)
            snprintf(detail, sizeof(detail), " (%s)",
                     L->bresolve_error ? L->bresolve_error : "unresolved");
        json_t *st = backing_json(a, L->bidx, in->backing_filename,
                                  in->backing_format);
        if (st && L->bresolve_error)
            json_object_set_new(st, "error", json_string(L->bresolve_error));
        char cat_side[1024], st_side[1024];
        if (row->backing_id > 0 || row->backing_filename)
            snprintf(cat_side, sizeof(cat_side), "on backing %s (file '%s', "
                     "format %s)", layer_name(a, L->cbidx),
                     gvm_str_or_none(row->backing_filename),
                     gvm_str_or_none(row->backing_format));
        else
            snprintf(cat_side, sizeof(cat_side), "without a backing file");
        if (in->backing_filename)
            snprintf(st_side, sizeof(st_side), "names '%s' (format %s), which "
                     "is %s%s", in->backing_filename,
                     gvm_str_or_none(in->backing_format),
                     layer_name(a, L->bidx), detail);
        else
            snprintf(st_side, sizeof(st_side), "names no backing file");
        return add_entry(a->diffs, "backing", layer_ref(L), NULL,
                         backing_json(a, L->cbidx, row->backing_filename,
                                      row->backing_format),
                         st, NULL, err, "The catalog records %s %s but its "
                         "header %s.", L->name, cat_side, st_side);
    }
    return 0;
}

/* ---- domains ------------------------------------------------------------------- */

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
    return visit(a, vol.name, path, idx, err);
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
        json_array_append_new(arr, json_string(name));
        free(name);
    }
    return steal_pointer(&arr);
}

/* The catalog's disks of dom, then its XML's, if libvirt knows it. */
static int audit_domain(struct audit *a, const struct catalog_domain *dom,
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
        if (visit_id(a, k->cat_image, &idx, err) < 0)
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
    if (!dj)
        return gvm_error_oom(err);
    json_array_append_new(a->domains, dj);
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
            return layer_ref(&a->l[i]);
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
         j = a->l[j].cbidx, steps++)
        json_array_append_new(arr, json_string(a->l[j].name));
    return arr;
}

static int compare_disk(struct audit *a, struct disk *k, struct gvm_error *err)
{
    if (!k->libvirt)
        return 0;
    const struct layer *X = k->xml_idx != NONE ? &a->l[k->xml_idx] : NULL;
    bool x_usable = X && (X->state == L_PRESENT);
    json_t *xj = X ? layer_ref(X) : json_pack("{s:n, s:s}", "id", "name",
                                              k->xml_desc ? k->xml_desc : "?");

    if (!k->in_xml) {
        json_decref(xj);
        return add_entry(a->diffs, "disk", disk_image_json(a, k->cat_image),
                         disk_ref(k), disk_image_json(a, k->cat_image), NULL,
                         NULL, err, "The catalog records disk %s of domain %s "
                         "on %s but the domain's XML has no disk %s.", k->target,
                         k->domain, disk_image_name(a, k->cat_image), k->target);
    }
    if (k->cat_image == 0) {
        k->adoptable = x_usable;
        return add_entry(a->diffs, "disk", NULL, disk_ref(k), NULL, NULL, xj,
                         err, "The XML of domain %s has disk %s on %s but the "
                         "catalog records no such disk.", k->domain, k->target,
                         X ? X->name : k->xml_desc);
    }
    if (!X || !X->catalogued || X->row.id != k->cat_image) {
        k->adoptable = x_usable;
        return add_entry(a->diffs, "active-layer", disk_image_json(a, k->cat_image),
                         disk_ref(k), disk_image_json(a, k->cat_image), NULL, xj,
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
            return add_entry(a->diffs, "chain", xj, disk_ref(k), cc, NULL,
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

/* ---- adopt-storage --------------------------------------------------------------- */

/* Catalogue layer i (NOBACKING: its own row; edges come afterwards). */
static int import_layer(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    _cleanup_img_ struct img *img = NULL;
    struct img_resolver res = resolve_img_resolver(&a->ctx);
    int64_t id;

    int r = img_open(L->store, L->path, L->info.format, IMG_OPEN_NOBACKING,
                     &res, 0, &img, err);
    if (r < 0) {
        if (!gvm_error_isset(err))
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "Opening %s to import it failed", L->name);
        return -1;
    }
    if (image_catalogue(a->d, &a->ctx, img, &id, err) < 0)
        return -1;
    catalog_image_clear(&L->row);
    if (catalog_image_get(a->d->cat, id, &L->row, err) < 0)
        return -1;
    L->catalogued = true;
    L->imported = true;
    return add_action(a->fixed, "not-catalogued", layer_ref(L), NULL, err,
                      "Imported %s as image %" PRId64 ".", L->name, id);
}

static int fix_backing(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    const struct img_info *in = &L->info;
    int64_t sid = layer_id(a, L->bidx);

    if (L->row.backing_id == sid &&
        gvm_streq0(L->row.backing_filename, in->backing_filename) &&
        gvm_streq0(L->row.backing_format, in->backing_format))
        return 0;
    if (catalog_image_set_backing(a->d->cat, L->row.id, sid, in->backing_filename,
                                  in->backing_format, err) < 0)
        return -1;
    L->row.backing_id = sid;
    return add_action(a->fixed, "backing", layer_ref(L), NULL, err,
                      "Recorded %s on backing %s ('%s', format %s) as its "
                      "header says.", L->name,
                      in->backing_filename ? layer_name(a, L->bidx) : "none",
                      gvm_str_or_none(in->backing_filename),
                      gvm_str_or_none(in->backing_format));
}

static int fix_header(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    const struct img_info *in = &L->info;
    const char *fmt = img_format_name(in->format);

    if (catalog_image_set_header(a->d->cat, L->row.id, fmt, in->virtual_size,
                                 in->cluster_size, err) < 0)
        return -1;
    return add_action(a->fixed, (L->diffs & D_FORMAT) ? "format" :
                      (L->diffs & D_VSIZE) ? "virtual-size" : "cluster-size",
                      layer_ref(L), NULL, err, "Recorded %s as %s, %" PRIu64
                      " bytes, cluster size %u, as its header says.", L->name,
                      fmt, in->virtual_size, in->cluster_size);
}

static int fix_missing(struct audit *a, size_t i, struct gvm_error *err)
{
    struct layer *L = &a->l[i];
    struct gvm_error e = { 0 };

    if (catalog_image_delete(a->d->cat, L->row.id, &e) == 0)
        return add_action(a->fixed, "missing", layer_ref(L), NULL, err,
                          "Removed %s (id %" PRId64 "), whose file is gone, "
                          "from the catalog.", L->name, L->row.id);
    if (e.cls != GVM_ERR_IN_USE) {
        *err = e;
        return -1;
    }
    return add_action(a->unfixed, "missing", layer_ref(L), NULL, err,
                      "%s (id %" PRId64 ") stays in the catalog although its "
                      "file is gone: %s", L->name, L->row.id, e.message);
}

/* Refuse to adopt storage under a job that is rewriting it. */
static int check_locks(struct audit *a, struct gvm_error *err)
{
    for (size_t i = 0; i < a->n; i++) {
        if (!a->l[i].catalogued || !a->l[i].diffs)
            continue;
        int64_t job = catalog_job_lock_holder(a->d->cat, a->l[i].row.id, err);
        if (job < 0)
            return -1;
        if (job > 0) {
            gvm_error_set(err, GVM_ERR_BUSY, "Cannot adopt storage for %s: "
                          "job %" PRId64 " holds it and may be changing its "
                          "header; wait for the job to conclude and audit "
                          "again.", a->l[i].name, job);
            return -1;
        }
    }
    return 0;
}

static int adopt(struct audit *a, struct gvm_error *err)
{
    struct catalog *cat = a->d->cat;

    if (check_locks(a, err) < 0)
        return -1;
    if (catalog_begin(cat, err) < 0)
        return -1;
    /* 1. Rows for the layers storage has and the catalog lacks. */
    for (size_t i = 0; i < a->n; i++)
        if ((a->l[i].diffs & D_NOTCAT) && import_layer(a, i, err) < 0)
            goto fail;
    /* 2. Backing edges and header fields as the headers say. */
    for (size_t i = 0; i < a->n; i++) {
        struct layer *L = &a->l[i];
        if (!L->catalogued || L->state != L_PRESENT)
            continue;
        if (fix_backing(a, i, err) < 0)
            goto fail;
        if ((L->diffs & (D_FORMAT | D_VSIZE | D_CSIZE)) && fix_header(a, i, err) < 0)
            goto fail;
    }
    /* 3. Disks follow the domain XML. */
    for (size_t i = 0; i < a->ndisks; i++) {
        struct disk *k = &a->disks[i];
        if (!k->adoptable)
            continue;
        const struct layer *X = &a->l[k->xml_idx];
        if (catalog_domain_set_disk(cat, k->domain_id, k->target, X->row.id,
                                    err) < 0)
            goto fail;
        if (add_action(a->fixed, k->cat_image ? "active-layer" : "disk",
                       layer_ref(X), disk_ref(k), err, "Recorded %s as the "
                       "active layer of disk %s of domain %s, as its XML says.",
                       X->name, k->target, k->domain) < 0)
            goto fail;
    }
    /* 4. Rows of files gone, top first so a missing child frees its
     *    missing parent; a row something still needs stays. */
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].catalogued && (a->l[i].diffs & D_MISSING) &&
            fix_missing(a, i, err) < 0)
            goto fail;
    /* What adopt-storage does not change. */
    for (size_t i = 0; i < a->n; i++)
        if (!a->l[i].catalogued && (a->l[i].diffs & D_MISSING) &&
            add_action(a->unfixed, "missing", layer_ref(&a->l[i]), NULL, err,
                       "%s does not exist; restore it, or rebase the images "
                       "naming it as their backing file.", a->l[i].name) < 0)
            goto fail;
    for (size_t i = 0; i < a->n; i++)
        if (a->l[i].qcow2_in_raw &&
            add_action(a->unfixed, "format-hazard", layer_ref(&a->l[i]), NULL,
                       err, "%s stays raw: a format is never taken from "
                       "what a guest can write.", a->l[i].name) < 0)
            goto fail;
    for (size_t i = 0; i < a->n; i++)
        if ((a->l[i].diffs & D_UNREADABLE) &&
            add_action(a->unfixed, "unreadable", layer_ref(&a->l[i]), NULL, err,
                       "%s cannot be read; repair or restore it first.",
                       a->l[i].name) < 0)
            goto fail;
    for (size_t i = 0; i < a->ndisks; i++) {
        struct disk *k = &a->disks[i];
        if (k->in_xml && !k->adoptable && (k->cat_image == 0 ||
            k->xml_idx == NONE || !a->l[k->xml_idx].catalogued ||
            a->l[k->xml_idx].row.id != k->cat_image) &&
            add_action(a->unfixed, k->cat_image ? "active-layer" : "disk", NULL,
                       disk_ref(k), err, "Disk %s of domain %s uses %s, which "
                       "is not an image gvmd can catalogue.", k->target,
                       k->domain, k->xml_desc) < 0)
            goto fail;
    }
    if (catalog_commit(cat, err) < 0)
        return -1;
    return 0;
fail:
    catalog_rollback(cat);
    return -1;
}

/* ---- the whole audit ------------------------------------------------------------- */

/* Overlays on storage the catalog does not know, backing onto a catalogued
 * layer (a bounded search of its directory, chain-check.h): they become
 * layers (examined, so the layers below are known) reported as
 * not-catalogued. */
static int scan_overlays(struct audit *a, struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = calloc(a->n + 1, sizeof(*ids));
    _cleanup_json_ json_t *found = NULL;
    size_t n = 0, i, first = a->n;
    json_t *o;

    if (!ids)
        return gvm_error_oom(err);
    for (i = 0; i < a->n; i++)
        if (a->l[i].catalogued && a->l[i].state == L_PRESENT)
            ids[n++] = a->l[i].row.id;
    if (chain_check_uncatalogued(a->d, ids, n, &found, NULL, err) < 0)
        return -1;
    json_array_foreach(found, i, o) {
        const char *vol = json_string_value(json_object_get(o, "volume"));
        const char *path = json_string_value(json_object_get(o, "path"));
        size_t idx;

        if (!vol || !path)
            continue;
        if (visit(a, vol, path, &idx, err) < 0)
            return -1;
        if (idx >= first)
            a->l[idx].overlay = true;
    }
    for (i = first; i < a->n; i++)
        if (examine(a, i, err) < 0)
            return -1;
    return 0;
}

static int roots(struct audit *a, const struct audit_scope *s,
                 struct gvm_error *err)
{
    size_t idx;

    if (s->image_id > 0)
        return visit_id(a, s->image_id, &idx, err);
    if (s->domain) {
        struct catalog_domain dom = { 0 };
        if (catalog_domain_find(a->d->cat, s->domain, &dom, err) < 0)
            return -1;
        int r = audit_domain(a, &dom, err);
        catalog_domain_clear(&dom);
        return r;
    }
    struct catalog_image *imgs = NULL;
    size_t n = 0;
    if (catalog_image_list(a->d->cat, 0, &imgs, &n, err) < 0)
        return -1;
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = visit(a, imgs[i].volume, imgs[i].path, &idx, err);
    catalog_images_free(imgs, n);
    if (r < 0)
        return -1;
    struct catalog_domain *doms = NULL;
    if (catalog_domain_list(a->d->cat, &doms, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n && r == 0; i++)
        r = audit_domain(a, &doms[i], err);
    catalog_domains_free(doms, n);
    return r;
}

int audit_run(struct gvmd *d, const struct audit_scope *s, json_t **result,
              struct gvm_error *err)
{
    struct audit a = { .d = d };
    int ret = -1;

    resolve_ctx_init(&a.ctx, d);
    a.diffs = json_array();
    a.domains = json_array();
    a.fixed = json_array();
    a.unfixed = json_array();
    if (!a.diffs || !a.domains || !a.fixed || !a.unfixed) {
        gvm_error_oom(err);
        goto out;
    }
    if (roots(&a, s, err) < 0)
        goto out;
    /* Examining a layer may add the layers below it: walk until none is
     * left unread. */
    for (size_t i = 0; i < a.n; i++)
        if (examine(&a, i, err) < 0)
            goto out;
    if (scan_overlays(&a, err) < 0)
        goto out;
    for (size_t i = 0; i < a.n; i++)
        if (compare_layer(&a, i, err) < 0)
            goto out;
    for (size_t i = 0; i < a.ndisks; i++)
        if (compare_disk(&a, &a.disks[i], err) < 0)
            goto out;
    if (s->adopt_storage && json_array_size(a.diffs) > 0) {
        if (adopt(&a, err) < 0)
            goto out;
        log_info("chain-audit adopt-storage: %zu difference(s), %zu fixed, "
                 "%zu not fixable.", json_array_size(a.diffs),
                 json_array_size(a.fixed), json_array_size(a.unfixed));
    }
    *result = json_pack("{s:O, s:{s:I, s:I, s:I}, s:O, s:O, s:O}",
                        "differences", a.diffs,
                        "checked", "images", (json_int_t)a.n,
                        "disks", (json_int_t)a.ndisks,
                        "domains", (json_int_t)json_array_size(a.domains),
                        "domains", a.domains, "fixed", a.fixed,
                        "unfixed", a.unfixed);
    ret = *result ? 0 : gvm_error_oom(err);
out:
    audit_clear(&a);
    return ret;
}
