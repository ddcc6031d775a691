/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * live-job.c — block-commit and block-pull on a running domain's disk: the
 * live path.  gvmd does not touch the metadata of images QEMU has open;
 * libvirt does the work (virt-blockjob.c), the job watches it and then
 * brings the catalog in step.
 *
 * block-commit {top, base}, top used by running domain D, disk T:
 *   intermediate (top below T's active layer): virDomainBlockCommit with
 *     top and base named "T[N]" (the live XML's layer indexes), keeping
 *     relative backing names when the chain uses them and libvirt can; QEMU
 *     copies into base and rewrites the header of top's child in the chain;
 *     the job ends by itself.
 *   active (top is T's active layer): the same with ACTIVE; the job
 *     mirrors until it is ready (the READY event AND GetBlockJobInfo's
 *     cur == end AND the live XML's <mirror ready='yes'>), then pivots
 *     (pivot true) or goes "ready" and waits for job-complete (pivot) or
 *     job-cancel (abort: T stays on top, nothing changed).
 *   Afterwards, as the offline commit does (chain-commit.c step 3): in one
 *   transaction with the journal's "remove" step, top's child gets the
 *   edge to base (intermediate) or T's catalog disk moves to base (active),
 *   and the rows of the removed images (top and everything between it and
 *   base) go; then their files are deleted.
 * block-pull {image, base?}, image the active layer of D's disk T:
 *   virDomainBlockRebase(T, base "T[N]" or NULL); afterwards the image's
 *   edge goes to base (or none); the intermediates stay, as offline.
 *
 * Where the new state is read from.  Whether libvirt's job completed is
 * decided from storage and libvirt, never from gvmd's memory: an
 * intermediate commit or a pull rewrote exactly one header (top's child,
 * the pulled image), so that header — read with gvmd's engine, read-only
 * and without the backing chain, which is safe on an image QEMU has open:
 * QEMU changes a header in one sector write — says whether it still names
 * the old backing.  The name recorded in the catalog is that header's
 * string, so catalog and header agree byte for byte (libvirt's XML gives
 * the layer, not the string QEMU wrote).  An active commit rewrote no
 * header: the domain XML's active layer (live, or the persistent one once
 * the domain stopped: libvirt updates both on pivot) says whether the disk
 * moved to base.
 *
 * Journal and restarts.  run() records step "libvirt-job" {domain, disk,
 * kind} before it asks libvirt for the job, and "remove" in the catalog
 * transaction.  recover() finishes a pending "remove" (files) and lets
 * run() re-attach otherwise: run() is idempotent — a libvirt job of the
 * expected kind on the disk is watched (not started again); no job and a
 * completed change is finished; no job and no change is (re)started, or
 * concluded cancelled if that was asked.  While libvirtd is unreachable the
 * job keeps polling (the connection is re-opened on each call) for up to
 * UNREACHABLE_MS before it fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "chain-ops.h"
#include "jsonutil.h"
#include "live.h"
#include "resolve.h"
#include "virt-blockjob.h"
#include "volume.h"

#define POLL_MS 250
#define UNREACHABLE_MS 60000

/* virConnectDomainEventBlockJobStatus, as bits from job_live_events(). */
#define EV_COMPLETED (1u << 0)
#define EV_FAILED    (1u << 1)
#define EV_CANCELED  (1u << 2)
#define EV_READY     (1u << 3)

/* ---- shared helpers ------------------------------------------------------ */

/* For chain_commit_only_child() in this file's messages. */
#define RUNNING "the running disk's chain"

/* A backing name qemu resolves relative to the image's directory. */
static bool is_relative(const char *name)
{
    return name && *name && name[0] != '/' && !strstr(name, "://") &&
           strncmp(name, "json:", 5) != 0;
}

/* One layer of a running disk's chain as libvirt lists it. */
struct layer {
    int64_t id;        /* catalog id, 0 if not catalogued */
    unsigned index;    /* "T[index]", 0 if libvirt gave none */
};

/* The layers of domain's disk target, active first (live XML). */
static int disk_layers(struct gvmd *d, const char *domain, const char *target,
                       struct layer **out, size_t *n, struct gvm_error *err)
{
    struct virt_disk *disks = NULL;
    size_t nd = 0;
    bool running;
    struct layer *l = NULL;
    int r = -1;

    *out = NULL;
    *n = 0;
    if (virt_domain_disks(d->virt, domain, &disks, &nd, &running, err) < 0)
        return -1;
    for (size_t i = 0; i < nd; i++) {
        struct virt_disk *k = &disks[i];

        if (!k->target || strcmp(k->target, target) != 0)
            continue;
        l = calloc(k->nbacking + 1, sizeof(*l));
        if (!l) {
            gvm_error_oom(err);
            goto out;
        }
        for (size_t j = 0; j <= k->nbacking; j++) {
            const struct virt_source *s = j ? &k->backing[j - 1] : &k->src;

            if (live_source_image(d, s, &l[j].id, err) < 0)
                goto out;
            l[j].index = s->index;
        }
        *out = steal_pointer(&l);
        *n = k->nbacking + 1;
        r = 0;
        goto out;
    }
    gvm_error_set(err, GVM_ERR_NOT_FOUND, "Domain %s has no disk %s.", domain,
                  target);
out:
    free(l);
    virt_disks_free(disks, nd);
    return r;
}

/* The catalog id of the active layer of domain's disk, from the domain XML
 * (live while it runs, persistent after): 0 if not catalogued. */
static int disk_active(struct gvmd *d, const char *domain, const char *target,
                       int64_t *id, struct gvm_error *err)
{
    struct virt_disk *disks = NULL;
    size_t nd = 0;
    bool running;
    int r = -1;

    *id = 0;
    if (virt_domain_disks(d->virt, domain, &disks, &nd, &running, err) < 0)
        return -1;
    for (size_t i = 0; i < nd; i++) {
        if (disks[i].target && strcmp(disks[i].target, target) == 0) {
            r = live_source_image(d, &disks[i].src, id, err) < 0 ? -1 : 0;
            goto out;
        }
    }
    gvm_error_set(err, GVM_ERR_NOT_FOUND, "Domain %s has no disk %s any more.",
                  domain, target);
out:
    virt_disks_free(disks, nd);
    return r;
}

/* The backing file name and format in image id's header, read with the
 * engine (read-only, no backing chain opened). */
static int read_backing(struct gvmd *d, int64_t id, char **name, char **fmt,
                        struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    _cleanup_img_ struct img *img = NULL;
    _cleanup_info_ struct img_info info = { 0 };
    struct gvm_store *st = NULL;
    int r;

    *name = *fmt = NULL;
    if (catalog_image_get(d->cat, id, &row, err) < 0 ||
        volumes_store_by_id(d->vols, row.volume_id, &st, err) < 0)
        return -1;
    r = img_open(st, row.path, IMG_FMT_QCOW2, IMG_OPEN_NOBACKING, NULL, 0, &img, err);
    if (r == 0)
        r = img_get_info(img, &info);
    if (r < 0) {
        _cleanup_free_ char *nm = resolve_name(row.volume, row.path);
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Reading the header of %s failed", nm ? nm : "?");
        return -1;
    }
    *name = steal_pointer(&info.backing_filename);
    *fmt = steal_pointer(&info.backing_format);
    return 0;
}

/* Create the job; InUse reworded as the offline path does. */
static int create_job(struct gvmd *d, const struct job_type *type,
                      json_t *params, json_t *images,
                      const struct catalog_job_lock *locks, size_t nlocks,
                      const char *op_id, const char *what, const char *name,
                      json_t **result, struct gvm_error *err)
{
    _cleanup_job_ struct job *job = NULL;

    if (jobs_create(d->jobs, type, params, images, locks, nlocks, op_id,
                    &job, err) < 0) {
        if (err->cls == GVM_ERR_IN_USE) {
            struct gvm_error e2 = { 0 };
            gvm_error_set(&e2, GVM_ERR_IN_USE, "Cannot %s %s now. %s", what,
                          name, err->message);
            *err = e2;
        }
        return -1;
    }
    *result = job_to_json(job);
    return *result ? 0 : gvm_error_oom(err);
}

/* Busy if libvirt already runs a block job on the disk. */
static int disk_idle(struct gvmd *d, const char *domain, const char *target,
                     struct gvm_error *err)
{
    struct virt_bj_info info;

    if (virt_blockjob_info(d->virt, domain, target, &info, err) < 0)
        return -1;
    if (info.present) {
        gvm_error_set(err, GVM_ERR_BUSY, "Disk %s of domain %s already has a "
                      "libvirt block job (%s) running; wait for it or abort "
                      "it first.", target, domain, virt_bj_kind_name(info.kind));
        return -1;
    }
    return 0;
}

/* ---- block-commit: start ------------------------------------------------------ */

int live_commit_start(struct gvmd *d, const struct chain_commit_req *req,
                      json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved top = { 0 };
    _cleanup_live_user_ struct live_user u = { 0 };
    _cleanup_free_ struct layer *lay = NULL;
    _cleanup_free_ char *tname = NULL, *bname = NULL;
    _cleanup_json_ json_t *params = NULL, *images = NULL, *removed = NULL;
    struct catalog_job_lock locks[2 * IMG_MAX_CHAIN_DEPTH + 2];
    int64_t chain[IMG_MAX_CHAIN_DEPTH];
    size_t k = 0, nlay = 0, nlocks = 0, t, b;
    int64_t id, base_id, child = 0;
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
    if (req->base && !json_is_null(req->base)) {
        _cleanup_resolved_ struct resolved base = { 0 };
        if (resolve_catalogued(d, req->base, "base", &base, err) < 0)
            return -1;
        base_id = base.row.id;
    } else {
        base_id = top.row.backing_id;
    }
    if (base_id == top.row.id) {
        gvm_error_param(err, "base", "The base of a commit cannot be the top "
                        "image itself.");
        return -1;
    }
    bname = resolve_image_name(d, base_id);
    for (id = top.row.id; id > 0 && id != base_id;) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        if (k >= IMG_MAX_CHAIN_DEPTH) {
            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below %s "
                          "is deeper than %d images.", tname, IMG_MAX_CHAIN_DEPTH);
            return -1;
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        chain[k++] = id;
        id = row.backing_id;
    }
    if (id != base_id) {
        gvm_error_param(err, "base", "The image %s is not in the backing chain "
                        "of %s.", bname ? bname : "?", tname);
        return -1;
    }

    /* Where libvirt has the layers: consecutive, with indexes. */
    if (disk_layers(d, u.domain, u.target, &lay, &nlay, err) < 0)
        return -1;
    for (t = 0; t < nlay && lay[t].id != top.row.id; t++)
        ;
    for (b = 0; b < nlay && lay[b].id != base_id; b++)
        ;
    if (t >= nlay || b >= nlay || b != t + k || !lay[b].index ||
        (t > 0 && !lay[t].index)) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "libvirt's view of disk %s of "
                      "running domain %s does not list %s and the images down "
                      "to %s as consecutive layers with indexes (its live XML "
                      "lacks <backingStore> elements for them), so libvirt "
                      "cannot commit them; define the domain with its full "
                      "backing chain in the disk's XML.", u.target, u.domain,
                      tname, bname ? bname : "the base");
        return -1;
    }
    if (t > 0) {
        child = lay[t - 1].id;
        if (!child) {
            gvm_error_set(err, GVM_ERR_UNSUPPORTED, "The image above %s in disk "
                          "%s of domain %s is not catalogued; gvmd cannot keep "
                          "its catalog in step with a commit under it (import "
                          "it with domain-attach first).", tname, u.target,
                          u.domain);
            return -1;
        }
    }

    /* Nothing outside the running chain may depend on what changes. */
    if (chain_commit_only_child(d, base_id, chain[k - 1], RUNNING,
                                "committing into it would change what that "
                                "image reads.", err) < 0)
        return -1;
    for (size_t i = 0; i < k; i++) {
        if (chain_commit_only_child(d, chain[i], i == 0 ? child : chain[i - 1],
                                    RUNNING, "the commit removes it from the "
                                    "chain.", err) < 0)
            return -1;
    }
    /* Snapshots, domain disks and overlays the catalog does not know:
     * refused before libvirt is asked for anything. */
    if (chain_commit_check(d, top.row.id, base_id, chain, k, err) < 0)
        return -1;
    if (child) {
        _cleanup_catimg_ struct catalog_image crow = { 0 };
        if (catalog_image_get(d->cat, child, &crow, err) < 0)
            return -1;
        relative = is_relative(crow.backing_filename);
    }
    if (disk_idle(d, u.domain, u.target, err) < 0)
        return -1;

    removed = json_array();
    images = json_array();
    if (!removed || !images)
        return gvm_error_oom(err);
    if (chain_commit_plan_removed(d, chain, k, removed, images, locks,
                                  &nlocks, err) < 0)
        return -1;
    json_array_append_new(images, json_integer(base_id));
    locks[nlocks++] = (struct catalog_job_lock){ .image_id = base_id, .write = true };
    if (child) {
        json_array_append_new(images, json_integer(child));
        locks[nlocks++] = (struct catalog_job_lock){ .image_id = child, .write = true };
    }
    {
        _cleanup_catimg_ struct catalog_image brow = { 0 };
        if (catalog_image_get(d->cat, base_id, &brow, err) < 0)
            return -1;
        for (id = brow.backing_id; id > 0;) {
            _cleanup_catimg_ struct catalog_image row = { 0 };
            if (nlocks >= GVM_ARRAY_SIZE(locks)) {
                gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below "
                              "%s is deeper than %d images.", bname ? bname : "?",
                              IMG_MAX_CHAIN_DEPTH);
                return -1;
            }
            if (catalog_image_get(d->cat, id, &row, err) < 0)
                return -1;
            locks[nlocks++] = (struct catalog_job_lock){ .image_id = id, .write = false };
            id = row.backing_id;
        }
    }
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
    if (create_job(d, &live_commit_job, params, images, locks, nlocks,
                   req->op_id, "commit", tname, result, err) < 0)
        return -1;
    return 1;
}

