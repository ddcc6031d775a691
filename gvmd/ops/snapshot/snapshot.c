/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot.c — external disk-only snapshots: the methods snapshot-create
 * and snapshot-revert, and the overlay job they run.
 *
 * The snapshot files, each calling only those below it:
 *   snapshot.c          snapshot-create, snapshot-revert, their job
 *   snapshot-plan.c     which image each disk freezes, the overlay paths
 *   snapshot-run.c      running an internal job and waiting for it
 *   snapshot-live.c     the same job on a domain libvirt runs
 *   snapshot-overlay.c  the overlays of either job, and their catalog change
 *   snapshot-tree.c     the tree: list, info, a domain's current snapshot
 *   snapshot-delete.c   snapshot-delete, a job of its own
 *
 * A domain libvirt runs takes the live path (snapshot-live.c): snapshot_create
 * plans it the same way and runs the same internal job with "live" in its
 * params; the job's run/recover hand it to snapshot-live.c, which uses the
 * same overlay helpers (snapshot-overlay.h).
 *
 * Decisions on the offline path:
 *   - quiesce: true is refused (Unsupported): nothing runs inside an offline
 *     domain, its disks are quiescent already.  atomic: always all or none.
 *   - overlay paths default as snapshot-plan.c says; the result names the
 *     disks' new active images ("active": [{target, image-name}]).
 *   - snapshot-revert {snapshot, branch?}: new overlays on the snapshot's
 *     frozen images become active and the snapshot becomes current; with
 *     `branch`, a snapshot named `branch` of those fresh overlays is taken
 *     at once, so the new line of history has a name in the tree (its
 *     parent is the reverted snapshot).  Only domain snapshots revert.
 *   - a snapshot without `domain` freezes bare catalogued images (targets
 *     "disk0".. unless given); its parent is the snapshot freezing an image
 *     below them.
 *
 * snapshot-create / snapshot-revert (internal jobs, see snapshot.h):
 *   step 0 "snapshot-create"|"snapshot-revert"   the plan (params)
 *   step "create-overlay" {index}   pending while overlay `index` is made
 *   step "commit-catalog"  recorded in the same transaction as the catalog
 *                          change (overlay rows, snapshot, active disks)
 *   Recovery: "commit-catalog" present → the catalog change is committed
 *   (the row exists only if it is): done.  Otherwise unlink every overlay a
 *   "create-overlay" step names that is not catalogued, and conclude with an
 *   error saying nothing was recorded.  All or none, never half.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog-domain.h"
#include "catalog-image.h"
#include "catalog-snapshot.h"
#include "jsonutil.h"
#include "live.h"
#include "snapshot-live.h"
#include "snapshot-overlay.h"
#include "snapshot-plan.h"
#include "snapshot-tree.h"
#include "snapshot.h"
#include "virt-define.h"

/* The result of create and revert: the snapshot's node (snapshot-tree.h)
 * with the disks' new active images, so nobody has to guess the names. */
static int result_json(struct gvmd *d, int64_t id, const struct snapshot_plan *p,
                       json_t **result, struct gvm_error *err)
{
    *result = snapshot_tree_json_by_id(d, id, err);
    if (!*result)
        return -1;
    if (snapshot_plan_add_active(p, *result, err) < 0) {
        json_decref(*result);
        *result = NULL;
        return -1;
    }
    return 0;
}

