/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * workq.c — worker threads running blocking calls off the event loop.
 *
 * Two lists under one mutex: `todo` (submitted, waiting for a worker) and
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

struct item {
    struct item *next;
    workq_fn work, done;
    void *arg;
};

struct list {
    struct item *head, *tail;
};

struct workq {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct list todo, done;
    unsigned busy;          /* queued + running + not yet completed */
    bool stopping;          /* no new items; workers exit when todo is empty */
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

static void *worker_main(void *opaque)
{
    struct workq *wq = opaque;

    pthread_mutex_lock(&wq->lock);
    for (;;) {
        struct item *it = list_pop(&wq->todo);
        bool was_empty;

        if (!it) {
            if (wq->stopping)
                break;
            pthread_cond_wait(&wq->cond, &wq->lock);
            continue;
        }
        pthread_mutex_unlock(&wq->lock);
        it->work(it->arg);
        pthread_mutex_lock(&wq->lock);
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

int workq_new(struct event_base *base, int nworkers, struct workq **out)
{
    struct workq *wq = calloc(1, sizeof(*wq));
    int rc;

    if (!wq)
        return -ENOMEM;
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

int workq_submit(struct workq *wq, workq_fn work, workq_fn done, void *arg)
{
    struct item *it = malloc(sizeof(*it));

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
    list_push(&wq->todo, it);
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