/* ---- block-pull: start ----------------------------------------------------------- */

int live_pull_start(struct gvmd *d, const struct chain_pull_req *req,
                    json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved img = { 0 };
    _cleanup_live_user_ struct live_user u = { 0 };
    _cleanup_free_ struct layer *lay = NULL;
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
    json_array_append_new(images, json_integer(img.row.id));
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
        json_array_append_new(images, json_integer(id));
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
        if (disk_layers(d, u.domain, u.target, &lay, &nlay, err) < 0)
            return -1;
        for (b = 0; b < nlay && lay[b].id != base_id; b++)
            ;
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
    if (disk_idle(d, u.domain, u.target, err) < 0)
        return -1;
    params = json_pack("{s:s, s:s, s:I, s:I, s:b}",
                       "domain", u.domain, "disk", u.target,
                       "image", (json_int_t)img.row.id,
                       "speed", (json_int_t)req->speed,
                       "relative", has_base && is_relative(img.row.backing_filename));
    if (!params)
        return gvm_error_oom(err);
    json_object_set_new(params, "base", has_base ? json_integer(base_id) : json_null());
    json_object_set_new(params, "old-backing", img.row.backing_filename ?
                        json_string(img.row.backing_filename) : json_null());
    json_object_set_new(params, "old-backing-id", json_integer(img.row.backing_id));
    log_info("block-pull into %s: on disk %s of running domain %s through "
             "libvirt.", iname, u.target, u.domain);
    if (create_job(d, &live_pull_job, params, images, locks, nlocks,
                   req->op_id, "pull into", iname, result, err) < 0)
        return -1;
    return 1;
}

