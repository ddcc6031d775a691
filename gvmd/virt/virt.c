/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virt.c — the libvirt connection (see virt.h).
 *
 * Why lazily: gvmd must start and serve offline work on a host where
 * libvirtd is not running (yet).  Why a reference per user: a worker that
 * finds the connection broken replaces it while others may still be in a
 * call on the old one; virConnectRef/virConnectClose keep the old one alive
 * until its last user is done.  Why libvirt's default event loop on its own
 * thread rather than libevent: libvirt's keepalive, close callback and
 * domain events all need an event loop registered before the connection is
 * opened, and libvirt's default one needs no glue.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "virt-util.h"
#include "virt.h"

struct virt {
    char *uri;
    bool none;                     /* libvirt-uri none: never connect         */
    char *fuse_mount;              /* NULL: none                             */

    pthread_mutex_t lock;          /* conn, the event thread                  */
    virConnectPtr conn;            /* NULL: not connected                     */
    int ev_lifecycle, ev_blockjob; /* callback ids, -1: not registered        */
    bool close_cb;                 /* close callback registered on conn       */
    int broken;                    /* set by the close callback (atomic)      */

    pthread_t ev_thread;
    bool ev_running;
    int ev_quit;                   /* atomic                                  */

    pthread_mutex_t cb_lock;       /* the block-job hook                      */
    virt_blockjob_cb bj_cb;
    void *bj_opaque;
};

/* ---- process-wide libvirt set-up ---------------------------------------
 * libvirt's event implementation and error function are process state of
 * libvirt's, registered once whatever the number of struct virt. */

static int event_impl_rc = -1;
static pthread_once_t event_impl_once = PTHREAD_ONCE_INIT;

/* libvirt prints every error on stderr by default; gvmd reports the ones
 * that matter through gvm_error, the rest at debug level. */
static void quiet_errors(void *opaque, virErrorPtr e)
{
    (void)opaque;
    if (e && e->message)
        log_debug("libvirt: %s", e->message);
}

static void event_impl_init(void)
{
    virSetErrorFunc(NULL, quiet_errors);
    event_impl_rc = virEventRegisterDefaultImpl();
}

/* ---- the event thread ---------------------------------------------------- */

static void *event_thread(void *arg)
{
    struct virt *v = arg;

    while (!__atomic_load_n(&v->ev_quit, __ATOMIC_ACQUIRE)) {
        if (virEventRunDefaultImpl() < 0) {
            log_warn("The libvirt event loop failed: %s.", virt_last_error());
            break;
        }
    }
    return NULL;
}

/* A zero timeout wakes virEventRunDefaultImpl up so the thread sees
 * ev_quit; it removes itself. */
static void wake_timeout(int timer, void *opaque)
{
    (void)opaque;
    virEventRemoveTimeout(timer);
}

/* With v->lock held. */
static int start_event_thread(struct virt *v, struct gvm_error *err)
{
    int rc;

    if (v->ev_running)
        return 0;
    pthread_once(&event_impl_once, event_impl_init);
    if (event_impl_rc < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot set up libvirt's event loop: %s.",
                      virt_last_error());
        return -1;
    }
    __atomic_store_n(&v->ev_quit, 0, __ATOMIC_RELEASE);
    rc = pthread_create(&v->ev_thread, NULL, event_thread, v);
    if (rc != 0) {
        gvm_error_set(err, GVM_ERR_INTERNAL,
                      "Cannot start the libvirt event thread: %s.", strerror(rc));
        return -1;
    }
    v->ev_running = true;
    return 0;
}

static void stop_event_thread(struct virt *v)
{
    if (!v->ev_running)
        return;
    __atomic_store_n(&v->ev_quit, 1, __ATOMIC_RELEASE);
    if (virEventAddTimeout(0, wake_timeout, NULL, NULL) < 0)
        log_warn("Cannot wake the libvirt event thread: %s.", virt_last_error());
    pthread_join(v->ev_thread, NULL);
    v->ev_running = false;
}

