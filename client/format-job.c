/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format-job.c — jobs for a person: one job (what every job method and
 * job-wait answer) as "label: value" lines, query-jobs as a table with the
 * errors as sentences below it, and an ERROR as "sentence (Class)".
 * gvmd's JOB carries images as catalog ids and no times: the names are
 * looked up (format_image_name), the times are not there to print.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "gvm-proto.h"

char *format_error(const json_t *error)
{
    const char *msg = json_string_value(json_object_get(error, "message"));
    const char *cls = json_string_value(
        json_object_get(json_object_get(error, "data"), "class"));
    char *s = NULL;

    if (!cls) {
        switch (json_integer_value(json_object_get(error, "code"))) {
        case GVM_RPC_PARSE_ERROR:      cls = "ParseError"; break;
        case GVM_RPC_INVALID_REQUEST:  cls = "InvalidRequest"; break;
        case GVM_RPC_METHOD_NOT_FOUND: cls = "MethodNotFound"; break;
        case GVM_RPC_INVALID_PARAMS:   cls = "InvalidParams"; break;
        default:                       cls = "Internal"; break;
        }
    }
    if (asprintf(&s, "%s (%s)", msg ? msg : "(no message)", cls) < 0)
        return NULL;
    return s;
}

static bool failed(const json_t *job)
{
    json_t *e = json_object_get(job, "error");

    return e && !json_is_null(e);
}

/* done, failed or cancelled once concluded; else gvmd's status. */
static const char *state(const json_t *job)
{
    const char *st = json_string_value(json_object_get(job, "status"));

    if (!st || strcmp(st, "concluded"))
        return st;
    if (json_is_true(json_object_get(job, "cancelled")))
        return "cancelled";
    return failed(job) ? "failed" : "done";
}

static char *percent(const json_t *job)
{
    json_t *pr = json_object_get(job, "progress");
    json_int_t cur = json_integer_value(json_object_get(pr, "current"));
    json_int_t tot = json_integer_value(json_object_get(pr, "total"));
    char *s = NULL;

    if (tot <= 0)
        return strdup(HUMAN_NONE);
    /* Rounded down: 100 % only when it is all done. */
    if (asprintf(&s, "%lld%%", (long long)(100.0 * (double)cur / (double)tot)) < 0)
        return NULL;
    return s;
}

static char *progress(const json_t *job, const struct print_opts *po)
{
    json_t *pr = json_object_get(job, "progress");
    char *pc = percent(job), *s = NULL;
    char *cur = format_size(json_object_get(pr, "current"), po);
    char *tot = format_size(json_object_get(pr, "total"), po);

    if (json_integer_value(json_object_get(pr, "total")) <= 0 ||
        asprintf(&s, "%s (%s of %s)", pc, cur, tot) < 0)
        s = strdup(HUMAN_NONE);
    free(pc);
    free(cur);
    free(tot);
    return s;
}

/* The job's images as names joined by sep. */
static char *images(const json_t *job, struct print_opts *po, const char *sep)
{
    json_t *ids = json_object_get(job, "images"), *id;
    char *out = NULL;
    size_t i;

    json_array_foreach(ids, i, id) {
        char *n = NULL;
        if (asprintf(&n, "%s%s%s", out ? out : "", out ? sep : "",
                     format_image_name(po, id)) >= 0) {
            free(out);
            out = n;
        }
    }
    return out ? out : strdup(HUMAN_NONE);
}

/* A cell holds one name: the job's first image (its top), and how many
 * more it holds. */
static char *first_image(const json_t *job, struct print_opts *po)
{
    json_t *ids = json_object_get(job, "images");
    size_t n = json_array_size(ids);
    char *s = NULL;

    if (n == 0)
        return strdup(HUMAN_NONE);
    if (asprintf(&s, n > 1 ? "%s (+%zu)" : "%s",
                 format_image_name(po, json_array_get(ids, 0)), n - 1) < 0)
        return NULL;
    return s;
}

static char *type(const json_t *job)
{
    char *s = NULL;

    if (asprintf(&s, "%s%s", json_string_value(json_object_get(job, "type")),
                 json_is_true(json_object_get(job, "live")) ? " (live)" : "") < 0)
        return NULL;
    return s;
}

void format_job(FILE *f, const json_t *job, struct print_opts *po)
{
    struct kv kv = { 0 };

    format_kv(&kv, "job", print_value(NULL, json_object_get(job, "id"), po));
    format_kv(&kv, "type", type(job));
    format_kv(&kv, "state", strdup(state(job) ? state(job) : HUMAN_NONE));
    format_kv(&kv, "progress", progress(job, po));
    format_kv(&kv, "images", images(job, po, "\n"));
    if (failed(job) && !po->job_error_on_stderr)
        format_kv(&kv, "error", format_error(json_object_get(job, "error")));
    if (json_object_get(job, "op-id"))
        format_kv(&kv, "op-id", format_str(json_object_get(job, "op-id")));
    format_kv_print(f, &kv, 0);
}

void format_job_list(FILE *f, const json_t *list, struct print_opts *po)
{
    struct table *t = table_new(5, "ID", "TYPE", "STATE", "PROGRESS", "IMAGES");
    size_t i;
    json_t *job;

    if (json_array_size(list) == 0) {
        fputs(HUMAN_NONE "\n", f);
        table_free(t);
        return;
    }
    table_elide(t, 4);
    json_array_foreach(list, i, job) {
        table_add(t);
        table_set(t, 0, print_value(NULL, json_object_get(job, "id"), po));
        table_set(t, 1, type(job));
        table_set(t, 2, strdup(state(job) ? state(job) : HUMAN_NONE));
        table_set(t, 3, percent(job));
        table_set(t, 4, first_image(job, po));
    }
    table_print(f, t, 0, TABLE_WIDTH);
    table_free(t);
    /* A sentence does not fit a cell: the errors follow the table. */
    json_array_foreach(list, i, job)
        if (failed(job)) {
            char *e = format_error(json_object_get(job, "error"));
            fprintf(f, "job %" JSON_INTEGER_FORMAT ": %s\n",
                    json_integer_value(json_object_get(job, "id")), e ? e : "");
            free(e);
        }
}
