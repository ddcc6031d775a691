/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc-image.h — what the image methods (rpc-image.c) share with other
 * methods: image-import's cataloguing of a chain found on storage, so that
 * every method that adopts images (chain-audit's adopt-storage, attaching a
 * domain from its XML) records them exactly as image-import does.
 */
#ifndef GVMD_RPC_IMAGE_H
#define GVMD_RPC_IMAGE_H

#include <stdint.h>

#include "daemon.h"
#include "image.h"
#include "journal.h"
#include "resolve.h"

/*
 * Catalogue every layer of the opened chain of top (as far as it was
 * opened: with IMG_OPEN_NOBACKING only top itself, recorded with its
 * header's backing name and format but no backing edge) that is not in the
 * catalog yet, base first, in one transaction — a savepoint when the
 * calling thread has one open, so a caller's rollback undoes it.  ctx is
 * the resolve_ctx top was opened through.  Layers already catalogued must
 * agree with their headers (Conflict otherwise).  Returns 0 with *top_id
 * set to top's catalog id, or -1 with err set.
 */
int rpc_image_catalogue(struct gvmd *d, struct resolve_ctx *ctx,
                        struct img *top, int64_t *top_id,
                        struct gvm_error *err);

/*
 * Start-up recovery of the image methods' journaled operations that no job
 * runs (image-delete), for journal_replay(); opaque is the struct gvmd.
 */
extern const struct journal_type rpc_image_journal_types[];
extern const size_t rpc_image_journal_ntypes;

#endif
