/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz-rpc.c — libFuzzer target for gvmd's JSON-RPC edge.
 *
 * One in-process daemon (catalog, volumes, libvirt, workers, jobs,
 * control: the start-up order of main.c) lives in a temporary directory
 * for the life of the process.  For each input:
 *
 *   byte 0   who calls: (b & 3) 0, 1: the read-write socket as root;
 *            2: the read-only socket as uid 65534; 3: the read-write
 *            socket as uid 65534 (no privilege: every call refused);
 *            (b & 4): lockstep — each line is sent once every request
 *            before it that must be answered has been (dependent calls in
 *            sequence); else all at once (pipelined: blocking calls race
 *            on the workers);
 *   the rest the bytes the client sends, every "@ROOT@" replaced by the
 *   fuzz directory (see expand_root()).  They are written to one end of
 *   a socketpair whose other end gvmd serves (control_serve_fd()), then
 *   the client shuts down its sending side, so a final message without
 *   '\n' is answered too, and the loop runs until gvmd has answered
 *   everything and closed the connection.
 *
 * What is a finding (besides ASan/UBSan/LSan reports):
 *   - a reply line that is not JSON-RPC 2.0: not one JSON object (or a
 *     non-empty array of them for a batch), no "jsonrpc":"2.0", not exactly
 *     one of result and error, an error without an integer code and a
 *     string message, an id that no request of the input had;
 *   - a single request with a usable id (a number, or a string within the
 *     limit) in a line gvmd can parse that gets no reply with that id;
 *   - no end of the conversation within GVM_FUZZ_HANG_MS (default 10 s;
 *     calls still waiting after 1 s get their jobs cancelled first, so a
 *     job-wait on a throttled job is not one) — abort(), and libFuzzer's
 *     own -timeout as a backstop.
 * Jobs the input started are waited for (cancelled after 1 s) before the
 * next input, and the whole daemon is torn down and set up afresh in a
 * new directory every GVM_FUZZ_RESET inputs (default 200; 1 makes every
 * input start from an empty daemon, which run.sh uses for the replay), so
 * neither the catalog nor the images directory grows without bound; after
 * each teardown LeakSanitizer checks that nothing the inputs since the last
 * one allocated is left unreachable (a finding: abort).
 *
 * Containment: the fuzzer runs as whoever runs it — root in the test
 * suite — so what it asks gvmd to touch must stay inside its directory:
 *   - libvirt: the URI is test:///default, libvirt's in-process test
 *     driver (no daemon, no real domain; one running domain "test");
 *   - gluster: gvmd's own calls to connect(), getaddrinfo() and glfs_new()
 *     are wrapped at link time (-Wl,--wrap, see run.sh): connect() only
 *     reaches unix sockets inside the fuzz directory, getaddrinfo() only
 *     takes numeric addresses (no DNS), glfs_new() fails — so a gluster
 *     volume-add or gluster:// reference fails fast, as with every server
 *     down, and gfapi never starts;
 *   - a dir volume-add (root only) could register "/" and let later calls
 *     create, write and delete files anywhere: an input is refused (not
 *     run, and kept out of the corpus) when one of its requests is a
 *     volume-add whose "path" is not a ".."-free path inside the fuzz
 *     directory;
 *   - image-create with a "size" over 1 MiB is refused the same way, so
 *     that a checksum or copy of a sparse multi-terabyte image (slow, not
 *     broken) cannot pass for a hang.
 * The filter parses each line as gvmd does (jansson, same flags), so an
 * escaped "\u0076olume-add" is seen too.
 *
 * Built and run by tests/fuzz/run.sh --target rpc (clang,
 * -fsanitize=fuzzer,address,undefined).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sanitizer/lsan_interface.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <glusterfs/api/glfs.h>
#include <jansson.h>

#include "catalog.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "job.h"
#include "journal.h"
#include "localfs.h"
#include "image-delete.h"
#include "virt-define.h"
#include "virt.h"
#include "volume.h"
#include "workq.h"

