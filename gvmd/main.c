/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * main.c — the gvmd process: configuration, umask, signals, file limit,
 * the event loop and systemd notification.  The daemon itself is
 * assembled by daemon_start() and taken apart by daemon_stop() (daemon.c):
 * on SIGTERM/SIGINT it stops accepting, stops the jobs at a consistent
 * point (they resume at the next start), lets calls running on workers
 * finish and answer, closes connections, volumes and the catalog cleanly,
 * and exits 0.
 *
 * gvmd never forks: under systemd it is Type=notify, and scripts run it in
 * the background themselves.  Signals are libevent signal events, so the
 * handlers run on the loop thread as ordinary callbacks.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "config.h"
#include "control.h"
#include "daemon.h"

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
    if (atomic_load(&d->stopping))
        return;
    log_info("Received %s; shutting down.", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    atomic_store(&d->stopping, true);
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



int main(int argc, char **argv)
{
    struct gvmd d;
    struct gvm_error err;
    struct event *sigterm = NULL, *sigint = NULL;
    int rc, exit_code = 1;

    memset(&d, 0, sizeof(d));
    atomic_init(&d.stopping, false);
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

    if (daemon_start(&d) < 0)
        goto out;
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
    daemon_stop(&d);
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
