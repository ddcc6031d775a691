/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-commit.c — offline block-commit as a job.
 *
 * block-commit {top, base?}: chain  base <- i1 <- ... <- top <- children.
 * The "removed" images are top and every image between it and base.
 *   1. copy: for every range top reads from a removed layer, write what top
 *      reads there into base (zeros as zeros); ranges top reads as zeros
 *      because a removed layer is shorter than base get zeros in base too.
 *      From then on base reads what top reads; top and its children read as
 *      before (they hide base wherever it changed); the intermediates do
 *      not, but they go away.
 *   2. switch: the header of every child of top names base.
 *   3. remove: in one catalog transaction the children's edges move to
 *      base, a domain disk on top moves to base (offline active commit),
 *      the removed images' rows go; then their files are deleted.
 *
 * Journal and recovery:
 *   step "grow" {old-size, new-size}  pending while a base smaller than
 *     top grows to top's size (img_resize), before any data moves.  The
 *     new range reads zeros, as every image above base read there (past
 *     base's old end), so nothing above base reads differently.  R0: the
 *     image reads as the old or the new size; write those zeros again
 *     (img_resize cannot promise them across a crash when base has a
 *     longer backing file), record base's size in the catalog, then R1.
 *   step "copying"  pending while data is copied.  R1: nothing that any
 *     image the commit keeps visible (top and above) reads has changed:
 *     roll back (repair leaks in base) and run again, or conclude
 *     cancelled.  Copying again writes the same bytes.
 *   step "switch"   pending from before the first child header write.  The
 *     copy was complete and flushed.  R2: roll forward: every child header
 *     naming the old backing is rewritten (one naming base already landed;
 *     anything else is a Conflict), then step 3.
 *   step "remove"   recorded in the same transaction as the catalog change,
 *     so pending means the catalog is done.  R3: delete the files left
 *     (missing ones are fine) and conclude done.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "chain-check.h"
#include "chain-commit.h"
#include "chain-job.h"
#include "chain-ops.h"
#include "chain.h"
#include "jsonutil.h"
#include "resolve.h"
#include "virt-define.h"
#include "volume.h"

/* For chain_commit_only_child() in this file's messages. */
#define COMMITTED "the committed chain"

int chain_commit_only_child(struct gvmd *d, int64_t id, int64_t allowed,
                            const char *chain, const char *why,
                            struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = NULL;
    _cleanup_free_ char *me = NULL;
    size_t n = 0;

    if (catalog_image_children(d->cat, id, &ids, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *other = NULL;
        if (ids[i] == allowed)
            continue;
        other = resolve_image_name(d, ids[i]);
        me = resolve_image_name(d, id);
        gvm_error_set(err, GVM_ERR_IN_USE, "The image %s is also the backing "
                      "file of %s, outside %s: %s", me ? me : "?",
                      other ? other : "?", chain, why);
        return -1;
    }
    return 0;
}

int chain_commit_check(struct gvmd *d, int64_t top_id, int64_t base_id,
                       const int64_t *chain, size_t k, struct gvm_error *err)
{
    _cleanup_free_ char *tn = resolve_image_name(d, top_id);
    _cleanup_free_ char *bn = resolve_image_name(d, base_id);
    char what[1024];

    snprintf(what, sizeof(what), "Committing %s into %s", tn ? tn : "?",
             bn ? bn : "?");
    /* base reads what top read; top and everything down to base go; a
     * domain disk on top moves to base (reading the same). */
    return chain_check_preconditions(d, what, &base_id, 1, chain, k, top_id,
                                     err);
}

int chain_commit_walk(struct gvmd *d, int64_t top_id, const char *name,
                      int64_t base_id, int64_t *chain, size_t *k,
                      struct gvm_error *err)
{
    int64_t id;

    *k = 0;
    for (id = top_id; id > 0 && id != base_id;) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        if (*k >= IMG_MAX_CHAIN_DEPTH) {
            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below "
                          "%s is deeper than %d images.", name,
                          IMG_MAX_CHAIN_DEPTH);
            return -1;
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        chain[(*k)++] = id;
        id = row.backing_id;
    }
    if (id != base_id) {
        _cleanup_free_ char *bn = resolve_image_name(d, base_id);
        gvm_error_param(err, "base", "The image %s is not in the backing chain "
                        "of %s.", bn ? bn : "?", name);
        return -1;
    }
    return 0;
}

int chain_commit_only_children(struct gvmd *d, int64_t base_id,
                               const int64_t *chain, size_t k,
                               int64_t top_allowed, const char *words,
                               struct gvm_error *err)
{
    if (chain_commit_only_child(d, base_id, chain[k - 1], words,
                                "committing into it would change what that "
                                "image reads.", err) < 0)
        return -1;
    for (size_t i = top_allowed < 0 ? 1 : 0; i < k; i++) {
        if (chain_commit_only_child(d, chain[i], i == 0 ? top_allowed
                                                        : chain[i - 1],
                                    words, "the commit removes it from the "
                                    "chain.", err) < 0)
            return -1;
    }
    return 0;
}

int chain_commit_lock_below(struct gvmd *d, int64_t base_id, const char *below,
                            struct catalog_job_lock *locks, size_t *nlocks,
                            size_t max, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image brow = { 0 };

    if (catalog_image_get(d->cat, base_id, &brow, err) < 0)
        return -1;
    for (int64_t id = brow.backing_id; id > 0;) {
        _cleanup_catimg_ struct catalog_image row = { 0 };
        if (*nlocks >= max) {
            gvm_error_set(err, GVM_ERR_CORRUPT, "The catalogued chain below "
                          "%s is deeper than %d images.", below,
                          IMG_MAX_CHAIN_DEPTH);
            return -1;
        }
        if (catalog_image_get(d->cat, id, &row, err) < 0)
            return -1;
        locks[(*nlocks)++] = (struct catalog_job_lock){ .image_id = id, .write = false };
        id = row.backing_id;
    }
    return 0;
}

int chain_commit_base(struct gvmd *d, const struct chain_commit_req *req,
                      const struct resolved *top, int64_t *base_id,
                      struct gvm_error *err)
{
    if (req->base && !json_is_null(req->base)) {
        _cleanup_resolved_ struct resolved base = { 0 };
        if (resolve_catalogued(d, req->base, "base", &base, err) < 0)
            return -1;
        *base_id = base.row.id;
    } else {
        *base_id = top->row.backing_id;
    }
    if (*base_id == top->row.id) {
        gvm_error_param(err, "base", "The base of a commit cannot be the top "
                        "image itself.");
        return -1;
    }
    return 0;
}

int chain_commit_start(struct gvmd *d, const struct chain_commit_req *req,
                       json_t **result, struct gvm_error *err)
{
    _cleanup_resolved_ struct resolved top = { 0 };
    _cleanup_free_ char *tname = NULL;
    _cleanup_json_ json_t *params = NULL, *images = NULL, *removed = NULL,
                          *children = NULL;
    _cleanup_free_ int64_t *kids = NULL;
    _cleanup_catimg_ struct catalog_image brow = { 0 };
    struct catalog_job_lock locks[3 * IMG_MAX_CHAIN_DEPTH + 2];
    size_t nlocks = 0, nkids = 0;
    int64_t chain[IMG_MAX_CHAIN_DEPTH];
    size_t k = 0;
    int64_t base_id;

    if (resolve_catalogued(d, req->top, "top", &top, err) < 0)
        return -1;
    if (strcmp(top.row.format, "qcow2") != 0 || top.row.backing_id <= 0) {
        gvm_error_param(err, "top", "The image %s:%s has no catalogued backing "
                        "file to commit into.", top.vol.name, top.path);
        return -1;
    }
    tname = resolve_name(top.vol.name, top.path);
    if (!tname)
        return gvm_error_oom(err);
    /* top .. the image above base, from the catalog. */
    if (chain_commit_base(d, req, &top, &base_id, err) < 0 ||
        catalog_image_get(d->cat, base_id, &brow, err) < 0 ||
        chain_commit_walk(d, top.row.id, tname, base_id, chain, &k, err) < 0)
        return -1;
    /* A base smaller than top grows to top's size (step "grow"). */
    if (!req->pivot && catalog_image_children(d->cat, top.row.id, &kids,
                                              &nkids, err) == 0 && nkids == 0) {
        gvm_error_param(err, "pivot", "An offline active commit of %s:%s "
                        "always pivots to the base; pivot false is only for "
                        "a running domain.", top.vol.name, top.path);
        return -1;
    }
    free(steal_pointer(&kids));
    nkids = 0;

    /* Committing changes what base (and every intermediate) reads: nothing
     * outside the chain may depend on them.  Then snapshots, domain disks
     * and overlays the catalog does not know. */
    if (chain_commit_only_children(d, base_id, chain, k, -1, COMMITTED,
                                   err) < 0 ||
        chain_commit_check(d, top.row.id, base_id, chain, k, err) < 0 ||
        catalog_image_children(d->cat, top.row.id, &kids, &nkids, err) < 0)
        return -1;

    removed = json_array();
    children = json_array();
    images = json_array();
    if (!removed || !children || !images)
        return gvm_error_oom(err);
    if (chain_commit_plan_removed(d, chain, k, removed, images, locks,
                                  &nlocks, err) < 0)
        return -1;
    if (gvm_json_append(images, json_integer(base_id)) < 0)
        return gvm_error_oom(err);
    locks[nlocks++] = (struct catalog_job_lock){ .image_id = base_id, .write = true };
    for (size_t i = 0; i < nkids; i++) {
        if (gvm_json_append(children, json_integer(kids[i])) < 0)
            return gvm_error_oom(err);
        locks[nlocks++] = (struct catalog_job_lock){ .image_id = kids[i], .write = true };
    }
    /* Below base: read only, must not change under the copy. */
    if (chain_commit_lock_below(d, base_id, "the base", locks, &nlocks,
                                GVM_ARRAY_SIZE(locks), err) < 0)
        return -1;

    params = json_pack("{s:I, s:I, s:I, s:O, s:O}",
                       "top", (json_int_t)top.row.id,
                       "base", (json_int_t)base_id,
                       "speed", (json_int_t)req->speed,
                       "removed", removed, "children", children);
    if (!params)
        return gvm_error_oom(err);
    return chain_job_start(d, &chain_commit_job, params, images, locks, nlocks, req->op_id,
                           "commit", &top, result, err);
}

/* ---- the job ------------------------------------------------------------------ */

static void commit_clear(struct chain_commit *c)
{
    catalog_image_clear(&c->base);
    free(c->name);
    free(c->base_name);
    resolve_ctx_clear(&c->ctx);
}

/* p: the job's params (or chain_commit_merge's, which have the same form). */
static int commit_init(struct chain_commit *c, struct job *job, json_t *p,
                       struct gvm_error *err)
{
    json_t *t;

    memset(c, 0, sizeof(*c));
    c->job = job;
    c->d = job_daemon(job);
    resolve_ctx_init(&c->ctx, c->d);
    c->top_id = json_integer_value(json_object_get(p, "top"));
    c->base_id = json_integer_value(json_object_get(p, "base"));
    c->speed = (uint64_t)json_integer_value(json_object_get(p, "speed"));
    c->removed = json_object_get(p, "removed");
    c->children = json_object_get(p, "children");
    if (c->top_id <= 0 || c->base_id <= 0 || !json_is_array(c->removed) ||
        json_array_size(c->removed) == 0 || !json_is_array(c->children)) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Job %" PRId64 " has unusable "
                      "parameters; nothing was changed.", job_id(job));
        return -1;
    }
    t = json_array_get(c->removed, 0);
    c->name = resolve_name(json_string_value(json_object_get(t, "volume")),
                           json_string_value(json_object_get(t, "path")));
    if (catalog_image_get(c->d->cat, c->base_id, &c->base, err) < 0)
        return -1;
    c->base_name = resolve_name(c->base.volume, c->base.path);
    return c->name && c->base_name ? 0 : gvm_error_oom(err);
}