int snapshot_create(struct gvmd *d, json_t *params, json_t **result,
                    struct gvm_error *err)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const char *domain = json_string_value(json_object_get(params, "domain"));
    const char *desc = json_string_value(json_object_get(params, "description"));
    json_t *disks = json_object_get(params, "disks");
    _cleanup_catdom_ struct catalog_domain dom = { 0 };
    _cleanup_plan_ struct snapshot_plan p = { 0 };
    _cleanup_json_ json_t *jp = NULL;
    struct catalog_snapshot existing = { 0 };
    struct gvm_error e2 = { 0 };
    int64_t parent = 0;
    _cleanup_free_ char *live = NULL;   /* libvirt's name of a running domain */

    if (!name || snapshot_plan_check_name(name, "name", err) < 0)
        return -1;
    if (catalog_snapshot_find(d->cat, name, &existing, &e2) == 0) {
        catalog_snapshot_clear(&existing);
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "A snapshot named '%s' "
                      "exists already.", name);
        return -1;
    }
    /* A domain libvirt runs takes the live path (snapshot-live.c). */
    if (domain && snapshot_live_domain(d, domain, &dom, &live, err) < 0)
        return -1;
    if (!live && json_is_true(json_object_get(params, "quiesce"))) {
        /* Nothing runs inside an offline domain to be quiesced. */
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "quiesce needs a running "
                      "domain with a guest agent; this snapshot is taken "
                      "offline, where the disks are quiescent already: leave "
                      "quiesce out.");
        return -1;
    }
    if (!domain && (!json_is_array(disks) || json_array_size(disks) == 0)) {
        gvm_error_param(err, "disks", "A snapshot without 'domain' needs "
                        "'disks' listing the images to snapshot.");
        return -1;
    }
    if (domain && dom.ndisks == 0) {
        gvm_error_set(err, GVM_ERR_INVALID_PARAMS, "Domain %s has no disks.",
                      dom.name);
        return -1;
    }

    size_t nd = disks ? json_array_size(disks) : dom.ndisks;
    for (size_t i = 0; i < nd; i++) {
        if (snapshot_plan_create_disk(d, &p, disks ? json_array_get(disks, i) : NULL,
                                      domain ? &dom : NULL, i, name, err) < 0)
            return -1;
    }
    if (snapshot_plan_check_paths(d, &p, err) < 0)
        return -1;
    parent = snapshot_tree_find_below(d, p.v[0].active.id, true,
                                      domain ? dom.id : 0, err);
    if (parent < 0)
        return -1;

    json_t *pj = snapshot_plan_json(d, &p);
    jp = pj ? json_pack("{s:s, s:s, s:o, s:s?, s:I, s:I}", "kind", "create",
                        "name", name, "disks", pj, "description", desc,
                        "domain", (json_int_t)(domain ? dom.id : 0),
                        "parent", (json_int_t)parent) : NULL;
    if (!jp)
        return gvm_error_oom(err);
    if (live) {
        if (gvm_json_set(jp, "live", json_string(live)) < 0 ||
            gvm_json_set(jp, "atomic", json_boolean(
                !json_is_false(json_object_get(params, "atomic")))) < 0 ||
            gvm_json_set(jp, "quiesce", json_boolean(
                json_is_true(json_object_get(params, "quiesce")))) < 0)

            return gvm_error_oom(err);
    } else {
        /* The offline path never writes under a running guest. */
        _cleanup_free_ int64_t *ids = calloc(p.n, sizeof(*ids));
        if (!ids)
            return gvm_error_oom(err);
        for (size_t i = 0; i < p.n; i++)
            ids[i] = p.v[i].active.id;
        if (live_refuse_running_ids(d, ids, p.n, "snapshot offline", err) < 0)
            return -1;
    }
    if (snapshot_plan_run(d, &snapshot_create_job, jp, &p, err) < 0)
        return -1;
    /* libvirt's definition must name the new overlays (virt-define.h). */
    _cleanup_free_ char *warn = !live && domain ? virt_define_sync_id(d, dom.id) : NULL;
    if (catalog_snapshot_find(d->cat, name, &existing, err) < 0)
        return -1;
    int64_t sid = existing.id;
    catalog_snapshot_clear(&existing);
    if (result_json(d, sid, &p, result, err) < 0)
        return -1;
    return virt_define_warn(result, warn, err);
}

int snapshot_revert(struct gvmd *d, json_t *params, json_t **result,
                    struct gvm_error *err)
{
    const char *branch = json_string_value(json_object_get(params, "branch"));
    _cleanup_catsnap_ struct catalog_snapshot s = { 0 };
    _cleanup_catdom_ struct catalog_domain dom = { 0 };
    _cleanup_plan_ struct snapshot_plan p = { 0 };
    _cleanup_json_ json_t *jp = NULL;
    struct catalog_snapshot other = { 0 };
    struct gvm_error e2 = { 0 };
    char buf[32];
    const char *k = snapshot_tree_key(json_object_get(params, "snapshot"), buf, err);

    if (!k)
        return -1;
    if (branch && snapshot_plan_check_name(branch, "branch", err) < 0)
        return -1;
    if (branch && catalog_snapshot_find(d->cat, branch, &other, &e2) == 0) {
        catalog_snapshot_clear(&other);
        gvm_error_set(err, GVM_ERR_ALREADY_EXISTS, "A snapshot named '%s' "
                      "exists already; choose another branch name.", branch);
        return -1;
    }
    if (catalog_snapshot_find(d->cat, k, &s, err) < 0)
        return -1;
    if (s.domain_id <= 0) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "Snapshot %s is of bare images, "
                      "not of a domain: there are no disks to switch. Create an "
                      "image on its frozen images with image-create instead.",
                      s.name);
        return -1;
    }
    if (catalog_domain_get(d->cat, s.domain_id, &dom, err) < 0)
        return -1;
    if (snapshot_live_domain_runs(d, &dom)) {
        gvm_error_set(err, GVM_ERR_IN_USE, "snapshot-revert needs domain %s "
                      "shut off; it is running.", dom.name);
        return -1;
    }
    for (size_t i = 0; i < s.ndisks; i++) {
        if (snapshot_plan_revert_disk(d, &p, &s, &dom, i, err) < 0)
            return -1;
    }
    if (snapshot_plan_check_paths(d, &p, err) < 0)
        return -1;
    json_t *pj = snapshot_plan_json(d, &p);
    jp = pj ? json_pack("{s:s, s:s, s:o, s:I, s:I}", "kind", "revert",
                        "name", s.name, "disks", pj,
                        "domain", (json_int_t)dom.id,
                        "parent", (json_int_t)s.id) : NULL;
    if (!jp)
        return gvm_error_oom(err);
    if (snapshot_plan_run(d, &snapshot_revert_job, jp, &p, err) < 0)
        return -1;
    /* libvirt's definition must name the revert overlays (virt-define.h). */
    _cleanup_free_ char *warn = virt_define_sync_id(d, dom.id);
    if (branch) {
        /* The branch gets a name in the tree: a snapshot of the fresh
         * overlays, child of the reverted snapshot. */
        _cleanup_json_ json_t *cp = json_pack("{s:s, s:s}", "name", branch,
                                              "domain", dom.uuid);
        if (!cp)
            return gvm_error_oom(err);
        if (snapshot_create(d, cp, result, err) < 0) {
            gvm_error_prepend(err, "Reverted to %s, but recording the branch "
                              "%s failed: ", s.name, branch);
            return -1;
        }
        return 0;
    }
    if (result_json(d, s.id, &p, result, err) < 0)
        return -1;
    return virt_define_warn(result, warn, err);
}

