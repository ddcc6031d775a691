/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-bench — round-trip latency and throughput of one JSON-RPC method.
 *
 *   rpc-bench SOCKET [--clients N] [--seconds S] [--calls C] [--method NAME]
 *             [--params JSON] [--gap-ms MS]
 *
 * Starts N threads, each with its own connection, each sending one request
 * and waiting for its reply before the next (no pipelining), for S seconds
 * (default 2), or until each has made C calls (--calls: then S defaults to
 * an hour and only bounds the run).  Prints one line:
 *   clients=N calls=C errors=E rate=R p50_us=.. p90_us=.. p99_us=.. max_us=..
 * A reply carrying "error" counts as an error; a broken connection aborts.
 * --params is the request's params object, sent as given (default none);
 * --gap-ms pauses between a reply and the next request, to sample the
 * latency a light caller sees rather than to load the daemon.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct worker {
    pthread_t th;
    int fd;
    uint32_t *lat_us;          /* one per call */
    size_t n, cap;
    uint64_t errors;
    bool failed;
};

static const char *sock_path;
static const char *method = "query-version";
static const char *params;     /* JSON text, or NULL: no params */
static unsigned gap_ms;
static double seconds = 2.0;
static size_t calls_max;       /* 0: no limit */
static pthread_barrier_t start_barrier;
static uint64_t t_end_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int connect_sock(void)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        perror("rpc-bench: connect");
        exit(3);
    }
    return fd;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    char req[4096], buf[65536];
    size_t have = 0;
    uint64_t id = 0;

    pthread_barrier_wait(&start_barrier);
    while (now_ns() < t_end_ns && (!calls_max || w->n < calls_max)) {
        int len = snprintf(req, sizeof(req),
                           "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",%s%s%s\"id\":%llu}\n",
                           method, params ? "\"params\":" : "", params ? params : "",
                           params ? "," : "", (unsigned long long)++id);
        uint64_t t0 = now_ns();
        ssize_t off = 0;
        char *nl;

        while (off < len) {
            ssize_t n = send(w->fd, req + off, (size_t)(len - off), MSG_NOSIGNAL);
            if (n <= 0) {
                w->failed = true;
                return NULL;
            }
            off += n;
        }
        for (;;) {
            ssize_t n;

            nl = memchr(buf, '\n', have);
            if (nl)
                break;
            if (have == sizeof(buf)) {
                w->failed = true;
                return NULL;
            }
            n = recv(w->fd, buf + have, sizeof(buf) - have, 0);
            if (n <= 0) {
                w->failed = true;
                return NULL;
            }
            have += (size_t)n;
        }
        uint64_t dt = (now_ns() - t0) / 1000;
        *nl = '\0';
        if (strstr(buf, "\"error\""))
            w->errors++;
        have -= (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, have);
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 65536;
            w->lat_us = realloc(w->lat_us, w->cap * sizeof(*w->lat_us));
            if (!w->lat_us)
                abort();
        }
        w->lat_us[w->n++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
        if (gap_ms) {
            struct timespec gap = { gap_ms / 1000, (long)(gap_ms % 1000) * 1000000 };
            nanosleep(&gap, NULL);
        }
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int clients = 1;
    struct worker *w;
    uint32_t *all;
    size_t total = 0, k = 0;
    uint64_t errors = 0, t0;
    double elapsed;
    bool have_seconds = false;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--clients") && i + 1 < argc)
            clients = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
            have_seconds = true;
        } else if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls_max = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--method") && i + 1 < argc)
            method = argv[++i];
        else if (!strcmp(argv[i], "--params") && i + 1 < argc)
            params = argv[++i];
        else if (!strcmp(argv[i], "--gap-ms") && i + 1 < argc)
            gap_ms = (unsigned)atoi(argv[++i]);
        else if (argv[i][0] != '-' && !sock_path)
            sock_path = argv[i];
        else {
            fprintf(stderr, "usage: rpc-bench SOCKET [--clients N] [--seconds S] [--calls C] [--method NAME] [--params JSON] [--gap-ms MS]\n");
            return 2;
        }
    }
    if (!sock_path || clients < 1 || seconds <= 0 ||
        (params && strlen(params) > 3000)) {
        fprintf(stderr, "usage: rpc-bench SOCKET [--clients N] [--seconds S] [--calls C] [--method NAME] [--params JSON] [--gap-ms MS]\n");
        return 2;
    }
    if (calls_max && !have_seconds)
        seconds = 3600;
    w = calloc((size_t)clients, sizeof(*w));
    pthread_barrier_init(&start_barrier, NULL, (unsigned)clients + 1);
    for (int i = 0; i < clients; i++) {
        w[i].fd = connect_sock();
        if (pthread_create(&w[i].th, NULL, run, &w[i])) {
            fprintf(stderr, "rpc-bench: cannot start thread %d\n", i);
            return 1;
        }
    }
    t0 = now_ns();
    t_end_ns = t0 + (uint64_t)(seconds * 1e9);
    pthread_barrier_wait(&start_barrier);
    for (int i = 0; i < clients; i++) {
        pthread_join(w[i].th, NULL);
        if (w[i].failed) {
            fprintf(stderr, "rpc-bench: client %d lost its connection\n", i);
            return 1;
        }
        total += w[i].n;
        errors += w[i].errors;
    }
    elapsed = (double)(now_ns() - t0) / 1e9;
    all = malloc((total ? total : 1) * sizeof(*all));
    for (int i = 0; i < clients; i++) {
        memcpy(all + k, w[i].lat_us, w[i].n * sizeof(*all));
        k += w[i].n;
        free(w[i].lat_us);
        close(w[i].fd);
    }
    qsort(all, total, sizeof(*all), cmp_u32);
#define PCT(p) (total ? all[(size_t)((double)(total - 1) * (p))] : 0)
    printf("clients=%d calls=%zu errors=%llu rate=%.0f p50_us=%u p90_us=%u p99_us=%u max_us=%u\n",
           clients, total, (unsigned long long)errors, (double)total / elapsed,
           PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0));
    free(all);
    free(w);
    return errors ? 1 : 0;
}
