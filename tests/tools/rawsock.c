/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rawsock — send raw bytes to a unix socket and print the reply lines.
 *
 *   rawsock SOCKET [--timeout-ms N] [--expect N] [--shutdown]
 *                  [--close-after-write] [--hold-ms N]
 *
 * Connects to SOCKET, writes standard input byte for byte (invalid UTF-8,
 * no trailing newline and multi-megabyte lines included), reading replies
 * at the same time so a large write cannot deadlock against them.  Then it
 * prints every line received until N lines (--expect), the peer closes, or
 * --timeout-ms (default 2000) passes without the expected lines; exit 0.
 *   --shutdown           shut down the sending side once stdin is written
 *                        (the daemon sees end of file)
 *   --close-after-write  close as soon as stdin is written, reading nothing
 *                        (after --hold-ms): a client vanishing mid-message
 *                        or while its call runs
 * Exit 3 if the socket cannot be reached, 2 on a usage error.
 *
 *   rawsock --recv-dgram PATH [--timeout-ms N] [--expect N]
 *
 * Binds a datagram socket at PATH ('@' = abstract) and prints each datagram
 * received (then a newline) until N arrived or the timeout: a stand-in for
 * systemd's NOTIFY_SOCKET.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int recv_dgram(const char *path, long timeout_ms, long expect)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    socklen_t salen;
    long long deadline = now_ms() + timeout_ms;
    long got = 0;
    size_t len = strlen(path);
    int fd;

    if (len >= sizeof(sun.sun_path))
        return 2;
    memcpy(sun.sun_path, path, len);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0';
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, salen) < 0) {
        fprintf(stderr, "rawsock: cannot bind %s: %s\n", path, strerror(errno));
        return 3;
    }
    /* Tell the caller we are listening. */
    fprintf(stderr, "rawsock: listening\n");
    while (expect < 0 || got < expect) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        long long left = deadline - now_ms();
        char buf[4096];
        ssize_t n;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            break;
        n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0)
            break;
        fwrite(buf, 1, (size_t)n, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        got++;
    }
    close(fd);
    if (path[0] == '/')
        unlink(path);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: rawsock SOCKET [--timeout-ms N] [--expect N] "
                    "[--shutdown] [--close-after-write] [--hold-ms N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *dgram = NULL;
    long timeout_ms = 2000, expect = -1, hold_ms = 0;
    bool do_shutdown = false, close_after = false;
    char *in = NULL, *line = NULL;
    size_t in_len = 0, in_cap = 0, in_off = 0, line_len = 0, line_cap = 0;
    long lines = 0;
    long long deadline = -1;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            timeout_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
            expect = atol(argv[++i]);
        else if (!strcmp(argv[i], "--hold-ms") && i + 1 < argc)
            hold_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--recv-dgram") && i + 1 < argc)
            dgram = argv[++i];
        else if (!strcmp(argv[i], "--shutdown"))
            do_shutdown = true;
        else if (!strcmp(argv[i], "--close-after-write"))
            close_after = true;
        else if (argv[i][0] == '-' || path)
            usage();
        else
            path = argv[i];
    }
    if (dgram)
        return recv_dgram(dgram, timeout_ms, expect);
    if (!path || strlen(path) >= sizeof(sun.sun_path))
        usage();

    for (;;) {
        ssize_t n;

        if (in_len == in_cap) {
            in_cap = in_cap ? in_cap * 2 : 65536;
            in = realloc(in, in_cap);
            if (!in)
                return 1;
        }
        n = read(0, in + in_len, in_cap - in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        in_len += (size_t)n;
    }

    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "rawsock: cannot connect to %s: %s\n", path, strerror(errno));
        return 3;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int wait_ms = -1;
        char buf[65536];
        ssize_t n;

        if (in_off < in_len) {
            pfd.events |= POLLOUT;
        } else if (deadline < 0) {
            /* Everything is written. */
            if (hold_ms > 0)
                usleep((useconds_t)hold_ms * 1000);
            if (close_after)
                break;
            if (do_shutdown)
                shutdown(fd, SHUT_WR);
            deadline = now_ms() + timeout_ms;
        }
        if (expect >= 0 && lines >= expect)
            break;
        if (deadline >= 0) {
            long long left = deadline - now_ms();

            if (left <= 0)
                break;
            wait_ms = (int)left;
        }
        if (poll(&pfd, 1, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd.revents & POLLOUT) {
            n = send(fd, in + in_off, in_len - in_off, MSG_NOSIGNAL);
            if (n > 0)
                in_off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                in_off = in_len;    /* the peer is gone: stop writing */
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            n = recv(fd, buf, sizeof(buf), 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0)
                break;
            for (ssize_t i = 0; i < n; i++) {
                if (line_len == line_cap) {
                    line_cap = line_cap ? line_cap * 2 : 4096;
                    line = realloc(line, line_cap);
                    if (!line)
                        return 1;
                }
                if (buf[i] == '\n') {
                    fwrite(line, 1, line_len, stdout);
                    fputc('\n', stdout);
                    line_len = 0;
                    lines++;
                } else {
                    line[line_len++] = buf[i];
                }
            }
            fflush(stdout);
        }
    }
    if (line_len) {
        fwrite(line, 1, line_len, stdout);
        fputc('\n', stdout);
    }
    close(fd);
    free(in);
    free(line);
    return 0;
}
