/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * domain-attach.h — recording a domain and its disks in the catalog
 * (domain-attach.c).
 */
#ifndef GVMD_DOMAIN_ATTACH_H
#define GVMD_DOMAIN_ATTACH_H

#include <stddef.h>
#include <stdint.h>

#include "catalog-domain.h"
#include "gvmd.h"

/* Attach the domain key (a uuid, or a name it gets a new uuid for) with
 * disks targets[i] on catalogued images ids[i]; *out: the catalogued
 * domain (clear it).  AlreadyExists when it is attached; InUse when an
 * image is frozen by a snapshot. */
int domain_attach(struct gvmd *d, const char *key, char *const *targets,
                  const int64_t *ids, size_t n, struct catalog_domain *out,
                  struct gvm_error *err);

/* Attach the libvirt domain key (name or uuid) from its XML, as
 * domain-attach without disks does, and fill *out with the catalogued
 * domain (clear it).  Images of its disks not yet catalogued are imported
 * with their backing chains. */
int domain_attach_libvirt(struct gvmd *d, const char *key,
                          struct catalog_domain *out, struct gvm_error *err);

/* Free an array of n strings (NULL entries allowed). */
void domain_attach_targets_free(char **t, size_t n);

#endif
