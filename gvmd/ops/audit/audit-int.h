/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * audit-int.h — chain-audit's internal header, shared by its pieces (not
 * for use outside gvmd/audit*.c; the service interface is audit.h):
 *
 *   audit.c         the layers: visiting, reading each one's header,
 *                   comparing it with its catalog row; the JSON pieces of
 *                   the result; the scope's roots and audit_run();
 *   audit-domain.c  the disks of attached domains: the catalog's against
 *                   libvirt's domain XML;
 *   audit-fix.c     adopt-storage: the catalog brought into line, in one
 *                   transaction.
 */
#ifndef GVMD_AUDIT_INT_H
#define GVMD_AUDIT_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "catalog-domain.h"
#include "catalog-image.h"
#include "image.h"
#include "resolve.h"

#define NONE SIZE_MAX

/* What was found different about a layer (bits). */
enum {
    D_FORMAT     = 0x01,
    D_VSIZE      = 0x02,
    D_CSIZE      = 0x04,
    D_BACKING    = 0x08,
    D_MISSING    = 0x10,
    D_NOTCAT     = 0x20,
    D_UNREADABLE = 0x40,
};

enum layer_state { L_UNREAD, L_PRESENT, L_MISSING, L_UNREADABLE };

struct layer {
    int64_t volume_id;
    char *volume;
    char *path;
    char *name;                 /* "VOLUME:PATH"                          */
    struct gvm_store *store;    /* borrowed from the volume registry      */
    bool catalogued;
    struct catalog_image row;   /* when catalogued                        */
    enum layer_state state;
    char *read_error;           /* L_UNREADABLE: the engine's sentence    */
    struct img_info info;       /* L_PRESENT                              */
    size_t bidx;                /* the layer the header's backing name
                                   resolves to, NONE                       */
    char *bresolve_error;       /* why it does not resolve                */
    size_t cbidx;               /* the layer of row.backing_id, NONE      */
    unsigned diffs;
    bool imported;              /* adopt-storage catalogued it            */
    bool qcow2_in_raw;          /* catalogued raw, content starts with a
                                   qcow2 header (a guest can write one)   */
    bool overlay;               /* found beside a catalogued layer, backing
                                   onto it (chain-check.h)                */
};

/* A disk of an attached domain, as the catalog and the XML see it. */
struct disk {
    int64_t domain_id;
    char *domain;
    char *target;
    int64_t cat_image;          /* the catalog's active image, 0: none    */
    bool libvirt;               /* libvirt knows the domain: XML compared */
    bool in_xml;                /* the domain XML has this target         */
    size_t xml_idx;             /* layer of the XML's <source>, NONE      */
    char *xml_desc;             /* the <source> as written, for messages  */
    json_t *xml_chain;          /* names of its <backingStore>s           */
    bool adoptable;             /* adopt-storage points the disk at xml_idx */
};

struct audit {
    struct gvmd *d;
    struct resolve_ctx ctx;
    struct layer *l;
    size_t n, cap;
    struct disk *disks;
    size_t ndisks;
    json_t *diffs;
    json_t *domains;
    json_t *fixed;
    json_t *unfixed;
};

/* ---- audit.c ----------------------------------------------------------------- */

/* IMAGE as an audit names it: {"id": N|null, "name": "VOLUME:PATH"}. */
json_t *audit_layer_ref(const struct layer *L);
/* {"domain", "target"} of a disk. */
json_t *audit_layer_disk_ref(const struct disk *k);
/*
 * Append {"what", "image", "disk", "catalog", "storage", "domain",
 * "message"} to list; the json_t arguments are stolen (NULL: null).
 */
int audit_layer_diff(json_t *list, const char *what, json_t *image,
               json_t *disk, json_t *catalog, json_t *storage,
               json_t *domain, struct gvm_error *err, const char *fmt, ...)
    GVM_PRINTF(9, 10);
/* {"what", "image", "disk", "action"} for the fixed/unfixed lists (the
 * json_t arguments are stolen). */
int audit_layer_action(json_t *list, const char *what, json_t *image,
                 json_t *disk, struct gvm_error *err, const char *fmt, ...)
    GVM_PRINTF(6, 7);
/* The layer for volume+path, added (unread) if new.  *idx is its index;
 * the layer array may move. */
int audit_layer_visit(struct audit *a, const char *volume, const char *path,
                size_t *idx, struct gvm_error *err);
/* The same for a catalogued image. */
int audit_layer_visit_id(struct audit *a, int64_t id, size_t *idx,
                   struct gvm_error *err);
/* Catalog id of layer j (0 if NONE or not catalogued). */
int64_t audit_layer_id(const struct audit *a, size_t j);
/* Name of layer j, "no image" for NONE. */
const char *audit_layer_name(const struct audit *a, size_t j);

/* ---- audit-domain.c ---------------------------------------------------------- */

/* Add the catalog's disks of dom, then its XML's if libvirt knows it, and
 * visit the layers they name; dom's entry goes to a->domains. */
int audit_domain_visit(struct audit *a, const struct catalog_domain *dom,
                       struct gvm_error *err);
/* Differences between disk k as the catalog records it and its XML. */
int audit_domain_compare(struct audit *a, struct disk *k, struct gvm_error *err);

/* ---- audit-fix.c ------------------------------------------------------------- */

/* adopt-storage: fix what can be fixed in one catalog transaction, listing
 * it in a->fixed and the rest in a->unfixed; rolled back whole on error. */
int audit_fix_adopt(struct audit *a, struct gvm_error *err);

#endif
