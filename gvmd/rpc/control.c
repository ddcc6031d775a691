/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.c — the control sockets and their connections.
 *
 * Framing: one message per '\n'.  A message longer than GVM_MAX_MESSAGE is
 * answered with an error and the rest of it is discarded up to the next
 * '\n' (the connection resynchronises there); at no point is more than
 * GVM_MAX_MESSAGE plus one socket read buffered for a connection's input.
 *
 * Back-pressure: while CONN_MAX_INFLIGHT calls of a connection run on
 * workers, or its unsent output exceeds CONN_MAX_OUTPUT, its input is not
 * read, so neither a pipelining client nor one that never reads its
 * replies makes the daemon buffer without bound.
 *
 * Lifetime: a connection is reference counted.  The connection list holds
 * one reference, each call running on a worker and each pending batch
 * another.  When the peer goes away the socket is closed at once, the
 * connection leaves the list, and the last reference frees it; replies to
 * a closed connection are dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdatomic.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "control.h"
#include "jsonutil.h"
#include "localfs.h"

#define CONN_MAX_INFLIGHT 64
#define CONN_MAX_OUTPUT   (4u * 1024 * 1024)
/* Unsent output past which a peer loses its connection: replies of calls
 * already running, batches and events still arrive after reading stopped
 * at CONN_MAX_OUTPUT, and a peer that never reads must not grow gvmd. */
#define CONN_HARD_OUTPUT  (4 * CONN_MAX_OUTPUT)

struct conn {
    unsigned refs;
    struct control *ctl;
    struct conn *prev, *next;       /* in ctl->conns while open */
    struct bufferevent *bev;        /* NULL once closed         */
    uid_t uid;
    gid_t gid;
    pid_t pid;
    enum conn_access access;
    bool subscribed;
    bool discarding;                /* skipping an over-long message */
    bool eof;                       /* peer shut down its sending side */
    bool in_process;                /* re-entrancy guard for process() */
    bool overflow;                  /* past CONN_HARD_OUTPUT: being shut */
    atomic_bool closed;             /* for workers: bev is the loop's     */
    unsigned inflight;
    size_t scanned;                 /* input bytes known to hold no '\n' */
};

struct listener {
    struct control *ctl;
    struct evconnlistener *lev;
    char *path;                     /* to unlink at exit; NULL if activated */
    bool ro;
};

struct uid_count {
    uid_t uid;
    unsigned n;
};

struct control {
    struct gvmd *d;
    struct control_protocol proto;
    struct listener rw, ro;
    struct conn *conns;
    unsigned nconns;
    struct uid_count *uids;         /* one slot per uid with connections */
    size_t nuids;
    /* Events queued by any thread, sent by the loop. */
    pthread_mutex_t ev_lock;
    json_t *ev_queue;
    struct event *ev_wake;
    bool ev_dead;
};

static void process(struct conn *c);
static void conn_close(struct conn *c);

/* ---- credentials ------------------------------------------------------------ */

/* Whether g is among the supplementary groups the peer of fd had when it
 * connected (SO_PEERGROUPS).  From the socket, not from /proc/PID: a peer
 * that exits lets its pid be reused by another process, whose groups a
 * later look at /proc would find. */
static bool gid_in_peer_groups(int fd, gid_t g)
{
    gid_t groups[256];
    socklen_t len = sizeof(groups);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
        return false;           /* ERANGE: more than 256; the group db tells */
    for (size_t i = 0; i < len / sizeof(groups[0]); i++)
        if (groups[i] == g)
            return true;
    return false;
}

/* getpwuid_r/getgrnam_r need a buffer whose size only a retry reveals
 * (a group with many members); grow it on ERANGE. */
#define NSS_BUF_MAX (1u << 20)

static bool uid_in_group_db(uid_t uid, gid_t g)
{
    struct passwd pw, *pwp = NULL;
    _cleanup_free_ char *buf = NULL;
    _cleanup_free_ gid_t *groups = NULL;
    size_t size = 4096;
    int n = 64, rc;

    for (;;) {
        char *nb = realloc(buf, size);

        if (!nb)
            return false;
        buf = nb;
        rc = getpwuid_r(uid, &pw, buf, size, &pwp);
        if (rc != ERANGE || size >= NSS_BUF_MAX)
            break;
        size *= 2;
    }
    if (rc || !pwp)
        return false;
    if (pw.pw_gid == g)
        return true;
    for (int tries = 0; tries < 2; tries++) {
        gid_t *ng = realloc(groups, (size_t)n * sizeof(*groups));
        int want = n;

        if (!ng)
            return false;
        groups = ng;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
            for (int i = 0; i < want; i++)
                if (groups[i] == g)
                    return true;
            return false;
        }
        n = want;   /* too small: getgrouplist said how many there are */
    }
    return false;
}

