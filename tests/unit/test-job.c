/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-job.c — the job runner, the journal and the faulty store, on a real
 * catalog in a temporary directory, with a test job type:
 *   - image locks: a conflicting job is refused with InUse naming the
 *     holder; read locks share; locks go when the job concludes;
 *   - op-id returns the original job; cancel of queued and running jobs;
 *     dismiss only when concluded; job-wait with a timeout;
 *   - status and progress persisted: a new runner on the same catalog sees
 *     the jobs, and recovers the unfinished one;
 *   - job_wait/job_outcome: the error as struct gvm_error, the same ERROR
 *     in the JOB before and after a restart;
 *   - journal steps, settle rules, load, replay;
 *   - store-faulty: the Nth write fails, spec errors are refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "catalog-image.h"
#include "catalog-job.h"
#include "job.h"
#include "journal.h"
#include "jsonutil.h"
#include "store.h"

struct fixture {
    char dir[64];
    char dbpath[128];
    struct gvmd d;
    int64_t img[3];
};

/* The test job type: runs until released or cancelled. */
static _Atomic int release_jobs;
static _Atomic int runs;

static int test_run(struct job *job, struct gvm_error *err)
{
    atomic_fetch_add(&runs, 1);
    job_set_progress(job, 0, 100);
    while (!atomic_load(&release_jobs)) {
        if (job_should_stop(job))
            return JOB_STOPPED;
        usleep(1000);
    }
    job_set_progress(job, 50, 100);
    if (json_is_true(json_object_get(job_params(job), "fail"))) {
        gvm_error_set(err, GVM_ERR_STORAGE, "Test job failed on purpose.");
        return -1;
    }
    return 0;
}

static int test_recover(struct job *job, struct journal_op *op,
                        const struct journal_entry *e, size_t n,
                        struct gvm_error *err)
{
    return JOB_RECOVERED_RESUME;
}

