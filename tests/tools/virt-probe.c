/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-probe — drives gvmd's virt.c directly for tests/integration/test-diskxml.sh:
 *
 *   virt-probe URI disks DOMAIN        one line per disk:
 *       TARGET TYPE FORMAT WHERE HOSTS  (then "  backing TYPE FORMAT WHERE"
 *       per backing layer), and "running" or "inactive" last
 *   virt-probe URI running             "DOMAIN TARGET" per disk of each running
 *                                      domain, or "none"
 * Exit 0, or 1 with gvmd's error message on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "util.h"
#include "virt.h"

static const char *type_name(enum virt_source_type t)
{
    return t == VIRT_SOURCE_FILE ? "file" : t == VIRT_SOURCE_GLUSTER ? "gluster" : "other";
}

static void print_source(const struct virt_source *s)
{
    printf("%s %s ", type_name(s->type), s->format ? s->format : "-");
    if (s->type == VIRT_SOURCE_FILE)
        printf("%s", s->file ? s->file : "-");
    else if (s->type == VIRT_SOURCE_GLUSTER)
        printf("%s/%s", s->glvolume ? s->glvolume : "-", s->path ? s->path : "-");
    else
        printf("-");
}

int main(int argc, char **argv)
{
    struct virt *v = NULL;
    struct gvm_error err;
    int rc = 1;

    gvm_error_clear(&err);
    if (argc < 3 || (strcmp(argv[2], "disks") == 0 && argc != 4) ||
        (strcmp(argv[2], "running") == 0 && argc != 3) ||
        (strcmp(argv[2], "disks") != 0 && strcmp(argv[2], "running") != 0)) {
        fprintf(stderr, "usage: virt-probe URI disks DOMAIN | URI running\n");
        return 2;
    }
    gvm_log_set_level(GVM_LOG_ERROR);
    if (virt_new(argv[1], NULL, &v, &err) < 0)
        goto out;
    if (strcmp(argv[2], "disks") == 0) {
        struct virt_disk *d = NULL;
        size_t n = 0;
        bool running;

        if (virt_domain_disks(v, argv[3], &d, &n, &running, &err) < 0)
            goto out;
        for (size_t i = 0; i < n; i++) {
            printf("%s ", d[i].target ? d[i].target : "-");
            print_source(&d[i].src);
            for (size_t j = 0; j < d[i].src.nhosts; j++) {
                const struct gvm_server *h = &d[i].src.hosts[j];
                if (h->transport == GVM_TRANSPORT_UNIX)
                    printf(" unix:%s", h->socket ? h->socket : "-");
                else
                    printf(" %s:%s:%d", gvm_transport_name(h->transport),
                           h->host ? h->host : "-", h->port);
            }
            printf("\n");
            for (size_t j = 0; j < d[i].nbacking; j++) {
                printf("  backing ");
                print_source(&d[i].backing[j]);
                printf("\n");
            }
        }
        printf("%s\n", running ? "running" : "inactive");
        virt_disks_free(d, n);
    } else {
        struct virt_domain *doms = NULL;
        size_t n = 0;

        if (virt_running_domains(v, &doms, &n, &err) < 0)
            goto out;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < doms[i].ndisks; k++)
                printf("%s %s\n", doms[i].name,
                       doms[i].disks[k].target ? doms[i].disks[k].target : "-");
        if (n == 0)
            printf("none\n");
        virt_domains_free(doms, n);
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "virt-probe: %s\n", err.message);
    virt_free(v);
    return rc;
}