static bool gvm_gid(gid_t *out)
{
    struct group gr, *grp = NULL;
    _cleanup_free_ char *buf = NULL;
    size_t size = 4096;
    int rc;

    for (;;) {
        char *nb = realloc(buf, size);

        if (!nb)
            return false;
        buf = nb;
        rc = getgrnam_r(GVM_GROUP, &gr, buf, size, &grp);
        if (rc != ERANGE || size >= NSS_BUF_MAX)
            break;
        size *= 2;
    }
    if (rc || !grp)
        return false;
    *out = gr.gr_gid;
    return true;
}

/* Root, or a member of group gvm: by the process's primary or
 * supplementary groups, or by the group database for its uid.  Looked up
 * on every connection, so adding a user to the group needs no restart. */
static bool privileged(uid_t uid, gid_t gid, int fd)
{
    gid_t g;

    if (uid == 0)
        return true;
    if (!gvm_gid(&g))
        return false;
    return gid == g || gid_in_peer_groups(fd, g) || uid_in_group_db(uid, g);
}

static struct uid_count *uid_slot(struct control *ctl, uid_t uid, bool create)
{
    struct uid_count *n;

    for (size_t i = 0; i < ctl->nuids; i++)
        if (ctl->uids[i].uid == uid)
            return &ctl->uids[i];
    if (!create)
        return NULL;
    n = realloc(ctl->uids, (ctl->nuids + 1) * sizeof(*n));
    if (!n)
        return NULL;
    ctl->uids = n;
    n[ctl->nuids] = (struct uid_count){ .uid = uid, .n = 0 };
    return &n[ctl->nuids++];
}

/* ---- connections ------------------------------------------------------------- */

struct conn *control_conn_ref(struct conn *c)
{
    c->refs++;
    return c;
}

void control_conn_unref(struct conn *c)
{
    if (--c->refs == 0)
        free(c);
}

struct evbuffer *control_conn_output(struct conn *c)
{
    return c->bev && !c->overflow ? bufferevent_get_output(c->bev) : NULL;
}

void control_conn_send(struct conn *c, const char *data, size_t len)
{
    struct evbuffer *out = control_conn_output(c);

    if (!out)
        return;
    if (len)
        evbuffer_add(out, data, len);
    evbuffer_add(out, "\n", 1);
    if (evbuffer_get_length(out) > CONN_HARD_OUTPUT) {
        /* Not closed here (callers may be walking the connections): the
         * output goes, nothing more is queued, and the shutdown makes the
         * loop close it as it closes any connection the peer ended. */
        log_warn("A connection of uid %u has %zu bytes of replies it does "
                 "not read; closing it.", (unsigned)c->uid,
                 evbuffer_get_length(out));
        c->overflow = true;
        evbuffer_drain(out, evbuffer_get_length(out));
        shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
        bufferevent_enable(c->bev, EV_READ);    /* to see the end */
    }
}

enum conn_access control_conn_access(const struct conn *c)
{
    return c->access;
}

uid_t control_conn_uid(const struct conn *c)
{
    return c->uid;
}

pid_t control_conn_pid(const struct conn *c)
{
    return c->pid;
}

bool control_conn_is_closed(const struct conn *c)
{
    return atomic_load(&c->closed);
}

void control_conn_subscribe(struct conn *c)
{
    c->subscribed = true;
}

void control_conn_call_started(struct conn *c)
{
    c->inflight++;
}

void control_conn_call_finished(struct conn *c)
{
    c->inflight--;
    if (c->bev)
        process(c);
}

static void conn_close(struct conn *c)
{
    struct control *ctl = c->ctl;
    struct uid_count *u;

    if (!c->bev)
        return;
    atomic_store(&c->closed, true);
    bufferevent_free(c->bev);       /* closes the socket */
    c->bev = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    ctl->nconns--;
    u = uid_slot(ctl, c->uid, false);
    if (u && u->n)
        u->n--;
    log_debug("Connection from uid %u pid %d closed.", (unsigned)c->uid,
              (int)c->pid);
    control_conn_unref(c);
}

