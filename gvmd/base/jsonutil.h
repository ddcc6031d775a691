/* SPDX-License-Identifier: GPL-2.0-or-later */
/* jsonutil.h — jansson helpers shared by daemon and client. */
#ifndef GVMD_JSONUTIL_H
#define GVMD_JSONUTIL_H

#include <jansson.h>
#include "util.h"

/* jansson >= 2.9 already defines json_decrefp(): use our own name. */
static inline void gvm_json_decrefp(json_t **j) { if (*j) json_decref(*j); }
#define _cleanup_json_ _cleanup_(gvm_json_decrefp)

/* A JSON string of s, or null when s is NULL. */
static inline json_t *gvm_json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Checked setters.  jansson's *_new functions take v and free it when they
 * fail, and a NULL v (its own allocation failed) makes them fail: a caller
 * that ignores the result silently drops a member of a reply, hence
 * warn_unused_result.  Both return 0, or -1 on either failure. */
static inline __attribute__((warn_unused_result))
int gvm_json_set(json_t *o, const char *key, json_t *v)
{
    return v && json_object_set_new(o, key, v) == 0 ? 0 : -1;
}

static inline __attribute__((warn_unused_result))
int gvm_json_append(json_t *a, json_t *v)
{
    return v && json_array_append_new(a, v) == 0 ? 0 : -1;
}

#endif
