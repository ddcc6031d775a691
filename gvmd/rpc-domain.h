/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-domain.h — what rpc-domain.c offers besides its RPC handlers.
 */
#ifndef GVMD_RPC_DOMAIN_H
#define GVMD_RPC_DOMAIN_H

#include "catalog-domain.h"
#include "daemon.h"

/*
 * Attach the libvirt domain `key` (name or uuid) from its XML, as
 * domain-attach without disks does, and fill *out with the catalogued
 * domain (clear it).  Images of its disks not yet catalogued are imported
 * with their backing chains.
 */
int rpc_domain_attach_libvirt(struct gvmd *d, const char *key,
                              struct catalog_domain *out,
                              struct gvm_error *err);

#endif
