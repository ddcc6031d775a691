/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * workq.c — worker threads running blocking calls off the event loop.
 *
 * Under one mutex: a lane per owner with its waiting items (`lanes`, in
 * the order owners are to be served: a lane served goes to the back), and
 * `done` (finished, waiting for the loop).  A worker that finishes an item
 * moves it to `done` and activates one libevent event; the loop's callback
 * takes the whole `done` list at once, so a burst of completions costs one
 * wake-up.  event_active() from another thread is safe because the base
 * was created with pthread locking (evthread_use_pthreads in main).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "util.h"
#include "workq.h"

struct lane;

struct item {
    struct item *next;
    struct lane *lane;      /* while queued or running */
    workq_fn work, done;
    void *arg;
};

struct list {
    struct item *head, *tail;
};

/* One owner's items; freed when it has none waiting and none running. */
struct lane {
    struct lane *next;
    unsigned long owner;
    struct list todo;
    unsigned running;
};

struct workq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct lane *lanes;     /* next to serve first */
    unsigned queued;        /* items in all lanes */
    unsigned per_owner;     /* 0: no limit */
    struct list done;
    unsigned busy;          /* queued + running + not yet completed */
    bool stopping;          /* no new items; workers exit when none queued */
    bool drained;
    int nthreads;
    pthread_t *threads;
    struct event *done_ev;
};

static void list_push(struct list *l, struct item *it)
{
    it->next = NULL;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
}

static struct item *list_pop(struct list *l)
{
    struct item *it = l->head;

    if (it) {
        l->head = it->next;
        if (!l->head)
            l->tail = NULL;
    }
    return it;
}

static void lane_unlink(struct workq *wq, struct lane *l)
{
    struct lane **p = &wq->lanes;

    while (*p != l)
        p = &(*p)->next;
    *p = l->next;
    l->next = NULL;
}

static void lane_append(struct workq *wq, struct lane *l)
{
    struct lane **p = &wq->lanes;

    while (*p)
        p = &(*p)->next;
    *p = l;
}

/* The next item to run, under the lock: the oldest of the owner with the
 * fewest running (below the limit), the first in serving order on a tie;
 * that owner then goes to the back.  NULL if none may run now. */
static struct item *take(struct workq *wq)
{
    struct lane *best = NULL;
    struct item *it;

    for (struct lane *l = wq->lanes; l; l = l->next)
        if (l->todo.head && (!wq->per_owner || l->running < wq->per_owner) &&
            (!best || l->running < best->running))
            best = l;
    if (!best)
        return NULL;
    it = list_pop(&best->todo);
    best->running++;
    wq->queued--;
    lane_unlink(wq, best);
    lane_append(wq, best);
    return it;
}

/* it has run: its lane may let another of its owner's items run, or go. */
static void lane_release(struct workq *wq, struct item *it)
{
    struct lane *l = it->lane;

    it->lane = NULL;
    l->running--;
    if (!l->running && !l->todo.head) {
        lane_unlink(wq, l);
        free(l);
    } else if (l->todo.head) {
        pthread_cond_signal(&wq->cond);
    }
}