#define FUZZ_UID_OTHER   65534
#define FUZZ_MAX_SIZE    (1024 * 1024)      /* image-create size cap */
#define FUZZ_CANCEL_MS   1000
#define FUZZ_TICK_MS     20

/* The harness's own state (the daemon's is all in *d). */
static struct gvmd *d;
static char root[128];          /* this process's directory             */
static char gen_dir[192];       /* the current daemon's directory       */
static unsigned gen;            /* daemon generation                    */
static unsigned runs_since_reset;
static unsigned reset_every = 200;
static int64_t hang_ms = 10000;
static bool verbose;            /* GVM_FUZZ_VERBOSE=1: print the replies */

/* ---- link-time wraps (-Wl,--wrap=...): containment, see above -------- */

int __real_connect(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len);
int __real_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
glfs_t *__wrap_glfs_new(const char *volname);

int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (sa && sa->sa_family == AF_UNIX && root[0]) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
        size_t rl = strlen(root);

        if (len > offsetof(struct sockaddr_un, sun_path) + rl &&
            strncmp(sun->sun_path, root, rl) == 0 && sun->sun_path[rl] == '/' &&
            !strstr(sun->sun_path, "/.."))
            return __real_connect(fd, sa, len);
    }
    errno = ECONNREFUSED;
    return -1;
}

int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res)
{
    struct addrinfo h = { 0 };

    if (hints)
        h = *hints;
    h.ai_flags |= AI_NUMERICHOST;       /* never a DNS query */
    return __real_getaddrinfo(node, service, &h, res);
}

glfs_t *__wrap_glfs_new(const char *volname)
{
    (void)volname;
    errno = ECONNREFUSED;
    return NULL;
}

/* ---- the daemon ---------------------------------------------------------- */

static void die(const char *what, const char *why)
{
    fprintf(stderr, "fuzz-rpc: %s: %s\n", what, why);
    abort();
}

static void rm_rf(const char *path)
{
    char cmd[512];

    /* Only ever below our own mkdtemp directory. */
    if (strncmp(path, root, strlen(root)) != 0 || strstr(path, ".."))
        die("refusing to remove", path);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz-rpc: cannot remove %s\n", path);
}

/* A daemon in a directory of its own: daemon_start() with a configuration
 * that keeps it inside the fuzz directory. */
static void fuzz_daemon_start(void)
{
    char sock[256], rosock[256], cat[256], state[256], fuse[256];
    char *argv[] = {
        "gvmd", "--socket", sock, "--ro-socket", rosock, "--catalog", cat,
        "--state-dir", state, "--libvirt-uri", "test:///default",
        "--fuse-mount", fuse, "--workers", "4", "--log-level", "error", NULL,
    };

    /* Directories a dir volume-add may register (wiped with each daemon:
     * a fresh catalog must not find files of an earlier one there). */
    snprintf(gen_dir, sizeof(gen_dir), "%s/vols", root);
    rm_rf(gen_dir);
    if (mkdir(gen_dir, 0755) < 0)
        die(gen_dir, strerror(errno));
    snprintf(gen_dir, sizeof(gen_dir), "%s/vols/a", root);
    if (mkdir(gen_dir, 0755) < 0)
        die(gen_dir, strerror(errno));
    snprintf(gen_dir, sizeof(gen_dir), "%s/vols/b", root);
    if (mkdir(gen_dir, 0755) < 0)
        die(gen_dir, strerror(errno));
    gen++;
    snprintf(gen_dir, sizeof(gen_dir), "%s/d%u", root, gen);
    if (mkdir(gen_dir, 0755) < 0)
        die(gen_dir, strerror(errno));
    snprintf(sock, sizeof(sock), "%s/rw.sock", gen_dir);
    snprintf(rosock, sizeof(rosock), "%s/ro.sock", gen_dir);
    snprintf(cat, sizeof(cat), "%s/catalog.db", gen_dir);
    snprintf(state, sizeof(state), "%s/state", gen_dir);
    snprintf(fuse, sizeof(fuse), "%s/fuse", gen_dir);

    d = calloc(1, sizeof(*d));
    if (!d)
        die("daemon", "out of memory");
    if (config_parse((int)GVM_ARRAY_SIZE(argv) - 1, argv, &d->cfg) != 0)
        die("config", "config_parse failed");
    gvm_log_set_level(d->cfg.log_level);
    d->base = event_base_new();
    if (!d->base)
        die("event loop", "event_base_new failed");
    /* gvmd's own assembly (daemon.c), as main.c runs it. */
    if (daemon_start(d) < 0)
        die("daemon", "daemon_start failed (logged above)");
    runs_since_reset = 0;
}