/* The new header fields of child id: {id, old-name, old-format, new-name}. */
static json_t *child_switch(struct chain_commit *c, int64_t id, struct gvm_error *err)
{
    _cleanup_catimg_ struct catalog_image row = { 0 };
    struct catalog_volume cv = { 0 }, bv = { 0 };
    _cleanup_free_ char *nn = NULL;
    json_t *o = NULL;

    if (catalog_image_get(c->d->cat, id, &row, err) < 0)
        return NULL;
    if (catalog_volume_get_by_id(c->d->cat, row.volume_id, &cv, err) < 0)
        return NULL;
    if (catalog_volume_get_by_id(c->d->cat, c->base.volume_id, &bv, err) < 0) {
        catalog_volume_clear(&cv);
        return NULL;
    }
    nn = resolve_backing_name(c->d->vols, &cv, row.path, &bv, c->base.path);
    catalog_volume_clear(&cv);
    catalog_volume_clear(&bv);
    if (nn)
        o = json_pack("{s:I, s:s?, s:s?, s:s}", "id", (json_int_t)id,
                      "old-name", row.backing_filename,
                      "old-format", row.backing_format, "new-name", nn);
    if (!o)
        gvm_error_oom(err);
    return o;
}

/* R2 for one child: make its header name base. */
static int switch_child(struct chain_commit *c, json_t *sw, struct gvm_error *err)
{
    _cleanup_img_ struct img *ch = NULL;
    _cleanup_info_ struct img_info info = { 0 };
    int64_t id = json_integer_value(json_object_get(sw, "id"));
    const char *old_name = json_string_value(json_object_get(sw, "old-name"));
    const char *old_fmt = json_string_value(json_object_get(sw, "old-format"));
    const char *new_name = json_string_value(json_object_get(sw, "new-name"));
    _cleanup_free_ char *cn = resolve_image_name(c->d, id);
    int r;

    if (chain_commit_copy_open_id(c, id, IMG_OPEN_RW | IMG_OPEN_NOBACKING, &ch,
                             err) < 0)
        return -1;
    if (img_get_info(ch, &info) < 0)
        return gvm_error_oom(err);
    if (gvm_streq0(info.backing_filename, new_name) &&
        gvm_streq0(info.backing_format, c->base.format))
        return 0;
    if (!gvm_streq0(info.backing_filename, old_name) ||
        !gvm_streq0(info.backing_format, old_fmt)) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The header of %s names the "
                      "backing file %s, neither %s nor the commit's base %s; "
                      "check it with chain-audit.", cn ? cn : "?",
                      gvm_str_or_none(info.backing_filename), gvm_str_or_none(old_name),
                      new_name);
        return -1;
    }
    r = img_set_backing(ch, new_name, c->base.format, err);
    if (r == 0)
        r = img_flush(ch);
    if (r < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                            "Writing the backing file name %s into the header "
                            "of %s failed", new_name, cn ? cn : "?");
        return -1;
    }
    return 0;
}

