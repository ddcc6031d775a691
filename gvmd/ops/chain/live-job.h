/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * live-job.h — the live path of block-commit and block-pull (a running
 * domain's disk: libvirt does the work, gvmd watches it and brings the
 * catalog in step).  live-job.c runs the jobs; live-commit.c and
 * live-pull.c check and start them (live_commit_start, live_pull_start in
 * chain-ops.h).  What the starts and the jobs both need is here.
 */
#ifndef GVMD_LIVE_JOB_H
#define GVMD_LIVE_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gvmd.h"

/* One layer of a running disk's chain as libvirt lists it. */
struct live_job_layer {
    int64_t id;        /* catalog id, 0 if not catalogued */
    unsigned index;    /* "T[index]", 0 if libvirt gave none */
};

/* The layers of domain's disk target, active first (live XML); *out is
 * freed by the caller.  NotFound if the domain has no such disk. */
int live_job_disk_layers(struct gvmd *d, const char *domain, const char *target,
                         struct live_job_layer **out, size_t *n,
                         struct gvm_error *err);

/* The position of image id in layers[0..n), or n when it is not there. */
size_t live_job_layer_find(const struct live_job_layer *layers, size_t n,
                           int64_t id);

/* Busy if libvirt already runs a block job on the disk. */
int live_job_disk_idle(struct gvmd *d, const char *domain, const char *target,
                       struct gvm_error *err);

/* A backing name qemu resolves relative to the image's directory. */
bool live_job_is_relative(const char *name);

#endif