static void fuzz_daemon_stop(void)
{
    if (!d)
        return;
    daemon_stop(d);
    event_base_free(d->base);
    config_clear(&d->cfg);
    free(d);
    d = NULL;
    rm_rf(gen_dir);
}

static void at_exit(void)
{
    fuzz_daemon_stop();
    if (__lsan_do_recoverable_leak_check()) {
        fprintf(stderr, "fuzz-rpc: memory leaked during the last %u inputs "
                "(report above)\n", runs_since_reset);
        if (root[0])
            rm_rf(root);
        _exit(1);
    }
    if (root[0])
        rm_rf(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR"), *s;

    (void)argc;
    (void)argv;
    if ((s = getenv("GVM_FUZZ_RESET")) && atoi(s) > 0)
        reset_every = (unsigned)atoi(s);
    verbose = (s = getenv("GVM_FUZZ_VERBOSE")) && *s == '1';
    if ((s = getenv("GVM_FUZZ_HANG_MS")) && atoi(s) > 0)
        hang_ms = atoi(s);
    /* Short: the socket paths must fit in sun_path.  GVM_FUZZ_ROOT (a
     * directory that must not exist yet) chooses it, e.g. on tmpfs.  The
     * inputs name it "@ROOT@" (ROOT/vols/{a,b} for a dir volume-add). */
    if ((s = getenv("GVM_FUZZ_ROOT")) && *s) {
        if (strlen(s) >= 60 || s[0] != '/' || strstr(s, "/.."))
            die("GVM_FUZZ_ROOT", "must be an absolute path under 60 bytes");
        snprintf(root, sizeof(root), "%s", s);
        if (mkdir(root, 0755) < 0)
            die(root, strerror(errno));
    } else {
        snprintf(root, sizeof(root), "%s/gvm-fuzz-rpc.XXXXXX",
                 tmp && *tmp && strlen(tmp) < 60 ? tmp : "/tmp");
        if (!mkdtemp(root))
            die("mkdtemp", strerror(errno));
    }
    umask(022);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() < 0)
        die("libevent", "evthread_use_pthreads failed");
    fuzz_daemon_start();
    atexit(at_exit);
    return 0;
}

/* ---- the input filter (containment) ------------------------------------- */

static bool path_inside_root(const char *p)
{
    size_t rl = strlen(root);

    return p && strncmp(p, root, rl) == 0 && (p[rl] == '/' || !p[rl]) &&
           !strstr(p, "/..");
}

/* A request object the daemon must not run here? */
static bool unsafe_request(json_t *req)
{
    json_t *params = json_object_get(req, "params");
    const char *m = json_string_value(json_object_get(req, "method"));
    json_t *v;

    if (!m || !json_is_object(params))
        return false;
    if (!strcmp(m, "volume-add")) {
        v = json_object_get(params, "path");
        if (v && !(json_is_string(v) && path_inside_root(json_string_value(v))))
            return true;
    }
    if (!strcmp(m, "image-create")) {
        v = json_object_get(params, "size");
        if (json_is_integer(v) && json_integer_value(v) > FUZZ_MAX_SIZE)
            return true;
    }
    return false;
}

/* The lines as control.c frames them, each parsed as rpc.c parses it. */
struct line {
    json_t *msg;        /* NULL: gvmd cannot parse it either */
    json_t *big;        /* a line with an integer past 2^63, read with
                         * such numbers as reals (rpc.c answers it with
                         * its id when it can), else NULL */
    size_t end;         /* offset just past its '\n' (or the input's end) */
};

