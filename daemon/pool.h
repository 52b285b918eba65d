/*
 * pool: the worker threads of one named queue.  Each takes a work item
 * from the queue's workq, runs it with the runner, hands it back through
 * the completion queue and marks it done.
 */
#ifndef JOBD_POOL_H
#define JOBD_POOL_H

#include "completion.h"
#include "workq.h"

struct pool;

/* Start n threads; all signals stay blocked in them. */
struct pool *pool_new(const char *name, struct workq *, struct completion *,
	    int n);
/* How many threads the pool has that were not told to retire. */
int	 pool_size(const struct pool *);
/*
 * Reload: grow to n threads (start more) or shrink (put one retire marker
 * per extra thread into the workq; the worker that takes one exits, so a
 * running job is never cut short).  The caller makes room in the workq's
 * bound for the markers first: see pool_retiring.
 */
void	 pool_resize(struct pool *, int n);
/* Retire markers put but not yet taken by a worker. */
int	 pool_retiring(const struct pool *);
/*
 * Wait for every thread to exit, retired ones included.  The caller shuts
 * the workq down first; threads finish the item they hold, then leave.
 * Frees the pool.
 */
void	 pool_join(struct pool *);

#endif