/* ---- callbacks (on the event thread) ------------------------------------ */

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    struct virt *v = opaque;
    static const char *const why[] = {
        [VIR_CONNECT_CLOSE_REASON_ERROR] = "an error",
        [VIR_CONNECT_CLOSE_REASON_EOF] = "end of file",
        [VIR_CONNECT_CLOSE_REASON_KEEPALIVE] = "a keepalive timeout",
        [VIR_CONNECT_CLOSE_REASON_CLIENT] = "the client",
    };

    (void)conn;
    __atomic_store_n(&v->broken, 1, __ATOMIC_RELEASE);
    log_warn("The libvirt connection to %s closed (%s); gvmd reconnects on "
             "next use.", v->uri,
             reason >= 0 && reason < (int)GVM_ARRAY_SIZE(why) && why[reason]
                 ? why[reason] : "unknown reason");
}

static const char *lifecycle_name(int event)
{
    static const char *const names[] = {
        [VIR_DOMAIN_EVENT_DEFINED] = "defined",
        [VIR_DOMAIN_EVENT_UNDEFINED] = "undefined",
        [VIR_DOMAIN_EVENT_STARTED] = "started",
        [VIR_DOMAIN_EVENT_SUSPENDED] = "suspended",
        [VIR_DOMAIN_EVENT_RESUMED] = "resumed",
        [VIR_DOMAIN_EVENT_STOPPED] = "stopped",
        [VIR_DOMAIN_EVENT_SHUTDOWN] = "shut down",
        [VIR_DOMAIN_EVENT_PMSUSPENDED] = "suspended by power management",
        [VIR_DOMAIN_EVENT_CRASHED] = "crashed",
    };

    if (event >= 0 && event < (int)GVM_ARRAY_SIZE(names) && names[event])
        return names[event];
    return "changed state";
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event,
                        int detail, void *opaque)
{
    (void)conn;
    (void)opaque;
    log_info("Domain %s %s (detail %d).", virDomainGetName(dom),
             lifecycle_name(event), detail);
    return 0;
}

static void on_blockjob(virConnectPtr conn, virDomainPtr dom, const char *disk,
                        int type, int status, void *opaque)
{
    struct virt *v = opaque;
    const char *name = virDomainGetName(dom);

    (void)conn;
    log_info("Domain %s: block job (type %d) on %s: status %d.", name, type,
             disk ? disk : "?", status);
    GVM_LOCK_GUARD(&v->cb_lock);
    if (v->bj_cb)
        v->bj_cb(v->bj_opaque, name, disk, type, status);
}

/* ---- the connection ------------------------------------------------------ */

/* With v->lock held: forget the connection (users holding a reference keep
 * it until they close it). */
static void drop_conn(struct virt *v)
{
    if (!v->conn)
        return;
    if (v->ev_lifecycle >= 0)
        virConnectDomainEventDeregisterAny(v->conn, v->ev_lifecycle);
    if (v->ev_blockjob >= 0)
        virConnectDomainEventDeregisterAny(v->conn, v->ev_blockjob);
    if (v->close_cb)
        virConnectUnregisterCloseCallback(v->conn, on_close);
    v->ev_lifecycle = v->ev_blockjob = -1;
    v->close_cb = false;
    virConnectClose(v->conn);
    v->conn = NULL;
}

