/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * print.c — gvmctl's human-readable output.
 *
 *   array of objects  → an aligned table, one column per key (in the order
 *                       keys first appear), nested values as compact JSON,
 *                       null and missing values as "-";
 *   array of scalars  → one value per line;
 *   object            → "key: value" lines; a nested object is indented
 *                       below its key, a nested array of objects becomes an
 *                       indented table, an array of scalars a list "a, b";
 *   scalar            → as it is (strings without quotes).
 * --json bypasses all of this: scripts get the raw result.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

char *print_cell(const json_t *v)
{
    char buf[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
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
        return strdup("-");
    default:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    }
}

/* Display width: UTF-8 code points (good enough for names and paths). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void pad(FILE *f, size_t n)
{
    while (n-- > 0)
        fputc(' ', f);
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

static bool is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

static void print_table(FILE *f, const json_t *rows, size_t indent)
{
    json_t *cols = json_array();   /* column names, first-seen order */
    size_t nrows = json_array_size(rows), ncols, i, j;
    json_t *row, *v;
    const char *key;

    json_array_foreach(rows, i, row) {
        json_object_foreach((json_t *)row, key, v) {
            bool seen = false;
            for (j = 0; j < json_array_size(cols); j++)
                if (!strcmp(json_string_value(json_array_get(cols, j)), key))
                    seen = true;
            if (!seen)
                json_array_append_new(cols, json_string(key));
        }
    }
    ncols = json_array_size(cols);
    if (ncols == 0) {
        json_decref(cols);
        return;
    }

    char **cells = calloc((nrows + 1) * ncols, sizeof(*cells));
    size_t *w = calloc(ncols, sizeof(*w));
    if (!cells || !w) {
        free(cells);
        free(w);
        json_decref(cols);
        return;
    }
    for (j = 0; j < ncols; j++) {
        char *h = strdup(json_string_value(json_array_get(cols, j)));
        for (char *p = h; p && *p; p++)
            *p = (char)toupper((unsigned char)*p);
        cells[j] = h;
    }
    for (i = 0; i < nrows; i++) {
        row = json_array_get(rows, i);
        for (j = 0; j < ncols; j++) {
            v = json_object_get(row, json_string_value(json_array_get(cols, j)));
            cells[(i + 1) * ncols + j] = v ? print_cell(v) : strdup("-");
        }
    }
    for (i = 0; i <= nrows; i++)
        for (j = 0; j < ncols; j++) {
            const char *c = cells[i * ncols + j];
            size_t cw = c ? width(c) : 0;
            if (cw > w[j])
                w[j] = cw;
        }
    for (i = 0; i <= nrows; i++) {
        pad(f, indent);
        for (j = 0; j < ncols; j++) {
            const char *c = cells[i * ncols + j] ? cells[i * ncols + j] : "";
            fputs(c, f);
            if (j + 1 < ncols)
                pad(f, w[j] - width(c) + 2);
        }
        fputc('\n', f);
    }
    for (i = 0; i < (nrows + 1) * ncols; i++)
        free(cells[i]);
    free(cells);
    free(w);
    json_decref(cols);
}

static void print_object(FILE *f, const json_t *o, size_t indent)
{
    size_t kw = 0;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)o, key, v)
        if (width(key) > kw)
            kw = width(key);

    json_object_foreach((json_t *)o, key, v) {
        pad(f, indent);
        fprintf(f, "%s:", key);
        if (is_object_array(v)) {
            fputc('\n', f);
            print_table(f, v, indent + 2);
        } else if (json_is_object(v) && json_object_size(v) > 0) {
            fputc('\n', f);
            print_object(f, v, indent + 2);
        } else if (json_is_array(v)) {
            bool flat = true;
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
                flat = flat && is_scalar(e);
            pad(f, kw - width(key) + 1);
            if (json_array_size(v) == 0) {
                fputs("-", f);
            } else if (flat) {
                json_array_foreach(v, i, e) {
                    char *c = print_cell(e);
                    fprintf(f, "%s%s", i ? ", " : "", c ? c : "");
                    free(c);
                }
            } else {
                char *c = print_cell(v);
                fputs(c ? c : "", f);
                free(c);
            }
            fputc('\n', f);
        } else {
            char *c = print_cell(v);
            pad(f, kw - width(key) + 1);
            fprintf(f, "%s\n", c ? c : "");
            free(c);
        }
    }
}

void print_human(FILE *f, const json_t *v)
{
    size_t i;
    json_t *e;

    if (!v || json_is_null(v))
        return;
    if (is_object_array(v)) {
        print_table(f, v, 0);
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0)
            fputs("(none)\n", f);
        json_array_foreach(v, i, e) {
            char *c = print_cell(e);
            fprintf(f, "%s\n", c ? c : "");
            free(c);
        }
    } else if (json_is_object(v)) {
        print_object(f, v, 0);
    } else {
        char *c = print_cell(v);
        fprintf(f, "%s\n", c ? c : "");
        free(c);
    }
}