static const struct job_type test_type = {
    .name = "test-job", .run = test_run, .recover = test_recover,
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct gvm_error err = { 0 };
    struct catalog_volume v = { 0 };

    snprintf(f->dir, sizeof(f->dir), "/tmp/gvm-test-job.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->dbpath, sizeof(f->dbpath), "%s/cat.db", f->dir);
    if (catalog_open(f->dbpath, &f->d.cat, &err) < 0)
        fail_msg("catalog_open: %s", err.message);
    f->d.cfg.workers = 3;
    v.name = strdup("local");
    v.backend = CATALOG_BACKEND_DIR;
    v.root_path = strdup(f->dir);
    if (catalog_volume_add(f->d.cat, &v, &err) < 0)
        fail_msg("volume add: %s", err.message);
    for (int i = 0; i < 3; i++) {
        struct catalog_image im = { 0 };
        char p[32];

        snprintf(p, sizeof(p), "img%d.qcow2", i);
        im.volume_id = v.id;
        im.path = strdup(p);
        im.format = strdup("qcow2");
        im.virtual_size = 1 << 20;
        im.cluster_size = 65536;
        if (catalog_image_add(f->d.cat, &im, &err) < 0)
            fail_msg("image add: %s", err.message);
        f->img[i] = im.id;
        catalog_image_clear(&im);
    }
    catalog_volume_clear(&v);
    atomic_store(&release_jobs, 0);
    atomic_store(&runs, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    jobs_free(f->d.jobs);
    catalog_close(f->d.cat);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const struct job_type *const test_types[] = { &test_type };

/* A runner that knows test_type (jobs_create() insists on registered
 * types), or with known false one that does not: to it, test_type's rows
 * are of an unknown type. */
static void start_runner_knowing(struct fixture *f, bool known)
{
    struct gvm_error err = { 0 };
    struct jobs_config cfg = {
        .types = known ? test_types : NULL,
        .ntypes = known ? GVM_ARRAY_SIZE(test_types) : 0,
        .nthreads = 2,
    };

    if (jobs_new(&f->d, &cfg, &f->d.jobs, &err) < 0 ||
        jobs_start(f->d.jobs, &err) < 0)
        fail_msg("runner: %s", err.message);
}

static void start_runner(struct fixture *f)
{
    start_runner_knowing(f, true);
}

static struct job *create(struct fixture *f, int64_t image, bool write,
                          const char *op_id, int *rc, struct gvm_error *err)
{
    struct catalog_job_lock l = { .image_id = image, .write = write };
    _cleanup_json_ json_t *params = json_object();
    _cleanup_json_ json_t *images = json_pack("[I]", (json_int_t)image);
    struct job *job = NULL;

    *rc = jobs_create(f->d.jobs, &test_type, params, images, &l, 1, op_id,
                      &job, err);
    return job;
}

static const char *status_of(json_t *j)
{
    return json_string_value(json_object_get(j, "status"));
}

/* Wait (bounded) until the job has the status. */
static json_t *wait_status(struct fixture *f, int64_t id, const char *status)
{
    struct gvm_error err = { 0 };
    json_t *j = NULL;

    for (int i = 0; i < 2000; i++) {
        json_decref(j);
        if (jobs_wait(f->d.jobs, id, 5, &j, &err) < 0)
            fail_msg("wait: %s", err.message);
        if (strcmp(status_of(j), status) == 0)
            return j;
    }
    fail_msg("job %lld never became %s (is %s)", (long long)id, status,
             status_of(j));
    return NULL;
}

static void test_locks_and_cancel(void **state)
{
    struct fixture *f = *state;
    struct gvm_error err = { 0 };
    _cleanup_job_ struct job *a = NULL, *b = NULL, *c = NULL;
    _cleanup_json_ json_t *j = NULL, *r = NULL;
    int rc;

    start_runner(f);
    a = create(f, f->img[0], true, NULL, &rc, &err);
    assert_int_equal(rc, 0);
    j = wait_status(f, job_id(a), "running");
    json_decref(j);

    /* A second writer is refused, naming the holder. */
    b = create(f, f->img[0], true, NULL, &rc, &err);
    assert_int_equal(rc, -1);
    assert_null(b);
    assert_int_equal(err.cls, GVM_ERR_IN_USE);
    {
        char needle[32];
        snprintf(needle, sizeof(needle), "job %lld", (long long)job_id(a));
        if (!strstr(err.message, needle))
            fail_msg("InUse message does not name the job: %s", err.message);
    }
    /* So is a reader of a written image. */
    gvm_error_clear(&err);
    b = create(f, f->img[0], false, NULL, &rc, &err);
    assert_int_equal(rc, -1);
    assert_int_equal(err.cls, GVM_ERR_IN_USE);
    /* Two readers share. */
    gvm_error_clear(&err);
    b = create(f, f->img[1], false, NULL, &rc, &err);
    assert_int_equal(rc, 0);
    c = create(f, f->img[1], false, NULL, &rc, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(catalog_job_lock_holder(f->d.cat, f->img[1], &err),
                     job_id(b));

    /* A running job cannot be dismissed. */
    assert_int_equal(jobs_dismiss(f->d.jobs, job_id(a), &err), -1);
    assert_int_equal(err.cls, GVM_ERR_BUSY);
    gvm_error_clear(&err);

    /* job-wait with a timeout returns the job as it is. */
    assert_int_equal(jobs_wait(f->d.jobs, job_id(a), 20, &r, &err), 0);
    assert_string_equal(status_of(r), "running");
    json_decref(r);
    r = NULL;

    /* Cancel: the job stops, concludes cancelled, releases its lock. */
    assert_int_equal(jobs_cancel(f->d.jobs, job_id(a), &r, &err), 0);
    assert_true(json_is_true(json_object_get(r, "cancelled")));
    j = wait_status(f, job_id(a), "concluded");
    assert_true(json_is_true(json_object_get(j, "cancelled")));
    assert_null(json_object_get(j, "error"));
    assert_int_equal(catalog_job_lock_holder(f->d.cat, f->img[0], &err), 0);
    json_decref(j);

    /* Now a writer gets it. */
    job_unref(steal_pointer(&a));
    a = create(f, f->img[0], true, NULL, &rc, &err);
    assert_int_equal(rc, 0);

    /* Let them finish: concluded without error, progress complete. */
    atomic_store(&release_jobs, 1);
    j = wait_status(f, job_id(a), "concluded");
    assert_false(json_is_true(json_object_get(j, "cancelled")));
    assert_null(json_object_get(j, "error"));
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(j, "progress"), "current")), 100);
    json_decref(j);
    j = wait_status(f, job_id(b), "concluded");
    json_decref(j);
    j = wait_status(f, job_id(c), "concluded");

    /* Dismiss: gone from the list and the catalog. */
    assert_int_equal(jobs_dismiss(f->d.jobs, job_id(c), &err), 0);
    {
        struct catalog_job row;
        assert_int_equal(catalog_job_get(f->d.cat, job_id(c), &row, &err), -1);
        assert_int_equal(err.cls, GVM_ERR_NOT_FOUND);
        gvm_error_clear(&err);
    }
    json_decref(r);
    r = jobs_list_json(f->d.jobs);
    assert_int_equal(json_array_size(r), 3);   /* cancelled a, new a, b */
}

static void test_opid_and_queue_cancel(void **state)
{
    struct fixture *f = *state;
    struct gvm_error err = { 0 };
    _cleanup_job_ struct job *a = NULL, *a2 = NULL, *q1 = NULL, *q2 = NULL,
                             *q3 = NULL;
    _cleanup_json_ json_t *j = NULL;
    int rc;

    start_runner(f);   /* two threads */
    a = create(f, f->img[0], true, "op-1", &rc, &err);
    assert_int_equal(rc, 0);
    a2 = create(f, f->img[0], true, "op-1", &rc, &err);
    assert_int_equal(rc, 1);
    assert_ptr_equal(a, a2);
    j = job_to_json(a);
    assert_string_equal(json_string_value(json_object_get(j, "op-id")), "op-1");
    json_decref(j);

    /* Fill both threads, then one more waits in "created". */
    q1 = create(f, f->img[1], true, NULL, &rc, &err);
    assert_int_equal(rc, 0);
    q2 = create(f, f->img[2], true, NULL, &rc, &err);
    assert_int_equal(rc, 0);
    j = job_to_json(q2);
    json_decref(j);
    /* Whichever of q1/q2 did not get a thread is queued; cancelling a
     * queued job concludes it at once. */
    j = wait_status(f, job_id(a), "running");
    json_decref(j);
    for (int i = 0; i < 1000 && atomic_load(&runs) < 2; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&runs), 2);
    {
        struct job *queued = NULL;
        json_t *s1 = job_to_json(q1), *s2 = job_to_json(q2);
        queued = strcmp(status_of(s1), "created") == 0 ? q1 : q2;
        assert_string_equal(status_of(strcmp(status_of(s1), "created") == 0 ? s1 : s2),
                            "created");
        json_decref(s1);
        json_decref(s2);
        assert_int_equal(jobs_cancel(f->d.jobs, job_id(queued), &j, &err), 0);
        assert_string_equal(status_of(j), "concluded");
        assert_true(json_is_true(json_object_get(j, "cancelled")));
        json_decref(j);
        j = NULL;
    }
    /* A failing job concludes with the error object. */
    atomic_store(&release_jobs, 1);
    {
        struct catalog_job_lock l = { .image_id = f->img[2], .write = false };
        _cleanup_json_ json_t *p = json_pack("{s:b}", "fail", 1);
        _cleanup_json_ json_t *im = json_array();
        for (int i = 0; i < 1000; i++) {
            gvm_error_clear(&err);
            rc = jobs_create(f->d.jobs, &test_type, p, im, &l, 1, NULL, &q3, &err);
            if (rc == 0)
                break;
            usleep(1000);   /* q2 may still hold img2 */
        }
        assert_int_equal(rc, 0);
    }
    j = wait_status(f, job_id(q3), "concluded");
    {
        json_t *e = json_object_get(j, "error");
        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(
            json_object_get(e, "data"), "class")), "StorageError");
        assert_string_equal(json_string_value(json_object_get(e, "message")),
                            "Test job failed on purpose.");
    }
}