static size_t split_lines(const uint8_t *data, size_t size, struct line **out)
{
    size_t n = 0, cap = 0, start = 0;
    struct line *l = NULL;

    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            l = realloc(l, cap * sizeof(*l));
            if (!l)
                die("split", "out of memory");
        }
        json_error_t jerr;

        l[n].big = NULL;
        l[n].msg = i > start
            ? json_loadb((const char *)data + start, i - start,
                         JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr)
            : NULL;
        if (!l[n].msg && i > start &&
            json_error_code(&jerr) == json_error_numeric_overflow)
            l[n].big = json_loadb((const char *)data + start, i - start,
                                  JSON_REJECT_DUPLICATES | JSON_DECODE_ANY |
                                  JSON_DECODE_INT_AS_REAL, NULL);
        l[n].end = i < size ? i + 1 : size;
        n++;
        start = i + 1;
    }
    *out = l;
    return n;
}

static void free_lines(struct line *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(l[i].msg);
        json_decref(l[i].big);
    }
    free(l);
}

static bool unsafe_input(struct line *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *m = l[i].msg, *e;
        size_t k;

        if (json_is_object(m) && unsafe_request(m))
            return true;
        if (json_is_array(m))
            json_array_foreach(m, k, e)
                if (json_is_object(e) && unsafe_request(e))
                    return true;
    }
    return false;
}

/* ---- expected replies ------------------------------------------------------ */

static unsigned depth_of(json_t *v)
{
    unsigned max = 0, dd;
    const char *k;
    json_t *e;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_ARRAY:
        json_array_foreach(v, i, e)
            if ((dd = depth_of(e)) > max)
                max = dd;
        return max + 1;
    case JSON_OBJECT:
        json_object_foreach(v, k, e)
            if ((dd = depth_of(e)) > max)
                max = dd;
        return max + 1;
    default:
        return 0;
    }
}

static bool id_usable(json_t *id)
{
    return json_is_number(id) ||
           (json_is_string(id) && json_string_length(id) <= GVM_MAX_STRING);
}

/* ids: every id any request of the input had (a reply may echo these). */
static void collect_ids(struct line *l, size_t n, json_t *ids)
{
    for (size_t i = 0; i < n; i++) {
        json_t *m = l[i].msg, *e, *id;
        size_t k;

        if (!m && json_is_object(l[i].big)) {
            /* Only a possible echo: integral reals as the integer too. */
            id = json_object_get(l[i].big, "id");
            if (id)
                json_array_append(ids, id);
            if (json_is_real(id) && json_real_value(id) >= -0x1p63 &&
                json_real_value(id) < 0x1p63)
                json_array_append_new(ids, json_integer((json_int_t)json_real_value(id)));
            continue;
        }
        if (json_is_object(m)) {
            id = json_object_get(m, "id");
            if (id)
                json_array_append(ids, id);
        } else if (json_is_array(m)) {
            json_array_foreach(m, k, e)
                if (json_is_object(e) && (id = json_object_get(e, "id")))
                    json_array_append(ids, id);
        }
    }
}

/* want: one entry per single request that must be answered with its id
 * (added as its line is sent). */
static void want_line(const struct line *l, json_t *want)
{
    json_t *id = json_is_object(l->msg) ? json_object_get(l->msg, "id") : NULL;

    if (id_usable(id) && depth_of(l->msg) <= GVM_MAX_DEPTH)
        json_array_append(want, id);
}

static bool id_in(json_t *arr, json_t *id, bool take)
{
    json_t *e;
    size_t k;

    json_array_foreach(arr, k, e) {
        if (json_equal(e, id)) {
            if (take)
                json_array_remove(arr, k);
            return true;
        }
    }
    return false;
}

/* ---- checking a reply -------------------------------------------------------- */

static void bad_reply(const char *why, const char *line, size_t len)
{
    fprintf(stderr, "fuzz-rpc: invalid reply (%s): %.*s\n", why,
            (int)(len > 2000 ? 2000 : len), line);
    abort();
}

