/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * print.c — gvmctl's generic human-readable output, for the methods that
 * have no designed format in format*.c:
 *
 *   array of objects  → a table, one column per key (in the order keys
 *                       first appear);
 *   array of scalars  → one value per line;
 *   object            → "key: value" lines; a nested object is indented
 *                       below its key, a nested array of objects becomes an
 *                       indented table, an array of scalars a list "a, b";
 *   scalar            → as it is (strings without quotes).
 * Values are never JSON: sizes (keys "size", "*-size", "*-bytes") in binary
 * units, times (created, started, finished) as local ISO 8601, nested
 * values as "a, b" or "key=value" lists, and null, missing and empty values
 * as HUMAN_NONE.  --json bypasses all of this: scripts get the raw result.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && !strcmp(s + a - b, suffix);
}

static bool key_is_size(const char *key)
{
    return key && (!strcmp(key, "size") || ends_with(key, "-size") ||
                   ends_with(key, "-bytes"));
}

static bool key_is_time(const char *key)
{
    return key && (!strcmp(key, "created") || !strcmp(key, "started") ||
                   !strcmp(key, "finished"));
}

/* "a, b" for an array, "k=v, k=v" for an object, recursively. */
static char *join(const char *key, const json_t *v, const struct print_opts *po)
{
    size_t len = 0, i;
    char *out = strdup("");
    const char *k;
    json_t *e;

    if (json_is_array(v) ? json_array_size(v) == 0 : json_object_size(v) == 0) {
        free(out);
        return strdup(HUMAN_NONE);
    }
    json_array_foreach(v, i, e) {
        char *c = print_value(key, e, po);
        char *n = c ? realloc(out, len + strlen(c) + 3) : NULL;
        if (n) {
            len += (size_t)sprintf(n + len, "%s%s", len ? ", " : "", c);
            out = n;
        }
        free(c);
    }
    json_object_foreach((json_t *)v, k, e) {
        char *c = print_value(k, e, po);
        char *n = c ? realloc(out, len + strlen(k) + strlen(c) + 4) : NULL;
        if (n) {
            len += (size_t)sprintf(n + len, "%s%s=%s", len ? ", " : "", k, c);
            out = n;
        }
        free(c);
    }
    return out;
}

char *print_value(const char *key, const json_t *v, const struct print_opts *po)
{
    char buf[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(*json_string_value(v) ? json_string_value(v) : HUMAN_NONE);
    case JSON_INTEGER:
        if (key_is_size(key))
            human_size(buf, sizeof(buf), json_integer_value(v), po && po->bytes);
        else if (key_is_time(key))
            human_time(buf, sizeof(buf), json_integer_value(v));
        else
            snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        return strdup(buf);
    case JSON_REAL:
        snprintf(buf, sizeof(buf), "%g", json_real_value(v));
        return strdup(buf);
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_NULL:
        return strdup(HUMAN_NONE);
    default:
        return join(key, v, po);
    }
}

static bool is_object_array(const json_t *v)
{
    size_t i;
    json_t *e;

    if (!json_is_array(v) || json_array_size(v) == 0)
        return false;
    json_array_foreach(v, i, e)
        if (!json_is_object(e))
            return false;
    return true;
}

/* The keys of rows, in the order they first appear. */
static json_t *columns(const json_t *rows)
{
    json_t *cols = json_array(), *row, *v;
    const char *key;
    size_t i, j;

    json_array_foreach(rows, i, row) {
        json_object_foreach((json_t *)row, key, v) {
            bool seen = false;
            for (j = 0; j < json_array_size(cols); j++)
                seen = seen || !strcmp(json_string_value(json_array_get(cols, j)), key);
            if (!seen)
                json_array_append_new(cols, json_string(key));
        }
    }
    return cols;
}

/* A generic table has no column worth cutting: it is printed whole. */
static void print_table(FILE *f, const json_t *rows, size_t indent,
                        const struct print_opts *po)
{
    json_t *cols = columns(rows), *row;
    size_t ncols = json_array_size(cols), i, j;
    const char *h[64];
    char *up[64];

    if (ncols > ARRAY_SIZE(h))
        ncols = ARRAY_SIZE(h);
    for (j = 0; j < ncols; j++) {
        up[j] = strdup(json_string_value(json_array_get(cols, j)));
        for (char *p = up[j]; p && *p; p++)
            *p = (char)toupper((unsigned char)*p);
        h[j] = up[j] ? up[j] : "";
    }
    struct table *t = table_new_array(ncols, h);
    json_array_foreach(rows, i, row) {
        table_add(t);
        for (j = 0; j < ncols; j++) {
            const char *k = json_string_value(json_array_get(cols, j));
            json_t *v = json_object_get(row, k);
            if (v)
                table_set(t, j, print_value(k, v, po));
        }
    }
    table_print(f, t, indent, SIZE_MAX);
    table_free(t);
    for (j = 0; j < ncols; j++)
        free(up[j]);
    json_decref(cols);
}

void print_object(FILE *f, const json_t *o, size_t indent,
                  const struct print_opts *po)
{
    size_t kw = 0;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)o, key, v)
        if (human_width(key) > kw)
            kw = human_width(key);

    json_object_foreach((json_t *)o, key, v) {
        fprintf(f, "%*s%s:", (int)indent, "", key);
        if (is_object_array(v)) {
            fputc('\n', f);
            print_table(f, v, indent + 2, po);
        } else if (json_is_object(v) && json_object_size(v) > 0) {
            fputc('\n', f);
            print_object(f, v, indent + 2, po);
        } else {
            char *c = print_value(key, v, po);
            fprintf(f, "%*s%s\n", (int)(kw - human_width(key) + 1), "", c ? c : "");
            free(c);
        }
    }
}

void print_human(FILE *f, const json_t *v, const struct print_opts *po)
{
    size_t i;
    json_t *e;

    if (!v || json_is_null(v))
        return;
    if (is_object_array(v)) {
        print_table(f, v, 0, po);
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0)
            fputs(HUMAN_NONE "\n", f);
        json_array_foreach(v, i, e) {
            char *c = print_value(NULL, e, po);
            fprintf(f, "%s\n", c ? c : "");
            free(c);
        }
    } else if (json_is_object(v)) {
        print_object(f, v, 0, po);
    } else {
        char *c = print_value(NULL, v, po);
        fprintf(f, "%s\n", c ? c : "");
        free(c);
    }
}
