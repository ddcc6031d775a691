/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-check.c — what the envelope checks before a handler runs: the
 * parameter specs of proto/methods.def parsed, the protocol's limits on
 * nesting and string length, and each call's params against its method's
 * spec (names, JSON types, required ones, op-id).
 */
#include <string.h>

#include "gvm-proto.h"
#include "imageref.h"
#include "rpc-check.h"

int rpc_check_parse_spec(struct method *m)
{
    const char *s = m->spec;
    size_t cap = 0;

    while (*s) {
        const char *tok, *colon;
        size_t len;
        struct pspec *p;

        while (*s == ' ')
            s++;
        if (!*s)
            break;
        tok = s;
        while (*s && *s != ' ')
            s++;
        len = (size_t)(s - tok);
        colon = memchr(tok, ':', len);
        if (!colon || colon == tok || (size_t)(colon - tok) + 2 > len ||
            !strchr("sibaojrRS", colon[1]) ||
            (size_t)(colon - tok) + 2 + (colon[2] == '?') != len) {
            log_error("methods.def: bad parameter spec '%.*s' of %s.",
                      (int)len, tok, m->wire);
            return -1;
        }
        if (m->nparams == cap) {
            struct pspec *n;

            cap = cap ? cap * 2 : 4;
            n = realloc(m->params, cap * sizeof(*n));
            if (!n)
                return -1;
            m->params = n;
        }
        p = &m->params[m->nparams++];
        p->name = strndup(tok, (size_t)(colon - tok));
        p->type = colon[1];
        p->optional = colon[2] == '?';
        if (!p->name)
            return -1;
    }
    return 0;
}

/* ---- limits ---------------------------------------------------------------- */

/* Deepest nesting of arrays/objects in buf, stopping early past limit.
 * Brackets inside strings do not count; the scan need not validate. */
unsigned rpc_check_depth(const char *buf, size_t len, unsigned limit)
{
    unsigned depth = 0, max = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];

        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = false;
            continue;
        }
        switch (ch) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (++depth > max) {
                max = depth;
                if (max > limit)
                    return max;
            }
            break;
        case ']':
        case '}':
            if (depth)
                depth--;
            break;
        default:
            break;
        }
    }
    return max;
}

/* Longest string (value or key) in v exceeds GVM_MAX_STRING?  Returns its
 * length, or 0 if all are within the limit. */
size_t rpc_check_overlong(json_t *v)
{
    const char *key;
    json_t *e;
    size_t i, n;

    switch (json_typeof(v)) {
    case JSON_STRING:
        n = json_string_length(v);
        return n > GVM_MAX_STRING ? n : 0;
    case JSON_ARRAY:
        json_array_foreach(v, i, e)
            if ((n = rpc_check_overlong(e)))
                return n;
        return 0;
    case JSON_OBJECT:
        json_object_foreach(v, key, e) {
            if ((n = strlen(key)) > GVM_MAX_STRING)
                return n;
            if ((n = rpc_check_overlong(e)))
                return n;
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- parameters ------------------------------------------------------------ */

static const char *type_name(char t)
{
    switch (t) {
    case 's': return "a string";
    case 'i': return "an integer";
    case 'b': return "a boolean";
    case 'a': return "an array";
    case 'o': return "an object";
    case 'r': return "an IMAGE reference (integer id or string)";
    case 'R': return "an IMAGE reference (integer id or string) or null";
    case 'S': return "a string or an integer";
    default:  return "any JSON value";
    }
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:  return "an object";
    case JSON_ARRAY:   return "an array";
    case JSON_STRING:  return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL:    return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:   return "a boolean";
    default:           return "null";
    }
}

static bool type_ok(char t, const json_t *v)
{
    switch (t) {
    case 's': return json_is_string(v);
    case 'i': return json_is_integer(v);
    case 'b': return json_is_boolean(v);
    case 'a': return json_is_array(v);
    case 'o': return json_is_object(v);
    case 'r':
    case 'S': return json_is_integer(v) || json_is_string(v);
    case 'R': return json_is_integer(v) || json_is_string(v) || json_is_null(v);
    default:  return true;
    }
}

/* Shorten a client-supplied name for a message (it may be 4096 bytes). */
int rpc_check_params(const struct method *m, json_t *params,
                     char **op_id, struct gvm_error *err)
{
    const char *key;
    json_t *v;

    json_object_foreach(params, key, v) {
        const struct pspec *p = NULL;

        if (!strcmp(key, "op-id") && (m->flags & GVM_M_MUTATING)) {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                gvm_error_param(err, "op-id",
                                "Parameter 'op-id' of %s must be a non-empty string, not %s.",
                                m->wire, json_is_string(v) ? "an empty one"
                                                           : json_type_name(v));
                return -1;
            }
            continue;
        }
        for (size_t i = 0; i < m->nparams; i++) {
            if (!strcmp(m->params[i].name, key)) {
                p = &m->params[i];
                break;
            }
        }
        if (!p) {
            gvm_error_param(err, key, "Unknown parameter '" NAME_FMT "' for %s.",
                            NAME_ARG(key), m->wire);
            return -1;
        }
        if (!type_ok(p->type, v)) {
            gvm_error_param(err, p->name,
                            "Parameter '%s' of %s must be %s, not %s.",
                            p->name, m->wire, type_name(p->type),
                            json_type_name(v));
            return -1;
        }
        if ((p->type == 'r' || p->type == 'R') && !json_is_null(v)) {
            struct imageref ref;

            memset(&ref, 0, sizeof(ref));
            if (imageref_parse_json(v, p->name, &ref, err) < 0) {
                /* imageref fills err naming the parameter; make sure. */
                gvm_error_param(err, p->name, "Parameter '%s' of %s is not a valid IMAGE reference.",
                                p->name, m->wire);
                imageref_clear(&ref);
                return -1;
            }
            imageref_clear(&ref);
        }
    }
    for (size_t i = 0; i < m->nparams; i++) {
        if (!m->params[i].optional && !json_object_get(params, m->params[i].name)) {
            gvm_error_param(err, m->params[i].name,
                            "Missing required parameter '%s' (%s) for %s.",
                            m->params[i].name, type_name(m->params[i].type),
                            m->wire);
            return -1;
        }
    }
    v = json_object_get(params, "op-id");
    if (v && (m->flags & GVM_M_MUTATING)) {
        *op_id = strdup(json_string_value(v));
        if (!*op_id) {
            gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
            return -1;
        }
        /* Handlers see only their own parameters. */
        json_object_del(params, "op-id");
    }
    return 0;
}
