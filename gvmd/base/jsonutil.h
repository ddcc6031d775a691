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

#endif