/* ---- the jobs ----------------------------------------------------------------------- */

struct live {
    struct job *job;
    struct gvmd *d;
    bool commit;                 /* else pull                              */
    const char *domain, *disk;   /* borrowed from the params               */
    int64_t top, base, child;    /* pull: top = the image, base 0 = none   */
    bool active, pivot, relative;
    uint64_t speed;
    const char *old_backing;     /* pull: the image's backing name before  */
    int64_t old_backing_id;      /* pull: and its catalogued image         */
    json_t *removed;             /* commit (borrowed)                      */
    char *name, *base_name;
    int kind;                    /* the libvirt job kind expected          */
};

static void live_clear(struct live *l)
{
    free(l->name);
    free(l->base_name);
}

static int live_init(struct live *l, struct job *job, bool commit,
                     struct gvm_error *err)
{
    json_t *p = job_params(job);

    memset(l, 0, sizeof(*l));
    l->job = job;
    l->d = job_daemon(job);
    l->commit = commit;
    l->domain = json_string_value(json_object_get(p, "domain"));
    l->disk = json_string_value(json_object_get(p, "disk"));
    l->speed = (uint64_t)json_integer_value(json_object_get(p, "speed"));
    l->relative = json_is_true(json_object_get(p, "relative"));
    if (commit) {
        l->top = json_integer_value(json_object_get(p, "top"));
        l->base = json_integer_value(json_object_get(p, "base"));
        l->child = json_integer_value(json_object_get(p, "child"));
        l->active = json_is_true(json_object_get(p, "active"));
        l->pivot = json_is_true(json_object_get(p, "pivot"));
        l->removed = json_object_get(p, "removed");
        l->kind = l->active ? VIRT_BJ_ACTIVE_COMMIT : VIRT_BJ_COMMIT;
    } else {
        json_t *b = json_object_get(p, "base");
        l->top = json_integer_value(json_object_get(p, "image"));
        l->base = json_is_integer(b) ? json_integer_value(b) : 0;
        l->old_backing = json_string_value(json_object_get(p, "old-backing"));
        l->old_backing_id = json_integer_value(json_object_get(p, "old-backing-id"));
        l->kind = VIRT_BJ_PULL;
    }
    if (!l->domain || !l->disk || l->top <= 0 ||
        (commit && (l->base <= 0 || !json_is_array(l->removed) ||
                    (!l->active && l->child <= 0)))) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Job %" PRId64 " has unusable "
                      "parameters; nothing was changed.", job_id(job));
        return -1;
    }
    if (!l->d->virt) {
        gvm_error_set(err, GVM_ERR_VIRT, "Job %" PRId64 " is a live job but "
                      "this gvmd has no libvirt connection.", job_id(job));
        return -1;
    }
    l->name = resolve_image_name(l->d, l->top);
    l->base_name = l->base ? resolve_image_name(l->d, l->base)
                           : strdup("no backing file");
    return l->name && l->base_name ? 0 : gvm_error_oom(err);
}

