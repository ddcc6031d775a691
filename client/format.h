/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * format.h — the designed human output of gvmctl, per method: format.c
 * (dispatch, shared helpers, volumes, domains), format-image.c,
 * format-snapshot.c, format-job.c.  Each printer takes the method's result
 * as PROTOCOL.md describes it and prints nothing as JSON.
 */
#ifndef GVMCTL_FORMAT_H
#define GVMCTL_FORMAT_H

#include "client.h"

/* "label: value" lines with the values aligned. */
struct kv {
    size_t n;
    const char *k[32];
    char *v[32];
};
/* Add a line; v is taken (malloc'd; NULL is HUMAN_NONE); a v of several
 * lines ("a\nb", a list) is printed with each line at the value column. */
void format_kv(struct kv *kv, const char *k, char *v);
/* Print the lines indented by indent, and free the values. */
void format_kv_print(FILE *f, struct kv *kv, size_t indent);

/* A size (JSON integer or null) as human_size does it, with --bytes. */
char *format_size(const json_t *v, const struct print_opts *po);
/* An epoch time (JSON integer or null) as local ISO 8601. */
char *format_time(const json_t *v);
/* A string or HUMAN_NONE when v is not a non-empty string. */
char *format_str(const json_t *v);
/* VOLUME:PATH of catalog id (from image-list, asked once on po->conn),
 * or "#ID" when the catalog no longer has it.  Borrowed from po->names. */
const char *format_image_name(struct print_opts *po, const json_t *id);
/* Ask gvmd method with params (consumed) on po->conn; the result (a new
 * reference) or NULL on any failure (human output then does without). */
json_t *format_call(struct print_opts *po, const char *method, json_t *params);

/* One domain's disks as a table: TARGET IMAGE. */
void format_domain_disks(FILE *f, const json_t *disks, size_t indent);

void format_image(FILE *f, const json_t *img, struct print_opts *po);
void format_image_list(FILE *f, const json_t *list, struct print_opts *po);
void format_snapshot(FILE *f, const json_t *snap, struct print_opts *po);
void format_snapshot_revert(FILE *f, const json_t *snap, struct print_opts *po);
void format_snapshot_list(FILE *f, const json_t *list, struct print_opts *po);
void format_job(FILE *f, const json_t *job, struct print_opts *po);
void format_job_list(FILE *f, const json_t *list, struct print_opts *po);

#endif
