/*
 * workq: a bounded FIFO of opaque items shared by the loop thread and the
 * worker threads, with Python queue.Queue's put/get/task_done/join.
 *
 * Thread rule: the only locks in jobd live inside its thread-safe queues,
 * this one included.  Each workq has one mutex guarding every field of
 * struct workq; it is taken and released within each function and never
 * held across a call out of this file, so callers never hold it and
 * cannot deadlock on it.  An item belongs to whoever put it until a get
 * hands it to the getter; the queue never looks inside.
 *
 * Three condition variables, all on CLOCK_MONOTONIC so a clock step
 * cannot stretch or cut a timeout: not_empty (gets wait for an item or
 * shutdown), not_full (puts wait for room or shutdown), all_done (joins
 * wait for unfinished to reach zero).  Every wait re-checks its predicate
 * under the mutex, and a timed-out waiter looks once more before giving
 * up, so a signal it may have absorbed is never lost with the item.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"
#include "workq.h"

/* Ring capacity to start with and never to shrink below. */
#define WORKQ_MINCAP	16
/* Longer timeouts are treated as this, to keep timespec arithmetic sane. */
#define WORKQ_MAXWAIT	(100.0 * 365 * 86400)

struct workq {
	pthread_mutex_t	 lock;
	pthread_cond_t	 not_empty;
	pthread_cond_t	 not_full;
	pthread_cond_t	 all_done;

	void		**ring;		/* cap slots, count used from head */
	size_t		 cap;
	size_t		 head;
	size_t		 count;

	size_t		 maxsize;	/* 0 = unbounded */
	size_t		 unfinished;	/* put and not yet task_done */
	int		 shutdown;
};

static void __attribute__((noreturn))
workq_fatal(const char *what, int error)
{
	log_error("workq: %s: %s", what, strerror(error));
	abort();
}

/*
 * Lock failures mean a destroyed or corrupt queue: a broken invariant, so
 * they abort rather than return an error no caller could handle.
 */
static void
workq_lock(struct workq *q)
{
	int	error;

	if ((error = pthread_mutex_lock(&q->lock)) != 0)
		workq_fatal("pthread_mutex_lock", error);
}

static void
workq_unlock(struct workq *q)
{
	int	error;

	if ((error = pthread_mutex_unlock(&q->lock)) != 0)
		workq_fatal("pthread_mutex_unlock", error);
}

/*
 * Wait on cv with q->lock held, until deadline if not NULL.  Returns 1 if
 * the deadline passed, else 0 (woken, possibly spuriously).
 */
static int
workq_wait(struct workq *q, pthread_cond_t *cv, const struct timespec *deadline)
{
	int	error;

	if (deadline == NULL)
		error = pthread_cond_wait(cv, &q->lock);
	else
		error = pthread_cond_timedwait(cv, &q->lock, deadline);
	if (error == ETIMEDOUT)
		return 1;
	if (error != 0)
		workq_fatal("pthread_cond_wait", error);
	return 0;
}

/* CLOCK_MONOTONIC now + timeout seconds (timeout > 0). */
static void
workq_deadline(double timeout, struct timespec *ts)
{
	time_t	whole;

	if (!(timeout <= WORKQ_MAXWAIT))	/* NaN too */
		timeout = WORKQ_MAXWAIT;
	whole = (time_t)timeout;
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += whole;
	ts->tv_nsec += (long)((timeout - (double)whole) * 1e9);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Move the items to a ring of cap slots, oldest first at index 0. */
static void
workq_resize(struct workq *q, size_t cap)
{
	void	**ring;
	size_t	  first;

	ring = xreallocarray(NULL, cap, sizeof *ring);
	first = q->cap - q->head;
	if (first > q->count)
		first = q->count;
	memcpy(ring, q->ring + q->head, first * sizeof *ring);
	memcpy(ring + first, q->ring, (q->count - first) * sizeof *ring);
	free(q->ring);
	q->ring = ring;
	q->cap = cap;
	q->head = 0;
}

static int
workq_full(const struct workq *q)
{
	return q->maxsize != 0 && q->count >= q->maxsize;
}

/* Append under the lock; the caller has checked for room and shutdown. */
static void
workq_append(struct workq *q, void *item)
{
	if (q->count == q->cap)
		workq_resize(q, q->cap * 2);
	q->ring[(q->head + q->count) % q->cap] = item;
	q->count++;
	q->unfinished++;
	/*
	 * One item can satisfy one get, so waking one getter is enough; a
	 * getter that loses the race to another simply waits again.
	 */
	pthread_cond_signal(&q->not_empty);
}

struct workq *
workq_new(size_t maxsize)
{
	struct workq		*q;
	pthread_condattr_t	 attr;
	int			 error;

	q = xcalloc(1, sizeof *q);
	q->maxsize = maxsize;
	q->cap = WORKQ_MINCAP;
	q->ring = xreallocarray(NULL, q->cap, sizeof *q->ring);

	if ((error = pthread_mutex_init(&q->lock, NULL)) != 0)
		workq_fatal("pthread_mutex_init", error);
	if ((error = pthread_condattr_init(&attr)) != 0)
		workq_fatal("pthread_condattr_init", error);
	/* Timeouts must not move when the wall clock is set. */
	if ((error = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) != 0)
		workq_fatal("pthread_condattr_setclock", error);
	if ((error = pthread_cond_init(&q->not_empty, &attr)) != 0 ||
	    (error = pthread_cond_init(&q->not_full, &attr)) != 0 ||
	    (error = pthread_cond_init(&q->all_done, &attr)) != 0)
		workq_fatal("pthread_cond_init", error);
	pthread_condattr_destroy(&attr);
	return q;
}

void
workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	pthread_cond_destroy(&q->all_done);
	pthread_cond_destroy(&q->not_full);
	pthread_cond_destroy(&q->not_empty);
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	free(q);
}

