/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * chain-check.h — the preconditions a chain job checks before it journals
 * or touches storage (chain-check.c), shared by the offline and live
 * commit, snapshot-delete, rebase and chain-audit.
 *
 * A job that changes what some images read ("changed") or removes images
 * ("removed") must not, unless the operator first says so:
 *   - change a snapshot's frozen content or remove an image a snapshot
 *     records as frozen (snapshot_disks.image_id);
 *   - change or remove the image of a domain's disk (except the one disk
 *     move the job itself makes: an active commit's top);
 *   - change or remove the backing file of an overlay on storage that the
 *     catalog does not know (it would read garbage or not open at all).
 * Each refusal is InUse, names what stands in the way and says what to do;
 * nothing has been written when it is returned.
 */
#ifndef GVMD_CHAIN_CHECK_H
#define GVMD_CHAIN_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "gvmd.h"

/* Directory entries looked at per directory when searching for overlays
 * the catalog does not know. */
#define CHAIN_CHECK_MAX_ENTRIES 4096

/*
 * The uncatalogued overlays of images ids[0..n): regular qcow2 files, not
 * in the catalog, in the directory of one of the images, whose header's
 * backing file name resolves to one of them.  *found: a new array of
 * {"image": "VOLUME:PATH", "volume", "volume-id", "path", "backing": "VOLUME:PATH",
 * "backing-id"}.  *truncated (may be NULL): the names of a directory
 * beyond CHAIN_CHECK_MAX_ENTRIES were not looked at (a warning is logged
 * naming it).  Unreadable candidates are skipped.  0, or -1 with err set.
 */
int chain_check_uncatalogued(struct gvmd *d, const int64_t *ids, size_t n,
                             json_t **found, bool *truncated,
                             struct gvm_error *err);

/*
 * What: the operation in a sentence's subject ("Committing V:A into V:B").
 * changed[0..nc): images whose content changes; removed[0..nr): images
 * that go away; moved_disk: an image whose domain disks the operation
 * moves itself (0: none).  0 when nothing stands in the way, else -1 with
 * err (InUse) naming the snapshots, disks or uncatalogued overlays.
 */
int chain_check_preconditions(struct gvmd *d, const char *what,
                              const int64_t *changed, size_t nc,
                              const int64_t *removed, size_t nr,
                              int64_t moved_disk, struct gvm_error *err);

#endif
