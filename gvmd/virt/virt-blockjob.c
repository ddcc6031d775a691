/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-blockjob.c — libvirt block-job calls (see virt-blockjob.h).
 *
 * Why a fresh domain lookup per call rather than a virDomainPtr kept by the
 * caller: a domain object belongs to the connection it was looked up on,
 * and after libvirtd restarts that connection is dead; looking up again
 * through virt_conn() is what makes a polling job survive the restart.
 */
#include <stdio.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "virt-blockjob.h"
#include "virt-util.h"

enum virt_dom_state virt_blockjob_domain_state(struct virt *v, const char *domain)
{
    struct gvm_error err = { 0 };
    _cleanup_domain_ virDomainPtr dom = virt_domain_lookup(v, domain, &err);
    int a;

    if (!dom)
        return err.cls == GVM_ERR_NOT_FOUND ? VIRT_DOM_GONE : VIRT_DOM_UNREACHABLE;
    a = virDomainIsActive(dom);
    if (a < 0)
        return VIRT_DOM_UNREACHABLE;
    return a ? VIRT_DOM_RUNNING : VIRT_DOM_STOPPED;
}

const char *virt_bj_kind_name(int kind)
{
    switch (kind) {
    case VIRT_BJ_PULL: return "pull";
    case VIRT_BJ_COMMIT: return "commit";
    case VIRT_BJ_ACTIVE_COMMIT: return "active-commit";
    default: return "other";
    }
}

int virt_blockjob_info(struct virt *v, const char *domain, const char *disk,
                       struct virt_bj_info *out, struct gvm_error *err)
{
    _cleanup_domain_ virDomainPtr dom = virt_domain_lookup(v, domain, err);
    virDomainBlockJobInfo info;
    int r;

    memset(out, 0, sizeof(*out));
    if (!dom)
        return -1;
    memset(&info, 0, sizeof(info));
    r = virDomainGetBlockJobInfo(dom, disk, &info, 0);
    if (r < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot read the block job of disk %s "
                      "of domain %s: %s.", disk, domain, virt_last_error());
        return -1;
    }
    out->present = r == 1;
    out->kind = info.type;
    out->cur = info.cur;
    out->end = info.end;
    return 0;
}

static char *layer(const char *disk, unsigned index)
{
    char *s = NULL;

    if (asprintf(&s, "%s[%u]", disk, index) < 0)
        return NULL;
    return s;
}

/* libvirt's refusal to keep relative names for a chain it did not probe
 * itself (user-given <backingStore> of network disks). */
static bool relative_refusal(void)
{
    const char *m = virGetLastErrorMessage();

    return virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID && m &&
           strstr(m, "relative");
}

int virt_blockjob_commit(struct virt *v, const char *domain, const char *disk,
                         unsigned base_index, unsigned top_index,
                         uint64_t bandwidth, bool relative,
                         bool *relative_refused, struct gvm_error *err)
{
    _cleanup_domain_ virDomainPtr dom = virt_domain_lookup(v, domain, err);
    _cleanup_free_ char *base = layer(disk, base_index);
    _cleanup_free_ char *top = top_index ? layer(disk, top_index) : NULL;
    unsigned flags = VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES;
    int r;

    *relative_refused = false;
    if (!dom)
        return -1;
    if (!base || (top_index && !top))
        return gvm_error_oom(err);
    if (!top_index)
        flags |= VIR_DOMAIN_BLOCK_COMMIT_ACTIVE;
    r = virDomainBlockCommit(dom, disk, base, top, (unsigned long)bandwidth,
                             flags | (relative ? VIR_DOMAIN_BLOCK_COMMIT_RELATIVE : 0));
    if (r < 0 && relative && relative_refusal()) {
        *relative_refused = true;
        r = virDomainBlockCommit(dom, disk, base, top, (unsigned long)bandwidth,
                                 flags);
    }
    if (r < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "libvirt refused the %s commit of "
                      "disk %s of domain %s (top %s, base %s): %s.",
                      top_index ? "intermediate" : "active", disk, domain,
                      top ? top : "the active layer", base, virt_last_error());
        return -1;
    }
    return 0;
}

int virt_blockjob_pull(struct virt *v, const char *domain, const char *disk,
                       unsigned base_index, uint64_t bandwidth, bool relative,
                       bool *relative_refused, struct gvm_error *err)
{
    _cleanup_domain_ virDomainPtr dom = virt_domain_lookup(v, domain, err);
    _cleanup_free_ char *base = base_index ? layer(disk, base_index) : NULL;
    unsigned flags = VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES;
    int r;

    *relative_refused = false;
    if (!dom)
        return -1;
    if (base_index && !base)
        return gvm_error_oom(err);
    r = virDomainBlockRebase(dom, disk, base, (unsigned long)bandwidth,
                             flags | (relative && base ? VIR_DOMAIN_BLOCK_REBASE_RELATIVE : 0));
    if (r < 0 && relative && base && relative_refusal()) {
        *relative_refused = true;
        r = virDomainBlockRebase(dom, disk, base, (unsigned long)bandwidth, flags);
    }
    if (r < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "libvirt refused the pull into disk "
                      "%s of domain %s (base %s): %s.", disk, domain,
                      base ? base : "none", virt_last_error());
        return -1;
    }
    return 0;
}

int virt_blockjob_abort(struct virt *v, const char *domain, const char *disk,
                        bool pivot, struct gvm_error *err)
{
    _cleanup_domain_ virDomainPtr dom = virt_domain_lookup(v, domain, err);

    if (!dom)
        return -1;
    /* Synchronous (no ASYNC flag): libvirt returns once QEMU has switched
     * the disk (pivot) or dropped the job (abort). */
    if (virDomainBlockJobAbort(dom, disk,
                               pivot ? VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT : 0) < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "libvirt could not %s the block job "
                      "of disk %s of domain %s: %s.",
                      pivot ? "pivot" : "abort", disk, domain, virt_last_error());
        return -1;
    }
    return 0;
}

int virt_blockjob_mirror_ready(struct virt *v, const char *domain,
                               const char *disk, struct gvm_error *err)
{
    _cleanup_domain_ virDomainPtr dom = virt_domain_lookup(v, domain, err);
    _cleanup_free_ char *xml = NULL;
    _cleanup_free_ char *expr = NULL;
    xmlDoc *doc;
    xmlXPathContext *ctx = NULL;
    xmlXPathObject *res = NULL;
    int ready = 0;

    if (!dom)
        return -1;
    xml = virDomainGetXMLDesc(dom, 0);
    if (!xml) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot read the XML of domain %s: %s.",
                      domain, virt_last_error());
        return -1;
    }
    /* Targets are plain device names ("vda"): no quote can end the
     * literal early, the caller took them from libvirt's own XML. */
    if (strchr(disk, '\'') ||
        asprintf(&expr, "string(/domain/devices/disk[target/@dev='%s']/mirror/@ready)",
                 disk) < 0) {
        expr = NULL;
        return gvm_error_oom(err);
    }
    doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc)
        ctx = xmlXPathNewContext(doc);
    if (ctx)
        res = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    if (!res) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot parse the XML libvirt gave for "
                      "domain %s.", domain);
        ready = -1;
    } else if (res->type == XPATH_STRING && res->stringval &&
               strcmp((const char *)res->stringval, "yes") == 0) {
        ready = 1;
    }
    xmlXPathFreeObject(res);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return ready;
}
