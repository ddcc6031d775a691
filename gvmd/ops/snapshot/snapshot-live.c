/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-live.c — snapshot-create on a running domain (snapshot-live.h).
 *
 * gvmd never writes the metadata of an image a running guest uses; for a
 * snapshot it does not have to: the overlays are new files nobody uses yet.
 * So gvmd creates them itself (fast, on its open gluster connection), then
 * libvirt switches every disk onto its overlay in one QEMU transaction
 * (virDomainSnapshotCreateXML with REUSE_EXT), then the catalog records
 * exactly what the offline path records.
 *
 * Decisions:
 *   - the domain must be known to the catalog; a running libvirt domain it
 *     does not know is attached from its XML on the way (snapshot_live_domain),
 *     so snapshot-create {domain} works on any running domain whose disks
 *     are on registered (or registrable) volumes;
 *   - the catalog's active image of each snapshotted disk must be what the
 *     domain runs on (Conflict otherwise: chain-audit tells the difference);
 *   - the new overlay is reached the way the disk reaches its active layer:
 *     a gluster network disk gets a gluster source with the disk's own
 *     <host>s, a file disk a file under the same dir volume root or FUSE
 *     mount; disks not snapshotted are listed with snapshot='no';
 *   - quiesce asks libvirt to freeze the guest's file systems through the
 *     guest agent; without an agent the snapshot is refused, never taken
 *     unquiesced.
 *
 * Journal (the job's operation "snapshot-create-live"):
 *   step 0                the plan (params)
 *   "create-overlay" {index}   pending while overlay `index` is made
 *   "libvirt-snapshot"    pending while libvirt switches the disks
 *   "commit-catalog"      in the transaction that records the snapshot
 * Recovery: "commit-catalog" present → done.  "libvirt-snapshot" pending →
 * libvirt is asked which source each disk has: all on their overlays →
 * the catalog change is made now (roll forward); none → the overlays are
 * removed (roll back); libvirt unreachable or some but not all → the job
 * concludes with an error saying so and nothing is removed (a file a guest
 * may write to is never deleted).  Otherwise the overlays made are removed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog-snapshot.h"
#include "jsonutil.h"
#include "live.h"
#include "domain-attach.h"
#include "resolve.h"
#include "snapshot-live.h"
#include "snapshot-overlay.h"
#include "virt-snapshot.h"

/* ---- which domain -------------------------------------------------------- */

int snapshot_live_domain(struct gvmd *d, const char *key,
                         struct catalog_domain *dom, char **live,
                         struct gvm_error *err)
{
    struct gvm_error e = { 0 }, verr = { 0 };
    bool running = false;
    int r;

    *live = NULL;
    r = catalog_domain_find(d->cat, key, dom, &e);
    if (r < 0 && e.cls != GVM_ERR_NOT_FOUND) {
        *err = e;
        return -1;
    }
    if (!d->virt) {
        if (r < 0)
            *err = e;
        return r < 0 ? -1 : 0;
    }
    if (r == 0) {
        /* Attached by uuid (libvirt's) or by name. */
        if (virt_snapshot_domain(d->virt, dom->uuid, live, NULL, &running, &verr) < 0) {
            gvm_error_clear(&verr);
            if (virt_snapshot_domain(d->virt, dom->name, live, NULL, &running,
                                  &verr) < 0) {
                log_debug("Domain %s: not asking libvirt whether it runs: %s",
                          dom->name, verr.message);
                return 0;
            }
        }
        if (!running) {
            free(*live);
            *live = NULL;
        }
        return 0;
    }
    if (virt_snapshot_domain(d->virt, key, live, NULL, &running, &verr) < 0 ||
        !running) {
        free(*live);
        *live = NULL;
        /* e already says to attach it: libvirt's answer goes in once. */
        gvm_error_set(err, GVM_ERR_NOT_FOUND, "%s (libvirt: %s)", e.message,
                      verr.message[0] ? verr.message
                                      : "the domain does not run.");
        return -1;
    }
    log_info("Domain %s runs but is not attached: attaching it from its XML "
             "for a live snapshot.", key);
    if (domain_attach_libvirt(d, key, dom, err) < 0) {
        free(*live);
        *live = NULL;
        return -1;
    }
    return 0;
}

bool snapshot_live_domain_runs(struct gvmd *d, const struct catalog_domain *dom)
{
    struct gvm_error e = { 0 };
    bool running = false;

    if (!d->virt)
        return false;
    if (virt_snapshot_domain(d->virt, dom->uuid, NULL, NULL, &running, &e) == 0)
        return running;
    gvm_error_clear(&e);
    return virt_snapshot_domain(d->virt, dom->name, NULL, NULL, &running, &e) == 0 &&
           running;
}

/* ---- the new sources ------------------------------------------------------- */

/* What libvirt gets for each domain disk (sd) and the overlay sources they
 * point to (src: borrowed strings but file, which is owned). */
struct live_plan {
    struct virt_disk *disks;        /* the domain's disks now               */
    size_t ndisks;
    struct virt_snapshot_disk *sd;  /* ndisks entries                       */
    struct virt_source *src;        /* one per overlay                      */
    size_t nsrc;
};

static void live_plan_clear(struct live_plan *lp)
{
    for (size_t i = 0; i < lp->nsrc; i++)
        free(lp->src[i].file);
    free(lp->src);
    free(lp->sd);
    virt_disks_free(lp->disks, lp->ndisks);
    memset(lp, 0, sizeof(*lp));
}
#define _cleanup_live_plan_ _cleanup_(live_plan_clear)

static const struct virt_disk *find_disk(const struct live_plan *lp,
                                         const char *target)
{
    for (size_t k = 0; k < lp->ndisks; k++)
        if (lp->disks[k].target && strcmp(lp->disks[k].target, target) == 0)
            return &lp->disks[k];
    return NULL;
}

/* The source through which the domain will reach overlay o, shaped like
 * the disk's current source cur. */
static int overlay_source(struct gvmd *d, const struct virt_source *cur,
                          const struct snapshot_overlay *o, struct virt_source *out,
                          struct gvm_error *err)
{
    struct catalog_volume vol = { 0 };
    int r;

    memset(out, 0, sizeof(*out));
    out->type = cur->type;
    out->format = (char *)"qcow2";
    if (cur->type == VIRT_SOURCE_GLUSTER) {
        out->glvolume = cur->glvolume;
        out->path = (char *)o->path;
        out->hosts = cur->hosts;
        out->nhosts = cur->nhosts;
        return 0;
    }
    if (catalog_volume_get_by_id(d->cat, o->volume, &vol, err) < 0)
        return -1;
    if (vol.backend == CATALOG_BACKEND_DIR)
        r = asprintf(&out->file, "%s/%s", vol.root_path, o->path);
    else
        r = asprintf(&out->file, "%s/%s/%s", d->cfg.fuse_mount ? d->cfg.fuse_mount : "",
                     vol.gluster_volume, o->path);
    catalog_volume_clear(&vol);
    if (r < 0) {
        out->file = NULL;
        return gvm_error_oom(err);
    }
    return 0;
}

/* Read the domain's disks and shape the snapshot: checks that the catalog's
 * active image of each snapshotted disk is what the domain runs on. */
static int live_plan_make(struct gvmd *d, const char *domain, const char *name,
                          const struct snapshot_overlay *v, size_t n,
                          struct live_plan *lp, struct gvm_error *err)
{
    bool running = false;

    if (virt_domain_disks(d->virt, domain, &lp->disks, &lp->ndisks, &running,
                          err) < 0)
        return -1;
    if (!running) {
        gvm_error_set(err, GVM_ERR_CONFLICT, "Domain %s stopped before "
                      "snapshot %s was taken; nothing was changed: take it "
                      "again (gvmd then takes it offline).", domain, name);
        return -1;
    }
    lp->sd = calloc(lp->ndisks ? lp->ndisks : 1, sizeof(*lp->sd));
    lp->src = calloc(n ? n : 1, sizeof(*lp->src));
    if (!lp->sd || !lp->src)
        return gvm_error_oom(err);
    for (size_t k = 0; k < lp->ndisks; k++)
        lp->sd[k].target = lp->disks[k].target ? lp->disks[k].target : "";
    for (size_t i = 0; i < n; i++) {
        const struct virt_disk *disk = find_disk(lp, v[i].target);
        int64_t id = 0;

        if (!disk) {
            gvm_error_set(err, GVM_ERR_CONFLICT, "The catalog has disk %s of "
                          "domain %s, but the running domain has no such disk; "
                          "nothing was changed (see chain-audit).", v[i].target,
                          domain);
            return -1;
        }
        if (live_source_image(d, &disk->src, &id, err) < 0)
            return -1;
        if (id != v[i].image) {
            _cleanup_free_ char *want = resolve_image_name(d, v[i].image);
            _cleanup_free_ char *runs = id ? resolve_image_name(d, id) : NULL;

            gvm_error_set(err, GVM_ERR_CONFLICT, "Disk %s of running domain %s "
                          "does not run on %s, the active image the catalog "
                          "records (it runs on %s); nothing was changed: run "
                          "chain-audit.", v[i].target, domain,
                          want ? want : "?",
                          runs ? runs : "an image not in the catalog");
            return -1;
        }
        if (overlay_source(d, &disk->src, &v[i], &lp->src[i], err) < 0)
            return -1;
        lp->nsrc = i + 1;
        lp->sd[disk - lp->disks].src = &lp->src[i];
    }
    return 0;
}

/* How many overlays v[0..n) the domain's disks run on now, -1 with err
 * set when libvirt cannot tell. */
static int overlays_in_use(struct gvmd *d, const char *domain,
                           const struct snapshot_overlay *v, size_t n,
                           struct gvm_error *err)
{
    struct virt_disk *disks = NULL;
    size_t nd = 0;
    bool running;
    int count = 0;

    if (virt_domain_disks(d->virt, domain, &disks, &nd, &running, err) < 0)
        return -1;
    for (size_t i = 0; i < n && count >= 0; i++) {
        for (size_t k = 0; k < nd; k++) {
            struct catalog_volume vol = { 0 };
            _cleanup_free_ char *path = NULL;
            int r;

            if (!disks[k].target || strcmp(disks[k].target, v[i].target) != 0)
                continue;
            r = live_source_locate(d, &disks[k].src, &vol, &path, err);
            if (r < 0)
                count = -1;
            else if (r > 0 && vol.id == v[i].volume && strcmp(path, v[i].path) == 0)
                count++;
            catalog_volume_clear(&vol);
            break;
        }
    }
    virt_disks_free(disks, nd);
    return count;
}

static void close_undone(struct journal_op *op, const char *name)
{
    struct gvm_error e = { 0 };

    if (journal_undone(op, &e) < 0)
        log_error("Snapshot %s: closing its journal record failed: %s", name,
                  e.message);
}

/* ---- the job --------------------------------------------------------------- */

int snapshot_live_run(struct job *job, struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    const char *name = json_string_value(json_object_get(p, "name"));
    const char *domain = json_string_value(json_object_get(p, "live"));
    const char *desc = json_string_value(json_object_get(p, "description"));
    unsigned flags = (json_is_false(json_object_get(p, "atomic")) ? 0 : VIRT_SNAPSHOT_ATOMIC) |
                     (json_is_true(json_object_get(p, "quiesce")) ? VIRT_SNAPSHOT_QUIESCE : 0);
    _cleanup_free_ struct snapshot_overlay *v = NULL;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    _cleanup_live_plan_ struct live_plan lp = { 0 };
    struct gvm_error e2 = { 0 };
    size_t n = 0, made = 0;

    if (!name || !domain || !d->virt ||
        snapshot_overlays_parse(p, &v, &n, err) < 0) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "A live snapshot job has unusable "
                      "parameters; nothing was changed.");
        return -1;
    }
    if (live_plan_make(d, domain, name, v, n, &lp, err) < 0)
        return -1;
    if (journal_begin(d->cat, "snapshot-create-live", job_id(job), p, &op, err) < 0)
        return -1;
    if (snapshot_overlays_create_all(d, op, v, n,
                                     "snapshot-live.overlays-created", name,
                                     &made, err) < 0)
        goto undo;
    if (journal_step(op, "libvirt-snapshot", NULL, err) < 0)
        goto undo;
    if (virt_snapshot_create(d->virt, domain, name, desc, lp.sd, lp.ndisks,
                             flags, err) < 0) {
        /* libvirt runs it as one QEMU transaction: nothing switched.  Make
         * sure before deleting a file a guest might write to. */
        int used = overlays_in_use(d, domain, v, n, &e2);

        if (used != 0) {
            struct gvm_error e3 = { 0 };
            gvm_error_set(&e3, GVM_ERR_VIRT, "Snapshot %s of domain %s failed, "
                          "and %s; its overlays are left in place and nothing "
                          "was recorded: run chain-audit. libvirt said: %s",
                          name, domain, used < 0 ? "gvmd cannot tell which "
                          "disks the domain runs on now" : "some disks run on "
                          "their new overlays anyway", err->message);
            *err = e3;
            journal_done(op, &e2);
            return -1;
        }
        goto undo;
    }
    journal_fault_point("snapshot-live.switched");
    /* Record it as the offline path does. */
    if (snapshot_overlays_record(d, op, p, v, n, err) < 0) {
        struct gvm_error e3 = { 0 };
        gvm_error_set(&e3, err->cls, "Domain %s runs on the overlays of "
                      "snapshot %s now, but recording the snapshot failed: %s "
                      "Run chain-audit with fix adopt-storage.", domain, name,
                      err->message);
        *err = e3;
        return -1;
    }
    journal_fault_point("snapshot-create.committed");
    if (journal_done(op, err) < 0)
        return -1;
    log_info("Snapshot %s of running domain %s taken (%zu disk(s)).", name,
             domain, n);
    return 0;