static void test_persist_and_recover(void **state)
{
    struct fixture *f = *state;
    struct gvm_error err = { 0 };
    _cleanup_json_ json_t *j = NULL;
    struct catalog_job row = { 0 };
    struct job *a = NULL;
    int64_t id;
    int rc;

    start_runner(f);
    a = create(f, f->img[0], true, NULL, &rc, &err);
    assert_int_equal(rc, 0);
    id = job_id(a);
    job_unref(a);
    j = wait_status(f, id, "running");
    json_decref(j);
    j = NULL;
    assert_int_equal(catalog_job_get(f->d.cat, id, &row, &err), 0);
    assert_string_equal(row.status, "running");
    assert_string_equal(row.type, "test-job");
    catalog_job_clear(&row);

    /* "Shutdown": the job stops but stays running in the catalog, with its
     * lock. */
    jobs_free(f->d.jobs);
    f->d.jobs = NULL;
    assert_int_equal(catalog_job_get(f->d.cat, id, &row, &err), 0);
    assert_string_equal(row.status, "running");
    catalog_job_clear(&row);
    assert_int_equal(catalog_job_lock_holder(f->d.cat, f->img[0], &err), id);

    /* A new runner loads it; its type is not registered (a test
     * type), so recovery concludes it with an error saying so, and the
     * lock goes. */
    start_runner_knowing(f, false);
    j = wait_status(f, id, "concluded");
    {
        json_t *e = json_object_get(j, "error");
        assert_non_null(e);
        assert_non_null(strstr(json_string_value(json_object_get(e, "message")),
                               "test-job"));
    }
    assert_int_equal(catalog_job_lock_holder(f->d.cat, f->img[0], &err), 0);
}

