/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpc.c — the JSON-RPC 2.0 envelope and dispatch.
 *
 * A message goes through, in this order:
 *   1. a byte pre-scan for nesting depth (jansson has no depth option, and
 *      refusing before parsing bounds the parser's recursion too);
 *   2. json_loadb with duplicate keys rejected (jansson also rejects invalid
 *      UTF-8 and \u0000);
 *   3. per request: envelope checks (object, "jsonrpc":"2.0", method
 *      string, id string/number/null, params object), the string-length
 *      limit, the caller's privileges, the method table, parameter
 *      validation against the method's spec string, op-id replay;
 *   4. the handler: inline on the loop, or on a worker (GVM_M_BLOCKING).
 * Nothing before step 4 allocates per call beyond what jansson's parser
 * needs, and single replies are serialised straight into the connection's
 * output buffer.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "control.h"
#include "rpc-check.h"
#include "imageref.h"
#include "jsonutil.h"
#include "rpc.h"
#include "volume.h"
#include "workq.h"

struct rpc {
    struct gvmd *d;
    struct method *methods;     /* sorted by wire name */
    size_t nmethods;
    /* op-id replay: key "uid\nmethod\nop-id" -> first result.  Keyed by
     * the caller's uid so that nobody's op-id answers another's call, and
     * each uid's keys in `order` (uid -> array, oldest first) evict only
     * that uid's oldest.  Only calls on the read-write socket take part:
     * on the read-only one nothing changes that a repeat could spare. */
    json_t *replay;
    json_t *order;
    json_t *inflight;           /* keys of calls still running */
};

/* A batch waiting for its worker calls: replies are kept in request order
 * and sent as one array when the last call finishes. */
/* Bytes of serialised replies one batch may hold until it is sent: the
 * replies wait for the slowest call, and a batch of 256 large results
 * must not hold hundreds of MiB (the connection's own output cap only
 * sees them once the batch is sent). */
#define RPC_BATCH_MAX_BYTES (16u * 1024 * 1024)

struct batch {
    unsigned pending;
    struct conn *conn;
    size_t n;
    char **replies;             /* serialised; NULL where no reply */
    atomic_size_t bytes;        /* added to by workers */
    atomic_bool too_big;        /* past RPC_BATCH_MAX_BYTES: replies dropped */
};

struct rpc_call {
    struct rpc *rpc;
    struct conn *conn;
    struct batch *batch;
    size_t slot;
    const struct method *m;
    json_t *id;                 /* NULL: notification */
    json_t *params;
    char *op_id;
    char *replay_key;
    json_t *result;
    char *line;                 /* the reply, serialised by the worker */
    struct gvm_error err;
    int rc;
};

/* ---- method table ------------------------------------------------------- */

static int method_cmp(const void *a, const void *b)
{
    return strcmp(((const struct method *)a)->wire,
                  ((const struct method *)b)->wire);
}

static const struct method *find_method(struct rpc *rpc, const char *name)
{
    struct method key = { .wire = name };

    return bsearch(&key, rpc->methods, rpc->nmethods, sizeof(key), method_cmp);
}

int rpc_new(struct gvmd *d, const struct rpc_method *table, size_t n,
            struct rpc **out)
{
    struct rpc *rpc = calloc(1, sizeof(*rpc));

    if (!rpc)
        return -ENOMEM;
    rpc->d = d;
    rpc->nmethods = n;
    rpc->methods = calloc(rpc->nmethods, sizeof(*rpc->methods));
    rpc->replay = json_object();
    rpc->order = json_object();
    rpc->inflight = json_object();
    if (!rpc->methods || !rpc->replay || !rpc->order || !rpc->inflight) {
        rpc_free(rpc);
        return -ENOMEM;
    }
    for (size_t i = 0; i < rpc->nmethods; i++) {
        rpc->methods[i].wire = table[i].wire;
        rpc->methods[i].flags = table[i].flags;
        rpc->methods[i].spec = table[i].spec;
        rpc->methods[i].fn = table[i].fn;
        if (rpc_check_parse_spec(&rpc->methods[i]) < 0) {
            rpc_free(rpc);
            return -EINVAL;
        }
    }
    qsort(rpc->methods, rpc->nmethods, sizeof(*rpc->methods), method_cmp);
    *out = rpc;
    return 0;
}

void rpc_free(struct rpc *rpc)
{
    if (!rpc)
        return;
    for (size_t i = 0; rpc->methods && i < rpc->nmethods; i++) {
        for (size_t j = 0; j < rpc->methods[i].nparams; j++)
            free(rpc->methods[i].params[j].name);
        free(rpc->methods[i].params);
    }
    free(rpc->methods);
    json_decref(rpc->order);
    json_decref(rpc->replay);
    json_decref(rpc->inflight);
    free(rpc);
}

/* ---- errors --------------------------------------------------------------- */

static json_t *reply_object(json_t *id, json_t *result, const struct gvm_error *err)
{
    json_t *r = json_object();

    if (!r)
        return NULL;
    if (gvm_json_set(r, "jsonrpc", json_string("2.0")) < 0 ||
        json_object_set(r, "id", id ? id : json_null()) < 0 ||
        (err ? gvm_json_set(r, "error", gvm_error_to_json(err))
             : json_object_set(r, "result", result ? result : json_null())) < 0) {
        json_decref(r);
        return NULL;
    }
    return r;
}

static int dump_to_evbuffer(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* Append v's compact JSON to out.  Small values (the common case) are
 * serialised into a stack buffer and added with one evbuffer_add; jansson's
 * callback interface would otherwise add every token separately. */
static void dump_json(struct evbuffer *out, json_t *v)
{
    char buf[2048];
    size_t n = json_dumpb(v, buf, sizeof(buf), JSON_COMPACT | JSON_ENCODE_ANY);

    if (n == 0)
        evbuffer_add(out, "null", 4);
    else if (n <= sizeof(buf))
        evbuffer_add(out, buf, n);
    else if (json_dump_callback(v, dump_to_evbuffer, out,
                                JSON_COMPACT | JSON_ENCODE_ANY) < 0)
        evbuffer_add(out, "null", 4);
}

/* Serialise a reply straight into the connection's output. */
static void send_reply(struct conn *c, json_t *id, json_t *result,
                       const struct gvm_error *err)
{
    struct evbuffer *out = control_conn_output(c);
    json_t *body;

    if (!out)
        return;
    evbuffer_add(out, "{\"jsonrpc\":\"2.0\",\"id\":", 22);
    if (id)
        dump_json(out, id);
    else
        evbuffer_add(out, "null", 4);
    if (err) {
        body = gvm_error_to_json(err);
        evbuffer_add(out, ",\"error\":", 9);
    } else {
        body = result ? json_incref(result) : json_null();
        evbuffer_add(out, ",\"result\":", 10);
    }
    if (body)
        dump_json(out, body);
    else
        evbuffer_add(out, "null", 4);
    json_decref(body);
    control_conn_send(c, "}", 1);
}

static void send_error(struct conn *c, const struct gvm_error *err)
{
    send_reply(c, NULL, NULL, err);
}

static char *rpc_error_line(const struct gvm_error *err)
{
    _cleanup_json_ json_t *r = reply_object(NULL, NULL, err);

    return r ? json_dumps(r, JSON_COMPACT) : NULL;
}

/* ---- op-id replay ------------------------------------------------------------ */

static char *replay_key(const struct method *m, uid_t uid, const char *op_id)
{
    char *k;

    if (asprintf(&k, "%u\n%s\n%s", (unsigned)uid, m->wire, op_id) < 0)
        return NULL;
    return k;
}

static void replay_remember(struct rpc *rpc, const char *key, json_t *result)
{
    char uid[16];
    json_t *keys;

    if (json_object_get(rpc->replay, key))
        return;
    snprintf(uid, sizeof(uid), "%.*s", (int)strcspn(key, "\n"), key);
    keys = json_object_get(rpc->order, uid);
    if (!keys) {
        keys = json_array();
        if (gvm_json_set(rpc->order, uid, keys) < 0)
            return;
    }
    if (json_array_size(keys) >= RPC_REPLAY_MAX) {
        json_object_del(rpc->replay, json_string_value(json_array_get(keys, 0)));
        json_array_remove(keys, 0);
    }
    if (gvm_json_append(keys, json_string(key)) < 0)
        return;
    json_object_set(rpc->replay, key, result ? result : json_null());
}

/* ---- calls ------------------------------------------------------------------- */

static void batch_put(struct batch *b)
{
    struct evbuffer *out;
    bool first = true;

    if (--b->pending)
        return;
    out = control_conn_is_closed(b->conn) ? NULL : control_conn_output(b->conn);
    if (out && b->too_big) {
        struct gvm_error err = { 0 };

        gvm_error_set(&err, GVM_ERR_INVALID_REQUEST, "The replies of a batch "
                      "of %zu requests exceed %u MiB; every call ran, but no "
                      "reply is sent: send smaller batches.", b->n,
                      RPC_BATCH_MAX_BYTES >> 20);
        send_error(b->conn, &err);
        out = NULL;
    }
    for (size_t i = 0; out && i < b->n; i++) {
        if (!b->replies[i])
            continue;
        evbuffer_add(out, first ? "[" : ",", 1);
        evbuffer_add(out, b->replies[i], strlen(b->replies[i]));
        first = false;
    }
    /* An all-notification batch is answered with nothing at all. */
    if (out && !first)
        control_conn_send(b->conn, "]", 1);
    for (size_t i = 0; i < b->n; i++)
        free(b->replies[i]);
    free(b->replies);
    control_conn_unref(b->conn);
    free(b);
}

/* Count a batch member's serialised reply against RPC_BATCH_MAX_BYTES:
 * the line, or NULL (freed) once the batch is past it.  Any thread. */
static char *batch_count(struct batch *b, char *line)
{
    if (!line || atomic_load(&b->too_big)) {
        free(line);
        return NULL;
    }
    if (atomic_fetch_add(&b->bytes, strlen(line) + 1) + strlen(line) + 1 >
        RPC_BATCH_MAX_BYTES) {
        atomic_store(&b->too_big, true);
        free(line);
        return NULL;
    }
    return line;
}

/* Keep a batch member's counted reply (loop thread). */
static void batch_keep(struct batch *b, size_t slot, char *line)
{
    if (atomic_load(&b->too_big)) {
        free(line);
        for (size_t i = 0; i < b->n; i++) {
            free(b->replies[i]);
            b->replies[i] = NULL;
        }
        return;
    }
    b->replies[slot] = line;
}

/* The reply to call as one line (malloc'd), NULL on ENOMEM. */
static char *reply_line(const struct rpc_call *call)
{
    const struct gvm_error *err = call->rc < 0 ? &call->err : NULL;
    _cleanup_json_ json_t *r = reply_object(call->id, call->result, err);

    return r ? json_dumps(r, JSON_COMPACT) : NULL;
}

/* Deliver the outcome of a call (loop thread). */
static void call_finish(struct rpc_call *call)
{
    const struct gvm_error *err = call->rc < 0 ? &call->err : NULL;

    if (call->replay_key) {
        json_object_del(call->rpc->inflight, call->replay_key);
        if (!err)
            replay_remember(call->rpc, call->replay_key, call->result);
    }
    if (err && err->cls == GVM_ERR_INTERNAL)
        log_error("%s: %s", call->m ? call->m->wire : "request", err->message);
    else if (err)
        log_debug("%s: %s", call->m ? call->m->wire : "request", err->message);

    if (!call->id) {
        /* A notification: executed, never answered. */
    } else if (call->batch) {
        /* A worker's line is counted already. */
        if (call->line)
            batch_keep(call->batch, call->slot, steal_pointer(&call->line));
        else if (!atomic_load(&call->batch->too_big))
            batch_keep(call->batch, call->slot,
                       batch_count(call->batch, reply_line(call)));
    } else if (call->line) {
        control_conn_send(call->conn, call->line, strlen(call->line));
    } else {
        send_reply(call->conn, call->id, call->result, err);
    }
}

static void call_clear(struct rpc_call *call)
{
    json_decref(call->id);
    json_decref(call->params);
    json_decref(call->result);
    free(call->op_id);
    free(call->replay_key);
    free(call->line);
}

/*
 * A call on the read-only socket reaches registered volumes only: anyone
 * on the machine may call there, and a gluster URI or json: reference to
 * an unregistered volume would make gvmd (root) register it and connect
 * wherever the reference points.  The top-level string parameters that are
 * such references must name a registered volume: 0, or -1 with
 * call->err set, before anything connects.
 */
static int ro_refs_registered(struct rpc_call *call)
{
    const char *key;
    json_t *v;

    json_object_foreach(call->params, key, v) {
        const char *s = json_string_value(v);
        struct imageref ref = { 0 };
        struct gvm_error e = { 0 };
        _cleanup_free_ char *name = NULL;
        int r;

        if (!s || (strncmp(s, "gluster", 7) != 0 && strncmp(s, "json:", 5) != 0))
            continue;
        if (imageref_parse_string(s, key, &ref, &e) < 0)
            continue;           /* the handler reports what is wrong */
        r = ref.kind == IMAGEREF_GLUSTER
            ? volumes_find_gluster(call->rpc->d->vols, ref.volume, ref.servers,
                                   ref.nservers, &name, &call->err)
            : 1;
        if (r == 0)
            gvm_error_set(&call->err, GVM_ERR_PERMISSION, "Parameter '%s' "
                          "names gluster volume '%s' through servers no "
                          "registered volume has; on the read-only socket "
                          "gvmd reaches registered volumes only (root "
                          "registers one with volume-add).", key, ref.volume);
        imageref_clear(&ref);
        if (r <= 0)
            return -1;
    }
    return 0;
}

static void call_run(struct rpc_call *call)
{
    json_t *result = NULL;

    if (rpc_call_read_only(call) && ro_refs_registered(call) < 0) {
        call->rc = -1;
        return;
    }
    call->rc = call->m->fn(call->rpc->d, call, call->params, &result, &call->err);
    if (call->rc < 0) {
        json_decref(result);
        if (!gvm_error_isset(&call->err))
            gvm_error_set(&call->err, GVM_ERR_INTERNAL,
                          "%s failed without saying why.", call->m->wire);
        call->rc = -1;
    } else {
        call->rc = 0;
        call->result = result ? result : json_object();
    }
}

static void worker_run(void *arg)
{
    struct rpc_call *call = arg;

    /* Nobody to answer: a caller that left does not keep a worker busy. */
    if (rpc_call_abandoned(call)) {
        gvm_error_set(&call->err, GVM_ERR_BUSY, "The caller of %s left "
                      "before it ran.", call->m->wire);
        call->rc = -1;
        return;
    }
    call_run(call);
    /* Serialised here, not on the loop: a large result (image-map of a
     * fragmented image) costs the loop nothing, and only its text (a
     * fraction of the JSON tree) waits for the loop. */
    if (call->id) {
        call->line = reply_line(call);
        if (call->batch)
            call->line = batch_count(call->batch, call->line);
        if (!call->replay_key) {
            json_decref(call->result);
            call->result = NULL;
        }
    }
}

static void worker_done(void *arg)
{
    struct rpc_call *call = arg;
    struct batch *b = call->batch;

    call_finish(call);
    control_conn_call_finished(call->conn);
    control_conn_unref(call->conn);
    call_clear(call);
    free(call);
    if (b)
        batch_put(b);
}

/* The read-write socket's calls, the read-only socket's light ones and its
 * heavy ones each have workers of their own (daemon.c). */
static struct workq *pool(const struct rpc_call *call)
{
    const struct gvmd *d = call->rpc->d;

    if (!rpc_call_read_only(call))
        return d->wq;
    return call->m->flags & GVM_M_HEAVY ? d->wq_heavy : d->wq_ro;
}

/* Hand a validated call to a worker; the stack copy is emptied. */
static int dispatch_blocking(struct rpc_call *call)
{
    struct rpc_call *heap = malloc(sizeof(*heap));
    int rc;

    if (!heap) {
        gvm_error_set(&call->err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    *heap = *call;
    control_conn_ref(heap->conn);
    if (heap->batch)
        heap->batch->pending++;
    rc = workq_submit(pool(call), control_conn_uid(call->conn), worker_run,
                      worker_done, heap);
    if (rc < 0) {
        if (heap->batch)
            heap->batch->pending--;
        control_conn_unref(heap->conn);
        free(heap);
        gvm_error_set(&call->err, GVM_ERR_BUSY,
                      rc == -ESHUTDOWN ? "gvmd is shutting down."
                                       : "Cannot queue the call: %s.",
                      strerror(-rc));
        return -1;
    }
    control_conn_call_started(heap->conn);
    memset(call, 0, sizeof(*call));
    return 0;
}

static void invalid(struct gvm_error *err, const char *msg)
{
    gvm_error_set(err, GVM_ERR_INVALID_REQUEST, "%s", msg);
}

/* The request object's envelope: id, members, jsonrpc, method, params.
 * 0 with *name and *params (NULL if absent) set; -1 for a refusal answered
 * only when the request has an id; -2 for an invalid request object,
 * answered even without one (JSON-RPC 2.0 §5: with id null). */
static int check_envelope(struct rpc_call *call, json_t *req,
                          const char **name, json_t **params)
{
    const char *key;
    json_t *v;

    if (!json_is_object(req)) {
        invalid(&call->err, "A request must be a JSON object.");
        return -1;
    }
    v = json_object_get(req, "id");
    if (v && !json_is_string(v) && !json_is_number(v) && !json_is_null(v)) {
        invalid(&call->err, "The request's id must be a string, a number or null.");
        return -1;
    }
    if (v && json_is_string(v) && json_string_length(v) > GVM_MAX_STRING) {
        invalid(&call->err, "The request's id is longer than 4096 bytes.");
        return -1;
    }
    /* From here on errors are answered with the request's id, and a
     * request without one is a notification: never answered. */
    call->id = v ? json_incref(v) : NULL;

    json_object_foreach(req, key, v) {
        if (strcmp(key, "jsonrpc") && strcmp(key, "method") &&
            strcmp(key, "params") && strcmp(key, "id")) {
            gvm_error_set(&call->err, GVM_ERR_INVALID_REQUEST,
                          "Unknown member '" NAME_FMT "' in the request; a request has jsonrpc, method, params and id.",
                          NAME_ARG(key));
            return -2;
        }
    }
    v = json_object_get(req, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0")) {
        invalid(&call->err, "The request must have \"jsonrpc\": \"2.0\".");
        return -2;
    }
    v = json_object_get(req, "method");
    if (!json_is_string(v)) {
        invalid(&call->err, "The request's method must be a string.");
        return -2;
    }
    *name = json_string_value(v);
    if (json_string_length(v) > GVM_MAX_STRING) {
        invalid(&call->err, "The method name is longer than 4096 bytes.");
        return -2;
    }
    *params = json_object_get(req, "params");
    if (*params && !json_is_object(*params) && !json_is_array(*params)) {
        invalid(&call->err, "The request's params must be an object.");
        return -2;
    }
    return 0;
}

/* Method-level checks (a notification gets no answer for these): the
 * caller may call the method, and its params are named, within the limits
 * and as its spec says.  0 with call->m and call->params set, or -1. */
static int check_call(struct rpc *rpc, struct rpc_call *call, const char *name,
                      json_t *params)
{
    enum conn_access access = control_conn_access(call->conn);
    const char *key;
    json_t *v;
    size_t n;

    if (access == CONN_ACCESS_NONE) {
        gvm_error_set(&call->err, GVM_ERR_PERMISSION,
                      "Permission denied: uid %u is neither root nor a member of group '%s'; use the read-only socket for queries.",
                      (unsigned)control_conn_uid(call->conn), GVM_GROUP);
        return -1;
    }
    call->m = find_method(rpc, name);
    if (!call->m) {
        gvm_error_set(&call->err, GVM_ERR_METHOD_NOT_FOUND,
                      "Unknown method '" NAME_FMT "'.", NAME_ARG(name));
        return -1;
    }
    if (access == CONN_ACCESS_RO && !(call->m->flags & GVM_M_RO)) {
        gvm_error_set(&call->err, GVM_ERR_PERMISSION,
                      "Permission denied: this socket is read-only and %s is not a read-only method; use the read-write socket.",
                      call->m->wire);
        return -1;
    }
    if ((call->m->flags & GVM_M_ROOT) && control_conn_uid(call->conn) != 0) {
        gvm_error_set(&call->err, GVM_ERR_PERMISSION,
                      "Permission denied: %s is for root only (uid %u is not "
                      "root): a volume decides which host directories and "
                      "gluster servers gvmd, running as root, reads and writes.",
                      call->m->wire, (unsigned)control_conn_uid(call->conn));
        return -1;
    }
    if (params && json_is_array(params)) {
        gvm_error_set(&call->err, GVM_ERR_INVALID_PARAMS,
                      "The params of %s must be an object of named parameters, not an array.",
                      call->m->wire);
        return -1;
    }
    if (params) {
        json_object_foreach(params, key, v) {
            if (strlen(key) > GVM_MAX_STRING) {
                gvm_error_param(&call->err, "",
                                "A parameter name of %s is longer than %d bytes.",
                                call->m->wire, GVM_MAX_STRING);
                return -1;
            }
            if ((n = rpc_check_overlong(v))) {
                gvm_error_param(&call->err, key,
                                "Parameter '" NAME_FMT "' of %s contains a string of %zu bytes; the limit is %d.",
                                NAME_ARG(key), call->m->wire, n, GVM_MAX_STRING);
                return -1;
            }
        }
        call->params = json_incref(params);
    } else {
        call->params = json_object();
    }
    return rpc_check_params(call->m, call->params, &call->op_id, &call->err);
}

static void replay_forget_key(struct rpc_call *call)
{
    free(call->replay_key);
    call->replay_key = NULL;
}

/* A call with an op-id on the read-write socket: a repeat is answered with
 * the first result (1, call->result set), a repeat of a call still running
 * is Busy (-1); otherwise the key is marked in flight (0). */
static int replay_check(struct rpc *rpc, struct rpc_call *call)
{
    json_t *v;

    call->replay_key = replay_key(call->m, control_conn_uid(call->conn),
                                  call->op_id);
    if (!call->replay_key) {
        gvm_error_set(&call->err, GVM_ERR_INTERNAL, "Out of memory.");
        return -1;
    }
    v = json_object_get(rpc->replay, call->replay_key);
    if (v) {
        /* A repeat: the first result, without running anything. */
        call->result = json_incref(v);
        replay_forget_key(call);
        return 1;
    }
    if (json_object_get(rpc->inflight, call->replay_key)) {
        gvm_error_set(&call->err, GVM_ERR_BUSY,
                      "The %s call with op-id '" NAME_FMT "' is still running.",
                      call->m->wire, NAME_ARG(call->op_id));
        replay_forget_key(call);
        return -1;
    }
    if (gvm_json_set(rpc->inflight, call->replay_key, json_true()) < 0) {
        gvm_error_set(&call->err, GVM_ERR_INTERNAL, "Out of memory.");
        replay_forget_key(call);
        return -1;
    }
    return 0;
}

/* Validate one request and run it (or queue it).  On any refusal before
 * the handler, call->rc = -1 with call->err set. */
static void call_prepare_and_run(struct rpc *rpc, struct rpc_call *call,
                                 json_t *req)
{
    const char *name = NULL;
    json_t *params = NULL;
    int r;

    call->rc = -1;
    r = check_envelope(call, req, &name, &params);
    if (r == -2 && !call->id)
        call->id = json_null();
    if (r < 0 || check_call(rpc, call, name, params) < 0)
        return;
    if (call->op_id && !rpc_call_read_only(call)) {
        r = replay_check(rpc, call);
        if (r != 0) {
            call->rc = r > 0 ? 0 : -1;
            return;
        }
    }
    if (call->m->flags & GVM_M_BLOCKING) {
        if (dispatch_blocking(call) == 0)
            return;             /* call is now empty; the worker answers */
        if (call->replay_key) {
            json_object_del(rpc->inflight, call->replay_key);
            replay_forget_key(call);
        }
        return;
    }
    call_run(call);
}

static void handle_request(struct rpc *rpc, struct conn *c, json_t *req,
                           struct batch *b, size_t slot)
{
    struct rpc_call call;

    memset(&call, 0, sizeof(call));
    call.rpc = rpc;
    call.conn = c;
    call.batch = b;
    call.slot = slot;
    call_prepare_and_run(rpc, &call, req);
    if (call.rpc == NULL)
        return;                 /* handed to a worker */
    if (call.rc < 0 && !call.id && call.err.cls == GVM_ERR_INVALID_REQUEST &&
        !call.m)
        call.id = json_null();  /* invalid before the id was known */
    call_finish(&call);
    call_clear(&call);
}

static void rpc_handle_message(struct rpc *rpc, struct conn *c,
                               const char *buf, size_t len)
{
    _cleanup_json_ json_t *msg = NULL;
    struct gvm_error err;
    json_error_t jerr;
    unsigned depth;

    gvm_error_clear(&err);
    depth = rpc_check_depth(buf, len, GVM_MAX_DEPTH);
    if (depth > GVM_MAX_DEPTH) {
        gvm_error_set(&err, GVM_ERR_INVALID_REQUEST,
                      "The message nests arrays/objects deeper than %d levels.",
                      GVM_MAX_DEPTH);
        send_error(c, &err);
        return;
    }
    msg = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!msg && json_error_code(&jerr) == json_error_numeric_overflow) {
        /* Valid JSON with an integer past 2^63 - 1: no parameter can
         * take it.  Read it again with such numbers as reals, only to
         * answer with the request's id. */
        _cleanup_json_ json_t *again = json_loadb(buf, len,
            JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
        json_t *id = json_is_object(again) ? json_object_get(again, "id") : NULL;
        json_t *rid = NULL;

        if (json_is_string(id)) {
            rid = id;
        } else if (json_is_real(id)) {
            double v = json_real_value(id);

            /* Echoed only if it is an integer a json_int_t holds (the
             * conversion of any other double is undefined); else null. */
            if (v >= -0x1p63 && v < 0x1p63 && v == (double)(json_int_t)v)
                rid = json_integer((json_int_t)v);
        }
        gvm_error_param(&err, "", "A number in the request is too large (at "
                        "byte %d): sizes, ids and counts must be below 2^63.",
                        jerr.position);
        send_reply(c, rid, NULL, &err);
        if (rid && rid != id)
            json_decref(rid);
        return;
    }
    if (!msg) {
        gvm_error_set(&err, GVM_ERR_PARSE,
                      "Parse error at byte %d (line %d, column %d): %s.",
                      jerr.position, jerr.line, jerr.column, jerr.text);
        send_error(c, &err);
        return;
    }
    if (json_is_array(msg)) {
        size_t n = json_array_size(msg);
        struct batch *b;

        if (n == 0) {
            gvm_error_set(&err, GVM_ERR_INVALID_REQUEST,
                          "An empty batch is not a valid request.");
            send_error(c, &err);
            return;
        }
        if (n > GVM_MAX_BATCH) {
            gvm_error_set(&err, GVM_ERR_INVALID_REQUEST,
                          "A batch of %zu requests exceeds the limit of %d.",
                          n, GVM_MAX_BATCH);
            send_error(c, &err);
            return;
        }
        b = calloc(1, sizeof(*b));
        if (b)
            b->replies = calloc(n, sizeof(*b->replies));
        if (!b || !b->replies) {
            free(b);
            gvm_error_set(&err, GVM_ERR_INTERNAL, "Out of memory.");
            send_error(c, &err);
            return;
        }
        b->pending = 1;
        b->n = n;
        b->conn = control_conn_ref(c);
        for (size_t i = 0; i < n; i++)
            handle_request(rpc, c, json_array_get(msg, i), b, i);
        batch_put(b);
        return;
    }
    handle_request(rpc, c, msg, NULL, 0);
}

/* ---- for handlers ---------------------------------------------------------- */

const char *rpc_call_op_id(const struct rpc_call *call)
{
    return call->op_id;
}

const char *rpc_call_method(const struct rpc_call *call)
{
    return call->m ? call->m->wire : NULL;
}

bool rpc_call_abandoned(const struct rpc_call *call)
{
    /* A call that changes state runs to its end: its client may come back
     * for the result with the same op-id, or look at the job.  At shutdown
     * nobody waits for a read either (the workers are being drained). */
    return (control_conn_is_closed(call->conn) || atomic_load(&call->rpc->d->stopping)) &&
           !(call->m->flags & GVM_M_MUTATING);
}

uid_t rpc_call_uid(const struct rpc_call *call)
{
    return control_conn_uid(call->conn);
}

bool rpc_call_read_only(const struct rpc_call *call)
{
    return control_conn_access(call->conn) == CONN_ACCESS_RO;
}

void rpc_call_subscribe(struct rpc_call *call)
{
    control_conn_subscribe(call->conn);
}

/* ---- as control's protocol -------------------------------------------------- */

static void protocol_message(void *opaque, struct conn *c, const char *buf,
                             size_t len)
{
    rpc_handle_message(opaque, c, buf, len);
}

static char *protocol_error_line(void *opaque, const struct gvm_error *err)
{
    (void)opaque;
    return rpc_error_line(err);
}

struct control_protocol rpc_protocol(struct rpc *rpc)
{
    return (struct control_protocol){
        .opaque = rpc,
        .message = protocol_message,
        .error_line = protocol_error_line,
    };
}
