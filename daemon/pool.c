/*
 * pool: N worker threads per named queue.
 *
 * Thread rule: a worker owns the work item it took from the workq until it
 * pushes it to the completion queue; it touches no job record and no
 * libevent object.  The pool struct itself is the loop thread's, except
 * retiring, which a worker decrements when it takes a retire marker.
 *
 * Shrinking (reload) never interrupts a job: the loop puts a retire marker
 * into the workq, and whichever worker takes it next — an idle one, or a
 * busy one once its job is over — leaves.  A retired thread is joined at
 * pool_join with the others, not on the loop while it serves.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "runner.h"
#include "util.h"

struct pool {
	char		 *name;
	struct workq	 *workq;
	struct completion *done;
	pthread_t	 *threads;	/* every thread started, retired too */
	int		  nthreads;
	int		  live;		/* started and not told to retire */
	atomic_int	  retiring;	/* markers not yet taken */
};

/* The retire marker: an address no work item can have. */
static char pool_retire_marker;

static void *
pool_worker(void *arg)
{
	struct pool *p = arg;
	void *item;

	/* workq_get fails only once the queue is shut down and empty. */
	while (workq_get(p->workq, &item, -1) == 0) {
		if (item == &pool_retire_marker) {
			atomic_fetch_sub(&p->retiring, 1);
			workq_task_done(p->workq);
			break;
		}
		runner_run(item);
		completion_push(p->done, item);
		workq_task_done(p->workq);
	}
	return NULL;
}

/* Start threads until there are n that are not retiring. */
static void
pool_grow(struct pool *p, int n)
{
	sigset_t all, old;
	int error;

	p->threads = xreallocarray(p->threads,
	    (size_t)(p->nthreads + (n - p->live)), sizeof *p->threads);
	/*
	 * Threads inherit the creator's mask: block everything so that signals
	 * reach the loop thread's evsignal handlers only.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	while (p->live < n) {
		error = pthread_create(&p->threads[p->nthreads], NULL,
		    pool_worker, p);
		if (error != 0) {
			/* At start-up that is fatal; at a reload, fewer threads. */
			if (p->nthreads == 0)
				log_fatalx(1, "pool: %s: pthread_create: %s",
				    p->name, strerror(error));
			log_error("pool: %s: pthread_create: %s", p->name,
			    strerror(error));
			break;
		}
		p->nthreads++;
		p->live++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

struct pool *
pool_new(const char *name, struct workq *q, struct completion *done, int n)
{
	struct pool *p = xcalloc(1, sizeof *p);

	p->name = xstrdup(name);
	p->workq = q;
	p->done = done;
	atomic_init(&p->retiring, 0);
	pool_grow(p, n);
	return p;
}

int
pool_size(const struct pool *p)
{
	return p->live;
}

int
pool_retiring(const struct pool *p)
{
	return atomic_load(&((struct pool *)p)->retiring);
}

void
pool_resize(struct pool *p, int n)
{
	if (n > p->live) {
		pool_grow(p, n);
		return;
	}
	while (p->live > n) {
		/* Counted before the put: the worker decrements it. */
		atomic_fetch_add(&p->retiring, 1);
		if (workq_put_nowait(p->workq, &pool_retire_marker) == -1) {
			atomic_fetch_sub(&p->retiring, 1);
			log_error("pool: %s: no room for a retire marker: %s",
			    p->name, strerror(errno));
			break;
		}
		p->live--;
	}
}

void
pool_join(struct pool *p)
{
	int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	free(p->name);
	free(p);
}
