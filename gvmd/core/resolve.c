/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * resolve.c — IMAGE references to volume + store + path + catalog row, and
 * the img_resolver for backing chains (see resolve.h for the rules).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "resolve.h"
#include "volume.h"

void resolved_clear(struct resolved *r)
{
    if (!r)
        return;
    catalog_volume_clear(&r->vol);
    free(r->path);
    catalog_image_clear(&r->row);
    memset(r, 0, sizeof(*r));
}

char *resolve_name(const char *volume, const char *path)
{
    char *s = NULL;
    if (asprintf(&s, "%s:%s", volume ? volume : "?", path ? path : "?") < 0)
        return NULL;
    return s;
}

char *resolve_image_name(struct gvmd *d, int64_t id)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    struct gvm_error e = { 0 };
    char *s = NULL;

    if (catalog_image_get(d->cat, id, &row, &e) == 0)
        s = resolve_name(row.volume, row.path);
    if (!s && asprintf(&s, "image %" PRId64, id) < 0)
        s = NULL;
    return s;
}

int resolve_volume(struct gvmd *d, const char *name, struct catalog_volume *vol,
                   struct gvm_store **store, struct gvm_error *err)
{
    if (catalog_volume_get(d->cat, name, vol, err) < 0)
        return -1;
    if (volumes_store(d->vols, name, store, err) < 0) {
        catalog_volume_clear(vol);
        return -1;
    }
    return 0;
}

/* The registered volume for a gluster volume reached through servers,
 * registered now if there is none. */
static int gluster_volume(struct gvmd *d, const char *glvol,
                          const struct gvm_server *servers, size_t nservers,
                          struct catalog_volume *vol, struct gvm_store **store,
                          struct gvm_error *err)
{
    _cleanup_free_ char *name = NULL;
    if (volumes_find_or_add_gluster(d->vols, glvol, servers, nservers,
                                    &name, err) < 0)
        return -1;
    return resolve_volume(d, name, vol, store, err);
}

int resolve_imageref(struct gvmd *d, const struct imageref *ref,
                     struct resolved *out, struct gvm_error *err)
{
    memset(out, 0, sizeof(*out));
    switch (ref->kind) {
    case IMAGEREF_ID: {
        if (catalog_image_get(d->cat, ref->id, &out->row, err) < 0)
            return -1;
        out->catalogued = true;
        out->path = strdup(out->row.path);
        if (!out->path) {
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
            resolved_clear(out);
            return -1;
        }
        if (resolve_volume(d, out->row.volume, &out->vol, &out->store, err) < 0) {
            resolved_clear(out);
            return -1;
        }
        return 0;
    }
    case IMAGEREF_VOLPATH:
        if (resolve_volume(d, ref->volume, &out->vol, &out->store, err) < 0)
            return -1;
        break;
    case IMAGEREF_GLUSTER:
        if (gluster_volume(d, ref->volume, ref->servers, ref->nservers,
                           &out->vol, &out->store, err) < 0)
            return -1;
        break;
    }
    out->path = strdup(ref->path);
    if (!out->path) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        resolved_clear(out);
        return -1;
    }
    int r = catalog_image_find(d->cat, out->vol.id, out->path, &out->row, err);
    if (r < 0) {
        resolved_clear(out);
        return -1;
    }
    out->catalogued = r > 0;
    return 0;
}

int resolve_param(struct gvmd *d, json_t *params, const char *param,
                  struct resolved *out, struct gvm_error *err)
{
    struct imageref ref = { 0 };
    json_t *v = json_object_get(params, param);
    if (!v) {
        gvm_error_param(err, param, "The parameter '%s' is missing.", param);
        return -1;
    }
    if (imageref_parse_json(v, param, &ref, err) < 0)
        return -1;
    int r = resolve_imageref(d, &ref, out, err);
    imageref_clear(&ref);
    return r;
}

int resolve_catalogued(struct gvmd *d, json_t *ref, const char *param,
                       struct resolved *out, struct gvm_error *err)
{
    struct imageref r = { 0 };
    int ret;