undo:
    snapshot_overlays_remove(d, v, made);
    close_undone(op, name);
    if (gvm_error_isset(err))
        gvm_error_prepend(err, "Snapshot %s of running domain %s failed; "
                          "every overlay it had created was removed and "
                          "nothing was recorded: ", name, domain);
    return -1;
}

int snapshot_live_recover(struct job *job, struct journal_op *op,
                          const struct journal_entry *e, size_t n,
                          struct gvm_error *err)
{
    struct gvmd *d = job_daemon(job);
    json_t *p = job_params(job);
    const char *name = json_string_value(json_object_get(p, "name"));
    const char *domain = json_string_value(json_object_get(p, "live"));
    _cleanup_free_ struct snapshot_overlay *v = NULL;
    struct gvm_error e2 = { 0 };
    size_t nv = 0, made = 0;
    bool committed = false, switching = false;
    int used;

    if (!op)
        /* Nothing was journaled, so nothing was touched: run it now. */
        return job_cancel_requested(job) ? JOB_RECOVERED_CANCELLED
                                         : JOB_RECOVERED_RESUME;
    for (size_t i = 0; i < n; i++) {
        if (e[i].undone)
            continue;
        if (strcmp(e[i].kind, "commit-catalog") == 0)
            committed = true;
        if (strcmp(e[i].kind, "libvirt-snapshot") == 0)
            switching = true;
        if (strcmp(e[i].kind, "create-overlay") == 0)
            made = (size_t)json_integer_value(json_object_get(e[i].payload, "index")) + 1;
    }
    if (committed) {
        if (journal_done(op, err) < 0)
            return -1;
        return JOB_RECOVERED_DONE;
    }
    if (!name || !domain || snapshot_overlays_parse(p, &v, &nv, err) < 0)
        return -1;
    if (switching) {
        used = d->virt ? overlays_in_use(d, domain, v, nv, &e2)
                       : (gvm_error_set(&e2, GVM_ERR_VIRT, "no libvirt"), -1);
        if (used < 0 || (used > 0 && (size_t)used < nv)) {
            gvm_error_set(err, GVM_ERR_VIRT, "gvmd stopped while libvirt "
                          "switched domain %s onto the overlays of snapshot "
                          "%s, and %s; the overlays are left in place and "
                          "nothing was recorded: run chain-audit.", domain,
                          name, used < 0 ? e2.message
                                         : "only some disks run on them");
            return -1;
        }
        if (used > 0) {
            if (snapshot_overlays_record(d, op, p, v, nv, err) < 0 ||
                journal_done(op, err) < 0)
                return -1;
            log_info("Snapshot %s of domain %s: libvirt had switched the "
                     "disks before the restart; recorded now.", name, domain);
            return JOB_RECOVERED_DONE;
        }
        made = nv;
    }
    snapshot_overlays_remove(d, v, made < nv ? made : nv);
    if (journal_undone(op, err) < 0)
        return -1;
    gvm_error_set(err, GVM_ERR_STORAGE, "gvmd stopped while taking snapshot "
                  "%s of running domain %s, before libvirt switched its "
                  "disks; the overlay(s) made so far were removed and nothing "
                  "was recorded: take it again.", name, domain);
    return -1;
}
