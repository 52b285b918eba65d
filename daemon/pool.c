/*
 * pool: N worker threads per named queue.
 *
 * Thread rule: a worker owns the work item it took from the workq until it
 * pushes it to the completion queue; it touches no job record and no
 * libevent object.  The pool struct itself is the loop thread's.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"
#include "runner.h"
#include "util.h"

struct pool {
	struct workq	 *workq;
	struct completion *done;
	pthread_t	 *threads;
	int		  nthreads;
};

static void *
pool_worker(void *arg)
{
	struct pool *p = arg;
	void *item;

	/* workq_get fails only once the queue is shut down and empty. */
	while (workq_get(p->workq, &item, -1) == 0) {
		runner_run(item);
		completion_push(p->done, item);
		workq_task_done(p->workq);
	}
	return NULL;
}

struct pool *
pool_new(const char *name, struct workq *q, struct completion *done, int n)
{
	struct pool *p = xcalloc(1, sizeof *p);
	sigset_t all, old;
	int i, error;

	p->workq = q;
	p->done = done;
	p->threads = xcalloc((size_t)n, sizeof *p->threads);

	/*
	 * Threads inherit the creator's mask: block everything so that signals
	 * reach the loop thread's evsignal handlers only.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < n; i++) {
		error = pthread_create(&p->threads[i], NULL, pool_worker, p);
		if (error != 0)
			log_fatalx(1, "pool: %s: pthread_create: %s", name,
			    strerror(error));
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return p;
}

int
pool_size(const struct pool *p)
{
	return p->nthreads;
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
	free(p);
}
