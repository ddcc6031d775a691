/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format-snapshot.c — snapshots for a person: the list as a tree (as
 * virsh snapshot-list --tree draws it, the current snapshot marked), one
 * snapshot as "label: value" lines with its disks, and what a revert made
 * active (asked of gvmd with domain-list: the result is the snapshot, whose
 * overlays are the old branch's).
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"

static bool is_named(const json_t *snap, const char *name)
{
    const char *n = json_string_value(json_object_get(snap, "name"));

    return n && name && !strcmp(n, name);
}

static bool in_list(const json_t *list, const char *name)
{
    size_t i;
    json_t *s;

    json_array_foreach(list, i, s)
        if (is_named(s, name))
            return true;
    return false;
}

/* "vda,vdb", or the number of images of a snapshot without a domain. */
static char *disk_targets(const json_t *snap)
{
    json_t *disks = json_object_get(snap, "disks"), *d;
    char *out = NULL;
    size_t i;

    json_array_foreach(disks, i, d) {
        const char *t = json_string_value(json_object_get(d, "target"));
        char *n = NULL;
        if (!t) {
            free(out);
            if (asprintf(&out, "%zu image%s", json_array_size(disks),
                         json_array_size(disks) == 1 ? "" : "s") < 0)
                out = NULL;
            return out;
        }
        if (asprintf(&n, "%s%s%s", out ? out : "", out ? "," : "", t) >= 0) {
            free(out);
            out = n;
        }
    }
    return out ? out : strdup(HUMAN_NONE);
}

struct tree {
    struct table *t;
    const json_t *list;
    bool domains;               /* a DOMAIN column: more than one domain */
};

/* Add snap and, below it, its children; prefix is what goes before "+- "
 * on this depth's lines. */
static void add_subtree(const struct tree *tr, const json_t *snap,
                        const char *prefix, bool root, bool last)
{
    const char *name = json_string_value(json_object_get(snap, "name"));
    char *cell = NULL, *sub = NULL;
    size_t i, n = 0, k = 0, col = 0;
    json_t *c;

    if (asprintf(&cell, "%s%s%s%s", prefix, root ? "" : "+- ", name,
                 json_is_true(json_object_get(snap, "current")) ? " (current)" : "") < 0)
        return;
    table_add(tr->t);
    table_set(tr->t, col++, cell);
    table_set(tr->t, col++, format_time(json_object_get(snap, "created")));
    if (tr->domains)
        table_set(tr->t, col++, format_str(json_object_get(snap, "domain")));
    table_set(tr->t, col++, disk_targets(snap));
    table_set(tr->t, col, format_str(json_object_get(snap, "description")));

    if (asprintf(&sub, "%s%s", prefix, root ? "" : last ? "   " : "|  ") < 0)
        return;
    json_array_foreach(tr->list, i, c)
        n += json_equal(json_object_get(c, "parent"), json_object_get(snap, "name"));
    json_array_foreach(tr->list, i, c)
        if (json_equal(json_object_get(c, "parent"), json_object_get(snap, "name")))
            add_subtree(tr, c, sub, false, ++k == n);
    free(sub);
}

void format_snapshot_list(FILE *f, const json_t *list, struct print_opts *po)
{
    static const char *const with[] = { "SNAPSHOT", "CREATED", "DOMAIN", "DISKS",
                                        "DESCRIPTION" };
    static const char *const without[] = { "SNAPSHOT", "CREATED", "DISKS",
                                           "DESCRIPTION" };
    struct tree tr = { .list = list };
    size_t i;
    json_t *s;

    if (json_array_size(list) == 0) {
        fputs(HUMAN_NONE "\n", f);
        return;
    }
    json_array_foreach(list, i, s)
        tr.domains = tr.domains || !json_equal(json_object_get(s, "domain"),
                                    json_object_get(json_array_get(list, 0), "domain"));
    tr.t = tr.domains ? table_new_array(ARRAY_SIZE(with), with)
                      : table_new_array(ARRAY_SIZE(without), without);
    table_elide(tr.t, tr.domains ? 4 : 3);
    /* Roots: no parent, or a parent the list leaves out (another image's). */
    json_array_foreach(list, i, s) {
        const char *p = json_string_value(json_object_get(s, "parent"));
        if (!p || !in_list(list, p))
            add_subtree(&tr, s, "", true, true);
    }
    table_print(f, tr.t, 0, TABLE_WIDTH);
    table_free(tr.t);
}

static void fields(FILE *f, const json_t *snap, struct print_opts *po)
{
    struct kv kv = { 0 };
    char *title = NULL;

    if (asprintf(&title, "%s (id %" JSON_INTEGER_FORMAT ")",
                 json_string_value(json_object_get(snap, "name")),
                 json_integer_value(json_object_get(snap, "id"))) < 0)
        title = NULL;
    format_kv(&kv, "snapshot", title);
    format_kv(&kv, "domain", format_str(json_object_get(snap, "domain")));
    format_kv(&kv, "parent", format_str(json_object_get(snap, "parent")));
    format_kv(&kv, "children", print_value(NULL, json_object_get(snap, "children"), po));
    format_kv(&kv, "created", format_time(json_object_get(snap, "created")));
    format_kv(&kv, "state", format_str(json_object_get(snap, "state")));
    format_kv(&kv, "current", strdup(json_is_true(json_object_get(snap, "current")) ?
                                     "yes" : "no"));
    format_kv(&kv, "description", format_str(json_object_get(snap, "description")));
    format_kv_print(f, &kv, 0);
}

void format_snapshot(FILE *f, const json_t *snap, struct print_opts *po)
{
    struct table *t = table_new(3, "TARGET", "FROZEN IMAGE", "OVERLAY");
    json_t *disks = json_object_get(snap, "disks"), *d;
    size_t i;

    fields(f, snap, po);
    table_elide(t, 1);
    table_elide(t, 2);
    json_array_foreach(disks, i, d)
        table_row(t, json_string_value(json_object_get(d, "target")),
                  json_string_value(json_object_get(d, "image-name")),
                  json_string_value(json_object_get(d, "overlay-name")));
    fputs("disks:\n", f);
    table_print(f, t, 2, TABLE_WIDTH);
    table_free(t);
}

void format_snapshot_revert(FILE *f, const json_t *snap, struct print_opts *po)
{
    const json_t *dom = json_object_get(snap, "domain");
    json_t *list, *d;
    size_t i;

    fields(f, snap, po);
    if (!json_is_string(dom))
        return;
    list = format_call(po, "domain-list", json_object());
    json_array_foreach(list, i, d)
        if (json_equal(json_object_get(d, "name"), (json_t *)dom)) {
            fputs("active images (new overlays on the snapshot's images):\n", f);
            format_domain_disks(f, json_object_get(d, "disks"), 2);
        }
    json_decref(list);
}
