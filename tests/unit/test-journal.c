/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-journal.c — the operation journal (gvmd/core/journal.c over
 * gvmd/catalog/catalog-journal.c): step 0 and each step pending until the
 * next, done / undone settling every row, forget keeping what is pending,
 * journal_last_pending, a loaded operation continuing its numbering, and
 * replay at start-up after a real crash (a child process killed with a
 * journal left open, the catalog file reopened): each recover callback sees
 * its operation's steps in order, roll forward and back end the rows, an
 * unknown type or a failed recovery leaves them pending for the next start.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "catalog.h"
#include "journal.h"

struct fixture {
    char dir[64];
    char path[128];
    struct catalog *cat;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    struct gvm_error err = { 0 };

    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test-journal.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/catalog.db", fx->dir);
    if (catalog_open(fx->path, &fx->cat, &err) != 0)
        fail_msg("catalog_open: %s", err.message);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    if (fx->cat)
        catalog_close(fx->cat);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static struct journal_op *begin_ok(struct catalog *cat, const char *type,
                                   json_t *params)
{
    struct journal_op *op = NULL;
    struct gvm_error err = { 0 };

    if (journal_begin(cat, type, 0, params, &op, &err) != 0)
        fail_msg("journal_begin %s: %s", type, err.message);
    assert_non_null(op);
    return op;
}

static void step_ok(struct journal_op *op, const char *name, json_t *payload)
{
    struct gvm_error err = { 0 };

    if (journal_step(op, name, payload, &err) != 0)
        fail_msg("journal_step %s: %s", name, err.message);
}

/* The op's rows; fails the test if it has none. */
static struct journal_entry *load_ok(struct catalog *cat, const char *op_id,
                                     size_t *n)
{
    struct journal_entry *e = NULL;
    struct gvm_error err = { 0 };

    if (journal_load(cat, op_id, NULL, &e, n, &err) != 0)
        fail_msg("journal_load %s: %s", op_id, err.message);
    return e;
}

/* Number of operations outside jobs (pending ones with pending_only). */
static size_t count_ops(struct catalog *cat, bool pending_only)
{
    char **ids = NULL;
    size_t n = 0;
    struct gvm_error err = { 0 };

    if (journal_ops(cat, 0, pending_only, &ids, &n, &err) != 0)
        fail_msg("journal_ops: %s", err.message);
    journal_op_ids_free(ids, n);
    return n;
}

/* Is there still a row of op_id? */
static bool has_rows(struct catalog *cat, const char *op_id)
{
    struct journal_entry *e = NULL;
    size_t n = 0;
    struct gvm_error err = { 0 };

    if (journal_load(cat, op_id, NULL, &e, &n, &err) != 0)
        return false;
    journal_entries_free(e, n);
    return true;
}

/* begin, two steps, done: only the newest step pending at each moment. */
static void test_begin_step_done(void **state)
{
    struct fixture *fx = *state;
    json_t *params = json_pack("{s:s, s:i}", "image", "vol:a.qcow2", "n", 3);
    struct journal_op *op = begin_ok(fx->cat, "test-op", params);
    struct journal_entry *e;
    const struct journal_entry *last;
    size_t n = 0;

    json_decref(params);
    assert_string_equal(op->type, "test-op");
    assert_int_equal(op->job_id, 0);
    assert_int_equal(op->next_step, 1);
    assert_non_null(strstr(op->op_id, "test-op"));

    /* Step 0 alone, pending, with the parameters. */
    e = load_ok(fx->cat, op->op_id, &n);
    assert_int_equal(n, 1);
    assert_int_equal(e[0].step, 0);
    assert_string_equal(e[0].kind, "test-op");
    assert_true(e[0].pending);
    assert_false(e[0].undone);
    assert_string_equal(json_string_value(json_object_get(e[0].payload, "image")),
                        "vol:a.qcow2");
    assert_int_equal(json_integer_value(json_object_get(e[0].payload, "n")), 3);
    last = journal_last_pending(e, n);
    assert_ptr_equal(last, &e[0]);
    journal_entries_free(e, n);

    json_t *p1 = json_pack("{s:i}", "offset", 65536);
    step_ok(op, "copying", p1);
    json_decref(p1);
    step_ok(op, "switch-header", NULL);
    assert_int_equal(op->next_step, 3);

    e = load_ok(fx->cat, op->op_id, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(e[i].step, (int)i);
    assert_string_equal(e[1].kind, "copying");
    assert_string_equal(e[2].kind, "switch-header");
    assert_false(e[0].pending);
    assert_false(e[1].pending);
    assert_true(e[2].pending);
    assert_int_equal(json_integer_value(json_object_get(e[1].payload, "offset")), 65536);
    /* A NULL payload is stored as an empty object. */
    assert_true(json_is_object(e[2].payload));
    assert_int_equal(json_object_size(e[2].payload), 0);
    last = journal_last_pending(e, n);
    assert_non_null(last);
    assert_int_equal(last->step, 2);
    assert_string_equal(last->kind, "switch-header");
    journal_entries_free(e, n);
    assert_int_equal(count_ops(fx->cat, true), 1);

    struct gvm_error err = { 0 };
    assert_int_equal(journal_done(op, &err), 0);
    e = load_ok(fx->cat, op->op_id, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_false(e[i].pending);
        assert_false(e[i].undone);
    }
    assert_null(journal_last_pending(e, n));
    journal_entries_free(e, n);
    assert_int_equal(count_ops(fx->cat, true), 0);
    assert_int_equal(count_ops(fx->cat, false), 1);

    /* Ended: forget drops every row. */
    assert_int_equal(journal_forget(op, &err), 0);
    assert_false(has_rows(fx->cat, op->op_id));
    assert_int_equal(count_ops(fx->cat, false), 0);
    journal_op_free(op);
}

/* undone marks every row undone, the completed steps too. */
static void test_undone(void **state)
{
    struct fixture *fx = *state;
    struct journal_op *op = begin_ok(fx->cat, "test-undo", NULL);
    struct journal_entry *e;
    struct gvm_error err = { 0 };
    size_t n = 0;

    step_ok(op, "one", NULL);
    step_ok(op, "two", NULL);
    assert_int_equal(journal_undone(op, &err), 0);
    e = load_ok(fx->cat, op->op_id, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_false(e[i].pending);
        assert_true(e[i].undone);
    }
    assert_null(journal_last_pending(e, n));
    journal_entries_free(e, n);
    assert_int_equal(count_ops(fx->cat, true), 0);
    assert_int_equal(journal_forget(op, &err), 0);
    assert_false(has_rows(fx->cat, op->op_id));
    journal_op_free(op);
}

/* forget keeps an operation that still has a pending row; two operations'
 * rows stay apart. */
static void test_forget_keeps_pending(void **state)
{
    struct fixture *fx = *state;
    struct journal_op *a = begin_ok(fx->cat, "test-a", NULL);
    struct journal_op *b = begin_ok(fx->cat, "test-b", NULL);
    struct journal_entry *e;
    struct gvm_error err = { 0 };
    size_t n = 0;

    assert_string_not_equal(a->op_id, b->op_id);
    step_ok(a, "a1", NULL);
    step_ok(b, "b1", NULL);
    step_ok(b, "b2", NULL);
    assert_int_equal(journal_forget(a, &err), 0);
    e = load_ok(fx->cat, a->op_id, &n);
    assert_int_equal(n, 2);
    assert_string_equal(journal_last_pending(e, n)->kind, "a1");
    journal_entries_free(e, n);
    e = load_ok(fx->cat, b->op_id, &n);
    assert_int_equal(n, 3);
    assert_string_equal(journal_last_pending(e, n)->kind, "b2");
    journal_entries_free(e, n);
    assert_int_equal(count_ops(fx->cat, true), 2);

    assert_int_equal(journal_done(a, &err), 0);
    assert_int_equal(count_ops(fx->cat, true), 1);
    assert_int_equal(journal_forget(a, &err), 0);
    assert_false(has_rows(fx->cat, a->op_id));
    assert_true(has_rows(fx->cat, b->op_id));
    journal_op_free(a);
    journal_op_free(b);
}

/* A loaded operation continues where the rows stop. */
static void test_load_continues(void **state)
{
    struct fixture *fx = *state;
    struct journal_op *op = begin_ok(fx->cat, "test-load", NULL);
    struct journal_op *again = NULL;
    struct journal_entry *e = NULL;
    struct gvm_error err = { 0 };
    size_t n = 0;

    step_ok(op, "first", NULL);
    assert_int_equal(journal_load(fx->cat, op->op_id, &again, &e, &n, &err), 0);
    assert_int_equal(n, 2);
    journal_entries_free(e, n);
    assert_string_equal(again->op_id, op->op_id);
    assert_string_equal(again->type, "test-load");
    assert_int_equal(again->next_step, 2);
    step_ok(again, "second", NULL);
    e = load_ok(fx->cat, op->op_id, &n);
    assert_int_equal(n, 3);
    assert_int_equal(e[2].step, 2);
    assert_string_equal(e[2].kind, "second");
    assert_false(e[1].pending);
    assert_true(e[2].pending);
    journal_entries_free(e, n);

    /* No rows: no start record, an error. */
    gvm_error_clear(&err);
    assert_int_not_equal(journal_load(fx->cat, "no-such-op", NULL, &e, &n, &err), 0);
    assert_non_null(strstr(err.message, "no start record"));
    journal_op_free(again);
    journal_op_free(op);
}

/* ---- replay after a crash ---------------------------------------------- */

/* What the recover callbacks saw, in call order. */
struct seen {
    char log[1024];
    bool fail_recovery;   /* "test-fails" cannot recover (first start) */
};

static void seen_add(struct seen *s, const char *text)
{
    size_t len = strlen(s->log);
    snprintf(s->log + len, sizeof s->log - len, "%s%s", len ? ";" : "", text);
}

/* Appends "TYPE:kind0,kind1,...>last-pending" to the log. */
static void seen_op(struct seen *s, struct journal_op *op,
                    const struct journal_entry *e, size_t n)
{
    char line[256];
    size_t len = 0;
    const struct journal_entry *last = journal_last_pending(e, n);

    len += snprintf(line + len, sizeof line - len, "%s:", op->type);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(e[i].step, (int)i);
        len += snprintf(line + len, sizeof line - len, "%s%s",
                        i ? "," : "", e[i].kind);
    }
    snprintf(line + len, sizeof line - len, ">%s", last ? last->kind : "-");
    seen_add(s, line);
}

static int recover_forward(void *opaque, struct journal_op *op,
                           const struct journal_entry *e, size_t n,
                           struct gvm_error *err)
{
    (void)err;
    seen_op(opaque, op, e, n);
    /* The payloads come back as written. */
    assert_int_equal(json_integer_value(json_object_get(e[n - 1].payload, "k")),
                     (json_int_t)(n - 1));
    return 0;
}

static int recover_back(void *opaque, struct journal_op *op,
                        const struct journal_entry *e, size_t n,
                        struct gvm_error *err)
{
    (void)err;
    seen_op(opaque, op, e, n);
    return 1;
}

static int recover_maybe(void *opaque, struct journal_op *op,
                         const struct journal_entry *e, size_t n,
                         struct gvm_error *err)
{
    struct seen *s = opaque;