/* A message over the size limit: answered, and (when its end has not
 * arrived yet) the rest of it skipped up to the next newline. */
static void frame_error(struct conn *c, size_t n, bool complete)
{
    struct gvm_error err;
    _cleanup_free_ char *line = NULL;

    gvm_error_clear(&err);
    gvm_error_set(&err, GVM_ERR_INVALID_REQUEST,
                  "The message is longer than the limit of %d bytes (%s%zu bytes received)%s.",
                  GVM_MAX_MESSAGE, complete ? "" : "at least ", n,
                  complete ? "" : "; it is discarded up to the next newline");
    line = c->ctl->proto.error_line(c->ctl->proto.opaque, &err);
    if (line)
        control_conn_send(c, line, strlen(line));
}

/* Handle every complete message in the input that back-pressure allows,
 * then decide whether to read more. */
static void process(struct conn *c)
{
    struct evbuffer *in;

    if (c->in_process || !c->bev)
        return;
    c->in_process = true;
    control_conn_ref(c);
    in = bufferevent_get_input(c->bev);
    if (c->overflow)
        evbuffer_drain(in, evbuffer_get_length(in));    /* nothing new runs */
    /* Once shutdown began, nothing new is started; replies still go out. */
    while (c->bev && !atomic_load(&c->ctl->d->stopping) && c->inflight < CONN_MAX_INFLIGHT &&
           evbuffer_get_length(bufferevent_get_output(c->bev)) < CONN_MAX_OUTPUT) {
        size_t len = evbuffer_get_length(in), n;
        struct evbuffer_ptr p;
        unsigned char *line;

        if (len == 0)
            break;
        if (c->scanned < len) {
            evbuffer_ptr_set(in, &p, c->scanned, EVBUFFER_PTR_SET);
            p = evbuffer_search(in, "\n", 1, &p);
        } else {
            p.pos = -1;
        }
        if (p.pos < 0) {
            c->scanned = len;
            if (c->discarding) {
                evbuffer_drain(in, len);
                c->scanned = 0;
            } else if (len > GVM_MAX_MESSAGE) {
                frame_error(c, len, false);
                evbuffer_drain(in, len);
                c->scanned = 0;
                c->discarding = true;
            } else if (c->eof) {
                /* The peer will send no '\n': take the tail as a message. */
                line = evbuffer_pullup(in, -1);
                c->ctl->proto.message(c->ctl->proto.opaque, c, (const char *)line, len);
                if (c->bev)
                    evbuffer_drain(in, len);
                c->scanned = 0;
            }
            break;
        }
        n = (size_t)p.pos;
        c->scanned = 0;
        if (c->discarding) {
            evbuffer_drain(in, n + 1);
            c->discarding = false;
            continue;
        }
        if (n > GVM_MAX_MESSAGE) {
            frame_error(c, n, true);
            evbuffer_drain(in, n + 1);
            continue;
        }
        line = evbuffer_pullup(in, (ssize_t)n + 1);
        /* Tolerate CRLF and blank lines (e.g. a trailing newline). */
        if (n && line[n - 1] == '\r')
            n--;
        if (n)
            c->ctl->proto.message(c->ctl->proto.opaque, c, (const char *)line, n);
        if (c->bev)
            evbuffer_drain(in, (size_t)p.pos + 1);
    }
    if (c->bev) {
        bool blocked = c->inflight >= CONN_MAX_INFLIGHT ||
            evbuffer_get_length(bufferevent_get_output(c->bev)) >= CONN_MAX_OUTPUT;

        if (c->eof) {
            /* Half-closed: finish once every reply has been sent. */
            if (c->inflight == 0 && evbuffer_get_length(in) == 0 &&
                evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
                conn_close(c);
        } else if (blocked) {
            bufferevent_disable(c->bev, EV_READ);
        } else {
            bufferevent_enable(c->bev, EV_READ);
        }
    }
    c->in_process = false;
    control_conn_unref(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    /* The output drained: resume reading, or finish a half-closed one. */
    process(c);
}

static bool peer_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };

    return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_EOF) {
        c->eof = true;
        bufferevent_disable(c->bev, EV_READ);
        control_conn_ref(c);    /* process() may close and release it */
        process(c);
        /* A peer that only shut its sending side still reads its replies;
         * one that closed the socket (POLLHUP) never will: what it sent
         * has been started above, and closing now tells the workers, so
         * its queued and running reads stop (rpc_call_abandoned). */
        if (c->bev && peer_gone(bufferevent_getfd(c->bev)))
            conn_close(c);
        control_conn_unref(c);
        return;
    }
    if (what & BEV_EVENT_ERROR)
        conn_close(c);
}