    if (imageref_parse_json(ref, param, &r, err) < 0)
        return -1;
    ret = resolve_imageref(d, &r, out, err);
    imageref_clear(&r);
    if (ret < 0)
        return -1;
    if (!out->catalogued) {
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "The image %s:%s is not in the "
                      "catalog; catalogue it with image-import first.",
                      out->vol.name, out->path);
        return -1;
    }
    return 0;
}

/* ---- chains ---------------------------------------------------------------- */

void resolve_ctx_init(struct resolve_ctx *ctx, struct gvmd *d)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->d = d;
}

void resolve_ctx_clear(struct resolve_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nmap; i++)
        free(ctx->map[i].volume);
    free(ctx->map);
    ctx->map = NULL;
    ctx->nmap = 0;
}

const struct resolve_volmap *resolve_ctx_lookup(const struct resolve_ctx *ctx,
                                                const struct gvm_store *store)
{
    for (size_t i = 0; i < ctx->nmap; i++)
        if (ctx->map[i].store == store)
            return &ctx->map[i];
    return NULL;
}

int resolve_ctx_add(struct resolve_ctx *ctx, struct gvm_store *store,
                    int64_t volume_id, const char *volume)
{
    if (resolve_ctx_lookup(ctx, store))
        return 0;
    struct resolve_volmap *m = realloc(ctx->map, (ctx->nmap + 1) * sizeof(*m));
    if (!m)
        return -ENOMEM;
    ctx->map = m;
    m[ctx->nmap].store = store;
    m[ctx->nmap].volume_id = volume_id;
    m[ctx->nmap].volume = strdup(volume);
    if (!m[ctx->nmap].volume)
        return -ENOMEM;
    ctx->nmap++;
    return 0;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* An absolute backing name: the dir volume whose root holds it (the longest
 * such root wins). */
static int resolve_absolute(struct resolve_ctx *ctx, const char *child_name,
                            const char *name, struct catalog_volume *vol,
                            char **path, struct gvm_error *err)
{
    struct catalog_volume *vols = NULL;
    size_t n = 0, best = SIZE_MAX, bestlen = 0;

    if (catalog_volume_list(ctx->d->cat, &vols, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *root = vols[i].root_path;
        if (vols[i].backend != CATALOG_BACKEND_DIR || !root)
            continue;
        size_t rl = strlen(root);
        while (rl > 1 && root[rl - 1] == '/')
            rl--;
        if (strncmp(name, root, rl) == 0 && name[rl] == '/' && rl >= bestlen) {
            best = i;
            bestlen = rl;
        }
    }
    if (best == SIZE_MAX) {
        catalog_volumes_free(vols, n);
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "The backing file '%s' of %s is an absolute path outside "
                      "every registered dir volume; register a volume holding "
                      "it or rebase the image onto a relative or gluster:// name.",
                      name, child_name);
        return -1;
    }
    const char *rest = name + bestlen;
    while (*rest == '/')
        rest++;
    /* Normalise through the relative resolver: "root/x/../y" is fine,
     * climbing out of the root is not. */
    int r = *rest ? path_resolve_relative("", rest, path) : -EINVAL;
    if (r < 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "The backing file '%s' of %s does not name a file inside "
                      "the volume '%s'.", name, child_name, vols[best].name);
        catalog_volumes_free(vols, n);
        return -1;
    }
    *vol = vols[best];
    memset(&vols[best], 0, sizeof(vols[best]));
    catalog_volumes_free(vols, n);
    return 0;
}

/* The file the store says `name`, joined to the directory of child_path,
 * is once symlinks are followed and each ".." taken from where the path
 * has led (the store's physical op): 0 with *out, or -errno (-ENOTSUP when
 * the store cannot say). */