    seen_op(s, op, e, n);
    if (s->fail_recovery) {
        gvm_error_set(err, GVM_ERR_STORAGE, "Cannot recover %s.", op->op_id);
        return -1;
    }
    return 0;
}

static const struct journal_type replay_types[] = {
    { "test-forward", recover_forward },
    { "test-back", recover_back },
    { "test-fails", recover_maybe },
};

/* In a child: open the catalog, run one operation per type (and one of an
 * unknown type, and one that ends) up to their last step, then die by
 * SIGKILL with everything open, as gvmd killed at a step would. */
static void crash_child(const char *path)
{
    struct catalog *cat = NULL;
    struct gvm_error err = { 0 };
    static const struct { const char *type; int steps; } ops[] = {
        { "test-forward", 2 }, { "test-ended", 1 }, { "test-back", 1 },
        { "test-unknown", 1 }, { "test-fails", 3 },
    };

    if (catalog_open(path, &cat, &err) != 0)
        _exit(2);
    for (size_t i = 0; i < GVM_ARRAY_SIZE(ops); i++) {
        struct journal_op *op = NULL;
        if (journal_begin(cat, ops[i].type, 0, NULL, &op, &err) != 0)
            _exit(3);
        for (int k = 1; k <= ops[i].steps; k++) {
            char name[32];
            json_t *p = json_pack("{s:i}", "k", k);
            snprintf(name, sizeof name, "s%d", k);
            if (journal_step(op, name, p, &err) != 0)
                _exit(4);
            json_decref(p);
        }
        if (strcmp(ops[i].type, "test-ended") == 0 &&
            journal_done(op, &err) != 0)
            _exit(5);
    }
    /* The last step of the last operation dies at its fault point in
     * fault-injection builds; plain SIGKILL otherwise. */
    struct journal_op *op = NULL;
    if (journal_begin(cat, "test-back", 0, NULL, &op, &err) != 0)
        _exit(6);
#ifdef GVMD_FAULT_INJECTION
    setenv("GVMD_FAULT", "step:test-last:kill", 1);
    journal_step(op, "test-last", NULL, &err);
    _exit(7);   /* not reached: the fault point kills */
#else
    if (journal_step(op, "test-last", NULL, &err) != 0)
        _exit(7);
    raise(SIGKILL);
    _exit(8);
#endif
}

static void test_replay_after_crash(void **state)
{
    struct fixture *fx = *state;
    struct seen s = { .fail_recovery = true };
    int status = 0;

    /* The fixture's catalog is closed: the child is the daemon that dies. */
    catalog_close(fx->cat);
    fx->cat = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(fx->path);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    /* The next start. */
    struct gvm_error err = { 0 };
    if (catalog_open(fx->path, &fx->cat, &err) != 0)
        fail_msg("catalog_open after the crash: %s", err.message);
    assert_int_equal(count_ops(fx->cat, true), 5);
    assert_int_equal(count_ops(fx->cat, false), 6);

    /* Oldest first; the ended operation is not replayed; the unknown type
     * and the failed recovery stay pending. */
    assert_int_equal(journal_replay(fx->cat, replay_types,
                                    GVM_ARRAY_SIZE(replay_types), &s), 2);
    assert_string_equal(s.log,
                        "test-forward:test-forward,s1,s2>s2;"
                        "test-back:test-back,s1>s1;"
                        "test-fails:test-fails,s1,s2,s3>s3;"
                        "test-back:test-back,test-last>test-last");
    /* Rolled forward or back: forgotten.  Ended before the crash: kept
     * (only replay and jobs forget). */
    assert_int_equal(count_ops(fx->cat, true), 2);
    assert_int_equal(count_ops(fx->cat, false), 3);

    /* The start after that: only what stayed pending is replayed; this
     * time the recovery works, the unknown type stays. */
    s.log[0] = '\0';
    s.fail_recovery = false;
    assert_int_equal(journal_replay(fx->cat, replay_types,
                                    GVM_ARRAY_SIZE(replay_types), &s), 1);
    assert_string_equal(s.log, "test-fails:test-fails,s1,s2,s3>s3");
    assert_int_equal(count_ops(fx->cat, true), 1);
    assert_int_equal(count_ops(fx->cat, false), 2);

    /* Nothing to do when no type matches anything. */
    s.log[0] = '\0';
    assert_int_equal(journal_replay(fx->cat, replay_types, 0, &s), 1);
    assert_string_equal(s.log, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_begin_step_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_keeps_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_after_crash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
