/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gvmctl.c — the command line client of gvmd.
 *
 *   gvmctl [--socket PATH] [--json|--bytes] [--params JSON] [--wait] COMMAND [--param value ...]
 *   gvmctl help [COMMAND] | --help | --version
 *
 * COMMAND is any method of proto/methods.def: the table below is built from
 * that file, so a new method needs no change here.  Each method's parameter
 * spec (see gvm-proto.h) says how `--name value` is turned into JSON.
 * Results are printed for a person (format*.c, print.c) unless --json.
 *
 * Exit status: 0 success, 1 gvmd answered with an error (or a waited-for
 * job failed), 2 usage error, 3 cannot connect.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client.h"
#include "gvm-proto.h"

struct method {
    const char *name;
    unsigned flags;
    const char *spec;
    const char *help;
};

static const struct method methods[] = {
#define GVM_METHOD(c_name, wire, flags, spec, help) { wire, flags, spec, help },
#include "methods.def"
#undef GVM_METHOD
};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* One parsed "name:T?" of a spec. */
struct param {
    char name[64];
    char type;
    bool optional;
};

struct opts {
    const char *socket;
    bool json;
    bool bytes;
    bool wait;
    const char *params_json;
};

/* Print a usage error; the caller frees what it holds and exits 2. */
static PRINTF_LIKE(1, 2) void usage_msg(const char *fmt, ...)
{
    va_list ap;

    fputs("gvmctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* For main's option parsing, before anything is allocated. */
#define usage_error(...) do { usage_msg(__VA_ARGS__); exit(EXIT_USAGE); } while (0)

static const struct method *find_method(const char *name)
{
    for (size_t i = 0; i < NMETHODS; i++)
        if (!strcmp(methods[i].name, name))
            return &methods[i];
    return NULL;
}

/* Split a spec into params; mutating methods also take op-id. */
static size_t parse_spec(const struct method *m, struct param *out, size_t max)
{
    const char *p = m->spec;
    size_t n = 0;

    while (*p && n < max) {
        p += strspn(p, " ");
        size_t len = strcspn(p, " ");
        if (len == 0)
            break;
        const char *colon = memchr(p, ':', len);
        struct param *q = &out[n];
        size_t nl = colon ? (size_t)(colon - p) : len;
        if (nl >= sizeof(q->name))
            nl = sizeof(q->name) - 1;
        memcpy(q->name, p, nl);
        q->name[nl] = '\0';
        q->type = colon && colon + 1 < p + len ? colon[1] : 'j';
        q->optional = p[len - 1] == '?';
        n++;
        p += len;
    }
    if ((m->flags & GVM_M_MUTATING) && n < max) {
        bool have = false;
        for (size_t i = 0; i < n; i++)
            have = have || !strcmp(out[i].name, "op-id");
        if (!have) {
            snprintf(out[n].name, sizeof(out[n].name), "op-id");
            out[n].type = 's';
            out[n].optional = true;
            n++;
        }
    }
    return n;
}

/* Integer parameters that are byte counts (or bytes a second): people type
 * them with a unit. */
static bool size_like(const char *name)
{
    return strstr(name, "size") || !strcmp(name, "speed") ||
           !strcmp(name, "offset") || !strcmp(name, "length");
}

/* "1048576", "512K", "1M", "2GiB", "1.5G" is not accepted (bytes are whole):
 * the value with K/M/G/T/P (or KiB…PiB, powers of 1024) applied.  false on
 * anything else or on overflow. */
static bool parse_size(const char *v, long long *out)
{
    static const char units[] = "KMGTP";
    char *end;
    long long n;
    int shift = 0;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (end == v || errno || n < 0)
        return false;
    if (*end) {
        const char *u = strchr(units, toupper((unsigned char)*end));

        if (!u)
            return false;
        shift = 10 * (int)(u - units + 1);
        end++;
        if (!strcmp(end, "iB") || !strcmp(end, "ib"))
            end += 2;
        else if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return false;
    }
    if (shift && n > (LLONG_MAX >> shift))
        return false;
    *out = n << shift;
    return true;
}

static const char *type_name(const struct param *p)
{
    switch (p->type) {
    case 's': return "STRING";
    case 'i': return size_like(p->name) ? "SIZE" : "INTEGER";
    case 'b': return "BOOL";
    case 'a': return "JSON-ARRAY";
    case 'o': return "JSON-OBJECT";
    case 'r': return "IMAGE";
    case 'R': return "IMAGE|none";
    case 'S': return "NAME|ID";
    default:  return "JSON";
    }
}

/* job-cancel answers with the job as it is; a job that had concluded before
 * the request is left as it was, which a person should be told (on stderr:
 * the output stays the job). */
static void note_cancel_too_late(json_t *job)
{
    const char *st = json_string_value(json_object_get(job, "status"));
    json_t *e = json_object_get(job, "error");

    if (!st || strcmp(st, "concluded") || json_is_true(json_object_get(job, "cancelled")))
        return;
    fprintf(stderr, "gvmctl: job %lld had already concluded (%s); nothing was "
            "cancelled.\n", (long long)json_integer_value(json_object_get(job, "id")),
            e && !json_is_null(e) ? "failed" : "done");
}

/* ---- help ---------------------------------------------------------------- */

static void print_usage(FILE *f)
{
    fprintf(f,
"Usage: gvmctl [OPTION]... COMMAND [--PARAM VALUE]...\n"
"       gvmctl help [COMMAND]\n"
"Send one JSON-RPC request to gvmd and print its result.\n"
"\n"
"  --socket PATH   gvmd's socket (default $GVMCTL_SOCKET, else %s)\n"
"  --json          print the raw JSON result; errors as JSON on stderr\n"
"  --bytes         print sizes as exact byte counts, not 1.0 GiB\n"
"  --params JSON   the whole params object (--PARAM values are merged in)\n"
"  --wait          if the result is a job, wait for it to conclude, with a\n"
"                  progress bar when stderr is a terminal\n"
"  --help          print this help and the command list, then exit\n"
"  --version       print the version and exit\n"
"\n"
"Results are printed for a person: sizes in KiB/MiB/GiB (powers of 1024),\n"
"times as local ISO 8601, and tables made to fit 80 columns, for which\n"
"long image names and paths are shortened in the middle with '…'\n"
"(--json prints them whole).\n"
"\n"
"Exit status: 0 success, 1 gvmd returned an error, 2 usage error,\n"
"3 cannot connect to the socket.\n",
            GVM_DEFAULT_SOCKET);
}

static void print_commands(FILE *f)
{
    size_t w = 0;

    for (size_t i = 0; i < NMETHODS; i++)
        if (strlen(methods[i].name) > w)
            w = strlen(methods[i].name);
    fputs("Commands:\n", f);
    for (size_t i = 0; i < NMETHODS; i++)
        fprintf(f, "  %-*s  %s\n", (int)w, methods[i].name, methods[i].help);
}

static void print_command_help(FILE *f, const struct method *m)
{
    struct param ps[64];
    size_t n = parse_spec(m, ps, 64), w = 0;

    fprintf(f, "Usage: gvmctl [OPTION]... %s", m->name);
    for (size_t i = 0; i < n; i++)
        fprintf(f, " %s--%s %s%s", ps[i].optional ? "[" : "", ps[i].name,
                type_name(&ps[i]), ps[i].optional ? "]" : "");
    fprintf(f, "\n%s\n", m->help);
    fprintf(f, "%s%s%s\n",
            m->flags & GVM_M_RO ? "Allowed on the read-only socket." :
            m->flags & GVM_M_ROOT ? "Root only, on the read-write socket." :
                                  "Needs the read-write socket.",
            m->flags & GVM_M_MUTATING ? " Changes state; accepts --op-id." : "",
            m->flags & GVM_M_BLOCKING ? " May take a while (storage or libvirt)." : "");
    if (n == 0) {
        fputs("\nNo parameters.\n", f);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (strlen(ps[i].name) > w)
            w = strlen(ps[i].name);
    fputs("\nParameters:\n", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  --%-*s  %-11s %s\n", (int)w, ps[i].name,
                type_name(&ps[i]), ps[i].optional ? "optional" : "required");
    fputs("\nIMAGE: a catalog id, VOLUME:PATH, a gluster[+tcp|+unix|+rdma]:// URI\n"
          "or json:{\"driver\":\"gluster\",...}; IMAGE|none: also none (no image).\n"
          "SIZE: bytes, or a whole number with K, M, G, T or P (powers of 1024:\n"
          "64K, 10G, 2GiB).  BOOL: true/false, yes/no, on/off, 1/0 (a bare --flag\n"
          "means true).  JSON-*: a JSON text.\n", f);
}

/* ---- converting --name value -------------------------------------------- */

static bool all_digits(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s);
}

static bool utf8_valid(const char *v)
{
    json_t *t = json_string(v);     /* jansson checks UTF-8 */
    bool ok = t != NULL;

    json_decref(t);
    return ok;
}

static json_t *convert(const struct param *p, const char *v)
{
    json_error_t je;
    json_t *j;
    char *end;

    /* JSON strings are UTF-8: say so rather than drop the parameter. */
    if (!utf8_valid(v)) {
        usage_msg("--%s: the value is not valid UTF-8.", p->name);
        return NULL;
    }
    switch (p->type) {
    case 's':
        return json_string(v);
    case 'i':
        if (size_like(p->name)) {
            long long sz;

            if (!parse_size(v, &sz)) {
                usage_msg("--%s: '%s' is not a size (bytes, or a whole number "
                          "with K, M, G, T or P: 64K, 10GiB).", p->name, v);
                return NULL;
            }
            return json_integer(sz);
        }
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || errno)
        {
            usage_msg("--%s: '%s' is not an integer.", p->name, v);
            return NULL;
        }
        return json_integer(n);
    case 'b':
        if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
            !strcasecmp(v, "on") || !strcmp(v, "1"))
            return json_true();
        if (!strcasecmp(v, "false") || !strcasecmp(v, "no") ||
            !strcasecmp(v, "off") || !strcmp(v, "0"))
            return json_false();
        usage_msg("--%s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0).",
                  p->name, v);
        return NULL;
    case 'r':
    case 'S':
        return all_digits(v) ? json_integer(strtoll(v, NULL, 10)) : json_string(v);
    case 'R':
        if (!strcmp(v, "none") || !strcmp(v, "null"))
            return json_null();
        return all_digits(v) ? json_integer(strtoll(v, NULL, 10)) : json_string(v);
    default:    /* a, o, j */
        j = json_loads(v, JSON_DECODE_ANY, &je);
        if (!j) {
            usage_msg("--%s: not valid JSON: %s.", p->name, je.text);
            return NULL;
        }
        if ((p->type == 'a' && !json_is_array(j)) ||
            (p->type == 'o' && !json_is_object(j))) {
            json_decref(j);
            usage_msg("--%s: expected a JSON %s, got '%s'.", p->name,
                      p->type == 'a' ? "array" : "object", v);
            return NULL;
        }
        return j;
    }
}

