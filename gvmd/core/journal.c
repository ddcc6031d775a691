/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal.c — the operation journal: write-ahead records of multi-step
 * storage changes, and their replay at start-up (see journal.h).
 *
 * Ordering contract: journal_step() returns only after its row is
 * committed; the caller touches storage only after it returns.  The reverse
 * order (storage first, journal after) would leave a window where storage
 * changed and nothing says so — exactly what a crash finds.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "catalog-job.h"
#include "journal.h"
#include "jsonutil.h"

void journal_entries_free(struct journal_entry *e, size_t n)
{
    assert(e || n == 0);
    for (size_t i = 0; e && i < n; i++) {
        free(e[i].kind);
        json_decref(e[i].payload);
    }
    free(e);
}

void journal_op_free(struct journal_op *op)
{
    if (!op)
        return;
    free(op->op_id);
    free(op->type);
    free(op);
}

void journal_op_ids_free(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

/* A unique op id: type, job and 64 random bits (the time if the kernel
 * has no entropy for us, which only costs uniqueness across machines). */
static char *new_op_id(const char *type, int64_t job_id)
{
    uint64_t rnd;
    char *s;

    if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rnd = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    if (asprintf(&s, "%s-%" PRId64 "-%016" PRIx64, type, job_id, rnd) < 0)
        return NULL;
    return s;
}

static char *dump(json_t *payload)
{
    return payload ? json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS)
                   : strdup("{}");
}

int journal_begin(struct catalog *cat, const char *type, int64_t job_id,
                  json_t *params, struct journal_op **out,
                  struct gvm_error *err)
{
    /* job_id 0: an operation outside jobs; never a negative id. */
    assert(cat && type && out && job_id >= 0);
    struct journal_op *op = calloc(1, sizeof(*op));
    _cleanup_free_ char *text = NULL;
    int r;

    if (!op || !(op->op_id = new_op_id(type, job_id)) ||
        !(op->type = strdup(type)) || !(text = dump(params))) {
        journal_op_free(op);
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory starting a journal record.");
        return -1;
    }
    op->cat = cat;
    op->job_id = job_id;
    if (catalog_journal_add(cat, op->op_id, job_id, 0, type, text, err) < 0) {
        journal_op_free(op);
        return -1;
    }
    op->next_step = 1;
    r = journal_fault_point(type);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r,
                            "Fault injected at the start of %s", type);
        journal_op_free(op);
        return -1;
    }
    *out = op;
    return 0;
}

int journal_step(struct journal_op *op, const char *name, json_t *payload,
                 struct gvm_error *err)
{
    assert(op && op->cat && name);
    _cleanup_free_ char *text = dump(payload);
    int r;

    if (!text) {
        gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory writing a journal record.");
        return -1;
    }
    /* One transaction: the new step pending and the older ones done, so
     * there is never a moment with two pending steps or none. */
    if (catalog_begin(op->cat, err) < 0)
        return -1;
    if (catalog_journal_settle(op->cat, op->op_id, op->next_step, "done", false, err) < 0 ||
        catalog_journal_add(op->cat, op->op_id, op->job_id, op->next_step,
                            name, text, err) < 0) {
        catalog_rollback(op->cat);
        return -1;
    }
    if (catalog_commit(op->cat, err) < 0)
        return -1;
    op->next_step++;
    r = journal_fault_point(name);
    if (r < 0) {
        gvm_error_set_errno(err, GVM_ERR_STORAGE, r,
                            "Fault injected at journal step '%s' of %s.",
                            name, op->type);
        return -1;
    }
    return 0;
}

int journal_done(struct journal_op *op, struct gvm_error *err)
{
    assert(op && op->cat);
    return catalog_journal_settle(op->cat, op->op_id, INT32_MAX, "done", false, err);
}

int journal_undone(struct journal_op *op, struct gvm_error *err)
{
    assert(op && op->cat);
    /* Rolled back as a whole: the steps that had completed are undone too. */
    return catalog_journal_settle(op->cat, op->op_id, INT32_MAX, "undone", true, err);
}

int journal_forget(struct journal_op *op, struct gvm_error *err)
{
    assert(op && op->cat);
    return catalog_journal_forget(op->cat, op->op_id, err);
}

int journal_load(struct catalog *cat, const char *op_id,
                 struct journal_op **opp, struct journal_entry **entries,
                 size_t *np, struct gvm_error *err)
{
    /* Either output may be NULL (not wanted); entries come with their count. */
    assert(cat && op_id && (!entries || np));
    struct catalog_journal_entry *rows = NULL;
    struct journal_entry *v = NULL;
    size_t n = 0;

    if (catalog_journal_list_op(cat, op_id, &rows, &n, err) < 0)
        return -1;
    if (n == 0 || rows[0].step != 0) {
        catalog_journal_entries_free(rows, n);
        gvm_error_set(err, GVM_ERR_INTERNAL,
                      "Journal operation %s has no start record.", op_id);
        return -1;
    }
    v = calloc(n, sizeof(*v));
    if (!v)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        json_error_t jerr;

        v[i].step = rows[i].step;
        v[i].kind = strdup(rows[i].kind);
        v[i].payload = json_loads(rows[i].payload, 0, &jerr);
        v[i].pending = strcmp(rows[i].state, "pending") == 0;
        v[i].undone = strcmp(rows[i].state, "undone") == 0;
        if (!v[i].kind)
            goto oom;
        if (!v[i].payload) {
            gvm_error_set(err, GVM_ERR_CORRUPT,
                          "Journal operation %s step %d (%s) has an unreadable "
                          "payload: %s.", op_id, rows[i].step, rows[i].kind,
                          jerr.text);
            journal_entries_free(v, n);
            catalog_journal_entries_free(rows, n);
            return -1;
        }
    }
    if (opp) {
        struct journal_op *op = calloc(1, sizeof(*op));
        if (!op || !(op->op_id = strdup(op_id)) ||
            !(op->type = strdup(rows[0].kind))) {
            journal_op_free(op);
            goto oom;
        }
        op->cat = cat;
        op->job_id = rows[0].job_id;
        op->next_step = rows[n - 1].step + 1;
        *opp = op;
    }
    catalog_journal_entries_free(rows, n);
    if (entries) {
        *entries = v;
        *np = n;
    } else {
        journal_entries_free(v, n);
    }
    return 0;
