/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store-gluster-probe.c — probing gluster servers with a short
 * non-blocking connect, all of them in parallel (store.h): the connection
 * code (store-gluster-conn.c) orders the servers it hands gfapi by the
 * answers, and volume-add reports unreachable ones.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "store.h"

struct probe {
    const struct gvm_server *s;
    struct addrinfo *ai_list, *ai;   /* tcp: addresses left to try */
    int fd;
    int reach;                        /* -2 pending, then 1 / 0 / -1 */
    int err;
};

static void probe_fail(struct probe *p, int err)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->reach = 0;
    p->err = err;
}

/* Start a non-blocking connect to the next address; settles p->reach when
 * the outcome is already known. */
static void probe_next(struct probe *p)
{
    while (p->ai) {
        struct addrinfo *a = p->ai;
        p->ai = a->ai_next;
        if (p->fd >= 0)
            close(p->fd);
        p->fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       a->ai_protocol);
        if (p->fd < 0) {
            p->err = errno;
            continue;
        }
        if (connect(p->fd, a->ai_addr, a->ai_addrlen) == 0) {
            close(p->fd);
            p->fd = -1;
            p->reach = 1;
            return;
        }
        if (errno == EINPROGRESS || errno == EAGAIN)
            return;     /* pending: poll */
        p->err = errno;
    }
    probe_fail(p, p->err ? p->err : EHOSTUNREACH);
}

static void probe_start(struct probe *p)
{
    const struct gvm_server *s = p->s;
    p->fd = -1;
    p->reach = -2;
    p->err = 0;

    if (s->transport == GVM_TRANSPORT_RDMA) {
        p->reach = -1;
        return;
    }
    if (s->transport == GVM_TRANSPORT_UNIX) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (!s->socket || strlen(s->socket) >= sizeof sa.sun_path) {
            probe_fail(p, ENAMETOOLONG);
            return;
        }
        strcpy(sa.sun_path, s->socket);
        p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (p->fd < 0) {
            probe_fail(p, errno);
            return;
        }
        if (connect(p->fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(p->fd);
            p->fd = -1;
            p->reach = 1;
        } else if (errno != EINPROGRESS && errno != EAGAIN) {
            probe_fail(p, errno);
        }
        return;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", s->port ? s->port : GVM_GLUSTER_PORT);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        /* No AI_ADDRCONFIG: on a host with only loopback configured it hides
         * the loopback addresses, and loopback is where tests run. */
        .ai_flags = AI_NUMERICSERV,
    };
    int r = getaddrinfo(s->host, port, &hints, &p->ai_list);
    if (r != 0) {
        p->ai_list = NULL;
        probe_fail(p, r == EAI_SYSTEM ? errno : EHOSTUNREACH);
        return;
    }
    p->ai = p->ai_list;
    probe_next(p);
}

void store_gluster_probe_all(const struct gvm_server *s, size_t n,
                             int timeout_ms, int *reach, int *errnos)
{
    struct probe *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        for (size_t i = 0; i < n; i++) {
            reach[i] = -1;
            if (errnos)
                errnos[i] = ENOMEM;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        p[i].s = &s[i];
        probe_start(&p[i]);
    }

    uint64_t deadline = gvm_now_ms() + (uint64_t)timeout_ms;
    _cleanup_free_ struct pollfd *pfd = calloc(n ? n : 1, sizeof *pfd);
    _cleanup_free_ size_t *idx = calloc(n ? n : 1, sizeof *idx);
    for (;;) {
        size_t np = 0;
        for (size_t i = 0; pfd && idx && i < n; i++) {
            if (p[i].reach == -2) {
                pfd[np] = (struct pollfd){ .fd = p[i].fd, .events = POLLOUT };
                idx[np++] = i;
            }
        }
        if (np == 0)
            break;
        uint64_t now = gvm_now_ms();
        if (now >= deadline) {
            for (size_t k = 0; k < np; k++)
                probe_fail(&p[idx[k]], ETIMEDOUT);
            break;
        }
        int r = poll(pfd, np, (int)(deadline - now));
        if (r < 0 && errno != EINTR)
            break;
        for (size_t k = 0; r > 0 && k < np; k++) {
            struct probe *q = &p[idx[k]];
            if (!pfd[k].revents)
                continue;
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            if (soerr == 0) {
                close(q->fd);
                q->fd = -1;
                q->reach = 1;
            } else {
                q->err = soerr;
                if (q->ai)
                    probe_next(q);      /* try the host's next address */
                else
                    probe_fail(q, soerr);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i].reach == -2)
            probe_fail(&p[i], ENOMEM);
        if (p[i].fd >= 0)
            close(p[i].fd);
        if (p[i].ai_list)
            freeaddrinfo(p[i].ai_list);
        reach[i] = p[i].reach;
        if (errnos)
            errnos[i] = p[i].reach == 1 ? 0 : p[i].err;
    }
    free(p);
}

bool store_gluster_probe(const struct gvm_server *s, int timeout_ms)
{
    int reach;
    store_gluster_probe_all(s, 1, timeout_ms, &reach, NULL);
    return reach == 1;
}