int chain_commit_plan_removed(struct gvmd *d, const int64_t *chain, size_t k,
                              json_t *removed, json_t *images,
                              struct catalog_job_lock *locks, size_t *nlocks,
                              struct gvm_error *err)
{
    for (size_t i = 0; i < k; i++) {
        _cleanup_catimg_ struct catalog_image row = { 0 };

        if (catalog_image_get(d->cat, chain[i], &row, err) < 0)
            return -1;
        if (gvm_json_append(removed, json_pack("{s:I, s:I, s:s, s:s}",
                            "id", (json_int_t)row.id,
                            "volume-id", (json_int_t)row.volume_id,
                            "volume", row.volume, "path", row.path)) < 0 ||
            gvm_json_append(images, json_integer(row.id)) < 0)
            return gvm_error_oom(err);
        locks[(*nlocks)++] = (struct catalog_job_lock){ .image_id = row.id,
                                                        .write = true };
    }
    return 0;
}

int chain_commit_drop_removed(struct catalog *cat, int64_t job_id,
                              json_t *removed, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(removed, i, e) {
        int64_t id = json_integer_value(json_object_get(e, "id"));
        struct catalog_image row = { 0 };
        struct gvm_error e2 = { 0 };

        if (catalog_image_get(cat, id, &row, &e2) < 0)
            continue;           /* already gone */
        catalog_image_clear(&row);
        /* Our own lock goes with the image. */
        if (catalog_job_unlock_image(cat, job_id, id, err) < 0 ||
            catalog_image_delete(cat, id, err) < 0)
            return -1;
    }
    return 0;
}