/* With v->lock held. */
static int open_conn(struct virt *v, struct gvm_error *err)
{
    virConnectPtr c;

    if (start_event_thread(v, err) < 0)
        return -1;
    c = virConnectOpen(v->uri);
    if (!c) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot connect to libvirt at %s: %s.",
                      v->uri, virt_last_error());
        return -1;
    }
    __atomic_store_n(&v->broken, 0, __ATOMIC_RELEASE);
    v->conn = c;
    /* Keepalives notice a libvirtd that hangs or vanishes without closing
     * the socket; drivers running in-process do not support them. */
    if (virConnectSetKeepAlive(c, 5, 3) < 0)
        log_debug("No keepalive on %s: %s.", v->uri, virt_last_error());
    if (virConnectRegisterCloseCallback(c, on_close, v, NULL) == 0)
        v->close_cb = true;
    else
        log_debug("No close callback on %s: %s.", v->uri, virt_last_error());
    v->ev_lifecycle = virConnectDomainEventRegisterAny(c, NULL,
        VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle),
        v, NULL);
    if (v->ev_lifecycle < 0)
        log_warn("Cannot register for domain lifecycle events on %s: %s.",
                 v->uri, virt_last_error());
    v->ev_blockjob = virConnectDomainEventRegisterAny(c, NULL,
        VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2, VIR_DOMAIN_EVENT_CALLBACK(on_blockjob),
        v, NULL);
    if (v->ev_blockjob < 0)
        log_warn("Cannot register for block job events on %s: %s.", v->uri,
                 virt_last_error());
    log_info("Connected to libvirt at %s.", v->uri);
    return 0;
}

/* A reference to a live connection, connecting or reconnecting first if
 * needed; release it with virConnectClose.  NULL with err set. */
static virConnectPtr conn_get(struct virt *v, struct gvm_error *err)
{
    if (v->none) {
        gvm_error_set(err, GVM_ERR_UNSUPPORTED, "libvirt is not configured: "
                      "gvmd runs with libvirt-uri none, so it has no libvirt "
                      "connection and no live features.");
        return NULL;
    }
    GVM_LOCK_GUARD(&v->lock);
    if (v->conn && (__atomic_load_n(&v->broken, __ATOMIC_ACQUIRE) ||
                    virConnectIsAlive(v->conn) != 1)) {
        log_info("Reconnecting to libvirt at %s.", v->uri);
        drop_conn(v);
    }
    if (!v->conn && open_conn(v, err) < 0)
        return NULL;
    virConnectRef(v->conn);
    return v->conn;
}

int virt_new(const char *uri, const char *fuse_mount, struct virt **out,
             struct gvm_error *err)
{
    struct virt *v = calloc(1, sizeof(*v));

    *out = NULL;
    if (!v)
        return gvm_error_oom(err);
    v->uri = strdup(uri && *uri ? uri : GVM_DEFAULT_LIBVIRT);
    v->fuse_mount = fuse_mount && *fuse_mount ? strdup(fuse_mount) : NULL;
    if (!v->uri || (fuse_mount && *fuse_mount && !v->fuse_mount)) {
        free(v->uri);
        free(v->fuse_mount);
        free(v);
        return gvm_error_oom(err);
    }
    v->none = strcmp(v->uri, VIRT_URI_NONE) == 0;
    pthread_mutex_init(&v->lock, NULL);
    pthread_mutex_init(&v->cb_lock, NULL);
    v->ev_lifecycle = v->ev_blockjob = -1;
    *out = v;
    return 0;
}

bool virt_configured(const struct virt *v)
{
    return v && !v->none;
}

void virt_free(struct virt *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->lock);
    drop_conn(v);
    stop_event_thread(v);
    pthread_mutex_unlock(&v->lock);
    pthread_mutex_destroy(&v->lock);
    pthread_mutex_destroy(&v->cb_lock);
    free(v->uri);
    free(v->fuse_mount);
    free(v);
}

const char *virt_uri(const struct virt *v)
{
    return v->uri;
}

void virt_set_blockjob_cb(struct virt *v, virt_blockjob_cb cb, void *opaque)
{
    GVM_LOCK_GUARD(&v->cb_lock);
    v->bj_cb = cb;
    v->bj_opaque = opaque;
}

int virt_connect(struct virt *v, int *ndomains, struct gvm_error *err)
{
    _cleanup_conn_ virConnectPtr c = conn_get(v, err);
    int n;

    if (!c)
        return -1;
    if (!ndomains)
        return 0;
    n = virConnectNumOfDomains(c);
    if (n >= 0) {
        int m = virConnectNumOfDefinedDomains(c);
        if (m >= 0)
            n += m;
        else
            n = -1;
    }
    if (n < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot count the domains of %s: %s.",
                      v->uri, virt_last_error());
        return -1;
    }
    *ndomains = n;
    return 0;
}