static int physical_beside(struct gvm_store *st, const char *child_path,
                           const char *name, char **out)
{
    _cleanup_free_ char *dir = NULL, *joined = NULL;

    if (!st->ops->physical)
        return -ENOTSUP;
    dir = path_dirname(child_path);
    if (!dir || asprintf(&joined, "%s%s%s", dir, *dir ? "/" : "", name) < 0) {
        joined = NULL;
        return -ENOMEM;
    }
    return st->ops->physical(st, joined, out);
}

/*
 * A relative backing name as QEMU resolves it: joined to the directory of
 * the image as opened and handed to the system, which follows symlinks
 * and takes each ".." from where the path has led (a textual "a/.." is
 * not that where a is a symlink).  Where the store can say which file that
 * is, its answer; where the file does not exist (reported later) or the
 * store cannot say, the textual resolution.  0 with *out, or -errno.
 */
static int resolve_relative(struct gvm_store *st, const char *child_path,
                            const char *name, char **out)
{
    int r = physical_beside(st, child_path, name, out);

    if (r == 0 || r == -EXDEV || r == -ELOOP || r == -ENOMEM)
        return r;
    /* missing (reported when opened), or not to be told: the text */
    return path_resolve_relative(child_path, name, out);
}

static int resolve_backing(void *opaque, struct gvm_store *child_store,
                           const char *child_path, const char *backing_name,
                           struct gvm_store **store, char **path,
                           struct gvm_error *err)
{
    struct resolve_ctx *ctx = opaque;
    const struct resolve_volmap *cm = resolve_ctx_lookup(ctx, child_store);
    _cleanup_free_ char *child_name =
        resolve_name(cm ? cm->volume : "?", child_path);
    struct catalog_volume vol = { 0 };
    struct gvm_store *st = NULL;
    char *p = NULL;

    if (has_prefix(backing_name, "gluster:") || has_prefix(backing_name, "gluster+") ||
        has_prefix(backing_name, "json:")) {
        struct imageref ref = { 0 };
        struct gvm_error perr = { 0 };
        if (imageref_parse_string(backing_name, "backing", &ref, &perr) < 0) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "The backing file name '%s' of %s is not a usable "
                          "gluster reference: %s", backing_name,
                          child_name ? child_name : child_path, perr.message);
            return -EINVAL;
        }
        if (ref.kind != IMAGEREF_GLUSTER) {
            imageref_clear(&ref);
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "The backing file name '%s' of %s is not a gluster "
                          "reference.", backing_name, child_path);
            return -EINVAL;
        }
        int r = gluster_volume(ctx->d, ref.volume, ref.servers, ref.nservers,
                               &vol, &st, err);
        if (r == 0 && !(p = strdup(ref.path)))
            r = -1;
        imageref_clear(&ref);
        if (r < 0) {
            catalog_volume_clear(&vol);
            if (!gvm_error_isset(err))
                gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
            return -EINVAL;
        }
    } else if (backing_name[0] == '/') {
        if (resolve_absolute(ctx, child_name ? child_name : child_path,
                             backing_name, &vol, &p, err) < 0)
            return -EINVAL;
        if (volumes_store(ctx->d->vols, vol.name, &st, err) < 0) {
            catalog_volume_clear(&vol);
            free(p);
            return -EINVAL;
        }
    } else if (path_protocol_len(backing_name) > 0 ||
               backing_name[0] == ':') {
        /* QEMU would open "file:/host/path", "nbd:...", "ssh:..." through
         * that protocol, not as a file next to the image. */
        gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                      "The backing file name '%s' of %s names the protocol "
                      "'%.*s:', which gvmd does not follow: it resolves "
                      "relative names, absolute paths on registered dir "
                      "volumes and gluster references only.", backing_name,
                      child_name ? child_name : child_path,
                      (int)path_protocol_len(backing_name), backing_name);
        return -EINVAL;
    } else {
        int r = resolve_relative(child_store, child_path, backing_name, &p);
        if (r < 0) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED,
                          "The backing file '%s' of %s %s.", backing_name,
                          child_name ? child_name : child_path,
                          r == -EXDEV ? "climbs out of its volume" :
                          r == -ENAMETOOLONG ? "resolves to a path too long" :
                          "does not name a file");
            return r;
        }
        *store = child_store;
        *path = p;
        return 0;
    }

    int r = resolve_ctx_add(ctx, st, vol.id, vol.name);
    catalog_volume_clear(&vol);
    if (r < 0) {
        free(p);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return r;
    }
    *store = st;
    *path = p;
    return 0;
}

