/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * audit.h — chain-audit (audit.c): compare, for the chains in scope, what
 * the catalog records, what the qcow2 headers on storage say and, for the
 * disks of attached domains libvirt knows, what the domain XML says; and
 * with adopt-storage bring the catalog into line with storage (and with the
 * domain XML for which image is a disk's active layer).
 *
 * Storage is only ever read (every layer is opened read-only, without its
 * backing chain); adopt-storage changes catalog rows only, in one catalog
 * transaction.  Blocks on storage and libvirt: worker threads only.
 */
#ifndef GVMD_AUDIT_H
#define GVMD_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "gvmd.h"

struct audit_scope {
    int64_t image_id;        /* > 0: this image's chain                  */
    const char *domain;      /* else this attached domain (name or uuid) */
                             /* neither: every image and every domain    */
    bool adopt_storage;      /* fix: "adopt-storage"                     */
};

/*
 * Run the audit and build the result object PROTOCOL.md describes
 * ({"differences", "checked", "domains", "fixed", "unfixed"}).  Returns 0
 * with *result set (differences are results, not errors), or -1 with err
 * set: NotFound for an unknown domain, Busy when adopt-storage would touch
 * an image a job holds, Internal/catalog errors (the fix is then rolled
 * back whole).
 */
int audit_run(struct gvmd *d, const struct audit_scope *scope, json_t **result,
              struct gvm_error *err);

#endif