/* Refuse a connection: one error line, then close. */
static void refuse(const struct control *ctl, int fd, enum gvm_error_class cls,
                   const char *msg)
{
    struct gvm_error err;
    _cleanup_free_ char *line = NULL;

    gvm_error_clear(&err);
    gvm_error_set(&err, cls, "%s", msg);
    line = ctl->proto.error_line(ctl->proto.opaque, &err);
    if (line) {
        size_t n = strlen(line);

        line[n] = '\n';     /* replaces the terminator; length known */
        (void)!send(fd, line, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        line[n] = '\0';
    }
    close(fd);
}

/* Serve fd (a connected stream socket, taken over in every case) as a
 * connection of the read-only (ro) or read-write socket for a peer with
 * these credentials: the connection caps, the privilege look-up, then the
 * bufferevent.  A refused peer gets one error line and its fd is closed:
 * -1 with err set. */
static int conn_add(struct control *ctl, int fd, bool ro, uid_t uid,
                    gid_t gid, pid_t pid, struct gvm_error *err)
{
    struct uid_count *u;
    struct conn *c;

    if (ctl->nconns >= GVM_MAX_CONN_TOTAL) {
        log_warn("Refusing a connection from uid %u: %d connections already.",
                 (unsigned)uid, GVM_MAX_CONN_TOTAL);
        refuse(ctl, fd, GVM_ERR_BUSY, "Too many connections to gvmd; try again later.");
        gvm_error_set(err, GVM_ERR_BUSY, "Too many connections to gvmd.");
        return -1;
    }
    u = uid_slot(ctl, uid, true);
    if (!u) {
        refuse(ctl, fd, GVM_ERR_INTERNAL, "Out of memory.");
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    if (u->n >= GVM_MAX_CONN_PER_UID) {
        log_warn("Refusing a connection from uid %u: it has %d already.",
                 (unsigned)uid, GVM_MAX_CONN_PER_UID);
        refuse(ctl, fd, GVM_ERR_BUSY, "Too many connections from this user; close some and try again.");
        gvm_error_set(err, GVM_ERR_BUSY, "Too many connections from uid %u.",
                      (unsigned)uid);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        refuse(ctl, fd, GVM_ERR_INTERNAL, "Out of memory.");
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    c->refs = 1;
    c->ctl = ctl;
    c->uid = uid;
    c->gid = gid;
    c->pid = pid;
    if (ro)
        c->access = CONN_ACCESS_RO;
    else
        c->access = privileged(uid, gid, fd) ? CONN_ACCESS_FULL
                                             : CONN_ACCESS_NONE;
    evutil_make_socket_nonblocking(fd);
    c->bev = bufferevent_socket_new(ctl->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        free(c);
        refuse(ctl, fd, GVM_ERR_INTERNAL, "Out of memory.");
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    u->n++;
    c->next = ctl->conns;
    if (ctl->conns)
        ctl->conns->prev = c;
    ctl->conns = c;
    ctl->nconns++;
    log_debug("Connection on the %s socket from uid %u pid %d (%s).",
              ro ? "read-only" : "read-write", (unsigned)uid, (int)pid,
              c->access == CONN_ACCESS_FULL ? "full access" :
              c->access == CONN_ACCESS_RO ? "read-only" : "no access");
    return 0;
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    struct listener *l = arg;
    struct ucred cr;
    socklen_t crlen = sizeof(cr);
    struct gvm_error err;

    (void)lev;
    (void)sa;
    (void)salen;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
        log_warn("Cannot read a peer's credentials: %s; connection refused.",
                 strerror(errno));
        close(fd);
        return;
    }
    gvm_error_clear(&err);
    conn_add(l->ctl, fd, l->ro, cr.uid, cr.gid, cr.pid, &err);
}

int control_serve_fd(struct control *ctl, int fd, bool ro, uid_t uid,
                     gid_t gid, struct gvm_error *err)
{
    struct ucred cr = { .pid = 0 };
    socklen_t crlen = sizeof(cr);

    /* Only the pid (for logs) comes from the socket, when it has one. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0)
        cr.pid = 0;
    return conn_add(ctl, fd, ro, uid, gid, cr.pid, err);
}

static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    (void)lev;
    (void)arg;
    log_warn("Cannot accept a connection: %s.", strerror(errno));
}

/* ---- listening ------------------------------------------------------------- */

static int bind_socket(const char *path, bool ro, struct gvm_error *err)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    _cleanup_close_ int fd = -1;
    struct stat st;
    int rc;

    if (!path || !*path) {
        gvm_error_set(err, GVM_ERR_INVALID_PARAMS, "No socket path configured.");
        return -1;
    }
    if (strlen(path) >= sizeof(sun.sun_path)) {
        gvm_error_set(err, GVM_ERR_INVALID_PARAMS,
                      "The socket path %s is longer than %zu bytes.", path,
                      sizeof(sun.sun_path) - 1);
        return -1;
    }
    strcpy(sun.sun_path, path);
    rc = localfs_mkdir_parent(path, 0755);
    if (rc < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, rc,
                            "Cannot create the directory of socket %s", path);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        gvm_error_set_errno(err, GVM_ERR_INTERNAL, -errno, "Cannot create a socket");
        return -1;
    }
    /* A socket file left by a daemon that died: remove it, but never
     * steal the socket of a daemon that still answers. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            gvm_error_set(err, GVM_ERR_ALREADY_EXISTS,
                          "%s exists and is not a socket; not removing it.", path);
            return -1;
        }
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 &&
            connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
            gvm_error_set(err, GVM_ERR_BUSY,
                          "Another gvmd is listening on %s.", path);
            return -1;
        }
        unlink(path);
    }
    /* No umask change here: it is process-wide, and job threads may be
     * creating images now.  main() set umask 022 before any thread, so
     * the socket is born without group or other write (nobody else can
     * connect) until its mode is set below — on the socket node itself,
     * never through a symlink put in its place. */
    rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    if (rc < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, -errno, "Cannot bind %s", path);
        return -1;
    }
    if (!ro) {
        gid_t g;

        if (geteuid() == 0 && gvm_gid(&g) &&
            fchownat(AT_FDCWD, path, 0, g, AT_SYMLINK_NOFOLLOW) < 0)
            log_warn("Cannot give %s to group %s: %s.", path, GVM_GROUP,
                     strerror(errno));
    }
    if (fchmodat(AT_FDCWD, path, ro ? 0666 : 0660, AT_SYMLINK_NOFOLLOW) < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, -errno,
                            "Cannot set the mode of %s", path);
        unlink(path);
        return -1;
    }
    if (listen(fd, 128) < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, -errno, "Cannot listen on %s", path);
        unlink(path);
        return -1;
    }
    return steal_fd(&fd);
}