/*
 * Has libvirt's change landed?  1 yes (*name / *fmt: the new backing name
 * and format of the header it changed, for the catalog), 0 no, -1 error.
 */
static int landed(struct live *l, char **name, char **fmt, struct gvm_error *err)
{
    *name = *fmt = NULL;
    if (l->commit && l->active) {
        int64_t id;

        if (disk_active(l->d, l->domain, l->disk, &id, err) < 0)
            return -1;
        if (id == l->base)
            return 1;
        if (id == l->top)
            return 0;
        gvm_error_set(err, GVM_ERR_CONFLICT, "Disk %s of domain %s now uses "
                      "neither %s (the commit's top) nor its base %s; check it "
                      "with chain-audit.", l->disk, l->domain, l->name,
                      l->base_name);
        return -1;
    }
    if (l->commit) {
        _cleanup_catimg_ struct catalog_image crow = { 0 };

        if (catalog_image_get(l->d->cat, l->child, &crow, err) < 0 ||
            read_backing(l->d, l->child, name, fmt, err) < 0)
            return -1;
        if (gvm_streq0(*name, crow.backing_filename))
            return 0;
        return *name ? 1 : -1;
    }
    if (read_backing(l->d, l->top, name, fmt, err) < 0)
        return -1;
    if (gvm_streq0(*name, l->old_backing))
        /* A pull down to the backing file it has copies nothing and
         * leaves the header as it was. */
        return l->base && l->base == l->old_backing_id ? 1 : 0;
    /* A pull down to base leaves a name; a flatten none. */
    if ((l->base != 0) != (*name != NULL)) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The header of %s names the "
                      "backing file %s, neither its old one nor what the pull "
                      "should have left; check it with chain-audit.", l->name,
                      gvm_str_or_none(*name));
        return -1;
    }
    return 1;
}

