/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.c — the composition root: struct gvmd assembled from its
 * configuration, and taken apart again.  main.c (the process: options,
 * signals, systemd, the loop) and the protocol fuzzer (tests/fuzz) both
 * start the daemon through here, so they cannot drift apart.
 *
 * Start order (each step needs the ones before it): catalog → volumes (the
 * default `local` dir volume) → libvirt (not connected) → replay of
 * interrupted operations outside jobs (image-delete) → job runner (loads
 * jobs, knows the types registered here) → worker pools → control sockets
 * → job recovery and threads → repair of stale domain definitions.
 * daemon_stop() runs it backwards.
 */
#include <errno.h>
#include <string.h>

#include "catalog.h"
#include "chain.h"
#include "chain-ops.h"
#include "control.h"
#include "daemon.h"
#include "job.h"
#include "journal.h"
#include "localfs.h"
#include "image-delete.h"
#include "rpc-methods.h"
#include "snapshot-delete.h"
#include "snapshot.h"
#include "virt.h"
#include "virt-define.h"
#include "volume.h"
#include "workq.h"

/* Every job type this daemon can run or recover. */
static const struct job_type *const job_types[] = {
    &chain_rebase_job,
    &snapshot_create_job,
    &snapshot_revert_job,
    &snapshot_delete_job,
    &chain_commit_job,
    &chain_pull_job,
    &live_commit_job,
    &live_pull_job,
};

/* Job status changes go to the event subscribers.  d->ctl is set before
 * the runner's threads start and never after (daemon_start). */
static void job_event(void *arg, json_t *event)
{
    struct gvmd *d = arg;

    control_broadcast_event(d->ctl, event);
}

#define RO_WORKERS 2
#define RO_PER_UID 1

int daemon_start(struct gvmd *d)
{
    struct gvm_error err;
    struct jobs_config jobs_cfg = {
        .types = job_types,
        .ntypes = GVM_ARRAY_SIZE(job_types),
        .on_event = job_event,
        .event_arg = d,
    };
    int rc;

    gvm_error_clear(&err);
    rc = localfs_mkdir_parent(d->cfg.catalog_path, 0750);
    if (rc == 0)
        rc = localfs_mkdir_p(d->cfg.state_dir, 0750);
    if (rc < 0) {
        log_error("Cannot create the directories for %s and %s: %s.",
                  d->cfg.catalog_path, d->cfg.state_dir, strerror(-rc));
        return -1;
    }
    if (catalog_open(d->cfg.catalog_path, &d->cat, &err) < 0) {
        log_error("Cannot open the catalog %s: %s", d->cfg.catalog_path, err.message);
        return -1;
    }
    if (volumes_new(d->cat, &d->vols, &err) < 0 ||
        volumes_ensure_default(d->vols, d->cfg.state_dir, &err) < 0) {
        log_error("Cannot set up the volumes: %s", err.message);
        return -1;
    }
    /* Does not connect: libvirt is reached lazily, from workers. */
    if (virt_new(d->cfg.libvirt_uri, d->cfg.fuse_mount, &d->virt, &err) < 0) {
        log_error("Cannot set up the libvirt connection: %s", err.message);
        return -1;
    }
    /* Operations run outside jobs (image-delete) that a crash interrupted
     * are finished or undone before anyone can see their half-done state;
     * one that cannot be either stays pending, is logged, and is tried
     * again at the next start. */
    rc = journal_replay(d->cat, image_delete_journal_types,
                        image_delete_journal_ntypes, d);
    if (rc > 0)
        log_warn("%d interrupted operation(s) could not be recovered; see "
                 "above.", rc);
    if (jobs_new(d, &jobs_cfg, &d->jobs, &err) < 0) {
        log_error("Cannot load the jobs: %s", err.message);
        return -1;
    }
    rc = workq_new(d->base, d->cfg.workers, 0, &d->wq);
    /* The read-only socket is anyone's: its calls get threads of their
     * own, so they can never take the workers from the read-write
     * socket's; those whose cost grows with the image (GVM_M_HEAVY:
     * checksums, maps, audits) two more, so a light query does not wait
     * behind them, and none holds more than two large results at once.
     * One call at a time per uid in each: one user's long checksums leave
     * the other thread to everyone else. */
    if (rc == 0)
        rc = workq_new(d->base, RO_WORKERS, RO_PER_UID, &d->wq_ro);
    if (rc == 0)
        rc = workq_new(d->base, RO_WORKERS, RO_PER_UID, &d->wq_heavy);
    if (rc < 0) {
        log_error("Cannot start %d worker threads: %s.", d->cfg.workers,
                  strerror(-rc));
        return -1;
    }
    /* Listening, before the job runner's threads start: they broadcast
     * events through d->ctl, which is never written after this.  Nothing
     * is read from the sockets until the loop runs. */
    rc = rpc_new(d, rpc_methods, rpc_methods_n, &d->rpc);
    if (rc < 0) {
        log_error("Cannot set up the RPC layer: %s.", rc == -EINVAL
                  ? "a bad parameter spec in methods.def" : strerror(-rc));
        return -1;
    }
    struct control_protocol proto = rpc_protocol(d->rpc);
    if (control_new(d, &proto, &d->ctl, &err) < 0) {
        log_error("Cannot set up the control sockets: %s", err.message);
        return -1;
    }
    if (jobs_start(d->jobs, &err) < 0) {
        log_error("Cannot start the job runner: %s", err.message);
        return -1;
    }
    /* A crash between an offline operation's catalog commit and its
     * libvirt redefinition left a stale domain definition: repair it
     * before anyone can start the domain through gvmd (virt-define.h). */
    virt_define_sync_all(d);
    return 0;
}

void daemon_stop(struct gvmd *d)
{
    control_stop_accepting(d->ctl);
    /* Running jobs stop at a consistent point (they resume at the next
     * start) and job-wait calls return, before the workers drain. */
    jobs_stop(d->jobs);
    struct workq **pools[] = { &d->wq, &d->wq_ro, &d->wq_heavy };

    /* Calls already on workers finish and their replies are queued. */
    for (size_t i = 0; i < GVM_ARRAY_SIZE(pools); i++)
        if (*pools[i])
            workq_drain(*pools[i]);
    control_free(d->ctl);
    d->ctl = NULL;
    rpc_free(d->rpc);
    d->rpc = NULL;
    for (size_t i = 0; i < GVM_ARRAY_SIZE(pools); i++) {
        workq_free(*pools[i]);
        *pools[i] = NULL;
    }
    jobs_free(d->jobs);
    d->jobs = NULL;
    virt_free(d->virt);
    d->virt = NULL;
    volumes_free(d->vols);
    d->vols = NULL;
    if (d->cat)
        catalog_close(d->cat);
    d->cat = NULL;
}