/* systemd socket activation (sd_listen_fds(3) by hand): fills rw/ro with
 * the passed descriptors, -1 where none. */
static void activated_fds(int *rw, int *ro)
{
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    long n;

    *rw = *ro = -1;
    if (!pid_s || !fds_s || strtol(pid_s, NULL, 10) != (long)getpid())
        return;
    n = strtol(fds_s, NULL, 10);
    for (long i = 0; i < n && i < 16; i++) {
        int fd = 3 + (int)i;
        char name[64] = "";

        if (names) {
            /* The i-th colon-separated name. */
            const char *s = names;

            for (long k = 0; k < i && s; k++) {
                s = strchr(s, ':');
                if (s)
                    s++;
            }
            if (s) {
                size_t len = strcspn(s, ":");

                snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63), s);
            }
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (!strcmp(name, "rw") && *rw < 0)
            *rw = fd;
        else if (!strcmp(name, "ro") && *ro < 0)
            *ro = fd;
        else if (strcmp(name, "rw") && strcmp(name, "ro") && *rw < 0)
            *rw = fd;
        else if (strcmp(name, "rw") && strcmp(name, "ro") && *ro < 0)
            *ro = fd;
        else
            close(fd);
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

static int listener_open(struct control *ctl, struct listener *l, bool ro,
                         int activated, const char *path, struct gvm_error *err)
{
    int fd = activated;

    l->ctl = ctl;
    l->ro = ro;
    if (fd < 0) {
        fd = bind_socket(path, ro, err);
        if (fd < 0)
            return -1;
        l->path = strdup(path);
    } else {
        evutil_make_socket_nonblocking(fd);
        log_info("Using the %s socket passed by systemd (fd %d).",
                 ro ? "read-only" : "read-write", fd);
    }
    l->lev = evconnlistener_new(ctl->d->base, accept_cb, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                0, fd);
    if (!l->lev) {
        close(fd);
        if (l->path)
            unlink(l->path);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Cannot listen on the %s socket.",
                      ro ? "read-only" : "read-write");
        return -1;
    }
    evconnlistener_set_error_cb(l->lev, accept_error_cb);
    if (l->path)
        log_info("Listening on %s (%s).", path, ro ? "read-only" : "read-write");
    return 0;
}