/* Step 3 in the catalog: one transaction with the "remove" journal step. */
static int catalog_remove(struct chain_commit *c, struct journal_op *op,
                          json_t *sws, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    if (catalog_begin(c->d->cat, err) < 0)
        return -1;
    if (journal_step(op, "remove", c->removed, err) < 0)
        goto fail;
    json_array_foreach(sws, i, e) {
        if (catalog_image_set_backing(c->d->cat,
                json_integer_value(json_object_get(e, "id")), c->base_id,
                json_string_value(json_object_get(e, "new-name")),
                c->base.format, err) < 0)
            goto fail;
    }
    /* An offline active commit: a domain's disk on top now is base. */
    if (catalog_domain_move_disks(c->d->cat, c->top_id, c->base_id, err) < 0 ||
        chain_commit_drop_removed(c->d->cat, job_id(c->job), c->removed, err) < 0)
        goto fail;
    return catalog_commit(c->d->cat, err);
fail:
    catalog_rollback(c->d->cat);
    return -1;
}

int chain_commit_delete_removed(struct gvmd *d, json_t *removed,
                                const char *fault, const char *what,
                                const char *base_name, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(removed, i, e) {
        struct gvm_store *st = NULL;
        const char *path = json_string_value(json_object_get(e, "path"));
        int r;

        if (volumes_store_by_id(d->vols,
                json_integer_value(json_object_get(e, "volume-id")), &st, err) < 0)
            return -1;
        r = fault ? journal_fault_point(fault) : 0;
        if (r == 0)
            r = st->ops->unlink(st, path);
        if (r < 0 && r != -ENOENT) {
            gvm_error_set_errno(err, gvm_error_class_from_errno(r), r,
                                "The %s into %s is complete, but deleting "
                                "the file %s failed", what, base_name, path);
            return -1;
        }
    }
    return 0;
}

