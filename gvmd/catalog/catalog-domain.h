/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * catalog-domain.h — domains gvmd knows and their disks (tables domains and
 * disks of db/schema/0001-init.sql; catalog-domain.c).  A disk maps a
 * target ("vda") to the catalogued image that is its active layer.
 *
 * Errors as in catalog.h (NotFound, AlreadyExists, InUse, Internal).
 */
#ifndef GVMD_CATALOG_DOMAIN_H
#define GVMD_CATALOG_DOMAIN_H

#include <stdint.h>

#include "catalog.h"

struct catalog_disk {
    char *target;
    int64_t image_id;
};

struct catalog_domain {
    int64_t id;                 /* set by catalog_domain_add             */
    char *name;
    char *uuid;
    int64_t created;
    struct catalog_disk *disks; /* ordered by target                     */
    size_t ndisks;
};
void catalog_domain_clear(struct catalog_domain *d);
static inline void catalog_domain_clearp(struct catalog_domain *d) { catalog_domain_clear(d); }
#define _cleanup_catdom_ _cleanup_(catalog_domain_clearp)
void catalog_domains_free(struct catalog_domain *d, size_t n);

/* Insert the domain and its disks in one transaction; sets d->id.
 * AlreadyExists if the uuid is taken; InUse if an image is already another
 * domain's disk; NotFound if an image id is unknown. */
int catalog_domain_add(struct catalog *cat, struct catalog_domain *d,
                       struct gvm_error *err);
/* By uuid, else by name (NotFound if neither; InvalidParams-free: the
 * message names the key). */
int catalog_domain_find(struct catalog *cat, const char *key,
                        struct catalog_domain *out, struct gvm_error *err);
int catalog_domain_get(struct catalog *cat, int64_t id,
                       struct catalog_domain *out, struct gvm_error *err);
int catalog_domain_list(struct catalog *cat, struct catalog_domain **out,
                        size_t *n, struct gvm_error *err);
/* Remove the domain and its disks.  InUse if it has snapshots. */
int catalog_domain_remove(struct catalog *cat, int64_t id,
                          struct gvm_error *err);
/* Make image_id the active image of the domain's disk target. */
int catalog_domain_set_disk(struct catalog *cat, int64_t domain_id,
                            const char *target, int64_t image_id,
                            struct gvm_error *err);
/* Every disk whose active image is from now uses to (an active commit
 * made `to` the active layer).  No disk on from is fine. */
int catalog_domain_move_disks(struct catalog *cat, int64_t from, int64_t to,
                              struct gvm_error *err);
/* 1 and *domain_id / *target (caller frees) if image_id is some domain's
 * disk, 0 if not, -1 on error.  target may be NULL. */
int catalog_domain_of_image(struct catalog *cat, int64_t image_id,
                            int64_t *domain_id, char **target,
                            struct gvm_error *err);

#endif
