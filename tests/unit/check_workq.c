/*
 * check_workq: the bounded thread-safe queue on its own, first from one
 * thread (order, bounds, timeouts, shutdown), then with threads blocked in
 * each call, then a producer/consumer stress run with a joiner.
 *
 * Items are small integers cast to pointers.  Threads never call
 * ck_assert: they record what they saw and the test thread checks it.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"
#include "workq.h"

#define ITEM(n)		((void *)(uintptr_t)(n))
#define NUM(p)		((uintptr_t)(p))

/* Long enough for a thread to reach its blocking call, short for a test. */
static void
settle(void)
{
	struct timespec	ts = { 0, 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static void
spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	ck_assert_int_eq(pthread_create(t, NULL, fn, arg), 0);
}

static void
reap(pthread_t t)
{
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* Put 1..n, get a few, put more so the ring wraps and grows, drain. */
START_TEST(test_fifo)
{
	struct workq	*q = workq_new(0);
	uintptr_t	 i, next = 1, put = 0;
	void		*item;

	for (i = 0; i < 10; i++)
		ck_assert_int_eq(workq_put(q, ITEM(++put)), 0);
	for (i = 0; i < 7; i++) {
		ck_assert_int_eq(workq_get(q, &item, 0), 0);
		ck_assert_uint_eq(NUM(item), next++);
	}
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(workq_put_nowait(q, ITEM(++put)), 0);
	ck_assert_uint_eq(workq_size(q), 1003);
	ck_assert_uint_eq(workq_unfinished(q), 1010);
	while (workq_get(q, &item, 0) == 0) {
		ck_assert_uint_eq(NUM(item), next++);
		workq_task_done(q);
	}
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_ptr_null(item);
	ck_assert_uint_eq(next, put + 1);
	ck_assert_uint_eq(workq_size(q), 0);
	ck_assert_uint_eq(workq_unfinished(q), 7);
	ck_assert_int_eq(workq_join(q, 0), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	for (i = 0; i < 7; i++)
		workq_task_done(q);
	ck_assert_uint_eq(workq_unfinished(q), 0);
	ck_assert_int_eq(workq_join(q, 0), 0);
	ck_assert_int_eq(workq_join(q, -1), 0);
	workq_free(q);
	workq_free(NULL);
}
END_TEST

START_TEST(test_put_nowait_full)
{
	struct workq	*q = workq_new(2);
	void		*item;

	ck_assert_int_eq(workq_put_nowait(q, ITEM(1)), 0);
	ck_assert_int_eq(workq_put(q, ITEM(2)), 0);
	ck_assert_int_eq(workq_put_nowait(q, ITEM(3)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(workq_size(q), 2);
	ck_assert_uint_eq(workq_unfinished(q), 2);

	ck_assert_int_eq(workq_get(q, &item, -1), 0);
	ck_assert_uint_eq(NUM(item), 1);
	ck_assert_int_eq(workq_put_nowait(q, ITEM(3)), 0);
	ck_assert_int_eq(workq_put_nowait(q, ITEM(4)), -1);
	ck_assert_int_eq(errno, EAGAIN);

	/* Shrinking below the current count: no room until two gets. */
	workq_set_maxsize(q, 1);
	ck_assert_int_eq(workq_get(q, &item, -1), 0);
	ck_assert_uint_eq(NUM(item), 2);
	ck_assert_int_eq(workq_put_nowait(q, ITEM(4)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(workq_get(q, &item, -1), 0);
	ck_assert_uint_eq(NUM(item), 3);
	ck_assert_int_eq(workq_put_nowait(q, ITEM(4)), 0);

	/* Unbounded from now on. */
	workq_set_maxsize(q, 0);
	ck_assert_int_eq(workq_put_nowait(q, ITEM(5)), 0);
	ck_assert_int_eq(workq_put_nowait(q, ITEM(6)), 0);
	ck_assert_uint_eq(workq_size(q), 3);
	workq_free(q);
}
END_TEST

START_TEST(test_get_timeout)
{
	struct workq	*q = workq_new(4);
	void		*item = ITEM(99);
	double		 t0, dt;

	ck_assert_int_eq(workq_get(q, &item, 0), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_ptr_null(item);

	t0 = now_mono();
	ck_assert_int_eq(workq_get(q, &item, 0.25), -1);
	dt = now_mono() - t0;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_double_ge(dt, 0.25);
	ck_assert_double_lt(dt, 5.0);

	/* An item already there is taken whatever the timeout. */
	ck_assert_int_eq(workq_put(q, ITEM(1)), 0);
	ck_assert_int_eq(workq_get(q, &item, 0.25), 0);
	ck_assert_uint_eq(NUM(item), 1);
	workq_free(q);
}
END_TEST

START_TEST(test_join_timeout)
{
	struct workq	*q = workq_new(0);
	void		*item;
	double		 t0, dt;

	ck_assert_int_eq(workq_join(q, 0), 0);
	ck_assert_int_eq(workq_put(q, ITEM(1)), 0);
	ck_assert_int_eq(workq_get(q, &item, -1), 0);

	/* Taken but not done: join still waits. */
	t0 = now_mono();
	ck_assert_int_eq(workq_join(q, 0.2), -1);
	dt = now_mono() - t0;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_double_ge(dt, 0.2);
	ck_assert_double_lt(dt, 5.0);

	workq_task_done(q);
	ck_assert_int_eq(workq_join(q, 0.2), 0);
	workq_free(q);
}
END_TEST

/* Python raises ValueError; jobd treats it as a broken invariant. */
START_TEST(test_task_done_too_many)
{
	struct workq	*q = workq_new(0);
	void		*item;

	ck_assert_int_eq(workq_put(q, ITEM(1)), 0);
	ck_assert_int_eq(workq_get(q, &item, -1), 0);
	workq_task_done(q);
	workq_task_done(q);	/* aborts */
	workq_free(q);
}
END_TEST

START_TEST(test_shutdown)
{
	struct workq	*q = workq_new(3);
	void		*item;

	ck_assert_int_eq(workq_put(q, ITEM(1)), 0);
	ck_assert_int_eq(workq_put(q, ITEM(2)), 0);
	workq_shutdown(q);

	ck_assert_int_eq(workq_put(q, ITEM(3)), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(workq_put_nowait(q, ITEM(3)), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_uint_eq(workq_size(q), 2);

	/* What was put before the shutdown still comes out, in order. */
	ck_assert_int_eq(workq_get(q, &item, -1), 0);
	ck_assert_uint_eq(NUM(item), 1);
	ck_assert_int_eq(workq_get(q, &item, 0), 0);
	ck_assert_uint_eq(NUM(item), 2);
	/* Then EPIPE at once, whatever the timeout. */
	ck_assert_int_eq(workq_get(q, &item, -1), -1);
	ck_assert_int_eq(errno, EPIPE);
	ck_assert_int_eq(workq_get(q, &item, 0), -1);
	ck_assert_int_eq(errno, EPIPE);

	/* Accounting is unaffected. */
	ck_assert_uint_eq(workq_unfinished(q), 2);
	workq_task_done(q);
	workq_task_done(q);
	ck_assert_int_eq(workq_join(q, 0), 0);
	workq_shutdown(q);	/* twice is harmless */
	workq_free(q);
}
END_TEST

/* A thread doing one call and recording what it returned. */
struct call {
	struct workq	*q;
	double		 timeout;
	void		*item;
	int		 rc;
	int		 error;
	atomic_int	 returned;
};

static void *
call_get(void *arg)
{
	struct call	*c = arg;

	c->rc = workq_get(c->q, &c->item, c->timeout);
	c->error = errno;
	atomic_store(&c->returned, 1);
	return NULL;
}

static void *
call_put(void *arg)
{
	struct call	*c = arg;

	c->rc = workq_put(c->q, c->item);
	c->error = errno;
	atomic_store(&c->returned, 1);
	return NULL;
}

static void *
call_join(void *arg)
{
	struct call	*c = arg;

	c->rc = workq_join(c->q, c->timeout);
	c->error = errno;
	atomic_store(&c->returned, 1);
	return NULL;
}

/* Blocked gets and a blocked put all wake with EPIPE on shutdown. */
START_TEST(test_shutdown_wakes)
{
	struct workq	*q = workq_new(1);
	struct workq	*full = workq_new(1);
	struct call	 g[3], p;
	pthread_t	 tg[3], tp;
	int		 i;

	ck_assert_int_eq(workq_put(full, ITEM(1)), 0);
	for (i = 0; i < 3; i++) {
		g[i] = (struct call){ .q = q, .timeout = i == 0 ? 60 : -1 };
		spawn(&tg[i], call_get, &g[i]);
	}
	p = (struct call){ .q = full, .item = ITEM(2) };
	spawn(&tp, call_put, &p);
	settle();
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(atomic_load(&g[i].returned), 0);
	ck_assert_int_eq(atomic_load(&p.returned), 0);

	workq_shutdown(q);
	workq_shutdown(full);
	for (i = 0; i < 3; i++) {
		reap(tg[i]);
		ck_assert_int_eq(g[i].rc, -1);
		ck_assert_int_eq(g[i].error, EPIPE);
	}
	reap(tp);
	ck_assert_int_eq(p.rc, -1);
	ck_assert_int_eq(p.error, EPIPE);
	ck_assert_uint_eq(workq_size(full), 1);
	workq_free(q);
	workq_free(full);
}
END_TEST

/* A get blocked with a timeout takes an item put by another thread. */
START_TEST(test_get_wakes)
{
	struct workq	*q = workq_new(0);
	struct call	 g = { .timeout = 30 };
	pthread_t	 t;

	g.q = q;
	spawn(&t, call_get, &g);
	settle();
	ck_assert_int_eq(atomic_load(&g.returned), 0);
	ck_assert_int_eq(workq_put(q, ITEM(7)), 0);
	reap(t);
	ck_assert_int_eq(g.rc, 0);
	ck_assert_uint_eq(NUM(g.item), 7);
	workq_free(q);
}
END_TEST

/* Growing the bound, or removing it, lets blocked puts through. */
START_TEST(test_set_maxsize_unblocks)
{
	struct workq	*q = workq_new(1);
	struct call	 p[3];
	pthread_t	 t[3];
	int		 i;

	ck_assert_int_eq(workq_put(q, ITEM(1)), 0);
	for (i = 0; i < 3; i++) {
		p[i] = (struct call){ .q = q, .item = ITEM(2 + i) };
		spawn(&t[i], call_put, &p[i]);
	}
	settle();
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(atomic_load(&p[i].returned), 0);

	/* Shrinking wakes nobody usefully; still blocked. */
	workq_set_maxsize(q, 1);
	settle();
	ck_assert_uint_eq(workq_size(q), 1);

	/* Room for exactly one more. */
	workq_set_maxsize(q, 2);
	settle();
	ck_assert_uint_eq(workq_size(q), 2);
	ck_assert_int_eq(atomic_load(&p[0].returned) +
	    atomic_load(&p[1].returned) + atomic_load(&p[2].returned), 1);

	workq_set_maxsize(q, 0);
	for (i = 0; i < 3; i++) {
		reap(t[i]);
		ck_assert_int_eq(p[i].rc, 0);
	}
	ck_assert_uint_eq(workq_size(q), 4);
	ck_assert_uint_eq(workq_unfinished(q), 4);
	workq_free(q);
}
END_TEST

/* Every joiner wakes on the last task_done, not just one. */
START_TEST(test_join_wakes_all)
{
	struct workq	*q = workq_new(0);
	struct call	 j[3];
	pthread_t	 t[3];
	void		*item;
	int		 i;

	ck_assert_int_eq(workq_put(q, ITEM(1)), 0);
	ck_assert_int_eq(workq_put(q, ITEM(2)), 0);
	for (i = 0; i < 3; i++) {
		j[i] = (struct call){ .q = q, .timeout = i == 0 ? 60 : -1 };
		spawn(&t[i], call_join, &j[i]);
	}
	ck_assert_int_eq(workq_get(q, &item, -1), 0);
	ck_assert_int_eq(workq_get(q, &item, -1), 0);
	workq_task_done(q);
	settle();
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(atomic_load(&j[i].returned), 0);
	workq_task_done(q);
	for (i = 0; i < 3; i++) {
		reap(t[i]);
		ck_assert_int_eq(j[i].rc, 0);
	}
	workq_free(q);
}
END_TEST

/*
 * Stress: NPROD producers each put NPER distinct integers into a queue of
 * MAXSIZE; NCONS consumers take them until shutdown.  Each item must be
 * delivered exactly once, and a consumer must see each producer's items in
 * the order they were put (the queue is FIFO).
 *
 * The test thread takes one "hold" item before any thread starts and marks
 * it done only after every producer has finished, so unfinished cannot
 * touch zero early and the joiner's wait covers the whole run.  Consumers
 * count an item done before calling task_done, so when join returns that
 * count must be the total.
 */
#define NPROD	4
#define NCONS	4
#define NPER	25000
#define TOTAL	(NPROD * NPER)
#define MAXSIZE	16

struct stress {
	struct workq	*q;
	atomic_int	 count[TOTAL];
	atomic_long	 done;
	atomic_int	 oversize;	/* times size was seen above MAXSIZE */
};

struct producer {
	struct stress	*s;
	int		 id;
	int		 failed;
};

struct consumer {
	struct stress	*s;
	long		 got;
	long		 disorder;
	int		 error;		/* errno of the get that ended it */
};

struct joiner {
	struct stress	*s;
	int		 rc;
	long		 done_at_return;
};

static void *
producer_main(void *arg)
{
	struct producer	*p = arg;
	int		 k;

	for (k = 0; k < NPER; k++) {
		if (workq_put(p->s->q, ITEM(1 + p->id * NPER + k)) != 0)
			p->failed++;
		if (k % 512 == 0 && workq_size(p->s->q) > MAXSIZE)
			atomic_fetch_add(&p->s->oversize, 1);
	}
	return NULL;
}

static void *
consumer_main(void *arg)
{
	struct consumer	*c = arg;
	long		 last[NPROD];
	void		*item;
	long		 n;
	int		 i;

	for (i = 0; i < NPROD; i++)
		last[i] = -1;
	while (workq_get(c->s->q, &item, -1) == 0) {
		n = (long)NUM(item) - 1;
		if (n < last[n / NPER])
			c->disorder++;
		last[n / NPER] = n;
		atomic_fetch_add(&c->s->count[n], 1);
		c->got++;
		/* Counted before task_done: join must not return before this. */
		atomic_fetch_add(&c->s->done, 1);
		workq_task_done(c->s->q);
	}
	c->error = errno;
	return NULL;
}

static void *
joiner_main(void *arg)
{
	struct joiner	*j = arg;

	j->rc = workq_join(j->s->q, -1);
	j->done_at_return = atomic_load(&j->s->done);
	return NULL;
}

START_TEST(test_stress)
{
	struct stress	*s;
	struct producer	 prod[NPROD];
	struct consumer	 cons[NCONS];
	struct joiner	 join;
	pthread_t	 tp[NPROD], tc[NCONS], tj;
	void		*item;
	long		 got = 0;
	int		 i;

	s = calloc(1, sizeof *s);
	ck_assert_ptr_nonnull(s);
	s->q = workq_new(MAXSIZE);

	ck_assert_int_eq(workq_put(s->q, ITEM(0)), 0);	/* the hold */
	ck_assert_int_eq(workq_get(s->q, &item, 0), 0);

	join = (struct joiner){ .s = s };
	spawn(&tj, joiner_main, &join);
	for (i = 0; i < NCONS; i++) {
		cons[i] = (struct consumer){ .s = s };
		spawn(&tc[i], consumer_main, &cons[i]);
	}
	for (i = 0; i < NPROD; i++) {
		prod[i] = (struct producer){ .s = s, .id = i };
		spawn(&tp[i], producer_main, &prod[i]);
	}

	/* Work is outstanding (the hold at least): a timed join gives up. */
	ck_assert_int_eq(workq_join(s->q, 0.05), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);

	for (i = 0; i < NPROD; i++) {
		reap(tp[i]);
		ck_assert_int_eq(prod[i].failed, 0);
	}
	ck_assert_int_eq(atomic_load(&s->oversize), 0);
	workq_task_done(s->q);		/* release the hold */

	reap(tj);
	ck_assert_int_eq(join.rc, 0);
	ck_assert_int_eq(join.done_at_return, TOTAL);
	ck_assert_uint_eq(workq_unfinished(s->q), 0);
	ck_assert_uint_eq(workq_size(s->q), 0);

	workq_shutdown(s->q);
	for (i = 0; i < NCONS; i++) {
		reap(tc[i]);
		ck_assert_int_eq(cons[i].error, EPIPE);
		ck_assert_int_eq(cons[i].disorder, 0);
		got += cons[i].got;
	}
	ck_assert_int_eq(got, TOTAL);
	for (i = 0; i < TOTAL; i++)
		ck_assert_msg(atomic_load(&s->count[i]) == 1,
		    "item %d delivered %d times", i + 1,
		    atomic_load(&s->count[i]));
	workq_free(s->q);
	free(s);
}
END_TEST

static Suite *
workq_suite(void)
{
	Suite	*s = suite_create("workq");
	TCase	*tc;

	tc = tcase_create("single");
	tcase_add_test(tc, test_fifo);
	tcase_add_test(tc, test_put_nowait_full);
	tcase_add_test(tc, test_get_timeout);
	tcase_add_test(tc, test_join_timeout);
	tcase_add_test_raise_signal(tc, test_task_done_too_many, SIGABRT);
	tcase_add_test(tc, test_shutdown);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_shutdown_wakes);
	tcase_add_test(tc, test_get_wakes);
	tcase_add_test(tc, test_set_maxsize_unblocks);
	tcase_add_test(tc, test_join_wakes_all);
	suite_add_tcase(s, tc);

	tc = tcase_create("stress");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stress);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(workq_suite());
	int	 failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