/* Delete the removed images' files (missing is fine). */
static int delete_files(struct chain_commit *c, json_t *removed,
                        struct gvm_error *err)
{
    return chain_commit_delete_removed(c->d, removed, "block-commit.unlink",
                                       "commit", c->base_name, err);
}

/* Steps 2 and 3 (roll forward from "switch"). */
static int finish(struct chain_commit *c, struct journal_op *op, json_t *sws,
                  struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(sws, i, e) {
        if (switch_child(c, e, err) < 0)
            return -1;
        if (journal_fault_point("block-commit.child-switched") < 0) {
            gvm_error_set(err, GVM_ERR_STORAGE, "Fault injected after a "
                          "header switch of the commit into %s.", c->base_name);
            return -1;
        }
    }
    if (catalog_remove(c, op, sws, err) < 0)
        return -1;
    if (delete_files(c, c->removed, err) < 0)
        return -1;
    return journal_done(op, err);
}

/*
 * The catalog preconditions again (chain_commit_check), before the journal
 * and the first write: the job may have waited in the queue while
 * snapshots, disks or overlays appeared.  commit_plan then checks storage.
 * 0, or -1 with err set.
 */
static int commit_precheck(struct chain_commit *c, struct gvm_error *err)
{
    _cleanup_free_ int64_t *ids = calloc(json_array_size(c->removed) + 1,
                                         sizeof(*ids));
    size_t i;
    json_t *e;

    if (!ids)
        return gvm_error_oom(err);
    json_array_foreach(c->removed, i, e)
        ids[i] = json_integer_value(json_object_get(e, "id"));
    return chain_commit_check(c->d, c->top_id, c->base_id, ids,
                              json_array_size(c->removed), err);
}

/*
 * Steps "grow" and "copying", then the header changes planned and the step
 * "switch" recorded (the point of no return): 0 with *sws set (the
 * children's switches), JOB_STOPPED, or -1 (err set; leaks in base
 * repaired).  The caller marks op undone unless this returned 0.
 */
static int copy_and_plan(struct chain_commit *c, struct journal_op *op, json_t **sws,
                         struct gvm_error *err)
{
    _cleanup_json_ json_t *list = NULL, *payload = NULL;
    size_t i;
    json_t *e;
    int r;

    if (chain_commit_copy_grow(c, op, err) < 0)
        return -1;
    if (journal_step(op, "copying", NULL, err) < 0)
        return -1;
    r = chain_commit_copy_run(c, err);
    if (r == JOB_STOPPED)
        return JOB_STOPPED;
    if (r < 0) {
        if (err->cls != GVM_ERR_NO_SPACE && err->cls != GVM_ERR_CONFLICT)
            chain_commit_copy_repair_leaks(c);
        return -1;
    }
    if (job_should_stop(c->job))
        return JOB_STOPPED;
    list = json_array();
    if (!list)
        return gvm_error_oom(err);
    json_array_foreach(c->children, i, e) {
        json_t *s = child_switch(c, json_integer_value(e), err);
        if (!s)
            return -1;
        if (gvm_json_append(list, s) < 0)
            return gvm_error_oom(err);
    }
    payload = json_pack("{s:O}", "children", list);
    if (!payload)
        return gvm_error_oom(err);
    /* The point of no return. */
    if (journal_step(op, "switch", payload, err) < 0)
        return -1;
    *sws = steal_pointer(&list);
    return 0;
}

