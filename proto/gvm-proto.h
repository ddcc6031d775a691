/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gvm-proto.h — the protocol's numbers, shared by gvmd and gvmctl.
 *
 * Limits, JSON-RPC error codes and the error classes carried in
 * error.data.class.  PROTOCOL.md beside this file is the prose; if the two
 * disagree, this header is what the code does and the document is the bug.
 */
#ifndef GVM_PROTO_H
#define GVM_PROTO_H

#define GVM_PROTOCOL_VERSION 1

/* Limits applied by the control layer before any handler runs. */
#define GVM_MAX_MESSAGE      (1024 * 1024)   /* bytes of one message, w/o '\n' */
#define GVM_MAX_DEPTH        32              /* nesting of arrays/objects      */
#define GVM_MAX_STRING       4096            /* bytes of any JSON string       */
#define GVM_MAX_BATCH        256             /* requests in one batch          */
#define GVM_MAX_CONN_TOTAL   512             /* connections, all users         */
#define GVM_MAX_CONN_PER_UID 160             /* connections of one uid         */

#define GVM_DEFAULT_SOCKET    "/run/gvmd/gvmd.sock"
#define GVM_DEFAULT_RO_SOCKET "/run/gvmd/gvmd-ro.sock"
#define GVM_DEFAULT_CATALOG   "/var/lib/gvmd/catalog.db"
#define GVM_DEFAULT_LIBVIRT   "qemu:///system"
#define GVM_GROUP             "gvm"
#define GVM_GLUSTER_PORT      24007

/* JSON-RPC 2.0 error codes. */
#define GVM_RPC_PARSE_ERROR      (-32700)
#define GVM_RPC_INVALID_REQUEST  (-32600)
#define GVM_RPC_METHOD_NOT_FOUND (-32601)
#define GVM_RPC_INVALID_PARAMS   (-32602)
#define GVM_RPC_INTERNAL         (-32603)
#define GVM_RPC_SERVER_ERROR     (-32000)

/*
 * Error classes.  The first five map to the JSON-RPC codes above; the rest
 * are sent as -32000 with data.class set to the name in GVM_ERROR_CLASSES.
 */
#define GVM_ERROR_CLASSES(X)                         \
    X(NONE,             "None",             0)       \
    X(PARSE,            "ParseError",       GVM_RPC_PARSE_ERROR)      \
    X(INVALID_REQUEST,  "InvalidRequest",   GVM_RPC_INVALID_REQUEST)  \
    X(METHOD_NOT_FOUND, "MethodNotFound",   GVM_RPC_METHOD_NOT_FOUND) \
    X(INVALID_PARAMS,   "InvalidParams",    GVM_RPC_INVALID_PARAMS)   \
    X(INTERNAL,         "Internal",         GVM_RPC_INTERNAL)         \
    X(NOT_FOUND,        "NotFound",         GVM_RPC_SERVER_ERROR)     \
    X(ALREADY_EXISTS,   "AlreadyExists",    GVM_RPC_SERVER_ERROR)     \
    X(IN_USE,           "InUse",            GVM_RPC_SERVER_ERROR)     \
    X(BUSY,             "Busy",             GVM_RPC_SERVER_ERROR)     \
    X(UNSUPPORTED,      "Unsupported",      GVM_RPC_SERVER_ERROR)     \
    X(CORRUPT,          "Corrupt",          GVM_RPC_SERVER_ERROR)     \
    X(STORAGE,          "StorageError",     GVM_RPC_SERVER_ERROR)     \
    X(VIRT,             "VirtError",        GVM_RPC_SERVER_ERROR)     \
    X(PERMISSION,       "PermissionDenied", GVM_RPC_SERVER_ERROR)     \
    X(CONFLICT,         "Conflict",         GVM_RPC_SERVER_ERROR)     \
    X(NO_SPACE,         "NoSpace",          GVM_RPC_SERVER_ERROR)

enum gvm_error_class {
#define GVM_X_ENUM(id, name, code) GVM_ERR_##id,
    GVM_ERROR_CLASSES(GVM_X_ENUM)
#undef GVM_X_ENUM
    GVM_ERR__COUNT
};

/* Method flags, used in methods.def. */
#define GVM_M_RO       0x1  /* allowed on the read-only socket               */
#define GVM_M_BLOCKING 0x2  /* may touch storage or libvirt: run off the loop */
#define GVM_M_MUTATING 0x4  /* changes state: accepts op-id                   */
#define GVM_M_ROOT     0x8  /* callers with uid 0 only (gvm members refused)  */
#define GVM_M_HEAVY    0x10 /* cost grows with image or catalog size: on the
                               read-only socket, a pool of its own          */

/*
 * Parameter specs (the 4th column of methods.def): space-separated
 * "name:T" with an optional trailing '?' for optional parameters.
 *   s string   i integer   b boolean   a array   o object   j any JSON
 *   r IMAGE reference (integer id or string; parsed and checked at the edge)
 *   R IMAGE reference or null
 *   S string or integer (domain name/uuid, snapshot name/id)
 */

#endif
