/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * volume.h — the registry of volumes (volume.c): the catalog's volume rows
 * plus, for each volume, its store, opened on first use and kept for the
 * daemon's life (one glfs_t per gluster volume).
 *
 * Thread-safe: called from the event loop and from workers.  Only the
 * functions marked "blocking" may touch storage (connect to gluster); call
 * them from workers (GVM_M_BLOCKING handlers), never on the loop.
 *
 * Errors are filled in err (NotFound, AlreadyExists, InUse, StorageError,
 * InvalidParams ...) with whole sentences; functions return 0 or -1.
 */
#ifndef GVMD_VOLUME_H
#define GVMD_VOLUME_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "store.h"
#include "util.h"

struct volumes;

/* Default gfapi log level of a gluster volume (4: warnings). */
#define VOLUME_DEFAULT_DEBUG 4
/* The embedded default volume, a dir volume at STATE_DIR/images. */
#define VOLUME_DEFAULT_NAME "local"

int volumes_new(struct catalog *cat, struct volumes **out, struct gvm_error *err);
/* At daemon exit: releases every store without waiting for gluster's slow
 * tear-down (see store-gluster.c).  Every file must be closed. */
void volumes_free(struct volumes *v);

/* Register the dir volume "local" at STATE_DIR/images (creating the
 * directory) unless a volume named "local" exists already. */
int volumes_ensure_default(struct volumes *v, const char *state_dir,
                           struct gvm_error *err);

/* A valid volume name: [A-Za-z0-9._-]{1,64}. */
bool volumes_name_valid(const char *name);

/*
 * Register vol (its name, backend, and gluster volume + servers or dir root;
 * debug 0..9).  Blocking: a dir root must be an existing absolute
 * directory; a gluster volume is connected to first, and if that fails
 * (StorageError naming each server tried and why) nothing is registered.
 * AlreadyExists for a taken name.  On success vol->id/created are set and
 * the opened store is kept for volumes_store().
 */
int volumes_add(struct volumes *v, struct catalog_volume *vol,
                struct gvm_error *err);
/* Unregister.  NotFound, or InUse while images are catalogued on it. */
int volumes_remove(struct volumes *v, const char *name, struct gvm_error *err);
/* Catalog rows (not blocking). */
int volumes_get(struct volumes *v, const char *name, struct catalog_volume *out,
                struct gvm_error *err);
int volumes_get_by_id(struct volumes *v, int64_t id, struct catalog_volume *out,
                      struct gvm_error *err);
int volumes_list(struct volumes *v, struct catalog_volume **out, size_t *n,
                 struct gvm_error *err);

/*
 * The store of a registered volume (borrowed: valid until volumes_free).
 * Blocking on first use: opens it (connects to gluster); concurrent first
 * users wait for that one connect; a failed connect is not remembered, the
 * next call tries again.
 */
int volumes_store(struct volumes *v, const char *name, struct gvm_store **out,
                  struct gvm_error *err);
int volumes_store_by_id(struct volumes *v, int64_t id, struct gvm_store **out,
                        struct gvm_error *err);

/* The registered gluster volume named glvol that has one of servers in
 * its list: 1 and *name (caller frees), 0 if there is none (nothing is
 * registered, nothing connects), -1 on error. */
int volumes_find_gluster(struct volumes *v, const char *glvol,
                         const struct gvm_server *servers, size_t n,
                         char **name, struct gvm_error *err);

/*
 * For gluster URIs and json: references: the registered gluster volume
 * named glvol that has one of servers in its list; if there is none,
 * register one (blocking: connects) under the name glvol (or glvol-2,
 * glvol-3, ... if taken; characters outside [A-Za-z0-9._-] become '_')
 * with the given servers.  *name is the registered name (caller frees).
 */
int volumes_find_or_add_gluster(struct volumes *v, const char *glvol,
                                const struct gvm_server *servers, size_t n,
                                char **name, struct gvm_error *err);

#endif