/* Delete the removed images' files (missing is fine). */
static int delete_files(struct live *l, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(l->removed, i, e) {
        struct gvm_store *st = NULL;
        const char *path = json_string_value(json_object_get(e, "path"));
        int r;

        if (volumes_store_by_id(l->d->vols,
                json_integer_value(json_object_get(e, "volume-id")), &st, err) < 0)
            return -1;
        r = st->ops->unlink(st, path);
        if (r < 0 && r != -ENOENT) {
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "The live commit into %s is complete, but "
                                "deleting the file %s failed", l->base_name, path);
            return -1;
        }
    }
    return 0;
}

/* The catalog follows what libvirt did (one transaction with the journal
 * step "remove" for a commit), then the removed files go. */
static int finish(struct live *l, struct journal_op *op, const char *name,
                  const char *fmt, struct gvm_error *err)
{
    struct catalog *cat = l->d->cat;

    if (catalog_begin(cat, err) < 0)
        return -1;
    if (op && journal_step(op, l->commit ? "remove" : "switch",
                           l->commit ? l->removed : NULL, err) < 0)
        goto fail;
    if (!l->commit) {
        if (catalog_image_set_backing(cat, l->top, l->base, name, fmt, err) < 0)
            goto fail;
        return catalog_commit(cat, err) < 0 ? -1 : (op ? journal_done(op, err) : 0);
    }
    if (!l->active &&
        catalog_image_set_backing(cat, l->child, l->base, name, fmt, err) < 0)
        goto fail;
    if (l->active &&
        catalog_domain_move_disks(cat, l->top, l->base, err) < 0)
        goto fail;
    if (chain_commit_drop_removed(cat, job_id(l->job), l->removed, err) < 0)
        goto fail;
    if (catalog_commit(cat, err) < 0)
        return -1;
    if (delete_files(l, err) < 0)
        return -1;
    return op ? journal_done(op, err) : 0;
fail:
    catalog_rollback(cat);
    return -1;
}

/* The sentence saying what the chain holds when the job stops short. */
static void unchanged(struct live *l, char *buf, size_t len)
{
    if (l->commit && l->active)
        snprintf(buf, len, "the chain is unchanged: disk %s still uses %s "
                 "(its data is intact), and %s may hold part of the copy, "
                 "hidden by the layers above it", l->disk, l->name, l->base_name);
    else if (l->commit)
        snprintf(buf, len, "the chain is unchanged: %s is still in it, and "
                 "%s may hold part of the copy, hidden by the layers above it",
                 l->name, l->base_name);
    else
        snprintf(buf, len, "the chain is unchanged: %s still backs onto its "
                 "old backing file and may hold part of the pulled data, "
                 "which reads the same", l->name);
}

