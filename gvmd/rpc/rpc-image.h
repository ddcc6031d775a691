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

#include "gvmd.h"
#include "image.h"
#include "journal.h"
#include "resolve.h"

/*
 * Start-up recovery of the image methods' journaled operations that no job
 * runs (image-delete), for journal_replay(); opaque is the struct gvmd.
 */
extern const struct journal_type rpc_image_journal_types[];
extern const size_t rpc_image_journal_ntypes;

#endif
