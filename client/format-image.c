/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format-image.c — images for a person: one image as "label: value" lines
 * with its backing chain one line per layer (image-info, image-create,
 * image-import), and the catalog as a table (image-list).
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"

static char *image_name(const json_t *img)
{
    char *s = NULL;

    if (asprintf(&s, "%s:%s", json_string_value(json_object_get(img, "volume")),
                 json_string_value(json_object_get(img, "path"))) < 0)
        return NULL;
    return s;
}

/* "base.qcow2 (qcow2)": the backing file as the header names it. */
static char *backing(const json_t *img)
{
    const char *b = json_string_value(json_object_get(img, "backing-filename"));
    const char *fmt = json_string_value(json_object_get(img, "backing-format"));
    char *s = NULL;

    if (!b)
        return strdup(HUMAN_NONE);
    if (asprintf(&s, fmt ? "%s (%s)" : "%s", b, fmt) < 0)
        return NULL;
    return s;
}

/* "vm1 vda" when the image is a domain's disk. */
static char *disk(const json_t *img)
{
    const char *dom = json_string_value(json_object_get(img, "domain"));
    const char *d = json_string_value(json_object_get(img, "disk"));
    char *s = NULL;

    if (!dom)
        return strdup(HUMAN_NONE);
    if (asprintf(&s, "%s %s", dom, d ? d : "") < 0)
        return NULL;
    return s;
}

static char *state(const json_t *img)
{
    json_t *dirty = json_object_get(img, "dirty");
    json_t *corrupt = json_object_get(img, "corrupt");

    if (!json_is_boolean(dirty) || !json_is_boolean(corrupt))
        return strdup(HUMAN_NONE);
    if (json_is_true(corrupt))
        return strdup(json_is_true(dirty) ? "corrupt, dirty" : "corrupt");
    return strdup(json_is_true(dirty) ? "dirty" : "clean");
}

static char *children(const json_t *img, struct print_opts *po)
{
    json_t *c = json_object_get(img, "children"), *id;
    char *out = NULL;
    size_t i;

    json_array_foreach(c, i, id) {
        char *n = NULL;
        if (asprintf(&n, "%s%s%s", out ? out : "", out ? "\n" : "",
                     format_image_name(po, id)) >= 0) {
            free(out);
            out = n;
        }
    }
    return out ? out : strdup(HUMAN_NONE);
}

static char *format_line(const json_t *img, const struct print_opts *po)
{
    const char *fmt = json_string_value(json_object_get(img, "format"));
    const char *compat = json_string_value(json_object_get(img, "compat"));
    char *cl = format_size(json_object_get(img, "cluster-size"), po);
    char *s = NULL;

    if (fmt && !strcmp(fmt, "qcow2")) {
        if (asprintf(&s, "qcow2 (compat %s, clusters of %s)",
                     compat ? compat : HUMAN_NONE, cl) < 0)
            s = NULL;
    } else {
        s = strdup(fmt ? fmt : HUMAN_NONE);
    }
    free(cl);
    return s;
}

/* The chain, top to base, one line per layer. */
static void chain(FILE *f, const json_t *layers, const struct print_opts *po)
{
    struct table *t = table_new(5, "IMAGE", "FORMAT", "VIRTUAL", "ALLOCATED",
                                "BACKING");
    size_t i;
    json_t *l;

    table_elide(t, 0);
    table_elide(t, 4);
    table_min_width(t, 2, HUMAN_SIZE_WIDTH);
    table_min_width(t, 3, HUMAN_SIZE_WIDTH);
    json_array_foreach(layers, i, l) {
        table_add(t);
        table_set(t, 0, image_name(l));
        table_set(t, 1, format_str(json_object_get(l, "format")));
        table_set(t, 2, format_size(json_object_get(l, "virtual-size"), po));
        table_set(t, 3, format_size(json_object_get(l, "actual-size"), po));
        table_set(t, 4, format_str(json_object_get(l, "backing-filename")));
    }
    fputs("backing chain (top to base):\n", f);
    table_print(f, t, 2, TABLE_WIDTH);
    table_free(t);
}

void format_image(FILE *f, const json_t *img, struct print_opts *po)
{
    struct kv kv = { 0 };
    json_t *id = json_object_get(img, "id");
    char *name = image_name(img), *title = NULL;

    if (json_is_integer(id)) {
        if (asprintf(&title, "%s (id %" JSON_INTEGER_FORMAT ")", name,
                     json_integer_value(id)) < 0)
            title = NULL;
        free(name);
    } else {
        if (asprintf(&title, "%s (not catalogued)", name) < 0)
            title = NULL;
        free(name);
    }
    format_kv(&kv, "image", title);
    format_kv(&kv, "format", format_line(img, po));
    format_kv(&kv, "virtual size", format_size(json_object_get(img, "virtual-size"), po));
    format_kv(&kv, "allocated", format_size(json_object_get(img, "actual-size"), po));
    format_kv(&kv, "backing", backing(img));
    format_kv(&kv, "children", children(img, po));
    format_kv(&kv, "disk of", disk(img));
    format_kv(&kv, "state", state(img));
    format_kv(&kv, "internal snapshots",
              print_value(NULL, json_object_get(img, "snapshots"), po));
    format_kv_print(f, &kv, 0);
    if (json_array_size(json_object_get(img, "chain")) > 0)
        chain(f, json_object_get(img, "chain"), po);
}

void format_image_list(FILE *f, const json_t *list, struct print_opts *po)
{
    struct table *t = table_new(6, "ID", "IMAGE", "FORMAT", "SIZE", "BACKING",
                                "DISK OF");
    size_t i;
    json_t *img;

    if (json_array_size(list) == 0) {
        fputs(HUMAN_NONE "\n", f);
        table_free(t);
        return;
    }
    table_elide(t, 1);
    table_elide(t, 4);
    json_array_foreach(list, i, img) {
        table_add(t);
        table_set(t, 0, print_value(NULL, json_object_get(img, "id"), po));
        table_set(t, 1, image_name(img));
        table_set(t, 2, format_str(json_object_get(img, "format")));
        table_set(t, 3, format_size(json_object_get(img, "virtual-size"), po));
        table_set(t, 4, format_str(json_object_get(img, "backing-filename")));
        table_set(t, 5, disk(img));
    }
    table_print(f, t, 0, TABLE_WIDTH);
    table_free(t);
}
