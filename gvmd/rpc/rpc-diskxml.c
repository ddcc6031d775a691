/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-diskxml.c — domain-disk-xml: which image, in which format, as which
 * target; the <disk> element itself is virt-diskxml.c's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc-params.h"
#include "image.h"
#include "jsonutil.h"
#include "resolve.h"
#include "rpc.h"
#include "virt-diskxml.h"

/* A libvirt target dev name: letters and digits (vda, sdb, hdc, xvda1). */
static bool target_valid(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
              (t[i] >= '0' && t[i] <= '9')))
            return false;
    return true;
}

/* The format of an image that is not catalogued: qcow2 by its magic, else
 * raw (as libvirt would be told; it never probes). */
static int probe_format(struct resolved *r, const char **format,
                        struct gvm_error *err)
{
    _cleanup_free_ char *name = resolve_name(r->vol.name, r->path);
    enum img_format fmt;
    int rc = img_probe(r->store, r->path, &fmt);

    if (rc < 0) {
        gvm_error_set_errno(err, gvm_error_class_from_errno(rc), rc,
                            "Cannot read image %s", name ? name : r->path);
        return -1;
    }
    *format = img_format_name(fmt);
    return 0;
}

int rpc_domain_disk_xml(struct gvmd *d, struct rpc_call *call,
                        const struct rpc_params_domain_disk_xml *p,
                        json_t **result, struct gvm_error *err)
{
    struct resolved r = { 0 };
    const char *target = p->target;
    const char *mode = p->mode ? p->mode : "native";
    const char *format;
    _cleanup_free_ char *buf = NULL;
    int rc = -1;

    (void)call;
    if (!target_valid(target)) {
        gvm_error_param(err, "target", "The target \"%s\" is not a disk name "
                        "such as vda (letters and digits, at most 32).", target);
        return -1;
    }
    if (strcmp(mode, "native") != 0 && strcmp(mode, "fuse") != 0) {
        gvm_error_param(err, "mode", "The mode \"%s\" is neither \"native\" "
                        "nor \"fuse\".", mode);
        return -1;
    }
    if (resolve_param(d, p->raw, "image", &r, err) < 0)
        goto out;
    if (r.catalogued) {
        format = r.row.format;
    } else {
        struct gvm_stat st;
        _cleanup_free_ char *name = resolve_name(r.vol.name, r.path);
        int e = r.store->ops->stat(r.store, r.path, &st);

        if (e < 0 || !st.is_reg) {
            if (e == -ENOENT || e == 0)
                gvm_error_set(err, GVM_ERR_NOT_FOUND, "There is no image %s "
                              "(neither catalogued nor on storage).",
                              name ? name : r.path);
            else
                gvm_error_set_errno(err, gvm_error_class_from_errno(e), e,
                                    "Cannot look at image %s", name ? name : r.path);
            goto out;
        }
        if (probe_format(&r, &format, err) < 0)
            goto out;
    }

    if (virt_diskxml_build(&r.vol, r.path, format, target,
                          strcmp(mode, "fuse") == 0, d->cfg.fuse_mount, &buf,
                          err) < 0)
        goto out;
    *result = json_pack("{ss}", "xml", buf);
    if (!*result) {
        gvm_error_oom(err);
        goto out;
    }
    rc = 0;
out:
    resolved_clear(&r);
    return rc;
}
