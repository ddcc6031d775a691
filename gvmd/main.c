/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * main.c — gvmd's start-up and teardown.
 *
 * Start-up order (each step needs the ones before it):
 *   configuration → catalog → volumes (the default `local` dir volume) →
 *   libvirt (not connected) → replay of interrupted operations outside
 *   jobs (image-delete) → job runner (loads jobs) → worker queue → job
 *   recovery and threads → control sockets → READY=1 to systemd → event loop.
 * Teardown on SIGTERM/SIGINT runs it backwards: stop accepting, stop the
 * jobs at a consistent point (they resume at the next start), let calls
 * running on workers finish and answer, close connections, free the
 * volumes, close the catalog cleanly, exit 0.
 *
 * gvmd never forks: under systemd it is Type=notify, and scripts run it in
 * the background themselves.  Signals are libevent signal events, so the
 * handlers run on the loop thread as ordinary callbacks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "catalog.h"
#include "chain.h"
#include "chain-ops.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "job.h"
#include "journal.h"
#include "localfs.h"
#include "rpc-image.h"
#include "snapshot.h"
#include "virt.h"
#include "virt-define.h"
#include "volume.h"
#include "workq.h"

/* sd_notify(3) by hand: one datagram to $NOTIFY_SOCKET ('@' = abstract). */
static void notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    _cleanup_close_ int fd = -1;
    socklen_t salen;
    size_t len;

    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    len = strlen(path);
    if (len >= sizeof(sun.sun_path))
        return;
    memcpy(sun.sun_path, path, len);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0';
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
               salen) < 0)
        log_warn("Cannot notify systemd at %s: %s.", path, strerror(errno));
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct gvmd *d = arg;

    (void)what;
    if (d->stopping)
        return;
    log_info("Received %s; shutting down.", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    d->stopping = true;
    notify_systemd("STOPPING=1");
    control_stop_accepting(d->ctl);
    event_base_loopexit(d->base, NULL);
}