/* ---- the overlay job (create and revert) ------------------------------------------------ */

static int overlay_run(struct job *job, struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    const char *name = json_string_value(json_object_get(p, "name"));
    const char *kind = json_string_value(json_object_get(p, "kind"));
    bool create = kind && strcmp(kind, "create") == 0;
    _cleanup_free_ struct snapshot_overlay *v = NULL;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    size_t n = 0, made = 0;

    if (json_object_get(p, "live"))
        return snapshot_live_run(job, err);     /* a running domain's */
    if (!name || !kind || snapshot_overlays_parse(p, &v, &n, err) < 0)
        return -1;
    if (journal_begin(d->cat, create ? "snapshot-create" : "snapshot-revert",
                      job_id(job), p, &op, err) < 0)
        return -1;
    if (snapshot_overlays_create_all(d, op, v, n,
                                     "snapshot-create.overlays-created", name,
                                     &made, err) < 0)
        goto undo;
    if (snapshot_overlays_record(d, op, p, v, n, err) < 0)
        goto undo;
    journal_fault_point("snapshot-create.committed");
    if (journal_done(op, err) < 0)
        return -1;
    return 0;

undo:
    snapshot_overlays_remove(d, v, made);
    {
        struct gvm_error e2 = { 0 };
        if (journal_undone(op, &e2) < 0)
            log_error("Snapshot %s: closing its journal record failed: %s",
                      name, e2.message);
    }
    if (gvm_error_isset(err))
        gvm_error_prepend(err, "%s %s failed; every overlay it had created "
                          "was removed and nothing was recorded: ",
                          create ? "Snapshot" : "Revert to", name);
    return -1;
}

static int overlay_recover(struct job *job, struct journal_op *op,
                           const struct journal_entry *e, size_t n,
                           struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    const char *name = json_string_value(json_object_get(p, "name"));
    _cleanup_free_ struct snapshot_overlay *v = NULL;
    size_t nv = 0, made = 0;
    bool committed = false;

    if (json_object_get(p, "live"))
        return snapshot_live_recover(job, op, e, n, err);
    if (!op)
        /* Nothing was journaled, so nothing was touched: run it now. */
        return job_cancel_requested(job) ? JOB_RECOVERED_CANCELLED
                                         : JOB_RECOVERED_RESUME;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].kind, "commit-catalog") == 0 && !e[i].undone)
            committed = true;
        if (strcmp(e[i].kind, "create-overlay") == 0 && !e[i].undone)
            made = (size_t)json_integer_value(json_object_get(e[i].payload, "index")) + 1;
    }
    if (committed) {
        if (journal_done(op, err) < 0)
            return -1;
        log_info("Snapshot operation on %s: the catalog change had been "
                 "committed before the restart: finished.", name ? name : "?");
        return JOB_RECOVERED_DONE;
    }
    if (snapshot_overlays_parse(p, &v, &nv, err) < 0)
        return -1;
    snapshot_overlays_remove(d, v, made < nv ? made : nv);
    if (journal_undone(op, err) < 0)
        return -1;
    gvm_error_set(err, GVM_ERR_STORAGE, "gvmd stopped while %s %s; the %zu "
                  "overlay(s) made so far were removed and nothing was "
                  "recorded: run it again.",
                  strcmp(json_string_value(json_object_get(p, "kind")) ?: "", "create") == 0
                      ? "creating snapshot" : "reverting to",
                  name ? name : "?", made);
    return -1;
}

const struct job_type snapshot_create_job = {
    .name = "snapshot-create",
    .run = overlay_run,
    .recover = overlay_recover,
};

const struct job_type snapshot_revert_job = {
    .name = "snapshot-revert",
    .run = overlay_run,
    .recover = overlay_recover,
};
