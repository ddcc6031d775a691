/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal.h — crash safety for multi-step storage changes (journal.c).
 *
 * The rule every operation follows: before a step touches storage, the
 * step is written to the journal table and committed (sqlite WAL,
 * synchronous=FULL: it survives kill -9 and power loss).  So after a crash
 * the journal names the step that may have been half done, and the
 * operation's recover callback decides, from what it finds on storage,
 * whether to finish it (roll forward) or undo it (roll back).
 *
 * An operation is a sequence of rows sharing one generated op id:
 *   step 0      kind = the operation type ("image-rebase"), payload = the
 *               parameters recovery needs;
 *   step 1..n   kind = the step's name ("copying", "switch-header"),
 *               payload = what that step's recovery needs.
 * A step is "pending" from the moment it is recorded until the next step
 * is recorded (which marks it "done") or the operation ends: journal_done()
 * marks everything done, journal_undone() everything undone.  Operations run
 * by a job carry its id; job.c hands those to the job type's recover
 * callback.  journal_replay() handles the others at start-up.
 */
#ifndef GVMD_JOURNAL_H
#define GVMD_JOURNAL_H

#include <jansson.h>
#include <stdint.h>

#include "util.h"

struct catalog;

struct journal_op {
    struct catalog *cat;
    char *op_id;             /* generated, unique                         */
    int64_t job_id;          /* 0 if not run by a job                     */
    char *type;              /* the operation type (step 0's kind)        */
    int next_step;           /* number the next journal_step() gets       */
};

/* One row as recovery sees it (payload parsed). */
struct journal_entry {
    int step;
    char *kind;
    json_t *payload;
    bool pending;            /* state "pending"                           */
    bool undone;             /* state "undone"                            */
};
void journal_entries_free(struct journal_entry *e, size_t n);

/* Start an operation: write and commit step 0 (then run the fault point
 * named after the type).  params may be NULL. */
int journal_begin(struct catalog *cat, const char *type, int64_t job_id,
                  json_t *params, struct journal_op **out,
                  struct gvm_error *err);
/*
 * Record step `name` as pending (and every earlier step as done) and commit
 * it, before the caller touches storage.  Called inside a transaction of
 * the caller's (catalog_begin), the row becomes part of it, and it is the
 * caller's commit that must precede the storage change.  Then runs the
 * fault point `name` (see journal_fault_point()).
 */
int journal_step(struct journal_op *op, const char *name, json_t *payload,
                 struct gvm_error *err);
/* The operation finished: every pending row done.  Rolled back as a
 * whole: every row undone. */
int journal_done(struct journal_op *op, struct gvm_error *err);
int journal_undone(struct journal_op *op, struct gvm_error *err);
/* Drop the rows of an operation that ended (done or undone), for
 * operations run outside jobs, whose rows nothing else removes (a job's go
 * with the job).  Rows still pending are kept. */
int journal_forget(struct journal_op *op, struct gvm_error *err);
void journal_op_free(struct journal_op *op);
static inline void journal_op_freep(struct journal_op **op)
{ if (*op) journal_op_free(*op); }
#define _cleanup_journal_op_ _cleanup_(journal_op_freep)

/* Load an operation from its rows (for recovery): *op continues it, *entries
 * are its rows in step order.  Either output may be NULL if not wanted. */
int journal_load(struct catalog *cat, const char *op_id,
                 struct journal_op **op, struct journal_entry **entries,
                 size_t *n, struct gvm_error *err);
/* The op ids of a job's operations (job_id 0: operations run outside
 * jobs), oldest first; with pending_only, those that still have pending
 * rows.  Free with journal_op_ids_free. */
int journal_ops(struct catalog *cat, int64_t job_id, bool pending_only,
                char ***op_ids, size_t *n, struct gvm_error *err);
void journal_op_ids_free(char **ids, size_t n);

/* The last pending entry (the step that may be half done), or NULL. */
const struct journal_entry *journal_last_pending(const struct journal_entry *e,
                                                 size_t n);

/*
 * Start-up replay of operations not run by jobs: for each operation with
 * pending rows, the type whose name matches its step 0 is called; recover
 * returns 0 when it rolled forward (rows marked done), 1 when it rolled back
 * (rows marked undone), -1 with err set when it could do neither (rows stay
 * pending, so the next start tries again; the error is logged).  An
 * operation of unknown type is logged and left pending.
 * Returns the number of operations left pending.
 */
struct journal_type {
    const char *name;
    int (*recover)(void *opaque, struct journal_op *op,
                   const struct journal_entry *e, size_t n,
                   struct gvm_error *err);
};
int journal_replay(struct catalog *cat, const struct journal_type *types,
                   size_t ntypes, void *opaque);

/*
 * Fault injection at named points, in test builds (-Dfault_injection=true)
 * only.  If the environment variable
 * GVMD_FAULT holds a rule "step:NAME:kill" for this name, the process
 * raises SIGKILL here (as if killed by `kill -9` at that instant); with
 * "step:NAME:fail" this returns -EIO; "step:NAME:delayMS" sleeps MS
 * milliseconds (to make a job slow enough to catch).  Returns 0 otherwise.  journal_step()
 * calls it with the step's name right after the step is committed; code may
 * call it at other points worth testing (named "OPERATION.WHAT").
 */
#ifdef GVMD_FAULT_INJECTION
int journal_fault_point(const char *name);
#else
/* Release builds: no fault points. */
static inline int journal_fault_point(const char *name) { (void)name; return 0; }
#endif

#endif