/* job_wait and job_outcome give the error as struct gvm_error; the JOB
 * carries it as the ERROR object, the same after a restart. */
static void test_outcome_and_error_reload(void **state)
{
    struct fixture *f = *state;
    struct gvm_error err = { 0 }, jerr = { 0 };
    struct catalog_job_lock l = { .image_id = f->img[0], .write = true };
    _cleanup_json_ json_t *p = json_pack("{s:b}", "fail", 1);
    _cleanup_json_ json_t *im = json_pack("[I]", (json_int_t)f->img[0]);
    _cleanup_json_ json_t *before = NULL, *after = NULL;
    _cleanup_free_ char *b = NULL, *a = NULL;
    struct job *job = NULL, *ok = NULL;
    struct catalog_job row = { 0 };
    int64_t id;

    start_runner(f);
    atomic_store(&release_jobs, 1);
    assert_int_equal(jobs_create(f->d.jobs, &test_type, p, im, &l, 1, NULL,
                                 &job, &err), 0);
    id = job_id(job);
    assert_int_equal(job_wait(job, -1, &err), 0);
    assert_int_equal(job_outcome(job, &jerr), JOB_OUTCOME_FAILED);
    assert_int_equal(jerr.cls, GVM_ERR_STORAGE);
    assert_string_equal(jerr.message, "Test job failed on purpose.");
    before = job_to_json(job);
    b = json_dumps(json_object_get(before, "error"), JSON_COMPACT);
    assert_non_null(b);
    assert_int_equal(catalog_job_get(f->d.cat, id, &row, &err), 0);
    assert_string_equal(row.error, b);
    catalog_job_clear(&row);
    job_unref(job);

    /* A job that succeeds: done, no error. */
    ok = create(f, f->img[1], true, NULL, &(int){ 0 }, &err);
    assert_non_null(ok);
    assert_int_equal(job_wait(ok, 5000, &err), 0);
    assert_int_equal(job_outcome(ok, &jerr), JOB_OUTCOME_DONE);
    assert_false(gvm_error_isset(&jerr));
    job_unref(ok);

    /* Reloaded from the catalog: the same ERROR, byte for byte. */
    jobs_free(f->d.jobs);
    f->d.jobs = NULL;
    start_runner(f);
    assert_int_equal(jobs_get(f->d.jobs, id, &job, &err), 0);
    after = job_to_json(job);
    a = json_dumps(json_object_get(after, "error"), JSON_COMPACT);
    assert_non_null(a);
    assert_string_equal(a, b);
    assert_int_equal(job_outcome(job, &jerr), JOB_OUTCOME_FAILED);
    assert_int_equal(jerr.cls, GVM_ERR_STORAGE);
    job_unref(job);
}