static bool is_bool_word(const char *v)
{
    static const char *const words[] = { "true", "false", "yes", "no", "on",
                                         "off", "1", "0" };
    for (size_t i = 0; i < ARRAY_SIZE(words); i++)
        if (!strcasecmp(v, words[i]))
            return true;
    return false;
}

static PRINTF_LIKE(2, 3) void unknown_param(const struct method *m,
                                                    const char *fmt, ...)
{
    struct param ps[64];
    size_t n = parse_spec(m, ps, 64);
    va_list ap;

    fputs("gvmctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (n == 0) {
        fprintf(stderr, "\n%s takes no parameters.\n", m->name);
    } else {
        fprintf(stderr, "\nValid parameters of %s:", m->name);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " --%s", ps[i].name);
        fputc('\n', stderr);
    }
}

/* Parse argv[i..] after COMMAND into params (global options allowed too).
 * 0, or -1 after printing a usage error. */
static int parse_command_args(const struct method *m, int argc, char **argv,
                              int i, struct opts *o, json_t *params)
{
    struct param ps[64];
    size_t n = parse_spec(m, ps, 64);

    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            unknown_param(m, "unexpected argument '%s' (parameters are "
                          "given as --name value).", a);
            return -1;
        }
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(a + 2, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof(name)) {
            unknown_param(m, "unknown parameter '%.40s...'.", a);
            return -1;
        }
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        if (eq)
            val = eq + 1;

        const struct param *p = NULL;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(ps[k].name, name))
                p = &ps[k];
        if (!p) {
            /* global options may follow the command too */
            if (!strcmp(name, "json") && !val) { o->json = true; continue; }
            if (!strcmp(name, "bytes") && !val) { o->bytes = true; continue; }
            if (!strcmp(name, "wait") && !val) { o->wait = true; continue; }
            if (!strcmp(name, "socket") || !strcmp(name, "params")) {
                if (!val) {
                    if (i + 1 >= argc) {
                        usage_msg("--%s needs a value.", name);
                        return -1;
                    }
                    val = argv[++i];
                }
                if (!strcmp(name, "socket"))
                    o->socket = val;
                else
                    o->params_json = val;
                continue;
            }
            unknown_param(m, "%s has no parameter '--%s'.", m->name, name);
            return -1;
        }
        if (!val) {
            if (p->type == 'b') {
                /* bare --flag is true; a following boolean word is its value */
                if (i + 1 < argc && is_bool_word(argv[i + 1]))
                    val = argv[++i];
                else
                    val = "true";
            } else {
                if (i + 1 >= argc) {
                    usage_msg("--%s needs a value (%s).", name,
                              type_name(p));
                    return -1;
                }
                val = argv[++i];
            }
        }
        if (json_object_get(params, name)) {
            usage_msg("--%s is given twice.", name);
            return -1;
        }
        json_t *jv = convert(p, val);
        if (!jv)
            return -1;
        json_object_set_new(params, name, jv);
    }
    return 0;
}