static void check_response(json_t *r, json_t *ids, json_t *want,
                           const char *line, size_t len, bool in_batch)
{
    json_t *id, *res, *err, *v;
    const char *key;

    if (!json_is_object(r))
        bad_reply("not an object", line, len);
    v = json_object_get(r, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0"))
        bad_reply("no \"jsonrpc\": \"2.0\"", line, len);
    if (!in_batch && json_is_string(json_object_get(r, "method"))) {
        /* A notification to a subscribed connection. */
        if (strcmp(json_string_value(json_object_get(r, "method")), "event") ||
            !json_is_object(json_object_get(r, "params")) ||
            json_object_size(r) != 3)
            bad_reply("a notification that is not an event", line, len);
        return;
    }
    json_object_foreach(r, key, v)
        if (strcmp(key, "jsonrpc") && strcmp(key, "id") &&
            strcmp(key, "result") && strcmp(key, "error"))
            bad_reply("unknown member", line, len);
    id = json_object_get(r, "id");
    res = json_object_get(r, "result");
    err = json_object_get(r, "error");
    if (!id)
        bad_reply("no id", line, len);
    if (!json_is_null(id) && !id_in(ids, id, false))
        bad_reply("an id no request had", line, len);
    if (!!res == !!err)
        bad_reply("not exactly one of result and error", line, len);
    if (err) {
        if (!json_is_object(err) ||
            !json_is_integer(json_object_get(err, "code")) ||
            !json_is_string(json_object_get(err, "message")))
            bad_reply("error without integer code and string message", line, len);
        v = json_object_get(err, "data");
        if (v && !json_is_string(json_object_get(v, "class")))
            bad_reply("error data without a class", line, len);
    }
    if (!in_batch && !json_is_null(id))
        id_in(want, id, true);
}

static void check_line(const char *line, size_t len, json_t *ids, json_t *want)
{
    json_error_t jerr;
    json_t *r = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr), *e;
    size_t k;

    if (!r)
        bad_reply(jerr.text, line, len);
    if (json_is_array(r)) {
        if (json_array_size(r) == 0)
            bad_reply("an empty batch reply", line, len);
        json_array_foreach(r, k, e)
            check_response(e, ids, want, line, len, true);
    } else {
        check_response(r, ids, want, line, len, false);
    }
    json_decref(r);
}

/* The bytes to send: the input after its mode byte, with every "@ROOT@"
 * replaced by the fuzz directory, so that seeds and regression inputs can
 * name ROOT/vols/a for a dir volume-add whatever directory this run has.
 * *buf gets a malloc'd copy when something was replaced. */
#define ROOT_TOKEN "@ROOT@"

static const uint8_t *expand_root(const uint8_t *in, size_t len, size_t *out_len,
                                  uint8_t **buf)
{
    size_t tl = strlen(ROOT_TOKEN), rl = strlen(root), n = 0, o = 0;
    const uint8_t *p = in, *q;
    uint8_t *b;

    *buf = NULL;
    *out_len = len;
    while ((q = memmem(p, len - (size_t)(p - in), ROOT_TOKEN, tl))) {
        n++;
        p = q + tl;
    }
    if (!n)
        return in;
    b = malloc(len + n * rl + 1);
    if (!b)
        die("expand", "out of memory");
    for (p = in; (q = memmem(p, len - (size_t)(p - in), ROOT_TOKEN, tl)); p = q + tl) {
        memcpy(b + o, p, (size_t)(q - p));
        o += (size_t)(q - p);
        memcpy(b + o, root, rl);
        o += rl;
    }
    memcpy(b + o, p, len - (size_t)(p - in));
    o += len - (size_t)(p - in);
    *buf = b;
    *out_len = o;
    return b;
}

/* ---- one conversation ---------------------------------------------------------- */

struct client {
    int fd;
    struct event *wr;           /* pending while there is input to send */
    const uint8_t *out;
    size_t out_len, out_off;
    size_t limit;               /* may send up to here (lockstep: a line) */
    bool shut;
    char *in;
    size_t in_len, in_cap, in_checked;
    bool eof;
    json_t *ids, *want;
};

