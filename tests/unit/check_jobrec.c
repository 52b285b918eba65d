/*
 * check_jobrec: the journal's job records survive encode → decode intact,
 * and a damaged payload is refused without reading out of bounds.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jobrec.h"
#include "util.h"

/* A fake queue: job_queue_name reads the name at the queue pointer. */
static const char queue_name[] = "batch";

static struct job *
sample_job(int kind, int extra)
{
	struct job_spec spec;
	struct job *j;

	memset(&spec, 0, sizeof spec);
	spec.kind = kind;
	if (kind == JOB_ARGV) {
		spec.argv = xcalloc(4, sizeof *spec.argv);
		spec.argv[0] = xstrdup("tar");
		spec.argv[1] = xstrdup("czf");
		spec.argv[2] = xstrdup("x y.tgz");
	} else if (kind == JOB_SHELL) {
		spec.shell = xstrdup("ls | wc -l");
	} else {
		spec.sleep = 1.25;
	}
	spec.priority = -1000000;
	if (extra) {
		spec.env = xcalloc(3, sizeof *spec.env);
		spec.env[0] = xstrdup("A=1");
		spec.env[1] = xstrdup("EMPTY=");
		spec.cwd = xstrdup("/tmp");
		spec.stdin_data = xmemdup("in\0put", 6);
		spec.stdin_len = 6;
		spec.name = xstrdup("nightly");
	}
	j = job_new(42, &spec, 1000, 100);
	j->queue = queue_name;
	j->timeout = 30.5;
	j->submitted_at = 1795000000.123;
	return j;
}

static void
finish(struct job *j)
{
	struct job_result *r = job_result(j);

	j->state = r->state = JOB_FAILED;
	j->attempts = 3;
	j->started_at = 1795000001.5;
	r->finished_at = 1795000002.25;
	r->exit_code = -1;
	r->signal = 9;
	r->out = xmemdup("o\0ut", 4);
	r->out_len = 4;
	r->out_truncated = 1;
	r->err = xstrdup("");
	r->err_len = 0;
	r->error = xstrdup("spawn: No such file or directory");
}

static void
assert_same_submit(const struct job *a, const struct job *b)
{
	size_t i;

	ck_assert_uint_eq(a->id, b->id);
	ck_assert_int_eq(a->kind, b->kind);
	if (a->kind == JOB_ARGV) {
		ck_assert_uint_eq(strv_len(a->cmd.argv), strv_len(b->cmd.argv));
		for (i = 0; a->cmd.argv[i] != NULL; i++)
			ck_assert_str_eq(a->cmd.argv[i], b->cmd.argv[i]);
	} else if (a->kind == JOB_SHELL) {
		ck_assert_str_eq(a->cmd.shell, b->cmd.shell);
	} else {
		ck_assert_double_eq(a->cmd.sleep, b->cmd.sleep);
	}
	ck_assert_int_eq(a->priority, b->priority);
	ck_assert_double_eq(a->timeout, b->timeout);
	ck_assert_uint_eq(a->uid, b->uid);
	ck_assert_uint_eq(a->gid, b->gid);
	ck_assert_double_eq(a->submitted_at, b->submitted_at);
	ck_assert_int_eq(a->extra != NULL, b->extra != NULL);
	if (a->extra == NULL)
		return;
	ck_assert_str_eq(a->extra->env[0], b->extra->env[0]);
	ck_assert_str_eq(a->extra->env[1], b->extra->env[1]);
	ck_assert_ptr_null(b->extra->env[2]);
	ck_assert_str_eq(a->extra->cwd, b->extra->cwd);
	ck_assert_uint_eq(a->extra->stdin_len, b->extra->stdin_len);
	ck_assert_mem_eq(a->extra->stdin_data, b->extra->stdin_data,
	    a->extra->stdin_len);
	ck_assert_str_eq(a->extra->name, b->extra->name);
}

START_TEST(test_submit_round_trip)
{
	struct jobrec_buf b = { 0 };
	struct jobrec rec;
	struct job *j = sample_job(_i % 3, _i >= 3);
	char *cause = NULL;

	jobrec_submit(&b, j);
	ck_assert_int_eq(jobrec_decode(JOBREC_SUBMIT, b.data, b.len, &rec,
	    &cause), 0);
	ck_assert_str_eq(rec.queue_name, "batch");
	ck_assert_int_eq(rec.job->state, JOB_QUEUED);
	assert_same_submit(j, rec.job);
	jobrec_clear(&rec);
	jobrec_buf_free(&b);
	job_free(j);
}
END_TEST

