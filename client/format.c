/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format.c — which method has a designed human format, the helpers the
 * formats share (aligned "label: value" lines, sizes, times, image names
 * looked up once per run), and the formats of volumes and domains.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"

void format_kv(struct kv *kv, const char *k, char *v)
{
    if (kv->n >= ARRAY_SIZE(kv->k)) {
        free(v);
        return;
    }
    kv->k[kv->n] = k;
    kv->v[kv->n++] = v;
}

void format_kv_print(FILE *f, struct kv *kv, size_t indent)
{
    size_t w = 0;

    for (size_t i = 0; i < kv->n; i++)
        if (human_width(kv->k[i]) > w)
            w = human_width(kv->k[i]);
    for (size_t i = 0; i < kv->n; i++) {
        const char *v = kv->v[i] ? kv->v[i] : HUMAN_NONE;

        fprintf(f, "%*s%s:%*s", (int)indent, "", kv->k[i],
                (int)(w - human_width(kv->k[i]) + 1), "");
        /* A list, one item a line, starts each line at the value column. */
        for (const char *nl; (nl = strchr(v, '\n')); v = nl + 1)
            fprintf(f, "%.*s\n%*s", (int)(nl - v), v, (int)(indent + w + 2), "");
        fprintf(f, "%s\n", v);
        free(kv->v[i]);
    }
    kv->n = 0;
}

char *format_size(const json_t *v, const struct print_opts *po)
{
    char buf[64];

    if (!json_is_integer(v))
        return strdup(HUMAN_NONE);
    human_size(buf, sizeof(buf), json_integer_value(v), po->bytes);
    return strdup(buf);
}

char *format_time(const json_t *v)
{
    char buf[64];

    if (!json_is_integer(v))
        return strdup(HUMAN_NONE);
    human_time(buf, sizeof(buf), json_integer_value(v));
    return strdup(buf);
}

char *format_str(const json_t *v)
{
    const char *s = json_string_value(v);

    return strdup(s && *s ? s : HUMAN_NONE);
}

json_t *format_call(struct print_opts *po, const char *method, json_t *params)
{
    json_t *reply = NULL, *res = NULL;

    if (!po->conn) {
        json_decref(params);
        return NULL;
    }
    if (conn_call(po->conn, method, params, &reply) == 0)
        res = json_incref(json_object_get(reply, "result"));
    json_decref(params);
    json_decref(reply);
    return res;
}

const char *format_image_name(struct print_opts *po, const json_t *id)
{
    char key[32];
    size_t i;
    json_t *img;

    if (!json_is_integer(id))
        return HUMAN_NONE;
    if (!po->names) {
        json_t *list = format_call(po, "image-list", json_object());
        po->names = json_object();
        json_array_foreach(list, i, img) {
            char *name = NULL;
            snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(img, "id")));
            if (asprintf(&name, "%s:%s",
                         json_string_value(json_object_get(img, "volume")),
                         json_string_value(json_object_get(img, "path"))) >= 0)
                json_object_set_new(po->names, key, json_string(name));
            free(name);
        }
        json_decref(list);
    }
    snprintf(key, sizeof(key), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
    if (!json_object_get(po->names, key)) {
        char gone[40];
        snprintf(gone, sizeof(gone), "#%s", key);
        json_object_set_new(po->names, key, json_string(gone));
    }
    const char *name = json_string_value(json_object_get(po->names, key));
    return name ? name : HUMAN_NONE;
}

/* ---- volumes --------------------------------------------------------------- */

/* Where a volume's images are: a directory, or "host,host/volume". */
static char *location(const json_t *vol)
{
    const char *path = json_string_value(json_object_get(vol, "path"));
    const char *gv = json_string_value(json_object_get(vol, "volume"));
    json_t *servers = json_object_get(vol, "servers"), *s;
    char *out = NULL, *hosts;
    size_t i;

    if (path && *path)
        return strdup(path);
    hosts = strdup("");
    json_array_foreach(servers, i, s) {
        const char *h = json_string_value(json_object_get(s, "host"));
        char *n = NULL;
        if (h && asprintf(&n, "%s%s%s", hosts, *hosts ? "," : "", h) >= 0) {
            free(hosts);
            hosts = n;
        }
    }
    if (asprintf(&out, "%s/%s", hosts ? hosts : "", gv ? gv : "") < 0)
        out = NULL;
    free(hosts);
    return out;
}

static void volume_list(FILE *f, const json_t *list, struct print_opts *po)
{
    struct table *t = table_new(4, "ID", "NAME", "BACKEND", "LOCATION");
    size_t i;
    json_t *v;

    table_elide(t, 3);
    json_array_foreach(list, i, v) {
        table_add(t);
        table_set(t, 0, print_value(NULL, json_object_get(v, "id"), po));
        table_set(t, 1, format_str(json_object_get(v, "name")));
        table_set(t, 2, format_str(json_object_get(v, "backend")));
        table_set(t, 3, location(v));
    }
    table_print(f, t, 0, TABLE_WIDTH);
    table_free(t);
}