int
workq_put(struct workq *q, void *item)
{
	int	r = -1;

	workq_lock(q);	/* count, maxsize and shutdown are read together */
	while (!q->shutdown && workq_full(q))
		workq_wait(q, &q->not_full, NULL);
	if (q->shutdown) {
		errno = EPIPE;
		goto out;
	}
	workq_append(q, item);
	r = 0;
out:
	workq_unlock(q);
	return r;
}

int
workq_put_nowait(struct workq *q, void *item)
{
	int	r = -1;

	workq_lock(q);	/* the full check and the append must be atomic */
	if (q->shutdown) {
		errno = EPIPE;
		goto out;
	}
	if (workq_full(q)) {
		errno = EAGAIN;
		goto out;
	}
	workq_append(q, item);
	r = 0;
out:
	workq_unlock(q);
	return r;
}

int
workq_get(struct workq *q, void **item, double timeout)
{
	struct timespec	 deadline, *dp = NULL;
	int		 timed_out = 0, r = -1;

	*item = NULL;
	if (timeout == 0)
		timed_out = 1;		/* look once, never wait */
	else if (timeout > 0) {
		workq_deadline(timeout, &deadline);
		dp = &deadline;
	}

	workq_lock(q);	/* guards the ring against other getters and puts */
	/*
	 * Items come before shutdown (a shut-down queue still drains) and
	 * both come before the timeout, so a getter whose wait timed out
	 * just as an item arrived still takes it.
	 */
	for (;;) {
		if (q->count > 0)
			break;
		if (q->shutdown) {
			errno = EPIPE;
			goto out;
		}
		if (timed_out) {
			errno = ETIMEDOUT;
			goto out;
		}
		timed_out = workq_wait(q, &q->not_empty, dp);
	}

	*item = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	/* After a burst, hand back memory, keeping slack against regrowth. */
	if (q->cap > WORKQ_MINCAP && q->count < q->cap / 4)
		workq_resize(q, q->cap / 2);
	/* One slot freed lets one put in; as in append, one wake-up. */
	if (q->maxsize != 0)
		pthread_cond_signal(&q->not_full);
	r = 0;
out:
	workq_unlock(q);
	return r;
}

void
workq_task_done(struct workq *q)
{
	workq_lock(q);	/* unfinished is shared with put and join */
	if (q->unfinished == 0) {
		/* More task_done than puts: the caller's accounting is broken. */
		workq_unlock(q);
		log_error("workq: task_done called more times than items put");
		abort();
	}
	/*
	 * Every joiner waits for the same condition, so all of them must
	 * wake: broadcast, not signal.
	 */
	if (--q->unfinished == 0)
		pthread_cond_broadcast(&q->all_done);
	workq_unlock(q);
}

int
workq_join(struct workq *q, double timeout)
{
	struct timespec	 deadline, *dp = NULL;
	int		 timed_out = 0, r = -1;

	if (timeout == 0)
		timed_out = 1;
	else if (timeout > 0) {
		workq_deadline(timeout, &deadline);
		dp = &deadline;
	}

	workq_lock(q);	/* unfinished is changed by put and task_done */
	for (;;) {
		if (q->unfinished == 0)
			break;
		if (timed_out) {
			errno = ETIMEDOUT;
			goto out;
		}
		timed_out = workq_wait(q, &q->all_done, dp);
	}
	r = 0;
out:
	workq_unlock(q);
	return r;
}

void
workq_shutdown(struct workq *q)
{
	workq_lock(q);	/* waiters test shutdown under the lock: no lost wake-up */
	q->shutdown = 1;
	/* Every blocked get and put must see it, not just one of each. */
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	workq_unlock(q);
}

void
workq_set_maxsize(struct workq *q, size_t maxsize)
{
	workq_lock(q);	/* blocked puts read maxsize under the lock */
	/*
	 * Growing may make room for several puts at once; each re-checks
	 * under the lock, so waking all of them is safe.  Shrinking frees
	 * nothing, and the gets that bring count below the new bound
	 * signal as usual.
	 */
	if (q->maxsize != 0 && (maxsize == 0 || maxsize > q->maxsize))
		pthread_cond_broadcast(&q->not_full);
	q->maxsize = maxsize;
	workq_unlock(q);
}

size_t
workq_size(struct workq *q)
{
	size_t	n;

	workq_lock(q);
	n = q->count;
	workq_unlock(q);
	return n;
}

size_t
workq_unfinished(struct workq *q)
{
	size_t	n;

	workq_lock(q);
	n = q->unfinished;
	workq_unlock(q);
	return n;
}