static void listener_close(struct listener *l)
{
    if (l->lev) {
        evconnlistener_free(l->lev);
        l->lev = NULL;
    }
    if (l->path) {
        unlink(l->path);
        free(l->path);
        l->path = NULL;
    }
}

/* ---- events ------------------------------------------------------------------ */

static void events_cb(evutil_socket_t fd, short what, void *arg)
{
    struct control *ctl = arg;
    _cleanup_json_ json_t *q = NULL;
    json_t *ev;
    size_t i;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&ctl->ev_lock);
    q = ctl->ev_queue;
    ctl->ev_queue = json_array();
    pthread_mutex_unlock(&ctl->ev_lock);
    if (!q)
        return;
    json_array_foreach(q, i, ev) {
        _cleanup_json_ json_t *msg = json_pack("{s:s, s:s, s:O}", "jsonrpc", "2.0",
                                               "method", "event", "params", ev);
        _cleanup_free_ char *line = msg ? json_dumps(msg, JSON_COMPACT) : NULL;

        if (!line)
            continue;
        for (struct conn *c = ctl->conns; c; c = c->next)
            if (c->subscribed)
                control_conn_send(c, line, strlen(line));
    }
}

void control_broadcast_event(struct control *ctl, json_t *event)
{
    bool wake;

    if (!ctl || !event)
        return;
    pthread_mutex_lock(&ctl->ev_lock);
    if (ctl->ev_dead || !ctl->ev_queue) {
        pthread_mutex_unlock(&ctl->ev_lock);
        return;
    }
    wake = json_array_size(ctl->ev_queue) == 0;
    json_array_append(ctl->ev_queue, event);
    if (wake)
        event_active(ctl->ev_wake, EV_READ, 0);
    pthread_mutex_unlock(&ctl->ev_lock);
}

/* ---- life cycle ------------------------------------------------------------ */

int control_new(struct gvmd *d, const struct control_protocol *proto,
                struct control **out, struct gvm_error *err)
{
    struct control *ctl = calloc(1, sizeof(*ctl));
    int rw_fd, ro_fd;

    if (!ctl) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    ctl->d = d;
    pthread_mutex_init(&ctl->ev_lock, NULL);
    ctl->ev_queue = json_array();
    ctl->ev_wake = event_new(d->base, -1, 0, events_cb, ctl);
    ctl->proto = *proto;
    if (!ctl->ev_queue || !ctl->ev_wake) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
        control_free(ctl);
        return -1;
    }
    activated_fds(&rw_fd, &ro_fd);
    if (listener_open(ctl, &ctl->rw, false, rw_fd, d->cfg.socket_path, err) < 0 ||
        listener_open(ctl, &ctl->ro, true, ro_fd, d->cfg.ro_socket_path, err) < 0) {
        if (ro_fd >= 0 && !ctl->ro.lev)
            close(ro_fd);
        control_free(ctl);
        return -1;
    }
    *out = ctl;
    return 0;
}

void control_stop_accepting(struct control *ctl)
{
    if (!ctl)
        return;
    listener_close(&ctl->rw);
    listener_close(&ctl->ro);
}

void control_free(struct control *ctl)
{
    if (!ctl)
        return;
    control_stop_accepting(ctl);
    while (ctl->conns) {
        struct conn *c = ctl->conns;
        struct evbuffer *out = bufferevent_get_output(c->bev);

        /* Last chance for queued replies; never block on a slow peer. */
        if (evbuffer_get_length(out))
            evbuffer_write(out, bufferevent_getfd(c->bev));
        conn_close(c);
    }
    pthread_mutex_lock(&ctl->ev_lock);
    ctl->ev_dead = true;
    pthread_mutex_unlock(&ctl->ev_lock);
    if (ctl->ev_wake)
        event_free(ctl->ev_wake);
    json_decref(ctl->ev_queue);
    pthread_mutex_destroy(&ctl->ev_lock);
    free(ctl->uids);
    free(ctl);
}