static void *worker_main(void *opaque)
{
    struct workq *wq = opaque;

    pthread_mutex_lock(&wq->lock);
    for (;;) {
        struct item *it = take(wq);
        bool was_empty;

        if (!it) {
            /* Items held back by the owner limit still run before the
             * workers leave: a worker that finishes wakes the others. */
            if (wq->stopping && !wq->queued) {
                pthread_cond_broadcast(&wq->cond);  /* the others too */
                break;
            }
            pthread_cond_wait(&wq->cond, &wq->lock);
            continue;
        }
        pthread_mutex_unlock(&wq->lock);
        it->work(it->arg);
        pthread_mutex_lock(&wq->lock);
        lane_release(wq, it);
        was_empty = wq->done.head == NULL;
        list_push(&wq->done, it);
        /* One activation per batch: the loop empties the whole list. */
        if (was_empty && !wq->drained)
            event_active(wq->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&wq->lock);
    return NULL;
}

static void run_done(struct workq *wq)
{
    struct list l;
    struct item *it;
    unsigned n = 0;

    pthread_mutex_lock(&wq->lock);
    l = wq->done;
    wq->done.head = wq->done.tail = NULL;
    pthread_mutex_unlock(&wq->lock);

    while ((it = list_pop(&l))) {
        if (it->done)
            it->done(it->arg);
        free(it);
        n++;
    }
    pthread_mutex_lock(&wq->lock);
    wq->busy -= n;
    pthread_mutex_unlock(&wq->lock);
}

static void done_cb(evutil_socket_t fd, short what, void *opaque)
{
    (void)fd;
    (void)what;
    run_done(opaque);
}

int workq_new(struct event_base *base, int nworkers, unsigned per_owner,
              struct workq **out)
{
    struct workq *wq = calloc(1, sizeof(*wq));
    int rc;

    if (!wq)
        return -ENOMEM;
    wq->per_owner = per_owner;
    pthread_mutex_init(&wq->lock, NULL);
    pthread_cond_init(&wq->cond, NULL);
    wq->done_ev = event_new(base, -1, 0, done_cb, wq);
    wq->threads = calloc((size_t)nworkers, sizeof(*wq->threads));
    if (!wq->done_ev || !wq->threads) {
        rc = -ENOMEM;
        goto fail;
    }
    for (int i = 0; i < nworkers; i++) {
        rc = -pthread_create(&wq->threads[i], NULL, worker_main, wq);
        if (rc < 0)
            goto fail;
        wq->nthreads++;
    }
    *out = wq;
    return 0;

fail:
    workq_free(wq);
    return rc;
}

int workq_submit(struct workq *wq, unsigned long owner, workq_fn work,
                 workq_fn done, void *arg)
{
    struct item *it = malloc(sizeof(*it));
    struct lane *l;

    if (!it)
        return -ENOMEM;
    it->work = work;
    it->done = done;
    it->arg = arg;
    GVM_LOCK_GUARD(&wq->lock);
    if (wq->stopping) {
        free(it);
        return -ESHUTDOWN;
    }
    for (l = wq->lanes; l && l->owner != owner; l = l->next)
        ;
    if (!l) {
        /* A new owner is served before those already waiting: it is
         * appended, but has nothing running, so take() prefers it. */
        l = calloc(1, sizeof(*l));
        if (!l) {
            free(it);
            return -ENOMEM;
        }
        l->owner = owner;
        lane_append(wq, l);
    }
    it->lane = l;
    list_push(&l->todo, it);
    wq->queued++;
    wq->busy++;
    pthread_cond_signal(&wq->cond);
    return 0;
}

void workq_drain(struct workq *wq)
{
    pthread_mutex_lock(&wq->lock);
    if (wq->drained) {
        pthread_mutex_unlock(&wq->lock);
        return;
    }
    wq->stopping = true;
    pthread_cond_broadcast(&wq->cond);
    pthread_mutex_unlock(&wq->lock);

    for (int i = 0; i < wq->nthreads; i++)
        pthread_join(wq->threads[i], NULL);
    wq->nthreads = 0;

    pthread_mutex_lock(&wq->lock);
    wq->drained = true;
    pthread_mutex_unlock(&wq->lock);
    /* Completions the loop has not run yet, now on this (the loop) thread. */
    if (wq->done_ev)
        event_del(wq->done_ev);
    run_done(wq);
}

unsigned workq_busy(struct workq *wq)
{
    GVM_LOCK_GUARD(&wq->lock);
    return wq->busy;
}

void workq_free(struct workq *wq)
{
    if (!wq)
        return;
    workq_drain(wq);
    if (wq->done_ev)
        event_free(wq->done_ev);
    free(wq->threads);
    pthread_cond_destroy(&wq->cond);
    pthread_mutex_destroy(&wq->lock);
    free(wq);
}
