/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.h — the composition root: assembling the daemon from its layers
 * (daemon.c) for main.c and the protocol fuzzer.
 */
#ifndef GVMD_DAEMON_H
#define GVMD_DAEMON_H

#include "gvmd.h"

/* With d->cfg filled and d->base made (after evthread_use_pthreads),
 * assemble the daemon and listen; nothing is served until the loop runs.
 * -1 after logging why (the caller still calls daemon_stop).
 * daemon_stop() takes apart whatever was started: stop accepting, stop jobs
 * at a consistent point, drain the workers (their replies are queued),
 * close connections, volumes and catalog. */
int daemon_start(struct gvmd *d);
void daemon_stop(struct gvmd *d);

#endif