static void client_io(struct client *cl)
{
    char buf[65536];
    ssize_t r;

    while (!cl->shut && cl->out_off < cl->limit) {
        r = send(cl->fd, cl->out + cl->out_off, cl->limit - cl->out_off,
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r <= 0) {
            if (r < 0 && errno == EPIPE)
                cl->shut = true;    /* gvmd closed: nothing more to say */
            break;
        }
        cl->out_off += (size_t)r;
    }
    if (!cl->shut && cl->out_off == cl->out_len) {
        shutdown(cl->fd, SHUT_WR);
        cl->shut = true;
    }
    if ((cl->shut || cl->out_off == cl->limit) && cl->wr)
        event_del(cl->wr);
    while (!cl->eof) {
        r = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            cl->eof = true;
            break;
        }
        if (r < 0)
            break;
        if (cl->in_len + (size_t)r > cl->in_cap) {
            cl->in_cap = (cl->in_len + (size_t)r) * 2;
            cl->in = realloc(cl->in, cl->in_cap);
            if (!cl->in)
                die("client", "out of memory");
        }
        memcpy(cl->in + cl->in_len, buf, (size_t)r);
        cl->in_len += (size_t)r;
    }
    /* Check every complete reply line as it arrives. */
    for (size_t i = cl->in_checked; i < cl->in_len; i++) {
        if (cl->in[i] != '\n')
            continue;
        check_line(cl->in + cl->in_checked, i - cl->in_checked, cl->ids, cl->want);
        cl->in_checked = i + 1;
    }
}

static void on_client(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_io(arg);
}

static unsigned unfinished_jobs(bool cancel)
{
    json_t *list = jobs_list_json(d->jobs), *j;
    unsigned n = 0;
    size_t k;

    json_array_foreach(list, k, j) {
        const char *st = json_string_value(json_object_get(j, "status"));

        if (st && strcmp(st, "concluded")) {
            n++;
            if (cancel) {
                json_t *res = NULL;
                struct gvm_error err;

                gvm_error_clear(&err);
                jobs_cancel(d->jobs,
                            json_integer_value(json_object_get(j, "id")),
                            &res, &err);
                json_decref(res);
            }
        }
    }
    json_decref(list);
    return n;
}