/* ---- running ------------------------------------------------------------- */

static int print_rpc_error(const json_t *error, bool as_json)
{
    char *s = as_json ? json_dumps(error, JSON_COMPACT | JSON_ENCODE_ANY)
                      : format_error(error);

    fprintf(stderr, as_json ? "%s\n" : "gvmctl: error: %s\n",
            s ? s : as_json ? "{}" : "(no message)");
    free(s);
    return EXIT_RPC_ERROR;
}

/* The result as JSON, or in m's designed format, or the generic one. */
static void print_result(const struct method *m, const json_t *result,
                         bool as_json, struct print_opts *po)
{
    if (as_json) {
        char *s = json_dumps(result, JSON_INDENT(2) | JSON_ENCODE_ANY);
        printf("%s\n", s ? s : "null");
        free(s);
    } else if (!format_result(stdout, m->name, result, po)) {
        print_human(stdout, result, po);
    }
    fflush(stdout);
}
static int io_failure(const char *sock, int r)
{
    if (r == -EPROTO)
        fprintf(stderr, "gvmctl: %s: gvmd's reply is not a JSON object.\n", sock);
    else if (r == -EMSGSIZE)
        fprintf(stderr, "gvmctl: %s: gvmd's reply is longer than %u MiB.\n",
                sock, CONN_MAX_REPLY >> 20);
    else if (r == -ECONNRESET)
        fprintf(stderr, "gvmctl: %s: gvmd closed the connection before "
                "answering.\n", sock);
    else
        fprintf(stderr, "gvmctl: %s: %s.\n", sock, strerror(-r));
    return EXIT_RPC_ERROR;
}