static int commit_run(struct job *job, struct gvm_error *err)
{
    struct chain_commit c;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_json_ json_t *sws = NULL;
    struct chain_job_hold *hold = NULL;
    int ret = -1, r;

    if (commit_init(&c, job, job_params(job), err) < 0)
        goto out;
    /* The steps open base, top and the children one after the other: hold
     * them all from here to the end, so nobody opens one in between. */
    if (chain_job_hold_take(job, &hold, err) < 0)
        goto out;
    /* Every precondition before the journal and the first write. */
    if (commit_precheck(&c, err) < 0 || chain_commit_copy_plan(&c, err) < 0)
        goto out;
    if (journal_begin(c.d->cat, chain_commit_job.name, job_id(job),
                      job_params(job), &op, err) < 0)
        goto out;
    r = copy_and_plan(&c, op, &sws, err);
    if (r != 0) {
        if (r == JOB_STOPPED)
            ret = JOB_STOPPED;
        goto undo;
    }
    if (finish(&c, op, sws, err) < 0)
        goto out;
    /* An active commit: libvirt's definition must name base (virt-define.h). */
    if (virt_define_sync_image(c.d, c.base_id, "The commit is complete and "
                               "recorded in the catalog", err) < 0)
        goto out;
    ret = 0;
    goto out;

undo:
    chain_job_abandon(op, "Commit of %s", c.name ? c.name : "?");
out:
    chain_job_hold_release(hold);
    commit_clear(&c);
    return ret;
}

/* R3 ("remove": the catalog is done, base's row still exists: delete the
 * files left) or R2 ("switch": the copy was complete: roll forward). */
static int commit_forward(void *opaque, struct journal_op *op,
                          const struct journal_entry *last,
                          struct gvm_error *err)
{
    struct chain_commit *c = opaque;

    if (strcmp(last->kind, "remove") == 0) {
        if (delete_files(c, c->removed, err) < 0 || journal_done(op, err) < 0)
            return -1;
        log_info("Commit of %s: recovered after the catalog change; files "
                 "removed.", c->name);
        return 0;
    }
    log_info("Commit of %s: the copy into %s was complete; rolling "
             "forward.", c->name, c->base_name);
    return finish(c, op, json_object_get(last->payload, "children"), err);
}

/* R0 then R1: nothing any image the commit keeps visible reads changed. */
static int commit_back(void *opaque, const struct journal_entry *last,
                       struct gvm_error *err)
{
    struct chain_commit *c = opaque;

    if (strcmp(last->kind, "grow") == 0) {
        log_info("Commit of %s: interrupted while growing the base %s.",
                 c->name, c->base_name);
        if (chain_commit_copy_grow_recover(c, last->payload, err) < 0)
            return -1;
    }
    log_info("Commit of %s: interrupted while copying into %s; rolled back, "
             "running it again.", c->name, c->base_name);
    chain_commit_copy_repair_leaks(c);
    return 0;
}

static int commit_recover(struct job *job, struct journal_op *op,
                          const struct journal_entry *e, size_t n,
                          struct gvm_error *err)
{
    static const char *const forward[] = { "remove", "switch", NULL };
    static const struct chain_job_recovery rec = {
        .forward = forward,
        .roll_forward = commit_forward,
        .roll_back = commit_back,
    };
    struct chain_commit c;
    int ret = -1;

    if (commit_init(&c, job, job_params(job), err) == 0)
        ret = chain_job_recover(job, op, e, n, &rec, &c, err);
    commit_clear(&c);
    return ret;
}

/* ---- a commit inside another job (snapshot-delete) ------------------------------ */

/* The children's headers, each followed by its catalog edge (top stays
 * catalogued, so the edges cannot wait for a "remove" transaction). */