bool virt_connected(struct virt *v)
{
    GVM_LOCK_GUARD(&v->lock);
    return v->conn && !__atomic_load_n(&v->broken, __ATOMIC_ACQUIRE) &&
           virConnectIsAlive(v->conn) == 1;
}

/* ---- reading domain XML ---------------------------------------------------- */

static void source_clear(struct virt_source *s)
{
    free(s->format);
    free(s->file);
    free(s->glvolume);
    free(s->path);
    gvm_servers_free(s->hosts, s->nhosts);
    memset(s, 0, sizeof(*s));
}

void virt_disks_free(struct virt_disk *disks, size_t n)
{
    if (!disks)
        return;
    for (size_t i = 0; i < n; i++) {
        free(disks[i].target);
        source_clear(&disks[i].src);
        for (size_t j = 0; j < disks[i].nbacking; j++)
            source_clear(&disks[i].backing[j]);
        free(disks[i].backing);
    }
    free(disks);
}

/* Attribute as a malloc'ed string (NULL if absent); *oomp set on ENOMEM. */
static char *attr(xmlNode *n, const char *name, bool *oomp)
{
    xmlChar *x;
    char *s;

    if (!n)
        return NULL;
    x = xmlGetProp(n, (const xmlChar *)name);
    if (!x)
        return NULL;
    s = strdup((const char *)x);
    xmlFree(x);
    if (!s)
        *oomp = true;
    return s;
}

static bool attr_is(xmlNode *n, const char *name, const char *value)
{
    xmlChar *x = n ? xmlGetProp(n, (const xmlChar *)name) : NULL;
    bool eq = x && strcmp((const char *)x, value) == 0;

    xmlFree(x);
    return eq;
}

static int parse_hosts(xmlNode *source, struct virt_source *s)
{
    size_t n = 0;
    bool nomem = false;

    for (xmlNode *h = source->children; h; h = h->next)
        n += virt_xml_is(h, "host");
    if (n == 0)
        return 0;
    s->hosts = calloc(n, sizeof(*s->hosts));
    if (!s->hosts)
        return -ENOMEM;
    for (xmlNode *h = source->children; h; h = h->next) {
        struct gvm_server *sv;
        _cleanup_free_ char *tr = NULL, *port = NULL;

        if (!virt_xml_is(h, "host"))
            continue;
        sv = &s->hosts[s->nhosts++];
        tr = attr(h, "transport", &nomem);
        if (!tr || gvm_transport_parse(tr, &sv->transport) < 0)
            sv->transport = GVM_TRANSPORT_TCP;
        sv->host = attr(h, "name", &nomem);
        sv->socket = attr(h, "socket", &nomem);
        port = attr(h, "port", &nomem);
        if (port)
            sv->port = atoi(port);
    }
    return nomem ? -ENOMEM : 0;
}

/* holder: a <disk> or a <backingStore>, whose type attribute says what
 * its <source> is. */
static int parse_source(xmlNode *holder, struct virt_source *s)
{
    xmlNode *src = virt_xml_child(holder, "source");
    xmlNode *fmt = virt_xml_is(holder, "disk") ? virt_xml_child(holder, "driver")
                                           : virt_xml_child(holder, "format");
    bool nomem = false;

    s->format = attr(fmt, "type", &nomem);
    /* The active layer carries its index on <source>, backing layers on
     * their <backingStore>. */
    {
        _cleanup_free_ char *ix = attr(virt_xml_is(holder, "disk") ? src : holder,
                                       "index", &nomem);
        if (ix)
            s->index = (unsigned)strtoul(ix, NULL, 10);
    }
    if (attr_is(holder, "type", "file")) {
        s->type = VIRT_SOURCE_FILE;
        s->file = attr(src, "file", &nomem);
    } else if (attr_is(holder, "type", "network") &&
               attr_is(src, "protocol", "gluster")) {
        _cleanup_free_ char *name = attr(src, "name", &nomem);
        const char *p = name;

        s->type = VIRT_SOURCE_GLUSTER;
        while (p && *p == '/')
            p++;
        if (p && *p) {
            const char *slash = strchr(p, '/');
            size_t vl = slash ? (size_t)(slash - p) : strlen(p);

            s->glvolume = strndup(p, vl);
            p = slash ? slash : p + vl;
            while (*p == '/')
                p++;
            s->path = strdup(p);
            if (!s->glvolume || !s->path)
                nomem = true;
        }
        if (!nomem && src && parse_hosts(src, s) < 0)
            nomem = true;
    } else {
        s->type = VIRT_SOURCE_OTHER;
    }
    return nomem ? -ENOMEM : 0;
}