static void draw_progress(const json_t *job)
{
    const json_t *pr = json_object_get(job, "progress");
    double cur = (double)json_integer_value(json_object_get(pr, "current"));
    double tot = (double)json_integer_value(json_object_get(pr, "total"));
    const char *status = json_string_value(json_object_get(job, "status"));
    char a[32], b[32], bar[41];
    double frac = tot > 0 ? cur / tot : 0;

    if (frac > 1)
        frac = 1;
    size_t fill = (size_t)(frac * 40);
    memset(bar, '#', fill);
    memset(bar + fill, '.', 40 - fill);
    bar[40] = '\0';
    human_size(a, sizeof(a), (long long)cur, false);
    human_size(b, sizeof(b), (long long)tot, false);
    fprintf(stderr, "\r[%s] %3.0f%%  %s / %s  %-10s", bar, frac * 100, a, b,
            status ? status : "");
    fflush(stderr);
}

/* Wait for a job with repeated job-wait calls; *job is replaced by the
 * final JOB.  Returns an exit status. */
static int wait_job(struct conn *c, const char *sock, json_t **job, bool as_json)
{
    bool tty = isatty(STDERR_FILENO);
    /* our own reference: *job is replaced while we wait */
    json_t *id = json_incref(json_object_get(*job, "id"));
    int rc = 0;

    for (;;) {
        const char *st = json_string_value(json_object_get(*job, "status"));
        if (st && !strcmp(st, "concluded"))
            break;
        /* A ready live commit waits for job-complete: waiting longer would
         * never end. */
        if (st && !strcmp(st, "ready")) {
            if (tty)
                fputc('\n', stderr);
            fprintf(stderr, "gvmctl: job %" JSON_INTEGER_FORMAT " is ready; "
                    "finish it with job-complete --id %" JSON_INTEGER_FORMAT
                    ".\n", json_integer_value(id), json_integer_value(id));
            json_decref(id);
            return 0;
        }
        if (tty)
            draw_progress(*job);
        json_t *params = json_pack("{s:O, s:i}", "id", id, "timeout", 1);
        json_t *reply = NULL;
        int r = conn_call(c, "job-wait", params, &reply);
        json_decref(params);
        if (r < 0) {
            if (tty)
                fputc('\n', stderr);
            json_decref(id);
            return io_failure(sock, r);
        }
        json_t *err = json_object_get(reply, "error");
        if (err) {
            /* A timeout reported as Busy just means "not yet". */
            const char *cls = json_string_value(
                json_object_get(json_object_get(err, "data"), "class"));
            if (cls && !strcmp(cls, "Busy")) {
                json_decref(reply);
                continue;
            }
            if (tty)
                fputc('\n', stderr);
            rc = print_rpc_error(err, as_json);
            json_decref(reply);
            json_decref(id);
            return rc;
        }
        json_t *res = json_object_get(reply, "result");
        if (format_is_job(res)) {
            json_decref(*job);
            *job = json_incref(res);
        }
        json_decref(reply);
    }
    if (tty) {
        draw_progress(*job);
        fputc('\n', stderr);
    }
    json_decref(id);
    return rc;
}

