/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * conn.c — gvmctl's connection to gvmd: a blocking unix stream socket,
 * JSON-RPC 2.0 with one JSON text per line.  gvmctl makes one request at
 * a time, so blocking I/O is all it needs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

struct conn {
    int fd;
    json_int_t next_id;
    char *buf;          /* bytes received, not yet consumed */
    size_t len, cap;
};

struct conn *conn_open(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct conn *c;
    int fd, e;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        e = errno;
        close(fd);
        errno = e;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    c->fd = fd;
    c->next_id = 1;
    return c;
}

void conn_close(struct conn *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->buf);
    free(c);
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one '\n'-terminated line into a new string (without the '\n'). */
static int read_line(struct conn *c, char **line)
{
    size_t scanned = 0;

    for (;;) {
        char *nl = c->len > scanned ? memchr(c->buf + scanned, '\n',
                                             c->len - scanned) : NULL;
        if (nl) {
            size_t l = (size_t)(nl - c->buf);
            char *s = malloc(l + 1);
            if (!s)
                return -ENOMEM;
            memcpy(s, c->buf, l);
            s[l] = '\0';
            memmove(c->buf, nl + 1, c->len - l - 1);
            c->len -= l + 1;
            *line = s;
            return 0;
        }
        scanned = c->len;
        if (c->len > CONN_MAX_REPLY)
            return -EMSGSIZE;
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap ? c->cap * 2 : 65536 * 2;
            char *n = realloc(c->buf, cap);
            if (!n)
                return -ENOMEM;
            c->buf = n;
            c->cap = cap;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ECONNRESET;
        c->len += (size_t)n;
    }
}

int conn_call(struct conn *c, const char *method, json_t *params,
              json_t **reply)
{
    json_int_t id = c->next_id++;
    json_t *req = params
        ? json_pack("{s:s, s:I, s:s, s:O}", "jsonrpc", "2.0", "id", id,
                    "method", method, "params", params)
        : json_pack("{s:s, s:I, s:s, s:{}}", "jsonrpc", "2.0", "id", id,
                    "method", method, "params");
    char *text;
    int r;

    if (!req)
        return -ENOMEM;
    text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text)
        return -ENOMEM;
    size_t len = strlen(text);
    r = send_all(c->fd, text, len);
    if (r == 0)
        r = send_all(c->fd, "\n", 1);
    free(text);
    if (r < 0)
        return r;

    for (;;) {
        char *line = NULL;
        json_error_t je;

        r = read_line(c, &line);
        if (r < 0)
            return r;
        json_t *msg = json_loads(line, 0, &je);
        free(line);
        if (!json_is_object(msg)) {
            json_decref(msg);
            return -EPROTO;
        }
        json_t *mid = json_object_get(msg, "id");
        /* Skip server notifications (method "event") and stray answers. */
        if (json_is_integer(mid) && json_integer_value(mid) == id) {
            *reply = msg;
            return 0;
        }
        /* An error about an unparseable request comes back with id null. */
        if (json_is_null(mid) && json_object_get(msg, "error")) {
            *reply = msg;
            return 0;
        }
        json_decref(msg);
    }
}
