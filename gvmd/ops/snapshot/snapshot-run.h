/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * snapshot-run.h — running an internal job and waiting for it
 * (snapshot-run.c): snapshot-create and snapshot-revert are jobs so that
 * the job runner's recovery settles an operation a crash interrupted, but
 * their RPC call answers only when the job is over.
 */
#ifndef GVMD_SNAPSHOT_RUN_H
#define GVMD_SNAPSHOT_RUN_H

#include <jansson.h>
#include <stddef.h>

#include "gvmd.h"
#include "job.h"

/* Run a job of type with params (images and locks as for jobs_create) to
 * its end; its error becomes ours (BUSY when gvmd stops first or the job
 * was cancelled).  The job is dismissed afterwards: the call's result
 * stands for it. */
int snapshot_run_job(struct gvmd *d, const struct job_type *type,
                     json_t *params, json_t *images,
                     const struct catalog_job_lock *locks, size_t nlocks,
                     struct gvm_error *err);

#endif
