/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * image-delete.h — removing a catalogued image from the catalog and
 * storage (image-delete.c).
 */
#ifndef GVMD_IMAGE_DELETE_H
#define GVMD_IMAGE_DELETE_H

#include <stddef.h>

#include "gvmd.h"
#include "journal.h"
#include "resolve.h"

/* Delete the resolved image: NotFound unless catalogued; InUse while a
 * running domain uses it, another process holds it open for writing, or
 * the catalog records a user of it (an image above it, a snapshot, a
 * domain's disk), naming them. */
int image_delete(struct gvmd *d, struct resolved *r, struct gvm_error *err);

/* Start-up recovery of an interrupted image-delete, for journal_replay();
 * opaque is the struct gvmd. */
extern const struct journal_type image_delete_journal_types[];
extern const size_t image_delete_journal_ntypes;

#endif
