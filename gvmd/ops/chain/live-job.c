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
#include "chain-job.h"
#include "chain-ops.h"
#include "jsonutil.h"
#include "live-job.h"
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

bool live_job_is_relative(const char *name)
{
    return name && *name && name[0] != '/' && !strstr(name, "://") &&
           strncmp(name, "json:", 5) != 0;
}

int live_job_disk_layers(struct gvmd *d, const char *domain, const char *target,
                         struct live_job_layer **out, size_t *n,
                         struct gvm_error *err)
{
    struct virt_disk *disks = NULL;
    size_t nd = 0;
    bool running;
    struct live_job_layer *l = NULL;
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

size_t live_job_layer_find(const struct live_job_layer *layers, size_t n,
                           int64_t id)
{
    size_t i;

    for (i = 0; i < n && layers[i].id != id; i++)
        ;
    return i;
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

int live_job_disk_idle(struct gvmd *d, const char *domain, const char *target,
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
    return chain_commit_delete_removed(l->d, l->removed, NULL, "live commit",
                                       l->base_name, err);
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
    _cleanup_free_ struct live_job_layer *lay = NULL;
    _cleanup_json_ json_t *payload = NULL;
    size_t n = 0, t, b = 0;
    bool refused = false;
    int r;

    if (commit_check_again(l, err) < 0)
        return -1;
    if (live_job_disk_layers(l->d, l->domain, l->disk, &lay, &n, err) < 0)
        return -1;
    t = live_job_layer_find(lay, n, l->top);
    if (l->base)
        b = live_job_layer_find(lay, n, l->base);
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
    chain_job_abandon(op, "Job %" PRId64, job_id(l->job));
}

/* What live_run has seen of libvirt's job so far. */
struct watch {
    const char *verb;                 /* "commit" or "pull"                  */
    bool started, aborted, trust_events;
    bool pivot_failed, pivoted;
    struct gvm_error pivot_err;
    unsigned seen;                    /* EV_* since the job started          */
    uint64_t down_since;              /* ms when libvirt stopped answering   */
};

/* "Go on watching" from a step of live_run's loop: not 1, which is
 * JOB_STOPPED (a cancelled job). */
#define LIVE_WATCH 2

/*
 * libvirt did not answer about the job (e: why).  While the domain runs or
 * libvirtd is unreachable, keep trying for UNREACHABLE_MS: LIVE_WATCH.
 * When the domain stopped or went away: settle from storage (0: the change
 * had landed, catalog updated; -1 with err set).
 */
static int no_answer(struct live *l, struct watch *w, struct journal_op *op,
                     const struct gvm_error *e, struct gvm_error *err)
{
    enum virt_dom_state st = virt_blockjob_domain_state(l->d->virt, l->domain);
    int64_t id = job_id(l->job);
    char what[400];

    if (st == VIRT_DOM_UNREACHABLE || st == VIRT_DOM_RUNNING) {
        uint64_t now = gvm_now_ms();

        /* Events may be lost while the connection is down. */
        w->trust_events = false;
        if (!w->down_since) {
            w->down_since = now;
            log_warn("Job %" PRId64 ": %s; retrying for up to %d s.", id,
                     e->message, UNREACHABLE_MS / 1000);
        } else if (now - w->down_since > UNREACHABLE_MS) {
            gvm_error_set(err, GVM_ERR_VIRT, "libvirt at %s did not answer for "
                          "%d s during the live %s of %s (%s); its block job "
                          "on disk %s of domain %s may still run, so the "
                          "chain's state is unknown to gvmd: check it with "
                          "chain-audit once libvirtd is back.",
                          virt_uri(l->d->virt), UNREACHABLE_MS / 1000, w->verb,
                          l->name, e->message, l->disk, l->domain);
            return -1;
        }
        job_live_sleep(l->job, 4 * POLL_MS);
        return LIVE_WATCH;
    }
    snprintf(what, sizeof(what), "Domain %s %s during the live %s of %s "
             "(disk %s)", l->domain, st == VIRT_DOM_GONE ? "went away"
             : "stopped", w->verb, l->name, l->disk);
    if (settle(l, op, what, err) < 0) {
        close_record(l, op);
        return -1;
    }
    log_info("Job %" PRId64 ": domain %s stopped, but the %s had completed; "
             "catalog updated.", id, l->domain, w->verb);
    return 0;
}

/*
 * No libvirt job on the disk: finished (0), cancelled (JOB_STOPPED), ended
 * short (-1, err set), or not started yet: start it (LIVE_WATCH).
 */
static int no_job(struct live *l, struct watch *w, struct journal_op *op,
                  struct gvm_error *err)
{
    _cleanup_free_ char *nm = NULL, *fm = NULL;
    int r = landed(l, &nm, &fm, err);

    if (r == 1)
        return finish(l, op, nm, fm, err) < 0 ? -1 : 0;
    if (r < 0) {
        close_record(l, op);
        return -1;
    }
    if (job_cancel_requested(l->job)) {
        close_record(l, op);
        return JOB_STOPPED;
    }
    if (w->started) {
        char why[400];

        unchanged(l, why, sizeof(why));
        if (w->pivot_failed)
            gvm_error_set(err, GVM_ERR_VIRT, "%s gvmd aborted the commit; %s.",
                          w->pivot_err.message, why);
        else
            gvm_error_set(err, GVM_ERR_VIRT, "libvirt's %s job on disk %s of "
                          "domain %s ended without completing%s; %s.", w->verb,
                          l->disk, l->domain, w->seen & EV_FAILED ? " (it "
                          "failed)" : w->seen & EV_CANCELED ? " (it was "
                          "cancelled outside gvmd)" : "", why);
        close_record(l, op);
        return -1;
    }
    /* Events of an earlier job on the disk are not this one's; an event
     * that comes during the call is kept for the next turn. */
    job_live_events(l->job, true);
    w->seen = 0;
    if (start_libvirt_job(l, op, err) < 0) {
        close_record(l, op);
        return -1;
    }
    w->started = w->trust_events = true;
    return LIVE_WATCH;
}

/* An active commit is ready by all three signs (the event only when no
 * event can have been missed: after a restart or reconnect, libvirt's XML
 * is the record of the READY it got). */
static bool mirror_ready(struct live *l, struct watch *w,
                         const struct virt_bj_info *info, struct gvm_error *e)
{
    return l->commit && l->active && !w->aborted && !w->pivoted &&
           info->end > 0 && info->cur == info->end &&
           (!w->trust_events || (w->seen & EV_READY)) &&
           virt_blockjob_mirror_ready(l->d->virt, l->domain, l->disk, e) == 1;
}

/* A job of ours runs (started here, or found again): pass on a cancel,
 * pivot a ready active commit (or report it ready and wait for
 * job-complete). */
static void drive(struct live *l, struct watch *w, const struct virt_bj_info *info)
{
    struct gvm_error e = { 0 };

    w->started = true;
    job_set_progress(l->job, info->cur, info->end);
    if (job_cancel_requested(l->job) && !w->aborted) {
        if (virt_blockjob_abort(l->d->virt, l->domain, l->disk, false, &e) < 0)
            log_warn("Job %" PRId64 ": %s", job_id(l->job), e.message);
        else
            w->aborted = true;
        return;
    }
    if (!mirror_ready(l, w, info, &e))
        return;
    if (!l->pivot && !job_complete_requested(l->job)) {
        job_set_ready(l->job, true);
    } else if (virt_blockjob_abort(l->d->virt, l->domain, l->disk, true, &e) == 0) {
        /* libvirt returned after the switch: the next turn finds no job
         * and the disk on base. */
        w->pivoted = true;
    } else if (!l->pivot) {
        job_complete_failed(l->job, &e);
    } else {
        struct gvm_error e2 = { 0 };

        w->pivot_failed = true;
        w->pivot_err = e;
        if (virt_blockjob_abort(l->d->virt, l->domain, l->disk, false, &e2) == 0)
            w->aborted = true;
    }
}

static int live_run(struct job *job, bool commit, struct gvm_error *err)
{
    const struct job_type *type = commit ? &live_commit_job : &live_pull_job;
    struct watch w = { .verb = commit ? "commit" : "pull" };
    struct live l;
    _cleanup_journal_op_ struct journal_op *op = NULL;
    int ret = -1, r;

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
        w.seen |= job_live_events(job, true);
        if (virt_blockjob_info(l.d->virt, l.domain, l.disk, &info, &e) < 0) {
            r = no_answer(&l, &w, op, &e, err);
            if (r == LIVE_WATCH)
                continue;
            ret = r;
            goto out;
        }
        if (w.down_since) {
            log_info("Job %" PRId64 ": libvirt answers again.", job_id(job));
            w.down_since = 0;
        }
        if (info.present && info.kind != l.kind) {
            gvm_error_set(err, w.started ? GVM_ERR_CONFLICT : GVM_ERR_BUSY,
                          "Disk %s of domain %s has a libvirt block job of "
                          "another kind (%s) than this %s; nothing was "
                          "changed by gvmd.", l.disk, l.domain,
                          virt_bj_kind_name(info.kind), w.verb);
            close_record(&l, op);
            goto out;
        }
        if (!info.present) {
            r = no_job(&l, &w, op, err);
            if (r != LIVE_WATCH) {
                ret = r;
                goto out;
            }
        } else {
            drive(&l, &w, &info);
        }
        job_live_sleep(job, POLL_MS);
    }
out:
    live_clear(&l);
    return ret;
}

/* The catalog change was committed with step "switch" (pull) or "remove"
 * (commit, whose files may be left: delete them). */
static int live_forward(void *opaque, struct journal_op *op,
                        const struct journal_entry *last, struct gvm_error *err)
{
    struct live *l = opaque;
    struct job *job = l->job;

    if (strcmp(last->kind, "switch") == 0)
        return journal_done(op, err);
    if (live_init(l, job, l->commit, err) < 0 || delete_files(l, err) < 0 ||
        journal_done(op, err) < 0)
        return -1;
    log_info("Job %" PRId64 ": recovered after the catalog change; files "
             "removed.", job_id(job));
    return 0;
}

static int live_recover(struct job *job, struct journal_op *op,
                        const struct journal_entry *e, size_t n, bool commit,
                        struct gvm_error *err)
{
    /* Anything but a committed catalog change: run() finds the libvirt job
     * again (or its outcome) under a new record; this one is closed as
     * superseded. */
    static const char *const forward[] = { "switch", "remove", NULL };
    static const struct chain_job_recovery rec = {
        .forward = forward,
        .roll_forward = live_forward,
        .run_settles_cancel = true,
    };
    struct live l;
    int ret;

    memset(&l, 0, sizeof(l));
    l.job = job;
    l.commit = commit;
    ret = chain_job_recover(job, op, e, n, &rec, &l, err);
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