static void volume_info(FILE *f, const json_t *v, struct print_opts *po)
{
    struct kv kv = { 0 };
    json_t *servers = json_object_get(v, "servers");
    char *free_s = format_size(json_object_get(v, "free-bytes"), po);
    char *total_s = format_size(json_object_get(v, "total-bytes"), po);
    char *space = NULL;

    if (asprintf(&space, "%s free of %s", free_s, total_s) < 0)
        space = NULL;
    free(free_s);
    free(total_s);
    format_kv(&kv, "volume", format_str(json_object_get(v, "name")));
    format_kv(&kv, "backend", format_str(json_object_get(v, "backend")));
    format_kv(&kv, "location", location(v));
    format_kv(&kv, "connected", print_value(NULL, json_object_get(v, "connected"), po));
    format_kv(&kv, "space", space);
    format_kv(&kv, "images", print_value(NULL, json_object_get(v, "images"), po));
    format_kv_print(f, &kv, 0);
    if (json_array_size(servers) > 0) {
        json_t *s = json_object();
        json_object_set(s, "servers", servers);
        print_object(f, s, 0, po);
        json_decref(s);
    }
}

/* ---- domains --------------------------------------------------------------- */

void format_domain_disks(FILE *f, const json_t *disks, size_t indent)
{
    struct table *t = table_new(2, "TARGET", "IMAGE");
    size_t i;
    json_t *d;

    table_elide(t, 1);
    json_array_foreach(disks, i, d)
        table_row(t, json_string_value(json_object_get(d, "target")),
                  json_string_value(json_object_get(d, "image-name")));
    table_print(f, t, indent, TABLE_WIDTH);
    table_free(t);
}

static void domain_list(FILE *f, const json_t *list, struct print_opts *po)
{
    struct table *t = table_new(5, "DOMAIN", "STATE", "SNAPSHOT", "TARGET", "IMAGE");
    size_t i, k;
    json_t *dom, *d;

    if (json_array_size(list) == 0) {
        fputs(HUMAN_NONE "\n", f);
        table_free(t);
        return;
    }
    table_elide(t, 4);
    json_array_foreach(list, i, dom) {
        const char *name = json_string_value(json_object_get(dom, "name"));
        const char *cur = json_string_value(json_object_get(dom, "current-snapshot"));
        const char *st = json_is_true(json_object_get(dom, "live")) ? "live" : "offline";
        json_t *disks = json_object_get(dom, "disks");

        if (json_array_size(disks) == 0)
            table_row(t, name, st, cur, NULL, NULL);
        /* The domain's name, state and snapshot once, on its first disk. */
        json_array_foreach(disks, k, d)
            table_row(t, k ? "" : name, k ? "" : st, k ? "" : cur,
                      json_string_value(json_object_get(d, "target")),
                      json_string_value(json_object_get(d, "image-name")));
    }
    table_print(f, t, 0, TABLE_WIDTH);
    table_free(t);
}

static void domain(FILE *f, const json_t *dom, struct print_opts *po)
{
    struct kv kv = { 0 };

    format_kv(&kv, "domain", format_str(json_object_get(dom, "name")));
    format_kv(&kv, "uuid", format_str(json_object_get(dom, "uuid")));
    format_kv(&kv, "state", strdup(json_is_true(json_object_get(dom, "live")) ?
                                   "live" : "offline"));
    format_kv(&kv, "current snapshot",
              format_str(json_object_get(dom, "current-snapshot")));
    format_kv_print(f, &kv, 0);
    fputs("disks:\n", f);
    format_domain_disks(f, json_object_get(dom, "disks"), 2);
}

/* ---- dispatch -------------------------------------------------------------- */

bool format_is_job(const json_t *v)
{
    return json_is_object(v) && json_object_get(v, "id") &&
           json_is_string(json_object_get(v, "status")) &&
           json_object_get(v, "type");
}

static bool takes_array(const json_t *v) { return json_is_array(v); }
static bool takes_object(const json_t *v) { return json_is_object(v); }

static const struct {
    const char *method;
    void (*print)(FILE *f, const json_t *result, struct print_opts *po);
    bool (*takes)(const json_t *result);
} formats[] = {
    { "volume-list",     volume_list,             takes_array },
    { "volume-info",     volume_info,             takes_object },
    { "domain-list",     domain_list,             takes_array },
    { "domain-attach",   domain,                  takes_object },
    { "image-info",      format_image,            takes_object },
    { "image-create",    format_image,            takes_object },
    { "image-import",    format_image,            takes_object },
    { "image-list",      format_image_list,       takes_array },
    { "snapshot-list",   format_snapshot_list,    takes_array },
    { "snapshot-info",   format_snapshot,         takes_object },
    { "snapshot-create", format_snapshot,         takes_object },
    { "snapshot-revert", format_snapshot_revert,  takes_object },
    { "query-jobs",      format_job_list,         takes_array },
};

bool format_result(FILE *f, const char *method, const json_t *result,
                   struct print_opts *po)
{
    /* Every job method answers with a JOB, waited for or not. */
    if (format_is_job(result)) {
        format_job(f, result, po);
        return true;
    }
    for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
        if (!strcmp(formats[i].method, method) && formats[i].takes(result)) {
            formats[i].print(f, result, po);
            return true;
        }
    return false;
}
