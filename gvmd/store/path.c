/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * path.c — paths inside a volume.
 *
 * A volume path is the name of a file relative to the volume's root, as a
 * client writes it in "VOLUME:PATH" or in a gluster URI.  path_check() is the
 * gate at the RPC edge; the stores still refuse (with -EXDEV/-ELOOP) a path
 * that escapes through a symlink, which no string check can see.
 *
 * "." segments ("./a", "a/./b") are REFUSED rather than normalised: a path is
 * also a catalogue key (UNIQUE(volume_id, path)), and accepting two spellings
 * of one file would let the same image be catalogued twice.  For the same
 * reason empty segments ("a//b", "a/") are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "text.h"

int path_check(const char *path, const char *param, struct gvm_error *err)
{
    if (!path || !*path) {
        gvm_error_param(err, param, "The path in '%s' is empty.", param);
        return -EINVAL;
    }
    /* A C string cannot carry a NUL; JSON "\u0000" is refused by the JSON
     * decoder (jansson without JSON_ALLOW_NUL), so no NUL reaches here. */
    size_t len = strlen(path);
    if (len > GVM_MAX_STRING) {
        gvm_error_param(err, param,
                        "The path in '%s' is %zu bytes long; at most %d are "
                        "allowed.", param, len, GVM_MAX_STRING);
        return -EINVAL;
    }
    /* Paths go into qcow2 headers, logs, libvirt XML and terminals. */
    size_t at;
    enum text_problem tp = text_check(path, len, &at);
    if (tp != TEXT_OK) {
        gvm_error_param(err, param, "The path in '%s' %s (byte %zu).", param,
                        text_problem_says(tp), at);
        return -EINVAL;
    }
    if (path[0] == '/') {
        gvm_error_param(err, param,
                        "The path '%s' in '%s' is absolute; volume paths are "
                        "relative to the volume root.", path, param);
        return -EINVAL;
    }
    const char *seg = path;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 0) {
            gvm_error_param(err, param,
                            "The path '%s' in '%s' has an empty segment "
                            "(a doubled or trailing '/').", path, param);
            return -EINVAL;
        }
        if (n == 1 && seg[0] == '.') {
            gvm_error_param(err, param,
                            "The path '%s' in '%s' has a '.' segment; write "
                            "the path without it.", path, param);
            return -EINVAL;
        }
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            gvm_error_param(err, param,
                            "The path '%s' in '%s' has a '..' segment; paths "
                            "may not leave the volume.", path, param);
            return -EINVAL;
        }
        if (!end)
            break;
        seg = end + 1;
    }
    return 0;
}

size_t path_protocol_len(const char *name)
{
    size_t n = strcspn(name, ":/");

    return name[n] == ':' ? n : 0;
}

char *path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup("");
    return strndup(path, (size_t)(slash - path));
}

/*
 * Join the image's directory and the name, then normalise: "" and "."
 * segments vanish, ".." removes the previous segment and may not climb above
 * the volume root.  An absolute name is not ours to resolve (-EXDEV: the
 * caller maps absolute names, gluster URIs and json: names itself).
 */
int path_resolve_relative(const char *image_path, const char *name, char **out)
{
    *out = NULL;
    if (!name || !*name)
        return -EINVAL;
    if (name[0] == '/')
        return -EXDEV;

    _cleanup_free_ char *dir = path_dirname(image_path);
    if (!dir)
        return -ENOMEM;
    size_t total = strlen(dir) + 1 + strlen(name) + 1;
    _cleanup_free_ char *joined = malloc(total);
    _cleanup_free_ char *res = malloc(total);
    if (!joined || !res)
        return -ENOMEM;
    snprintf(joined, total, "%s%s%s", dir, *dir ? "/" : "", name);

    size_t rlen = 0;
    char *save = NULL;
    for (char *seg = strtok_r(joined, "/", &save); seg;
         seg = strtok_r(NULL, "/", &save)) {
        if (strcmp(seg, ".") == 0)
            continue;
        if (strcmp(seg, "..") == 0) {
            if (rlen == 0)
                return -EXDEV;
            while (rlen > 0 && res[rlen - 1] != '/')
                rlen--;
            if (rlen > 0)
                rlen--;     /* the '/' before the removed segment */
            continue;
        }
        if (rlen > 0)
            res[rlen++] = '/';
        size_t n = strlen(seg);
        memcpy(res + rlen, seg, n);
        rlen += n;
    }
    res[rlen] = '\0';
    if (rlen == 0)
        return -EINVAL;     /* names the volume root itself */
    if (rlen > GVM_MAX_STRING)
        return -ENAMETOOLONG;
    *out = steal_pointer(&res);
    return 0;
}

char *path_normalize(const char *a, const char *b)
{
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0;
    char *out = malloc(la + lb + 2), *o = out;

    if (!out)
        return NULL;
    for (int part = 0; part < 2; part++) {
        const char *p = part ? b : a;

        while (p && *p) {
            const char *e;
            size_t len;

            while (*p == '/')
                p++;
            e = strchrnul(p, '/');
            len = (size_t)(e - p);
            if (len && !(len == 1 && *p == '.')) {
                if (o != out)
                    *o++ = '/';
                memcpy(o, p, len);
                o += len;
            }
            p = e;
        }
    }
    *o = '\0';
    return out;
}