static int merge_switch(struct chain_commit *c, json_t *sws, struct gvm_error *err)
{
    size_t i;
    json_t *e;

    json_array_foreach(sws, i, e) {
        if (switch_child(c, e, err) < 0)
            return -1;
        if (catalog_image_set_backing(c->d->cat,
                json_integer_value(json_object_get(e, "id")), c->base_id,
                json_string_value(json_object_get(e, "new-name")),
                c->base.format, err) < 0)
            return -1;
        if (journal_fault_point("block-commit.child-switched") < 0) {
            gvm_error_set(err, GVM_ERR_STORAGE, "Fault injected after a "
                          "header switch of the commit into %s.", c->base_name);
            return -1;
        }
    }
    return 0;
}

int chain_commit_merge(struct job *job, struct journal_op *op, int64_t top_id,
                       struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    _cleanup_catimg_ struct catalog_image top = { 0 };
    _cleanup_free_ int64_t *kids = NULL;
    _cleanup_json_ json_t *params = NULL, *children = NULL, *sws = NULL;
    struct chain_commit c;
    size_t nk = 0;
    int ret = -1, r;

    memset(&c, 0, sizeof(c));
    if (catalog_image_get(d->cat, top_id, &top, err) < 0)
        return -1;
    if (strcmp(top.format, "qcow2") != 0 || top.backing_id <= 0) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "The image %s:%s has no "
                      "catalogued backing file to commit into.", top.volume,
                      top.path);
        return -1;
    }
    if (chain_commit_only_child(d, top.backing_id, top_id, COMMITTED,
                                "committing into it would change what that "
                                "image reads.", err) < 0 ||
        catalog_image_children(d->cat, top_id, &kids, &nk, err) < 0)
        return -1;
    children = json_array();
    if (!children)
        return gvm_error_oom(err);
    for (size_t i = 0; i < nk; i++)
        if (gvm_json_append(children, json_integer(kids[i])) < 0)
            return gvm_error_oom(err);

    params = json_pack("{s:I, s:I, s:I, s:[{s:I, s:I, s:s, s:s}], s:O}",
                       "top", (json_int_t)top_id,
                       "base", (json_int_t)top.backing_id, "speed", (json_int_t)0,
                       "removed", "id", (json_int_t)top_id,
                       "volume-id", (json_int_t)top.volume_id,
                       "volume", top.volume, "path", top.path,
                       "children", children);
    if (!params)
        return gvm_error_oom(err);
    if (commit_init(&c, job, params, err) < 0 || chain_commit_copy_plan(&c, err) < 0)
        goto out;
    /* What recovery needs: the steps after it carry no parameters. */
    if (journal_step(op, "commit", params, err) < 0)
        goto out;
    r = copy_and_plan(&c, op, &sws, err);
    if (r != 0) {
        ret = r == JOB_STOPPED ? JOB_STOPPED : -1;
        goto out;
    }
    ret = merge_switch(&c, sws, err);
out:
    commit_clear(&c);
    return ret;
}

int chain_commit_merge_recover(struct job *job, const struct journal_entry *e,
                               size_t n, struct gvm_error *err)
{
    const struct journal_entry *last = journal_last_pending(e, n);
    json_t *params = NULL;
    struct chain_commit c;
    int ret = -1;

    if (!last || (strcmp(last->kind, "grow") != 0 &&
                  strcmp(last->kind, "copying") != 0 &&
                  strcmp(last->kind, "switch") != 0))
        return 0;
    for (size_t i = n; i-- > 0 && !params;)
        if (strcmp(e[i].kind, "commit") == 0)
            params = e[i].payload;
    if (!params)
        return 0;
    memset(&c, 0, sizeof(c));
    if (commit_init(&c, job, params, err) < 0)
        goto out;
    if (strcmp(last->kind, "switch") == 0) {
        /* R2 without R3: the caller removes top. */
        log_info("Commit of %s into %s: the copy was complete; switching "
                 "the images above it.", c.name, c.base_name);
        if (merge_switch(&c, json_object_get(last->payload, "children"), err) < 0)
            goto out;
    } else {
        if (strcmp(last->kind, "grow") == 0 &&
            chain_commit_copy_grow_recover(&c, last->payload, err) < 0)
            goto out;
        log_info("Commit of %s into %s: interrupted before the switch; "
                 "rolled back.", c.name, c.base_name);
        chain_commit_copy_repair_leaks(&c);
    }
    ret = 1;
out:
    commit_clear(&c);
    return ret;
}

const struct job_type chain_commit_job = {
    .name = "block-commit",
    .run = commit_run,
    .recover = commit_recover,
};
