/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * error.c — struct gvm_error: the one place a failure is described.
 *
 * The innermost layer that knows the cause fills the error; outer layers
 * that call gvm_error_set() again do not overwrite it, so the client sees
 * the most precise sentence, not a generic wrapper.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "jsonutil.h"
#include "util.h"

static const struct {
    const char *name;
    int code;
} classes[] = {
#define GVM_X_TABLE(id, name, code) [GVM_ERR_##id] = { name, code },
    GVM_ERROR_CLASSES(GVM_X_TABLE)
#undef GVM_X_TABLE
};

const char *gvm_error_class_name(enum gvm_error_class cls)
{
    if ((unsigned)cls >= GVM_ERR__COUNT)
        return "Internal";
    return classes[cls].name;
}

int gvm_error_class_code(enum gvm_error_class cls)
{
    if ((unsigned)cls >= GVM_ERR__COUNT || cls == GVM_ERR_NONE)
        return GVM_RPC_INTERNAL;
    return classes[cls].code;
}

void gvm_error_clear(struct gvm_error *err)
{
    err->cls = GVM_ERR_NONE;
    err->message[0] = '\0';
    err->param[0] = '\0';
    err->errnum = 0;
}

int gvm_error_oom(struct gvm_error *err)
{
    gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory.");
    return -1;
}

static void vset(struct gvm_error *err, enum gvm_error_class cls,
                 const char *fmt, va_list ap) GVM_PRINTF(3, 0);
static void vset(struct gvm_error *err, enum gvm_error_class cls,
                 const char *fmt, va_list ap)
{
    err->cls = cls == GVM_ERR_NONE ? GVM_ERR_INTERNAL : cls;
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    err->param[0] = '\0';
    err->errnum = 0;
}

void gvm_error_set(struct gvm_error *err, enum gvm_error_class cls,
                   const char *fmt, ...)
{
    va_list ap;

    if (!err || gvm_error_isset(err))
        return;
    va_start(ap, fmt);
    vset(err, cls, fmt, ap);
    va_end(ap);
}

void gvm_error_set_errno(struct gvm_error *err, enum gvm_error_class cls,
                         int neg_errno, const char *fmt, ...)
{
    va_list ap;
    size_t len;
    int e = neg_errno < 0 ? -neg_errno : neg_errno;

    if (!err || gvm_error_isset(err))
        return;
    va_start(ap, fmt);
    vset(err, cls, fmt, ap);
    va_end(ap);
    len = strlen(err->message);
    /* Drop a trailing full stop so the errno text reads as one sentence. */
    if (len > 0 && err->message[len - 1] == '.')
        err->message[--len] = '\0';
    snprintf(err->message + len, sizeof(err->message) - len, ": %s",
             strerror(e));
    err->errnum = e;
}

void gvm_error_prepend(struct gvm_error *err, const char *fmt, ...)
{
    char cause[GVM_ERROR_MSG_MAX], text[GVM_ERROR_MSG_MAX];
    va_list ap;

    if (!err)
        return;
    /* Copied first: the message is rewritten from itself. */
    memcpy(cause, err->message, sizeof(cause));
    cause[sizeof(cause) - 1] = '\0';
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    err->cls = gvm_error_isset(err) ? err->cls : GVM_ERR_INTERNAL;
    snprintf(err->message, sizeof(err->message), "%s%s", text, cause);
    err->param[0] = '\0';
    err->errnum = 0;
}

void gvm_error_param(struct gvm_error *err, const char *param,
                     const char *fmt, ...)
{
    va_list ap;

    if (!err || gvm_error_isset(err))
        return;
    va_start(ap, fmt);
    vset(err, GVM_ERR_INVALID_PARAMS, fmt, ap);
    va_end(ap);
    snprintf(err->param, sizeof(err->param), "%s", param ? param : "");
}

enum gvm_error_class gvm_error_class_from_errno(int neg_errno)
{
    switch (neg_errno < 0 ? -neg_errno : neg_errno) {
    case ENOENT:
        return GVM_ERR_NOT_FOUND;
    case EEXIST:
        return GVM_ERR_ALREADY_EXISTS;
    case ENOSPC:
    case EDQUOT:
        return GVM_ERR_NO_SPACE;
    case EACCES:
    case EPERM:
        return GVM_ERR_PERMISSION;
    case EBUSY:
        return GVM_ERR_BUSY;
    case EOPNOTSUPP:
#if ENOTSUP != EOPNOTSUPP
    case ENOTSUP:
#endif
        return GVM_ERR_UNSUPPORTED;
    default:
        return GVM_ERR_STORAGE;
    }
}

json_t *gvm_error_to_json(const struct gvm_error *err)
{
    enum gvm_error_class cls = gvm_error_isset(err) ? err->cls : GVM_ERR_INTERNAL;
    json_t *data = json_pack("{s:s}", "class", gvm_error_class_name(cls));

    if (!data)
        return NULL;
    if ((err->param[0] &&
         gvm_json_set(data, "param", json_string(err->param)) < 0) ||
        (err->errnum &&
         gvm_json_set(data, "errno", json_integer(err->errnum)) < 0)) {
        json_decref(data);
        return NULL;
    }
    return json_pack("{s:i, s:s, s:o}", "code", gvm_error_class_code(cls),
                     "message",
                     gvm_error_isset(err) ? err->message
                                          : "Internal error without a message.",
                     "data", data);
}