START_TEST(test_start_finish_round_trip)
{
	struct jobrec_buf b = { 0 };
	struct jobrec rec;
	struct job *j = sample_job(JOB_ARGV, 0);
	char *cause = NULL;

	j->attempts = 2;
	j->started_at = 1795000001.5;
	jobrec_start(&b, j);
	ck_assert_int_eq(jobrec_decode(JOBREC_START, b.data, b.len, &rec,
	    &cause), 0);
	ck_assert_uint_eq(rec.job->id, 42);
	ck_assert_uint_eq(rec.job->attempts, 2);
	ck_assert_double_eq(rec.job->started_at, 1795000001.5);
	jobrec_clear(&rec);

	finish(j);
	jobrec_finish(&b, j);
	ck_assert_int_eq(jobrec_decode(JOBREC_FINISH, b.data, b.len, &rec,
	    &cause), 0);
	ck_assert_uint_eq(rec.job->id, 42);
	ck_assert_int_eq(rec.job->state, JOB_FAILED);
	ck_assert_uint_eq(rec.job->attempts, 3);
	ck_assert_int_eq(rec.job->result->exit_code, -1);
	ck_assert_int_eq(rec.job->result->signal, 9);
	ck_assert_uint_eq(rec.job->result->out_len, 4);
	ck_assert_mem_eq(rec.job->result->out, "o\0ut", 4);
	ck_assert_int_eq(rec.job->result->out_truncated, 1);
	ck_assert_int_eq(rec.job->result->err_truncated, 0);
	ck_assert_str_eq(rec.job->result->error,
	    "spawn: No such file or directory");
	ck_assert_double_eq(rec.job->result->finished_at, 1795000002.25);
	jobrec_clear(&rec);
	jobrec_buf_free(&b);
	job_free(j);
}
END_TEST

START_TEST(test_snapshot_records)
{
	struct jobrec_buf b = { 0 };
	struct jobrec rec;
	struct job *j = sample_job(JOB_SHELL, 1);
	char *cause = NULL;

	j->state = JOB_RUNNING;
	j->attempts = 1;
	j->started_at = 5.5;
	jobrec_job(&b, j);
	ck_assert_int_eq(jobrec_decode(JOBREC_JOB, b.data, b.len, &rec,
	    &cause), 0);
	assert_same_submit(j, rec.job);
	ck_assert_int_eq(rec.job->state, JOB_RUNNING);
	ck_assert_ptr_null(rec.job->result);
	jobrec_clear(&rec);

	finish(j);
	jobrec_job(&b, j);
	ck_assert_int_eq(jobrec_decode(JOBREC_JOB, b.data, b.len, &rec,
	    &cause), 0);
	assert_same_submit(j, rec.job);
	ck_assert_int_eq(rec.job->state, JOB_FAILED);
	ck_assert_ptr_nonnull(rec.job->result);
	ck_assert_str_eq(rec.job->result->error, j->result->error);
	jobrec_clear(&rec);

	jobrec_ids(&b, 123456789012ULL);
	ck_assert_int_eq(jobrec_decode(JOBREC_IDS, b.data, b.len, &rec,
	    &cause), 0);
	ck_assert_uint_eq(rec.last_id, 123456789012ULL);
	jobrec_clear(&rec);

	jobrec_pause(&b, "default", 1);
	ck_assert_int_eq(jobrec_decode(JOBREC_PAUSE, b.data, b.len, &rec,
	    &cause), 0);
	ck_assert_str_eq(rec.queue_name, "default");
	ck_assert_int_eq(rec.paused, 1);
	jobrec_clear(&rec);
	jobrec_buf_free(&b);
	job_free(j);
}
END_TEST

/* Every cut of a valid payload is refused; none reads past the end. */
START_TEST(test_truncated)
{
	struct jobrec_buf b = { 0 };
	struct jobrec rec;
	struct job *j = sample_job(JOB_ARGV, 1);
	unsigned char *copy;
	char *cause;
	size_t n;

	finish(j);
	jobrec_job(&b, j);
	for (n = 0; n < b.len; n++) {
		copy = xmemdup(b.data, n);	/* exact size: ASan sees overreads */
		cause = NULL;
		ck_assert_int_eq(jobrec_decode(JOBREC_JOB, copy, n, &rec,
		    &cause), -1);
		ck_assert_ptr_nonnull(cause);
		free(cause);
		free(copy);
	}
	cause = NULL;
	ck_assert_int_eq(jobrec_decode(99, b.data, b.len, &rec, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "unknown record type"));
	free(cause);
	jobrec_buf_free(&b);
	job_free(j);
}
END_TEST

/* Random damage: decode either succeeds or says why, never crashes. */
START_TEST(test_mutations)
{
	struct jobrec_buf b = { 0 };
	struct jobrec rec;
	struct job *j = sample_job(JOB_ARGV, 1);
	unsigned char *copy;
	unsigned seed = 12345;
	char *cause;
	int i, k, ok = 0;

	finish(j);
	jobrec_job(&b, j);
	for (i = 0; i < 20000; i++) {
		copy = xmemdup(b.data, b.len);
		for (k = 0; k < 1 + i % 4; k++)
			copy[rand_r(&seed) % b.len] = (unsigned char)rand_r(&seed);
		cause = NULL;
		if (jobrec_decode(JOBREC_JOB, copy, b.len, &rec, &cause) == 0) {
			ok++;
			jobrec_clear(&rec);
		} else {
			ck_assert_ptr_nonnull(cause);
		}
		free(cause);
		free(copy);
	}
	ck_assert_int_lt(ok, 20000);	/* damage was noticed at least once */
	jobrec_buf_free(&b);
	job_free(j);
}
END_TEST

static Suite *
jobrec_suite(void)
{
	Suite *s = suite_create("jobrec");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_submit_round_trip, 0, 6);
	tcase_add_test(tc, test_start_finish_round_trip);
	tcase_add_test(tc, test_snapshot_records);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_mutations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(jobrec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