struct img_resolver resolve_img_resolver(struct resolve_ctx *ctx)
{
    struct img_resolver r = { .resolve = resolve_backing, .opaque = ctx };
    return r;
}

/* Relative name of target as seen from the directory of child (both
 * normalised volume paths): "../" for each directory of the child's below
 * the common ancestor, then the rest of target. */
static char *relative_to(const char *child_path, const char *target)
{
    const char *c = child_path, *t = target;
    const char *cs = c, *ts = t;     /* starts of the current segments */

    /* Walk common directory segments (never the target's file name). */
    for (;;) {
        const char *ce = strchr(cs, '/'), *te = strchr(ts, '/');
        if (!ce || !te)
            break;
        if (ce - cs != te - ts || memcmp(cs, ts, (size_t)(ce - cs)) != 0)
            break;
        cs = ce + 1;
        ts = te + 1;
    }
    size_t ups = 0;
    for (const char *p = cs; *p; p++)
        if (*p == '/')
            ups++;
    /* "a:b.qcow2" would be the protocol "a" to QEMU; "./a:b.qcow2" is
     * the file. */
    bool dot = ups == 0 && (path_protocol_len(ts) > 0 || ts[0] == ':');
    size_t len = ups * 3 + (dot ? 2 : 0) + strlen(ts) + 1;
    char *out = malloc(len);
    if (!out)
        return NULL;
    char *o = out;
    if (dot) {
        memcpy(o, "./", 2);
        o += 2;
    }
    for (size_t u = 0; u < ups; u++, o += 3)
        memcpy(o, "../", 3);
    strcpy(o, ts);
    return out;
}

/* Whether rel, written in child_path's header, names another file than
 * path once resolved as QEMU opens it (a directory on the way is a
 * symlink, so ".." goes elsewhere), asking the volume's store as
 * resolve_relative() does.  A file that does not exist yet, or a store
 * that cannot say, counts as the same. */
static bool relative_goes_astray(struct volumes *vols,
                                 const struct catalog_volume *vol,
                                 const char *child_path, const char *rel,
                                 const char *path)
{
    _cleanup_free_ char *ra = NULL, *rb = NULL;
    struct gvm_store *st = NULL;
    struct gvm_error err;

    gvm_error_clear(&err);
    if (!vols || volumes_store_by_id(vols, vol->id, &st, &err) < 0 ||
        physical_beside(st, child_path, rel, &ra) < 0 ||
        st->ops->physical(st, path, &rb) < 0)
        return false;
    return strcmp(ra, rb) != 0;
}

char *resolve_backing_name(struct volumes *vols,
                           const struct catalog_volume *child_vol,
                           const char *child_path,
                           const struct catalog_volume *vol, const char *path)
{
    if (child_vol->id == vol->id) {
        char *rel = relative_to(child_path, path);

        /* Then the absolute name below, which reaches path from anywhere. */
        if (!rel || !relative_goes_astray(vols, vol, child_path, rel, path))
            return rel;
        free(rel);
    }
    if (vol->backend == CATALOG_BACKEND_GLUSTER && vol->nservers > 0)
        return imageref_format_uri(&vol->servers[0], vol->gluster_volume, path);
    char *s = NULL;
    const char *root = vol->root_path ? vol->root_path : "";
    size_t rl = strlen(root);
    if (asprintf(&s, "%s%s%s", root, rl && root[rl - 1] == '/' ? "" : "/",
                 path) < 0)
        return NULL;
    return s;
}