/* The global options before the command.  -1 with *next the command's
 * index to go on, else the exit status (--help, --version). */
static int parse_options(int argc, char **argv, struct opts *o, int *next)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 && strcmp(a, "-h") != 0)
            break;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage(stdout);
            fputc('\n', stdout);
            print_commands(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("gvmctl %s (protocol %d)\n", GVMD_VERSION, GVM_PROTOCOL_VERSION);
            return 0;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--bytes")) {
            o->bytes = true;
        } else if (!strcmp(a, "--wait")) {
            o->wait = true;
        } else if (!strcmp(a, "--socket") || !strcmp(a, "--params")) {
            if (i + 1 >= argc)
                usage_error("%s needs a value.", a);
            if (a[2] == 's')
                o->socket = argv[++i];
            else
                o->params_json = argv[++i];
        } else if (!strncmp(a, "--socket=", 9)) {
            o->socket = a + 9;
        } else if (!strncmp(a, "--params=", 9)) {
            o->params_json = a + 9;
        } else if (!strcmp(a, "--")) {
            i++;
            break;
        } else {
            usage_error("unknown option '%s' (see gvmctl --help).", a);
        }
    }
    *next = i;
    return -1;
}

/* "gvmctl help [COMMAND]"; argv[i] is "help". */
static int help_command(int argc, char **argv, int i)
{
    if (i + 1 >= argc) {
        print_usage(stdout);
        fputc('\n', stdout);
        print_commands(stdout);
        return 0;
    }
    const struct method *m = find_method(argv[i + 1]);
    if (!m)
        usage_error("unknown command '%s' (gvmctl help lists them).",
                    argv[i + 1]);
    print_command_help(stdout, m);
    return 0;
}

