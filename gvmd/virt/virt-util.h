/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt-util.h — small helpers for the files that call libvirt and libxml2
 * directly (virt.c, virt-blockjob.c, virt-snapshot.c, virt-define.c):
 * cleanup attributes for their handles, libvirt's last error as text, and
 * element lookups in a parsed domain XML.  Header-only: each is a line or
 * two, and none has state.
 */
#ifndef GVMD_VIRT_UTIL_H
#define GVMD_VIRT_UTIL_H

#include <stdbool.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/tree.h>

#include "util.h"

static inline void virt_conn_closep(virConnectPtr *c)
{
    if (*c)
        virConnectClose(*c);
}
static inline void virt_domain_freep(virDomainPtr *dom)
{
    if (*dom)
        virDomainFree(*dom);
}
static inline void virt_xml_docp(xmlDoc **doc)
{
    if (*doc)
        xmlFreeDoc(*doc);
}
#define _cleanup_conn_ _cleanup_(virt_conn_closep)
#define _cleanup_domain_ _cleanup_(virt_domain_freep)
#define _cleanup_xmldoc_ _cleanup_(virt_xml_docp)

/* libvirt's message for the calling thread's last error (never NULL). */
static inline const char *virt_last_error(void)
{
    const char *m = virGetLastErrorMessage();

    return m && *m ? m : "unknown libvirt error";
}

/* Whether n is the element `name`. */
static inline bool virt_xml_is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE &&
           strcmp((const char *)n->name, name) == 0;
}

/* n's first child element `name`, or NULL. */
static inline xmlNode *virt_xml_child(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (virt_xml_is(c, name))
            return c;
    return NULL;
}

#endif