/* Connections and the worker pool need descriptors well beyond the usual
 * soft limit of 1024 (GVM_MAX_CONN_TOTAL plus gluster's). */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void teardown(struct gvmd *d)
{
    control_stop_accepting(d->ctl);
    /* Running jobs stop at a consistent point (they resume at the next
     * start) and job-wait calls return, before the workers drain. */
    jobs_stop(d->jobs);
    /* Calls already on workers finish and their replies are queued. */
    if (d->wq)
        workq_drain(d->wq);
    if (d->wq_ro)
        workq_drain(d->wq_ro);
    if (d->wq_heavy)
        workq_drain(d->wq_heavy);
    control_free(d->ctl);
    d->ctl = NULL;
    workq_free(d->wq);
    d->wq = NULL;
    workq_free(d->wq_ro);
    d->wq_ro = NULL;
    workq_free(d->wq_heavy);
    d->wq_heavy = NULL;
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
 * the runner's threads start and never after (see main). */
static void job_event(void *arg, json_t *event)
{
    struct gvmd *d = arg;

    control_broadcast_event(d->ctl, event);
}

#define RO_WORKERS 2
#define RO_PER_UID 1

int main(int argc, char **argv)
{
    struct gvmd d;
    struct gvm_error err;
    struct event *sigterm = NULL, *sigint = NULL;
    struct jobs_config jobs_cfg = {
        .types = job_types,
        .ntypes = GVM_ARRAY_SIZE(job_types),
        .on_event = job_event,
    };
    int rc, exit_code = 1;

    memset(&d, 0, sizeof(d));
    gvm_error_clear(&err);
    rc = config_parse(argc, argv, &d.cfg);
    if (rc != 0) {
        config_clear(&d.cfg);
        return rc > 0 ? 0 : 2;
    }
    gvm_log_set_level(d.cfg.log_level);
    /* Set once, before any thread: images 0644, directories 0755, and a
     * socket node nobody else can connect to until control.c gives it its
     * mode.  Never changed later (the umask is process-wide). */
    umask(022);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    if (evthread_use_pthreads() < 0 || !(d.base = event_base_new())) {
        log_error("Cannot set up the event loop.");
        goto out;
    }

    rc = localfs_mkdir_parent(d.cfg.catalog_path, 0750);
    if (rc == 0)
        rc = localfs_mkdir_p(d.cfg.state_dir, 0750);
    if (rc < 0) {
        log_error("Cannot create the directories for %s and %s: %s.",
                  d.cfg.catalog_path, d.cfg.state_dir, strerror(-rc));
        goto out;
    }
    if (catalog_open(d.cfg.catalog_path, &d.cat, &err) < 0) {
        log_error("Cannot open the catalog %s: %s", d.cfg.catalog_path, err.message);
        goto out;
    }
    if (volumes_new(d.cat, &d.vols, &err) < 0 ||
        volumes_ensure_default(d.vols, d.cfg.state_dir, &err) < 0) {
        log_error("Cannot set up the volumes: %s", err.message);
        goto out;
    }
    /* Does not connect: libvirt is reached lazily, from workers. */
    if (virt_new(d.cfg.libvirt_uri, d.cfg.fuse_mount, &d.virt, &err) < 0) {
        log_error("Cannot set up the libvirt connection: %s", err.message);
        goto out;
    }
    /* Operations run outside jobs (image-delete) that a crash interrupted
     * are finished or undone before anyone can see their half-done state;
     * one that cannot be either stays pending, is logged, and is tried
     * again at the next start. */
    rc = journal_replay(d.cat, rpc_image_journal_types,
                        rpc_image_journal_ntypes, &d);
    if (rc > 0)
        log_warn("%d interrupted operation(s) could not be recovered; see "
                 "above.", rc);
    jobs_cfg.event_arg = &d;
    if (jobs_new(&d, &jobs_cfg, &d.jobs, &err) < 0) {
        log_error("Cannot load the jobs: %s", err.message);
        goto out;
    }
    rc = workq_new(d.base, d.cfg.workers, 0, &d.wq);
    /* The read-only socket is anyone's: its calls get threads of their
     * own, so they can never take the workers from the read-write
     * socket's; those whose cost grows with the image (GVM_M_HEAVY:
     * checksums, maps, audits) two more, so a light query does not wait
     * behind them, and none holds more than two large results at once.
     * One call at a time per uid in each: one user's long checksums leave
     * the other thread to everyone else. */
    if (rc == 0)
        rc = workq_new(d.base, RO_WORKERS, RO_PER_UID, &d.wq_ro);
    if (rc == 0)
        rc = workq_new(d.base, RO_WORKERS, RO_PER_UID, &d.wq_heavy);
    if (rc < 0) {
        log_error("Cannot start %d worker threads: %s.", d.cfg.workers,
                  strerror(-rc));
        goto out;
    }
    /* Listening, before the job runner's threads start: they broadcast
     * events through d.ctl, which is never written after this.  Nothing
     * is read from the sockets until the loop runs. */
    if (control_new(&d, &d.ctl, &err) < 0) {
        log_error("Cannot set up the control sockets: %s", err.message);
        goto out;
    }
    if (jobs_start(d.jobs, &err) < 0) {
        log_error("Cannot start the job runner: %s", err.message);
        goto out;
    }
    /* A crash between an offline operation's catalog commit and its
     * libvirt redefinition left a stale domain definition: repair it
     * before anyone can start the domain through gvmd (virt-define.h). */
    virt_define_sync_all(&d);
    sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
    sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 ||
        evsignal_add(sigint, NULL) < 0) {
        log_error("Cannot install the signal handlers.");
        goto out;
    }

    log_info("gvmd %s ready (protocol %d, %d workers).", GVMD_VERSION,
             GVM_PROTOCOL_VERSION, d.cfg.workers);
    {
        char ready[64];

        snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%d", (int)getpid());
        notify_systemd(ready);
    }
    if (event_base_dispatch(d.base) < 0) {
        log_error("The event loop failed.");
        goto out;
    }
    exit_code = 0;

out:
    teardown(&d);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (d.base)
        event_base_free(d.base);
    if (exit_code == 0)
        log_info("gvmd stopped.");
    config_clear(&d.cfg);
    return exit_code;
}
