/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control.h — the control sockets: listening (read-write and read-only,
 * or descriptors handed over by systemd), peer credentials, connection
 * caps, newline framing with the message-size limit, back-pressure, and
 * event broadcast.  The JSON-RPC envelope is rpc.c's.
 *
 * Everything here runs on the loop thread except control_broadcast_event().
 */
#ifndef GVMD_CONTROL_H
#define GVMD_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "gvmd.h"

struct control;
struct conn;

/* What a connection may call. */
enum conn_access {
    CONN_ACCESS_FULL,   /* rw socket, root or member of group gvm      */
    CONN_ACCESS_RO,     /* ro socket: GVM_M_RO methods only            */
    CONN_ACCESS_NONE,   /* rw socket, anyone else: every call refused  */
};

/* The protocol spoken over the sockets, given by the layer above (daemon.c
 * wires rpc.c's in), so that the transport knows no protocol and never
 * calls up. */
struct control_protocol {
    void *opaque;
    /* One message (without its '\n') from connection c.  Loop thread. */
    void (*message)(void *opaque, struct conn *c, const char *buf, size_t len);
    /* The protocol's reply line (malloc'd, without '\n'; NULL when out of
     * memory) for an error that answers no request: framing errors and
     * refused connections. */
    char *(*error_line)(void *opaque, const struct gvm_error *err);
};

/* Listen on d->cfg's sockets (or the systemd-activated descriptors) and
 * serve them on d->base, handing messages to proto (copied).  Fills err
 * and returns -1 on failure. */
int control_new(struct gvmd *d, const struct control_protocol *proto,
                struct control **out, struct gvm_error *err);
/* Close the listeners and remove the socket files we created; existing
 * connections go on being served. */
void control_stop_accepting(struct control *ctl);
/* Close every connection (after a last non-blocking attempt to send what
 * is queued for it) and free everything. */
void control_free(struct control *ctl);

/* Serve fd, a connected SOCK_STREAM socket, as if it had been accepted on
 * the read-only (ro) or the read-write socket from a peer with uid and gid
 * (the supplementary groups still come from the socket's peer): the
 * connection caps and the privilege look-up apply as for an accepted one.
 * fd is taken over in every case; on a refusal (a cap) the peer gets the
 * error line, fd is closed, and -1 is returned with err set.  The accept
 * path runs through the same code; tests/fuzz/fuzz-rpc.c serves one end
 * of a socketpair with it.  Loop thread only. */
int control_serve_fd(struct control *ctl, int fd, bool ro, uid_t uid,
                     gid_t gid, struct gvm_error *err);

/* Send {"jsonrpc":"2.0","method":"event","params":event} to every
 * connection that called events-subscribe.  Callable from any thread; the
 * event is borrowed (control takes its own reference). */
void control_broadcast_event(struct control *ctl, json_t *event);

/* ---- for rpc.c: one connection ------------------------------------------ */

struct conn *control_conn_ref(struct conn *c);
void control_conn_unref(struct conn *c);
/* Queue one reply line (a '\n' is appended).  A no-op once the peer is
 * gone. */
void control_conn_send(struct conn *c, const char *data, size_t len);
/* The output buffer, to serialise a reply straight into it (NULL once the
 * peer is gone); finish the line with control_conn_send(c, NULL, 0). */
struct evbuffer *control_conn_output(struct conn *c);
enum conn_access control_conn_access(const struct conn *c);
uid_t control_conn_uid(const struct conn *c);
pid_t control_conn_pid(const struct conn *c);
bool control_conn_is_closed(const struct conn *c);
void control_conn_subscribe(struct conn *c);
/* A call of this connection went to (or came back from) a worker: while
 * too many are in flight, the connection's input is not read. */
void control_conn_call_started(struct conn *c);
void control_conn_call_finished(struct conn *c);

#endif
