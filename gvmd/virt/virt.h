/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt.h — gvmd's one connection to libvirt (virt.c) and what it reads from
 * it: the disks of a domain and the running domains.
 *
 * The connection is opened lazily, on first use, and re-opened on the next
 * use after libvirtd went away (its close callback marks it broken), so a
 * daemon without libvirtd starts and answers everything that does not need
 * libvirt.  libvirt's own default event loop runs on a thread of its own
 * (keepalives, the close callback, domain lifecycle and block-job events).
 *
 * Every function but virt_new/virt_free/virt_set_blockjob_cb may block on
 * libvirt: call them from worker threads (GVM_M_BLOCKING handlers), never
 * on the control loop.  Thread-safe.  Errors are VirtError carrying
 * libvirt's message (NotFound for an unknown domain); functions return 0
 * (or a count) or -1 with err set.
 */
#ifndef GVMD_VIRT_H
#define GVMD_VIRT_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"
#include "util.h"

struct virt;

enum virt_source_type {
    VIRT_SOURCE_OTHER,      /* block device, volume, other protocols ...  */
    VIRT_SOURCE_FILE,       /* type='file'                                */
    VIRT_SOURCE_GLUSTER,    /* type='network' protocol='gluster'          */
};

/* One layer as libvirt describes it (<source>, or a <backingStore>). */
struct virt_source {
    enum virt_source_type type;
    char *format;                /* driver/format type, or NULL           */
    char *file;                  /* file: the absolute path               */
    char *glvolume;              /* gluster: the volume name ...          */
    char *path;                  /* ... and the path inside it (no '/')   */
    struct gvm_server *hosts;    /* gluster: the <host>s in order         */
    size_t nhosts;
    unsigned index;              /* libvirt's index attribute (the N of
                                    "vda[N]" in block job calls), 0: none */
};

/* A <disk device='disk'> of a domain. */
struct virt_disk {
    char *target;                /* target dev: "vda" ...                 */
    struct virt_source src;      /* the active layer                      */
    struct virt_source *backing; /* backingStore chain, top to base, as
                                    far as libvirt reports it             */
    size_t nbacking;
};
void virt_disks_free(struct virt_disk *disks, size_t n);

/* The libvirt-uri value that configures no libvirt at all (a host without
 * libvirtd): gvmd never connects, every live feature fails with
 * Unsupported "libvirt is not configured", and no domain counts as
 * running. */
#define VIRT_URI_NONE "none"

/* uri: NULL for qemu:///system, VIRT_URI_NONE for none; fuse_mount (may be NULL): where gluster
 * volumes are FUSE-mounted, so that file disks there count as users of
 * gluster images.  Does not connect. */
int virt_new(const char *uri, const char *fuse_mount, struct virt **out,
             struct gvm_error *err);
void virt_free(struct virt *v);

/* The URI connected to (borrowed). */
const char *virt_uri(const struct virt *v);
/* False for NULL and for libvirt-uri none. */
bool virt_configured(const struct virt *v);

/*
 * Called on libvirt's event thread for each VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2
 * event: domain name, disk (target), type and status as libvirt numbers
 * them (virDomainBlockJobType, virConnectDomainEventBlockJobStatus).  Must
 * not block.  NULL clears it.
 */
typedef void (*virt_blockjob_cb)(void *opaque, const char *domain,
                                 const char *disk, int type, int status);
void virt_set_blockjob_cb(struct virt *v, virt_blockjob_cb cb, void *opaque);

/*
 * Connect if not connected (blocking).  Returns 0 and sets *ndomains (if not
 * NULL) to the number of domains libvirt knows, or -1 with err set.
 */
int virt_connect(struct virt *v, int *ndomains, struct gvm_error *err);
/* Whether a connection is open and alive now (does not connect). */
bool virt_connected(struct virt *v);

/*
 * The disks (device='disk') of the domain with this name or uuid, in the
 * order of its XML: the live XML when it runs (with the backing chains
 * libvirt found), the inactive one otherwise.  *running says which.
 * NotFound if libvirt has no such domain.
 */
int virt_domain_disks(struct virt *v, const char *name_or_uuid,
                      struct virt_disk **disks, size_t *n, bool *running,
                      struct gvm_error *err);

/* ---- raw libvirt access (for virt-blockjob.c, virt-snapshot.c) ----------
 * Include <libvirt/libvirt.h> before this section's users call these.  */
typedef struct _virConnect *virConnectPtr;
typedef struct _virDomain *virDomainPtr;

/*
 * A new reference to the live connection, connecting (or reconnecting after
 * libvirtd went away, event callbacks re-registered) first if needed; the
 * caller releases it with virConnectClose().  NULL with VirtError.
 */
virConnectPtr virt_conn(struct virt *v, struct gvm_error *err);
/*
 * The domain with this name or uuid (the caller virDomainFree()s it; it
 * keeps its connection alive).  NULL with NotFound for an unknown domain,
 * VirtError otherwise.
 */
virDomainPtr virt_domain_lookup(struct virt *v, const char *name_or_uuid,
                                struct gvm_error *err);

/* A running domain and its disks (live XML). */
struct virt_domain {
    char *name;
    struct virt_disk *disks;
    size_t ndisks;
};
void virt_domains_free(struct virt_domain *doms, size_t n);

/*
 * Every running domain with its disks, read from libvirt now.  Domains
 * whose XML cannot be parsed are skipped (logged).  VirtError when libvirt
 * is unreachable: callers decide whether that is fatal.  None (0) with
 * libvirt-uri none.
 */
int virt_running_domains(struct virt *v, struct virt_domain **out, size_t *n,
                         struct gvm_error *err);

#endif