static int parse_disk(xmlNode *disk, struct virt_disk *out)
{
    bool nomem = false;
    size_t n = 0;

    out->target = attr(virt_xml_child(disk, "target"), "dev", &nomem);
    if (nomem || parse_source(disk, &out->src) < 0)
        return -ENOMEM;
    /* A chain ends at an empty <backingStore/> or at none. */
    for (xmlNode *b = virt_xml_child(disk, "backingStore");
         b && xmlHasProp(b, (const xmlChar *)"type");
         b = virt_xml_child(b, "backingStore"))
        n++;
    if (n == 0)
        return 0;
    out->backing = calloc(n, sizeof(*out->backing));
    if (!out->backing)
        return -ENOMEM;
    for (xmlNode *b = virt_xml_child(disk, "backingStore");
         b && xmlHasProp(b, (const xmlChar *)"type");
         b = virt_xml_child(b, "backingStore"))
        if (parse_source(b, &out->backing[out->nbacking++]) < 0)
            return -ENOMEM;
    return 0;
}

/* Parse the <disk device='disk'> elements of a domain XML. */
static int parse_domain_disks(const char *xml, const char *domain,
                              struct virt_disk **disks, size_t *n,
                              struct gvm_error *err)
{
    _cleanup_xmldoc_ xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml),
        "domain.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
        XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *devices = virt_xml_child(root, "devices");
    struct virt_disk *out = NULL;
    size_t count = 0, i = 0;

    *disks = NULL;
    *n = 0;
    if (!root || !virt_xml_is(root, "domain")) {
        gvm_error_set(err, GVM_ERR_VIRT, "libvirt returned XML for domain %s "
                      "that gvmd cannot parse.", domain);
        return -1;
    }
    /* device defaults to 'disk' in libvirt's schema. */
    for (xmlNode *c = devices ? devices->children : NULL; c; c = c->next)
        if (virt_xml_is(c, "disk") && (!xmlHasProp(c, (const xmlChar *)"device") ||
                                   attr_is(c, "device", "disk")))
            count++;
    if (count == 0)
        return 0;
    out = calloc(count, sizeof(*out));
    if (!out)
        return gvm_error_oom(err);
    for (xmlNode *c = devices->children; c; c = c->next) {
        if (!(virt_xml_is(c, "disk") && (!xmlHasProp(c, (const xmlChar *)"device") ||
                                     attr_is(c, "device", "disk"))))
            continue;
        if (parse_disk(c, &out[i++]) < 0) {
            virt_disks_free(out, i);
            return gvm_error_oom(err);
        }
    }
    *disks = out;
    *n = count;
    return 0;
}

static bool looks_like_uuid(const char *s)
{
    static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

    if (strlen(s) != sizeof(pat) - 1)
        return false;
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == '-' ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
            return false;
    return true;
}

virConnectPtr virt_conn(struct virt *v, struct gvm_error *err)
{
    return conn_get(v, err);
}

/* On connection c (the caller's reference). */
static virDomainPtr lookup_on(struct virt *v, virConnectPtr c,
                              const char *name_or_uuid, struct gvm_error *err)
{
    virDomainPtr dom = NULL;

    if (looks_like_uuid(name_or_uuid))
        dom = virDomainLookupByUUIDString(c, name_or_uuid);
    if (!dom)
        dom = virDomainLookupByName(c, name_or_uuid);
    if (!dom) {
        if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
            gvm_error_set(err, GVM_ERR_NOT_FOUND, "libvirt at %s has no domain "
                          "named %s.", v->uri, name_or_uuid);
        else
            gvm_error_set(err, GVM_ERR_VIRT, "Cannot look up domain %s: %s.",
                          name_or_uuid, virt_last_error());
    }
    return dom;
}