/* A dismissed job's id is never handed out again. */
static void test_ids_not_reused(void **state)
{
    struct fixture *f = *state;
    struct gvm_error err = { 0 };
    _cleanup_json_ json_t *j = NULL;
    struct job *x = NULL, *y = NULL;
    int64_t xid;
    int rc;

    start_runner(f);
    atomic_store(&release_jobs, 1);
    x = create(f, f->img[0], true, NULL, &rc, &err);
    assert_int_equal(rc, 0);
    xid = job_id(x);
    job_unref(x);
    j = wait_status(f, xid, "concluded");
    assert_int_equal(jobs_dismiss(f->d.jobs, xid, &err), 0);
    y = create(f, f->img[0], true, NULL, &rc, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(job_id(y), xid + 1);
    job_unref(y);
}

static void test_journal(void **state)
{
    struct fixture *f = *state;
    struct gvm_error err = { 0 };
    struct journal_op *op = NULL, *op2 = NULL;
    struct journal_entry *e = NULL;
    _cleanup_json_ json_t *p = json_pack("{s:i}", "x", 1);
    char **ids = NULL;
    size_t n = 0, nids = 0;

    assert_int_equal(journal_begin(f->d.cat, "test-op", 0, p, &op, &err), 0);
    assert_int_equal(journal_step(op, "one", p, &err), 0);
    assert_int_equal(journal_step(op, "two", NULL, &err), 0);
    assert_int_equal(journal_load(f->d.cat, op->op_id, &op2, &e, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(e[0].kind, "test-op");
    assert_string_equal(e[1].kind, "one");
    assert_false(e[1].pending);           /* settled by step "two" */
    assert_true(e[2].pending);
    assert_string_equal(journal_last_pending(e, n)->kind, "two");
    assert_int_equal(op2->next_step, 3);
    assert_int_equal(json_integer_value(json_object_get(e[1].payload, "x")), 1);
    journal_entries_free(e, n);
    journal_op_free(op2);

    assert_int_equal(journal_ops(f->d.cat, 0, true, &ids, &nids, &err), 0);
    assert_int_equal(nids, 1);
    assert_string_equal(ids[0], op->op_id);
    journal_op_ids_free(ids, nids);

    /* Replay with no matching type leaves it pending. */
    assert_int_equal(journal_replay(f->d.cat, NULL, 0, NULL), 1);
    journal_op_free(op);
}

static int recover_back(void *opaque, struct journal_op *op,
                        const struct journal_entry *e, size_t n,
                        struct gvm_error *err)
{
    int *called = opaque;
    (*called)++;
    assert_string_equal(journal_last_pending(e, n)->kind, "step");
    return 1;   /* rolled back */
}

static void test_journal_replay(void **state)
{
    struct fixture *f = *state;
    struct gvm_error err = { 0 };
    struct journal_op *op = NULL;
    struct journal_entry *e = NULL;
    const struct journal_type t = { .name = "test-op", .recover = recover_back };
    size_t n = 0;
    int called = 0;

    assert_int_equal(journal_begin(f->d.cat, "test-op", 0, NULL, &op, &err), 0);
    assert_int_equal(journal_step(op, "step", NULL, &err), 0);
    assert_int_equal(journal_replay(f->d.cat, &t, 1, &called), 0);
    assert_int_equal(called, 1);
    /* A replayed operation has ended: its records are dropped
     * (journal_forget), so nothing of it is left to load. */
    assert_int_equal(journal_load(f->d.cat, op->op_id, NULL, &e, &n, &err), -1);
    assert_null(e);
    /* Nothing left to replay. */
    assert_int_equal(journal_replay(f->d.cat, &t, 1, &called), 0);
    assert_int_equal(called, 1);
    journal_op_free(op);
}

#ifdef GVMD_FAULT_INJECTION    /* a test build (-Dfault_injection=true) */
static void test_fault_point(void **state)
{
    (void)state;
    setenv("GVMD_FAULT", "write:3:kill,step:alpha:fail,step:beta:kill", 1);
    assert_int_equal(journal_fault_point("alpha"), -EIO);
    assert_int_equal(journal_fault_point("alph"), 0);
    assert_int_equal(journal_fault_point("alphabet"), 0);
    assert_int_equal(journal_fault_point("gamma"), 0);
    unsetenv("GVMD_FAULT");
    assert_int_equal(journal_fault_point("alpha"), 0);
}

static void test_store_faulty(void **state)
{
    struct fixture *f = *state;
    struct gvm_error err = { 0 };
    struct gvm_store *inner = NULL, *st = NULL;
    struct gvm_file *file = NULL;
    char buf[16] = "0123456789abcde";

    assert_int_equal(store_posix_new(f->dir, &inner, &err), 0);
    assert_int_equal(store_faulty_wrap(inner, "write:x:fail", &st), -EINVAL);
    assert_int_equal(store_faulty_wrap(inner, "write:1:explode", &st), -EINVAL);
    assert_int_equal(store_faulty_wrap(inner, "read:1:fail", &st), -EINVAL);
    assert_int_equal(store_faulty_wrap(inner, "write:3:fail,flush:1:fail,step:x:kill", &st), 0);
    assert_string_equal(st->ops->name, "faulty");
    /* write 1: the create */
    assert_int_equal(st->ops->open(st, "f", GVM_O_RDWR | GVM_O_CREAT, &file), 0);
    assert_int_equal(st->ops->pwrite(file, buf, 4, 0), 0);        /* 2 */
    assert_int_equal(st->ops->pwrite(file, buf, 4, 4), -EIO);     /* 3 */
    assert_int_equal(st->ops->pwrite(file, buf, 4, 4), 0);        /* 4 */
    assert_int_equal(st->ops->flush(file), -EIO);
    assert_int_equal(st->ops->flush(file), 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(st->ops->pread(file, buf, 8, 0), 8);
    assert_memory_equal(buf, "01230123", 8);
    st->ops->close(file);
    gvm_store_destroy(st);
}

/* "kill" stops the process before the write reaches storage. */
static void test_store_faulty_kill(void **state)
{
    struct fixture *f = *state;
    int status = 0;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        struct gvm_error err = { 0 };
        struct gvm_store *inner = NULL, *st = NULL;
        struct gvm_file *file = NULL;

        if (store_posix_new(f->dir, &inner, &err) < 0 ||
            store_faulty_wrap(inner, "write:3:kill", &st) < 0 ||
            st->ops->open(st, "k", GVM_O_RDWR | GVM_O_CREAT, &file) < 0 ||  /* 1 */
            st->ops->pwrite(file, "AAAA", 4, 0) < 0)                        /* 2 */
            _exit(2);
        st->ops->pwrite(file, "BBBB", 4, 4);                                /* 3 */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    {
        char path[160], buf[16] = { 0 };
        FILE *fp;
        size_t n;

        snprintf(path, sizeof(path), "%s/k", f->dir);
        fp = fopen(path, "rb");
        assert_non_null(fp);
        n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        assert_int_equal(n, 4);
        assert_memory_equal(buf, "AAAA", 4);
    }
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_locks_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opid_and_queue_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_and_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcome_and_error_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_not_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_journal_replay, setup, teardown),
#ifdef GVMD_FAULT_INJECTION
        cmocka_unit_test(test_fault_point),
        cmocka_unit_test_setup_teardown(test_store_faulty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_faulty_kill, setup, teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