/* A commit's preconditions again, just before libvirt starts it (the job
 * may have waited; libvirt's job, once started, cannot be taken back). */
static int commit_check_again(struct live *l, struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = NULL;
    size_t i, k = json_array_size(l->removed);
    json_t *e;

    if (!l->commit)
        return 0;
    ids = calloc(k + 1, sizeof(*ids));
    if (!ids)
        return gvm_error_oom(err);
    json_array_foreach(l->removed, i, e)
        ids[i] = json_integer_value(json_object_get(e, "id"));
    return chain_commit_check(l->d, l->top, l->base, ids, k, err);
}

static int start_libvirt_job(struct live *l, struct journal_op *op,
                             struct gvm_error *err)
{
    _cleanup_free_ struct layer *lay = NULL;
    _cleanup_json_ json_t *payload = NULL;
    size_t n = 0, t, b = 0;
    bool refused = false;
    int r;

    if (commit_check_again(l, err) < 0)
        return -1;
    if (disk_layers(l->d, l->domain, l->disk, &lay, &n, err) < 0)
        return -1;
    for (t = 0; t < n && lay[t].id != l->top; t++)
        ;
    if (l->base)
        for (b = 0; b < n && lay[b].id != l->base; b++)
            ;
    if (t >= n || (l->base && (b >= n || !lay[b].index))) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "Disk %s of domain %s no longer "
                      "has %s and %s in its chain as libvirt lists it; nothing "
                      "was changed.", l->disk, l->domain, l->name, l->base_name);
        return -1;
    }
    /* Journaled before libvirt is asked: a restart finds the job again. */
    payload = json_pack("{s:s, s:s, s:s}", "domain", l->domain, "disk", l->disk,
                        "kind", virt_bj_kind_name(l->kind));
    if (!payload)
        return gvm_error_oom(err);
    if (catalog_begin(l->d->cat, err) < 0)
        return -1;
    if (journal_step(op, "libvirt-job", payload, err) < 0) {
        catalog_rollback(l->d->cat);
        return -1;
    }
    if (catalog_commit(l->d->cat, err) < 0)
        return -1;
    if (l->commit)
        r = virt_blockjob_commit(l->d->virt, l->domain, l->disk, lay[b].index,
                                 l->active ? 0 : lay[t].index, l->speed,
                                 l->relative, &refused, err);
    else
        r = virt_blockjob_pull(l->d->virt, l->domain, l->disk,
                               l->base ? lay[b].index : 0, l->speed,
                               l->relative, &refused, err);
    if (r == 0 && refused)
        log_info("Job %" PRId64 ": libvirt cannot keep the relative backing "
                 "name for disk %s of %s (it did not probe that chain itself); "
                 "QEMU writes an absolute one, which the catalog records.",
                 job_id(l->job), l->disk, l->domain);
    return r;
}

/* After the libvirt job ended or the domain stopped: finish when the change
 * landed (0), else say what the chain holds (-1, err set from `what`). */
static int settle(struct live *l, struct journal_op *op, const char *what,
                  struct gvm_error *err)
{
    _cleanup_free_ char *nm = NULL, *fm = NULL;
    char why[400];
    struct gvm_error e = { 0 };
    int r = landed(l, &nm, &fm, &e);

    if (r < 0 && l->commit && l->active && e.cls == GVM_ERR_NOT_FOUND) {
        /* A transient domain that stopped is gone with its XML, and an
         * active commit changes no header: storage cannot tell. */
        gvm_error_set(err, GVM_ERR_VIRT, "%s; libvirt no longer knows the "
                      "domain, and whether it had pivoted disk %s to %s cannot "
                      "be read from storage (an active commit rewrites no "
                      "header): the catalog still has %s as the disk's image "
                      "and %s in the chain; check with chain-audit before "
                      "using them.", what, l->disk, l->base_name, l->name,
                      l->name);
        return -1;
    }
    if (r < 0) {
        *err = e;
        return -1;
    }
    if (r == 1)
        return finish(l, op, nm, fm, err);
    unchanged(l, why, sizeof(why));
    gvm_error_set(err, GVM_ERR_VIRT, "%s; %s.", what, why);
    return -1;
}