static void run_loop_for(int64_t ms)
{
    struct timeval tv = { .tv_sec = 0, .tv_usec = (suseconds_t)ms * 1000 };

    event_base_loopexit(d->base, &tv);
    event_base_loop(d->base, EVLOOP_ONCE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct client cl = { .fd = -1 };
    struct line *lines = NULL;
    size_t nlines, next = 0, msg_len;
    const uint8_t *msg;
    uint8_t *msg_buf;
    struct gvm_error err;
    struct event *rd;
    int sv[2];
    bool ro, lockstep;
    uid_t uid;
    uint64_t start;
    bool cancelled = false;

    if (size < 1)
        return -1;
    msg = expand_root(data + 1, size - 1, &msg_len, &msg_buf);
    nlines = split_lines(msg, msg_len, &lines);
    if (unsafe_input(lines, nlines)) {
        free_lines(lines, nlines);
        free(msg_buf);
        return -1;                  /* not run, not kept */
    }
    if (!d || runs_since_reset >= reset_every) {
        bool was = d != NULL;

        fuzz_daemon_stop();
        /* Everything the daemon had is freed now: what LeakSanitizer finds
         * unreachable leaked during the inputs since the last reset.  (run.sh
         * fuzzes with -detect_leaks=0, as libFuzzer's per-input check scans
         * the long-lived daemon's heap after nearly every input and costs
         * eight times the fuzzing speed; the replay keeps the per-input
         * check, every input from a fresh daemon.) */
        if (was && __lsan_do_recoverable_leak_check()) {
            fprintf(stderr, "fuzz-rpc: memory leaked during the last %u inputs "
                    "(report above); this input is only the last of them: "
                    "replay the corpus with GVM_FUZZ_RESET=1 -detect_leaks=1 "
                    "to find the one\n", runs_since_reset);
            abort();
        }
        fuzz_daemon_start();
    }
    runs_since_reset++;
    cl.ids = json_array();
    cl.want = json_array();
    collect_ids(lines, nlines, cl.ids);

    switch (data[0] & 3) {
    case 2: ro = true; uid = FUZZ_UID_OTHER; break;
    case 3: ro = false; uid = FUZZ_UID_OTHER; break;
    default: ro = false; uid = 0; break;
    }
    /* Lockstep: a line is sent once every request before it that must be
     * answered has been (a client that waits, so sequences of dependent
     * calls work); else everything at once (pipelining, concurrency). */
    lockstep = data[0] & 4;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", strerror(errno));
    gvm_error_clear(&err);
    if (control_serve_fd(d->ctl, sv[0], ro, uid, uid, &err) < 0)
        die("control_serve_fd", err.message);
    cl.fd = sv[1];
    cl.out = msg;
    cl.out_len = msg_len;
    if (!lockstep) {
        for (; next < nlines; next++)
            want_line(&lines[next], cl.want);
        cl.limit = cl.out_len;
    }
    evutil_make_socket_nonblocking(cl.fd);
    rd = event_new(d->base, cl.fd, EV_READ | EV_PERSIST, on_client, &cl);
    cl.wr = event_new(d->base, cl.fd, EV_WRITE | EV_PERSIST, on_client, &cl);
    if (!rd || !cl.wr || event_add(rd, NULL) < 0)
        die("event", "cannot watch the client");

    start = gvm_now_ms();
    while (!cl.eof) {
        int64_t elapsed = (int64_t)(gvm_now_ms() - start);

        if (next < nlines && cl.out_off == cl.limit && !cl.shut &&
            json_array_size(cl.want) == 0) {
            want_line(&lines[next], cl.want);
            cl.limit = lines[next++].end;
        }
        if (!cl.shut) {
            /* Sends what it may; shuts the sending side once all is sent
             * (at once for an input of nothing but the mode byte). */
            client_io(&cl);
            if (!cl.shut && cl.out_off < cl.limit && event_add(cl.wr, NULL) < 0)
                die("event", "cannot watch the client");
        }
        if (!cancelled && elapsed > FUZZ_CANCEL_MS) {
            /* A job-wait on a throttled job waits as long as the job. */
            unfinished_jobs(true);
            cancelled = true;
        }
        if (elapsed > hang_ms) {
            fprintf(stderr, "fuzz-rpc: no end of the conversation after %lld ms "
                    "(%zu of %zu bytes sent, %zu bytes of replies)\n",
                    (long long)elapsed, cl.out_off, cl.out_len, cl.in_len);
            abort();
        }
        if (cl.eof)
            break;
        run_loop_for(FUZZ_TICK_MS);
    }
    free_lines(lines, nlines);
    event_free(rd);
    event_free(cl.wr);
    close(cl.fd);
    if (verbose)
        fprintf(stderr, "fuzz-rpc: %zu bytes of replies:\n%.*s", cl.in_len,
                (int)cl.in_len, cl.in);
    if (cl.in_checked != cl.in_len)
        bad_reply("the last reply has no newline", cl.in + cl.in_checked,
                  cl.in_len - cl.in_checked);
    if (json_array_size(cl.want)) {
        char *s = json_dumps(cl.want, JSON_COMPACT);

        fprintf(stderr, "fuzz-rpc: requests never answered, ids %s\n", s);
        free(s);
        abort();
    }
    free(cl.in);
    free(msg_buf);
    json_decref(cl.ids);
    json_decref(cl.want);

    /* Jobs the input started end before the next input. */
    start = gvm_now_ms();
    cancelled = false;
    while (unfinished_jobs(false)) {
        int64_t elapsed = (int64_t)(gvm_now_ms() - start);

        if (!cancelled && elapsed > FUZZ_CANCEL_MS) {
            unfinished_jobs(true);
            cancelled = true;
        }
        if (elapsed > hang_ms) {
            fprintf(stderr, "fuzz-rpc: a job did not end %lld ms after it was "
                    "cancelled\n", (long long)elapsed);
            abort();
        }
        run_loop_for(2);        /* jobs run on their own threads */
    }
    /* Let queued events and worker completions settle. */
    event_base_loop(d->base, EVLOOP_NONBLOCK);
    return 0;
}