virDomainPtr virt_domain_lookup(struct virt *v, const char *name_or_uuid,
                                struct gvm_error *err)
{
    /* The domain object holds its own reference to the connection. */
    _cleanup_conn_ virConnectPtr c = conn_get(v, err);

    return c ? lookup_on(v, c, name_or_uuid, err) : NULL;
}

int virt_domain_disks(struct virt *v, const char *name_or_uuid,
                      struct virt_disk **disks, size_t *n, bool *running,
                      struct gvm_error *err)
{
    _cleanup_conn_ virConnectPtr c = conn_get(v, err);
    _cleanup_domain_ virDomainPtr dom = NULL;
    _cleanup_free_ char *xml = NULL;
    int active;

    *disks = NULL;
    *n = 0;
    *running = false;
    if (!c)
        return -1;
    dom = lookup_on(v, c, name_or_uuid, err);
    if (!dom)
        return -1;
    active = virDomainIsActive(dom);
    if (active < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot tell whether domain %s runs: %s.",
                      name_or_uuid, virt_last_error());
        return -1;
    }
    xml = virDomainGetXMLDesc(dom, 0);
    if (!xml) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot read the XML of domain %s: %s.",
                      name_or_uuid, virt_last_error());
        return -1;
    }
    if (parse_domain_disks(xml, name_or_uuid, disks, n, err) < 0)
        return -1;
    *running = active == 1;
    return 0;
}

/* ---- the running domains ---------------------------------------------------- */

void virt_domains_free(struct virt_domain *doms, size_t n)
{
    for (size_t i = 0; doms && i < n; i++) {
        free(doms[i].name);
        virt_disks_free(doms[i].disks, doms[i].ndisks);
    }
    free(doms);
}

int virt_running_domains(struct virt *v, struct virt_domain **out, size_t *n,
                         struct gvm_error *err)
{
    _cleanup_conn_ virConnectPtr c = NULL;
    virDomainPtr *doms = NULL;
    struct virt_domain *res = NULL;
    size_t nres = 0;
    int ndoms, r = 0;

    *out = NULL;
    *n = 0;
    /* Without libvirt on the host (configured so), no domain runs that
     * could use a catalogued image. */
    if (v->none)
        return 0;
    c = conn_get(v, err);
    if (!c)
        return -1;
    ndoms = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (ndoms < 0) {
        gvm_error_set(err, GVM_ERR_VIRT, "Cannot list the running domains of "
                      "%s: %s.", v->uri, virt_last_error());
        return -1;
    }
    if (ndoms > 0 && !(res = calloc((size_t)ndoms, sizeof(*res))))
        r = -ENOMEM;
    for (int i = 0; i < ndoms && r == 0; i++) {
        const char *name = virDomainGetName(doms[i]);
        _cleanup_free_ char *xml = virDomainGetXMLDesc(doms[i], 0);
        struct gvm_error perr;

        /* A domain that stopped or vanished since the listing uses
         * nothing any more. */
        if (!xml || !name || virDomainIsActive(doms[i]) != 1)
            continue;
        gvm_error_clear(&perr);
        if (parse_domain_disks(xml, name, &res[nres].disks, &res[nres].ndisks,
                               &perr) < 0) {
            log_warn("%s", perr.message);
            continue;
        }
        if (!(res[nres].name = strdup(name))) {
            virt_disks_free(res[nres].disks, res[nres].ndisks);
            r = -ENOMEM;
            break;
        }
        nres++;
    }
    for (int i = 0; i < ndoms; i++)
        virDomainFree(doms[i]);
    free(doms);
    if (r < 0) {
        virt_domains_free(res, nres);
        return gvm_error_oom(err);
    }
    *out = res;
    *n = nres;
    return 0;
}
