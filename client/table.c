/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * table.c — aligned text tables for gvmctl's human output.
 *
 * Columns are separated by two spaces and the last one is not padded.  A
 * table wider than its width limit (TABLE_WIDTH for an 80-column terminal)
 * shrinks its elidable columns (names and paths), widest first, and elides
 * their cells in the middle with "…"; other columns are never cut, so a
 * table that cannot fit is printed whole rather than lose a size or a state.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

/* The narrowest an elided column gets: "local:…qcow2" still says what. */
#define MIN_ELIDED 12

struct table {
    size_t ncols, nrows, cap;
    char **cells;               /* (nrows + 1) * ncols; row 0 the headers */
    bool *elide;
    size_t *min;
};

struct table *table_new_array(size_t ncols, const char *const *headers)
{
    struct table *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->ncols = ncols;
    t->cap = 8;
    t->cells = calloc(t->cap * (ncols ? ncols : 1), sizeof(*t->cells));
    t->elide = calloc(ncols ? ncols : 1, sizeof(*t->elide));
    t->min = calloc(ncols ? ncols : 1, sizeof(*t->min));
    if (!t->cells || !t->elide) {
        table_free(t);
        return NULL;
    }
    for (size_t j = 0; j < ncols; j++)
        t->cells[j] = strdup(headers[j]);
    return t;
}

struct table *table_new(size_t ncols, ...)
{
    const char *h[16];
    va_list ap;

    if (ncols > ARRAY_SIZE(h))
        return NULL;
    va_start(ap, ncols);
    for (size_t j = 0; j < ncols; j++)
        h[j] = va_arg(ap, const char *);
    va_end(ap);
    return table_new_array(ncols, h);
}

void table_free(struct table *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->cells && i < (t->nrows + 1) * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->elide);
    free(t->min);
    free(t);
}

void table_elide(struct table *t, size_t col)
{
    if (t && col < t->ncols)
        t->elide[col] = true;
}

void table_min_width(struct table *t, size_t col, size_t width)
{
    if (t && t->min && col < t->ncols)
        t->min[col] = width;
}

/* Room for one more row; false on allocation failure. */
static bool grow(struct table *t)
{
    if (t->nrows + 2 <= t->cap)
        return true;
    size_t cap = t->cap * 2;
    char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));

    if (!c)
        return false;
    memset(c + t->cap * t->ncols, 0, (cap - t->cap) * t->ncols * sizeof(*c));
    t->cells = c;
    t->cap = cap;
    return true;
}

void table_add(struct table *t)
{
    if (!t || !grow(t))
        return;
    t->nrows++;
    for (size_t j = 0; j < t->ncols; j++)
        t->cells[t->nrows * t->ncols + j] = strdup(HUMAN_NONE);
}

void table_row(struct table *t, ...)
{
    va_list ap;

    table_add(t);
    if (!t || t->nrows == 0)
        return;
    va_start(ap, t);
    for (size_t j = 0; j < t->ncols; j++) {
        const char *c = va_arg(ap, const char *);
        table_set(t, j, strdup(c ? c : HUMAN_NONE));
    }
    va_end(ap);
}

void table_set(struct table *t, size_t col, char *cell)
{
    if (!t || col >= t->ncols || t->nrows == 0) {
        free(cell);
        return;
    }
    char **p = &t->cells[t->nrows * t->ncols + col];
    free(*p);
    *p = cell ? cell : strdup(HUMAN_NONE);
}

/* Column widths that fit limit if the elidable columns allow it. */
static void fit(const struct table *t, size_t *w, size_t limit)
{
    size_t total = 0;

    for (size_t j = 0; j < t->ncols; j++) {
        w[j] = t->min ? t->min[j] : 0;
        for (size_t i = 0; i <= t->nrows; i++) {
            size_t cw = human_width(t->cells[i * t->ncols + j]);
            if (cw > w[j])
                w[j] = cw;
        }
        total += w[j] + (j ? 2 : 0);
    }
    while (total > limit) {
        size_t widest = t->ncols;
        for (size_t j = 0; j < t->ncols; j++)
            if (t->elide[j] && w[j] > MIN_ELIDED &&
                (widest == t->ncols || w[j] > w[widest]))
                widest = j;
        if (widest == t->ncols)
            return;
        w[widest]--;
        total--;
    }
}

void table_print(FILE *f, const struct table *t, size_t indent, size_t limit)
{
    if (!t)
        return;
    size_t *w = calloc(t->ncols, sizeof(*w));

    if (!w)
        return;
    fit(t, w, limit > indent ? limit - indent : 0);
    for (size_t i = 0; i <= t->nrows; i++) {
        fprintf(f, "%*s", (int)indent, "");
        for (size_t j = 0; j < t->ncols; j++) {
            char *c = human_elide(t->cells[i * t->ncols + j], w[j]);
            size_t cw = c ? human_width(c) : 0;

            fputs(c ? c : "", f);
            if (j + 1 < t->ncols)
                fprintf(f, "%*s", (int)(w[j] - cw + 2), "");
            free(c);
        }
        fputc('\n', f);
    }
    free(w);
}
