/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-delete.h — snapshot-delete (snapshot-delete.c): an ordinary
 * job that frees the images only the snapshot froze, keeping what every
 * other image reads, then forgets the snapshot.
 */
#ifndef GVMD_SNAPSHOT_DELETE_H
#define GVMD_SNAPSHOT_DELETE_H

#include <jansson.h>

#include "gvmd.h"
#include "job.h"

extern const struct job_type snapshot_delete_job;

/* The method (params as checked by the RPC layer; result the job as
 * PROTOCOL.md says).  op_id may be NULL. */
int snapshot_delete_start(struct gvmd *d, json_t *params, const char *op_id,
                          json_t **result, struct gvm_error *err);

#endif