static void close_record(struct live *l, struct journal_op *op)
{
    struct gvm_error e = { 0 };

    if (op && journal_undone(op, &e) < 0)
        log_error("Job %" PRId64 ": closing its journal record failed: %s",
                  job_id(l->job), e.message);
}

static int live_run(struct job *job, bool commit, struct gvm_error *err)
{
    const struct job_type *type = commit ? &live_commit_job : &live_pull_job;
    const char *verb = commit ? "commit" : "pull";
    struct live l;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    bool started = false, aborted = false, trust_events = false;
    bool pivot_failed = false, pivoted = false;
    struct gvm_error pivot_err = { 0 };
    unsigned seen = 0;
    uint64_t down_since = 0;
    char what[400];
    int ret = -1;

    if (live_init(&l, job, commit, err) < 0)
        goto out;
    if (job_live_watch(job, l.domain, l.disk) < 0) {
        gvm_error_oom(err);
        goto out;
    }
    if (journal_begin(l.d->cat, type->name, job_id(job), job_params(job), &op,
                      err) < 0)
        goto out;
    job_live_events(job, true);

    for (;;) {
        struct virt_bj_info info;
        struct gvm_error e = { 0 };

        if (job_daemon_stopping(job)) {
            /* The libvirt job goes on; the next start re-attaches (the
             * record stays pending for recover()). */
            ret = JOB_STOPPED;
            goto out;
        }
        seen |= job_live_events(job, true);
        if (virt_blockjob_info(l.d->virt, l.domain, l.disk, &info, &e) < 0) {
            enum virt_dom_state st = virt_blockjob_domain_state(l.d->virt, l.domain);

            if (st == VIRT_DOM_UNREACHABLE || st == VIRT_DOM_RUNNING) {
                uint64_t now = gvm_now_ms();

                /* Events may be lost while the connection is down. */
                trust_events = false;
                if (!down_since) {
                    down_since = now;
                    log_warn("Job %" PRId64 ": %s; retrying for up to %d s.",
                             job_id(job), e.message, UNREACHABLE_MS / 1000);
                } else if (now - down_since > UNREACHABLE_MS) {
                    gvm_error_set(err, GVM_ERR_VIRT, "libvirt at %s did not "
                                  "answer for %d s during the live %s of %s "
                                  "(%s); its block job on disk %s of domain %s "
                                  "may still run, so the chain's state is "
                                  "unknown to gvmd: check it with chain-audit "
                                  "once libvirtd is back.", virt_uri(l.d->virt),
                                  UNREACHABLE_MS / 1000, verb, l.name, e.message,
                                  l.disk, l.domain);
                    goto out;
                }
                job_live_sleep(job, 4 * POLL_MS);
                continue;
            }
            snprintf(what, sizeof(what), "Domain %s %s during the live %s of %s "
                     "(disk %s)", l.domain, st == VIRT_DOM_GONE ? "went away"
                     : "stopped", verb, l.name, l.disk);
            if (settle(&l, op, what, err) < 0) {
                close_record(&l, op);
                goto out;
            }
            log_info("Job %" PRId64 ": domain %s stopped, but the %s had "
                     "completed; catalog updated.", job_id(job), l.domain, verb);
            ret = 0;
            goto out;
        }
        if (down_since) {
            log_info("Job %" PRId64 ": libvirt answers again.", job_id(job));
            down_since = 0;
        }
        if (info.present && info.kind != l.kind) {
            gvm_error_set(err, started ? GVM_ERR_CONFLICT : GVM_ERR_BUSY,
                          "Disk %s of domain %s has a libvirt block job of "
                          "another kind (%s) than this %s; nothing was "
                          "changed by gvmd.", l.disk, l.domain,
                          virt_bj_kind_name(info.kind), verb);
            close_record(&l, op);
            goto out;
        }
        if (!info.present) {
            _cleanup_free_ char *nm = NULL, *fm = NULL;
            int r = landed(&l, &nm, &fm, err);

            if (r < 0) {
                close_record(&l, op);
                goto out;
            }
            if (r == 1) {
                if (finish(&l, op, nm, fm, err) < 0)
                    goto out;
                ret = 0;
                goto out;
            }
            if (job_cancel_requested(job)) {
                close_record(&l, op);
                ret = JOB_STOPPED;
                goto out;
            }
            if (started) {
                char why[400];

                unchanged(&l, why, sizeof(why));
                if (pivot_failed)
                    gvm_error_set(err, GVM_ERR_VIRT, "%s gvmd aborted the "
                                  "commit; %s.", pivot_err.message, why);
                else
                    gvm_error_set(err, GVM_ERR_VIRT, "libvirt's %s job on disk "
                                  "%s of domain %s ended without completing%s; "
                                  "%s.", verb, l.disk, l.domain,
                                  seen & EV_FAILED ? " (it failed)" :
                                  seen & EV_CANCELED ? " (it was cancelled "
                                  "outside gvmd)" : "", why);
                close_record(&l, op);
                goto out;
            }
            /* Events of an earlier job on the disk are not this one's; an
             * event that comes during the call is kept for the next turn. */
            job_live_events(job, true);
            seen = 0;
            if (start_libvirt_job(&l, op, err) < 0) {
                close_record(&l, op);
                goto out;
            }
            started = trust_events = true;
            job_live_sleep(job, POLL_MS);
            continue;
        }

        /* A job of ours runs (started here, or found again). */
        started = true;
        job_set_progress(job, info.cur, info.end);
        if (job_cancel_requested(job) && !aborted) {
            if (virt_blockjob_abort(l.d->virt, l.domain, l.disk, false, &e) < 0)
                log_warn("Job %" PRId64 ": %s", job_id(job), e.message);
            else
                aborted = true;
        } else if (l.commit && l.active && !aborted && !pivoted &&
                   info.end > 0 && info.cur == info.end &&
                   (!trust_events || (seen & EV_READY)) &&
                   virt_blockjob_mirror_ready(l.d->virt, l.domain, l.disk, &e) == 1) {
            /* Ready by all three signs (the event only when no event can
             * have been missed: after a restart or reconnect, libvirt's
             * XML is the record of the READY it got). */
            if (l.pivot || job_complete_requested(job)) {
                if (virt_blockjob_abort(l.d->virt, l.domain, l.disk, true, &e) == 0) {
                    /* libvirt returned after the switch: the next turn
                     * finds no job and the disk on base. */
                    pivoted = true;
                } else {
                    if (!l.pivot) {
                        job_complete_failed(job, &e);
                    } else {
                        struct gvm_error e2 = { 0 };

                        pivot_failed = true;
                        pivot_err = e;
                        if (virt_blockjob_abort(l.d->virt, l.domain, l.disk,
                                                false, &e2) == 0)
                            aborted = true;
                    }
                }
            } else {
                job_set_ready(job, true);
            }
        }
        job_live_sleep(job, POLL_MS);
    }
out:
    live_clear(&l);
    return ret;
}