/* The call's params: --params, then the command's own arguments (from
 * argv[first]) over it.  NULL after a usage message. */
static json_t *build_params(const struct method *m, int argc, char **argv,
                            int first, struct opts *o)
{
    json_t *cli = json_object();
    if (parse_command_args(m, argc, argv, first, o, cli) < 0) {
        json_decref(cli);
        return NULL;
    }
    json_t *params = json_object();
    if (o->params_json) {
        json_error_t je;
        json_t *p = json_loads(o->params_json, 0, &je);
        if (!json_is_object(p)) {
            bool parsed = p != NULL;
            json_decref(p);
            json_decref(params);
            json_decref(cli);
            usage_msg("--params: not a JSON object%s%s.", parsed ? "" : ": ",
                      parsed ? "" : je.text);
            return NULL;
        }
        json_object_update(params, p);
        json_decref(p);
    }
    json_object_update(params, cli);      /* --name values win */
    json_decref(cli);
    return params;
}

/* Print a reply's result (waiting for its job with --wait) or error;
 * returns the exit status. */
static int print_reply(struct conn *c, const struct method *m,
                       const struct opts *o, json_t *reply)
{
    struct print_opts po = { .bytes = o->bytes, .conn = c };
    int rc = 0;
    json_t *err = json_object_get(reply, "error");
    if (err)
        return print_rpc_error(err, o->json);
    json_t *result = json_incref(json_object_get(reply, "result"));
    if (o->wait && format_is_job(result)) {
        rc = wait_job(c, o->socket, &result, o->json);
        if (rc == 0) {
            /* A failed job's error is the command's: said once, on stderr. */
            po.job_error_on_stderr = true;
            print_result(m, result, o->json, &po);
            json_t *jerr = json_object_get(result, "error");
            if (jerr && !json_is_null(jerr)) {
                if (!o->json)
                    print_rpc_error(jerr, false);
                rc = EXIT_RPC_ERROR;
            }
        }
    } else {
        print_result(m, result, o->json, &po);
        if (!strcmp(m->name, "job-cancel"))
            note_cancel_too_late(result);
    }
    json_decref(result);
    json_decref(po.names);
    return rc;
}

/* Connect, call m with params (consumed) and print what comes back. */
static int call_method(const struct method *m, const struct opts *o,
                       json_t *params)
{
    struct conn *c = conn_open(o->socket);
    if (!c) {
        int e = errno;
        fprintf(stderr, "gvmctl: cannot connect to gvmd at %s: %s%s\n",
                o->socket, strerror(e),
                e == ENOENT || e == ECONNREFUSED ? " (is gvmd running?)" :
                e == EACCES ? " (the read-write socket needs the gvm group; "
                              "read-only commands can use the -ro socket)" : "");
        json_decref(params);
        return EXIT_CONNECT;
    }

    json_t *reply = NULL;
    int r = conn_call(c, m->name, params, &reply), rc;
    json_decref(params);
    if (r < 0) {
        rc = io_failure(o->socket, r);
        conn_close(c);
        return rc;
    }
    rc = print_reply(c, m, o, reply);
    json_decref(reply);
    conn_close(c);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = { 0 };
    int i, rc;

    o.socket = getenv("GVMCTL_SOCKET");
    if (!o.socket || !*o.socket)
        o.socket = GVM_DEFAULT_SOCKET;

    rc = parse_options(argc, argv, &o, &i);
    if (rc >= 0)
        return rc;
    if (i >= argc) {
        print_usage(stderr);
        return EXIT_USAGE;
    }

    const char *cmd = argv[i];
    if (!strcmp(cmd, "help"))
        return help_command(argc, argv, i);

    const struct method *m = find_method(cmd);
    if (!m)
        usage_error("unknown command '%s' (gvmctl help lists them).", cmd);

    json_t *params = build_params(m, argc, argv, i + 1, &o);
    if (!params)
        return EXIT_USAGE;
    return call_method(m, &o, params);
}