oom:
    journal_entries_free(v, n);
    catalog_journal_entries_free(rows, n);
    gvm_error_set(err, GVM_ERR_INTERNAL, "Out of memory reading the journal.");
    return -1;
}

int journal_ops(struct catalog *cat, int64_t job_id, bool pending_only,
                char ***op_ids, size_t *n, struct gvm_error *err)
{
    assert(cat && op_ids && n && job_id >= 0);
    return catalog_journal_ops(cat, job_id, pending_only, op_ids, n, err);
}

const struct journal_entry *journal_last_pending(const struct journal_entry *e,
                                                 size_t n)
{
    assert(e || n == 0);
    for (size_t i = n; i-- > 0;) {
        if (e[i].pending)
            return &e[i];
    }
    return NULL;
}

int journal_replay(struct catalog *cat, const struct journal_type *types,
                   size_t ntypes, void *opaque)
{
    /* Each type names an operation and says how to recover it. */
    assert(cat && (types || ntypes == 0));
    for (size_t i = 0; i < ntypes; i++)
        assert(types[i].name && types[i].recover);
    char **ids = NULL;
    size_t nids = 0;
    int left = 0;
    struct gvm_error err = { 0 };

    if (journal_ops(cat, 0, true, &ids, &nids, &err) < 0) {
        log_error("Journal replay: %s", err.message);
        return -1;
    }
    for (size_t i = 0; i < nids; i++) {
        _cleanup_journal_op_ struct journal_op *op = NULL;
        struct journal_entry *e = NULL;
        size_t n = 0;
        const struct journal_type *t = NULL;
        int r;

        gvm_error_clear(&err);
        if (journal_load(cat, ids[i], &op, &e, &n, &err) < 0) {
            log_error("Journal replay of %s: %s", ids[i], err.message);
            left++;
            continue;
        }
        for (size_t k = 0; k < ntypes; k++) {
            if (strcmp(types[k].name, op->type) == 0)
                t = &types[k];
        }
        if (!t) {
            log_error("Journal replay: operation %s is of unknown type '%s'; "
                      "left pending.", ids[i], op->type);
            journal_entries_free(e, n);
            left++;
            continue;
        }
        r = t->recover(opaque, op, e, n, &err);
        journal_entries_free(e, n);
        if (r < 0) {
            log_error("Journal replay of %s (%s) failed; left pending: %s",
                      ids[i], op->type, err.message);
            left++;
            continue;
        }
        gvm_error_clear(&err);
        if ((r == 0 ? journal_done(op, &err) : journal_undone(op, &err)) < 0) {
            log_error("Journal replay of %s: %s", ids[i], err.message);
            left++;
            continue;
        }
        log_info("Journal replay: operation %s (%s) rolled %s.", ids[i],
                 op->type, r == 0 ? "forward" : "back");
        /* Ended: nothing needs its rows any more. */
        if (journal_forget(op, &err) < 0)
            log_warn("Journal replay of %s: %s", ids[i], err.message);
    }
    journal_op_ids_free(ids, nids);
    return left;
}

/* ---- fault injection ------------------------------------------------------ */

#ifdef GVMD_FAULT_INJECTION
int journal_fault_point(const char *name)
{
    assert(name);
    const char *spec = getenv("GVMD_FAULT");
    size_t nlen = strlen(name);

    /* Read-only use of the environment: nothing in gvmd calls setenv()
     * after start-up, so getenv() from any thread is safe. */
    for (const char *p = spec; p && *p;) {
        size_t len = strcspn(p, ",");

        if (len > 5 && strncmp(p, "step:", 5) == 0 && len > 5 + nlen &&
            strncmp(p + 5, name, nlen) == 0 && p[5 + nlen] == ':') {
            const char *action = p + 5 + nlen + 1;
            size_t alen = len - (5 + nlen + 1);

            if (alen == 4 && strncmp(action, "kill", 4) == 0) {
                char msg[256];
                int mlen = snprintf(msg, sizeof(msg),
                                    "gvmd: GVMD_FAULT: killed at step %s\n",
                                    name);
                size_t wlen = mlen <= 0 ? 0 : (size_t)mlen < sizeof(msg)
                                                ? (size_t)mlen : sizeof(msg) - 1;
                /* About to die anyway: a failed write changes nothing. */
                ssize_t w = write(STDERR_FILENO, msg, wlen);
                (void)w;
                raise(SIGKILL);
                _exit(137);
            }
            if (alen == 4 && strncmp(action, "fail", 4) == 0)
                return -EIO;
            if (alen > 5 && strncmp(action, "delay", 5) == 0) {
                /* delayMS: slow the operation down, so tests can catch a
                 * job while it runs (cancel, wait with a timeout). */
                long ms = strtol(action + 5, NULL, 10);
                if (ms > 0 && ms <= 60000) {
                    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
                    nanosleep(&ts, NULL);
                }
            }
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}
#endif