static int live_recover(struct job *job, struct journal_op *op,
                        const struct journal_entry *e, size_t n, bool commit,
                        struct gvm_error *err)
{
    const struct journal_entry *last = op ? journal_last_pending(e, n) : NULL;
    struct live l;
    int ret = -1;

    memset(&l, 0, sizeof(l));
    if (last && strcmp(last->kind, "switch") == 0) {
        /* The catalog change was committed with this step. */
        ret = journal_done(op, err) < 0 ? -1 : JOB_RECOVERED_DONE;
        goto out;
    }
    if (last && strcmp(last->kind, "remove") == 0) {
        if (live_init(&l, job, commit, err) < 0 || delete_files(&l, err) < 0 ||
            journal_done(op, err) < 0)
            goto out;
        log_info("Job %" PRId64 ": recovered after the catalog change; files "
                 "removed.", job_id(job));
        ret = JOB_RECOVERED_DONE;
        goto out;
    }
    if (op && !last && n > 0 && !e[n - 1].undone) {
        /* journal_done() ran: only the job's conclusion was lost. */
        ret = JOB_RECOVERED_DONE;
        goto out;
    }
    /* Anything else: run() finds the libvirt job again (or its outcome)
     * under a new record; this one is closed as superseded. */
    if (last && journal_undone(op, err) < 0)
        goto out;
    ret = JOB_RECOVERED_RESUME;
out:
    live_clear(&l);
    return ret;
}

static int commit_run(struct job *job, struct gvm_error *err)
{
    return live_run(job, true, err);
}

static int pull_run(struct job *job, struct gvm_error *err)
{
    return live_run(job, false, err);
}

static int commit_recover(struct job *job, struct journal_op *op,
                          const struct journal_entry *e, size_t n,
                          struct gvm_error *err)
{
    return live_recover(job, op, e, n, true, err);
}

static int pull_recover(struct job *job, struct journal_op *op,
                        const struct journal_entry *e, size_t n,
                        struct gvm_error *err)
{
    return live_recover(job, op, e, n, false, err);
}

const struct job_type live_commit_job = {
    .name = "block-commit",
    .live = true,
    .run = commit_run,
    .recover = commit_recover,
};

const struct job_type live_pull_job = {
    .name = "block-pull",
    .live = true,
    .run = pull_run,
    .recover = pull_recover,
};
