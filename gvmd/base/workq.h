/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * workq.h — a fixed pool of worker threads for blocking calls.
 *
 * The event loop never blocks on storage or libvirt: it hands such a call
 * to workq_submit(); a worker runs work(arg), then done(arg) runs on the
 * loop thread (the thread running the event_base given to workq_new).
 *
 * Every item has an owner (the caller's uid): owners take turns, so one
 * caller's hundred queued calls do not make another's one call wait for
 * all of them.  A free worker takes the oldest item of the owner with the
 * fewest items running, the owner after the last one served on a tie; with
 * a per-owner limit, an owner never has more than that many running, so on
 * a pool shared by strangers one of them cannot hold every worker with
 * long calls.  One owner's items run in submission order.
 */
#ifndef GVMD_WORKQ_H
#define GVMD_WORKQ_H

struct event_base;
struct workq;

typedef void (*workq_fn)(void *arg);

/* base must have been created after evthread_use_pthreads().  per_owner:
 * most items one owner may have running at once (0: no limit).
 * Returns 0 or -errno. */
int workq_new(struct event_base *base, int nworkers, unsigned per_owner,
              struct workq **out);
/* Queue work for owner.  Returns 0, or -ESHUTDOWN once workq_drain() began
 * (the item is then not run and done is not called). */
int workq_submit(struct workq *wq, unsigned long owner, workq_fn work,
                 workq_fn done, void *arg);
/* Refuse new items, run every queued one, join the workers and run the
 * remaining done callbacks.  Call on the loop thread. */
void workq_drain(struct workq *wq);
/* Drains if needed, then frees. */
void workq_free(struct workq *wq);
/* Items queued or running (for logs and tests). */
unsigned workq_busy(struct workq *wq);

#endif
